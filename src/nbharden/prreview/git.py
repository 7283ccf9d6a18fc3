"""The git operations of ``nbharden review``: revisions, file lists and temporary worktrees.

Everything reads the repository or works in worktrees under a temporary folder; nothing here changes the
checkout's files, its index or its branches (``git worktree add`` records the temporary worktree under
``.git/worktrees`` until it is removed again).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nbharden.errors import UsageError

#: Branches tried, in order, as "the default branch" when ``origin/HEAD`` names none.
DEFAULT_BRANCHES = ("origin/main", "origin/master", "main", "master")


def git(root: Path, *args: str, check: bool = True) -> str:
    """``git -C root args...``'s stdout. Raises ``UsageError`` with git's message when it fails."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
    except FileNotFoundError as exc:
        raise UsageError("git is not installed; nbharden review needs it") from exc
    if check and proc.returncode != 0:
        message = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["failed"]
        raise UsageError(f"git {' '.join(args[:2])}: {message[0]}", path=root)
    return proc.stdout


def repo_root(start: Path) -> Path:
    """The top folder of the git work tree holding ``start``. Raises ``UsageError`` outside one."""
    folder = start if start.is_dir() else start.parent
    try:
        return Path(git(folder, "rev-parse", "--show-toplevel").strip())
    except UsageError as exc:
        raise UsageError(
            "not inside a git repository; nbharden review compares git revisions", path=start
        ) from exc


def rev_sha(root: Path, rev: str) -> str:
    """The commit ``rev`` names. Raises ``UsageError`` for an unknown revision."""
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except UsageError:
        raise UsageError(f"--base {rev}: no such revision in this repository", path=root) from None


def default_base(root: Path) -> tuple[str, str]:
    """(name, commit) of the default base: the merge base of HEAD with the default branch (``origin/HEAD``,
    else the first of ``DEFAULT_BRANCHES`` that exists). Raises ``UsageError`` when there is none.
    """
    names = []
    head_ref = git(root, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False).strip()
    if head_ref:
        names.append(head_ref.removeprefix("refs/remotes/"))
    names += DEFAULT_BRANCHES
    for name in names:
        if git(root, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False).strip():
            base = git(root, "merge-base", "HEAD", name, check=False).strip()
            if base:
                return f"merge-base of HEAD and {name}", base
    raise UsageError(
        "no default branch to compare with (origin/HEAD, main or master); pass --base REV",
        path=root,
    )


def files_at(root: Path, rev: str | None, name: str) -> list[str]:
    """Repository-relative paths of the files called ``name`` at ``rev`` (None: the working tree, tracked
    files and untracked ones that are not ignored)."""
    if rev is None:
        out = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    else:
        out = git(root, "ls-tree", "-r", "-z", "--name-only", rev)
    paths = [p for p in out.split("\0") if p]
    return sorted({p for p in paths if p.rsplit("/", 1)[-1] == name})


def changed_files(root: Path) -> tuple[list[str], list[str]]:
    """(present, deleted): the working tree's files that differ from HEAD (modified, added, untracked but
    not ignored) and those deleted, repository-relative."""
    out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    present: list[str] = []
    deleted: list[str] = []
    for entry in out.split("\0"):
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        (deleted if "D" in status else present).append(path)
    return present, deleted


@contextlib.contextmanager
def worktree(root: Path, rev: str, *, with_changes: bool = False) -> Iterator[Path]:
    """A temporary detached worktree of ``rev``; with ``with_changes``, the checkout's uncommitted changes
    (modified, new and deleted files) copied over it, so that it holds the current tree. Removed on exit.
    """
    tmp = Path(tempfile.mkdtemp(prefix="nbharden-review-"))
    path = tmp / "tree"
    git(root, "worktree", "add", "--detach", "--quiet", str(path), rev)
    try:
        if with_changes:
            present, deleted = changed_files(root)
            for rel in present:
                source, target = root / rel, path / rel
                if source.is_file() and not source.is_symlink():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
            for rel in deleted:
                (path / rel).unlink(missing_ok=True)
        yield path
    finally:
        git(root, "worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        git(root, "worktree", "prune", check=False)
