"""Watching a recording from a front end: progress per cell of each run, and a way to stop it.

    >>> cancel = Cancel()
    >>> watch = RunWatch(on_cell=lambda p: print(f"run {p.run}: cell {p.position} of {p.total}"), cancel=cancel)
    >>> api.convert(path, settings, watch=watch)   # from a worker thread; cancel.cancel() from another one

``Cancel.cancel()`` kills the kernels of the runs in progress at once (their whole process group) and makes the
next stage boundary raise ``CancelledError``; the run that was stopped raises it too, instead of "the kernel
died".
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nbharden.errors import CancelledError


@dataclass(frozen=True)
class CellProgress:
    """A cell of a recorded run has started.

    ``run`` counts from 1 up to ``runs`` (the runs planned so far: a third one is added when two runs
    disagree); ``cell`` is the notebook's cell number (from 1, as nbharden's messages count them);
    ``position`` counts the cells this run executes, up to ``total``; ``elapsed``: seconds since the run
    started its kernel.
    """

    run: int
    runs: int
    cell: int
    position: int
    total: int
    elapsed: float

    def to_json(self) -> dict[str, object]:
        return {
            "run": self.run,
            "runs": self.runs,
            "cell": self.cell,
            "position": self.position,
            "total": self.total,
            "elapsed": round(self.elapsed, 3),
        }


class Cancel:
    """A cancellation shared between the thread running a conversion and the one that stops it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._kills: dict[int, Callable[[], None]] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Stop: kill every registered process now; later checks raise ``CancelledError``."""
        with self._lock:
            self._event.set()
            kills = list(self._kills.values())
        for kill in kills:
            kill()

    def check(self, path: Path | str | None = None) -> None:
        """Raise ``CancelledError`` (naming ``path``) once cancelled."""
        if self.cancelled:
            raise CancelledError("cancelled; nothing was written", path=path)

    def on_cancel(self, kill: Callable[[], None]) -> Callable[[], None]:
        """Call ``kill`` on cancel (at once when already cancelled); returns the function that forgets it."""
        with self._lock:
            key = self._next
            self._next += 1
            self._kills[key] = kill
            late = self._event.is_set()
        if late:
            kill()

        def forget() -> None:
            with self._lock:
                self._kills.pop(key, None)

        return forget


def kill_process_group(pid: int) -> Callable[[], None]:
    """A function that SIGKILLs ``pid``'s process group (a kernel starts its own session) and ``pid``."""

    def kill() -> None:
        for how in (os.killpg, os.kill):
            with contextlib.suppress(OSError):
                how(pid, signal.SIGKILL)

    return kill


def _ignore(progress: CellProgress) -> None:
    return None


@dataclass(frozen=True)
class RunWatch:
    """What a front end hands down to the recorder: ``on_cell`` before each cell of each run (from the thread
    that runs the conversion), and the ``cancel`` that stops it."""

    on_cell: Callable[[CellProgress], None] = _ignore
    cancel: Cancel | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.cancelled

    def check(self, path: Path | str | None = None) -> None:
        if self.cancel is not None:
            self.cancel.check(path)
