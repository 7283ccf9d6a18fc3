"""Formatting: ruff format (default) and black give the same bytes; formatting never changes what code does."""

from __future__ import annotations

from pathlib import Path

import black
import pytest

from nbharden import api
from nbharden.errors import UsageError, VerificationError
from nbharden.fmt import _assert_equivalent, ruff_format
from nbharden.models import FileTree
from nbharden.settings import Settings

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
MODULES = sorted(GOLDEN.glob("*.expected/**/*.py"))


def test_every_golden_module_is_a_fixpoint_of_both_formatters() -> None:
    assert MODULES
    texts = {str(p.relative_to(GOLDEN)): p.read_text(encoding="utf-8") for p in MODULES}
    mode = black.Mode(line_length=88, target_versions={black.TargetVersion.PY311})
    by_black = {p for p, t in texts.items() if black.format_str(t, mode=mode) != t}
    by_ruff = {p for p, t in ruff_format(texts, line_length=88).items() if t != texts[p]}
    assert by_black == set(), "black would reformat these generated modules"
    assert by_ruff == set(), "ruff format would reformat these generated modules"


def test_the_formatter_setting_gives_the_same_package(tmp_path: Path) -> None:
    notebook = GOLDEN / "markdown_sections.ipynb"
    trees = {
        formatter: api.generate(
            notebook, Settings(out=tmp_path / "out", record=False, formatter=formatter)
        ).tree.as_dict()
        for formatter in ("ruff", "black")
    }
    assert trees["ruff"] == trees["black"]
    with pytest.raises(UsageError, match="formatter must be one of ruff, black"):
        api.generate(notebook, Settings(out=tmp_path / "out", record=False, formatter="yapf"))


def test_a_change_of_meaning_is_refused() -> None:
    _assert_equivalent("a.py", "x = (1,)\n", "x = (1, )\n")  # same AST: fine
    with pytest.raises(VerificationError, match="a.py: formatting changed the code's meaning"):
        _assert_equivalent("a.py", "x = (1,)\n", "x = (1)\n")


def test_ruff_format_leaves_other_files_alone() -> None:
    files = {"pyproject.toml": "[x]\na=1\n", "src/m.py": "x=( 1,2 )\n"}
    out = ruff_format(files, line_length=88)
    assert out == {"pyproject.toml": "[x]\na=1\n", "src/m.py": "x = (1, 2)\n"}
    assert FileTree.of(out).as_dict() == out
