"""Jobs: the review panel's conversions (recorded ones run the notebook for seconds to minutes) and test runs,
started, watched and cancelled over HTTP.

=======  ==================================  ===================================================================
POST     ``/nbharden/jobs``                  start ``{"kind": "review", "path", "out"?, "record"}`` or
                                             ``{"kind": "tests", "path", "out"?}``; answers 202 with the job
GET      ``/nbharden/jobs/<id>``             the job: ``state``, ``stage``, ``progress`` (run N of M, cell N of
                                             M), ``elapsed``, then ``result`` or ``error``
DELETE   ``/nbharden/jobs/<id>``             cancel: the kernel (or the test run) is killed at once; answers when
                                             the job has stopped (at most ~1.5 s later)
POST     ``/nbharden/jobs/<id>/write``       write what the review job showed, with a choice per hand-edited
                                             file; the statuses after the write are read from the disk again
GET      ``/nbharden/jobs/<id>/file?path=``  a generated file's text on disk and as generated, for the diff view
GET      ``/nbharden/status?path=``          the output folder: does it exist, does it hold a recorded suite
=======  ==================================  ===================================================================

Everything goes through ``nbharden.workflow`` (``run_conversion`` with a ``RunWatch``, ``write_reviewed``,
``review_again``) and ``api.run_tests``; the handlers only translate. A job runs in a worker thread under the
notebook's and the output folder's locks (those of ``/nbharden/convert`` too); a new review of a notebook
cancels the one still running for it. Job ids are random (128 bits); every verb is authenticated.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tornado.web
from pydantic import BaseModel, ConfigDict

from nbharden import api
from nbharden import workflow as wf
from nbharden.errors import CancelledError, NbhardenError
from nbharden.lab.handlers import (
    NbhardenHandler,
    RequestError,
    convert_in_worker,
    error_for,
    in_thread,
    path_locks,
    settings_in_root,
)
from nbharden.manifest import read_manifest
from nbharden.models import ChangeSet
from nbharden.record.watch import Cancel, CellProgress, RunWatch
from nbharden.settings import Settings

log = logging.getLogger(__name__)

#: Finished jobs kept for their results (the panel writes from a review job): at most this many, this long.
KEEP_FINISHED = 16
KEEP_SECONDS = 3600.0
#: How long DELETE waits for a cancelled job to stop before it answers.
CANCEL_WAIT = 1.5
#: How long a poll with ``wait=1`` waits for a change.
POLL_WAIT = 10.0
#: Largest file the diff view is sent (either side), in bytes.
MAX_VIEW_BYTES = 2 * 1024 * 1024

State = Literal["running", "done", "failed", "cancelled"]


class JobRequest(BaseModel):
    """The body of ``POST /nbharden/jobs``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    kind: Literal["review", "tests"] = "review"
    path: str
    out: str | None = None
    record: bool = False  # review: run the notebook (twice) and record, for characterization tests


