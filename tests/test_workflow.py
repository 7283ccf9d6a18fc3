"""The one workflow every front end runs (``nbharden.workflow.run_conversion``): typed outcomes, real files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nbharden.errors import EXIT_CHANGES, EditedFileError, VerificationError, WriteError
from nbharden.models import FileStatus
from nbharden.settings import Settings
from nbharden.workflow import (
    Blocked,
    ConversionRequest,
    Edited,
    Hooks,
    Mode,
    Reviewed,
    VerificationFailed,
    Written,
    run_conversion,
)

CELLS = ["import math\nradius = 2.0", "area = math.pi * radius ** 2\nprint(area)"]


def _static(out: Path, **overrides: object) -> Settings:
    return Settings(out=out, record=False, **overrides)  # type: ignore[arg-type]


def test_diff_and_check_review_only(make_notebook: Callable[..., Path], tmp_path: Path) -> None:
    nb = make_notebook(CELLS)
    out = tmp_path / "out"
    for mode in (Mode.DIFF, Mode.CHECK):
        outcome = run_conversion(ConversionRequest(nb, _static(out), mode))
        assert isinstance(outcome, Reviewed)
        assert outcome.changes.has_changes
        assert not out.exists()


def test_write_then_unchanged_then_edited(make_notebook: Callable[..., Path], tmp_path: Path) -> None:
    nb = make_notebook(CELLS)
    out = tmp_path / "out"
    stages: list[str] = []
    folders: list[tuple[str, Path]] = []
    hooks = Hooks(
        progress=lambda stage, _: stages.append(stage),
        writing=lambda o: folders.append(("writing", o)),
        written=lambda o: folders.append(("written", o)),
    )
    first = run_conversion(ConversionRequest(nb, _static(out)), hooks)
    assert isinstance(first, Written)
    assert first.tests is None  # static: nothing to verify
    assert set(first.paths) == {c.path for c in first.changes.changes}
    assert all((out / p).is_file() for p in first.paths)
    assert folders == [("writing", out), ("written", out)]
    assert stages[0] == "load" and "review" in stages

    again = run_conversion(ConversionRequest(nb, _static(out)))
    assert isinstance(again, Written) and again.paths == ()

    steps = next(out.rglob("steps.py"))
    steps.write_text(steps.read_text() + "\n# my edit\n")
    edited = run_conversion(ConversionRequest(nb, _static(out)))
    assert isinstance(edited, Edited)
    assert edited.paths == (steps.relative_to(out).as_posix(),)
    assert isinstance(edited.error, EditedFileError)
    assert edited.error.exit_code == EXIT_CHANGES
    assert "-# my edit" in edited.error.diff, "the diff shows what writing would lose"
    assert str(edited.error.path).startswith(str(out)), "named as the caller names the folder"
    assert steps.read_text().endswith("# my edit\n"), "the edit is kept"

    forced = run_conversion(ConversionRequest(nb, _static(out, force=True)))
    assert isinstance(forced, Written)
    assert forced.paths == (steps.relative_to(out).as_posix(),)
    assert "# my edit" not in steps.read_text()


def test_a_link_leaving_the_folder_is_blocked_and_nothing_is_written(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    nb = make_notebook(CELLS)
    out = tmp_path / "out"
    assert isinstance(run_conversion(ConversionRequest(nb, _static(out))), Written)
    victim = tmp_path / "victim.py"
    victim.write_text("mine\n")
    config = next(out.rglob("config.py"))
    config.unlink()
    config.symlink_to(victim)
    (tmp_path / "nb.ipynb").write_text((tmp_path / "nb.ipynb").read_text().replace("2.0", "3.0"))

    outcome = run_conversion(ConversionRequest(nb, _static(out)))
    assert isinstance(outcome, Blocked)
    assert list(outcome.reasons) == [config.relative_to(out).as_posix()]
    assert isinstance(outcome.error, WriteError)
    assert str(outcome.error.path) == str(config)
    assert victim.read_text() == "mine\n"
    assert any(c.status is FileStatus.CHANGED for c in outcome.changes.changes)


def test_a_killed_write_is_finished_before_the_review(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    # A real SIGKILL between the journal (the commit point) and the renames, then a new conversion:
    # the workflow replays the journal first, so the review compares with the new files, not a mix.
    nb = make_notebook(CELLS)
    out = tmp_path / "out"
    code = f"""
import os, signal
from pathlib import Path
import nbharden.write as w
from nbharden.settings import Settings
from nbharden.workflow import ConversionRequest, run_conversion
real = w._apply
def killed(root, steps):
    os.kill(os.getpid(), signal.SIGKILL)
w._apply = killed
run_conversion(ConversionRequest(Path({str(nb)!r}), Settings(out=Path({str(out)!r}), record=False)))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False)
    assert proc.returncode == -9, proc.stderr
    assert (out / ".nbharden-journal.json").exists()
    outcome = run_conversion(ConversionRequest(nb, _static(out), Mode.CHECK))
    assert isinstance(outcome, Reviewed)
    assert (out / ".nbharden-journal.json").exists(), "check never changes the folder"
    written = run_conversion(ConversionRequest(nb, _static(out)))
    assert isinstance(written, Written) and written.paths == ()
    assert not (out / ".nbharden-journal.json").exists()


@pytest.mark.slow
def test_a_recorded_conversion_is_verified(make_notebook: Callable[..., Path], tmp_path: Path) -> None:
    nb = make_notebook(CELLS)
    outcome = run_conversion(ConversionRequest(nb, Settings(out=tmp_path / "out", sandbox="off")))
    assert isinstance(outcome, Written)
    assert outcome.tests is not None and outcome.tests.returncode == 0
    assert outcome.tests.counts["passed"] >= 3
    assert outcome.changes.test_results and outcome.changes.test_results["passed"] >= 3


def test_a_failing_suite_names_the_findings_that_can_explain_it(make_notebook: Callable[..., Path]) -> None:
    from nbharden import api
    from nbharden.cli.convert import _verification_failure
    from nbharden.workflow import TestRun, explaining_findings

    # cell 2 reads `rate`, which only a later cell defines: hidden state (NBH1xx), plus a print (NBH604)
    nb = make_notebook(["x = 1", "y = x * rate\nprint(y)", "rate = 2"])
    changes = api.convert(nb, Settings(out=nb.parent / "out", record=False))
    causes = explaining_findings(changes.findings)
    assert causes and all(f.code.startswith("NBH1") for f in causes)
    assert any(f.code == "NBH604" for f in changes.findings), "other findings are not causes"
    error = VerificationError("generated tests failed (1 failed in 0.1s)", path=nb.parent / "out")
    outcome = VerificationFailed(changes, (), TestRun(1, {"failed": 1}, "1 failed"), causes, error)
    line = _verification_failure(outcome, "nb.ipynb").format()
    assert "\n" not in line
    for finding in causes[:3]:
        assert f"nb.ipynb:cell {finding.span.cell}:" in line and finding.code in line  # type: ignore[union-attr]
    assert "NBH604" not in line
