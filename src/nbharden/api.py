"""The library API: what the CLI, the Jupyter server extension and tests call.

    >>> from nbharden import api
    >>> changes = api.convert(Path("analysis.ipynb"))      # computes everything, writes nothing
    >>> print(changes.changes[0].diff)
    >>> api.write(changes)                                  # the only call that touches the output folder

Nothing here prints, exits or reads global state: settings come in as an argument, problems go out as
``NbhardenError`` subclasses (see ``nbharden.errors``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from nbharden.errors import InputError, InternalError, NbhardenError, VerificationError
from nbharden.models import Analysis, ChangeSet, FileTree, Finding, Notebook, Plan
from nbharden.settings import Settings

if TYPE_CHECKING:
    from nbharden.analyse import FullAnalysis
    from nbharden.prreview.report import ReviewReport
    from nbharden.record.models import Recording
    from nbharden.record.sandbox import SandboxReport
    from nbharden.record.watch import Cancel, RunWatch
    from nbharden.warm_suite import WarmSuite
    from nbharden.write import OutPin

#: Progress callback: (stage name, notebook path). The CLI uses it for its progress display.
Progress = Callable[[str, Path], None]


def _noop(stage: str, path: Path) -> None:
    return None


@dataclass(frozen=True)
class Generated:
    """Everything a conversion produces, before it is compared with the disk."""

    notebook: Notebook
    analysis: Analysis
    plan: Plan
    tree: FileTree
    findings: tuple[Finding, ...]
    out: Path
    test_results: dict[str, object] | None = None


def default_out(notebook: Path) -> Path:
    """The default output folder: ``<stem>_prod`` next to the notebook."""
    return notebook.parent / f"{notebook.stem}_prod"


def load(path: Path, settings: Settings | None = None) -> Notebook:
    """Read, validate and mask a notebook. Raises ``InputError`` with ``path:cell N:line:col``."""
    from nbharden.load import load as _load

    return _load(Path(path), settings=settings or Settings())


def analyze(path: Path, settings: Settings | None = None) -> Analysis:
    """Load and analyse a notebook: def/use graph, effects and findings."""
    from nbharden.analyse import analyse

    settings = settings or Settings()

    def run() -> Analysis:
        from nbharden.selection import gate

        nb = load(path, settings)
        analysis = analyse(nb, settings=settings)
        return dataclasses.replace(analysis, findings=gate(nb, settings.rules).keep(analysis.findings))

    return _guard(Path(path), run)


def generate(
    path: Path,
    settings: Settings | None = None,
    progress: Progress = _noop,
    *,
    watch: RunWatch | None = None,
) -> Generated:
    """Load, analyse, plan, transform, (record, generate tests,) format and verify. Writes nothing to ``out``.

    ``watch`` (``nbharden.record.watch``): hears of every cell of the recorded runs and can cancel them.
    """
    settings = settings or Settings()
    path = Path(path)

    def run() -> Generated:
        from nbharden.analyse import analyse
        from nbharden.emit import emit
        from nbharden.fmt import format_tree
        from nbharden.plan import make_plan
        from nbharden.targets import apply_target

        progress("load", path)
        nb = load(path, settings)
        progress("analyse", path)
        analysis = analyse(nb, settings=settings)
        plan = make_plan(analysis, settings=settings)
        out = Path(settings.out) if settings.out else default_out(path)
        recorded: dict[str, object] | None = None
        if settings.record:
            progress("record", path)
            tree, findings, plan, recorded = _with_recorded_tests(
                nb, analysis, plan, settings, out, lambda: progress("transform", path), watch
            )
        else:
            progress("transform", path)
            tree, findings = emit(analysis, plan, out=out, settings=settings)
        tree = apply_target(tree, plan, analysis, settings=settings)
        progress("format", path)
        tree = format_tree(tree, settings=settings)
        from nbharden.selection import gate

        findings = gate(nb, settings.rules).keep(findings)
        return Generated(nb, analysis, plan, tree, findings, out, recorded)

    return _guard(path, run)


def convert(
    path: Path,
    settings: Settings | None = None,
    progress: Progress = _noop,
    *,
    watch: RunWatch | None = None,
) -> ChangeSet:
    """Generate the package for ``path`` and compare it with what is on disk. Writes nothing.

    Returns the ``ChangeSet`` (per file: new/changed/unchanged/edited, unified diff) with the findings.
    ``watch``: see ``generate``.
    """
    from nbharden.fresh import generation_entry
    from nbharden.review import review

    settings = settings or Settings()
    gen = generate(path, settings, progress, watch=watch)
    progress("review", Path(path))
    return _guard(
        Path(path),
        lambda: review(
            gen.tree,
            gen.out,
            notebook=gen.notebook.path,
            findings=gen.findings,
            plan=gen.plan,
            test_results=gen.test_results,
            # the bytes the files came from, not the file as it is now (it may have been saved since)
            notebook_sha256=gen.notebook.sha256,
            # what the conversion read: the next one with nothing changed need not run (nbharden.fresh)
            generation=generation_entry(gen.notebook, gen.plan, gen.findings, out=gen.out, settings=settings),
        ),
    )


def record(
    path: Path, settings: Settings | None = None, *, executed: Path | None = None
) -> tuple[Recording, str | None]:
    """Run the notebook (papermill, with the in-kernel recorder) and return what every step read and wrote,
    with the interpreter its kernel ran. ``executed``: keep papermill's executed copy there. Writes nothing
    else; raises ``ExecutionError`` when the notebook fails when run.
    """
    settings = settings or Settings()
    path = Path(path)

    def run() -> tuple[Recording, str | None]:
        from nbharden.analyse import analyse
        from nbharden.plan import make_plan
        from nbharden.record import record as _record
        from nbharden.record.run import kernel_python

        nb = load(path, settings)
        analysis = analyse(nb, settings=settings)
        plan = make_plan(analysis, settings=settings)
        with tempfile.TemporaryDirectory(prefix="nbharden-record-") as tmp:
            recording = _record(
                nb,
                plan,
                settings=settings,
                workdir=Path(tmp) / "recording",
                executed=executed,
                analysis=analysis,
            )
        return recording, kernel_python(recording.kernel)

    return _guard(path, run)


def review_changes(
    paths: tuple[Path, ...] = (Path("."),),
    *,
    base: str | None = None,
    overrides: Mapping[str, object] | None = None,
    run_tests: bool = True,
    fail_on_change: bool = False,
    progress: Progress = _noop,
) -> ReviewReport:
    """Review what the current tree changed in the notebooks under ``paths`` since ``base`` (a git revision;
    None: the merge base of HEAD with the default branch): per notebook the behaviour diff, the package's
    code diff, new and resolved findings, whether the committed package is in sync and its tests pass.
    Writes nothing in the checkout (the work happens in temporary git worktrees). See ``nbharden.prreview``.
    """
    from nbharden.prreview.collect import ReviewRequest
    from nbharden.prreview.collect import review_changes as _review

    request = ReviewRequest(tuple(paths), base, dict(overrides or {}), run_tests, fail_on_change)
    return _review(request, progress)


def write(
    changes: ChangeSet,
    settings: Settings | None = None,
    *,
    pin: OutPin | None = None,
    keep: Collection[str] = (),
    overwrite: Collection[str] = (),
) -> ChangeSet:
    """Write a ``ChangeSet`` atomically. Refuses hand-edited files unless ``settings.force``.

    ``pin`` (``nbharden.write.pin_out`` before the conversion ran): the write is refused if the
    output folder leads elsewhere now. ``keep``: hand-edited files to leave as they are (they stay
    hand-edited); ``overwrite``: hand-edited files to replace without ``settings.force``. Raises
    ``EditedFileError`` (with the diff) or ``WriteError``. Returns the change set as written.
    """
    from nbharden.write import write_changes

    settings = settings or Settings()
    return write_changes(changes, force=settings.force, pin=pin, keep=keep, overwrite=overwrite)


T = TypeVar("T")


def _with_recorded_tests(
    nb: Notebook,
    analysis: FullAnalysis,
    plan: Plan,
    settings: Settings,
    out: Path,
    transforming: Callable[[], None],
    watch: RunWatch | None = None,
) -> tuple[FileTree, tuple[Finding, ...], Plan, dict[str, object]]:
    """Run the notebook (papermill, twice); emit the package with the recorded types and data contracts, and
    characterization tests in place of the smoke tests."""
    from nbharden.dependencies import installed_versions
    from nbharden.emit import emit, finding_key
    from nbharden.record import record
    from nbharden.record.run import kernel_python
    from nbharden.recorded_types import refine
    from nbharden.testgen import generate_tests

    with tempfile.TemporaryDirectory(prefix="nbharden-record-") as tmp:
        # the output folder is read-only to the notebook in the sandbox: nothing it plants
        # there (a conftest.py) runs when the generated tests do
        recording = record(
            nb,
            plan,
            settings=settings,
            workdir=Path(tmp),
            analysis=analysis,
            protect=[out],
            watch=watch,
        )
        plan, contract_findings = refine(plan, recording, analysis)
        transforming()
        tree, findings = emit(analysis, plan, out=out, settings=settings)
        findings = tuple(sorted((*findings, *contract_findings), key=finding_key))
        tests = generate_tests(plan, recording, package=plan.package)
        python = kernel_python(recording.kernel)
        # lower bounds of the generated dependencies: the versions the notebook ran with
        tree = _bounded(tree, installed_versions(python, plan.dependencies))
        summary: dict[str, object] = {
            "recorded": True,
            "runs": recording.runs,
            "seconds": list(recording.seconds),
            "stored_bytes": recording.stored_bytes,
            "capped": recording.capped,
            # which sandbox tier ran the notebook (nbharden.record.sandbox), None when none did
            "sandbox": recording.sandbox,
            # the generated tests belong to the notebook's environment: the interpreter its kernel runs
            "python": python,
        }
    files = {p: t for p, t in tree.as_dict().items() if not p.startswith("tests/")}
    files.update(tests)
    return FileTree.of(files), findings, plan, summary


def _bounded(tree: FileTree, versions: dict[str, str | None]) -> FileTree:
    """``tree`` with lower bounds from ``versions`` on the generated pyproject.toml's dependencies."""
    from nbharden.dependencies import with_lower_bounds

    files = tree.as_dict()
    if "pyproject.toml" in files:
        files["pyproject.toml"] = with_lower_bounds(files["pyproject.toml"], versions)
    return FileTree.of(files)