class WriteRequest(BaseModel):
    """The body of ``POST /nbharden/jobs/<id>/write``: the user's choices."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    keep: list[str] = []  # hand-edited files to leave as they are
    overwrite: list[str] = []  # hand-edited files to replace
    replace_recording: bool = False  # a static review may replace the recorded suite
    accept_changes: bool = False  # a recording may change the recorded behaviour


@dataclass
class Job:
    """One review or test run. Its fields are written by the worker thread and read by the handlers."""

    kind: str
    notebook: str  # contents path
    nb_path: Path
    out: str
    out_path: Path
    record: bool
    settings: Settings
    id: str = field(default_factory=lambda: secrets.token_hex(16))
    cancel: Cancel = field(default_factory=Cancel)
    state: State = "running"
    stage: str = "queued"
    progress: CellProgress | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    changes: ChangeSet | None = None
    pin: Any = None  # nbharden.write.OutPin: where the output folder led before the notebook ran
    done: asyncio.Event = field(default_factory=asyncio.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Bumped on every change (stage, cell, end); ``events``: every cell start, with the version it made.
    version: int = 0
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    loop: asyncio.AbstractEventLoop | None = None

    def on_stage(self, stage: str, path: Path) -> None:
        with self.lock:
            self.stage = stage
            self.version += 1
        self._wake()

    def on_cell(self, progress: CellProgress) -> None:
        with self.lock:
            self.stage, self.progress = "record", progress
            self.version += 1
            self.events.append((self.version, progress.to_json()))
        self._wake()

    def _wake(self) -> None:
        """Wake the polls waiting for a change (from the worker thread: through the event loop)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    async def changed_since(self, version: int, timeout: float) -> None:
        """Return once the job changed after ``version``, it ended, or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while self.version <= version and self.state == "running":
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    def finish(
        self, state: State, *, result: dict[str, Any] | None = None, error: dict[str, Any] | None = None
    ) -> None:
        with self.lock:
            if self.state != "running":
                return
            self.state, self.result, self.error = state, result, error
            self.ended = time.monotonic()
            self.version += 1
        self.done.set()
        self._bump()

    def snapshot(self, since: int | None = None) -> dict[str, Any]:
        """The job as JSON; ``events``: the cell starts after version ``since`` (none without it)."""
        with self.lock:
            return {
                "version": self.version,
                "events": [e for v, e in self.events if since is not None and v > since],
                "id": self.id,
                "kind": self.kind,
                "state": self.state,
                "notebook": self.notebook,
                "out": self.out,
                "record": self.record,
                "stage": self.stage,
                "progress": self.progress.to_json() if self.progress else None,
                "elapsed": round((self.ended or time.monotonic()) - self.started, 3),
                "result": self.result,
                "error": self.error,
            }


_JOBS: dict[str, Job] = {}
#: Running jobs' tasks (asyncio keeps only weak references to tasks).
_TASKS: set[asyncio.Task[None]] = set()


def _prune(now: float) -> None:
    finished = sorted((j for j in _JOBS.values() if j.ended is not None), key=lambda j: j.ended or 0.0)
    for i, job in enumerate(finished):
        if len(finished) - i > KEEP_FINISHED or now - (job.ended or now) > KEEP_SECONDS:
            del _JOBS[job.id]


def start(job: Job, work: Callable[[Job], Awaitable[None]], root: Path) -> Job:
    """Register ``job`` and run ``work(job)`` in the background; its failures end up in the job."""
    _prune(time.monotonic())
    if job.kind == "review":
        for other in _JOBS.values():  # a new review of a notebook replaces the one still running
            if other.kind == "review" and other.state == "running" and (other.nb_path, other.out_path) == (
                job.nb_path,
                job.out_path,
            ):
                other.cancel.cancel()
    _JOBS[job.id] = job

    async def run() -> None:
        try:
            await work(job)
        except CancelledError as exc:
            job.finish("cancelled", error=error_for(exc, root).body)
        except RequestError as exc:
            job.finish("failed", error=exc.body)
        except NbhardenError as exc:
            job.finish("cancelled" if job.cancel.cancelled else "failed", error=error_for(exc, root).body)
        except Exception as exc:  # noqa: BLE001 - a job's failure is shown in the panel, not lost in a log
            log.exception("nbharden job %s failed", job.id)
            message = f"internal error (please report): {type(exc).__name__}: {exc}"
            job.finish("failed", error={"message": message, "kind": "internal"})

    task = asyncio.ensure_future(run())
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return job


async def review(job: Job, root: Path) -> None:
    """Convert (and, when the job records, run the notebook) without writing; the result is the review."""
    from nbharden.write import pin_out

    hooks = wf.Hooks(progress=job.on_stage, run=RunWatch(on_cell=job.on_cell, cancel=job.cancel))
    request = wf.ConversionRequest(job.nb_path, job.settings, wf.Mode.DIFF)
    async with path_locks(job.nb_path, job.out_path):
        job.cancel.check(job.notebook)
        # where the output folder leads before the notebook's code runs: the write refuses if that changed
        job.pin = await in_thread(functools.partial(pin_out, job.out_path))
        outcome = await in_thread(functools.partial(convert_in_worker, request, hooks))
    assert isinstance(outcome, wf.Reviewed)
    job.changes = outcome.changes
    job.finish("done", result=review_answer(job, outcome.changes, outcome))


def review_answer(job: Job, changes: ChangeSet, reviewed: wf.Reviewed | None = None) -> dict[str, Any]:
    """The change set as the panel reads it: contents paths, never the server's absolute ones."""
    data = changes.to_json()
    data.update(notebook=job.notebook, out=job.out, record=job.record, written=None)
    for finding in data["findings"]:
        finding["path"] = job.notebook
    data["blocked"] = dict(changes.extra.get("blocked", {}))
    data["drops_recording"] = list(reviewed.drops_recording) if reviewed else []
    behaviour = reviewed.behaviour if reviewed else None
    data["behaviour"] = behaviour.to_json() if behaviour is not None and behaviour.changed else None
    tests = data.get("tests")
    if isinstance(tests, dict):  # the interpreter's absolute path is the server's business
        data["tests"] = {k: v for k, v in tests.items() if k != "python"}
    return data


