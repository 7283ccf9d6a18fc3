"""HTTP handlers of the nbharden server extension.

``POST /nbharden/convert`` with ``{"path": "dir/nb.ipynb", "write": false}`` converts the notebook
with ``nbharden.workflow.run_conversion`` (the workflow the CLI runs too) and answers the ``ChangeSet``
as JSON; with ``"write": true`` the workflow also writes the generated files (the CLI's atomic writer)
and, for a recorded conversion, runs the generated suite. ``GET /nbharden/rules`` lists the rules.

Security and concurrency (see docs/lab.md and RELIABILITY.md):

* every verb is ``@tornado.web.authenticated`` (the server's default lets unauthenticated
  requests through);
* every path is resolved (links followed) and must stay inside the contents manager's root;
  hidden paths are refused unless the server allows hidden files; a NUL, a backslash, a lone
  surrogate or an over-long path or name is a 400. ``[tool.nbharden]`` settings are looked up
  only inside the root;
* requests on the same notebook (or the same output folder) are serialised by an
  ``asyncio.Lock``: a second request waits for the first to finish, so writes never interleave.
  Identical requests that are waiting together share one run (it starts after each of them
  arrived), so a burst of clicks costs one conversion, not one each;
* the write is ``nbharden.write.write_changes`` (through ``nbharden.workflow``): under an
  ``flock`` shared with the CLI, it resolves the output folder again and refuses if it leads
  anywhere but where it led (inside the root) before the notebook ran (a recording that replaced
  it with a link), classifies every file again right before writing (an edit made while the
  conversion ran is refused, not overwritten), stages and commits atomically, and never writes
  through a link;
* the conversion runs in a worker thread, so a long run (recording executes the notebook) does
  not block the server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import threading
import tomllib
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
from nbharden import workflow as wf
from nbharden.errors import (
    CancelledError,
    EditedFileError,
    ExecutionError,
    InputError,
    NbhardenError,
    RecordedSuiteError,
    UsageError,
    VerificationError,
    WriteError,
)
from nbharden.models import ChangeSet
from nbharden.settings import Settings, load_settings

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Longest path (UTF-8 bytes) and file name a request may name: Linux's PATH_MAX and NAME_MAX.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255

#: A percent-encoded ".", "/", "\\" or NUL: paths travel in JSON, decoded; one still encoded is a
#: double-encoding bug in the client or an attempt to slip ".." past a check.
_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)


class ConvertRequest(BaseModel):
    """The body of ``POST /nbharden/convert``. Paths are contents-manager paths (relative to the
    server root).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    path: str
    write: bool = False
    out: str | None = None  # output folder; default: <notebook stem>_prod next to the notebook
    record: bool = (
        False  # run the notebook and generate characterization tests (slow; runs its code)
    )
    force: bool = False  # overwrite generated files that were edited by hand
    # let a conversion that does not record replace a recorded suite (else 409, kind "recording")
    replace_recording: bool = False


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
    (RecordedSuiteError, 409, "recording"),
    (WriteError, 409, "write"),
    (CancelledError, 409, "cancelled"),
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


#: Runs that have not started yet (still waiting for their locks), by request: an identical
#: request arriving meanwhile shares the run instead of queueing one more. A run leaves this table
#: the moment it holds its locks, before it reads anything, so whoever shares a run gets an answer
#: computed after it arrived.
_WAITING: dict[tuple[Any, ...], asyncio.Future[dict[str, Any]]] = {}
#: Every run in progress (asyncio keeps only weak references to tasks).
_RUNS: set[asyncio.Future[dict[str, Any]]] = set()


