"""``nbharden convert``: notebooks -> package folders, via ``workflow.run_conversion``.

Only typer and the standard library are imported at module level; the library is imported inside
the command so
that ``nbharden --help`` stays fast.
"""

from __future__ import annotations

import enum
import json
import keyword
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from nbharden.cli.selectors import ExtendSelect, Ignore, Select, selector_overrides

if TYPE_CHECKING:
    from typer import _click

    from nbharden.behaviour import BehaviourDiff
    from nbharden.cli.guard import Batch, Failure
    from nbharden.cli.jobs import Crashed, Died, Report
    from nbharden.errors import NbhardenError
    from nbharden.models import ChangeSet, Finding
    from nbharden.settings import Settings
    from nbharden.workflow import VerificationFailed


class Format(enum.StrEnum):
    text = "text"
    json = "json"


class Target(enum.StrEnum):
    pipeline = "pipeline"
    prefect = "prefect"


EPILOG = """\
\b
Examples:
  nbharden convert analysis.ipynb                 # writes analysis_prod/
  nbharden convert analysis.ipynb --diff          # show what would change, write nothing
  nbharden convert analysis.ipynb --check         # exit 1 if analysis_prod/ is out of date (CI)
  nbharden convert a.ipynb b.ipynb --out build    # writes build/a/ and build/b/
  nbharden convert notebooks/*.ipynb -j 4         # four notebooks at a time
  nbharden convert analysis.ipynb -p rate 0.2 -p year 2023 --unsafe-fixes
  nbharden convert analysis.ipynb --target prefect # also a Prefect flow (src/PKG/flow.py)

\b
Exit codes: 0 ok, 1 --check found changes / a generated file was edited by hand /
the recorded behaviour changed (without --accept-changes) / verification failed /
--no-record would remove a recorded suite (--force replaces it),
2 usage error or bad notebook, 3 the notebook failed when run,
123 internal error, 130 interrupted, 143 terminated. With several notebooks the worst
(largest) code of any notebook wins: 123 > 3 > 2 > 1 > 0. Each notebook is converted in a
worker process of its own: one whose worker dies (killed, crashed) is reported, with 3 if
it died while its code ran (recording) and 123 otherwise, and the others go on.
"""


# Parameters of the command, one alias each (Typer reads the Annotated metadata).
NotebooksParam = Annotated[
    list[Path],
    typer.Argument(
        metavar="NOTEBOOK",
        help="Notebooks (.ipynb) to convert. Each is read, never modified.",
        show_default=False,
    ),
]

OutParam = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        metavar="DIR",
        help="Output folder. Default: <notebook stem>_prod next to the notebook. "
        "With several notebooks: DIR/<stem> for each.",
        show_default=False,
    ),
]

NameParam = Annotated[
    str | None,
    typer.Option(
        "--name",
        metavar="PKG",
        help="Package name of the generated code (a Python identifier). "
        "Default: from the notebook file name.",
        show_default=False,
    ),
]

DiffParam = Annotated[
    bool,
    typer.Option(
        "--diff", help="Print unified diffs of what would change on stdout; write nothing."
    ),
]

CheckParam = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Write nothing; list the files that would change and exit 1 if any would " "(for CI).",
    ),
]

ForceParam = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Overwrite generated files even if they were edited by hand since; with "
        "--no-record, also replace a recorded test suite by a static one.",
    ),
]

AcceptChangesParam = Annotated[
    bool,
    typer.Option(
        "--accept-changes",
        help="Write the new recording even when the notebook's behaviour changed (a result or a "
        "value a step makes differs from the recording on disk). Without it such a conversion "
        "shows the behaviour diff, writes nothing and exits 1.",
    ),
]

UnsafeFixesParam = Annotated[
    bool,
    typer.Option(
        "--unsafe-fixes",
        help="Also apply fixes graded unsafe, which may change results: today the seeding of "
        "unseeded randomness (NBH401). See 'nbharden rules'.",
    ),
]

