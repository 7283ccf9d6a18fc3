"""Write: the only stage that touches disk.

How a change set is written (``write_changes``):

1. Lock the output folder (``flock`` on the folder itself, no lock file), finish or clean up an
   interrupted earlier write (:func:`recover`), and classify every file again against the disk right
   now (a change set can be stale: the user may have edited a file since it was reviewed).
2. Refuse before touching anything: ``WriteError`` for a path that cannot be written safely (a link
   leaving the folder, a linked or non-folder parent, a folder in the way, the notebook itself),
   even with force; ``EditedFileError`` for a hand-edited file unless ``force``.
3. Stage: every new text goes to a temp file ``.nbharden-tmp-*`` in its target's folder, written,
   fsync'ed, mode 0o644; the folders are fsync'ed. Any ``OSError`` here removes the temp files and
   the folders just created and raises ``WriteError``: the output is left exactly as it was.
4. Commit: a journal (``.nbharden-journal.json``, listing the renames and removals in order) is
   written atomically. Its appearance is the commit point. Then every temp file is renamed over its
   target (``os.replace``), removed files are deleted, the manifest is renamed last, folders are
   fsync'ed and the journal is deleted.

After a SIGKILL or power loss at any moment, the next ``write_changes`` or ``recover`` call sees
either no journal (the old files are intact; stray temp files are deleted) or a complete journal
whose temp files are all durable (it replays the remaining renames and removals). Either way the
folder then holds the old set or the new set, never a mix. Between the crash and that next call a
reader can see a mix; ``review`` reports it as ``extra["interrupted_write"]``.

Signals: SIGINT and SIGTERM that arrive while the folder is being changed (recovery, staging,
commit) are held until the write is complete, then delivered with the handlers the caller had: an
interrupted write finishes first, so Ctrl-C or ``kill`` never leaves a mix (only SIGKILL can, and
the journal takes care of that). This works in the main thread only (Python runs signal handlers
there); elsewhere the signals reach the main thread anyway.

Disk errors: a full disk (``ENOSPC``, or a quota), a read-only file system or any other ``OSError``
while staging gives ``WriteError`` (exit 2) naming the file, e.g. ``src/pkg/steps.py: no space left
on device; the output folder was left as it was``, and removes everything it created.

Links: nbharden never writes through a symbolic link. A target that is a link pointing inside the
output folder (or dangling inside it) is replaced by a regular file (the link, not its target, is
replaced, like ``os.replace`` does); a target link pointing outside the folder is refused. A parent
folder that is a link is refused even when it points back inside, so that every generated path names
exactly one file. These are checked right before staging; a concurrent attacker racing the writer
inside the output folder is out of scope.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from nbharden.errors import EditedFileError, InternalError, NbhardenError, WriteError
from nbharden.manifest import (
    MANIFEST,
    is_safe_relpath,
    manifest_files,
    parse_manifest,
    read_manifest,
)
from nbharden.models import ChangeSet, FileChange, FileStatus
from nbharden.review import JOURNAL, classify, inspect_target, prepare_files, resolve_out

#: Prefix of every temp file nbharden creates in the output folder; leftovers are deleted by the
#: next write.
TMP_PREFIX = ".nbharden-tmp-"

#: Mode of every written file.
FILE_MODE = 0o644

#: How long to wait for another nbharden process writing the same folder.
LOCK_TIMEOUT = 30.0

_JOURNAL_VERSION = 1

_EDIT_HINT = "edited since generation; use --force or move the edit into the notebook"
_GONE_HINT = (
    "edited since generation and no longer generated; use --force to delete it, or move it away"
)


def write_changes(changes: ChangeSet, *, force: bool) -> ChangeSet:
    """Write ``changes`` to ``changes.out`` atomically (see the module docstring).

    ``changes`` must be a whole change set as ``review`` returns it (every generated file, unchanged
    ones too). Returns the change set as written, with each file's status as found right before
    writing. Raises ``EditedFileError`` (with the diffs) when a file was edited by hand and not
    ``force``, and ``WriteError`` naming the path when a path is unsafe or the disk refuses (nothing
    is written then).
    """
    notebook = Path(changes.notebook)
    root = resolve_out(changes.out)
    files = _files_of(changes)
    made_root = not os.path.lexists(root)
    _make_root(root, changes.out)
    try:
        fresh = _write_locked(root, files, notebook, force=force)
    except NbhardenError:
        if made_root:  # a refusal leaves no trace, not even the empty output folder
            with contextlib.suppress(OSError):
                os.rmdir(root)
        raise
    extra = {k: v for k, v in changes.extra.items() if k not in ("blocked", "interrupted_write")}
    return dataclasses.replace(changes, changes=tuple(fresh), extra=extra)


def _write_locked(
    root: Path, files: dict[str, str], notebook: Path, *, force: bool
) -> list[FileChange]:
    """Classify, refuse or stage and commit, holding the folder's lock. Returns the changes."""
    with _locked(root), _signals_held():
        _recover(root)
        old = read_manifest(root)
        fresh, blocked = classify(files, root, notebook=notebook, old=old)
        if blocked:
            path = sorted(blocked)[0]
            more = f" (and {len(blocked) - 1} more)" if len(blocked) > 1 else ""
            raise WriteError(f"{blocked[path]}; refused to write{more}", path=path)
        edited = [c for c in fresh if c.status is FileStatus.EDITED]
        if edited and not force:
            first = edited[0]
            message = _EDIT_HINT if first.new_text is not None else _GONE_HINT
            if len(edited) > 1:
                message += (
                    f" ({len(edited) - 1} more edited: {', '.join(c.path for c in edited[1:])})"
                )
            raise EditedFileError(message, path=first.path, diff="".join(c.diff for c in edited))
        writes = [
            c
            for c in fresh
            if c.new_text is not None
            and c.status in (FileStatus.NEW, FileStatus.CHANGED, FileStatus.EDITED)
        ]
        removes = [
            c.path
            for c in fresh
            if c.new_text is None and c.status in (FileStatus.REMOVED, FileStatus.EDITED)
        ]
        if writes or removes:
            staged, created = _stage(root, writes)
            # The manifest goes last: until it is in place, review still trusts the old hashes.
            renames = sorted(staged, key=lambda pair: pair[1] == MANIFEST)
            steps: list[list[str]] = [
                ["rename", tmp, dst] for tmp, dst in renames if dst != MANIFEST
            ]
            steps += [["remove", path] for path in removes]
            steps += [["rename", tmp, dst] for tmp, dst in renames if dst == MANIFEST]
            try:
                _write_journal(root, steps)
            except OSError as exc:
                _discard(root, [tmp for tmp, _ in staged], created)
                raise WriteError(
                    f"{_failure(exc)}; the output folder was left as it was", path=JOURNAL
                ) from exc
            _apply(root, steps)
    return fresh


