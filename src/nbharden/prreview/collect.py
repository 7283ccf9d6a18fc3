"""``nbharden review``: what a change to a repository's notebooks did, from a base revision to the current tree.

For each notebook whose generated package is in the repository (found by the package's ``.nbharden.json``):

1. two temporary git worktrees: the base revision, and HEAD with the checkout's uncommitted changes copied
   over it (the current tree). The checkout itself is only read.
2. In the head worktree the package is generated again (recorded when the base package has a recorded suite;
   the notebook runs there, in its own folder of that worktree) and compared with the committed package:
   the ``convert --check`` verdict.
3. The behaviour diff from the base package's recording (its committed ``tests/data``) to the new one
   (``nbharden.behaviour``); the code diff of the package without the noise; the findings new and resolved
   (static analysis on both sides, so that like is compared with like).
4. The generated tests run at head (the new package written into the head worktree), with JUnit XML.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from nbharden import api
from nbharden.behaviour import DATA, INDEX, compare, snapshot_in, snapshot_of_files, tolerances_from
from nbharden.errors import EXIT_CHANGES, NbhardenError, UsageError, VerificationError
from nbharden.manifest import MANIFEST, parse_manifest, read_manifest
from nbharden.models import ChangeSet, FileChange, FileStatus, Finding
from nbharden.prreview import git
from nbharden.prreview.report import CodeDiff, FileDiff, NotebookReview, ReviewReport, TestReport
from nbharden.settings import Settings, load_settings


@dataclass(frozen=True)
class ReviewRequest:
    """What to review: notebooks (or folders holding them, or their packages) under ``paths``, from ``base``
    (a revision; None: the merge base of HEAD with the default branch) to the current tree.

    ``overrides`` are settings given on the command line (``sandbox``, ...), over ``[tool.nbharden]``;
    ``run_tests``: run the generated tests at head.
    """

    paths: tuple[Path, ...] = (Path("."),)
    base: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    run_tests: bool = True
    fail_on_change: bool = False


@dataclass(frozen=True)
class Package:
    """A generated package in the repository and its notebook (repository-relative POSIX paths)."""

    notebook: str
    package: str


def _noop(stage: str, path: Path) -> None:
    return None


def review_changes(request: ReviewRequest, progress: api.Progress = _noop) -> ReviewReport:
    """Review the notebooks ``request`` names. Writes nothing in the checkout.

    Raises ``UsageError`` outside a git repository or for an unknown base; a notebook whose review fails
    (it does not run, it is not a notebook) is reported in its ``NotebookReview.error``.
    """
    paths = tuple(Path(p).absolute() for p in request.paths) or (Path.cwd(),)
    root = git.repo_root(paths[0])
    if request.base is None:
        base_name, base_sha = git.default_base(root)
    else:
        base_name, base_sha = request.base, git.rev_sha(root, request.base)
    head_sha = git.rev_sha(root, "HEAD")
    wanted = [_relative(root, p) for p in paths]
    with (
        git.worktree(root, base_sha) as base_tree,
        git.worktree(root, "HEAD", with_changes=True) as head,
    ):
        packages = find_packages(base_tree, head, wanted)
        reviews = tuple(_review_one(p, base_tree, head, request, progress) for p in packages)
    return ReviewReport(base_name, base_sha, head_sha, reviews, request.fail_on_change)


def _relative(root: Path, path: Path) -> str:
    resolved = path.resolve()
    real_root = root.resolve()
    if not resolved.is_relative_to(real_root):
        raise UsageError(f"{path} is outside the repository at {root}")
    rel = resolved.relative_to(real_root).as_posix()
    return "" if rel == "." else rel


def find_packages(base: Path, head: Path, wanted: list[str]) -> list[Package]:
    """The packages (folders with a manifest, at base or head) whose notebook or folder is under ``wanted``."""
    # a package deleted at head is not reviewed: there is no behaviour left to compare
    manifests = set(git.files_at(head, None, MANIFEST))
    packages = []
    for manifest in sorted(manifests):
        folder = str(PurePosixPath(manifest).parent)
        notebook = _notebook_of(folder, head) or _notebook_of(folder, base)
        if notebook is None:
            continue
        if any(_under(notebook, w) or _under(folder, w) for w in wanted):
            packages.append(Package(notebook, folder))
    return packages


def _under(path: str, folder: str) -> bool:
    return not folder or path == folder or path.startswith(folder.rstrip("/") + "/")


def _notebook_of(package: str, tree: Path) -> str | None:
    """The notebook a package was generated from, in ``tree``: the manifest names its file name; the default
    layout (``<stem>_prod`` next to it) first, else the notebook of that name nearest to the package.
    """
    try:
        data = parse_manifest((tree / package / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    name = (data or {}).get("notebook", {}).get("name")
    if not isinstance(name, str) or "/" in name or not name.endswith(".ipynb"):
        return None
    folder = PurePosixPath(package)
    beside = folder.parent / name
    if folder.name == f"{name[: -len('.ipynb')]}_prod" and (tree / beside).is_file():
        return beside.as_posix()
    candidates = git.files_at(tree, None, name)
    if not candidates:
        return None
    return max(candidates, key=lambda c: (_shared(c, package), -len(c)))


def _shared(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("/"), b.split("/"), strict=False):
        if x != y:
            break
        n += 1
    return n


def _review_one(
    package: Package, base: Path, head: Path, request: ReviewRequest, progress: api.Progress
) -> NotebookReview:
    """Review one notebook; an ``NbhardenError`` on the way becomes the review's ``error``."""
    base_out, head_out = base / package.package, head / package.package
    in_base = (base_out / MANIFEST).is_file()
    recorded = ((base_out if in_base else head_out) / DATA / "recording.json").is_file()
    notebook = head / package.notebook
    if not notebook.is_file():
        return NotebookReview(
            package.notebook,
            package.package,
            recorded,
            error=f"{package.notebook} was deleted but its package {package.package} was not",
            error_code=EXIT_CHANGES,
        )
    try:
        settings = load_settings(notebook.parent, **request.overrides)
        settings = settings.replace(out=head_out, record=recorded, verify=False, force=True)
        settings = settings.replace(parameters=_parameters(settings, head_out, base_out))
        changes = api.convert(notebook, settings, progress)
        review = _compare(
            package, changes, base, head, settings, in_base=in_base, recorded=recorded
        )
        review = dataclasses.replace(
            review, cell_lines=cell_lines(notebook.read_text(encoding="utf-8"))
        )
        if request.run_tests:
            review = _with_tests(review, changes, settings, notebook, head, progress)
        return review
    except NbhardenError as exc:
        shown = str(exc).replace(str(head) + "/", "").replace(str(base) + "/", "")
        return NotebookReview(
            package.notebook, package.package, recorded, error=shown, error_code=exc.exit_code
        )


