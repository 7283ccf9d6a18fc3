"""
Run the original notebook with papermill, twice, with the in-kernel recorder, and build
the ``Recording``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nbharden.errors import ExecutionError, InternalError, NbhardenError, UsageError
from nbharden.models import Cell, Notebook, Plan
from nbharden.record._figures import common
from nbharden.record.models import (
    JSON,
    RECORDING_SEED,
    FileUse,
    HttpResponse,
    RecordedValue,
    Recording,
    StepRecording,
)
from nbharden.record.sandbox import SandboxReport, Session, resolve
from nbharden.record.watch import Cancel, CellProgress, RunWatch, kill_process_group
from nbharden.secrets import redact, secret_values
from nbharden.settings import Settings

if TYPE_CHECKING:
    from nbharden.analyse import FullAnalysis

_HERE = Path(__file__).parent
#: Deterministic, single-threaded numerics in the kernel so that two runs can be compared.
KERNEL_ENV = {
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
DEFAULT_CAP_BYTES = 20 * 1024 * 1024
_SKIP_TAG = "skip-execution"  # nbclient does not run cells with this tag
#: The pseudo-step that records, after the last cell, every name a step produced: what the
#: notebook ended with (a later step may have changed an object in place, through a
#: closure or a method the analysis cannot see).
FINAL = "__final__"


def parse_parameter(text: str) -> JSON:
    """A ``-p NAME VALUE`` value typed the way papermill's CLI does: bool, None, int,
    float, else the string.
    """
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def resolve_kernel(name: str) -> str:
    """
    The kernel to run: the notebook's kernelspec if installed, else ``python3``. Raises
    ``UsageError``.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    for candidate in (name, "python3"):
        if not candidate:
            continue
        try:
            manager.get_kernel_spec(candidate)
        except NoSuchKernel:
            continue
        return candidate
    raise UsageError(
        f"no Jupyter kernel named {name!r} or 'python3'; install one with "
        "'python -m ipykernel install --user --name python3'"
    )