async def run_tests(job: Job, root: Path) -> None:
    """Run the generated suite in the output folder (the recording's sandbox tier) and report each test."""
    job.on_stage("tests", job.nb_path)
    python = _recorded_python(job)
    async with path_locks(job.out_path):
        job.cancel.check(job.notebook)
        if not (job.out_path / "tests").is_dir():
            raise RequestError(409, f"{job.out}/ holds no tests yet: write the files first", kind="tests")
        result = await in_thread(
            functools.partial(
                api.run_tests,
                job.out_path,
                python=python,
                settings=job.settings,
                notebook=job.nb_path,
                cases=True,
                check=False,
                cancel=job.cancel,
            )
        )
    job.finish("done", result={"tests": result})


def _recorded_python(job: Job) -> str | None:
    """The interpreter the notebook's kernel ran, from the latest recorded review of the same notebook."""
    for other in sorted(_JOBS.values(), key=lambda j: j.started, reverse=True):
        if other.changes is not None and (other.nb_path, other.out_path) == (job.nb_path, job.out_path):
            python = (other.changes.test_results or {}).get("python")
            if isinstance(python, str):
                return python
    return None


def query(handler: NbhardenHandler, name: str, default: str | None = None) -> str | None:
    """A query argument exactly as sent: tornado's ``get_query_argument`` strips whitespace and drops control
    characters, so ``nb.ipynb%00`` would pass as ``nb.ipynb``; a path here is refused for them instead."""
    values = handler.request.query_arguments.get(name)
    if not values:
        return default
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"query argument {name!r} is not UTF-8") from exc


class _JobHandler(NbhardenHandler):
    def job(self, job_id: str) -> Job:
        job = _JOBS.get(job_id)
        if job is None:
            raise RequestError(404, "no such job (finished jobs are kept for an hour)", kind="job")
        return job


class JobsHandler(_JobHandler):
    """``POST /nbharden/jobs``: start a review or a test run."""

    @tornado.web.authenticated
    async def post(self) -> None:
        await self.guarded(self._start)

    async def _start(self) -> None:
        req = self.parse(JobRequest)
        nb_rel, nb_path, out_rel, out_path = await self.targets(req.path, req.out)
        record = req.record and req.kind == "review"
        settings = settings_in_root(nb_path, self.root, out=out_path, record=record)
        job = Job(req.kind, nb_rel, nb_path, out_rel, out_path, record, settings)
        job.loop = asyncio.get_running_loop()
        root = self.root
        start(job, functools.partial(review if req.kind == "review" else run_tests, root=root), root)
        self.reply(202, job.snapshot())