NoRecordParam = Annotated[
    bool,
    typer.Option(
        "--no-record",
        help="Do not run the notebook; generate code only, without recorded values "
        "or characterization tests.",
    ),
]

NoVerifyParam = Annotated[
    bool,
    typer.Option(
        "--no-verify",
        help=(
            "Do not run the generated test suite after writing (it runs once by default, after "
            "a recorded conversion). The generated code is always re-parsed and format-checked."
        ),
    ),
]

TargetParam = Annotated[
    Target | None,
    typer.Option(
        "--target",
        help="What runs the steps besides pipeline.py: pipeline (nothing else) or prefect "
        "(also a Prefect 3 flow, src/PKG/flow.py; docs/orchestrators.md). Setting: target.",
        show_default=False,
    ),
]

SandboxParam = Annotated[
    bool | None,
    typer.Option(
        "--sandbox/--no-sandbox",
        help="Record the notebook in a sandbox: resource limits and, where bubblewrap works, "
        "no home folder, no network and no process left behind (setting sandbox: the "
        "configured tier, else auto; docs/sandbox.md).",
        show_default=False,
    ),
]

ParametersParam = Annotated[
    list[str] | None,
    typer.Option(
        "--parameter",
        "-p",
        metavar="NAME VALUE",
        help="Set a notebook parameter for the recorded run (repeatable): -p rate 0.2 "
        "(or -p rate=0.2). Overrides [tool.nbharden] parameters.",
        show_default=False,
    ),
]

OutputFormatParam = Annotated[
    Format,
    typer.Option(
        "--format", help="text: a summary per notebook; json: a list of change sets on stdout."
    ),
]

JobsParam = Annotated[
    int,
    typer.Option(
        "--jobs",
        "-j",
        metavar="N",
        min=1,
        help="Convert up to N notebooks at a time, each in a worker process of its own "
        "(default 1: one after the other). Output stays in the order given.",
    ),
]

DebugParam = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]


def convert(
    notebooks: NotebooksParam,
    out: OutParam = None,
    name: NameParam = None,
    diff: DiffParam = False,
    check: CheckParam = False,
    force: ForceParam = False,
    accept_changes: AcceptChangesParam = False,
    unsafe_fixes: UnsafeFixesParam = False,
    no_record: NoRecordParam = False,
    no_verify: NoVerifyParam = False,
    run_target: TargetParam = None,
    sandbox: SandboxParam = None,
    parameters: ParametersParam = None,
    output_format: OutputFormatParam = Format.text,
    jobs: JobsParam = 1,
    select: Select = None,
    extend_select: ExtendSelect = None,
    ignore: Ignore = None,
    debug: DebugParam = False,
) -> None:
    """Convert notebooks into typed, tested Python packages.

    For each notebook: analyse it, plan steps and a Config, generate the package (and, unless
    --no-record, run the notebook to record values for characterization tests), format and verify
    it, then write the output folder atomically. The notebook itself is never changed. Options also
    come from [tool.nbharden] in the nearest pyproject.toml; command-line options win.
    """
    from nbharden.cli import output
    from nbharden.cli.guard import Batch

    batch = Batch(debug=debug, err=output.stderr())
    targets = _targets(notebooks, out, name, batch)
    pairs = parameter_pairs(parameters or [], batch)
    if targets is None or pairs is None:
        raise typer.Exit(batch.exit_code)
    rules = selector_overrides(batch, select=select, extend_select=extend_select, ignore=ignore)
    if rules is None:
        raise typer.Exit(batch.exit_code)
    overrides: dict[str, Any] = {
        "name": name,
        "force": True if force else None,
        "accept_changes": True if accept_changes else None,
        "unsafe_fixes": True if unsafe_fixes else None,
        "record": False if no_record else None,
        "verify": False if no_verify else None,
        "sandbox": None if sandbox is None else ("on" if sandbox else "off"),
        "target": None if run_target is None else run_target.value,
        **rules,
    }
    tasks = [
        Task(notebook, str(notebook), target, overrides, tuple(pairs), diff, check, debug)
        for notebook, target in targets
    ]
    view = _View(batch, tasks, text=output_format is Format.text, diff=diff, check=check)
    _run(tasks, view, jobs=jobs, record=not no_record)
    raise typer.Exit(batch.exit_code)


