"""Write: the only stage that touches disk.

How a change set is written (``write_changes``):

1. Check the output folder: it is resolved again (links followed) and must be the folder that was
   pinned before the notebook ran (``pin_out``; a recording that replaced it with a link is
   refused), it is not ``/`` or the home folder, and it is new, empty or holds a manifest.
2. Lock it: an exclusive ``flock`` on the folder and a shared one on each of its parent folders
   (taken from ``/`` down), so that a write into ``P`` and one into ``P/sub`` take turns while
   writes into sibling folders run side by side. Then finish or roll back an interrupted earlier
   write of this folder (its journal, see below) and classify every file again against the disk
   right now (a change set can be stale: the user may have edited a file since it was reviewed).
3. Refuse before touching anything: ``WriteError`` for a path that cannot be written safely (a link
   leaving the folder, a linked or non-folder parent, a folder in the way, the notebook itself, a
   file that no manifest lists as generated), even with force; ``EditedFileError`` for a file
   nbharden generated that was edited by hand, unless ``force``.
4. Stage: the journal ``.nbharden-journal.json`` is first written in its *stage* phase, naming
   every temp file and every folder the write will create. Then each new text goes to its temp
   file ``.nbharden-tmp-<target id>-<random>`` in its target's folder, written, fsync'ed, mode
   0o644; the folders are fsync'ed. Any ``OSError`` here removes the temp files and the folders
   just created, and the journal, and raises ``WriteError``: the output is left exactly as it was.
5. Commit: the journal is replaced (atomically) by its *commit* phase, listing the renames and
   removals in order. That replacement is the commit point. Then every temp file is renamed over
   its target (``os.replace``), removed files are deleted, the manifest is renamed last, folders
   are fsync'ed and the journal is deleted.

After a SIGKILL or power loss at any moment, the next ``write_changes`` or ``recover`` call on the
same folder finds no journal (the old files are intact), a stage journal (it deletes exactly the
temp files and folders it names: the old files are intact) or a commit journal whose temp files
are all durable (it replays the remaining renames and removals). Either way the folder then holds
the old set or the new set, never a mix. Between the crash and that next call a reader can see a
mix; ``review`` reports it as ``extra["interrupted_write"]``.

Ownership: a writer deletes only what a journal of its own folder names (its own temp files, or
those of a dead writer of the same folder: the lock proves it is dead) and its own journal's temp
file. It never looks for temp files elsewhere: no walk of the folder, nothing of a nested output
folder, nothing of another program. A refused write deletes nothing but such leftovers.

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
inside the output folder is out of scope. The output folder itself may be a link the user made
before the conversion started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import secrets
import signal
import stat
import sys
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
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

#: Prefix of every temp file nbharden creates in the output folder. A writer deletes only those a
#: journal of its own folder names.
TMP_PREFIX = ".nbharden-tmp-"

#: The journal's own temp file: one fixed name per output folder, only ever written under its lock.
JOURNAL_TMP = TMP_PREFIX + "journal"

#: Mode of every written file.
FILE_MODE = 0o644

#: How long to wait for another nbharden process writing the same folder (or one around it).
LOCK_TIMEOUT = 30.0

#: 2: a stage phase, then a commit phase. A version 1 journal (commit steps only, written by an
#: older nbharden) is still replayed.
_JOURNAL_VERSION = 2

_EDIT_HINT = "edited since generation; use --force or move the edit into the notebook"
_GONE_HINT = (
    "edited since generation and no longer generated; use --force to delete it, or move it away"
)
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class OutPin:
    """Where an output folder led before the notebook ran (see ``pin_out``)."""

    out: Path  # as given
    root: Path  # with every link resolved


def pin_out(out: Path) -> OutPin:
    """Remember where ``out`` leads now. ``write_changes(..., pin=...)`` refuses to write when it
    leads elsewhere by then: code run in between (the recording) replaced it with a link.

    Raises ``WriteError`` for a symbolic link loop.
    """
    return OutPin(Path(out), _resolved(Path(out)))


def check_pin(pin: OutPin, *, writing: bool = True) -> None:
    """Raise ``WriteError`` when ``pin.out`` no longer leads where it led when it was pinned (code
    run in between replaced it with a link); ``writing`` only words the refusal."""
    root = _resolved(pin.out)
    if root != pin.root:
        raise _redirected(pin.out.absolute(), root, writing=writing)


def check_out(out: Path, *, writing: bool = True) -> None:
    """Refuse an output folder nbharden must not use, before any work is done.

    Always: a symbolic link loop. When ``writing``: ``/``, the home folder, something that is not a
    folder, a folder holding files but no manifest (they are not nbharden's). Reads only the
    folder's own entries. Raises ``WriteError`` naming ``out``; ``write_changes`` checks all of it
    again under its lock.
    """
    root = _resolved(Path(out))
    if writing:
        problem = _root_problem(root) or _folder_problem(root, early=True)
        if problem is not None:
            raise WriteError(problem, path=Path(out).absolute())


def write_changes(
    changes: ChangeSet,
    *,
    force: bool,
    pin: OutPin | None = None,
    keep: Collection[str] = (),
    overwrite: Collection[str] = (),
) -> ChangeSet:
    """Write ``changes`` to ``changes.out`` atomically (see the module docstring).

    ``changes`` must be a whole change set as ``review`` returns it (every generated file, unchanged
    ones too). ``pin``: where the output folder led before the notebook ran; the write is refused
    when it leads elsewhere now. Returns the change set as written, with each file's status as found
    right before writing. Raises ``EditedFileError`` (with the diffs) when a file was edited by hand
    and not ``force``, and ``WriteError`` naming the path when a path or the folder is unsafe or the
    disk refuses (nothing is written then).
    Per hand-edited file (as found under the lock), ``keep`` leaves it as it is (the manifest still
    names what nbharden generated, so it stays hand-edited) and ``overwrite`` replaces it without
    ``force``.
    """
    notebook = Path(changes.notebook)
    shown = Path(changes.out).absolute()
    root = _resolved(Path(changes.out))
    if pin is not None and root != pin.root:
        raise _redirected(shown, root)
    problem = _root_problem(root)
    if problem is not None:
        raise WriteError(problem, path=shown)
    files = _files_of(changes)
    made_root = not os.path.lexists(root)
    _make_root(root, shown)
    try:
        fresh = _write_locked(
            Path(changes.out), root, files, notebook, force=force, keep=keep, overwrite=overwrite
        )
    except NbhardenError:
        if made_root:  # a refusal leaves no trace, not even the empty output folder
            with contextlib.suppress(OSError):
                os.rmdir(root)
        raise
    extra = {k: v for k, v in changes.extra.items() if k not in ("blocked", "interrupted_write")}
    return dataclasses.replace(changes, changes=tuple(fresh), extra=extra)


def _write_locked(
    out: Path,
    root: Path,
    files: dict[str, str],
    notebook: Path,
    *,
    force: bool,
    keep: Collection[str] = (),
    overwrite: Collection[str] = (),
) -> list[FileChange]:
    """Check, classify, refuse or stage and commit, holding the folder's lock. Returns the
    changes."""
    shown = out.absolute()
    with _locked(root), _signals_held():
        if resolve_out(out) != root:  # replaced between the first check and the lock
            raise _redirected(shown, resolve_out(out))
        _finish(root)
        problem = _folder_problem(root, early=False)
        if problem is not None:
            raise WriteError(problem, path=shown)
        old = read_manifest(root)
        fresh, blocked = classify(files, root, notebook=notebook, old=old)
        if blocked:
            path = sorted(blocked)[0]
            more = f" (and {len(blocked) - 1} more)" if len(blocked) > 1 else ""
            raise WriteError(f"{blocked[path]}; refused to write{more}", path=path)
        kept = {c.path for c in fresh if c.status is FileStatus.EDITED and c.path in keep}
        edited = [
            c
            for c in fresh
            if c.status is FileStatus.EDITED and c.path not in kept and c.path not in overwrite
        ]
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
            and c.path not in kept
        ]
        removes = [
            c.path
            for c in fresh
            if c.new_text is None
            and c.status in (FileStatus.REMOVED, FileStatus.EDITED)
            and c.path not in kept
        ]
        if writes or removes:
            _commit(root, writes, removes)
    return fresh


def recover(out: Path) -> bool:
    """Finish an interrupted write in ``out`` (replay its commit journal) or roll it back (delete
    the temp files and folders its stage journal names).

    Returns whether a journal was replayed. Raises ``WriteError`` if the journal is corrupt or
    cannot be applied.
    """
    root = resolve_out(out)
    if not root.is_dir():
        return False
    with _locked(root), _signals_held():
        return _finish(root)


# --- the output folder ---------------------------------------------------------------------------


def _resolved(out: Path) -> Path:
    """``out`` resolved (see ``resolve_out``). Raises ``WriteError`` for a symbolic link loop."""
    try:
        os.stat(out)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise WriteError(
                "symbolic link loop (too many levels of symbolic links) in the output folder's "
                "path",
                path=out.absolute(),
            ) from None
    return resolve_out(out)


def _root_problem(root: Path) -> str | None:
    """Why nbharden must never write into the resolved folder ``root`` (``/``, the home folder)."""
    if root == Path(root.anchor):
        return "refusing to write into the file system root; choose a folder of its own"
    home = os.path.expanduser("~")
    if home != "~" and root == resolve_out(Path(home)):
        return "refusing to write into the home folder; choose a folder of its own"
    return None


def _folder_problem(root: Path, *, early: bool) -> str | None:
    """Why nbharden must not write into the resolved folder ``root`` as it is now: not a folder,
    an unusable manifest, or files but no manifest. ``None`` when it may (also when it does not
    exist). ``early``: a pending journal means nbharden's own interrupted write, checked again
    once it is finished.
    """
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        blocking = next(p for p in reversed(root.parents) if not os.path.isdir(p))
        return f"cannot create the output folder: {blocking.name} is not a folder"
    except OSError as exc:
        return f"cannot inspect the output folder: {exc.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return "the output folder exists and is not a folder"
    if os.path.lexists(root / MANIFEST):
        if read_manifest(root) is None:
            return (
                f"the output folder's manifest {MANIFEST} is damaged or from a newer nbharden; "
                "move the folder away or choose another output folder"
            )
        return None
    if early and os.path.lexists(root / JOURNAL):
        return None
    try:
        with os.scandir(root) as entries:
            names = sorted(e.name for e in entries if not _ours(root, e))
    except OSError as exc:
        return f"cannot list the output folder: {exc.strerror}"
    if names:
        return (
            f"the output folder holds files nbharden did not generate ({names[0]}) and no "
            f"manifest {MANIFEST}; choose a new or empty folder"
        )
    return None


def _ours(root: Path, entry: os.DirEntry[str]) -> bool:
    """Whether an entry of a folder without a manifest is nbharden's: its journal (or the
    journal's temp file), or a nested output folder (a real folder holding a manifest)."""
    if entry.name in (JOURNAL, JOURNAL_TMP):
        return True
    return entry.is_dir(follow_symlinks=False) and os.path.lexists(root / entry.name / MANIFEST)


def _redirected(shown: Path, now: Path, *, writing: bool = True) -> WriteError:
    refused = "refused to write" if writing else "refused to compare with it"
    return WriteError(
        f"the output folder now leads to {now}: it was replaced (by a link) while the notebook "
        f"ran; {refused}",
        path=shown,
    )


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
    """Hold an exclusive ``flock`` on ``root`` and a shared one on each of its parents, taken from
    ``/`` down (the kernel releases them on any exit).

    So a writer of ``P`` and one of ``P/sub`` take turns (the second needs a shared lock on ``P``)
    while writers of siblings do not wait for each other. A parent that cannot be opened (no read
    permission) is skipped.
    """
    if sys.platform == "win32":  # pragma: no cover - no flock; writers are not serialised there
        yield
        return
    import fcntl

    fds: list[int] = []
    deadline = time.monotonic() + LOCK_TIMEOUT
    try:
        for folder in reversed(root.parents):
            try:
                fd = os.open(folder, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                continue
            fds.append(fd)
            _flock(fd, fcntl.LOCK_SH, deadline, root)
        fds.append(os.open(root, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
        _flock(fds[-1], fcntl.LOCK_EX, deadline, root)
        yield
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _flock(fd: int, kind: int, deadline: float, root: Path) -> None:
    """``flock(fd, kind)``, retrying until ``deadline``; then ``WriteError``."""
    import fcntl

    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise WriteError(
                    "another nbharden process is writing this folder (or one around it); "
                    "try again later",
                    path=root,
                ) from None
            time.sleep(0.02)


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
    shown = Path(changes.out).absolute()
    if data is None:
        raise InternalError(
            "internal error (please report): change set without a manifest", path=shown
        )
    missing = sorted(set(manifest_files(data)) - set(files))
    if missing:
        raise InternalError(
            "internal error (please report): change set lacks generated files: "
            + ", ".join(missing),
            path=shown,
        )
    return prepare_files(files, Path(changes.notebook))


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - folders cannot be opened there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _target_id(root: Path) -> str:
    """A short id of the output folder, in its temp files' names (for whoever finds one)."""
    return hashlib.sha256(os.fsencode(root)).hexdigest()[:8]


# --- stage and commit ----------------------------------------------------------------------------


def _commit(root: Path, writes: list[FileChange], removes: list[str]) -> None:
    """Stage ``writes``, commit the journal, apply it (lock held)."""
    staged, created, tmps = _stage(root, writes)
    # The manifest goes last: until it is in place, review still trusts the old hashes.
    renames = sorted(staged, key=lambda pair: pair[1] == MANIFEST)
    steps: list[list[str]] = [["rename", tmp, dst] for tmp, dst in renames if dst != MANIFEST]
    steps += [["remove", path] for path in removes]
    steps += [["rename", tmp, dst] for tmp, dst in renames if dst == MANIFEST]
    try:
        for tmp, _dst in staged:  # all still ours and in place (nobody else deletes them)
            os.lstat(root / tmp)
        _write_journal(root, {"phase": "commit", "steps": steps})
    except OSError as exc:
        _discard(root, tmps, created)
        raise WriteError(
            f"{_failure(exc)}; the output folder was left as it was", path=JOURNAL
        ) from exc
    _apply(root, steps)


def _discard(root: Path, tmps: list[Path], created: list[Path]) -> None:
    """Remove the temp files this write made, then the folders it created (deepest first), then
    its stage journal."""
    for tmp in tmps:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    for path in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(path)
    with contextlib.suppress(OSError):
        os.unlink(root / JOURNAL)
        _fsync_dir(root)


def _missing_folders(root: Path, folder: PurePosixPath, planned: list[str]) -> None:
    """Append the folders from ``root`` down to ``folder`` that do not exist (and are not in
    ``planned`` yet) to ``planned``, parents first."""
    missing: list[str] = []
    current = folder
    while current != PurePosixPath(".") and not os.path.lexists(root / current):
        missing.append(current.as_posix())
        current = current.parent
    for rel in reversed(missing):
        if rel not in planned:
            planned.append(rel)


def _write_temp(path: Path, text: str) -> None:
    """Create ``path`` (it must not exist), write ``text`` durably, mode ``FILE_MODE``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
            if sys.platform != "win32":
                os.fchmod(fh.fileno(), FILE_MODE)  # the umask must not decide
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)  # created just now, by this call
        raise


def _stage(
    root: Path, writes: list[FileChange]
) -> tuple[list[tuple[str, str]], list[Path], list[Path]]:
    """Name every temp file and new folder in a stage journal, then write every new text to its
    durable temp file next to its target.

    Returns (temp, target) relative paths, the folders created (parents first) and the temp files
    created. Raises ``WriteError`` naming the target on any ``OSError``, after removing what it
    created and the journal.
    """
    tid = _target_id(root)
    staged: list[tuple[str, str]] = []
    planned: list[str] = []
    for change in writes:
        parent = PurePosixPath(change.path).parent
        _missing_folders(root, parent, planned)
        name = f"{TMP_PREFIX}{tid}-{secrets.token_hex(8)}"
        staged.append(((parent / name).as_posix(), change.path))
    try:
        _write_journal(
            root, {"phase": "stage", "temps": [t for t, _ in staged], "folders": planned}
        )
    except OSError as exc:
        raise WriteError(
            f"{_failure(exc)}; the output folder was left as it was", path=JOURNAL
        ) from exc
    created: list[Path] = []
    tmps: list[Path] = []
    current = ""
    try:
        for rel in planned:
            current = rel
            os.mkdir(root / rel)
            created.append(root / rel)
        for (tmp, dst), change in zip(staged, writes, strict=True):
            current = dst
            assert change.new_text is not None
            _write_temp(root / tmp, change.new_text)
            tmps.append(root / tmp)
        current = ""
        # The commit journal will name these temp files: their folder entries must be durable
        # before it is.
        for folder in sorted({(root / t).parent for t, _ in staged} | {p.parent for p in created}):
            _fsync_dir(folder)
    except OSError as exc:
        _discard(root, tmps, created)
        raise WriteError(
            f"{_failure(exc)}; the output folder was left as it was", path=current or root
        ) from exc
    return staged, created, tmps


def _write_journal(root: Path, data: dict[str, Any]) -> None:
    """Atomically create or replace the journal (through ``JOURNAL_TMP``)."""
    text = json.dumps({**data, "version": _JOURNAL_VERSION}, indent=1, sort_keys=True) + "\n"
    tmp = root / JOURNAL_TMP
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _OPEN_FLAGS, FILE_MODE)
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


# --- recovery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Journal:
    """A journal as read back: ``commit`` (``steps`` to replay) or ``stage`` (``temps`` and
    ``folders`` to delete)."""

    phase: str
    steps: list[list[str]]
    temps: list[str]
    folders: list[str]


def _plain_folders(root: Path, rel: str) -> bool:
    """Whether every existing folder on the way from ``root`` to ``root/rel`` (``rel`` included)
    is a real folder, not a link: deleting something there cannot reach outside ``root``."""
    current = root
    for part in rel.split("/"):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            return False
    return True


def _step_ok(root: Path, step: Any) -> bool:
    """Whether a commit step is one nbharden writes: a rename of one of its temp files over a
    sibling target, or a removal, through no linked folder."""
    if not (isinstance(step, list) and step and all(isinstance(s, str) for s in step)):
        return False
    if step[0] == "rename" and len(step) == 3:
        tmp, dst = step[1], step[2]
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
        return False
    return ok and not inspect_target(root, dst, notebook=None, notebook_st=None, read=False).problem


def _stage_ok(root: Path, temps: Any, folders: Any) -> bool:
    """Whether a stage journal names only temp files and folders nbharden creates, through no
    linked folder."""
    if not (isinstance(temps, list) and isinstance(folders, list)):
        return False
    for tmp in temps:
        if not (
            isinstance(tmp, str)
            and is_safe_relpath(tmp)
            and PurePosixPath(tmp).name.startswith(TMP_PREFIX)
            and _plain_folders(root, PurePosixPath(tmp).parent.as_posix())
        ):
            return False
    return all(
        isinstance(f, str) and is_safe_relpath(f) and _plain_folders(root, f) for f in folders
    )


def _read_journal(root: Path) -> _Journal | None:
    """The journal in ``root`` (``None`` if none). Raises ``WriteError`` if unusable."""
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
    if not isinstance(data, dict):
        raise bad
    phase = "commit" if data.get("version") == 1 else data.get("phase")
    if data.get("version") not in (1, _JOURNAL_VERSION) or phase not in ("commit", "stage"):
        raise bad
    if phase == "stage":
        temps: Any = data.get("temps")
        folders: Any = data.get("folders")
        if not _stage_ok(root, temps, folders):
            raise bad
        return _Journal("stage", [], temps, folders)
    steps = data.get("steps")
    if not isinstance(steps, list) or not all(_step_ok(root, step) for step in steps):
        raise bad
    return _Journal("commit", steps, [], [])


def _rollback(root: Path, journal: _Journal) -> None:
    """Delete what an interrupted write's stage journal names: its temp files (regular files
    only), then its folders if empty (deepest first), then the journal."""
    for tmp in journal.temps:
        path = root / tmp
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise WriteError(
                f"cannot delete a temp file of an interrupted write: {_reason(exc)}", path=path
            ) from exc
    for folder in sorted(journal.folders, key=lambda f: f.count("/"), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(root / folder)
    try:
        os.unlink(root / JOURNAL)
        _fsync_dir(root)
    except OSError as exc:
        raise WriteError(
            f"cannot delete the journal of an interrupted write: {_reason(exc)}", path=root
        ) from exc


def _finish(root: Path) -> bool:
    """Replay a pending commit journal or roll back a stage journal, and delete this folder's
    journal temp file (lock held). Returns whether a commit journal was replayed."""
    journal = _read_journal(root)
    if journal is not None and journal.phase == "commit":
        _apply(root, journal.steps)
    elif journal is not None:
        _rollback(root, journal)
    tmp = root / JOURNAL_TMP
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.lstat(tmp).st_mode):
            os.unlink(tmp)
    return journal is not None and journal.phase == "commit"