def kernel_python(name: str) -> str | None:
    """The interpreter a kernelspec starts (its argv[0] when that is a Python), or None."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(name).argv
    except NoSuchKernel:
        return None
    if not argv or "python" not in Path(argv[0]).name:
        return None
    if argv[0] in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        # jupyter_client starts a spec whose argv[0] is a bare "python" with its own interpreter
        # (ipykernel's built-in spec): that is the notebook's, not the first python on PATH
        return sys.executable
    return str(argv[0])


def _hidden_state_hint(nb: Notebook) -> str:
    """A hint when the saved execution counts show cells were run out of order (hidden
    state), else "".
    """
    previous: tuple[int, int] | None = None
    for cell in nb.code_cells:
        count = cell.execution_count
        if count is None:
            continue
        if previous is not None and count < previous[1]:
            return (
                f" (hint: the saved notebook ran cell {cell.index} before cell {previous[0]}: "
                "it may have "
                "depended on hidden state; restart the kernel and run all cells to reproduce)"
            )
        previous = (cell.index, count)
    return ""


def _schedule(
    nb: Notebook, plan: Plan, sources: list[str], tags: list[list[str]]
) -> tuple[list[dict[str, Any]], dict[str, tuple[int, ...]]]:
    """The recorder's cell list (the cells papermill will run, in order) and each step's
    cells that run.
    """
    runs = [
        i + 1
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and sources[i].strip() and _SKIP_TAG not in tags[i]
    ]
    runnable = set(runs)
    before: dict[int, list[list[Any]]] = {}
    after: dict[int, list[list[Any]]] = {}
    step_cells: dict[str, tuple[int, ...]] = {}
    for step in plan.steps:
        cells = tuple(sorted(i for i in step.cells if i in runnable))
        step_cells[step.name] = cells
        if not cells:
            continue
        before.setdefault(cells[0], []).append([step.name, [p.name for p in step.inputs]])
        after.setdefault(cells[-1], []).append([step.name, [p.name for p in step.outputs]])
    finals = list(
        dict.fromkeys(p.name for s in plan.steps if step_cells[s.name] for p in s.outputs)
    )
    shown: dict[int, list[list[Any]]] = {}
    for step in plan.steps:
        for value in step.shown:
            if value.how == "print" and value.display >= 0:  # kept as the print evaluates it
                shown.setdefault(value.cell, []).append([value.name, "print", value.source, 0])
            elif value.how not in {"name", "print"}:  # a name: recorded with the step's outputs
                shown.setdefault(value.cell, []).append(
                    [value.name, value.how, value.display, value.displays]
                )
    if runs and finals:
        after.setdefault(runs[-1], []).append([FINAL, finals])
    schedule = [
        {
            "index": i,
            "source": sources[i - 1],
            "before": before.get(i, []),
            "after": after.get(i, []),
            "shown": shown.get(i, []),
        }
        for i in runs
    ]
    return schedule, step_cells


def _kernel_manager_class(
    env: Mapping[str, str], log_path: Path, cancel: Cancel | None = None
) -> type:
    """An ``AsyncKernelManager`` that starts its kernel with ``env`` (nbclient has no
    option for that); ``cancel`` kills the kernel's process group.
    """
    from jupyter_client.manager import AsyncKernelManager

    class RecordingKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw["env"] = {**os.environ, **env}
            # the kernel's own stdout/stderr (start-up warnings) go to a log, not to our
            # caller's terminal
            with open(log_path, "ab") as log:
                kw["stdout"] = log
                kw["stderr"] = log
                await super().start_kernel(**kw)
            pid = getattr(getattr(self, "provisioner", None), "pid", None)
            if cancel is not None and isinstance(pid, int):
                cancel.on_cancel(kill_process_group(pid))

    return RecordingKernelManager


def _cell_hook(
    watch: RunWatch, schedule: list[dict[str, Any]], run: int, runs: int
) -> Callable[..., None]:
    """nbclient's ``on_cell_execute`` hook: ``watch.on_cell`` for each cell of the schedule as it
    starts (nbclient runs the same cells; papermill's injected parameters cell is not one).
    """
    started = time.perf_counter()
    count = [0]

    def hook(cell: Any = None, cell_index: int | None = None, **_: Any) -> None:
        tags = cell.get("metadata", {}).get("tags", []) if isinstance(cell, dict) else []
        if "injected-parameters" in tags or count[0] >= len(schedule):
            return
        count[0] += 1
        watch.on_cell(
            CellProgress(
                run=run,
                runs=runs,
                cell=int(schedule[count[0] - 1]["index"]),
                position=count[0],
                total=len(schedule),
                elapsed=time.perf_counter() - started,
            )
        )

    return hook


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a dying kernel
        if isinstance(item, dict):
            events.append(item)
    return events


def _last_cell(events: list[dict[str, Any]]) -> int | None:
    cells = [e["index"] for e in events if e.get("event") == "cell"]
    return int(cells[-1]) if cells else None


def _recorder_config(
    plan: Plan,
    *,
    run_dir: Path,
    log: Path,
    schedule: list[dict[str, Any]],
    cap_bytes: int,
    seed: int | None,
    hidden: Sequence[str],
) -> dict[str, Any]:
    """What the in-kernel recorder reads (``NBHARDEN_RECORDER`` names the file it is written to)."""
    return {
        "values_module": str(_HERE / "_values.py"),
        "shapes_module": str(_HERE.parent / "secret_shapes.py"),
        "secrets_module": str(_HERE / "_runtime_secrets.py"),
        "http_module": str(_HERE / "_http.py"),
        "files_module": str(_HERE / "_files.py"),
        "figures_module": str(_HERE / "_figures.py"),
        "out": str(run_dir),
        "log": str(log),
        "cap_bytes": cap_bytes,
        "cells": schedule,
        "secrets": sorted(f.name for f in plan.config_fields if f.secret),
        "secret_values": list(hidden),
        "seed": seed,
        "lifted": {
            f.name: [f.literal, "Path" if f.annotation == "Path" else "str"]
            for f in plan.config_fields
            if f.kind == "lifted" and f.literal is not None and not f.secret
        },
    }


def _run_once(
    nb: Notebook,
    plan: Plan,
    *,
    settings: Settings,
    run_dir: Path,
    kernel: str,
    schedule: list[dict[str, Any]],
    parameters: dict[str, JSON],
    cap_bytes: int,
    seed: int | None = RECORDING_SEED,
    executed: Path | None = None,
    sandbox: SandboxReport | None = None,
    hidden: Sequence[str] = (),
    protect: Sequence[Path] = (),
    watch: RunWatch | None = None,
    run: tuple[int, int] = (1, 1),
    source: Path | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """One papermill run with the recorder; returns the recorder's events and the wall time.

    The kernel starts with the global generators seeded like ``seed_everything(seed)``
    (not at all when ``seed`` is None). The executed copy goes to ``executed`` (default
    ``run_dir/executed.ipynb``). ``hidden``: the secret values (:func:`_secret_values`) the
    recorder must never store or log. ``watch`` hears of each cell as it starts (``run``: this
    run's number and the runs planned) and can kill the kernel. ``source``: the notebook's file, absolute
    (default: ``nb.path`` resolved now, from the process's working folder).

    Raises ``ExecutionError`` when the notebook fails, times out or kills its kernel.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "recorder.log"
    log.unlink(missing_ok=True)
    config = _recorder_config(
        plan, run_dir=run_dir, log=log, schedule=schedule, cap_bytes=cap_bytes, seed=seed, hidden=hidden
    )
    config_path = run_dir / "recorder.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    # MPLBACKEND empty: the kernel shows figures as Jupyter's does (ipykernel picks its inline backend
    # when MPLBACKEND is unset or empty), even when nbharden runs with MPLBACKEND=Agg; the recorder
    # fingerprints the figures each cell shows (``_figures.py``)
    env = {**KERNEL_ENV, "NBHARDEN_RECORDER": str(config_path), "MPLBACKEND": ""}
    output = executed if executed is not None else run_dir / "executed.ipynb"
    source = source or nb.path.resolve()
    if output.resolve() == source:
        raise UsageError("the executed copy would overwrite the notebook", path=nb.path)
    # the sandbox (nbharden.record.sandbox) wraps the kernel command, kills leftovers on exit
    box = Session(
        sandbox or SandboxReport("off", "off"),
        notebook=source,
        run_dir=run_dir,
        protect=protect,
        own_env=env,
        keep_env=("PYDEVD_DISABLE_FILE_VALIDATION", "JPY_SESSION_NAME"),
    )
    watch = watch or RunWatch()
    started = time.perf_counter()
    _execute(
        nb,
        source,
        output,
        log,
        box=box,
        settings=settings,
        parameters=parameters,
        kernel=kernel,
        manager=box.manager_class(_kernel_manager_class(env, run_dir / "kernel.log", watch.cancel)),
        on_cell=_cell_hook(watch, schedule, *run),
        hidden=hidden,
    )
    seconds = time.perf_counter() - started
    events = _read_log(log)
    if not any(e.get("event") == "ready" for e in events):
        raise InternalError(f"the recorder did not load in kernel {kernel!r}", path=nb.path)
    problems = [e["message"] for e in events if e.get("event") == "recorder-error"]
    if problems:
        raise InternalError(f"the recorder failed in the kernel: {problems[0]}", path=nb.path)
    return events, seconds


def _execute(
    nb: Notebook,
    source: Path,
    output: Path,
    log: Path,
    *,
    box: Session,
    settings: Settings,
    parameters: dict[str, JSON],
    kernel: str,
    manager: type,
    on_cell: Callable[..., None],
    hidden: Sequence[str],
) -> None:
    """``papermill.execute_notebook`` of ``source`` into ``output`` in the sandbox session ``box`` (kernel
    manager class ``manager``); its failures as ``ExecutionError`` naming the cell (from the recorder's ``log``),
    after ``box`` has added its hint to them."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    try:
        with box:
            papermill.execute_notebook(
                str(source),
                str(output),
                parameters=parameters or None,
                kernel_name=kernel,
                # papermill would otherwise rewrite the whole notebook twice per cell
                request_save_on_cell_execute=False,
                progress_bar=False,
                log_output=False,
                cwd=str(source.parent),
                execution_timeout=max(1, math.ceil(settings.cell_timeout)),
                extra_arguments=[f"--IPKernelApp.exec_files={_HERE / '_recorder.py'}"],
                kernel_manager_class=manager,
                on_cell_execute=on_cell,
            )
    except PapermillExecutionError as exc:
        events = _read_log(log)
        errors = [e for e in events if e.get("event") == "cell-error"]
        cell = int(errors[-1]["index"]) if errors else _papermill_cell(exc.cell_index, output)
        raise ExecutionError(
            redact(f"{exc.ename}: {exc.evalue}", hidden) + _hidden_state_hint(nb),
            path=nb.path,
            cell=cell,
        ) from None
    except CellTimeoutError:
        raise ExecutionError(
            f"cell did not finish within {settings.cell_timeout:g} s (setting cell-timeout)",
            path=nb.path,
            cell=_last_cell(_read_log(log)),
        ) from None
    except DeadKernelError:
        raise ExecutionError(
            "the kernel died (out of memory, or a crash in native code)",
            path=nb.path,
            cell=_last_cell(_read_log(log)),
        ) from None
    except (RuntimeError, TimeoutError, OSError) as exc:
        raise ExecutionError(f"the kernel could not run the notebook: {exc}", path=nb.path) from exc


def _secret_values(
    nb: Notebook,
    plan: Plan,
    settings: Settings,
    parameters: Mapping[str, JSON],
    analysis: FullAnalysis | None = None,
) -> list[str]:
    """The notebook's hard-coded secrets and any secret field given with ``-p``.

    The recorder stores no value that holds one of them and writes none into its log. The
    hard-coded ones come from ``analysis`` (analysed here when the caller has none: that
    takes as long as a small notebook's run, so it is done once per recording, not per run).
    """
    from nbharden.analyse import analyse

    facts = (analysis or analyse(nb, settings=settings)).facts
    found = secret_values(s for cf in facts.cells.values() for s in cf.secrets) if facts else []
    names = {f.name for f in plan.config_fields if f.secret}
    given = [str(v) for k, v in parameters.items() if k in names and v not in (None, "")]
    return sorted({*found, *given}, key=lambda v: (-len(v), v))


def _papermill_cell(pm_index: int | None, executed: Path) -> int | None:
    """nbharden's cell number for papermill's 0-based index, which counts an injected
    parameters cell.
    """
    if pm_index is None:
        return None
    injected = None
    try:
        import nbformat

        cells = nbformat.read(str(executed), as_version=4).cells  # type: ignore[no-untyped-call]
        for i, cell in enumerate(cells):
            if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
                injected = i
                break
    except (OSError, ValueError):
        pass
    if injected is not None and pm_index > injected:
        pm_index -= 1
    return pm_index + 1


def _http_responses(events: list[dict[str, Any]]) -> tuple[HttpResponse, ...]:
    """The responses the run received (``http`` events), in order; a malformed one is left out."""
    found = []
    for e in events:
        if e.get("event") == "http":
            try:
                found.append(HttpResponse.from_json(e))
            except (KeyError, TypeError, ValueError, AssertionError):
                continue
    return tuple(found)


def _files(events: list[dict[str, Any]], event: str) -> tuple[FileUse, ...]:
    """The files the run's cells read (``event`` "read") or wrote ("write"), in the order first used,
    with the cells that used each."""
    cells: dict[str, list[int]] = {}
    for e in events:
        if e.get("event") == event and isinstance(e.get("path"), str):
            cells.setdefault(e["path"], []).append(int(e.get("cell") or 0))
    return tuple(FileUse(path, tuple(sorted(set(read)))) for path, read in cells.items())


def _values_by_key(events: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (str(e["step"]), str(e["phase"]), str(e["name"])): e
        for e in events
        if e.get("event") == "value"
    }


def _random_by_step(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per step that drew from the global generators: the stored state as it started."""
    return {str(e["step"]): e for e in events if e.get("event") == "random"}


#: The figures a run's cells showed: cell -> [(fingerprint, shown at the cell's end by the inline backend)].
CellFigures = dict[int, list[tuple[dict[str, Any], bool]]]


def _figures_by_cell(events: list[dict[str, Any]]) -> CellFigures | None:
    """The figures each cell showed (``figure`` events), or None when the recorder did not watch them."""
    if not any(e.get("event") == "ready" and e.get("figures") for e in events):
        return None
    found: CellFigures = {}
    for e in events:
        if e.get("event") == "figure" and isinstance(e.get("fingerprint"), dict):
            found.setdefault(int(e.get("cell") or 0), []).append(
                (e["fingerprint"], bool(e.get("at_end")))
            )
    return found


def _step_figures(
    cells: Sequence[int],
    first: CellFigures | None,
    others: Sequence[CellFigures | None],
    confirm: CellFigures | None,
    restored: bool,
) -> tuple[dict[str, JSON], ...] | None:
    """The fingerprints of the figures ``cells`` showed in run 1, for the step's test to compare; None
    when they cannot be compared: not watched, a fingerprint failed, or a figure the inline backend showed
    at the end of a cell before another cell of the step showed one (in the package, that cell would draw
    into the figure still open). Figures that differ between runs keep what the runs agree on (``common``),
    unless the same seed gave the same ones and the test restores the generators (``restored``).
    """
    if first is None or not cells:
        return None
    shown = [(cell, fp, at_end) for cell in cells for fp, at_end in first.get(cell, [])]
    if any("failed" in fp for _, fp, _ in shown):
        return None
    if any(at_end and cell < shown[-1][0] for cell, _, at_end in shown):
        return None

    def of(run: CellFigures | None) -> list[dict[str, Any]] | None:
        return None if run is None else [fp for cell in cells for fp, _ in run.get(cell, [])]

    mine = of(first) or []
    if all(of(o) == mine for o in others) or (restored and of(confirm) == mine):
        return tuple(mine)
    runs = [r for r in (of(o) for o in (*others, confirm)) if r is not None]
    if any(len(r) != len(mine) for r in runs):
        return None  # how many figures it shows depends on the run
    return tuple(common([fp, *(r[i] for r in runs)]) for i, fp in enumerate(mine))


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_STRUCTURE_KEYS = ("type", "shape", "dtype", "dtypes", "columns")
_UNSTABLE_NOTE = (
    "differs between two runs of the notebook with the same seed (a clock, a generator "
    "no seed controls, data that changes): only its type and shape are kept"
)


def _scrub(note: str) -> str:
    """A note without memory addresses, which change on every run."""
    return _ADDRESS.sub("", note)


def _common_structure(entries: list[dict[str, Any]]) -> dict[str, JSON]:
    """The parts of the fingerprints (type, shape, dtypes, columns) that every run agrees on."""
    prints: list[dict[str, Any]] = []
    for entry in entries:
        fp = entry.get("fingerprint")
        prints.append(fp if isinstance(fp, dict) else {})
    first = prints[0]
    return {
        key: first[key]
        for key in _STRUCTURE_KEYS
        if key in first and all(fp.get(key) == first[key] for fp in prints[1:])
    }


def _recorded(
    entry: dict[str, Any] | None,
    name: str,
    others: list[dict[str, Any] | None],
    confirm: dict[str, Any] | None,
) -> RecordedValue:
    """The value of run 1 (``entry``), checked against the runs with other seeds
    (``others``) and the confirming run with the same seed (``confirm``, None when not made
    or the value was missing there).
    """
    if entry is None:
        return RecordedValue(name=name, kind="missing", note="not recorded (the step did not run)")
    fp = entry.get("fingerprint")
    value = RecordedValue(
        name=name,
        kind=str(entry["kind"]),
        type=str(entry.get("type", "")),
        annotation=str(entry.get("annotation", "")),
        file=entry.get("file"),
        sha256=entry.get("sha256"),
        bytes=int(entry.get("bytes", 0)),
        fingerprint=fp if isinstance(fp, dict) else {},
        note=_scrub(str(entry.get("note", ""))),
        alias_of=entry.get("alias_of"),
    )
    digest = entry.get("digest")
    if all(o is not None and o.get("digest") == digest for o in others):
        return value
    if confirm is not None and confirm.get("digest") == digest:
        # follows the seed: the same seed gives the same value, so keeping it is reproducible
        return dataclasses.replace(value, volatile=True, seed_dependent=True)
    runs = [entry, *(o for o in (*others, confirm) if o is not None)]
    same_type = all(str(o.get("type", "")) == value.type for o in runs)
    same_annotation = all(str(o.get("annotation", "")) == value.annotation for o in runs)
    # list[int] in one run, list[float | int] in another: keep what they agree on, list
    annotation = value.annotation if same_annotation else value.annotation.split("[", 1)[0]
    if value.kind not in ("value", "pickle", "fingerprint") or not same_type:
        return dataclasses.replace(
            value,
            kind=("described" if value.kind in ("value", "pickle", "fingerprint") else value.kind),
            type=value.type if same_type else "",
            annotation=annotation if same_type else "",
            file=None,
            sha256=None,
            bytes=0,
            fingerprint=_common_structure(runs) if same_type else {},
            volatile=True,
            note=(_UNSTABLE_NOTE if same_type else "its type changes between runs of the notebook"),
        )
    return dataclasses.replace(
        value,
        kind="fingerprint",
        annotation=annotation,
        file=None,
        sha256=None,
        bytes=0,
        fingerprint=_common_structure(runs),
        volatile=True,
        note=_UNSTABLE_NOTE,
    )


def _differs(first: dict[Any, dict[str, Any]], other: dict[Any, dict[str, Any]], key: str) -> bool:
    """Whether two runs' events differ in ``key`` (a digest) for any item, or in their items."""
    return first.keys() != other.keys() or any(
        first[k].get(key) != other[k].get(key) for k in first
    )


def _may_run_together(
    nb: Notebook, analysis: FullAnalysis | None, sandbox: SandboxReport, python: str | None = None
) -> bool:
    """Whether two runs of ``nb`` may share the machine at once: two cores, and nothing one run could do to the
    other. A notebook that writes files (``to_csv``, ``savefig``, ``%%writefile``, ``open(..., "w")``) or runs
    commands (``!cmd``, ``%pip install``, ``%%bash``: any magic but those of :data:`_MAGICS_AT_ONCE`) could read
    what the other run is writing, or change the environment under it (two ``pip install`` at once), so it runs
    one run after the other, as does one whose analysis the caller did not give. The exception: ``pip install``
    lines of requirements that are all installed already in ``python`` (the kernel's interpreter), which change
    nothing (``%pip install scikit-learn`` at the top of a notebook). Sandbox tier ``bwrap`` creates and removes
    the mount points of the protected folders per run: its runs never overlap either.
    """
    from nbharden.local_modules import written_files
    from nbharden.models import Effect

    if analysis is None or (os.cpu_count() or 1) < 2 or sandbox.tier == "bwrap":
        return False
    if written_files(c.source for c in nb.code_cells):
        return False
    installs: list[str] = []
    if any(_runs_commands(c, installs) for c in nb.code_cells):
        return False
    if installs and (python is None or not _all_installed(python, installs)):
        return False
    return not any(
        effect in (Effect.FILE_WRITE, Effect.SHELL) for cell in analysis.cells for effect in cell.effects
    )


#: Magics that change nothing outside the kernel's own process (timing, display, the kernel's settings): a run
#: using them cannot affect another run. Any other magic (``%pip``, ``%conda``, ``%run``, ``%store``, ``%save``,
#: ``%%bash``, ``%%writefile``...) may write files or change the environment.
_MAGICS_AT_ONCE = frozenset(
    {
        "matplotlib", "pylab", "config", "load_ext", "reload_ext", "autoreload", "aimport", "precision",
        "xmode", "colors", "time", "timeit", "prun", "capture", "who", "whos", "who_ls", "pwd", "env",
        "html", "markdown", "latex", "javascript", "js", "svg", "display", "pinfo", "pinfo2", "pdef",
        "pdoc", "psource", "page", "magic", "lsmagic", "quickref", "memit", "lprun", "watermark",
    }
)  # fmt: skip
#: In masked code (``masking.mask_ipython``): a magic, and its name
_MAGIC_CALL = re.compile(r"get_ipython\(\)\.run_(?:line|cell)_magic\(\s*['\"](\w*)")
#: In a cell as written: a line that is a shell command or a magic (``files = !ls`` too), also inside the body of
#: a cell magic (``%%time``), which the masked code holds as a string
_IPYTHON_LINE = re.compile(
    r"^[ \t]*(?P<bound>[\w., \t\[\]()*]+=[ \t]*)?(?:!(?P<shell>[^\n]*)|%(?P<magic>%?\w*)(?P<args>[^\n]*))",
    re.MULTILINE,
)
#: ``pip install`` options that change nothing but what pip prints
_PIP_QUIET = frozenset(
    {
        "-q", "-qq", "-qqq", "--quiet", "--no-cache-dir", "--disable-pip-version-check",
        "--no-warn-script-location", "--no-input", "--progress-bar=off", "--root-user-action=ignore",
    }
)  # fmt: skip
_PIP_PREFIXES = (("pip",), ("pip3",), ("python", "-m", "pip"), ("python3", "-m", "pip"))


def _runs_commands(cell: Cell, installs: list[str]) -> bool:
    """Whether ``cell`` runs a shell command or a magic outside :data:`_MAGICS_AT_ONCE`; its ``pip install``
    lines of plain requirements (:func:`_pip_requirements`) are not counted but added to ``installs``."""
    # magics called in code (a shell call, ``get_ipython().system(...)``, is the analysis's ``Effect.SHELL``; the
    # masked ``%pip`` line is judged as written, below)
    if any(m.group(1) not in (*_MAGICS_AT_ONCE, "pip") for m in _MAGIC_CALL.finditer(cell.code)):
        return True
    for m in _IPYTHON_LINE.finditer(cell.source):
        magic, shell = m.group("magic"), m.group("shell")
        if magic is not None and magic.lstrip("%") in _MAGICS_AT_ONCE:  # ``%%time`` as ``%time``
            continue
        words = _pip_requirements(shell if shell is not None else f"pip {m.group('args')}")
        if m.group("bound") or (magic is not None and magic != "pip") or words is None:
            return True
        installs.extend(words)
    return False


def _pip_requirements(command: str) -> list[str] | None:
    """The requirements of ``pip install REQ...`` with quiet options only, each a plain name with an optional
    version specifier; None for any other command (a URL, a path, extras, ``-U``, ``-r file``, ``{var}``)."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        return None
    prefix = next((p for p in _PIP_PREFIXES if tuple(words[: len(p)]) == p), None)
    if prefix is None or words[len(prefix) : len(prefix) + 1] != ["install"]:
        return None
    found: list[str] = []
    for word in words[len(prefix) + 1 :]:
        if word.startswith("-"):
            if word not in _PIP_QUIET:
                return None
        elif re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:\s*(?:[<>=!~]=?|===)\s*[\w.*+!-]+,?)*", word):
            found.append(word)
        else:
            return None
    return found or None


def _all_installed(python: str, requirements: list[str]) -> bool:
    """Whether every requirement is met by what ``python`` has installed (then ``pip install`` changes nothing)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pip's and pytest's own dependency: missing only in a broken environment
        return False
    from nbharden.dependencies import installed_versions

    try:
        parsed = [Requirement(r) for r in requirements]
    except InvalidRequirement:
        return False
    versions = {k.lower(): v for k, v in installed_versions(python, [r.name for r in parsed]).items()}
    for req in parsed:
        version = versions.get(req.name.lower())
        if version is None or not req.specifier.contains(version, prereleases=True):
            return False
    return True


T = TypeVar("T")


def _at_once(first: Callable[[], T], second: Callable[[], T]) -> tuple[T, T]:
    """``first()`` here and ``second()`` in a thread, at the same time; both results. When either raises, the
    other is waited for all the same (its kernel stopped at its end), then the first's error is raised (the
    order of an error as if they had run one after the other)."""
    import concurrent.futures

    # papermill's cwd= changes the working folder of the whole process for a run and changes it back at its end:
    # two runs at once put it back in the wrong order, so the folder is restored here once both have ended
    # (the caller makes runs at once only with absolute paths, see ``record``).
    here = os.getcwd()
    try:
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nbharden-run") as pool:
            later = pool.submit(second)
            try:
                a = first()
            except BaseException:
                concurrent.futures.wait([later])
                raise
            return a, later.result()
    finally:
        os.chdir(here)


class _InOrder:
    """What a watch hears of runs made at once: run 1's cells as they start; the other run's held until run 1
    has ended (``release``), then told in order, so a front end shows one run after the other as when the runs
    do not overlap. Never two calls of ``on_cell`` at once (the runs call it from two threads).
    """

    def __init__(self, watch: RunWatch) -> None:
        import threading

        self.watch = watch
        self._lock = threading.Lock()
        self._held: list[CellProgress] = []
        self._released = False

    def on_cell(self, progress: CellProgress) -> None:
        with self._lock:
            if progress.run != 1 and not self._released:
                self._held.append(progress)
                return
            self.watch.on_cell(progress)

    def release(self) -> None:
        with self._lock:
            self._released = True
            held, self._held = self._held, []
            for progress in held:
                self.watch.on_cell(progress)

    def as_watch(self) -> RunWatch:
        return RunWatch(on_cell=self.on_cell, cancel=self.watch.cancel)


@dataclasses.dataclass
class _Runs:
    """The runs of one recording: what every run shares, and each run's seed and wall time by its number."""

    nb: Notebook
    plan: Plan
    settings: Settings
    workdir: Path
    kernel: str
    schedule: list[dict[str, Any]]
    parameters: dict[str, JSON]
    cap_bytes: int
    executed: Path | None
    sandbox: SandboxReport
    hidden: list[str]
    protect: Sequence[Path]
    watch: RunWatch
    planned: int
    order: _InOrder | None = None  # runs 1 and 2 at once: what the watch hears of them
    source: Path | None = None  # the notebook's file, absolute: resolved before any run changes the folder
    done: dict[int, tuple[int, float]] = dataclasses.field(default_factory=dict)

    def once(self, seed: int, number: int) -> list[dict[str, Any]]:
        """Run ``number`` (the first keeps its folder and executed copy; a later one only its events)."""
        run_dir = self.workdir if number == 1 else self.workdir / f".run{number}"
        self.watch.check(self.nb.path)
        try:
            events, took = _run_once(
                self.nb,
                self.plan,
                settings=self.settings,
                run_dir=run_dir,
                kernel=self.kernel,
                schedule=self.schedule,
                parameters=self.parameters,
                cap_bytes=self.cap_bytes,
                seed=seed,
                executed=self.executed if number == 1 else None,
                sandbox=self.sandbox,
                hidden=self.hidden,
                protect=self.protect,
                watch=self.watch,
                run=(number, max(self.planned, number)),
                source=self.source,
            )
        except NbhardenError:
            self.watch.check(self.nb.path)  # a kernel killed by Cancel is no failure of the notebook
            raise
        self.done[number] = (seed, took)
        if number > 1:
            shutil.rmtree(run_dir, ignore_errors=True)  # only its digests matter
        return events

    def all(self) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
        """Runs 1 to ``planned``, run ``i`` with seed ``RECORDING_SEED + i - 1``: the first run's events and
        the others'. With ``order``, the first two at once, each kernel on a core of its own.
        """
        if self.planned > 1 and self.order is not None:
            order = self.order

            def run_1() -> list[dict[str, Any]]:
                events = self.once(RECORDING_SEED, 1)
                order.release()
                return events

            first, second = _at_once(run_1, lambda: self.once(RECORDING_SEED + 1, 2))
            others = [second]
        else:
            first, others = self.once(RECORDING_SEED, 1), []
        for number in range(len(others) + 2, self.planned + 1):
            others.append(self.once(RECORDING_SEED + number - 1, number))
        return first, others


@dataclasses.dataclass(frozen=True)
class _Compared:
    """The runs' values and generator states side by side: run 1, the runs with other seeds, and the
    confirming run with the first seed (empty when not made)."""

    first: dict[tuple[str, str, str], dict[str, Any]]
    others: list[dict[tuple[str, str, str], dict[str, Any]]]
    confirm: dict[tuple[str, str, str], dict[str, Any]] | None
    first_random: dict[str, dict[str, Any]]
    others_random: list[dict[str, dict[str, Any]]]
    confirm_random: dict[str, dict[str, Any]]
    http: tuple[HttpResponse, ...] = ()  # the first run's HTTP responses
    files_read: tuple[FileUse, ...] = ()  # the files the first run's cells read
    files_written: tuple[FileUse, ...] = ()  # and those they wrote
    # the figures each run's cells showed: run 1, the runs with other seeds, the confirming run
    figures: tuple[CellFigures | None, tuple[CellFigures | None, ...], CellFigures | None] = (
        None,
        (),
        None,
    )

    def value(self, step: str, phase: str, name: str) -> RecordedValue:
        key = (step, phase, name)
        return _recorded(
            self.first.get(key),
            name,
            [o.get(key) for o in self.others],
            None if self.confirm is None else self.confirm.get(key),
        )

    def random_state(self, step: str) -> tuple[str | None, str | None]:
        """The stored state of the generators as ``step`` started, when reproducible."""
        entry = self.first_random.get(step)
        if entry is None:
            return None, None
        sha = entry.get("sha256")
        same = all(o.get(step, {}).get("sha256") == sha for o in self.others_random)
        if same or self.confirm_random.get(step, {}).get("sha256") == sha:
            return str(entry["file"]), str(sha)
        return None, None


def _compare(runs: _Runs) -> _Compared:
    """Make the runs; when any value or generator state differs between them, one more run with the first
    seed (the confirming run)."""
    events, other_events = runs.all()
    first, first_random = _values_by_key(events), _random_by_step(events)
    http, read, written = (_http_responses(events), _files(events, "read"), _files(events, "write"))
    others = [_values_by_key(e) for e in other_events]
    others_random = [_random_by_step(e) for e in other_events]
    confirm: dict[tuple[str, str, str], dict[str, Any]] | None = None
    confirm_random: dict[str, dict[str, Any]] = {}
    figures = _figures_by_cell(events), tuple(_figures_by_cell(e) for e in other_events)
    confirm_figures: CellFigures | None = None
    if any(_differs(first, o, "digest") for o in others) or any(
        _differs(first_random, o, "sha256") for o in others_random
    ):
        number = runs.planned + 1
        runs.planned = number
        events = runs.once(RECORDING_SEED, number)
        confirm, confirm_random = _values_by_key(events), _random_by_step(events)
        confirm_figures = _figures_by_cell(events)
    return _Compared(
        first,
        others,
        confirm,
        first_random,
        others_random,
        confirm_random,
        http,
        read,
        written,
        (*figures, confirm_figures),
    )


def _step_recordings(
    plan: Plan, step_cells: dict[str, tuple[int, ...]], compared: _Compared
) -> tuple[list[StepRecording], tuple[RecordedValue, ...]]:
    """Each step's recording, and the values the notebook ended with (``FINAL``)."""
    finals = tuple(
        compared.value(FINAL, "out", name)
        for name in dict.fromkeys(
            p.name for s in plan.steps if step_cells[s.name] for p in s.outputs
        )
        # a name deleted by a later cell keeps the value its step returned
        if compared.first.get((FINAL, "out", name), {}).get("kind") not in (None, "missing")
    )
    steps = []
    for step in plan.steps:
        cells = step_cells[step.name]
        state, state_sha = compared.random_state(step.name) if cells else (None, None)
        steps.append(
            StepRecording(
                step=step.name,
                cells=cells,
                inputs=(
                    tuple(compared.value(step.name, "in", p.name) for p in step.inputs) if cells else ()
                ),
                outputs=(
                    tuple(compared.value(step.name, "out", p.name) for p in step.outputs)
                    if cells
                    else ()
                ),
                executed=bool(cells),
                draws_random=bool(cells) and step.name in compared.first_random,
                random_state=state,
                random_state_sha256=state_sha,
                figures=_step_figures(cells, *compared.figures, restored=state is not None),
            )
        )
    return steps, finals


def _keep_only(
    workdir: Path,
    steps: list[StepRecording],
    finals: tuple[RecordedValue, ...],
    http: tuple[HttpResponse, ...] = (),
) -> tuple[int, bool]:
    """Remove the files of values no longer kept (they changed between runs); the bytes stored and whether a
    value was cut to its fingerprint by the size cap."""
    kept = {v.file for s in steps for v in (*s.inputs, *s.outputs) if v.file is not None}
    kept |= {v.file for v in finals if v.file is not None}
    kept |= {s.random_state for s in steps if s.random_state is not None}
    kept |= {r.file for r in http if r.file is not None}
    for path in (workdir / "values").glob("*"):
        if path.is_file() and f"values/{path.name}" not in kept:
            path.unlink()
    stored = sum(p.stat().st_size for p in (workdir / "values").glob("*") if p.is_file())
    capped = any(
        v.kind == "fingerprint" and "cap" in v.note
        for v in (*finals, *(v for s in steps for v in (*s.inputs, *s.outputs)))
    )
    return stored, capped


def _schedule_of(
    nb: Notebook, plan: Plan
) -> tuple[list[dict[str, Any]], dict[str, tuple[int, ...]]]:
    """The recorder's schedule and each step's cells that run, from the notebook's file as it is on disk."""
    import nbformat

    try:
        raw = nbformat.read(str(nb.path), as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as exc:
        raise ExecutionError(f"cannot read the notebook to run it: {exc}", path=nb.path) from exc
    if len(raw.cells) != len(nb.cells):
        raise InternalError("the notebook changed on disk since it was loaded", path=nb.path)
    sources = [str(c.source) for c in raw.cells]
    tags = [list(c.get("metadata", {}).get("tags", [])) for c in raw.cells]
    return _schedule(nb, plan, sources, tags)


def record(
    nb: Notebook,
    plan: Plan,
    *,
    settings: Settings,
    workdir: Path,
    runs: int = 2,
    cap_bytes: int = DEFAULT_CAP_BYTES,
    executed: Path | None = None,
    analysis: FullAnalysis | None = None,
    protect: Sequence[Path] = (),
    watch: RunWatch | None = None,
) -> Recording:
    """Run ``nb``'s file with papermill, ``runs`` times with different seeds, and record
    every step's inputs and outputs.

    Run ``i`` starts with the global generators seeded like ``seed_everything(i)``
    (``RECORDING_SEED`` first): the recorded values are those of the first run, so a
    pipeline seeded with 0 reproduces them. Values that differ between runs are volatile;
    then one more run with the first seed tells those that follow the seed (kept) from
    those that change anyway (only their type and shape kept), so two recordings of the
    same notebook store the same values. The first two runs are made at once when nothing
    one could do affects the other (``_may_run_together``).

    ``analysis``: the notebook's analysis, when the caller has it (else it is analysed again,
    for the hard-coded secrets the recorder must not store). ``protect``: folders the notebook
    must not change (the output folder): read-only in sandbox tier ``bwrap``. ``watch``: told of
    every cell of every run as it starts; its ``cancel`` stops the run in progress (its kernel is
    killed at once) and raises ``CancelledError``.

    The notebook file is only read. ``workdir`` receives ``recording.json`` and ``values/``;
    the executed copy of the first run goes to ``executed`` (default
    ``workdir/executed.ipynb``). Returns the ``Recording`` (already saved).
    Raises ``ExecutionError`` (exit 3) when the notebook fails, ``UsageError`` when no
    kernel is available.
    """
    if runs < 1:
        raise UsageError("runs must be at least 1")
    schedule, step_cells = _schedule_of(nb, plan)
    kernel = resolve_kernel(nb.kernel_name)
    parameters = {name: parse_parameter(value) for name, value in settings.parameters}
    # papermill changes the process's working folder for a run (its cwd=): with runs at once, a path one run
    # resolves while the other is in the notebook's folder would lead elsewhere, so every path is made absolute
    # here, from the caller's folder, before any run starts
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if executed is not None:
        executed = Path(executed).resolve()
        executed.parent.mkdir(parents=True, exist_ok=True)
    protect = [Path(p).resolve() for p in protect]
    sandbox = resolve(settings)  # raises UsageError when an explicit tier cannot run
    together = runs > 1 and _may_run_together(nb, analysis, sandbox, kernel_python(kernel))
    watch = watch or RunWatch()
    order = _InOrder(watch) if together else None
    made = _Runs(
        nb,
        plan,
        settings,
        workdir,
        kernel,
        schedule,
        parameters,
        cap_bytes,
        executed,
        sandbox,
        hidden=_secret_values(nb, plan, settings, parameters, analysis),
        protect=protect,
        watch=order.as_watch() if order is not None else watch,
        planned=runs,
        order=order,
        source=nb.path.resolve(),
    )
    compared = _compare(made)
    steps, finals = _step_recordings(plan, step_cells, compared)
    return _save(made, steps, finals, compared)


def _save(
    runs: _Runs,
    steps: list[StepRecording],
    finals: tuple[RecordedValue, ...],
    compared: _Compared,
) -> Recording:
    """The ``Recording`` of ``runs`` (the values no longer kept removed), saved in its folder."""
    http = compared.http
    stored, capped = _keep_only(runs.workdir, steps, finals, http)
    numbers = sorted(runs.done)
    recording = Recording(
        notebook=runs.nb.path,
        notebook_sha256=runs.nb.sha256,
        root=runs.workdir,
        kernel=runs.kernel,
        parameters=tuple(runs.parameters.items()),
        runs=len(numbers),
        steps=tuple(steps),
        cap_bytes=runs.cap_bytes,
        stored_bytes=stored,
        capped=capped,
        seconds=tuple(round(runs.done[n][1], 3) for n in numbers),
        executed_notebook=runs.executed if runs.executed is not None else runs.workdir / "executed.ipynb",
        seeds=tuple(runs.done[n][0] for n in numbers),
        finals=finals,
        sandbox=runs.sandbox.to_json() if runs.sandbox.active else None,
        environment=tuple(sorted(KERNEL_ENV.items())),
        http=http,
        files_read=compared.files_read,
        files_written=compared.files_written,
    )
    recording.save()
    return recording
