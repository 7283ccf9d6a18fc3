"""HTTP handlers of the nbharden server extension.

``POST /nbharden/convert`` with ``{"path": "dir/nb.ipynb", "write": false}`` converts the notebook
with ``nbharden.api.convert`` and answers the ``ChangeSet`` as JSON; with ``"write": true`` it then
writes the generated files through the server's contents manager. ``GET /nbharden/rules`` lists
the rules.

Security and concurrency (see docs/lab.md and RELIABILITY.md):

* every verb is ``@tornado.web.authenticated`` (the server's default lets unauthenticated
  requests through);
* every path is resolved (links followed) and must stay inside the contents manager's root;
  hidden paths are refused unless the server allows hidden files;
* requests on the same notebook (or the same output folder) are serialised by an
  ``asyncio.Lock``: a second request waits for the first to finish, so writes never interleave;
* the conversion runs in a worker thread, so a long run (recording executes the notebook) does
  not block the server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import tempfile
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from pydantic import BaseModel, ConfigDict, ValidationError

from nbharden import api
from nbharden.errors import (
    EditedFileError,
    ExecutionError,
    InputError,
    NbhardenError,
    UsageError,
    VerificationError,
    WriteError,
)
from nbharden.models import ChangeSet, FileStatus
from nbharden.settings import load_settings
from nbharden.write import recover

T = TypeVar("T")


class ConvertRequest(BaseModel):
    """The body of ``POST /nbharden/convert``. Paths are contents-manager paths (relative to the
    server root).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    path: str
    write: bool = False
    out: str | None = None  # output folder; default: <notebook stem>_prod next to the notebook
    record: bool = (
        False  # run the notebook and generate characterization tests (slow; runs its code)
    )
    force: bool = False  # overwrite generated files that were edited by hand


class RequestError(Exception):
    """A request the handler refuses, with the HTTP status and a JSON body for the front end."""

    def __init__(self, status: int, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, **detail}


#: HTTP status per nbharden error class; the first match in order wins.
_STATUS: tuple[tuple[type[NbhardenError], int, str], ...] = (
    (InputError, 400, "input"),
    (UsageError, 400, "usage"),
    (ExecutionError, 422, "execution"),
    (VerificationError, 422, "verification"),
    (EditedFileError, 409, "edited"),
    (WriteError, 409, "write"),
)


def error_for(exc: NbhardenError, root: Path) -> RequestError:
    """The ``RequestError`` for an nbharden error: status by class, the one-line message, where it
    happened.
    """
    status, kind = 500, "internal"
    for cls, code, name in _STATUS:
        if isinstance(exc, cls):
            status, kind = code, name
            break
    message = exc.format()
    # The message names the notebook by its absolute path; the browser knows it by its path under
    # the root.
    root_prefix = str(root) + os.sep
    message = message.replace(root_prefix, "")
    return RequestError(
        status,
        message,
        kind=kind,
        cell=exc.cell,
        line=exc.line,
        col=exc.col,
        diff=getattr(exc, "diff", "") or "",
    )


# One lock per resolved path, kept only while some request holds or waits for it.
_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@contextlib.asynccontextmanager
async def path_locks(*paths: Path) -> AsyncIterator[None]:
    """Hold the locks of ``paths`` (resolved, deduplicated, taken in sorted order so two requests
    cannot deadlock).
    """
    keys = sorted({str(p) for p in paths})
    locks: list[asyncio.Lock] = []
    for key in keys:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = asyncio.Lock()
            _LOCKS[key] = lock
        locks.append(lock)
    async with contextlib.AsyncExitStack() as stack:
        for lock in locks:
            await stack.enter_async_context(lock)
        yield


def _is_hidden_rel(rel: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(rel).parts)