class JobHandler(_JobHandler):
    """``GET /nbharden/jobs/<id>``: the job as it is now; ``DELETE``: cancel it."""

    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        await self.guarded(lambda: self._get(job_id))

    async def _get(self, job_id: str) -> None:
        """``?since=V``: the cell starts after version V; with ``&wait=1`` the answer waits (up to
        ``POLL_WAIT`` seconds) until the job changed after V, so the panel sees every change as it happens."""
        job = self.job(job_id)
        since = query(self, "since")
        if since is None:
            self.reply(200, job.snapshot())
            return
        if not since.isdigit():
            raise RequestError(400, "since must be a version number (the job's 'version')")
        if query(self, "wait") == "1":
            await job.changed_since(int(since), POLL_WAIT)
        self.reply(200, job.snapshot(int(since)))

    @tornado.web.authenticated
    async def delete(self, job_id: str) -> None:
        await self.guarded(lambda: self._cancel(job_id))

    async def _cancel(self, job_id: str) -> None:
        job = self.job(job_id)
        await in_thread(job.cancel.cancel)  # kills the kernel or the test run now
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(job.done.wait(), CANCEL_WAIT)
        self.reply(200, job.snapshot())


class JobWriteHandler(_JobHandler):
    """``POST /nbharden/jobs/<id>/write``: write the files of a finished review."""

    @tornado.web.authenticated
    async def post(self, job_id: str) -> None:
        await self.guarded(lambda: self._write(job_id))

    async def _write(self, job_id: str) -> None:
        job = self.job(job_id)
        choice = self.parse(WriteRequest)
        if job.changes is None:
            raise RequestError(409, "this job has nothing to write: review the notebook first", kind="state")
        settings = job.settings.replace(verify=False, accept_changes=choice.accept_changes)
        request = wf.ConversionRequest(
            job.nb_path,
            settings,
            wf.Mode.WRITE,
            replace_recording=choice.replace_recording,
            keep=frozenset(choice.keep),
            overwrite=frozenset(choice.overwrite),
        )
        changes = job.changes
        async with path_locks(job.nb_path, job.out_path):
            outcome = await in_thread(functools.partial(wf.write_reviewed, request, changes, pin=job.pin))
            if not isinstance(outcome, wf.Written):
                raise refusal(outcome, job)
            fresh = await in_thread(functools.partial(wf.review_again, outcome.changes))
        self.reply(200, written_answer(job, outcome, fresh, request))


def written_answer(job: Job, outcome: wf.Written, fresh: ChangeSet, request: wf.ConversionRequest) -> dict[str, Any]:
    """The review after a write: statuses read from the disk again, what was written, removed and kept."""
    before = {c.path: c for c in outcome.changes.changes}
    removed = [p for p in outcome.paths if before[p].new_text is None]
    data = review_answer(job, fresh)
    listed = {f["path"] for f in data["files"]}
    data["files"] += [{"path": p, "status": "removed", "diff": "", "gone": True} for p in removed if p not in listed]
    data["files"].sort(key=lambda f: f["path"])
    data["written"] = [p for p in outcome.paths if p not in removed]
    data["removed"] = removed
    data["kept"] = sorted(request.keep)
    return data


