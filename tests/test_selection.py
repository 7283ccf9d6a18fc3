"""Rule selection as in ruff: select / extend-select / ignore, and ``# nbharden: noqa`` comments."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbharden import api
from nbharden.errors import UsageError
from nbharden.rules import RULES
from nbharden.selection import RuleSelection, cell_suppressions, parse_selectors
from nbharden.settings import Settings, load_settings

CODES = sorted(RULES)


def test_everything_is_on_by_default() -> None:
    assert all(RuleSelection().enabled(code) for code in CODES)
    assert all(Settings().rules.enabled(code) for code in CODES)


def test_the_more_specific_selector_wins_and_ignore_wins_a_tie() -> None:
    assert not RuleSelection(ignore=("NBH604",)).enabled("NBH604")
    assert RuleSelection(ignore=("NBH604",)).enabled("NBH605")
    only6 = RuleSelection(select=("NBH6",), ignore=("NBH604",))
    assert [c for c in CODES if only6.enabled(c)] == [
        c for c in CODES if c.startswith("NBH6") and c != "NBH604"
    ]
    assert RuleSelection(ignore=("NBH6",), extend_select=("NBH604",)).enabled("NBH604")
    assert not RuleSelection(ignore=("NBH6",), extend_select=("NBH604",)).enabled("NBH605")
    assert not RuleSelection(select=("NBH6",), ignore=("NBH6",)).enabled("NBH604")
    assert not RuleSelection(ignore=("ALL",)).enabled("NBH101")
    assert RuleSelection(select=("NBH2",)).enabled("NBH201")
    assert not RuleSelection(select=("NBH2",)).enabled("NBH101")


@given(
    st.lists(st.sampled_from(["ALL", "NBH", "NBH1", "NBH6", "NBH60", "NBH604", "NBH201"]), max_size=3),
    st.lists(st.sampled_from(["ALL", "NBH", "NBH1", "NBH6", "NBH60", "NBH604", "NBH201"]), max_size=3),
    st.sampled_from(CODES),
)
def test_ignoring_a_code_itself_always_turns_it_off(select: list[str], ignore: list[str], code: str) -> None:
    # whatever else is selected, naming the code in ignore turns it off unless extend-select names it too
    selection = RuleSelection(tuple(select) or ("ALL",), (), (*ignore, code))
    assert not selection.enabled(code)
    assert RuleSelection(tuple(select) or ("ALL",), (code,), tuple(ignore)).enabled(code) or code in ignore


def test_selectors_are_validated() -> None:
    assert parse_selectors(["nbh604, NBH2", "ALL"], what="--ignore") == ("NBH604", "NBH2", "ALL")
    for bad in ("F401", "NBH6045", "print", "NBHx"):
        with pytest.raises(ValueError, match="--ignore"):
            parse_selectors([bad], what="--ignore")


def test_noqa_comments_by_line_and_for_the_cell() -> None:
    cell = cell_suppressions(
        "# nbharden: noqa[NBH201]\n"
        "x = 1\n"
        "print(x)  # nbharden: noqa[NBH604, NBH605]\n"
        "y = 2  # nbharden: noqa\n"
        "z = 3  # nbharden: noqa: NBH101\n"
        "# nbharden: noqa[NBH999]  (after code: applies to no line)\n"
    )
    assert cell.suppresses("NBH201", 5) and cell.suppresses("NBH201")
    assert cell.suppresses("NBH604", 3) and cell.suppresses("NBH605", 3)
    assert not cell.suppresses("NBH604", 2)
    assert cell.suppresses("NBH401", 4)
    assert cell.suppresses("NBH101", 5) and not cell.suppresses("NBH604", 5)
    assert not cell.suppresses("NBH999", 7)
    assert not cell_suppressions("x = 1  # noqa: E501\n").suppresses("NBH604", 1)


def test_pyproject_select_and_ignore(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.nbharden]\nselect = ["NBH2"]\nignore = ["NBH204"]\n')
    settings = load_settings(tmp_path)
    assert settings.rules.enabled("NBH201") and not settings.rules.enabled("NBH204")
    assert not settings.rules.enabled("NBH604")
    (tmp_path / "pyproject.toml").write_text('[tool.nbharden]\nignore = "NBH604"\n')
    with pytest.raises(UsageError, match="must be a list"):
        load_settings(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.nbharden]\nignore = ["E501"]\n')
    with pytest.raises(UsageError, match="'E501' is not a rule code"):
        load_settings(tmp_path)


PRINTS = [
    "import pathlib\nrows = [1, 2, 3]\nprint(len(rows))",
    "total = sum(rows)\nprint(total)  # nbharden: noqa[NBH604]\nprint('done')",
    "out = pathlib.Path('results.txt')\nout.write_text(str(total))",
]


def _steps(nb: Path, **settings: object) -> tuple[str, list[str]]:
    gen = api.generate(nb, Settings(out=nb.parent / "out", record=False, **settings))  # type: ignore[arg-type]
    steps = next(text for path, text in gen.tree.as_dict().items() if path.endswith("/steps.py"))
    return steps, [f.code for f in gen.findings]


def test_ignore_keeps_print_and_noqa_keeps_one(make_notebook: Callable[..., Path]) -> None:
    nb = make_notebook(PRINTS)
    steps, codes = _steps(nb)
    assert "print(total)  # nbharden: noqa[NBH604]" in steps
    assert steps.count("print(") == 1, "only the suppressed print is kept"
    assert "NBH604" in codes

    steps, codes = _steps(nb, ignore=("NBH604",))
    assert steps.count("print(") == 3 and "logger.info" not in steps
    assert "NBH604" not in codes

    steps, codes = _steps(nb, select=("NBH2",))
    assert steps.count("print(") == 3
    assert codes and all(code.startswith("NBH2") for code in codes)


def test_cell_wide_noqa_drops_the_cells_findings(make_notebook: Callable[..., Path]) -> None:
    nb = make_notebook(["import random\nx = random.random()", "# nbharden: noqa[NBH401]\ny = random.random()"])
    findings = api.analyze(nb).findings
    cells = {f.span.cell for f in findings if f.code == "NBH401" and f.span}
    assert cells == {1}


FINDINGS = [
    "import random\nx = random.random()",
    "text = open('/home/me/data.csv').read()\ntoken = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'",
    "y = x + z",
    "z = 1",
]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbharden", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_ignore_select_and_bad_selectors(make_notebook: Callable[..., Path], tmp_path: Path) -> None:
    nb = make_notebook(PRINTS)
    proc = _cli("convert", nb.name, "--no-record", "--ignore", "NBH604", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    steps = next((tmp_path / "out").rglob("steps.py")).read_text()
    assert steps.count("print(") == 3
    assert "NBH604" not in proc.stdout + proc.stderr

    many = make_notebook(FINDINGS, name="many.ipynb")
    proc = _cli("analyze", many.name, "--format", "json", cwd=tmp_path)
    assert sorted(f["code"] for f in json.loads(proc.stdout)[0]["findings"]) == [
        "NBH101",
        "NBH201",
        "NBH202",
        "NBH401",
    ]
    proc = _cli("analyze", many.name, "--format", "json", "--select", "NBH2,NBH4", "--ignore", "NBH202", cwd=tmp_path)
    assert sorted(f["code"] for f in json.loads(proc.stdout)[0]["findings"]) == ["NBH201", "NBH401"]

    proc = _cli("analyze", nb.name, "--ignore", "E501", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "--ignore: 'E501' is not a rule code, a prefix of one (NBH6) or ALL"
