"""
Run the original notebook with papermill, twice, with the in-kernel recorder, and build
the ``Recording``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nbharden.errors import ExecutionError, InternalError, UsageError
from nbharden.models import Notebook, Plan
from nbharden.record.models import JSON, RecordedValue, Recording, StepRecording
from nbharden.record.sandbox import SandboxReport, Session, resolve
from nbharden.settings import Settings

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
    schedule = [
        {
            "index": i,
            "source": sources[i - 1],
            "before": before.get(i, []),
            "after": after.get(i, []),
        }
        for i in runs
    ]
    return schedule, step_cells


def _kernel_manager_class(env: Mapping[str, str], log_path: Path) -> type:
    """An ``AsyncKernelManager`` that starts its kernel with ``env`` (nbclient has no
    option for that).
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

    return RecordingKernelManager


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
    sandbox: SandboxReport | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """One papermill run with the recorder; returns the recorder's events and the wall time.

    Raises ``ExecutionError`` when the notebook fails, times out or kills its kernel.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "recorder.log"
    log.unlink(missing_ok=True)
    config = {
        "values_module": str(_HERE / "_values.py"),
        "out": str(run_dir),
        "log": str(log),
        "cap_bytes": cap_bytes,
        "cells": schedule,
        "secrets": sorted(f.name for f in plan.config_fields if f.secret),
    }
    config_path = run_dir / "recorder.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    env = {**KERNEL_ENV, "NBHARDEN_RECORDER": str(config_path)}
    output = run_dir / "executed.ipynb"
    source = nb.path.resolve()
    if output.resolve() == source:
        raise UsageError("the executed copy would overwrite the notebook", path=nb.path)
    # the sandbox (nbharden.record.sandbox) wraps the kernel command, kills leftovers on exit
    box = Session(sandbox or SandboxReport("off", "off"), notebook=source, run_dir=run_dir)
    started = time.perf_counter()
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
                kernel_manager_class=box.manager_class(
                    _kernel_manager_class(env, run_dir / "kernel.log")
                ),
            )
    except PapermillExecutionError as exc:
        events = _read_log(log)
        errors = [e for e in events if e.get("event") == "cell-error"]
        cell = int(errors[-1]["index"]) if errors else _papermill_cell(exc.cell_index, output)
        raise ExecutionError(
            f"{exc.ename}: {exc.evalue}{_hidden_state_hint(nb)}", path=nb.path, cell=cell
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
    seconds = time.perf_counter() - started
    events = _read_log(log)
    if not any(e.get("event") == "ready" for e in events):
        raise InternalError(f"the recorder did not load in kernel {kernel!r}", path=nb.path)
    problems = [e["message"] for e in events if e.get("event") == "recorder-error"]
    if problems:
        raise InternalError(f"the recorder failed in the kernel: {problems[0]}", path=nb.path)
    return events, seconds


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


def _values_by_key(events: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (str(e["step"]), str(e["phase"]), str(e["name"])): e
        for e in events
        if e.get("event") == "value"
    }


def _recorded(
    entry: dict[str, Any] | None, name: str, other: dict[str, Any] | None
) -> RecordedValue:
    if entry is None:
        return RecordedValue(name=name, kind="missing", note="not recorded (the step did not run)")
    fp = entry.get("fingerprint")
    volatile = other is not None and other.get("digest") != entry.get("digest")
    return RecordedValue(
        name=name,
        kind=str(entry["kind"]),
        type=str(entry.get("type", "")),
        annotation=str(entry.get("annotation", "")),
        file=entry.get("file"),
        sha256=entry.get("sha256"),
        bytes=int(entry.get("bytes", 0)),
        fingerprint=fp if isinstance(fp, dict) else {},
        volatile=volatile,
        note=str(entry.get("note", "")),
        alias_of=entry.get("alias_of"),
    )


def record(
    nb: Notebook,
    plan: Plan,
    *,
    settings: Settings,
    workdir: Path,
    runs: int = 2,
    cap_bytes: int = DEFAULT_CAP_BYTES,
) -> Recording:
    """Run ``nb``'s file ``runs`` times with papermill and record every step's inputs and outputs.

    The notebook file is only read. ``workdir`` receives ``recording.json``, ``values/``
    and ``executed.ipynb``.
    Values that differ between runs are marked volatile. Returns the ``Recording`` (already saved).
    Raises ``ExecutionError`` (exit 3) when the notebook fails, ``UsageError`` when no
    kernel is available.
    """
    import nbformat

    if runs < 1:
        raise UsageError("runs must be at least 1")
    try:
        raw = nbformat.read(str(nb.path), as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as exc:
        raise ExecutionError(f"cannot read the notebook to run it: {exc}", path=nb.path) from exc
    if len(raw.cells) != len(nb.cells):
        raise InternalError("the notebook changed on disk since it was loaded", path=nb.path)
    sources = [str(c.source) for c in raw.cells]
    tags = [list(c.get("metadata", {}).get("tags", [])) for c in raw.cells]
    schedule, step_cells = _schedule(nb, plan, sources, tags)
    kernel = resolve_kernel(nb.kernel_name)
    parameters = {name: parse_parameter(value) for name, value in settings.parameters}
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    all_events: list[list[dict[str, Any]]] = []
    seconds: list[float] = []
    sandbox = resolve(settings)  # raises UsageError when an explicit tier cannot run
    for run in range(runs):
        run_dir = workdir if run == 0 else workdir / f".run{run + 1}"
        events, took = _run_once(
            nb,
            plan,
            settings=settings,
            run_dir=run_dir,
            kernel=kernel,
            schedule=schedule,
            parameters=parameters,
            cap_bytes=cap_bytes,
            sandbox=sandbox,
        )
        all_events.append(events)
        seconds.append(took)
        if run > 0:
            shutil.rmtree(run_dir, ignore_errors=True)  # only its digests matter

    first = _values_by_key(all_events[0])
    others = [_values_by_key(e) for e in all_events[1:]]

    def value(step: str, phase: str, name: str) -> RecordedValue:
        key = (step, phase, name)
        entry = first.get(key)
        recorded = _recorded(entry, name, None)
        if any(o.get(key, {}).get("digest") != (entry or {}).get("digest") for o in others):
            recorded = _recorded(entry, name, {"digest": None})
        return recorded

    steps = tuple(
        StepRecording(
            step=step.name,
            cells=step_cells[step.name],
            inputs=(
                tuple(value(step.name, "in", p.name) for p in step.inputs)
                if step_cells[step.name]
                else ()
            ),
            outputs=(
                tuple(value(step.name, "out", p.name) for p in step.outputs)
                if step_cells[step.name]
                else ()
            ),
            executed=bool(step_cells[step.name]),
        )
        for step in plan.steps
    )
    stored = sum(p.stat().st_size for p in (workdir / "values").glob("*") if p.is_file())
    capped = any(
        v.kind == "fingerprint" and "cap" in v.note for s in steps for v in (*s.inputs, *s.outputs)
    )
    recording = Recording(
        notebook=nb.path,
        notebook_sha256=nb.sha256,
        root=workdir,
        kernel=kernel,
        parameters=tuple(parameters.items()),
        runs=runs,
        steps=steps,
        cap_bytes=cap_bytes,
        stored_bytes=stored,
        capped=capped,
        seconds=tuple(round(s, 3) for s in seconds),
        executed_notebook=workdir / "executed.ipynb",
        sandbox=sandbox.to_json() if sandbox.active else None,
    )
    recording.save()
    return recording
