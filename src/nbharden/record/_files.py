"""The files a recorded run reads, for the generated tests to copy into their folders (issue 13).

Loaded into the kernel by the recorder (``_recorder.py``), never imported by nbharden; standard library
only. A generated test runs in an empty folder of its own holding copies of the notebook's input files.
The Config fields nbharden lifted from literals name some of them; a file read by a path built at run
time (``os.path.join(base, "cli", "input.ipynb")``), or by a literal nbharden did not take for a path
(``pd.read_csv("./data/popularity-contest")``), is found here: ``watch`` adds an audit hook
(``sys.addaudithook``) that hears every ``open`` the notebook's cells make, through ``open``, ``io``,
``os.open`` and the libraries built on them (pandas, numpy, pickle, PIL, nbformat).

Kept: a relative path (the notebook's folder is where its relative paths start), at most ``MAX_UP``
folders above the notebook's; read: opened for reading, of a regular file that exists and was not written
earlier in the run; written: opened for writing (the generated tests check that the steps write it).
Absolute paths are used where they are, in the notebook and in its tests alike.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

#: How many ``..`` a kept path may start with: a notebook reading beside its folder, not the machine.
MAX_UP = 2
_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def reads(mode: object, flags: object) -> bool:
    """Whether an ``open`` audit event's mode (``open``) or flags (``os.open``) only read."""
    if isinstance(mode, str):
        return not any(letter in mode for letter in "wax+")
    return isinstance(flags, int) and not flags & _WRITES


def relative(path: object, start: str) -> str | None:
    """``path`` as the notebook's code named it, relative to ``start`` (the notebook's folder), or None
    when it is not a relative path of a file kept (see the module's docstring)."""
    if isinstance(path, int):  # a file descriptor
        return None
    try:
        name = os.fsdecode(path)  # type: ignore[arg-type]
    except TypeError:
        return None
    if not name or os.path.isabs(name):
        return None
    # as the code named it, from the notebook's folder: ../cli/input.ipynb stays so even inside cli/,
    # where a test's folder (named otherwise) needs the same path
    here = os.path.relpath(os.getcwd(), start)
    kept = os.path.normpath(os.path.join(here, name)).replace(os.sep, "/")
    parts = kept.split("/")
    ups = len(parts) - len([p for p in parts if p != ".."])
    return kept if ups <= MAX_UP and ups < len(parts) else None


def watch(current: Callable[[], int | None], record: Callable[[str, int, str], None]) -> None:
    """Call ``record("read", cell, path)`` once per file a cell reads, ``record("write", cell, path)``
    once per file a cell writes (``current()``: the cell running, None between the notebook's cells).
    Errors are swallowed: the notebook's run never fails for this."""
    start = os.getcwd()
    written: set[str] = set()
    seen: set[str] = set()
    busy = [False]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event != "open" or busy[0]:
            return
        busy[0] = True
        try:
            cell = current()
            path = None if cell is None else relative(args[0], start)
            if cell is None or path is None:
                return
            if not reads(args[1], args[2]):
                if path not in written:
                    written.add(path)
                    record("write", cell, path)
            elif path not in written and path not in seen and os.path.isfile(os.path.join(start, path)):
                seen.add(path)
                record("read", cell, path)
        except Exception:  # noqa: BLE001, S110 - the hook must never break an open
            pass
        finally:
            busy[0] = False

    sys.addaudithook(hook)