def run_tests(
    out: Path,
    *,
    python: str | None = None,
    timeout: float = 900.0,
    settings: Settings | None = None,
    notebook: Path | None = None,
    files: Mapping[str, str] | None = None,
    junit: Path | None = None,
    cases: bool = False,
    check: bool = True,
    cancel: Cancel | None = None,
    warm: WarmSuite | None = None,
) -> dict[str, object]:
    """Run the generated package's test suite once (``python -m pytest`` in ``out``); return counts and output.

    ``cases``: also each test's outcome, under ``"cases"`` (``{"id", "outcome", "message"}``: pytest's node id,
    ``passed``/``failed``/``error``/``skipped``/``xfailed``/``xpassed``, the failure's or skip's one line).
    ``check=False`` returns a failing run instead of raising. ``cancel`` stops the run (``CancelledError``).

    The tests run the notebook's code: with ``settings`` whose sandbox tier is on, they run in the same
    sandbox as the recording, with the same limits (``notebook``, the source notebook, is then required: its
    folder is the one the code may write). In tier ``bwrap`` the output folder is shown read-only and holds
    only ``files`` (the generated files, path -> text; default: what is on disk), so nothing else there
    (a planted ``conftest.py``) is loaded. Raises ``VerificationError`` when the suite fails: the generated
    code does not reproduce the notebook.

    ``warm``: an interpreter started ahead for this run (``nbharden.warm_suite``); used when the run would be its
    own (same interpreter and environment, no sandbox, no JUnit report), else the suite runs in a new one.
    """
    import sys

    from nbharden.dependencies import check_installed
    from nbharden.record.sandbox import SandboxReport, resolve

    report = resolve(settings) if settings is not None else SandboxReport("off", "off")
    if report.active and notebook is None:
        raise InternalError(
            "internal error (please report): sandboxed tests need the notebook", path=out
        )
    # the variables of the recorded run (thread counts, hash seed), set from the start: the suite's conftest
    # would otherwise start pytest again with them (issue 17)
    recorded = _recorded_environment(Path(out), files)
    ran = None
    if warm is not None and not report.active and junit is None:
        cmd, env = _pytest_command(Path(out), python, cases=cases, environment=recorded)
        if warm.fits(cmd[0], env):  # it has imported pytest, or ends saying it cannot: no probe of it
            check_installed(Path(out), cmd[0])
            ran = _pytest_warm(warm, cmd, out=Path(out), timeout=timeout, cancel=cancel)
    if ran is None:
        python = _test_python(python)
        # a missing dependency would only show as "3 errors" of collection: name it, with its pip line
        check_installed(Path(out), python or sys.executable)
        cmd, env = _pytest_command(Path(out), python, cases=cases, environment=recorded)
        ran = _pytest_in_sandbox(
            report,
            cmd,
            env=env,
            keep=tuple(recorded),
            out=Path(out),
            notebook=notebook,
            files=files,
            timeout=timeout,
            cancel=cancel,
            junit=junit,
        )
    text, returncode = ran
    last = text.strip().splitlines()[-1].strip("= ") if text.strip() else ""
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", last)}
    result: dict[str, object] = {
        "returncode": returncode,
        **counts,
        "summary": last,
        # the sandbox tier the tests ran in (the recording's is under "sandbox")
        "verify_sandbox": report.tier,
    }
    if cases:
        result["cases"] = test_cases(text)
    if returncode != 0 and check:
        raise VerificationError(
            f"generated tests failed ({result['summary']}); run 'python -m pytest' in {out} to see why",
            path=out,
        )
    return result