def refusal(outcome: wf.Outcome, job: Job) -> RequestError:
    """The 409 of a write the workflow refused, in the panel's words, with what it needs to ask the user."""
    match outcome:
        case wf.Edited(paths=paths, changes=changes):
            diffs = {c.path: c.diff for c in changes.changes if c.path in paths}
            return RequestError(
                409,
                f"{len(paths)} file(s) in {job.out}/ were changed by hand since nbharden wrote them. "
                "Choose for each one: keep your edit, or overwrite it.",
                kind="edited",
                paths=list(paths),
                diffs=diffs,
            )
        case wf.DropsRecording(paths=paths):
            return RequestError(
                409,
                f"{job.out}/ holds a test suite recorded from a run of the notebook. This review did not run "
                f"the notebook: writing it would remove {len(paths)} recorded file(s) (characterization tests "
                "and recorded values) and the recorded types and data contracts. Run the notebook and record, "
                "or replace the recorded suite.",
                kind="recording",
                paths=list(paths),
            )
        case wf.BehaviourChanged(behaviour=behaviour):
            return RequestError(
                409,
                f"The notebook's recorded behaviour changed: {behaviour.headline()}. Accept the new behaviour "
                "to write it.",
                kind="behaviour",
                lines=behaviour.lines(),
            )
        case wf.Blocked(reasons=reasons):
            return RequestError(
                409,
                "nbharden will not write these files: "
                + "; ".join(f"{p}: {why}" for p, why in sorted(reasons.items())),
                kind="blocked",
                paths=sorted(reasons),
            )
    raise AssertionError(f"unexpected outcome of a write: {outcome!r}")


class JobFileHandler(_JobHandler):
    """``GET /nbharden/jobs/<id>/file?path=``: one generated file, on disk and as generated."""

    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        await self.guarded(lambda: self._file(job_id))

    async def _file(self, job_id: str) -> None:
        job = self.job(job_id)
        rel = query(self, "path", "") or ""
        change = next((c for c in (job.changes.changes if job.changes else ()) if c.path == rel), None)
        if change is None:  # only the job's own files: no path from the request reaches the disk
            raise RequestError(404, f"{rel!r} is not a file of this review", kind="file")
        old, old_large = await in_thread(functools.partial(_read_inside, job.out_path, rel, self.root))
        new = change.new_text
        new_large = new is not None and len(new.encode("utf-8")) > MAX_VIEW_BYTES
        self.reply(
            200,
            {
                "path": rel,
                "status": change.status.value,
                "old": old,
                "new": None if new_large else new,
                "too_large": old_large or new_large,
            },
        )


def _read_inside(out: Path, rel: str, root: Path) -> tuple[str | None, bool]:
    """``(text, too large)`` of ``out/rel`` when it is a regular file inside the output folder and the server root
    (never through a link), else ``(None, False)``; no text past ``MAX_VIEW_BYTES``."""
    from nbharden.review import resolve_out

    folder = resolve_out(out)
    path = folder / rel
    real = path.resolve()
    if not real.is_relative_to(root) or not real.is_relative_to(folder):
        return None, False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None, False
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None, False
        if st.st_size > MAX_VIEW_BYTES:
            return None, True
        return fh.read(MAX_VIEW_BYTES).decode("utf-8", errors="replace"), False


class StatusHandler(NbhardenHandler):
    """``GET /nbharden/status?path=``: the notebook's output folder, and whether it holds a recorded suite."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self.guarded(self._status)

    async def _status(self) -> None:
        from nbharden.testgen.generate import RECORDING_INDEX

        nb_rel, nb_path, out_rel, out_path = await self.targets(query(self, "path", "") or "", query(self, "out"))
        manifest = await in_thread(functools.partial(read_manifest, out_path))
        running = [
            j.id for j in _JOBS.values() if j.state == "running" and (j.nb_path, j.out_path) == (nb_path, out_path)
        ]
        self.reply(
            200,
            {
                "notebook": nb_rel,
                "out": out_rel,
                "exists": out_path.is_dir(),
                "recorded": manifest is not None and RECORDING_INDEX in manifest,
                "running": running,
            },
        )


_ID = r"([0-9a-f]{32})"

#: The jobs' routes, added to ``handlers.ROUTES``.
ROUTES: tuple[tuple[str, type[NbhardenHandler]], ...] = (
    ("nbharden/status", StatusHandler),
    ("nbharden/jobs", JobsHandler),
    (f"nbharden/jobs/{_ID}", JobHandler),
    (f"nbharden/jobs/{_ID}/write", JobWriteHandler),
    (f"nbharden/jobs/{_ID}/file", JobFileHandler),
)