class _NbhardenHandler(APIHandler):
    """Common helpers: JSON answers, the server root, path checks."""

    def reply(self, status: int, body: dict[str, Any] | list[Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))

    @property
    def cm(self) -> Any:
        """The server's contents manager (sync or async; its methods are untyped)."""
        return self.contents_manager

    @property
    def root(self) -> Path:
        root_dir = getattr(self.contents_manager, "root_dir", None)
        if not isinstance(root_dir, str) or not root_dir:
            raise RequestError(
                501, "nbharden needs a file-based contents manager (one with a root_dir)"
            )
        return Path(root_dir).resolve()

    def resolve(self, api_path: str, what: str) -> tuple[str, Path]:
        """Normalise a contents-manager path and resolve it on disk.

        Returns ``(api path, absolute resolved path)``. Raises ``RequestError`` 400 for a malformed
        path, 403 for one that leaves the server root (after following links) or is hidden while
        hidden files are off.
        """
        if "\x00" in api_path or "\\" in api_path:
            raise RequestError(400, f"{what} path {api_path!r} is not a valid path")
        clean = api_path.strip("/")
        root = self.root
        # resolve() follows links: a link inside the root that points out of it is refused too.
        resolved = (root / clean).resolve()
        if not resolved.is_relative_to(root):
            raise RequestError(403, f"{what} path {api_path!r} is outside the server root")
        rel = resolved.relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        if not getattr(self.contents_manager, "allow_hidden", False) and _is_hidden_rel(rel):
            raise RequestError(
                403, f"{what} path {api_path!r} is hidden; the server does not serve hidden files"
            )
        return rel, resolved

    async def in_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a worker thread: conversions parse, format and may execute the notebook."""
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def guarded(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work``; turn ``RequestError`` and nbharden errors into JSON error answers."""
        try:
            await work()
        except RequestError as exc:
            self.reply(exc.status, exc.body)
        except NbhardenError as exc:
            err = error_for(exc, self.root)
            self.reply(err.status, err.body)


