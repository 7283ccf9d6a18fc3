"""Rendering for the CLI: findings, summaries, diffs, annotations, tables, the progress line.

Pure string functions (easy to test) plus a small ``Progress`` writer. Nothing here imports the
library's heavy
modules; ``models`` and ``rules`` are plain dataclasses.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from nbharden.models import ChangeSet, Finding
    from nbharden.rules import Rule

_RESET = "\x1b[0m"
_STYLES = {
    "bold": "\x1b[1m",
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "cyan": "\x1b[36m",
    "dim": "\x1b[2m",
}


def color_enabled(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set non-empty (no-color.org)."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def style(text: str, name: str, enabled: bool) -> str:
    """``text`` in the ANSI style ``name`` when ``enabled``."""
    return f"{_STYLES[name]}{text}{_RESET}" if enabled else text


def colorize_diff(diff: str, enabled: bool) -> str:
    """A unified diff with bold headers, cyan hunks, red removals, green additions (if enabled)."""
    if not enabled:
        return diff
    out = []
    for line in diff.splitlines(keepends=True):
        body, end = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        if line.startswith(("+++", "---")):
            out.append(style(body, "bold", True) + end)
        elif line.startswith("@@"):
            out.append(style(body, "cyan", True) + end)
        elif line.startswith("+"):
            out.append(style(body, "green", True) + end)
        elif line.startswith("-"):
            out.append(style(body, "red", True) + end)
        else:
            out.append(line)
    return "".join(out)


def display_path(path: Path | str, *, folder: bool = False) -> str:
    """``path`` relative to the working directory if inside it, else as is; folders end in ``/``."""
    p = Path(path)
    try:
        shown = str(p.resolve().relative_to(Path.cwd().resolve())) if p.is_absolute() else str(p)
    except ValueError:
        shown = str(p)
    if folder and not shown.endswith(("/", os.sep)):
        shown += "/"
    return shown


def plural(n: int, word: str) -> str:
    """``1 finding``, ``2 findings``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def finding_line(finding: Finding, path: str) -> str:
    """``nb.ipynb:cell 3:1:5: NBH201 [*] message``; ``[*]`` marks an applied fix (as in ruff)."""
    from nbharden.cli.guard import printable

    return printable(_finding_text(finding, path))


def _finding_text(finding: Finding, path: str) -> str:
    mark = " [*]" if finding.applied else ""
    return f"{finding.location(path)}: {finding.code}{mark} {finding.message}"


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Findings in notebook order (cell, line, column), then code."""

    def key(f: Finding) -> tuple[int, int, int, str]:
        if f.span is None:
            return (0, 0, 0, f.code)
        return (f.span.cell, f.span.line, f.span.col, f.code)

    return sorted(findings, key=key)


_STATUS_ORDER = ("new", "changed", "removed", "edited", "unchanged")


def file_counts(changes: ChangeSet) -> str:
    """``5 files: 3 new, 2 changed``."""
    counts = {s: 0 for s in _STATUS_ORDER}
    for change in changes.changes:
        counts[change.status.value] = counts.get(change.status.value, 0) + 1
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    text = plural(len(changes.changes), "file")
    return f"{text}: {', '.join(parts)}" if parts else text


def summary_line(changes: ChangeSet, notebook: str, *, note: str | None = None) -> str:
    """``analysis.ipynb -> analysis_prod/ (5 files: 3 new, 2 changed; 4 findings)``.

    ``note`` is appended inside the parentheses.
    """
    n = len(changes.findings)
    parts = [file_counts(changes), plural(n, "finding") if n else "no findings"]
    tests = changes.test_results or {}
    if "returncode" in tests:
        counts = [f"{tests[k]} {k}" for k in ("passed", "skipped") if isinstance(tests.get(k), int)]
        parts.append("generated tests: " + (", ".join(counts) or "ran"))
    elif tests.get("recorded"):
        parts.append("recorded")
    sandbox = tests.get("sandbox")
    if isinstance(sandbox, dict):
        parts.append(f"sandbox: {sandbox.get('tier')}")
    if note:
        parts.append(note)
    from nbharden.cli.guard import printable

    return printable(f"{notebook} -> {display_path(changes.out, folder=True)} ({'; '.join(parts)})")


def sandbox_warnings(summary: Mapping[str, Any] | None, notebook: str) -> list[str]:
    """``nb.ipynb: warning: sandbox: ...`` for each warning of the recording's sandbox."""
    sandbox = (summary or {}).get("sandbox")
    if not isinstance(sandbox, dict):
        return []
    return [f"{notebook}: warning: sandbox: {w}" for w in sandbox.get("warnings") or []]


