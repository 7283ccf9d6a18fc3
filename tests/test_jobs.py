"""Crash isolation: one worker process per notebook (``nbharden convert A B C``, ``--jobs N``).

Real processes throughout: the command line in a subprocess, notebooks recorded in real kernels,
workers killed with real signals, by a hostile notebook's own code or by the test from outside.
A few tests drive ``nbharden.cli.jobs.Runner`` directly with small work functions (also in real
worker processes) for the cases the command line cannot reach on purpose.
"""

from __future__ import annotations

import faulthandler
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbharden.cli import jobs
from nbharden.cli.convert import _died, _finish_writes
from nbharden.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_NOTEBOOK_FAILED
from nbharden.manifest import MANIFEST
from nbharden.review import JOURNAL
from nbharden.write import TMP_PREFIX

#: Tier: kernels, papermill or generated packages in subprocesses (make test-fast skips these).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "jobs"
CLI_FIXTURES = ROOT / "fixtures" / "cli"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NO_COLOR", None)
    return env


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _popen(*args: str, cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nbharden", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background (`make test &`) ignores SIGINT, and
        # Python keeps an inherited SIG_IGN, so Ctrl-C tests would never see the signal arrive
        preexec_fn=_sigint_default,
        **kwargs,  # type: ignore[call-overload]
    )


def _copy(tmp_path: Path, *names: str) -> None:
    for name in names:
        source = FIXTURES / name if (FIXTURES / name).exists() else CLI_FIXTURES / name
        shutil.copy(source, tmp_path / name)


