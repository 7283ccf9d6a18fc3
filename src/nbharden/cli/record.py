"""``nbharden record``: run a notebook with papermill and the recorder, report what was recorded.

The recording half of ``convert`` on its own: nothing is generated and the notebook is never
written. Only typer and the standard library are imported at module level.
"""

from __future__ import annotations

import enum
import errno
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nbharden.cli.convert import Command as _ParameterPairsCommand

if TYPE_CHECKING:
    from nbharden.record.models import RecordedValue, Recording


class Format(enum.StrEnum):
    text = "text"
    json = "json"


class Command(_ParameterPairsCommand):
    """The record command, with ``-p NAME VALUE`` taking two values like papermill's."""


EPILOG = """\
\b
Examples:
  nbharden record analysis.ipynb
  nbharden record analysis.ipynb -p rate 0.2 -p year 2023 --output executed.ipynb
  nbharden record analysis.ipynb --format json | jq '.steps[].outputs[].type'

\b
Exit codes: 0 recorded, 2 usage error or bad notebook, 3 the notebook failed when run
(path:cell N: ExceptionType: message), 123 internal error, 130 interrupted.
"""


# Parameters of the command, one alias each (Typer reads the Annotated metadata).
NotebookParam = Annotated[
    Path,
    typer.Argument(
        metavar="NOTEBOOK",
        help="The notebook (.ipynb) to run. It is read, never modified.",
        show_default=False,
    ),
]

ParametersParam = Annotated[
    list[str] | None,
    typer.Option(
        "--parameter",
        "-p",
        metavar="NAME VALUE",
        help="Set a notebook parameter, as papermill does (repeatable): -p rate 0.2 "
        "(or -p rate=0.2). Overrides [tool.nbharden] parameters.",
        show_default=False,
    ),
]

OutputParam = Annotated[
    Path | None,
    typer.Option(
        "--output",
        metavar="PATH",
        help="Keep the executed copy of the notebook (papermill's output) here. "
        "Default: a temporary folder, removed afterwards.",
        show_default=False,
    ),
]

CellTimeoutParam = Annotated[
    float | None,
    typer.Option(
        "--cell-timeout",
        metavar="SECONDS",
        min=1,
        help="Stop a cell that runs longer than this (setting cell-timeout; default 600).",
        show_default=False,
    ),
]

SandboxParam = Annotated[
    bool | None,
    typer.Option(
        "--sandbox/--no-sandbox",
        help="Run the notebook in a sandbox: resource limits and, where bubblewrap works, "
        "no home folder, no network and no process left behind (setting sandbox: the "
        "configured tier, else auto; docs/sandbox.md).",
        show_default=False,
    ),
]

OutputFormatParam = Annotated[
    Format,
    typer.Option(
        "--format",
        help="text: a summary per step; json: one object on stdout (steps, recorded "
        "values with their types, volatile ones, sizes, the kernel).",
    ),
]

DebugParam = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]


def record(
    notebook: NotebookParam,
    parameters: ParametersParam = None,
    output: OutputParam = None,
    cell_timeout: CellTimeoutParam = None,
    sandbox: SandboxParam = None,
    output_format: OutputFormatParam = Format.text,
    debug: DebugParam = False,
) -> None:
    """Run a notebook in its Jupyter kernel and record what every step reads and writes.

    The notebook runs with papermill in its own folder, several times with different random
    seeds (values that change are volatile), with the in-kernel recorder that convert uses for
    the characterization tests. Nothing is generated and the notebook itself is never written.
    """
    from nbharden.cli import output as out_
    from nbharden.cli.convert import parameter_pairs
    from nbharden.cli.guard import Batch

    batch = Batch(debug=debug, err=out_.stderr())
    pairs = parameter_pairs(parameters or [], batch)
    if pairs is None:
        raise typer.Exit(batch.exit_code)
    shown = str(notebook)
    summary: dict[str, Any] | None = None
    with batch.interruptible():
        with batch.item(shown):
            summary = _record_one(notebook, pairs, output, cell_timeout, sandbox)
        if output_format is Format.json:
            if summary is None:
                data: dict[str, Any] = {
                    "notebook": shown,
                    "error": batch.failures[shown].to_json(),
                }
            else:
                data = {"notebook": shown, **summary, "error": None}
            print(json.dumps(data, indent=2, allow_nan=True, default=str), file=out_.stdout())
        elif summary is not None:
            print(_text(shown, summary), file=out_.stdout())
    raise typer.Exit(batch.exit_code)