def check_lines(changes: ChangeSet, notebook: str) -> list[str]:
    """What ``--check`` prints for one notebook: a verdict, then one line per file to change."""
    from nbharden.cli.guard import printable

    pending = [c for c in changes.changes if c.status.value != "unchanged"]
    out = display_path(changes.out, folder=True)
    if not pending:
        return [printable(f"{notebook} -> {out}: up to date")]
    lines = [f"{notebook} -> {out}: would change {plural(len(pending), 'file')}"]
    lines += [f"  {c.status.value:<9} {c.path}" for c in pending]
    return [printable(line) for line in lines]


def fixes_footer(findings: Iterable[Finding]) -> str | None:
    """``Found 4 findings (2 fixed, 1 more fixable with --unsafe-fixes).``; ``None`` if none."""
    from nbharden.models import Fix

    items = list(findings)
    if not items:
        return None
    fixed = sum(1 for f in items if f.applied)
    unsafe = sum(1 for f in items if not f.applied and f.fix is Fix.UNSAFE)
    extra = []
    if fixed:
        extra.append(f"{fixed} fixed")
    if unsafe:
        extra.append(f"{unsafe} more fixable with --unsafe-fixes")
    return (
        f"Found {plural(len(items), 'finding')}" + (f" ({', '.join(extra)})" if extra else "") + "."
    )


def severity_footer(findings: Iterable[Finding]) -> str:
    """``Found 3 findings (1 error, 2 warnings).`` or ``No findings.``"""
    items = list(findings)
    if not items:
        return "No findings."
    counts: dict[str, int] = {}
    for f in items:
        counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
    # "info" has no plural
    parts = [
        plural(counts[s], s) if s != "info" else f"{counts[s]} info"
        for s in ("error", "warning", "info")
        if s in counts
    ]
    return f"Found {plural(len(items), 'finding')} ({', '.join(parts)})."


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def github_annotation(finding: Finding, path: str) -> str:
    """A GitHub Actions workflow command for one finding.

    ``::warning file=nb.ipynb,title=NBH201 (cell 3)::nb.ipynb:cell 3:1:5: NBH201 message``.

    No ``line=``: a line inside a cell is not a line of the ``.ipynb`` JSON file, and GitHub would
    point at the
    wrong place. The cell goes in the title and the message carries the full location instead.
    """
    level = _GITHUB_LEVEL.get(finding.severity.value, "warning")
    title = finding.code if finding.span is None else f"{finding.code} (cell {finding.span.cell})"
    props = f"file={_escape_property(path)},title={_escape_property(title)}"
    from nbharden.cli.guard import printable

    return printable(f"::{level} {props}::{_escape_data(_finding_text(finding, path))}")


def rules_table(rules: Iterable[Rule]) -> str:
    """The ``nbharden rules`` table: code, name, fix safety, summary; columns aligned."""
    rows = [("code", "name", "fix", "summary")]
    rows += [(r.code, r.name, r.fix.value, r.summary) for r in rules]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
            + "  "
            + row[3]
        )
    return "\n".join(line.rstrip() for line in lines) + "\n"


class Progress:
    """One self-overwriting status line on stderr: ``[2/3] b.ipynb: analyse``.

    Shown only on a terminal, and for a single notebook only once the work has taken longer than
    ``delay``
    seconds (so quick runs print nothing extra). Called as the library's progress callback
    ``(stage, path)``.
    """

    def __init__(
        self,
        stream: TextIO,
        total: int,
        *,
        delay: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.stream = stream
        self.total = total
        self.delay = delay
        self.clock = clock
        try:
            self.enabled = stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.color = color_enabled(stream, env)
        self.index = 0
        self.notebook = ""
        self.started = clock()
        self.shown = False

    def start(self, index: int, notebook: str) -> None:
        """Begin notebook number ``index`` (from 1)."""
        self.index = index
        self.notebook = notebook
        self("starting", Path(notebook))

    def __call__(self, stage: str, path: Path) -> None:
        if not self.enabled:
            return
        if self.total <= 1 and self.clock() - self.started < self.delay:
            return
        text = f"[{self.index}/{self.total}] {self.notebook or path}: {stage}"
        self.stream.write("\r\x1b[K" + style(text, "dim", self.color))
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the status line before anything else is printed."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def stdout() -> TextIO:
    """The current standard output, looked up at call time (test runners swap it)."""
    return sys.stdout


def stderr() -> TextIO:
    """The current standard error (looked up at call time)."""
    return sys.stderr
