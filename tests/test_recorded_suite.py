"""Never lose a recorded suite: a conversion that did not run the notebook refuses to replace a recorded test suite
(``workflow.DropsRecording``; the CLI's exit 1), unless asked to; and per-file choices for hand-edited files."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbharden.errors import EXIT_CHANGES, RecordedSuiteError
from nbharden.manifest import MANIFEST, sha256_text
from nbharden.models import ChangeSet, FileChange, FileStatus
from nbharden.settings import Settings
from nbharden.testgen.generate import RECORDING_INDEX
from nbharden.workflow import (
    ConversionRequest,
    DropsRecording,
    Edited,
    Mode,
    Reviewed,
    Written,
    recorded_suite_loss,
    run_conversion,
)

CELLS = ["import math\nradius = 2.0", "area = math.pi * radius ** 2\nprint(area)"]
RECORDED = {
    RECORDING_INDEX: '{"steps": {}}\n',
    "tests/test_steps.py": "def test_step() -> None:\n    assert True\n",
    "tests/_compare.py": "# helpers\n",
    "tests/data/values/0f00e6f90b485d7358b3a7bf.json": "[1, 2, 3]\n",
}


def _static(out: Path, **overrides: object) -> Settings:
    return Settings(out=out, record=False, **overrides)  # type: ignore[arg-type]


def _as_if_recorded(out: Path) -> None:
    """Add a recorded suite's files to a written folder and to its manifest, as a recorded conversion leaves them."""
    manifest = json.loads((out / MANIFEST).read_text())
    for rel, text in RECORDED.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
        manifest["files"][rel] = sha256_text(text)
    (out / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture
def recorded(make_notebook: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    nb = make_notebook(CELLS)
    out = tmp_path / "out"
    assert isinstance(run_conversion(ConversionRequest(nb, _static(out))), Written)
    _as_if_recorded(out)
    return nb, out


def test_a_static_write_refuses_to_replace_a_recorded_suite(recorded: tuple[Path, Path]) -> None:
    nb, out = recorded
    before = _snapshot(out)
    outcome = run_conversion(ConversionRequest(nb, _static(out)))
    assert isinstance(outcome, DropsRecording)
    assert sorted(outcome.paths) == sorted(RECORDED)
    assert _snapshot(out) == before, "nothing was written"
    error = outcome.error
    assert isinstance(error, RecordedSuiteError) and error.exit_code == EXIT_CHANGES
    line = error.format()
    assert "\n" not in line and line.startswith(str(out))
    assert f"remove {len(RECORDED)} recorded file(s)" in line
    assert "record it again" in line and "--force" in line

    # a review says the same before anything is written
    reviewed = run_conversion(ConversionRequest(nb, _static(out), Mode.DIFF))
    assert isinstance(reviewed, Reviewed) and sorted(reviewed.drops_recording) == sorted(RECORDED)

    replaced = run_conversion(ConversionRequest(nb, _static(out), replace_recording=True))
    assert isinstance(replaced, Written)
    assert set(RECORDED) <= set(replaced.paths)
    assert not any((out / rel).exists() for rel in RECORDED)
    # now there is no recorded suite left to protect
    again = run_conversion(ConversionRequest(nb, _static(out), Mode.DIFF))
    assert isinstance(again, Reviewed) and again.drops_recording == ()


@pytest.mark.slow
def test_the_cli_maps_the_refusal_to_exit_1_and_force_replaces(recorded: tuple[Path, Path]) -> None:
    nb, out = recorded
    cmd = [sys.executable, "-m", "nbharden", "convert", str(nb), "--out", str(out), "--no-record"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "recorded" in line]
    assert len(errors) == 1, proc.stderr
    assert "--force" in errors[0] and f"remove {len(RECORDED)} recorded file(s)" in errors[0]
    assert (out / RECORDING_INDEX).is_file()
    proc = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not (out / RECORDING_INDEX).exists()


def _change(path: str, status: FileStatus, removed: bool) -> FileChange:
    return FileChange(path, status, "", None if removed else "x\n")


paths = st.lists(
    st.from_regex(r"(src/pkg|tests|tests/data/values)/[a-z]{1,8}\.(py|json)", fullmatch=True),
    unique=True,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(
    kept=paths,
    removed=paths,
    index=st.sampled_from([None, FileStatus.REMOVED, FileStatus.EDITED, FileStatus.UNCHANGED]),
)
def test_the_loss_is_every_removed_file_when_the_index_goes(
    kept: list[str], removed: list[str], index: FileStatus | None
) -> None:
    removed = [p for p in removed if p not in kept]
    changes = [_change(p, FileStatus.CHANGED, False) for p in kept]
    changes += [_change(p, FileStatus.REMOVED, True) for p in removed]
    if index is not None:
        changes.append(_change(RECORDING_INDEX, index, index is not FileStatus.UNCHANGED))
    loss = recorded_suite_loss(ChangeSet(Path("nb.ipynb"), Path("out"), tuple(changes), ()))
    if index in (FileStatus.REMOVED, FileStatus.EDITED):
        assert sorted(loss) == sorted([*removed, RECORDING_INDEX])
    else:
        assert loss == (), "no recorded index goes: nothing recorded is lost"


# --- per-file choices for hand-edited files -------------------------------------------------------------------------


def test_keep_my_edit_and_overwrite_per_file(make_notebook: Callable[..., Path], tmp_path: Path) -> None:
    nb = make_notebook([("radius = 2.0", ["parameters"]), "import math\narea = math.pi * radius ** 2"])
    out = tmp_path / "out"
    assert isinstance(run_conversion(ConversionRequest(nb, _static(out))), Written)
    steps = next(out.rglob("steps.py"))
    pipeline = next(out.rglob("pipeline.py"))
    mine, theirs = steps.relative_to(out).as_posix(), pipeline.relative_to(out).as_posix()
    steps.write_text(steps.read_text() + "# keep me\n")
    pipeline.write_text(pipeline.read_text() + "# overwrite me\n")
    nb.write_text(nb.read_text().replace("radius = 2.0", "radius = 3.0"))

    # a choice for one of two edited files is not enough: the other one is still refused, nothing written
    half = run_conversion(ConversionRequest(nb, _static(out), keep=frozenset({mine})))
    assert isinstance(half, Edited) and half.paths == (theirs,)
    assert steps.read_text().endswith("# keep me\n") and pipeline.read_text().endswith("# overwrite me\n")

    request = ConversionRequest(nb, _static(out), keep=frozenset({mine}), overwrite=frozenset({theirs}))
    outcome = run_conversion(request)
    assert isinstance(outcome, Written)
    assert mine not in outcome.paths and theirs in outcome.paths
    assert steps.read_text().endswith("# keep me\n"), "kept"
    assert "# overwrite me" not in pipeline.read_text(), "overwritten"
    config = next(out.rglob("config.py")).read_text()
    assert "3.0" in config and "2.0" not in config, "the other files were written"
    # the kept file stays hand-edited: the next review asks again, and it is never overwritten silently
    review = run_conversion(ConversionRequest(nb, _static(out), Mode.DIFF))
    assert isinstance(review, Reviewed)
    status = {c.path: c.status for c in review.changes.changes}
    assert status[mine] is FileStatus.EDITED and status[theirs] is FileStatus.UNCHANGED