def recover(out: Path) -> bool:
    """Finish an interrupted write in ``out`` (replay its journal) and delete stray temp files.

    Returns whether a journal was replayed. Raises ``WriteError`` if the journal is corrupt or
    cannot be applied.
    """
    root = resolve_out(out)
    if not root.is_dir():
        return False
    with _locked(root), _signals_held():
        return _recover(root)


# --- helpers ------------------------------------------------------------------------------------


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _failure(exc: OSError) -> str:
    """What went wrong writing, for a message: the common disk conditions in plain words."""
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return "no space left on device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return f"cannot write: {_reason(exc)}"


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, then deliver them to the old handlers.

    Only in the main thread, and only for a signal whose handler can be put back (one that was
    installed from C reads as ``None`` and is left alone).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old = signal.getsignal(sig)
        if old is not None:
            previous[sig] = signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


def _files_of(changes: ChangeSet) -> dict[str, str]:
    """The generated files of ``changes`` with the manifest rebuilt.

    Raises ``InternalError`` for an incomplete change set.
    """
    files = {c.path: c.new_text for c in changes.changes if c.new_text is not None}
    # A partial change set would delete the files it lacks as "no longer generated": the manifest
    # that review put in lists them all.
    data = parse_manifest(files[MANIFEST]) if MANIFEST in files else None
    if data is None:
        raise InternalError(
            "internal error (please report): change set without a manifest", path=changes.out
        )
    missing = sorted(set(manifest_files(data)) - set(files))
    if missing:
        raise InternalError(
            "internal error (please report): change set lacks generated files: "
            + ", ".join(missing),
            path=changes.out,
        )
    return prepare_files(files, Path(changes.notebook))


def _make_root(root: Path, shown: Path) -> None:
    try:
        os.makedirs(root, exist_ok=True)
    except FileExistsError as exc:
        raise WriteError("the output folder exists and is not a folder", path=shown) from exc
    except OSError as exc:
        reason = _failure(exc).removeprefix("cannot write: ")
        raise WriteError(f"cannot create the output folder: {reason}", path=shown) from exc
    if not root.is_dir():
        raise WriteError("the output folder exists and is not a folder", path=shown)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the folder itself (the kernel releases it on any exit)."""
    if (
        sys.platform == "win32"
    ):  # pragma: no cover - no flock; a second writer is not guarded against there
        yield
        return
    import fcntl

    fd = os.open(root, os.O_RDONLY)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WriteError(
                        "another nbharden process is writing this folder; try again later",
                        path=root,
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - folders cannot be opened there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(root: Path, tmps: list[str], created: list[Path]) -> None:
    """Remove staged temp files, then the folders created for them (deepest first)."""
    for tmp in tmps:
        with contextlib.suppress(OSError):
            os.unlink(root / tmp)
    for path in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _makedirs(root: Path, folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents below ``root``; append each one to ``created``."""
    missing: list[Path] = []
    current = folder
    while current != root and not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        os.mkdir(path)
        created.append(path)


