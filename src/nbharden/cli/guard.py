"""The one place where the CLI turns exceptions into exit codes and messages.

Commands run each notebook inside ``Batch.item`` so that one bad notebook is reported and the
others still run;
the batch exit code is the worst one seen. Interrupts (Ctrl-C, SIGTERM) stop the batch and say what
was written.

Exit codes (docs/cli.md): 0 ok, 1 changes needed / edited file / verification failed / findings
(analyze), 2 usage
or bad input, 3 notebook failed to run, 123 internal error, 130 interrupted, 143 terminated.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from nbharden.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    NbhardenError,
)

INTERNAL_PREFIX = "internal error (please report): "


#: Control characters (all but the tab): shown escaped, so that a file name or an argument holding
#: an escape sequence cannot recolour the terminal, move its cursor or break a one-line message.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character but the tab written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def real_path(path: Path) -> Path:
    """``path`` absolute with its links resolved as far as they go: a link loop does not raise (it
    is reported when the file is opened, see ``check_notebook``)."""
    return Path(os.path.realpath(path))


def check_notebook(path: Path, *, inside: str = "files") -> None:
    """Raise ``InputError`` (exit 2, one line) unless ``path`` names a file that can be opened: it
    is missing, a symbolic link loop, a folder (``inside``: what to pass instead), or cannot be
    looked at."""
    from nbharden.errors import InputError

    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            message = "no such file"
        elif exc.errno == errno.ELOOP:
            message = "symbolic link loop (too many levels of symbolic links)"
        else:
            message = f"cannot open: {exc.strerror}"
        raise InputError(message, path=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(
            f"is a folder, not a notebook; pass the .ipynb {inside} inside it", path=path
        )


#: Set once an interrupt has been reported, so ``main()`` does not report it twice.
interrupt_reported = False


class Terminated(BaseException):
    """Raised by ``main()``'s SIGTERM handler, so a batch stops cleanly as on Ctrl-C."""


@dataclass(frozen=True)
class Failure:
    """What the user is told about one exception: exit code, the one-line message, and details."""

    exit_code: int
    line: str  # the one line printed to stderr
    message: str  # the message without its location
    path: str | None
    cell: int | None = None
    line_no: int | None = None
    col: int | None = None
    diff: str = ""

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "path": self.path,
            "cell": self.cell,
            "line": self.line_no,
            "col": self.col,
            "message": self.message,
            "exit_code": self.exit_code,
        }
        if self.diff:
            data["diff"] = self.diff
        return data


def describe(exc: BaseException, *, path: Path | str | None = None) -> Failure:
    """Map any exception to its ``Failure``: an ``NbhardenError`` keeps its exit code.

    Anything else is internal (123), except interrupts (130, 143) and exhausted recursion or
    memory (2).

    ``path`` names the notebook being worked on, used when the exception does not name a file
    itself.
    """
    from nbharden.errors import BehaviourChangedError, EditedFileError, InternalError

    if isinstance(exc, NbhardenError):
        message = exc.message
        if isinstance(exc, InternalError) and INTERNAL_PREFIX not in message:
            message = INTERNAL_PREFIX + message
        where = exc.path if exc.path is not None else path
        located = NbhardenError(
            message, path=where, cell=exc.cell, line=exc.line, col=exc.col
        ).format()
        return Failure(
            exit_code=exc.exit_code,
            line=located,
            message=message,
            path=str(where) if where is not None else None,
            cell=exc.cell,
            line_no=exc.line,
            col=exc.col,
            diff=exc.diff if isinstance(exc, (EditedFileError, BehaviourChangedError)) else "",
        )
    if isinstance(exc, Terminated):
        return Failure(EXIT_TERMINATED, "terminated", "terminated", None)
    if isinstance(exc, KeyboardInterrupt):
        return Failure(EXIT_INTERRUPTED, "interrupted", "interrupted", None)
    if isinstance(exc, RecursionError):
        message = "refused: input nested too deeply to process"
        code = EXIT_BAD_INPUT
    elif isinstance(exc, MemoryError):
        message = "out of memory"
        code = EXIT_BAD_INPUT
    else:
        message = f"{INTERNAL_PREFIX}{type(exc).__name__}: {exc}"
        code = EXIT_INTERNAL
    line = f"{path}: {message}" if path is not None else message
    return Failure(code, line, message, str(path) if path is not None else None)


@dataclass
class Batch:
    """Runs the notebooks of one command, reports failures on stderr, keeps the worst code."""

    debug: bool = False
    err: TextIO = field(default_factory=lambda: sys.stderr)
    exit_code: int = EXIT_OK
    failures: dict[str, Failure] = field(default_factory=dict)  # notebook as given -> its failure
    written: list[str] = field(default_factory=list)  # output folders fully written
    writing: str | None = None  # output folder being written right now
    before_output: list[Callable[[], None]] = field(
        default_factory=list
    )  # run before printing (clears progress)

    def record(self, code: int) -> None:
        """Remember an exit code; the batch exits with the largest (123 > 3 > 2 > 1 > 0)."""
        self.exit_code = max(self.exit_code, code)

    def fail(self, exc: BaseException, notebook: str | None) -> Failure:
        """Report ``exc`` on stderr (traceback only with --debug) and record its exit code."""
        text = "".join(traceback.format_exception(exc)) if self.debug else ""
        return self.report(describe(exc, path=notebook), notebook, text)

    def report(
        self,
        failure: Failure,
        notebook: str | None,
        traceback_text: str = "",
        *,
        has_traceback: bool = True,
    ) -> Failure:
        """Report a failure already described (e.g. by a worker process), like ``fail``.

        ``has_traceback=False``: there is none to show (a worker that died), so no --debug hint.
        """
        self._clear()
        if traceback_text:
            self.err.write(traceback_text)
        hint = ""
        if failure.exit_code == EXIT_INTERNAL and not self.debug and has_traceback:
            hint = " (run again with --debug for the traceback)"
        print(printable(failure.line) + hint, file=self.err)
        if failure.diff:
            self.err.write(failure.diff if failure.diff.endswith("\n") else failure.diff + "\n")
        if notebook is not None:
            self.failures[notebook] = failure
        self.record(failure.exit_code)
        return failure

    @contextmanager
    def item(self, notebook: str) -> Iterator[None]:
        """Run one notebook's work: an error is reported and recorded, and the batch goes on."""
        try:
            yield
        except (KeyboardInterrupt, Terminated):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure of one notebook is reported, the batch goes on
            self.fail(exc, notebook)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Turn Ctrl-C / SIGTERM into exit 130 / 143 and say what was (not) written."""
        try:
            yield
        except (KeyboardInterrupt, Terminated) as exc:
            global interrupt_reported
            interrupt_reported = True
            failure = describe(exc)
            self._clear()
            if self.debug:
                traceback.print_exception(exc, file=self.err)
            print(printable(f"{failure.line}; {self._written_note()}"), file=self.err)
            self.exit_code = failure.exit_code

    def _written_note(self) -> str:
        if self.writing is None and not self.written:
            return "no files were changed"
        parts = []
        if self.written:
            parts.append("written before the interrupt: " + ", ".join(self.written))
        if self.writing is not None:
            parts.append(f"stopped while writing: {self.writing}")
        return "; ".join(parts) + "; nothing else was changed"

    def _clear(self) -> None:
        for fn in self.before_output:
            fn()
