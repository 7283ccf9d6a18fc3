"""One exception tree for everything nbharden refuses or fails at.

The library raises these; only the CLI (``nbharden.cli``) maps them to exit codes and prints them. Each error knows
where it happened (``path[:cell N[:line:col]]``) so that every message a user sees points at the notebook.
"""

from __future__ import annotations

from pathlib import Path

#: Exit codes, the documented contract (docs/cli.md, README).
EXIT_OK = 0
EXIT_CHANGES = (
    1  # --check found changes, a generated file was edited by hand, verification failed, or writing
    # without recording would remove a recorded suite
)
EXIT_BAD_INPUT = 2  # usage error or bad input
EXIT_NOTEBOOK_FAILED = 3  # the notebook failed when run (recording)
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_INTERNAL = 123


def location(
    path: Path | str, cell: int | None = None, line: int | None = None, col: int | None = None
) -> str:
    """Format ``path[:cell N[:line:col]]``; cells are counted from 1 like Jupyter shows them."""
    text = str(path)
    if cell is not None:
        text += f":cell {cell}"
        if line is not None:
            text += f":{line}"
            if col is not None:
                text += f":{col}"
    return text


class NbhardenError(Exception):
    """Base of every error nbharden raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code: int = EXIT_INTERNAL

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        cell: int | None = None,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.cell = cell
        self.line = line
        self.col = col
        super().__init__(self.format())

    def format(self) -> str:
        """The one-line message: ``path:cell N:line:col: message``."""
        if self.path is None:
            return self.message
        return f"{location(self.path, self.cell, self.line, self.col)}: {self.message}"


class InputError(NbhardenError):
    """The input cannot be used: not a notebook, bad JSON, schema violation, syntax error, unsupported kernel."""

    exit_code = EXIT_BAD_INPUT


class UsageError(NbhardenError):
    """The call itself is wrong: bad option combination, bad configuration value."""

    exit_code = EXIT_BAD_INPUT


class WriteError(NbhardenError):
    """The output could not be written (read-only target, full disk, a link leaving the output folder)."""

    exit_code = EXIT_BAD_INPUT


class EditedFileError(NbhardenError):
    """A generated file was edited by hand since it was generated; writing it would lose that edit."""

    exit_code = EXIT_CHANGES

    def __init__(self, message: str, *, path: Path | str | None = None, diff: str = "") -> None:
        self.diff = diff
        super().__init__(message, path=path)


class BehaviourChangedError(NbhardenError):
    """A conversion would change the recorded behaviour (results, step outputs) and the change was not
    accepted (``convert --accept-changes``). ``diff`` is the behaviour diff as text."""

    exit_code = EXIT_CHANGES

    def __init__(self, message: str, *, path: Path | str | None = None, diff: str = "") -> None:
        self.diff = diff
        super().__init__(message, path=path)


class RecordedSuiteError(NbhardenError):
    """Writing would replace a recorded test suite by a static one (a conversion that did not run the notebook)."""

    exit_code = EXIT_CHANGES


class CancelledError(NbhardenError):
    """The caller cancelled a run (the Lab's Cancel button); the kernel was stopped and nothing was written."""

    exit_code = EXIT_INTERRUPTED


class VerificationError(NbhardenError):
    """Generated code failed its own checks (re-parse, formatting changed the AST, not idempotent)."""

    exit_code = EXIT_CHANGES


class ExecutionError(NbhardenError):
    """The notebook failed when it was run (recording)."""

    exit_code = EXIT_NOTEBOOK_FAILED


class InternalError(NbhardenError):
    """A bug in nbharden. The CLI prints ``internal error (please report): ...``."""

    exit_code = EXIT_INTERNAL