def _compare(
    package: Package,
    changes: ChangeSet,
    base: Path,
    head: Path,
    settings: Settings,
    *,
    in_base: bool,
    recorded: bool,
) -> NotebookReview:
    base_out = base / package.package
    files = {c.path: c.new_text for c in changes.changes if c.new_text is not None}
    behaviour = None
    if in_base and recorded:
        old, new = snapshot_in(base_out), snapshot_of_files(files)
        if old is not None and new is not None:
            behaviour = compare(old, new, tolerances_from(settings))
    committed = _text(head / package.package / MANIFEST)
    stale = tuple(
        c.path
        for c in changes.changes
        if c.status is not FileStatus.UNCHANGED and not _same_manifest(c, committed)
    )
    new_findings, resolved = _findings_delta(
        package, base, head, settings, changes, in_base, recorded
    )
    return NotebookReview(
        package.notebook,
        package.package,
        recorded=recorded,
        new_package=not in_base,
        behaviour=behaviour,
        code=code_diff(_package_files(base_out) if in_base else {}, files, package.package),
        findings=changes.findings,
        new_findings=new_findings,
        resolved_findings=resolved,
        in_sync=not stale,
        out_of_sync=stale,
    )


def _parameters(settings: Settings, *outs: Path) -> tuple[tuple[str, str], ...]:
    """The parameters to record with: ``[tool.nbharden]``'s, then those the committed package was recorded
    with (``convert -p``, kept in its ``tests/data/recording.json``; the head's, else the base's), so that the
    package regenerates as it was made."""
    merged = dict(settings.parameters)
    for out in outs:
        text = _text(out / DATA / "recording.json")
        try:
            recorded = json.loads(text)["parameters"] if text is not None else None
        except (ValueError, KeyError, TypeError):
            recorded = None
        if isinstance(recorded, dict):
            for name, value in recorded.items():
                # as ``-p`` gives them: papermill's typing reads repr's True, None, 3, 0.25 back
                plain = value is None or isinstance(value, (bool, int, float))
                merged[str(name)] = (
                    value if isinstance(value, str) else repr(value) if plain else json.dumps(value)
                )
            break
    return tuple(merged.items())


def _same_manifest(change: FileChange, committed: str | None) -> bool:
    """A manifest that differs from the committed one only in how the notebook was run (``recording``: the
    sandbox tier) and with which settings (``generation``: the no-change re-run's key, which holds the review's
    own settings, e.g. ``--sandbox``): the package is the same whether the review ran the notebook in a sandbox
    or not.
    """
    if change.path != MANIFEST or change.new_text is None or committed is None:
        return False
    new, old = parse_manifest(change.new_text), parse_manifest(committed)
    if new is None or old is None:
        return False
    for entry in ("recording", "generation"):
        new.pop(entry, None)
        old.pop(entry, None)
    return new == old


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _package_files(out: Path) -> dict[str, str]:
    """The files a committed package's manifest lists, and the manifest, as text."""
    names = [*(read_manifest(out) or {}), MANIFEST]
    files = {}
    for name in names:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            files[name] = (out / name).read_text(encoding="utf-8")
    return files


