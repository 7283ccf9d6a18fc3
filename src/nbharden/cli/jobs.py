"""Worker processes for the CLI: one process per notebook, at most ``jobs`` at a time.

Each notebook is converted in a process of its own, so that a notebook that kills its worker (a
crash, the out-of-memory killer, a notebook whose code kills the process recording it, a
``kill -9``) costs that one notebook: it comes back as :class:`Died`, saying what the worker was
doing, and the other notebooks go on. Results are handed back in input order, whatever order the
workers finish in.

On Linux the command line forks its workers after importing the library once, so a worker is
ready in milliseconds (see :func:`_context` for the other cases). A worker

- takes the caller's environment, working folder and umask (a forkserver may be older than them);
- starts a session of its own, so that Ctrl-C at the terminal reaches only the parent, which stops
  the workers itself (:meth:`Runner.stop`: SIGTERM, then SIGKILL after a grace period);
- is sent SIGTERM when its parent dies (Linux), so that no worker outlives a killed command;
- has its stdout sent to stderr: nothing a library or a notebook prints can mix into the command's
  own stdout (a JSON document, a patch);
- reports through a pipe: ``report(kind, value)`` events while it works, then its result.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: ``report(kind, value)``: what a worker tells its parent while it works.
Report = Callable[[str, str | None], None]

#: How long stopped workers get to finish (a write in progress, a kernel shutdown) before SIGKILL.
GRACE = 5.0

#: Modules the forkserver imports once, so that each worker starts with them loaded.
PRELOAD = [
    "nbharden.api",
    "nbharden.load",
    "nbharden.analyse",
    "nbharden.plan",
    "nbharden.emit",
    "nbharden.fmt",
    "nbharden.review",
    "nbharden.write",
    "nbharden.settings",
    "nbharden.cli.convert",
]
#: Also preloaded when the notebooks will be run (papermill takes seconds to import).
PRELOAD_RECORD = ["nbharden.record", "nbharden.testgen", "papermill"]


@dataclass(frozen=True)
class Died:
    """A worker that ended without handing back a result."""

    exitcode: int  # negative: killed by that signal
    stage: str  # the last stage it reported
    writing: str | None  # the output folder it was writing, if it was

    @property
    def how(self) -> str:
        """``killed by SIGKILL`` or ``exited with code 1``."""
        if self.exitcode < 0:
            try:
                name = signal.Signals(-self.exitcode).name
            except ValueError:
                name = f"signal {-self.exitcode}"
            return f"killed by {name}"
        return f"exited with code {self.exitcode}"


@dataclass(frozen=True)
class Crashed:
    """A worker whose work raised (a bug in it) or whose result could not be sent."""

    traceback: str


@dataclass
class _Running:
    index: int
    process: Any  # multiprocessing's process object (its class depends on the context)
    conn: Connection
    stage: str = "starting"
    writing: str | None = None
    result: Any = None
    has_result: bool = False
    open: bool = True


@dataclass
class Runner(Generic[T, R]):
    """Run ``work(task, report)`` for every task in worker processes; iterate for the results.

    ``on_event(index, kind, value)`` is called in the parent for every event a worker reports and
    with ``("start", None)`` when a worker starts. A ``("stage", name)`` event is remembered as the
    stage a dead worker was in, ``("writing", out)`` / ``("written", out)`` mark the folder it was
    writing. Use as a context manager: leaving it stops every worker still running.
    """

    tasks: Sequence[T]
    work: Callable[[T, Report], R]
    jobs: int = 1
    on_event: Callable[[int, str, str | None], None] = lambda index, kind, value: None
    preload: Sequence[str] = field(default_factory=lambda: list(PRELOAD))
    running: dict[int, _Running] = field(default_factory=dict)

    def __enter__(self) -> Runner[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def results(self) -> Iterator[tuple[int, R | Died | Crashed]]:
        """(index, result, ``Died`` or ``Crashed``) for every task, in input order."""
        ctx = _context(self.preload)
        waiting = list(range(len(self.tasks)))
        done: dict[int, R | Died | Crashed] = {}
        following = 0
        env = dict(os.environ)
        umask = os.umask(0)
        os.umask(umask)
        cwd = os.getcwd()
        while following < len(self.tasks):
            while waiting and len(self.running) < max(1, self.jobs):
                index = waiting.pop(0)
                try:
                    self.running[index] = self._start(ctx, index, env, umask, cwd)
                except OSError as exc:  # no more processes, no memory to fork...
                    done[index] = Crashed(f"cannot start a worker process: {exc}")
                    continue
                self.on_event(index, "start", None)
            if self.running:
                self._poll(done, timeout=None)
            while following in done:
                yield following, done.pop(following)
                following += 1

    def stop(self) -> list[str]:
        """Stop every running worker: SIGTERM, then SIGKILL after ``GRACE`` seconds.

        Returns the output folders that stopped workers were writing (each holds its old or its
        new files: writes are atomic; the caller may finish them with ``nbharden.write.recover``).
        """
        if not self.running:
            return []
        for run in self.running.values():
            _signal(run.process, signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        ignored: dict[int, R | Died | Crashed] = {}
        while self.running and time.monotonic() < deadline:
            self._poll(ignored, timeout=max(0.0, deadline - time.monotonic()), stopping=True)
        writing = [run.writing for run in self.running.values() if run.writing is not None]
        writing += [d.writing for d in ignored.values() if isinstance(d, Died) and d.writing]
        for run in self.running.values():
            _signal(run.process, signal.SIGKILL)
            run.process.join()
            run.conn.close()
        self.running.clear()
        return writing

    # --- parent side ----------------------------------------------------------------------------

    def _start(self, ctx: Any, index: int, env: dict[str, str], umask: int, cwd: str) -> _Running:
        reader, writer = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_worker_main,
            args=(writer, self.work, self.tasks[index], env, umask, cwd),
            name=f"nbharden-worker-{index + 1}",
            daemon=True,
        )
        # multiprocessing re-runs the parent's __main__ in every child (a script, a console entry
        # point, even "<stdin>"); the work is never there, so let the child skip it.
        for stream in (sys.stdout, sys.stderr):  # a forked child must not print them again
            try:
                stream.flush()
            except (OSError, ValueError):  # pragma: no cover - closed
                pass
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            sys.modules["__main__"] = main
            writer.close()  # the worker holds the only writer: its death is EOF here
        return _Running(index, process, reader)

    def _poll(
        self, done: dict[int, R | Died | Crashed], timeout: float | None, stopping: bool = False
    ) -> None:
        """Wait for events or exits; move finished workers' results into ``done``."""
        runs = list(self.running.values())
        handles: list[Any] = [r.conn for r in runs if r.open] + [r.process.sentinel for r in runs]
        ready = set(wait(handles, timeout))
        for run in runs:
            if run.open and run.conn in ready:
                self._receive(run, stopping)
            if run.process.sentinel in ready:
                while run.open:  # what it sent before exiting
                    self._receive(run, stopping)
                run.process.join()
                run.conn.close()
                del self.running[run.index]
                if run.has_result:
                    done[run.index] = run.result
                else:
                    done[run.index] = Died(run.process.exitcode or 0, run.stage, run.writing)

    def _receive(self, run: _Running, stopping: bool) -> None:
        try:
            kind, value = run.conn.recv()
        except (EOFError, OSError):  # closed, or cut off in the middle of a message
            run.open = False
            return
        except Exception:  # noqa: BLE001 - a garbled message: the worker is as good as dead
            run.open = False
            return
        if kind == "result":
            run.result, run.has_result = value, True
            return
        if kind == "stage":
            run.stage = value or run.stage
            if stopping:
                return  # no more progress display once stopping
        elif kind == "writing":
            run.writing = value
        elif kind == "written":
            run.writing = None
        self.on_event(run.index, kind, value)