def _pytest_command(
    out: Path, python: str | None, *, cases: bool, environment: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a run of the suite in ``out``: its own rootdir and conftest files, its
    ``src`` on the path, no plugin loaded by entry point, the Agg backend, and ``environment`` set."""
    import sys

    root = str(Path(out).resolve())
    verbosity = ["-v", "-rfEs"] if cases else ["-q"]
    cmd = [python or sys.executable, "-m", "pytest", *verbosity, "-p", "no:cacheprovider", "--no-header"]
    cmd += ["--rootdir", root, "--confcutdir", root]
    env = dict(
        os.environ,
        PYTHONPATH=str(Path(out).resolve() / "src"),
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
        # no plugin installed by a notebook (entry points) loads into the tests
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    env.update(environment or {})
    if cases:
        env["COLUMNS"] = "1000"  # pytest cuts a skip's reason to the terminal's width
    return cmd, env


def warm_suite(out: Path, notebook: Path) -> WarmSuite:
    """An interpreter getting ready now to run the suite that will be generated in ``out`` for ``notebook``
    (``nbharden.warm_suite``): the interpreter the notebook's kernel runs, with the environment ``run_tests``
    gives a recorded suite (the recording's variables, ``record.KERNEL_ENV``). ``run_tests`` uses it when the
    run is the same (else it starts pytest afresh). Close it."""
    from nbharden.record.run import KERNEL_ENV
    from nbharden.warm_suite import WarmSuite

    python = _kernel_python_of(Path(notebook))
    cmd, env = _pytest_command(Path(out), python, cases=False, environment=KERNEL_ENV)
    return WarmSuite(cmd[0], env, Path(notebook))


def _kernel_python_of(notebook: Path) -> str | None:
    """The interpreter the notebook's kernel will run, as the recording finds it (``record.kernel_python``);
    None when it cannot tell (this interpreter is then the guess)."""
    import json

    from nbharden.record.run import kernel_python, resolve_kernel

    try:
        if notebook.stat().st_size > 16 * 1024 * 1024:  # read again only when that is cheap
            return None
        spec = json.loads(notebook.read_bytes()).get("metadata", {}).get("kernelspec", {})
        name = spec.get("name") if isinstance(spec, dict) else None
        return kernel_python(resolve_kernel(name if isinstance(name, str) and name else "python3"))
    except (OSError, ValueError, AttributeError, NbhardenError):
        return None


def _pytest_warm(
    warm: WarmSuite, cmd: list[str], *, out: Path, timeout: float, cancel: Cancel | None
) -> tuple[str, int] | None:
    """``cmd`` (``python -m pytest ARGS``) run by ``warm`` in ``out``; None when ``warm`` had ended."""
    import subprocess

    try:
        return warm.run(cmd[3:], cwd=out.resolve(), timeout=timeout, cancel=cancel)
    except subprocess.TimeoutExpired as exc:
        raise VerificationError(f"generated tests did not finish in {timeout:.0f} s", path=out) from exc


def _recorded_environment(out: Path, files: Mapping[str, str] | None) -> dict[str, str]:
    """The environment the suite's conftest reproduces (``tests/data/recording.json``, or ``tests/setup.json``
    without a recording): variable -> value; empty when neither file is there or readable."""
    import json

    for name in ("tests/data/recording.json", "tests/setup.json"):
        try:
            text = files[name] if files is not None else (out / name).read_text(encoding="utf-8")
            found = json.loads(text).get("environment", {})
        except (KeyError, OSError, ValueError, AttributeError):
            continue
        if isinstance(found, dict):
            return {str(k): str(v) for k, v in found.items() if isinstance(v, str)}
    return {}


_CASE = re.compile(
    r"^(?P<id>\S[^\n]*?::[^\n]*?) (?P<outcome>PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)"
    r"(?: \((?P<reason>[^\n]*)\))?\s+\[\s*\d+%\]$",
    re.MULTILINE,
)
_SHORT = re.compile(r"^(?P<outcome>FAILED|ERROR) (?P<id>\S[^\n]*?::[^\n]*?)(?: - (?P<message>[^\n]*))?$", re.MULTILINE)
_OUTCOMES = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "error",
    "SKIPPED": "skipped",
    "XFAIL": "xfailed",
    "XPASS": "xpassed",
}


def test_cases(text: str) -> list[dict[str, str]]:
    """Each test's outcome from ``pytest -v -rfEs`` output: ``{"id", "outcome", "message"}`` in run order."""
    found: dict[str, dict[str, str]] = {}
    for m in _CASE.finditer(text):
        outcome = _OUTCOMES[m["outcome"]]
        case = found.setdefault(m["id"], {"id": m["id"], "outcome": outcome, "message": m["reason"] or ""})
        if outcome == "error":  # an error in set-up or tear-down outranks the test's own outcome
            case["outcome"] = "error"
    for m in _SHORT.finditer(text):
        case = found.setdefault(m["id"], {"id": m["id"], "outcome": _OUTCOMES[m["outcome"]], "message": ""})
        case["message"] = case["message"] or (m["message"] or "")
    return list(found.values())


def _test_python(python: str | None) -> str | None:
    """The notebook's interpreter if it can run pytest; else None (the one nbharden runs in)."""
    import subprocess
    import sys

    if python and python != sys.executable:
        probe = subprocess.run(
            [python, "-c", "import pytest"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        return python if probe.returncode == 0 else None
    return python


def _pytest_in_sandbox(
    report: SandboxReport,
    cmd: list[str],
    *,
    env: dict[str, str],
    out: Path,
    notebook: Path | None,
    files: Mapping[str, str] | None,
    timeout: float,
    cancel: Cancel | None = None,
    junit: Path | None = None,
    keep: Collection[str] = (),
) -> tuple[str, int]:
    """Run ``cmd`` in ``out`` inside ``report``'s sandbox; (output, exit status). ``keep``: names of ``env``
    kept in tier bwrap besides the tests' own (``_TEST_ENV``). ``junit``: copy pytest's
    JUnit XML there (written inside the sandbox's run folder, the one place the tests may write).

    Raises ``VerificationError`` when it times out or the sandbox's wall time stops it.
    """
    import subprocess

    from nbharden.record.sandbox import Session

    own = {*_TEST_ENV, *keep}  # the tests' own variables: kept in tier bwrap, which starts from an empty set
    with tempfile.TemporaryDirectory(prefix="nbharden-verify-") as tmp:
        overlays: list[tuple[Path, Path]] = []
        if report.tier == "bwrap":
            copy = Path(tmp) / "out"
            _copy_tree(out, copy, files)
            overlays.append((out.resolve(), copy))
        (Path(tmp) / "run").mkdir()
        report_xml = Path(tmp) / "run" / "junit.xml"
        if junit is not None:
            cmd = [*cmd, f"--junitxml={report_xml}", "-o", "junit_family=xunit2"]
        session = Session(
            report,
            notebook=(notebook or out).resolve(),
            run_dir=Path(tmp) / "run",
            protect=[out],
            overlays=overlays,
            kernel=False,
            own_env={k: v for k, v in env.items() if k in own},
        )
        limit = min(timeout, report.wall_time) if report.active else timeout
        try:
            with session:
                proc = session.run(cmd, env=env, cwd=out.resolve(), timeout=limit, cancel=cancel)
        except subprocess.TimeoutExpired as exc:
            raise VerificationError(
                f"generated tests did not finish in {limit:.0f} s", path=out
            ) from exc
        if session.expired:
            raise VerificationError(
                f"the sandbox stopped the generated tests after {report.wall_time:g} s "
                "(setting sandbox-wall-time)",
                path=out,
            )
        if junit is not None and report_xml.is_file():
            Path(junit).write_bytes(report_xml.read_bytes())
    return proc.stdout + proc.stderr, proc.returncode


#: What the generated tests' environment has of its own (kept in sandbox tier ``bwrap``).
_TEST_ENV = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "MPLBACKEND", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


def _copy_tree(out: Path, copy: Path, files: Mapping[str, str] | None) -> None:
    """``files`` (relative POSIX path -> text) written under ``copy``; without ``files``, the files the
    manifest in ``out`` lists, as they are on disk."""
    from nbharden.manifest import MANIFEST, read_manifest

    if files is None:
        hashes = read_manifest(out)
        names = [*hashes, MANIFEST] if hashes is not None else []
        files = {
            name: (out / name).read_text(encoding="utf-8")
            for name in names
            if (out / name).is_file()
        }
    for name, text in files.items():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def _guard(path: Path, fn: Callable[[], T]) -> T:
    """Run a stage; turn anything that is not an ``NbhardenError`` into an ``InternalError`` naming the file."""
    try:
        with warnings.catch_warnings():
            # parsing the notebook's code warns about valid code ("x is 1") straight onto stderr
            warnings.simplefilter("ignore", SyntaxWarning)
            return fn()
    except NbhardenError:
        raise
    except RecursionError as exc:  # bad input, not a bug: exit 2 like the CLI's own mapping
        raise InputError("refused: code nested too deeply to analyse", path=path) from exc
    except MemoryError as exc:
        raise InternalError("out of memory", path=path) from exc
    except Exception as exc:  # noqa: BLE001 - the one place that maps unknown failures (exit 123)
        raise InternalError(
            f"internal error (please report): {type(exc).__name__}: {exc}", path=path
        ) from exc