class _View:
    """What convert shows while its notebooks are converted: progress, then each result as it comes (text or
    JSON), then the footer."""

    def __init__(self, batch: Batch, tasks: list[Task], *, text: bool, diff: bool, check: bool) -> None:
        from nbharden.cli import output

        self.batch, self.tasks = batch, tasks
        self.text, self.diff, self.check = text, diff, check
        # With --diff the diffs own stdout (a patch you can pipe); summaries then go to stderr.
        self.report = output.stderr() if (diff or not text) else output.stdout()
        self.progress = output.Progress(output.stderr(), len(tasks))
        batch.before_output.append(self.progress.clear)
        self.results: list[dict[str, Any]] = []
        self.findings: list[Finding] = []

    def on_event(self, index: int, kind: str, value: str | None) -> None:
        shown = self.tasks[index].shown
        if kind == "start":
            self.progress.start(index + 1, shown)
        elif kind == "stage" and value:
            self.progress.index, self.progress.notebook = index + 1, shown
            self.progress(value, Path(shown))
        elif kind == "written" and value:
            self.batch.written.append(value)

    def show(self, index: int, outcome: Result | Died | Crashed) -> None:
        task = self.tasks[index]
        self.progress.clear()
        changes, written = _outcome(task, outcome, self.batch)
        if changes is None:
            failure = self.batch.failures[task.shown]
            self.results.append(_error_json(task.shown, failure.to_json()))
            return
        if self.check and changes.has_changes:
            self.batch.record(1)
        self.findings.extend(changes.findings)
        if self.text:
            _render_text(changes, task.shown, diff=self.diff, check=self.check, report=self.report)
        else:
            self.results.append(
                {
                    **changes.to_json(),
                    "notebook": task.shown,
                    "written": written,
                    "error": None,
                    "behaviour": changes.extra.get("behaviour"),
                }
            )

    def finish(self) -> None:
        from nbharden.cli import output

        if not self.text:
            print(json.dumps(self.results, indent=2, default=str), file=output.stdout())
        elif not self.check:
            footer = output.fixes_footer(self.findings)
            if footer:
                print(footer, file=self.report)


def _run(tasks: list[Task], view: _View, *, jobs: int, record: bool) -> None:
    """Convert ``tasks`` in worker processes, showing each result in input order; on an interrupt stop the
    workers and finish the writes they were in."""
    from nbharden.cli import jobs as _jobs

    _without_iri_grammar()
    fresh = _all_fresh(tasks)  # nothing to convert: nothing to load before the workers start
    preload = [] if fresh else _jobs.PRELOAD + (_jobs.PRELOAD_RECORD if record else [])
    runner = _jobs.Runner(tasks, _work, jobs=jobs, on_event=view.on_event, preload=preload)
    with view.batch.interruptible():
        try:
            for index, outcome in runner.results():
                view.show(index, outcome)
        finally:
            # Interrupted (or a bug above): stop the workers; finish the writes they were in.
            stopped = runner.stop()
            if stopped:
                view.batch.writing = ", ".join(_finish_writes(stopped))
        view.finish()


PARAMETER_OPTIONS = ("-p", "--parameter")


def join_parameter_pairs(args: list[str]) -> list[str]:
    """Rewrite ``-p NAME VALUE`` as ``-p NAME=VALUE``: a click option takes one value.

    ``-p NAME=VALUE`` is kept as is. Parsing stops at ``--``. A ``-p`` without two values is left
    for the
    option parser to report.
    """
    result: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            result.extend(args[i:])
            break
        if token in PARAMETER_OPTIONS and i + 1 < len(args):
            name = args[i + 1]
            if "=" in name or i + 2 >= len(args):
                result += [token, name]
                i += 2
                continue
            result += [token, f"{name}={args[i + 2]}"]
            i += 3
            continue
        result.append(token)
        i += 1
    return result