def _big_notebook(path: Path, cells: int) -> None:
    """A notebook whose analysis takes seconds (and needs no kernel)."""
    nb = new_notebook(
        cells=[
            new_code_cell(f"v{i} = {i} * 2\nw{i} = v{i} + 1", execution_count=i + 1)
            for i in range(cells)
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    nbformat.write(nb, str(path))


# --- processes, from /proc ------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, ``None`` if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pid and st[0] not in ("Z", "X"):
                found.add(int(entry.name))
    return found


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _markers(folder: Path) -> dict[int, int]:
    """kernel pid -> pid of the process recording it, from the fixtures' ``kernel-*.pid``."""
    found = {}
    for path in folder.glob("kernel-*.pid"):
        text = path.read_text()
        if text:
            found[int(path.stem.removeprefix("kernel-"))] = int(text)
    return found


# --- a notebook that kills its worker -------------------------------------------------------------


def test_notebook_that_kills_its_worker_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    """kills_worker.ipynb's own code SIGKILLs the process recording it (its worker). Reported as
    exit 3 with what happened; the notebook after it is still converted; its kernel does not
    outlive the worker."""
    _copy(tmp_path, "kills_worker.ipynb", "quick.ipynb")
    proc = _popen(
        "convert", "kills_worker.ipynb", "quick.ipynb", "-o", "build", "--no-verify", cwd=tmp_path
    )
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == EXIT_NOTEBOOK_FAILED, stderr
    assert stderr == (
        "kills_worker.ipynb: worker process killed by SIGKILL while running the notebook "
        "(recording); nothing was written for this notebook\n"
    )
    assert re.fullmatch(
        r"quick\.ipynb -> build/quick/ \(\d+ files: \d+ new; [^)]*recorded\)\n", stdout
    )
    assert (tmp_path / "build" / "quick" / MANIFEST).is_file()
    assert not (tmp_path / "build" / "kills_worker").exists()
    markers = _markers(tmp_path)
    assert len(markers) == 1, "the notebook did not run as expected"
    (kernel,) = markers
    _wait_for(lambda: not _alive(kernel), 30, f"the orphaned kernel {kernel} to exit")


def test_worker_killed_from_outside_json_one_entry_per_notebook(tmp_path: Path) -> None:
    """--jobs 2, three notebooks: the worker recording slow.ipynb is SIGKILLed by the test while
    the notebook sleeps. JSON has one entry per notebook, in the order given; the other two are
    written; exit 3 (the worst code); the killed worker's kernel goes too."""
    _copy(tmp_path, "quick.ipynb", "slow.ipynb")
    shutil.copy(tmp_path / "quick.ipynb", tmp_path / "other.ipynb")
    proc = _popen(
        "convert",
        "quick.ipynb",
        "slow.ipynb",
        "other.ipynb",
        "-o",
        "build",
        "--no-verify",
        "--jobs",
        "2",
        "--format",
        "json",
        cwd=tmp_path,
    )
    try:
        _wait_for(lambda: bool(_markers(tmp_path)), 300, "slow.ipynb to start sleeping")
        ((kernel, worker),) = _markers(tmp_path).items()
        assert worker in _children(proc.pid), "the recording process is not a worker of the CLI"
        assert kernel in _descendants(worker)
        os.kill(worker, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_NOTEBOOK_FAILED, stderr
    message = (
        "worker process killed by SIGKILL while running the notebook (recording); "
        "nothing was written for this notebook"
    )
    assert stderr == f"slow.ipynb: {message}\n"
    results = json.loads(stdout)
    assert [r["notebook"] for r in results] == ["quick.ipynb", "slow.ipynb", "other.ipynb"]
    quick, slow, other = results
    assert slow["error"] == {
        "path": "slow.ipynb",
        "cell": None,
        "line": None,
        "col": None,
        "message": message,
        "exit_code": EXIT_NOTEBOOK_FAILED,
    }
    assert slow["written"] is False and slow["files"] == []
    for ok, name in [(quick, "quick"), (other, "other")]:
        assert ok["error"] is None and ok["written"] is True
        assert ok["tests"]["recorded"] is True
        assert (tmp_path / "build" / name / MANIFEST).is_file()
    assert not (tmp_path / "build" / "slow").exists()
    _wait_for(lambda: not _alive(kernel), 30, f"the orphaned kernel {kernel} to exit")


def test_worker_dying_outside_recording_is_an_internal_error(tmp_path: Path) -> None:
    """No notebook code runs with --no-record: a worker that dies then is nbharden's own crash
    (123, 'please report'). The other notebook is written."""
    # Bigger than the default limits allow (max-code-cells, max-syntax-nodes): raised here, so that
    # its analysis is still running when quick.ipynb is done.
    (tmp_path / "pyproject.toml").write_text(
        "[tool.nbharden]\nmax-code-cells = 100000\nmax-syntax-nodes = 10000000\n"
    )
    _big_notebook(tmp_path / "big.ipynb", 3000)
    _copy(tmp_path, "quick.ipynb")
    proc = _popen(
        "convert", "big.ipynb", "quick.ipynb", "-o", "build", "--no-record", "-j", "2", cwd=tmp_path
    )
    try:
        _wait_for(
            lambda: (tmp_path / "build/quick" / MANIFEST).exists(), 120, "quick.ipynb written"
        )
        _wait_for(lambda: len(_children(proc.pid)) == 1, 30, "quick.ipynb's worker to exit")
        assert proc.poll() is None, "big.ipynb finished too soon; make it bigger"
        (worker,) = _children(proc.pid)
        os.kill(worker, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_INTERNAL, stderr
    assert re.fullmatch(
        r"big\.ipynb: internal error \(please report\): worker process killed by SIGKILL "
        r"during (starting|load|analyse|transform|format|review); "
        r"nothing was written for this notebook\n",
        stderr,
    ), stderr
    # Results are printed in the order given, though quick.ipynb finished first.
    assert stdout.startswith("quick.ipynb -> build/quick/ (")
    assert not (tmp_path / "build" / "big").exists()


# --- order, exit codes, output ------------------------------------------------------------------


def test_order_and_worst_exit_code_with_parallel_jobs(tmp_path: Path) -> None:
    """big.ipynb finishes last but comes first; the bad notebook's exit 2 is the worst code;
    nothing but the results on stdout, no progress when stderr is not a terminal."""
    _big_notebook(tmp_path / "big.ipynb", 100)
    _copy(tmp_path, "not_json.ipynb", "quick.ipynb", "findings.ipynb")
    args = ["convert", "big.ipynb", "not_json.ipynb", "quick.ipynb", "findings.ipynb"]
    args += ["-o", "build", "--no-record", "-j", "3"]
    proc = _popen(*args, "--format", "json", cwd=tmp_path)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_BAD_INPUT, stderr
    results = json.loads(stdout)
    assert [r["notebook"] for r in results] == [
        "big.ipynb",
        "not_json.ipynb",
        "quick.ipynb",
        "findings.ipynb",
    ]
    assert [r["error"] is None for r in results] == [True, False, True, True]
    assert results[1]["error"]["exit_code"] == EXIT_BAD_INPUT
    assert stderr.startswith("not_json.ipynb: not valid notebook JSON") and "\x1b" not in stderr
    # The same in text: one summary line per good notebook, in the order given.
    proc = _popen(*args, "--check", cwd=tmp_path)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_BAD_INPUT, stderr
    summaries = [line.split(" ")[0] for line in stdout.splitlines() if " -> build/" in line]
    assert summaries == ["big.ipynb", "quick.ipynb", "findings.ipynb"]


def test_progress_only_on_a_terminal(tmp_path: Path) -> None:
    _copy(tmp_path, "quick.ipynb", "clean.ipynb")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nbharden", "convert", "quick.ipynb", "clean.ipynb"]
            + ["-o", "build", "--no-record", "-j", "2"],
            cwd=tmp_path,
            env={**_env(), "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        stdout, _ = proc.communicate(timeout=300)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    tty = b"".join(chunks).decode()
    assert proc.returncode == 0, tty
    assert re.search(r"\[[12]/2\] (quick|clean)\.ipynb: (load|analyse|transform|format)", tty)
    assert "\r\x1b[K" in tty  # the line is erased before the results
    assert "\x1b" not in stdout and "[1/2]" not in stdout


# --- interrupts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_signal_stops_every_worker(
    tmp_path: Path, sig: signal.Signals, code: int, word: str
) -> None:
    """A real SIGINT/SIGTERM to the command while two workers analyse: 130/143, one line saying
    no files changed, and no worker left running."""
    for name in ("a", "b"):
        _big_notebook(tmp_path / f"{name}.ipynb", 2000)
    proc = _popen("convert", "a.ipynb", "b.ipynb", "--no-record", "-j", "2", cwd=tmp_path)
    try:
        _wait_for(lambda: len(_children(proc.pid)) == 2, 60, "two workers")
        workers = _children(proc.pid)
        time.sleep(1.0)
        assert proc.poll() is None, "the conversion finished before the signal"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert stderr == f"{word}; no files were changed\n"
    assert stdout == ""
    assert not any(_alive(pid) for pid in workers)
    assert not (tmp_path / "a_prod").exists() and not (tmp_path / "b_prod").exists()


def test_killing_the_command_stops_its_workers(tmp_path: Path) -> None:
    """``kill -9`` of the command itself: its workers get SIGTERM from the kernel (Linux
    PR_SET_PDEATHSIG) and end; none keeps converting in the background."""
    for name in ("a", "b"):
        _big_notebook(tmp_path / f"{name}.ipynb", 2000)
    proc = _popen("convert", "a.ipynb", "b.ipynb", "--no-record", "-j", "2", cwd=tmp_path)
    try:
        _wait_for(lambda: len(_children(proc.pid)) == 2, 60, "two workers")
        workers = _children(proc.pid)
        time.sleep(0.5)
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    _wait_for(lambda: not any(_alive(pid) for pid in workers), 30, "the workers to end")
    assert not (tmp_path / "a_prod").exists() and not (tmp_path / "b_prod").exists()


# --- the runner, with small work functions in real worker processes ----------------------------


def _double(task: int, report: jobs.Report) -> int:
    report("stage", f"doubling {task}")
    if task == 3:
        os._exit(7)  # dies without a result
    if task == 4:
        raise ValueError("a bug in the work")
    if task == 5:
        return lambda: 1  # type: ignore[return-value]  # cannot be sent back
    if task == 6:
        faulthandler.disable()  # pytest's would print a traceback first
        os.kill(os.getpid(), signal.SIGSEGV)
    return task * 2


def test_runner_results_in_order_whatever_happens() -> None:
    events: list[tuple[int, str, str | None]] = []
    runner = jobs.Runner(
        [1, 2, 3, 4, 5, 6, 7],
        _double,
        jobs=3,
        on_event=lambda i, kind, value: events.append((i, kind, value)),
        preload=[],
    )
    with runner:
        results = list(runner.results())
    assert [index for index, _ in results] == list(range(7))
    values = [value for _, value in results]
    assert values[:2] == [2, 4] and values[6] == 14
    assert values[2] == jobs.Died(7, "doubling 3", None)
    assert values[2].how == "exited with code 7"
    assert (
        isinstance(values[3], jobs.Crashed)
        and "ValueError: a bug in the work" in values[3].traceback
    )
    assert isinstance(values[4], jobs.Crashed) and "pickle" in values[4].traceback.lower()
    assert values[5] == jobs.Died(-signal.SIGSEGV, "doubling 6", None)
    assert values[5].how == "killed by SIGSEGV"
    assert {(i, "start", None) for i in range(7)} <= set(events)
    assert (0, "stage", "doubling 1") in events
    assert runner.running == {}


def _where(task: str, report: jobs.Report) -> tuple[str, str | None, int]:
    umask = os.umask(0)
    os.umask(umask)
    return os.getcwd(), os.environ.get("NBHARDEN_TEST_JOBS"), umask


def test_runner_with_threads_uses_a_forkserver_that_follows_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parent with threads (the Jupyter server, some test runners) must not fork itself: the
    workers come from a forkserver, which may be older than the caller's working folder,
    environment and umask; the workers take the caller's."""
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        # Preloading this module saves each worker importing it (and nbharden with it).
        preload = ["test_jobs"]
        first = list(jobs.Runner(["a"], _where, preload=preload).results())
        assert first[0][1][0] == os.getcwd()
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("NBHARDEN_TEST_JOBS", "yes")
        old_umask = os.umask(0o027)
        try:
            results = list(jobs.Runner(["a", "b"], _where, jobs=2, preload=preload).results())
        finally:
            os.umask(old_umask)
    finally:
        stop.set()
        thread.join()
    assert [value for _, value in results] == [(str(tmp_path), "yes", 0o027)] * 2
    # The workers came from a forkserver this process started (forking it is what the threaded
    # case must avoid).
    cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in _children(os.getpid())]
    assert any(b"multiprocessing.forkserver" in c for c in cmdlines)


def _stubborn(task: str, report: jobs.Report) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    report("writing", task)
    time.sleep(60)


def test_runner_stop_escalates_to_sigkill_and_names_the_folders_being_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs, "GRACE", 0.5)
    writing: list[str | None] = []

    def on_event(index: int, kind: str, value: str | None) -> None:
        if kind == "writing":
            writing.append(value)

    runner = jobs.Runner(["out/a", "out/b"], _stubborn, jobs=2, preload=[], on_event=on_event)
    results = runner.results()
    with pytest.raises(TimeoutError):
        # Interrupt the wait for results the way a signal handler would, once both workers
        # said they are writing (starting them takes longer than a second on a loaded machine).
        def alarm(signum: int, frame: object) -> None:
            if len(writing) < 2:
                signal.setitimer(signal.ITIMER_REAL, 0.5)
                return
            raise TimeoutError

        old = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        try:
            next(results)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    pids = [run.process.pid for run in runner.running.values()]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    started = time.monotonic()
    assert sorted(runner.stop()) == ["out/a", "out/b"]
    assert time.monotonic() - started < 30
    assert not any(_alive(pid) for pid in pids)
    assert runner.stop() == []  # idempotent


def test_died_after_a_killed_write_finishes_it(tmp_path: Path) -> None:
    """A worker that died while writing: the parent finishes (commit journal) or drops (stage
    journal) its write, and says so."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.py").write_text("old\n")
    (out / f"{TMP_PREFIX}1").write_text("new\n")
    (out / JOURNAL).write_text(
        json.dumps({"version": 1, "steps": [["rename", f"{TMP_PREFIX}1", "a.py"]]})
    )
    failure = _died("nb.ipynb", jobs.Died(-signal.SIGKILL, "review", str(out)))
    assert failure.exit_code == EXIT_INTERNAL
    assert failure.line == (
        "nb.ipynb: internal error (please report): worker process killed by SIGKILL during "
        f"review; {out} was written (its interrupted write was finished)"
    )
    assert (out / "a.py").read_text() == "new\n" and not (out / JOURNAL).exists()
    (out / f"{TMP_PREFIX}2").write_text("staged\n")  # killed while staging: dropped
    (out / JOURNAL).write_text(
        json.dumps({"version": 2, "phase": "stage", "temps": [f"{TMP_PREFIX}2"], "folders": []})
    )
    assert _finish_writes([str(out)]) == [
        f"{out} holds either its old or its new files (writes are atomic)"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["a.py"]
    (out / JOURNAL).write_text("not json")
    (note,) = _finish_writes([str(out)])
    assert note.startswith(f"{out} could not be checked: ") and "unusable journal" in note


def test_died_messages() -> None:
    record = _died("nb.ipynb", jobs.Died(-signal.SIGKILL, "record", None))
    assert (record.exit_code, record.line) == (
        EXIT_NOTEBOOK_FAILED,
        "nb.ipynb: worker process killed by SIGKILL while running the notebook (recording); "
        "nothing was written for this notebook",
    )
    verify = _died("nb.ipynb", jobs.Died(1, "verify", None))
    assert verify.exit_code == EXIT_INTERNAL
    assert verify.message.endswith(
        "worker process exited with code 1 during verify; "
        "its output folder was written, its tests did not finish"
    )
    assert jobs.Died(-200, "load", None).how == "killed by signal 200"