def _stage(root: Path, writes: list[FileChange]) -> tuple[list[tuple[str, str]], list[Path]]:
    """Write every new text to a durable temp file next to its target. Returns (temp, target)
    relative paths and the folders it created (parents first).

    Raises ``WriteError`` naming the target on any ``OSError``, after removing what it created.
    """
    created: list[Path] = []
    staged: list[tuple[str, str]] = []
    folders: set[Path] = set()
    current = ""
    try:
        for change in writes:
            current = change.path
            assert change.new_text is not None
            target = root / change.path
            _makedirs(root, target.parent, created)
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=target.parent)
            staged.append((Path(tmp).relative_to(root).as_posix(), change.path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(change.new_text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, FILE_MODE)  # mkstemp makes 0o600; the umask must not decide either
            folders.add(target.parent)
        current = ""
        # The journal will name these temp files: their folder entries must be durable before it is.
        for folder in sorted(folders | {p.parent for p in created}):
            _fsync_dir(folder)
    except OSError as exc:
        _discard(root, [tmp for tmp, _ in staged], created)
        raise WriteError(
            f"{_failure(exc)}; the output folder was left as it was", path=current or root
        ) from exc
    return staged, created


def _write_journal(root: Path, steps: list[list[str]]) -> None:
    """Atomically create the journal: the commit point of the write."""
    text = (
        json.dumps({"steps": steps, "version": _JOURNAL_VERSION}, indent=1, sort_keys=True) + "\n"
    )
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=root)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, root / JOURNAL)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(root)


def _apply(root: Path, steps: list[list[str]]) -> None:
    """Carry out a committed journal's steps (idempotent: a step already done is skipped), then
    delete it.

    Raises ``WriteError`` if the disk refuses; the journal then stays and the next write finishes
    the job.
    """
    folders: set[Path] = set()
    emptied: set[Path] = set()
    try:
        for step in steps:
            if step[0] == "rename":
                src, dst = root / step[1], root / step[2]
                if os.path.lexists(src):
                    os.replace(src, dst)
                    folders.add(dst.parent)
            else:
                dst = root / step[1]
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(dst)
                    folders.add(dst.parent)
                # Also when a replay finds it gone already: its folder may still need removing.
                emptied.add(dst.parent)
        # Folders left empty by a removal go too (never the output folder itself).
        for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
            while folder != root and folder.is_relative_to(root):
                try:
                    os.rmdir(folder)
                except OSError:
                    break
                folders.discard(folder)
                folder = folder.parent
                folders.add(folder)
        for folder in sorted(folders):
            if folder.is_dir():
                _fsync_dir(folder)
        os.unlink(root / JOURNAL)
        _fsync_dir(root)
    except OSError as exc:
        raise WriteError(
            f"write interrupted: {_reason(exc)}; run the conversion again to finish it", path=root
        ) from exc


def _read_journal(root: Path) -> list[list[str]] | None:
    """The journal's steps in ``root`` (``None`` if none). Raises ``WriteError`` if unusable."""
    path = root / JOURNAL
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    bad = WriteError(
        "unusable journal of an interrupted write; check the folder, then delete this file",
        path=path,
    )
    if not stat.S_ISREG(st.st_mode):
        raise bad
    try:
        data: Any = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise bad from exc
    if not isinstance(data, dict) or data.get("version") != _JOURNAL_VERSION:
        raise bad
    steps = data.get("steps")
    if not isinstance(steps, list):
        raise bad
    for step in steps:
        if not (isinstance(step, list) and all(isinstance(s, str) for s in step) and step):
            raise bad
        if step[0] == "rename" and len(step) == 3:
            tmp, dst = step[1], step[2]
            # A journal only ever renames one of our temp files over a sibling target.
            ok = (
                is_safe_relpath(tmp)
                and is_safe_relpath(dst)
                and Path(tmp).parent == Path(dst).parent
                and Path(tmp).name.startswith(TMP_PREFIX)
            )
        elif step[0] == "remove" and len(step) == 2:
            dst = step[1]
            ok = is_safe_relpath(dst)
        else:
            ok = False
        if not ok or inspect_target(root, dst, notebook=None, notebook_st=None, read=False).problem:
            raise bad
    return steps


def _recover(root: Path) -> bool:
    """Replay a pending journal, delete stray temp files (lock held). Returns if it replayed."""
    steps = _read_journal(root)
    if steps is not None:
        _apply(root, steps)
    cleaned: set[Path] = set()
    for folder, _dirs, names in os.walk(root):  # does not descend into linked folders
        for name in names:
            if name.startswith(TMP_PREFIX):
                path = Path(folder) / name
                try:
                    os.unlink(path)
                except OSError as exc:
                    raise WriteError(
                        f"cannot delete a stale temp file: {_reason(exc)}", path=path
                    ) from exc
                cleaned.add(Path(folder))
    # A folder that held nothing but temp files was made for them by the interrupted write.
    for emptied in sorted(cleaned, key=lambda p: len(p.parts), reverse=True):
        while emptied != root and emptied.is_relative_to(root):
            try:
                os.rmdir(emptied)
            except OSError:
                break
            emptied = emptied.parent
    return steps is not None
