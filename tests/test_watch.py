"""Watching a recording (``nbharden.record.watch``): progress per cell of each run, and Cancel, which kills the kernel
at once. Real kernels (papermill)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nbharden import api
from nbharden.errors import CancelledError
from nbharden.record.watch import Cancel, CellProgress, RunWatch
from nbharden.settings import Settings
from nbharden.workflow import ConversionRequest, Hooks, Mode, Reviewed, run_conversion


def _process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie runs no code; its parent reaps it


@pytest.mark.slow
def test_progress_names_every_cell_of_every_run_in_order(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    nb = make_notebook(["md:# Title", "x = 1", "", "y = x + 1", "md:## Next", "z = y * 2"])
    seen: list[CellProgress] = []
    stages: list[str] = []
    hooks = Hooks(progress=lambda stage, _: stages.append(stage), run=RunWatch(on_cell=seen.append))
    settings = Settings(out=tmp_path / "out", sandbox="off")
    outcome = run_conversion(ConversionRequest(nb, settings, Mode.DIFF), hooks)
    assert isinstance(outcome, Reviewed)
    runs = outcome.changes.test_results["runs"]  # type: ignore[index]
    # the cells that run (code, not empty), numbered as the notebook shows them, once per run
    assert [(p.run, p.cell, p.position, p.total) for p in seen] == [
        (run, cell, pos, 3) for run in range(1, runs + 1) for pos, cell in enumerate((2, 4, 6), 1)
    ]
    assert all(p.runs >= 2 for p in seen)
    for run in range(1, runs + 1):
        times = [p.elapsed for p in seen if p.run == run]
        assert times == sorted(times) and times[0] >= 0
    assert stages.index("record") < stages.index("transform")


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", ["off", "limits"])
def test_cancel_kills_the_kernel_at_once_and_nothing_is_written(
    make_notebook: Callable[..., Path], tmp_path: Path, sandbox: str
) -> None:
    pid_file = tmp_path / "kernel.pid"
    nb = make_notebook(
        [
            f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))",
            "time.sleep(600)",
            "done = True",
        ]
    )
    cancel = Cancel()
    cells: list[int] = []
    cancelled_at: list[float] = []

    def on_cell(progress: CellProgress) -> None:
        cells.append(progress.cell)
        if progress.cell == 2:  # the long cell has started: cancel from another thread, as the server does
            def stop() -> None:
                time.sleep(0.5)
                cancelled_at.append(time.monotonic())
                cancel.cancel()

            threading.Thread(target=stop, daemon=True).start()

    out = tmp_path / "out"
    settings = Settings(out=out, sandbox=sandbox)  # type: ignore[arg-type]
    with pytest.raises(CancelledError) as caught:
        api.convert(nb, settings, watch=RunWatch(on_cell=on_cell, cancel=cancel))
    stopped = time.monotonic() - cancelled_at[0]
    assert stopped < 5, f"the conversion went on {stopped:.1f} s after Cancel"
    assert caught.value.exit_code == 130 and str(nb) in caught.value.format()
    assert cells == [1, 2], "the third cell never started"
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while not _process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _process_gone(pid), "the kernel is stopped within 2 s of Cancel"
    assert not out.exists()


def test_a_cancel_before_the_run_stops_at_the_next_stage(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    nb = make_notebook(["x = 1"])
    cancel = Cancel()
    stages: list[str] = []

    def progress(stage: str, _: Path) -> None:
        stages.append(stage)
        if stage == "analyse":
            cancel.cancel()

    hooks = Hooks(progress=progress, run=RunWatch(cancel=cancel))
    with pytest.raises(CancelledError):
        run_conversion(ConversionRequest(nb, Settings(out=tmp_path / "out"), Mode.DIFF), hooks)
    assert stages == ["load", "analyse"], "nothing ran after the cancel, the kernel never started"


def test_a_kill_registered_after_the_cancel_runs_at_once() -> None:
    cancel = Cancel()
    killed: list[str] = []
    forget = cancel.on_cancel(lambda: killed.append("early"))
    forget()
    cancel.cancel()
    cancel.on_cancel(lambda: killed.append("late"))
    assert killed == ["late"], "a forgotten kill is not called; one registered too late is called at once"
    with pytest.raises(CancelledError):
        cancel.check("nb.ipynb")
