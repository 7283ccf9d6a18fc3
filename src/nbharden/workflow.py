"""The conversion workflow, one function for every front end: recover -> generate -> review -> write -> verify.

    >>> outcome = run_conversion(ConversionRequest(Path("analysis.ipynb"), settings))
    >>> match outcome:
    ...     case Written(changes=changes, tests=tests): ...
    ...     case Edited(paths=paths): ...

The CLI (``convert``, the pre-commit hook that runs ``convert --check``) and the Jupyter server extension call
:func:`run_conversion` and only render its :data:`Outcome`; none of them strings the stages together itself, so
a safety check added here (a refusal, a re-check before writing, the sandbox of verification) holds for all of
them.

Outcomes are values, not exceptions: a hand-edited file or a failing generated suite is a result the front end
shows (the CLI with an exit code, the Lab with a dialog). Each refusal still carries the ``NbhardenError`` that
says it in one line (``outcome.error``), so a front end with nothing better to say raises or prints that.
Failures of the input or of the machine (a bad notebook, a notebook that raises when run, a full disk) stay
exceptions, as everywhere in the library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from nbharden import api
from nbharden.errors import (
    BehaviourChangedError,
    EditedFileError,
    NbhardenError,
    RecordedSuiteError,
    VerificationError,
    WriteError,
)
from nbharden.models import ChangeSet, FileStatus, Finding
from nbharden.record.watch import RunWatch
from nbharden.settings import Settings

if TYPE_CHECKING:
    from nbharden.behaviour import BehaviourDiff
    from nbharden.warm_suite import WarmSuite
    from nbharden.write import OutPin


class Mode(enum.StrEnum):
    """What the request wants done with the generated package."""

    WRITE = "write"  # write it (and verify it when recorded)
    DIFF = "diff"  # compare with the disk only: the front end shows the diffs
    CHECK = "check"  # compare with the disk only: the front end reports whether anything would change


@dataclass(frozen=True)
class ConversionRequest:
    """One notebook to convert. ``settings.out`` is the output folder (default ``<stem>_prod``).

    ``replace_recording``: a conversion that did not record may replace a recorded suite (else :class:`DropsRecording`;
    the CLI passes ``--force``). ``keep`` and ``overwrite``: per hand-edited file, the front end's choice: ``keep``
    leaves the file as it is (it stays hand-edited: the manifest names what nbharden generated), ``overwrite``
    replaces it even without ``settings.force``. Any other hand-edited file still makes the write :class:`Edited`.
    """

    notebook: Path
    settings: Settings
    mode: Mode = Mode.WRITE
    replace_recording: bool = False
    keep: frozenset[str] = frozenset()
    overwrite: frozenset[str] = frozenset()


def _ignore_stage(stage: str, path: Path) -> None:
    return None


def _ignore_folder(out: Path) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """Callbacks for a front end's progress display and interrupt bookkeeping.

    ``progress(stage, notebook)`` before each stage; ``writing(out)`` right before the output folder is changed
    and ``written(out)`` right after (the CLI uses the pair to finish or report an interrupted write). ``run``:
    progress per cell of each recorded run, and the ``Cancel`` that stops the conversion (the kernel at once, any
    other stage at its end: ``CancelledError``, nothing written).
    """

    progress: Callable[[str, Path], None] = _ignore_stage
    writing: Callable[[Path], None] = _ignore_folder
    written: Callable[[Path], None] = _ignore_folder
    run: RunWatch = RunWatch()


@dataclass(frozen=True)
class TestRun:
    """The generated suite's run after writing: pytest's counts and its last line."""

    returncode: int
    counts: Mapping[str, int]
    summary: str

    def to_json(self) -> dict[str, object]:
        return {"returncode": self.returncode, **self.counts, "summary": self.summary}


@dataclass(frozen=True)
class Reviewed:
    """``Mode.DIFF`` or ``Mode.CHECK``: the package compared with the disk; nothing written.

    ``behaviour``: how the new recording differs from the one on disk (None when either has none).
    ``drops_recording``: the files of a recorded suite that writing these changes would remove (see
    :class:`DropsRecording`); empty when there is none.
    """

    changes: ChangeSet
    behaviour: BehaviourDiff | None = None
    drops_recording: tuple[str, ...] = ()


@dataclass(frozen=True)
class Written:
    """The package was written; ``paths`` were written or removed; ``tests`` ran when the conversion recorded."""

    changes: ChangeSet
    paths: tuple[str, ...]
    tests: TestRun | None = None
    behaviour: BehaviourDiff | None = None  # what the new recording changed (accepted, or none)


@dataclass(frozen=True)
class BehaviourChanged:
    """Nothing was written: the new recording behaves differently from the one on disk (a result, a value a
    step makes), and the request did not accept that (``settings.accept_changes``). Writing would re-baseline
    the generated tests silently; accepting is a decision, made with ``convert --accept-changes``.
    """

    changes: ChangeSet
    behaviour: BehaviourDiff

    @property
    def error(self) -> BehaviourChangedError:
        return BehaviourChangedError(
            f"behaviour changed: {self.behaviour.headline()}; nothing written. Check the change, then "
            "convert again with --accept-changes to record the new behaviour",
            path=self.changes.notebook,
            diff="\n".join(self.behaviour.lines()) + "\n",
        )


@dataclass(frozen=True)
class Blocked:
    """Nothing was written: some generated paths cannot be written safely (a link leaving the folder, a folder
    where a file goes, the notebook itself). ``reasons``: path -> why."""

    changes: ChangeSet
    reasons: Mapping[str, str]

    @property
    def error(self) -> WriteError:
        path = sorted(self.reasons)[0]
        more = f" (and {len(self.reasons) - 1} more)" if len(self.reasons) > 1 else ""
        error = WriteError(f"{self.reasons[path]}; refused to write{more}", path=path)
        return as_seen_by_caller(error, self.changes.out)


@dataclass(frozen=True)
class Edited:
    """Nothing was written: generated files were edited by hand since nbharden wrote them (and no ``force``).

    ``paths`` are the edited files, as found right before writing; ``error`` says it in one line, with the diffs.
    """

    changes: ChangeSet
    paths: tuple[str, ...]
    error: EditedFileError


@dataclass(frozen=True)
class DropsRecording:
    """Nothing was written: the conversion did not record (``--no-record``, the Lab's static review), and writing it
    would replace the recorded test suite in the output folder by a static one: ``paths`` (the characterization
    tests and recorded values) removed, and the recorded types and data contracts gone from the code.

    Proceed by recording, or with ``ConversionRequest.replace_recording`` (the CLI's ``--force``).
    """

    changes: ChangeSet
    paths: tuple[str, ...]

    @property
    def error(self) -> RecordedSuiteError:
        shown = ", ".join(self.paths[:3]) + (f" and {len(self.paths) - 3} more" if len(self.paths) > 3 else "")
        return RecordedSuiteError(
            "holds a test suite recorded from a run of the notebook; writing a conversion that did not run it "
            f"would remove {len(self.paths)} recorded file(s) ({shown}) and the recorded types and data contracts; "
            "record it again (without --no-record) or pass --force to replace it",
            path=self.changes.out,
        )


@dataclass(frozen=True)
class VerificationFailed:
    """The package was written, but its generated suite fails: the code does not reproduce the notebook.

    ``explanations`` are the findings that commonly explain such a failure (hidden state, globals rebound from
    functions, ...), for the front end to show next to the failure.
    """

    changes: ChangeSet
    paths: tuple[str, ...]
    tests: TestRun
    explanations: tuple[Finding, ...]
    error: VerificationError


Outcome = Reviewed | Written | Blocked | Edited | DropsRecording | VerificationFailed | BehaviourChanged

#: Rule families whose findings can explain a failing generated suite: hidden state and execution order,
#: unseeded randomness.
EXPLAINING_CATEGORIES = ("hidden state", "reproducibility")


def run_conversion(request: ConversionRequest, hooks: Hooks = Hooks()) -> Outcome:
    """Convert one notebook as ``request`` asks and return what happened.

    Raises ``NbhardenError`` for bad input, a notebook that fails when run, or an output folder that cannot be
    written (``InputError``, ``ExecutionError``, ``WriteError``, ...), and ``CancelledError`` when
    ``hooks.run.cancel`` stopped it; refusals and a failing generated suite are outcomes (see the module docstring).
    """
    settings = request.settings
    notebook = Path(request.notebook)
    out = Path(settings.out) if settings.out else api.default_out(notebook)
    pin = _prepare_out(out, request.mode)
    watch = hooks.run
    fresh = fresh_for(request, out)
    if fresh is not None:  # nothing it reads has changed: its output is on disk already
        if request.mode is not Mode.WRITE:
            return Reviewed(fresh, _behaviour(fresh, settings), recorded_suite_loss(fresh))
        return write_reviewed(request, fresh, hooks, pin=pin)

    def progress(stage: str, path: Path) -> None:
        watch.check(path)  # a cancelled conversion stops at the next stage
        hooks.progress(stage, path)

    with _warm_suite(request, out) as warm:
        changes = api.convert(notebook, settings, progress, watch=watch)
        watch.check(notebook)
        _still_pinned(pin, request.mode)
        if request.mode is not Mode.WRITE:
            return Reviewed(changes, _behaviour(changes, settings), recorded_suite_loss(changes))
        return write_reviewed(request, changes, hooks, pin=pin, warm=warm)


@contextlib.contextmanager
def _warm_suite(request: ConversionRequest, out: Path) -> Iterator[WarmSuite | None]:
    """The interpreter that gets the verification's pytest run ready while the notebook records
    (``nbharden.warm_suite``), when this request writes and verifies a recorded conversion without a sandbox;
    killed at the end if the verification did not use it."""
    from nbharden.record.sandbox import resolve

    settings = request.settings
    wanted = request.mode is Mode.WRITE and settings.record and settings.verify
    try:
        wanted = wanted and not resolve(settings).active
    except NbhardenError:  # a tier that cannot run here: the conversion says so itself
        wanted = False
    if not wanted:
        yield None
        return
    with api.warm_suite(out, request.notebook) as warm:
        yield warm


def fresh_for(request: ConversionRequest, out: Path) -> ChangeSet | None:
    """The no-change re-run (``nbharden.fresh``): what converting would return, when the manifest shows that
    nothing it reads has changed. Static requests in every mode; a recorded one only to check (``--check``, the
    pre-commit hook): writing a recorded conversion is how a suite is recorded again, and a recorded review
    (``--diff``, the Lab) reports the kernel's interpreter, which only a run finds."""
    from nbharden.fresh import fresh_changes

    if request.settings.record and request.mode is not Mode.CHECK:
        return None
    return fresh_changes(request.notebook, out, request.settings)


def write_reviewed(
    request: ConversionRequest,
    changes: ChangeSet,
    hooks: Hooks = Hooks(),
    *,
    pin: OutPin | None = None,
    warm: WarmSuite | None = None,
) -> Outcome:
    """Write ``changes`` (``run_conversion``'s in ``Mode.DIFF``: what a front end showed) as ``request`` asks, then
    verify a recorded write. The writer classifies every file again under its lock, so a file edited since the
    review is refused as edited, not overwritten. ``pin``: where the output folder led before the notebook ran
    (``nbharden.write.pin_out``); the write refuses when it leads elsewhere now. ``warm``: an interpreter started
    ahead for the verification (``nbharden.warm_suite``).
    """
    settings = request.settings
    notebook = Path(request.notebook)
    behaviour = _behaviour(changes, settings)
    blocked = dict(changes.extra.get("blocked", {}))
    if blocked:
        return Blocked(changes, blocked)
    lost = recorded_suite_loss(changes)
    if lost and not request.replace_recording:
        return DropsRecording(changes, lost)
    if behaviour is not None and behaviour.changed and not settings.accept_changes:
        return BehaviourChanged(changes, behaviour)
    hooks.writing(changes.out)
    try:
        written = api.write(changes, settings, pin=pin, keep=request.keep, overwrite=request.overwrite)
    except EditedFileError as exc:
        return _edited(changes, as_seen_by_caller(exc, changes.out), request)
    except NbhardenError as exc:
        raise as_seen_by_caller(exc, changes.out) from None
    hooks.written(changes.out)
    paths = tuple(
        c.path
        for c in written.changes
        if c.status is not FileStatus.UNCHANGED and not (c.status is FileStatus.EDITED and c.path in request.keep)
    )
    if not (settings.record and settings.verify):
        return Written(written, paths, behaviour=behaviour)
    outcome = _verify(notebook, written, paths, hooks, settings, warm)
    if isinstance(outcome, Written):
        return dataclasses.replace(outcome, behaviour=behaviour)
    return outcome


def review_again(changes: ChangeSet) -> ChangeSet:
    """The same generated files compared with the output folder as it is now: after a write, every written file
    reads ``unchanged`` (a kept hand edit still ``edited``), so a front end shows the disk's truth without
    generating again. Removed files that are gone are no longer listed."""
    from nbharden.manifest import read_manifest
    from nbharden.review import classify, resolve_out

    files = {c.path: c.new_text for c in changes.changes if c.new_text is not None}
    root = resolve_out(changes.out)
    fresh, blocked = classify(files, root, notebook=Path(changes.notebook), old=read_manifest(root))
    extra = {**{k: v for k, v in changes.extra.items() if k != "blocked"}, **({"blocked": blocked} if blocked else {})}
    return dataclasses.replace(changes, changes=tuple(fresh), extra=extra)


def recorded_suite_loss(changes: ChangeSet) -> tuple[str, ...]:
    """The files writing ``changes`` would remove, when they include a recorded suite's index (the output folder
    holds a recorded suite, and these changes do not); else ``()``."""
    removed = tuple(c.path for c in changes.changes if c.new_text is None)
    if not removed:
        return ()  # (without importing the test generator: a no-change re-run loads nothing it need not)
    from nbharden.testgen.generate import RECORDING_INDEX

    return removed if RECORDING_INDEX in removed else ()


def _behaviour(changes: ChangeSet, settings: Settings) -> BehaviourDiff | None:
    """How the generated recording differs from the one in the output folder (None: nothing to compare)."""
    if not settings.record:
        return None
    from nbharden.behaviour import diff_against_disk
    from nbharden.review import resolve_out

    files = {c.path: c.new_text for c in changes.changes if c.new_text is not None}
    try:
        root = resolve_out(changes.out)
    except NbhardenError:
        return None
    return diff_against_disk(files, root, settings)


def _prepare_out(out: Path, mode: Mode) -> OutPin:
    """Before the notebook runs: refuse an output folder nbharden must not use (a link loop; to write: ``/``,
    the home folder, a folder of files without a manifest), finish a write that was killed half-way (so the
    review sees the folder's old or new files, never a mix), and pin where the folder leads: the notebook's code
    may replace it with a link (see ``_still_pinned``; the write checks it again under its lock)."""
    from nbharden.write import check_out, pin_out, recover

    try:
        check_out(out, writing=mode is Mode.WRITE)
        if mode is Mode.WRITE:
            recover(out)
        return pin_out(out)
    except NbhardenError as exc:
        raise as_seen_by_caller(exc, out) from None


def _still_pinned(pin: OutPin, mode: Mode) -> None:
    """Right after the conversion ran the notebook: refuse when the output folder leads elsewhere now, before
    anything read there (the old recording, the diffs) is compared or shown."""
    from nbharden.write import check_pin

    try:
        check_pin(pin, writing=mode is Mode.WRITE)
    except NbhardenError as exc:
        raise as_seen_by_caller(exc, pin.out) from None


E = TypeVar("E", bound=NbhardenError)


def as_seen_by_caller(exc: E, out: Path) -> E:
    """``exc`` naming its file as the caller names the output folder (``out/src/pkg/steps.py``), not from inside
    the folder as the write stage does (a relative path there is relative to the output folder; the folder itself
    it names by its absolute path). Changed in place and returned."""
    from nbharden.review import resolve_out

    if exc.path is None or Path(exc.path) == out.absolute():
        where = out
    else:
        path = Path(exc.path)
        root = resolve_out(out)
        if not path.is_absolute():
            where = out / path
        elif path.is_relative_to(root):
            where = out / path.relative_to(root)
        else:
            where = path
    exc.path = where
    exc.args = (exc.format(),)
    return exc


def _edited(changes: ChangeSet, exc: EditedFileError, request: ConversionRequest) -> Edited:
    """The ``Edited`` outcome of a write refused under its lock (the files as found right then, but those the
    request chose to keep or overwrite)."""
    from nbharden.manifest import read_manifest
    from nbharden.review import classify, resolve_out

    files = {c.path: c.new_text for c in changes.changes if c.new_text is not None}
    root = resolve_out(changes.out)
    try:
        fresh, _ = classify(files, root, notebook=Path(changes.notebook), old=read_manifest(root))
        chosen = request.keep | request.overwrite
        paths = tuple(c.path for c in fresh if c.status is FileStatus.EDITED and c.path not in chosen)
    except NbhardenError:
        paths = ()
    return Edited(changes, paths or (str(exc.path),), exc)


def _verify(
    notebook: Path,
    written: ChangeSet,
    paths: tuple[str, ...],
    hooks: Hooks,
    written_settings: Settings,
    warm: WarmSuite | None = None,
) -> Outcome:
    """Run the generated suite against the files just written: the proof that the code reproduces the notebook."""
    hooks.progress("verify", notebook)
    python = (written.test_results or {}).get("python")
    try:
        # in the recording's sandbox tier, with the generated files only: the tests run the notebook's code too
        results = api.run_tests(
            written.out,
            python=python if isinstance(python, str) else None,
            settings=written_settings,
            notebook=notebook,
            files={c.path: c.new_text for c in written.changes if c.new_text is not None},
            warm=warm,
        )
    except VerificationError as exc:
        run = TestRun(1, {}, exc.message)
        return VerificationFailed(written, paths, run, explaining_findings(written.findings), exc)
    counts = {k: v for k, v in results.items() if isinstance(v, int) and k != "returncode"}
    run = TestRun(int(str(results.get("returncode", 0))), counts, str(results.get("summary", "")))
    tested = dataclasses.replace(written, test_results={**(written.test_results or {}), **results})
    return Written(tested, paths, run)


def explaining_findings(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """The findings that can make generated code behave unlike the notebook (hidden state and the like)."""
    from nbharden.rules import RULES

    return tuple(
        f for f in findings if (rule := RULES.get(f.code)) and rule.category in EXPLAINING_CATEGORIES
    )