def _findings_delta(
    package: Package,
    base: Path,
    head: Path,
    settings: Settings,
    changes: ChangeSet,
    in_base: bool,
    recorded: bool,
) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """(new, resolved) findings: static analysis of the notebook at base and at head, matched by rule and
    message (a finding whose cell moved is the same finding)."""
    static = settings.replace(record=False)
    head_findings = (
        api.generate(head / package.notebook, static).findings if recorded else changes.findings
    )
    base_notebook = base / package.notebook
    base_findings: tuple[Finding, ...] = ()
    if base_notebook.is_file():
        base_settings = load_settings(base_notebook.parent).replace(
            out=base / package.package, record=False, verify=False
        )
        try:
            base_findings = api.generate(base_notebook, base_settings).findings
        except NbhardenError:
            base_findings = ()  # a base that does not convert: everything at head counts as new
    return _minus(head_findings, base_findings), _minus(base_findings, head_findings)


def _minus(a: tuple[Finding, ...], b: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """The findings of ``a`` that ``b`` does not have, as a multiset over (code, message)."""
    left = Counter((f.code, f.message) for f in b)
    out = []
    for finding in a:
        key = (finding.code, finding.message)
        if left[key]:
            left[key] -= 1
        else:
            out.append(finding)
    return tuple(out)


def code_diff(base: Mapping[str, str], head: Mapping[str, str], prefix: str = "") -> CodeDiff:
    """The package's code diff from ``base`` to ``head`` (path -> text): unified diffs of the reviewable
    files, counts for the recorded data, and only whether the manifest changed."""
    data = {"added": 0, "removed": 0, "changed": 0, "index": 0}
    files = []
    for path in sorted(set(base) | set(head)):
        old, new = base.get(path), head.get(path)
        if old == new or path == MANIFEST:
            continue
        if path.startswith(DATA + "/"):
            if path == INDEX:
                data["index"] += 1
            else:  # value files are named by their content: a value that changed is removed and added
                data["added" if old is None else "removed" if new is None else "changed"] += 1
            continue
        status = "added" if old is None else "removed" if new is None else "changed"
        where = f"{prefix}/{path}" if prefix else path
        lines = difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            f"a/{where}" if old is not None else "/dev/null",
            f"b/{where}" if new is not None else "/dev/null",
        )
        files.append(FileDiff(path, status, "".join(lines)))
    manifest = base.get(MANIFEST) != head.get(MANIFEST)
    return CodeDiff(tuple(files), {k: v for k, v in data.items() if v}, manifest)


def _with_tests(
    review: NotebookReview,
    changes: ChangeSet,
    settings: Settings,
    notebook: Path,
    head: Path,
    progress: api.Progress,
) -> NotebookReview:
    """``review`` with the generated tests run at head (the package written into the head worktree)."""
    progress("test", notebook)
    written = api.write(changes, settings)
    python = (changes.test_results or {}).get("python")
    with _junit_file() as junit:
        try:
            result = api.run_tests(
                written.out,
                python=python if isinstance(python, str) else None,
                settings=settings,
                notebook=notebook,
                junit=junit,
            )
            passed, summary = True, str(result.get("summary", ""))
            counts = {k: v for k, v in result.items() if isinstance(v, int) and k != "returncode"}
        except VerificationError as exc:
            passed, summary, counts = False, exc.message, {}
        text = junit.read_text(encoding="utf-8") if junit.is_file() else ""
    text = text.replace(
        str(head) + "/", ""
    )  # the worktree is temporary: name files as the repository does
    if not counts and text:
        counts = _junit_counts(text)
    return dataclasses.replace(review, tests=TestReport(passed, counts, summary, text))


@contextlib.contextmanager
def _junit_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nbharden-junit-") as tmp:
        yield Path(tmp) / "junit.xml"


def _junit_counts(text: str) -> dict[str, int]:
    """passed/failed/skipped/errors from a JUnit XML text (pytest's)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return {}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {
        k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")
    }
    passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    counts = {"passed": passed, "failed": total["failures"], "errors": total["errors"]}
    counts["skipped"] = total["skipped"]
    return {k: v for k, v in counts.items() if v}


def cell_lines(text: str) -> tuple[int, ...]:
    """Per cell, the line of the notebook's JSON text where its source starts (``"source": [`` is followed by
    one line per source line, as nbformat writes); () when the text is laid out otherwise."""
    lines = text.splitlines()
    keys = [i for i, line in enumerate(lines) if re.match(r'\s*"cell_type":', line)]
    if not keys:
        return ()
    indent = len(lines[keys[0]]) - len(lines[keys[0]].lstrip())
    pattern = re.compile(" " * indent + r'"source": (\[|")')
    starts = []
    for i, line in enumerate(lines):
        match = pattern.match(line)
        if match:  # 1-based; an array's first item is on the next line
            starts.append(i + (2 if match.group(1) == "[" else 1))
    return tuple(starts) if len(starts) == len(keys) else ()