async def shared_run(
    key: tuple[Any, ...], locks: tuple[Path, ...], work: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """The result of ``work`` run under the locks of ``locks``, shared with identical (same
    ``key``) requests that arrive before it starts.
    """
    run = _WAITING.get(key)
    if run is None:

        async def locked() -> dict[str, Any]:
            try:
                async with path_locks(*locks):
                    if _WAITING.get(key) is run:
                        del _WAITING[key]
                    return await work()
            finally:
                if _WAITING.get(key) is run:
                    del _WAITING[key]

        run = asyncio.ensure_future(locked())
        _WAITING[key] = run
        _RUNS.add(run)
        run.add_done_callback(_RUNS.discard)
    # shield: a request that goes away does not cancel the run the others wait for.
    return await asyncio.shield(run)


def _is_hidden_rel(rel: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(rel).parts)


def _shown(path: str) -> str:
    """``path`` for a message: quoted, and cut short when it is very long."""
    return repr(path if len(path) <= 120 else path[:100] + "...")


def settings_in_root(nb_path: Path, root: Path, **overrides: Any) -> Settings:
    """The settings for ``nb_path``: ``[tool.nbharden]`` from the nearest ``pyproject.toml`` between
    the notebook's folder and the server root (never above the root, never through a link leaving
    it), then ``overrides``.
    """
    folder = nb_path.parent
    while folder.is_relative_to(root):
        candidate = folder / "pyproject.toml"
        if candidate.resolve().is_relative_to(root) and candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                data = {}
            tool = data.get("tool")
            if isinstance(tool, dict) and "nbharden" in tool:
                # load_settings looks at ``folder`` first and finds this file: it never goes up.
                return load_settings(folder, **overrides)
        if folder == root:
            break
        folder = folder.parent
    return Settings().replace(**overrides)


class NbhardenHandler(APIHandler):
    """The base of every nbharden Lab handler (here and in lab/jobs.py): JSON answers, the server root, path checks."""

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
        path (NUL, backslash, percent-encoded dot or slash, not encodable, too long), 403 for one
        that leaves the server root (after following links) or is hidden while hidden files are
        off.
        """
        if "\x00" in api_path or "\\" in api_path:
            raise RequestError(400, f"{what} path {_shown(api_path)} is not a valid path")
        if _ENCODED.search(api_path):
            raise RequestError(
                400,
                f"{what} path {_shown(api_path)} holds a percent-encoded '.', '/', '\\' or NUL; "
                "send the path decoded",
            )
        try:
            encoded = api_path.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800" in the JSON)
            raise RequestError(
                400, f"{what} path {_shown(api_path)} is not a valid path: {exc.reason}"
            ) from exc
        if len(encoded) > MAX_PATH_BYTES or any(
            len(part.encode("utf-8")) > MAX_NAME_BYTES for part in api_path.split("/")
        ):
            raise RequestError(
                400,
                f"{what} path {_shown(api_path)} is too long (at most {MAX_PATH_BYTES} bytes, "
                f"{MAX_NAME_BYTES} per name)",
            )
        clean = api_path.strip("/")
        root = self.root
        # resolve() follows links: a link inside the root that points out of it is refused too.
        resolved = (root / clean).resolve()
        if not resolved.is_relative_to(root):
            raise RequestError(403, f"{what} path {_shown(api_path)} is outside the server root")
        rel = resolved.relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        if not getattr(self.contents_manager, "allow_hidden", False) and _is_hidden_rel(rel):
            raise RequestError(
                403,
                f"{what} path {_shown(api_path)} is hidden; the server does not serve hidden files",
            )
        return rel, resolved

    def parse(self, model: type[M]) -> M:
        """The JSON body validated as ``model``; ``RequestError`` 400 saying what is wrong."""
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RequestError(400, 'request body must be a JSON object like {"path": "nb.ipynb"}')
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            raise RequestError(400, f"bad request body: {problems}") from exc

    async def targets(self, path: str, out: str | None) -> tuple[str, Path, str, Path]:
        """The notebook and its output folder, checked: ``(notebook path, resolved, out path,
        resolved)``. 400 for a path that is not a notebook, 404 for a missing one, 403 for an
        output folder outside the root or holding the notebook."""
        nb_rel, nb_path = self.resolve(path, "notebook")
        if not nb_rel.endswith(".ipynb"):
            raise RequestError(400, f"{_shown(path)} is not a notebook (.ipynb)")
        if not await ensure_async(self.cm.file_exists(nb_rel)):
            raise RequestError(404, f"notebook {_shown(path)} not found")
        if out is not None:
            out_rel, out_path = self.resolve(out, "output")
        else:
            out_rel, out_path = self.resolve(
                PurePosixPath(nb_rel).with_name(api.default_out(Path(nb_rel)).name).as_posix(),
                "output",
            )
        if out_path == self.root or nb_path.is_relative_to(out_path):
            raise RequestError(
                403, f"output folder {out_rel or '/'!r} would contain the notebook's own folder"
            )
        return nb_rel, nb_path, out_rel, out_path

    async def guarded(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work``; turn ``RequestError`` and nbharden errors into JSON error answers."""
        try:
            await work()
        except RequestError as exc:
            self.reply(exc.status, exc.body)
        except NbhardenError as exc:
            err = error_for(exc, self.root)
            self.reply(err.status, err.body)


async def in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a worker thread: conversions parse, format and may execute the notebook."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)


#: Until one conversion of a kind (recording or not) has succeeded in this process, conversions of
#: that kind run one at a time. The first run imports and initialises black, ruff's locator and the
#: rest lazily, and that is not safe from two threads at once: two first conversions started
#: together failed with "module 'black' has no attribute 'Mode'", and on Python 3.11
#: ``sysconfig.get_config_var("EXE")`` returned None to one of them.
_FIRST_RUN = threading.Lock()
_WARM: set[bool] = set()


def convert_in_worker(request: wf.ConversionRequest, hooks: wf.Hooks | None = None) -> wf.Outcome:
    """``workflow.run_conversion`` for a worker thread (see ``_FIRST_RUN``)."""
    hooks = hooks or wf.Hooks()
    record = request.settings.record
    if record in _WARM:
        return wf.run_conversion(request, hooks)
    with _FIRST_RUN:
        outcome = wf.run_conversion(request, hooks)
        _WARM.add(record)
        return outcome


class ConvertHandler(NbhardenHandler):
    """``POST /nbharden/convert``: the change set of a notebook's conversion, optionally written."""

    @tornado.web.authenticated
    async def post(self) -> None:
        await self.guarded(self._convert)

    async def _convert(self) -> None:
        req = self.parse(ConvertRequest)
        nb_rel, nb_path, out_rel, out_path = await self.targets(req.path, req.out)
        job = _Job(req, nb_rel, nb_path, out_rel, out_path, self.root)
        key = (str(nb_path), str(out_path), req.write, req.record, req.force)
        answer = await shared_run(key, (nb_path, out_path), job.run)
        self.reply(200, answer)


def drops_recording(outcome: wf.DropsRecording, root: Path) -> RequestError:
    """409 ``kind: "recording"``: writing would replace the recorded suite; ``paths`` would be removed."""
    error = error_for(outcome.error, root)
    error.body.update(kind="recording", paths=list(outcome.paths))
    return error


class _Job:
    """One conversion (and write) of a notebook, run under its locks; shared by identical
    requests.
    """

    def __init__(
        self,
        req: ConvertRequest,
        nb_rel: str,
        nb_path: Path,
        out_rel: str,
        out_path: Path,
        root: Path,
    ) -> None:
        self.req = req
        self.nb_rel, self.nb_path = nb_rel, nb_path
        self.out_rel, self.out_path = out_rel, out_path
        self.root = root

    async def run(self) -> dict[str, Any]:
        req = self.req
        settings = settings_in_root(
            self.nb_path, self.root, out=self.out_path, record=req.record, force=req.force
        )
        mode = wf.Mode.WRITE if req.write else wf.Mode.DIFF
        request = wf.ConversionRequest(
            self.nb_path, settings, mode, replace_recording=req.replace_recording
        )
        outcome = await in_thread(functools.partial(convert_in_worker, request))
        match outcome:
            case wf.Reviewed(changes=changes):
                return self._answer(changes, None)
            case wf.Written(changes=changes, paths=paths):
                return self._answer(changes, list(paths))
            case wf.Blocked(reasons=reasons):
                raise RequestError(
                    409,
                    "refusing to write: "
                    + "; ".join(f"{p}: {why}" for p, why in sorted(reasons.items())),
                    kind="blocked",
                    paths=sorted(reasons),
                )
            case wf.Edited(paths=paths, error=error):
                raise self._edited(list(paths), error.diff)
            case wf.DropsRecording():
                raise drops_recording(outcome, self.root)
            case wf.VerificationFailed(error=error):
                raise error_for(error, self.root)
            case wf.BehaviourChanged(behaviour=behaviour):
                raise RequestError(
                    409,
                    f"not written: behaviour changed ({behaviour.headline()}); convert with "
                    "--accept-changes on the command line to record the new behaviour",
                    kind="behaviour",
                    behaviour=behaviour.to_json(),
                )
        raise AssertionError(f"unknown outcome {outcome!r}")

    def _answer(self, changes: ChangeSet, written: list[str] | None) -> dict[str, Any]:
        data = changes.to_json()
        # Absolute server paths mean nothing in the browser: give contents-manager paths instead.
        data["notebook"] = self.nb_rel
        data["out"] = self.out_rel
        for finding in data["findings"]:
            finding["path"] = self.nb_rel
        data["blocked"] = dict(changes.extra.get("blocked", {}))
        data["written"] = written
        return data

    def _edited(self, paths: list[str], diff: str) -> RequestError:
        return RequestError(
            409,
            f"{len(paths)} generated file(s) were edited by hand since nbharden wrote them: "
            + ", ".join(paths)
            + '; move the edits into the notebook or write again with "force": true',
            kind="edited",
            paths=paths,
            diff=diff,
        )


class RulesHandler(NbhardenHandler):
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
                "example": r.example,
                "after": r.after,
                "fix_note": r.fix_note,
            }
            for r in sorted(RULES.values(), key=lambda r: r.code)
        ]
        self.reply(200, {"rules": rules})


#: (route under the base URL, handler class); walked by the tests that check every verb is
#: authenticated.
# The jobs' handlers (the review panel's) build on the classes above.
from nbharden.lab import jobs  # noqa: E402

ROUTES: tuple[tuple[str, type[NbhardenHandler]], ...] = (
    ("nbharden/convert", ConvertHandler),
    ("nbharden/rules", RulesHandler),
    *jobs.ROUTES,
)


def setup_handlers(web_app: Any) -> None:
    """Add the nbharden routes to the server's tornado application."""
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [(url_path_join(base_url, route), cls) for route, cls in ROUTES])