class Command(TyperCommand):
    """The convert command, with ``-p NAME VALUE`` taking two values."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, join_parameter_pairs(list(args)))


def parameter_pairs(values: list[str], batch: Batch) -> list[tuple[str, str]] | None:
    """``NAME=VALUE`` strings -> pairs; ``None`` after reporting a usage error."""
    from nbharden.errors import UsageError

    pairs = []
    for value in values:
        name, sep, text = value.partition("=")
        problem = None
        if not sep:
            problem = f"-p {value}: missing VALUE; use -p NAME VALUE"
        elif not name.isidentifier():
            problem = f"-p {name}: not a parameter name (it must be a Python identifier)"
        if problem:
            batch.fail(UsageError(problem), None)
            return None
        pairs.append((name, text))
    return pairs


def _targets(
    notebooks: list[Path], out: Path | None, name: str | None, batch: Batch
) -> list[tuple[Path, Path | None]] | None:
    """(notebook, output folder or None) per distinct notebook; ``None`` after a usage error."""
    from nbharden.cli.guard import real_path
    from nbharden.errors import UsageError

    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        batch.fail(
            UsageError(
                f"--name {name!r} is not a valid Python package name (use letters, digits, _)"
            ),
            None,
        )
        return None
    unique: list[Path] = []
    seen: set[Path] = set()
    for nb in notebooks:
        key = real_path(nb)
        if key not in seen:
            seen.add(key)
            unique.append(nb)
    if out is None:
        return [(nb, None) for nb in unique]
    if len(unique) == 1:
        return [(unique[0], out)]
    stems: dict[str, Path] = {}
    for nb in unique:
        if nb.stem in stems:
            batch.fail(
                UsageError(
                    f"{stems[nb.stem]} and {nb} would both be written to {out / nb.stem}; "
                    "convert them separately with different --out folders"
                ),
                None,
            )
            return None
        stems[nb.stem] = nb
    return [(nb, out / nb.stem) for nb in unique]


@dataclass(frozen=True)
class Task:
    """One notebook to convert, as handed to a worker process."""

    notebook: Path
    shown: str  # the notebook as given on the command line
    target: Path | None
    overrides: dict[str, Any]
    parameters: tuple[tuple[str, str], ...]
    diff: bool
    check: bool
    debug: bool


@dataclass(frozen=True)
class Result:
    """What a worker hands back: the change set (and whether it was written), or the failure."""

    changes: ChangeSet | None
    written: bool
    failure: Failure | None = None
    traceback: str = ""  # with --debug


def _work(task: Task, report: Report) -> Result:
    """Convert one notebook (in a worker process). Never raises but for interrupts."""
    import traceback

    from nbharden.cli.guard import describe

    def progress(stage: str, path: Path) -> None:
        report("stage", stage)

    try:
        changes, written = _convert_one(
            task.notebook,
            task.target,
            task.overrides,
            list(task.parameters),
            task.diff,
            task.check,
            progress,
            report,
        )
    except Exception as exc:  # noqa: BLE001 - every failure of one notebook is reported
        text = "".join(traceback.format_exception(exc)) if task.debug else ""
        return Result(None, False, describe(exc, path=task.shown), text)
    return Result(changes, written)


def _outcome(
    task: Task, outcome: Result | Died | Crashed, batch: Batch
) -> tuple[ChangeSet | None, bool]:
    """Report a failed notebook on stderr; return (change set, written?) of a good one."""
    from nbharden.cli.jobs import Crashed, Died

    if isinstance(outcome, Died):
        batch.report(_died(task.shown, outcome), task.shown, has_traceback=False)
        return None, False
    if isinstance(outcome, Crashed):
        from nbharden.cli.guard import INTERNAL_PREFIX, Failure
        from nbharden.errors import EXIT_INTERNAL

        last = outcome.traceback.strip().splitlines()[-1:] or ["?"]
        message = f"{INTERNAL_PREFIX}worker failed: {last[0]}"
        failure = Failure(EXIT_INTERNAL, f"{task.shown}: {message}", message, task.shown)
        batch.report(failure, task.shown, outcome.traceback if batch.debug else "")
        return None, False
    if outcome.failure is not None:
        batch.report(outcome.failure, task.shown, outcome.traceback)
        return None, False
    return outcome.changes, outcome.written


def _died(shown: str, died: Died) -> Failure:
    """The failure of a notebook whose worker process died: what it was doing, what is on disk."""
    from nbharden.cli.guard import INTERNAL_PREFIX, Failure
    from nbharden.errors import EXIT_INTERNAL, EXIT_NOTEBOOK_FAILED

    if died.stage == "record":
        # The notebook's own code was running: it may have used up the memory or killed the
        # process itself.
        code = EXIT_NOTEBOOK_FAILED
        message = f"worker process {died.how} while running the notebook (recording)"
    else:
        code = EXIT_INTERNAL
        message = f"{INTERNAL_PREFIX}worker process {died.how} during {died.stage}"
    if died.writing is not None:
        message += f"; {_finish_writes([died.writing])[0]}"
    elif died.stage == "verify":
        message += "; its output folder was written, its tests did not finish"
    else:
        message += "; nothing was written for this notebook"
    return Failure(code, f"{shown}: {message}", message, shown)


def _finish_writes(folders: list[str]) -> list[str]:
    """Finish or discard the interrupted writes to ``folders`` (``nbharden.write.recover``).

    Returns a note per folder saying what it now holds.
    """
    from nbharden.errors import NbhardenError
    from nbharden.write import recover

    notes = []
    for folder in folders:
        try:
            replayed = recover(Path(folder))
        except NbhardenError as exc:
            notes.append(f"{folder} could not be checked: {exc}")
            continue
        if replayed:
            notes.append(f"{folder} was written (its interrupted write was finished)")
        else:
            notes.append(f"{folder} holds either its old or its new files (writes are atomic)")
    return notes


def _convert_one(
    notebook: Path,
    target: Path | None,
    overrides: dict[str, Any],
    parameters: list[tuple[str, str]],
    diff: bool,
    check: bool,
    progress: Callable[[str, Path], None],
    report: Report,
) -> tuple[ChangeSet, bool]:
    """Convert one notebook, write it unless --diff/--check. Returns (change set, written?).

    ``report("writing", out)`` and ``report("written", out)`` bracket the write.
    """
    from nbharden.cli.guard import check_notebook

    check_notebook(notebook)
    settings = _settings(notebook, target, overrides, parameters)

    from nbharden import workflow as wf

    mode = wf.Mode.DIFF if diff else wf.Mode.CHECK if check else wf.Mode.WRITE
    hooks = wf.Hooks(
        progress=progress,
        writing=lambda out: report("writing", str(out)),
        written=lambda out: report("written", str(out)),
    )
    # --force also lets a conversion that did not record replace a recorded suite
    request = wf.ConversionRequest(notebook, settings, mode, replace_recording=settings.force)
    outcome = wf.run_conversion(request, hooks)
    match outcome:
        case wf.Reviewed(changes=changes, behaviour=behaviour):
            return _with_behaviour(changes, behaviour), False
        case wf.Written(changes=changes, behaviour=behaviour):
            return _with_behaviour(changes, behaviour), True
        case wf.Blocked() | wf.Edited() | wf.BehaviourChanged() | wf.DropsRecording():
            raise outcome.error from None
        case wf.VerificationFailed():
            raise _verification_failure(outcome, str(notebook)) from None
    raise AssertionError(f"unknown outcome {outcome!r}")


def _without_iri_grammar() -> None:
    """Keep jsonschema from building its RFC 3987 grammar in this process: with JupyterLab installed, jsonschema
    finds the optional ``rfc3987_syntax`` and compiles a Lark grammar on import (1.4 s of CPU), and papermill
    imports jsonschema through nbformat. Only the ``iri`` formats need it, which no notebook schema uses; the
    command line's own process only (a library caller's process is left as it is)."""
    import sys

    if "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # import fails: jsonschema skips it


def _settings(
    notebook: Path, target: Path | None, overrides: dict[str, Any], parameters: list[tuple[str, str]]
) -> Settings:
    """The settings of one notebook's conversion: ``[tool.nbharden]``, then the command line."""
    from nbharden.settings import load_settings

    settings = load_settings(start=notebook.parent, out=target, **overrides)
    if parameters:
        # CLI parameters override same-named ones from [tool.nbharden]; the others are kept.
        merged = dict(settings.parameters)
        merged.update(dict(parameters))
        settings = settings.replace(parameters=tuple(merged.items()))
    return settings