def _is_link_loop(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _record_one(
    notebook: Path,
    parameters: list[tuple[str, str]],
    executed: Path | None,
    cell_timeout: float | None,
    sandbox: bool | None = None,
) -> dict[str, Any]:
    from nbharden.cli.guard import check_notebook, real_path
    from nbharden.errors import UsageError
    from nbharden.settings import load_settings

    check_notebook(notebook, inside="file")
    if executed is not None and real_path(executed) == real_path(notebook):
        raise UsageError("--output would overwrite the notebook; choose another path")
    if executed is not None and executed.is_dir():
        raise UsageError(f"--output {executed} is a folder; give a file path")
    if executed is not None and _is_link_loop(executed):
        raise UsageError(
            f"--output {executed}: symbolic link loop (too many levels of symbolic links)"
        )
    settings = load_settings(
        start=notebook.parent,
        cell_timeout=cell_timeout,
        sandbox=None if sandbox is None else ("on" if sandbox else "off"),
    )
    if parameters:
        merged = dict(settings.parameters)
        merged.update(dict(parameters))
        settings = settings.replace(parameters=tuple(merged.items()))

    from nbharden import api

    recording, python = api.record(notebook, settings, executed=executed)
    return _summary(recording, kept=executed, python=python)


def _value(value: RecordedValue) -> dict[str, Any]:
    columns = value.columns
    return {
        "name": value.name,
        "kind": value.kind,
        "type": value.type_name,
        "annotation": value.annotation,
        "shape": None if value.shape is None else list(value.shape),
        "dtype": value.dtype,
        "columns": (
            None
            if columns is None
            else [{"name": c.name, "label": c.label, "dtype": c.dtype} for c in columns]
        ),
        "volatile": value.volatile,
        "seed_dependent": value.seed_dependent,
        "bytes": value.bytes,
        "note": value.note,
    }


def _summary(recording: Recording, *, kept: Path | None, python: str | None) -> dict[str, Any]:
    steps = [s for s in recording.steps if s.executed]
    values = [v for s in steps for v in (*s.inputs, *s.outputs)]
    volatile = sorted(
        {f"{s.step}.{v.name}" for s in steps for v in (*s.inputs, *s.outputs) if v.volatile}
    )
    return {
        "kernel": recording.kernel,
        "python": python,
        "parameters": dict(recording.parameters),
        "runs": recording.runs,
        "seeds": list(recording.seeds),
        "seconds": list(recording.seconds),
        "steps": [
            {
                "name": s.step,
                "cells": list(s.cells),
                "draws_random": s.draws_random,
                "random_state_kept": s.random_state is not None,
                "inputs": [_value(v) for v in s.inputs],
                "outputs": [_value(v) for v in s.outputs],
            }
            for s in steps
        ],
        "values": len(values),
        "stored": sum(1 for v in values if v.loadable),
        "volatile": volatile,
        "stored_bytes": recording.stored_bytes,
        "cap_bytes": recording.cap_bytes,
        "capped": recording.capped,
        "executed": None if kept is None else str(kept),
        "sandbox": recording.sandbox,  # the tier that ran (nbharden.record.sandbox), or None
    }


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


def _describe(value: dict[str, Any]) -> str:
    text = str(value["name"])
    if value["type"]:
        text += f": {value['annotation'] or value['type']}"
    if value["shape"] is not None and value["type"] not in ("str", "bytes"):
        text += f" {'x'.join(map(str, value['shape']))}"
    if value["kind"] not in ("value", "pickle"):
        text += f" ({value['kind']})"
    if value["volatile"]:
        text += " [follows the seed]" if value["seed_dependent"] else " [volatile]"
    return text


def _text(notebook: str, summary: dict[str, Any]) -> str:
    seconds = ", ".join(f"{s:.1f} s" for s in summary["seconds"])
    lines = [
        f"{notebook}: recorded {len(summary['steps'])} steps in {summary['runs']} runs "
        f"({seconds}) with kernel {summary['kernel']}"
    ]
    for step in summary["steps"]:
        cells = step["cells"]
        where = f"cell {cells[0]}" if len(cells) == 1 else f"cells {cells[0]}-{cells[-1]}"
        ins = ", ".join(_describe(v) for v in step["inputs"]) or "-"
        outs = ", ".join(_describe(v) for v in step["outputs"]) or "-"
        extra = " (draws random numbers)" if step["draws_random"] else ""
        lines.append(f"  {step['name']} ({where}){extra}: in {ins}; out {outs}")
    lines.append(
        f"  {summary['values']} values, {summary['stored']} stored, "
        f"{len(summary['volatile'])} volatile; {_size(summary['stored_bytes'])} of the "
        f"{_size(summary['cap_bytes'])} cap"
        + (" (reached: some kept as fingerprints)" if summary["capped"] else "")
    )
    if summary["executed"]:
        lines.append(f"  executed copy: {summary['executed']}")
    sandbox = summary.get("sandbox")
    if isinstance(sandbox, dict):
        lines.append(
            f"  sandbox: {sandbox['tier']} (home {sandbox['home']}, network {sandbox['network']}, "
            f"leftovers killed by {sandbox['leftovers']})"
        )
        lines += [f"  warning: sandbox: {w}" for w in sandbox.get("warnings") or []]
    return "\n".join(lines)
