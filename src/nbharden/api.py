"""The library API: what the CLI, the Jupyter server extension and tests call.

    >>> from nbharden import api
    >>> changes = api.convert(Path("analysis.ipynb"))      # computes everything, writes nothing
    >>> print(changes.changes[0].diff)
    >>> api.write(changes)                                  # the only call that touches the output folder

Nothing here prints, exits or reads global state: settings come in as an argument, problems go out as
``NbhardenError`` subclasses (see ``nbharden.errors``).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from nbharden.errors import InputError, InternalError, NbhardenError, VerificationError
from nbharden.models import Analysis, ChangeSet, FileTree, Finding, Notebook, Plan
from nbharden.settings import Settings

if TYPE_CHECKING:
    from nbharden.analyse import FullAnalysis

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
    return _guard(Path(path), lambda: analyse(load(path, settings), settings=settings))


def generate(path: Path, settings: Settings | None = None, progress: Progress = _noop) -> Generated:
    """Load, analyse, plan, transform, (record, generate tests,) format and verify. Writes nothing to ``out``."""
    settings = settings or Settings()
    path = Path(path)

    def run() -> Generated:
        from nbharden.analyse import analyse
        from nbharden.emit import emit
        from nbharden.fmt import format_tree
        from nbharden.plan import make_plan

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
                nb, analysis, plan, settings, out, lambda: progress("transform", path)
            )
        else:
            progress("transform", path)
            tree, findings = emit(analysis, plan, out=out, settings=settings)
        progress("format", path)
        tree = format_tree(tree, settings=settings)
        return Generated(nb, analysis, plan, tree, findings, out, recorded)

    return _guard(path, run)


def convert(path: Path, settings: Settings | None = None, progress: Progress = _noop) -> ChangeSet:
    """Generate the package for ``path`` and compare it with what is on disk. Writes nothing.

    Returns the ``ChangeSet`` (per file: new/changed/unchanged/edited, unified diff) with the findings.
    """
    from nbharden.review import review

    settings = settings or Settings()
    gen = generate(path, settings, progress)
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
        ),
    )


def write(changes: ChangeSet, settings: Settings | None = None) -> ChangeSet:
    """Write a ``ChangeSet`` atomically. Refuses hand-edited files unless ``settings.force``.

    Raises ``EditedFileError`` (with the diff) or ``WriteError``. Returns the change set as written.
    """
    from nbharden.write import write_changes

    settings = settings or Settings()
    return write_changes(changes, force=settings.force)


T = TypeVar("T")


def _with_recorded_tests(
    nb: Notebook,
    analysis: FullAnalysis,
    plan: Plan,
    settings: Settings,
    out: Path,
    transforming: Callable[[], None],
) -> tuple[FileTree, tuple[Finding, ...], Plan, dict[str, object]]:
    """Run the notebook (papermill, twice); emit the package with the recorded types and data contracts, and
    characterization tests in place of the smoke tests."""
    from nbharden.emit import emit, finding_key
    from nbharden.record import record
    from nbharden.record.run import kernel_python
    from nbharden.recorded_types import refine
    from nbharden.testgen import generate_tests

    with tempfile.TemporaryDirectory(prefix="nbharden-record-") as tmp:
        recording = record(nb, plan, settings=settings, workdir=Path(tmp), analysis=analysis)
        plan, contract_findings = refine(plan, recording, analysis)
        transforming()
        tree, findings = emit(analysis, plan, out=out, settings=settings)
        findings = tuple(sorted((*findings, *contract_findings), key=finding_key))
        tests = generate_tests(plan, recording, package=plan.package)
        summary: dict[str, object] = {
            "recorded": True,
            "runs": recording.runs,
            "seconds": list(recording.seconds),
            "stored_bytes": recording.stored_bytes,
            "capped": recording.capped,
            # which sandbox tier ran the notebook (nbharden.record.sandbox), None when none did
            "sandbox": recording.sandbox,
            # the generated tests belong to the notebook's environment: the interpreter its kernel runs
            "python": kernel_python(recording.kernel),
        }
    files = {p: t for p, t in tree.as_dict().items() if not p.startswith("tests/")}
    files.update(tests)
    return FileTree.of(files), findings, plan, summary


def run_tests(out: Path, *, python: str | None = None, timeout: float = 900.0) -> dict[str, object]:
    """Run the generated package's test suite once (``python -m pytest`` in ``out``); return counts and output.

    Raises ``VerificationError`` when the suite fails: the generated code does not reproduce the notebook.
    """
    import re
    import subprocess
    import sys

    env = dict(
        os.environ, PYTHONPATH=str(Path(out) / "src"), PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg"
    )
    if python and python != sys.executable:
        # the notebook's interpreter, if it can run pytest; else the one nbharden runs in
        probe = subprocess.run(
            [python, "-c", "import pytest"], capture_output=True, timeout=60, check=False
        )
        python = python if probe.returncode == 0 else None
    cmd = [python or sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header"]
    try:
        proc = subprocess.run(
            cmd,
            cwd=out,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise VerificationError(
            f"generated tests did not finish in {timeout:.0f} s", path=out
        ) from exc
    text = proc.stdout + proc.stderr
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", text)}
    result: dict[str, object] = {
        "returncode": proc.returncode,
        **counts,
        "summary": text.strip().splitlines()[-1] if text.strip() else "",
    }
    if proc.returncode != 0:
        raise VerificationError(
            f"generated tests failed ({result['summary']}); run 'python -m pytest' in {out} to see why",
            path=out,
        )
    return result


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