class ConvertHandler(_NbhardenHandler):
    """``POST /nbharden/convert``: the change set of a notebook's conversion, optionally written."""

    @tornado.web.authenticated
    async def post(self) -> None:
        await self.guarded(self._convert)

    def _parse(self) -> ConvertRequest:
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RequestError(400, 'request body must be a JSON object like {"path": "nb.ipynb"}')
        try:
            return ConvertRequest.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            raise RequestError(400, f"bad request body: {problems}") from exc

    async def _convert(self) -> None:
        req = self._parse()
        nb_rel, nb_path = self.resolve(req.path, "notebook")
        if not nb_rel.endswith(".ipynb"):
            raise RequestError(400, f"{req.path!r} is not a notebook (.ipynb)")
        if not await ensure_async(self.cm.file_exists(nb_rel)):
            raise RequestError(404, f"notebook {req.path!r} not found")
        if req.out is not None:
            out_rel, out_path = self.resolve(req.out, "output")
        else:
            out_rel, out_path = self.resolve(
                PurePosixPath(nb_rel).with_name(api.default_out(Path(nb_rel)).name).as_posix(),
                "output",
            )
        if out_path == self.root or nb_path.is_relative_to(out_path):
            raise RequestError(
                403, f"output folder {out_rel or '/'!r} would contain the notebook's own folder"
            )

        async with path_locks(nb_path, out_path):
            if req.write:
                # Finish a write the CLI left half-done (killed) before comparing with disk.
                await self.in_thread(functools.partial(recover, out_path))
            settings = load_settings(
                nb_path.parent, out=out_path, record=req.record, force=req.force
            )
            changes = await self.in_thread(lambda: api.convert(nb_path, settings))
            written: list[str] = []
            if req.write:
                written = await self._write(changes, out_rel, out_path, force=req.force)
        self.reply(200, self._answer(changes, nb_rel, out_rel, written, req.write))

    def _answer(
        self, changes: ChangeSet, nb_rel: str, out_rel: str, written: list[str], wrote: bool
    ) -> dict[str, Any]:
        data = changes.to_json()
        # Absolute server paths mean nothing in the browser: give contents-manager paths instead.
        data["notebook"] = nb_rel
        data["out"] = out_rel
        for finding in data["findings"]:
            finding["path"] = nb_rel
        data["blocked"] = dict(changes.extra.get("blocked", {}))
        data["written"] = written if wrote else None
        return data

    async def _write(
        self, changes: ChangeSet, out_rel: str, out_path: Path, *, force: bool
    ) -> list[str]:
        """Write the change set through the contents manager. Returns the written paths (relative to
        ``out``).

        Refuses (409) blocked targets always and hand-edited files unless ``force``, before writing
        anything.
        """
        blocked = dict(changes.extra.get("blocked", {}))
        if blocked:
            raise RequestError(
                409,
                "refusing to write: "
                + "; ".join(f"{p}: {why}" for p, why in sorted(blocked.items())),
                kind="blocked",
                paths=sorted(blocked),
            )
        edited = [c for c in changes.changes if c.status is FileStatus.EDITED]
        if edited and not force:
            raise RequestError(
                409,
                f"{len(edited)} generated file(s) were edited by hand since nbharden wrote them: "
                + ", ".join(c.path for c in edited)
                + '; move the edits into the notebook or write again with "force": true',
                kind="edited",
                paths=[c.path for c in edited],
                diff="\n".join(c.diff for c in edited),
            )
        cm = self.cm
        allow_hidden = bool(getattr(cm, "allow_hidden", False))
        written: list[str] = []
        made: set[str] = set()
        # The manifest goes last: if a write fails half-way, the files written so far count as
        # edited next time
        # (conservative) instead of being trusted as nbharden's own.
        ordered = sorted(changes.changes, key=lambda c: (c.path == ".nbharden.json", c.path))
        for change in ordered:
            target = f"{out_rel}/{change.path}" if out_rel else change.path
            if change.status in (FileStatus.UNCHANGED,):
                continue
            if change.status is FileStatus.REMOVED or change.new_text is None:
                if change.status is FileStatus.REMOVED:
                    await ensure_async(cm.delete_file(target))
                    written.append(change.path)
                continue
            await self._ensure_dirs(PurePosixPath(target).parent.as_posix(), made)
            if _is_hidden_rel(change.path) and not allow_hidden:
                # nbharden's own bookkeeping (the manifest) is a dot-file, which the contents
                # manager refuses
                # while hidden files are off; write it ourselves, atomically, inside the checked
                # folder.
                await self.in_thread(
                    functools.partial(_atomic_write, out_path, change.path, change.new_text)
                )
            else:
                model = {"type": "file", "format": "text", "content": change.new_text}
                await ensure_async(cm.save(model, target))
            written.append(change.path)
        return written

    async def _ensure_dirs(self, folder: str, made: set[str]) -> None:
        """Create ``folder`` and its parents through the contents manager."""
        if folder in ("", ".") or folder in made:
            return
        parent = PurePosixPath(folder).parent.as_posix()
        await self._ensure_dirs(parent, made)
        cm = self.cm
        if not await ensure_async(cm.dir_exists(folder)):
            if await ensure_async(cm.file_exists(folder)):
                raise RequestError(409, f"cannot write into {folder!r}: a file is in the way")
            await ensure_async(cm.save({"type": "directory"}, folder))
        made.add(folder)


def _atomic_write(folder: Path, rel: str, text: str) -> None:
    """Write ``folder/rel`` via temp file, fsync and rename; refuse a link or a path leaving
    ``folder``.
    """
    target = folder / rel
    if target.is_symlink() or not target.resolve().is_relative_to(folder.resolve()):
        raise WriteError("refusing to write through a symbolic link", path=rel)
    fd, tmp = tempfile.mkstemp(prefix=".nbharden-tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class RulesHandler(_NbhardenHandler):
    """``GET /nbharden/rules``: every rule code with its name, summary, severity and fix grade."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from nbharden.rules import RULES

        rules = [
            {
                "code": r.code,
                "name": r.name,
                "summary": r.summary,
                "why": r.why,
                "category": r.category,
                "severity": r.severity.value,
                "fix": r.fix.value,
            }
            for r in sorted(RULES.values(), key=lambda r: r.code)
        ]
        self.reply(200, {"rules": rules})


#: (route under the base URL, handler class); walked by the tests that check every verb is
#: authenticated.
ROUTES: tuple[tuple[str, type[_NbhardenHandler]], ...] = (
    ("nbharden/convert", ConvertHandler),
    ("nbharden/rules", RulesHandler),
)


def setup_handlers(web_app: Any) -> None:
    """Add the nbharden routes to the server's tornado application."""
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [(url_path_join(base_url, route), cls) for route, cls in ROUTES])