def _all_fresh(tasks: list[Task]) -> bool:
    """Whether every task is a no-change re-run (``nbharden.fresh``): then the workers need not load the
    conversion's modules (LibCST, papermill: a second or more) before they start."""
    from nbharden import workflow as wf
    from nbharden.api import default_out

    for task in tasks:
        mode = wf.Mode.DIFF if task.diff else wf.Mode.CHECK if task.check else wf.Mode.WRITE
        try:
            settings = _settings(task.notebook, task.target, task.overrides, list(task.parameters))
            out = Path(settings.out) if settings.out else default_out(task.notebook)
            if wf.fresh_for(wf.ConversionRequest(task.notebook, settings, mode), out) is None:
                return False
        except Exception:  # noqa: BLE001 - only a hint: the worker converts and reports
            return False
    return True


def _with_behaviour(changes: ChangeSet, behaviour: BehaviourDiff | None) -> ChangeSet:
    """``changes`` carrying the behaviour diff (``extra["behaviour"]``) for the summary and ``--format json``."""
    import dataclasses

    if behaviour is None:
        return changes
    return dataclasses.replace(changes, extra={**changes.extra, "behaviour": behaviour.to_json()})


def _verification_failure(outcome: VerificationFailed, shown: str) -> NbhardenError:
    """The one-line error of a failing generated suite, with the findings that may explain it."""
    from nbharden.cli import output

    error = outcome.error
    causes = output.sort_findings(outcome.explanations)
    if causes:
        listed = "; ".join(output.finding_line(f, shown) for f in causes[:3])
        more = f" (and {len(causes) - 3} more)" if len(causes) > 3 else ""
        error.message += (
            f". Findings that can make the package behave unlike the notebook: {listed}{more}"
        )
        error.args = (error.format(),)
    return error