def _context(preload: Sequence[str]) -> Any:
    """How to start workers, with the ``preload`` modules imported once for all of them.

    On Linux, from a single-threaded parent (the command line): *fork*, after importing the
    modules here; nothing else starts, and a worker is ready in milliseconds. From a parent with
    threads (forking it could copy a lock some thread holds): a *forkserver* that imports them.
    Elsewhere: *spawn*, each worker importing what it needs.
    """
    if sys.platform.startswith("linux"):
        if threading.active_count() == 1:
            for name in preload:
                try:
                    importlib.import_module(name)
                except ImportError:  # pragma: no cover - an optional extra missing
                    pass
            return multiprocessing.get_context("fork")
        ctx = multiprocessing.get_context("forkserver")  # pragma: no cover - threads (tests)
        ctx.set_forkserver_preload(list(preload))  # pragma: no cover
        return ctx  # pragma: no cover
    return multiprocessing.get_context("spawn")  # pragma: no cover - not Linux


def _signal(process: Any, signum: int) -> None:
    if process.pid is not None and process.exitcode is None:
        try:
            os.kill(process.pid, signum)
        except ProcessLookupError:  # pragma: no cover - exited in between
            pass


# --- worker side --------------------------------------------------------------------------------


def _worker_main(
    conn: Connection,
    work: Callable[[T, Report], R],
    task: T,
    env: dict[str, str],
    umask: int,
    cwd: str,
) -> None:  # pragma: no cover - runs in the worker process (the tests see its effects)
    """The worker process: set itself up, run ``work`` and send its result, then exit."""
    from nbharden.cli.guard import Terminated

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, terminate)
    parent = os.getppid()
    _detach()
    if os.getppid() != parent:  # the parent died before the death signal was set up
        os._exit(1)
    os.environ.clear()
    os.environ.update(env)
    os.umask(umask)
    os.chdir(cwd)

    def report(kind: str, value: str | None = None) -> None:
        conn.send((kind, value))

    code = 1  # unless a result was sent
    try:
        result: Any = work(task, report)
        try:
            conn.send(("result", result))
        except Exception:  # noqa: BLE001 - e.g. a result that does not pickle
            import traceback

            conn.send(("result", Crashed(traceback.format_exc())))
        code = 0
    except (Terminated, KeyboardInterrupt, BrokenPipeError):
        pass  # stopped by the parent, or the parent is gone: end quietly
    except Exception:  # noqa: BLE001 - a bug in work(): reported as an internal error
        import traceback

        try:
            conn.send(("result", Crashed(traceback.format_exc())))
            code = 0
        except Exception:  # noqa: BLE001
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        # Not a normal exit: threads a library left running (a kernel client's) must not hold
        # the worker up. No signal handler may run any more (a coverage tool's os._exit runs
        # Python code).
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        os._exit(code)


def _detach() -> None:  # pragma: no cover - runs in the worker process
    """Own session, SIGTERM on the parent's death, stdout to stderr."""
    if hasattr(os, "setsid"):
        try:
            os.setsid()
        except OSError:
            pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
    try:
        os.dup2(2, 1)  # no flush: a forked child's buffers are its parent's (flushed before)
    except OSError:
        pass
