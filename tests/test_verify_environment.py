"""The generated suite's verification starts with the recorded run's environment (issue 17): the suite's conftest
starts pytest again when the thread counts or the hash seed differ from the recording's, which cost every
recorded conversion a second pytest start-up. The variables come from the files the suite reads them from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbharden import api
from nbharden.record import sandbox as sb
from nbharden.settings import Settings

PROBE = """
import os
import sys


def test_the_recorded_environment_is_set_from_the_start():
    expected = {"NBH_PROBE_THREADS": "1", "PYTHONHASHSEED": "0"}
    assert {k: os.environ.get(k) for k in expected} == expected
    assert sys.flags.hash_randomization == 0, "PYTHONHASHSEED=0 is set before the interpreter starts"
"""


def _suite(out: Path, where: str) -> dict[str, str]:
    environment = {"NBH_PROBE_THREADS": "1", "PYTHONHASHSEED": "0"}
    files = {
        "pyproject.toml": '[project]\nname = "probe"\nversion = "0"\n',
        where: json.dumps({"environment": environment, "steps": {}}),
        "tests/test_probe.py": PROBE,
    }
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
    return files


def _bwrap() -> list[pytest.MarkDecorator]:
    problem = sb.bwrap_problem()
    return [pytest.mark.skip(reason=f"tier bwrap cannot run here: {problem}")] if problem else []


@pytest.mark.parametrize("where", ["tests/data/recording.json", "tests/setup.json"])
def test_the_tests_start_in_the_recorded_environment(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBH_PROBE_THREADS", raising=False)
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    out = tmp_path / "pkg"
    _suite(out, where)
    result = api.run_tests(out, check=False, cases=True)
    assert result["returncode"] == 0 and result["passed"] == 1, result


@pytest.mark.slow
@pytest.mark.parametrize("tier", [pytest.param("bwrap", marks=_bwrap())])
def test_the_sandbox_keeps_the_recorded_environment(
    tmp_path: Path, tier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tier bwrap starts the tests from an empty environment: the recorded variables are kept in it."""
    monkeypatch.delenv("NBH_PROBE_THREADS", raising=False)
    out = tmp_path / "nb" / "pkg"
    files = _suite(out, "tests/data/recording.json")
    notebook = tmp_path / "nb" / "nb.ipynb"
    notebook.write_text("{}", encoding="utf-8")
    result = api.run_tests(
        out,
        settings=Settings(sandbox=tier),
        notebook=notebook,
        files=files,
        check=False,
        cases=True,
    )
    assert result["verify_sandbox"] == tier
    assert result["returncode"] == 0 and result["passed"] == 1, result


def test_no_recorded_environment_adds_nothing(tmp_path: Path) -> None:
    assert api._recorded_environment(tmp_path, None) == {}
    assert api._recorded_environment(tmp_path, {"tests/setup.json": "not json"}) == {}
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "setup.json").write_text(
        '{"environment": {"A": "1", "B": 2}}', encoding="utf-8"
    )
    assert api._recorded_environment(tmp_path, None) == {"A": "1"}
