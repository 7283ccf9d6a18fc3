"""The values a review produces: per notebook what changed in behaviour, in code, in findings, and its state.

The renderers (``nbharden.prreview.render``) turn a :class:`ReviewReport` into Markdown, SARIF, JUnit XML,
JSON and GitHub workflow annotations; none of them computes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbharden.behaviour import BehaviourDiff
from nbharden.errors import EXIT_CHANGES, EXIT_OK
from nbharden.models import Finding


@dataclass(frozen=True)
class FileDiff:
    """One generated file that differs between base and head: ``status`` "added", "removed" or "changed"."""

    path: str
    status: str
    diff: str


@dataclass(frozen=True)
class CodeDiff:
    """The generated package's code diff with the noise filtered out.

    ``files`` are the reviewable files (code, tests, pyproject); the recorded data is summarised as counts
    (``data``: "added", "removed", "changed" -> number of value files; the index counts as changed when it
    differs) and the manifest only by whether it changed (its hashes follow every other file).
    """

    files: tuple[FileDiff, ...] = ()
    data: dict[str, int] = field(default_factory=dict)
    manifest_changed: bool = False

    @property
    def empty(self) -> bool:
        return not self.files and not any(self.data.values()) and not self.manifest_changed

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [{"path": f.path, "status": f.status, "diff": f.diff} for f in self.files],
            "data": dict(self.data),
            "manifest_changed": self.manifest_changed,
        }


@dataclass(frozen=True)
class TestReport:
    """The generated tests run at head: pytest's counts, its last line, and its JUnit XML."""

    __test__ = False  # not a pytest test class

    passed: bool
    counts: dict[str, int]
    summary: str
    junit: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.passed, "counts": dict(self.counts), "summary": self.summary}


@dataclass(frozen=True)
class NotebookReview:
    """The review of one notebook and its committed package (paths relative to the repository).

    ``behaviour`` is None when there is nothing to compare (the base had no recorded suite, or no package);
    ``in_sync`` whether the committed package is what converting the notebook gives (``convert --check``),
    with the files that differ in ``out_of_sync``; ``error`` says why the review of this notebook stopped
    (then ``exit_code`` is that error's).
    """

    notebook: str
    package: str
    recorded: bool = False
    new_package: bool = False
    behaviour: BehaviourDiff | None = None
    code: CodeDiff = field(default_factory=CodeDiff)
    findings: tuple[Finding, ...] = ()  # at head
    new_findings: tuple[Finding, ...] = ()
    resolved_findings: tuple[Finding, ...] = ()
    in_sync: bool | None = None
    out_of_sync: tuple[str, ...] = ()
    tests: TestReport | None = None
    error: str | None = None
    error_code: int = EXIT_OK
    # per cell (index 0: cell 1), the line of the .ipynb file where its source starts (for SARIF, annotations)
    cell_lines: tuple[int, ...] = ()

    def cell_line(self, cell: int, line: int = 1) -> int:
        """The line of the notebook file holding line ``line`` of cell ``cell``; 1 when unknown."""
        if 1 <= cell <= len(self.cell_lines) and self.cell_lines[cell - 1] > 0:
            return self.cell_lines[cell - 1] + max(line, 1) - 1
        return 1

    @property
    def behaviour_changed(self) -> bool:
        return self.behaviour is not None and self.behaviour.changed

    def headline(self) -> str:
        """What this notebook's change did, in one line."""
        if self.error:
            return f"review failed: {self.error}"
        if self.new_package:
            return "new package: no base recording to compare with"
        if self.behaviour is None:
            return "behaviour not recorded (the base package has no recorded suite)"
        return self.behaviour.headline()

    def exit_code(self, fail_on_change: bool) -> int:
        """0, or 1 when out of sync, the tests fail or (``fail_on_change``) behaviour changed; an error's own."""
        if self.error:
            return self.error_code
        if self.in_sync is False or (self.tests is not None and not self.tests.passed):
            return EXIT_CHANGES
        if fail_on_change and self.behaviour_changed:
            return EXIT_CHANGES
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "package": self.package,
            "headline": self.headline(),
            "recorded": self.recorded,
            "new_package": self.new_package,
            "behaviour": self.behaviour.to_json() if self.behaviour else None,
            "code": self.code.to_json(),
            "findings": {
                "head": [f.to_json(self.notebook) for f in self.findings],
                "new": [f.to_json(self.notebook) for f in self.new_findings],
                "resolved": [f.to_json(self.notebook) for f in self.resolved_findings],
            },
            "in_sync": self.in_sync,
            "out_of_sync": list(self.out_of_sync),
            "tests": self.tests.to_json() if self.tests else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class ReviewReport:
    """A review of the notebooks under some paths, from ``base`` (a commit) to the current tree."""

    base: str  # as asked (``origin/main``) or how it was found (``merge-base of HEAD and origin/main``)
    base_sha: str
    head_sha: str
    notebooks: tuple[NotebookReview, ...]
    fail_on_change: bool = False

    def headline(self) -> str:
        """The report's first line: the behaviour of one notebook, or each notebook's in turn."""
        if not self.notebooks:
            return "no notebook with a generated package under the given paths"
        if len(self.notebooks) == 1:
            return self.notebooks[0].headline()
        changed = [n for n in self.notebooks if n.behaviour_changed or n.error]
        if not changed:
            return f"no behaviour change in {len(self.notebooks)} notebooks"
        return "; ".join(f"{n.notebook}: {n.headline()}" for n in changed)

    @property
    def exit_code(self) -> int:
        return max((n.exit_code(self.fail_on_change) for n in self.notebooks), default=EXIT_OK)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "base_sha": self.base_sha,
            "head_sha": self.head_sha,
            "headline": self.headline(),
            "exit_code": self.exit_code,
            "notebooks": [n.to_json() for n in self.notebooks],
        }