def _render_text(changes: ChangeSet, shown: str, *, diff: bool, check: bool, report: Any) -> None:
    from nbharden.cli import output

    for finding in output.sort_findings(changes.findings):
        print(output.finding_line(finding, shown), file=report)
    for line in output.sandbox_warnings(changes.test_results, shown):
        print(line, file=output.stderr())
    if diff:
        color = output.color_enabled(output.stdout())
        out = output.stdout()
        for change in changes.changes:
            if change.diff:
                text = change.diff if change.diff.endswith("\n") else change.diff + "\n"
                out.write(output.colorize_diff(text, color))
        out.flush()
    behaviour = changes.extra.get("behaviour")
    if isinstance(behaviour, dict) and behaviour.get("changed"):
        print(f"{shown}: behaviour: {behaviour.get('headline')}", file=report)
    if check:
        for line in output.check_lines(changes, shown):
            print(line, file=report)
    else:
        print(
            output.summary_line(changes, shown, note="not written" if diff else None), file=report
        )


def _error_json(notebook: str, error: dict[str, object]) -> dict[str, Any]:
    return {
        "notebook": notebook,
        "out": None,
        "files": [],
        "findings": [],
        "plan": None,
        "tests": None,
        "written": False,
        "error": error,
        "behaviour": None,
    }
