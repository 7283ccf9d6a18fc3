"""Run a notebook both ways and compare: cell by cell in one namespace (the reference, as Jupyter
does), and as the pipeline nbharden generates from it.

The conversion is the static one (``--no-record``: analyse, plan, emit; with ``formatted=True`` also
ruff and black, as ``nbharden convert`` does). The generated package is written to a temporary folder
and imported in this process under a name of its own, its step functions wrapped to catch what each
returns, and ``pipeline.run()`` called with the default Config. Compared:

- what every step returns, with the notebook's values of those names after the step's last cell;
- the values ``run()`` returns, with the notebook's final values of those names;
- the state of ``random`` and of numpy's global generator at the end (both runs start from the
  same state), so a draw made twice or dropped shows.
"""

from __future__ import annotations

import ast
import copy
import importlib
import itertools
import json
import os
import random
import sys
import tempfile
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from nbharden import api
from nbharden.analyse import analyse
from nbharden.emit import emit
from nbharden.models import Plan, Shown
from nbharden.plan import make_plan
from nbharden.settings import Settings

from .compare import Difference, compare, compare_at_end
from .grammar import MARKDOWN, Case

_COUNTER = itertools.count(1)
SEED = 20240611


@dataclass
class Outcome:
    """What one run of a case saw: the notebook's values and the pipeline's, and the plan."""

    plan: Plan
    steps_code: str
    compared: int


class InvalidCase(AssertionError):
    """The drawn notebook fails when run as a notebook: a bug of the grammar, not of nbharden."""


class Failure(AssertionError):
    """The pipeline differs from the notebook (or did not run); the message shows the notebook."""


def write_case(case: Case, folder: Path) -> Path:
    """The notebook file (and its local modules) in ``folder``; returns the notebook's path."""
    nb = nbformat.v4.new_notebook()
    for cell in case.cells:
        if cell.startswith(MARKDOWN):
            nb.cells.append(nbformat.v4.new_markdown_cell(cell))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(cell))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = folder / "notebook.ipynb"
    nbformat.write(nb, path)
    for rel, text in case.files:
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return path


def load_case(path: Path) -> Case:
    """A regression fixture (``{"cells": [...], "files": {...}}``) as a Case."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return Case(tuple(data["cells"]), tuple(sorted(data.get("files", {}).items())))


def case_from_notebook(path: Path) -> Case:
    """A notebook file (and the .py files and packages beside it) as a Case."""
    nb = nbformat.read(path, as_version=4)
    cells = tuple(
        MARKDOWN + c.source.lstrip("# ") if c.cell_type == "markdown" else c.source
        for c in nb.cells
        if c.cell_type in ("code", "markdown")
    )
    files = {
        p.relative_to(path.parent).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(path.parent.rglob("*.py"))
        if "__pycache__" not in p.parts
    }
    return Case(cells, tuple(sorted(files.items())))


def _local_names(case: Case) -> set[str]:
    return {rel.split("/")[0].removesuffix(".py") for rel, _ in case.files}


def _forget(names: set[str]) -> None:
    """Drop modules (local ones, a generated package) from sys.modules, so the next import is fresh."""
    for mod in list(sys.modules):
        if mod.split(".")[0] in names:
            del sys.modules[mod]


def _seed() -> None:
    random.seed(SEED)
    np.random.seed(SEED % 2**32)


def _random_state() -> tuple[Any, Any]:
    return random.getstate(), np.random.get_state(legacy=True)


class Uncopied:
    """Stands for a value that could not be copied when a snapshot was taken (a generator)."""

    def __init__(self, value: Any) -> None:
        self.type = type(value).__name__


def snapshot(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - generators, modules: compared at the end instead
        return Uncopied(value)


@contextmanager
def _inside(folder: Path, on_path: bool) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(folder)
    if on_path:
        sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        os.chdir(old)
        if on_path:
            sys.path.remove(str(folder))


def _run_cell(cell: str, index: int, namespace: dict[str, Any]) -> Any:
    """Execute one cell; return the value of its last expression (what Jupyter shows), else None."""
    tree = ast.parse(cell)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, f"<cell {index}>", "exec"), namespace)  # noqa: S102 - drawn code
    if last is None:
        return None
    shown = ast.Expression(last.value)
    return eval(compile(shown, f"<cell {index}>", "eval"), namespace)  # noqa: S307 - drawn code


def run_reference(
    case: Case, folder: Path, after: dict[int, list[str]], shown: dict[int, list[Shown]] | None = None
) -> tuple[dict[str, Any], dict[int, dict[str, Any]], tuple[Any, Any]]:
    """Execute the code cells in one namespace, in the notebook's folder with the folder on sys.path
    (as Jupyter has it). Returns the namespace, snapshots of the names ``after[cell]`` lists taken
    after that cell, and the random state at the end. ``shown``: per cell, the values it shows that
    the pipeline keeps as results under a name of their own (its last expression: put in the namespace
    under that name, as the recorder does)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    snaps: dict[int, dict[str, Any]] = {}
    _forget(_local_names(case))
    _seed()
    with _inside(folder, on_path=True):
        for index, cell in enumerate(case.cells, start=1):
            if cell.startswith(MARKDOWN):
                continue
            try:
                value = _run_cell(cell, index, namespace)
                for kept in (shown or {}).get(index, []):
                    if kept.how == "bind":
                        namespace[kept.name] = value
            except Exception as exc:
                raise InvalidCase(
                    f"the notebook itself fails in cell {index}: {type(exc).__name__}: {exc}"
                ) from exc
            if index in after:
                snaps[index] = {n: snapshot(namespace[n]) for n in after[index] if n in namespace}
    state = _random_state()
    _forget(_local_names(case))
    return namespace, snaps, state


def convert(path: Path, package: str, *, formatted: bool) -> tuple[Plan, Path]:
    """The static conversion of ``path`` written under ``path.parent/out``; returns the plan."""
    out = path.parent / "out"
    settings = Settings(record=False, verify=False, name=package, out=out)
    if formatted:
        generated = api.generate(path, settings)
        plan, tree = generated.plan, generated.tree
    else:
        nb = api.load(path, settings)
        analysis = analyse(nb, settings=settings)
        plan = make_plan(analysis, settings=settings)
        tree, _ = emit(analysis, plan, out=out, settings=settings)
    for rel, text in tree:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return plan, out


def _results(value: Any) -> dict[str, Any]:
    """``run()``'s results by name: a mapping, or an object with attributes (a dataclass, a model)."""
    if isinstance(value, dict):
        return dict(value)
    if hasattr(value, "model_dump"):
        return {k: getattr(value, k) for k in type(value).model_fields}
    return {k: v for k, v in vars(value).items() if not k.startswith("_")}


def run_pipeline(
    plan: Plan, out: Path, folder: Path, local: set[str]
) -> tuple[dict[str, Any], dict[str, Any], tuple[Any, Any]]:
    """Import the generated package and run it. Returns run()'s results, what each step returned
    (snapshots, by step name) and the random state at the end."""
    package = plan.package
    src = str(out / "src")
    sys.path.insert(0, src)
    importlib.invalidate_caches()
    _forget(local | {package})
    returned: dict[str, Any] = {}
    try:
        steps = importlib.import_module(f"{package}.steps")
        for step in plan.steps:
            original = getattr(steps, step.name)

            def wrapper(
                *args: Any,
                __f: Any = original,
                __n: str = step.name,
                __k: int = len(step.outputs),
                **kwargs: Any,
            ) -> Any:
                value = __f(*args, **kwargs)
                many = __k > 1 and isinstance(value, tuple)
                returned[__n] = tuple(snapshot(v) for v in value) if many else snapshot(value)
                return value

            setattr(steps, step.name, wrapper)
        pipeline = importlib.import_module(f"{package}.pipeline")
        _seed()
        with _inside(folder, on_path=False):
            results = pipeline.run()
        state = _random_state()
    finally:
        sys.path.remove(src)
        _forget(local | {package})
    missing = [s.name for s in plan.steps if s.name not in returned]
    if missing:
        raise Failure(f"the pipeline did not call step(s) {missing} through the steps module")
    return _results(results), returned, state


def check_case(case: Case, *, formatted: bool = False) -> Outcome:
    """Run ``case`` both ways and compare. Raises ``Failure`` with the notebook and the difference."""
    with tempfile.TemporaryDirectory(prefix="nbequiv-") as tmp:
        folder = Path(tmp)
        path = write_case(case, folder)
        package = f"nbequiv_pkg_{next(_COUNTER)}"
        try:
            plan, out = convert(path, package, formatted=formatted)
        except Exception as exc:
            raise Failure(_report(case, f"conversion failed: {type(exc).__name__}: {exc}")) from exc
        steps_code = (out / "src" / package / "steps.py").read_text(encoding="utf-8")
        last_cell = {step.name: step.cells[-1] for step in plan.steps}
        after: dict[int, list[str]] = {}
        for step in plan.steps:
            after.setdefault(last_cell[step.name], []).extend(o.name for o in step.outputs)
        try:
            shown: dict[int, list[Shown]] = {}
            for step in plan.steps:
                for kept in step.shown:
                    shown.setdefault(kept.cell, []).append(kept)
            namespace, snaps, ref_state = run_reference(case, folder, after, shown)
        except InvalidCase as exc:
            raise InvalidCase(_report(case, str(exc))) from None
        try:
            results, returned, state = run_pipeline(plan, out, folder, _local_names(case))
        except Failure as exc:
            raise Failure(_report(case, str(exc), steps_code)) from None
        except Exception as exc:
            detail = f"the pipeline raised {type(exc).__name__}: {exc}"
            raise Failure(_report(case, detail, steps_code)) from exc
        compared = 0
        try:
            for step in plan.steps:
                outputs = [o.name for o in step.outputs]
                value = returned[step.name]
                values = [value] if len(outputs) == 1 else list(value or ())
                if len(values) != len(outputs):
                    raise Difference(
                        f"step {step.name} returned {len(values)} values for {outputs}"
                    )
                for name, got in zip(outputs, values, strict=True):
                    expected = snaps.get(last_cell[step.name], {}).get(name, _MISSING)
                    compare(expected, got, f"step {step.name}: {name}")
                    compared += 1
            compare_at_end(
                [
                    (namespace.get(n, _MISSING), got, f"run(): {n}")
                    for n, got in sorted(results.items())
                ]
            )
            compared += len(results)
            compare(ref_state, state, "random state at the end")
        except Difference as exc:
            raise Failure(_report(case, str(exc), steps_code)) from None
        return Outcome(plan, steps_code, compared)


_MISSING = types.SimpleNamespace(missing=True)


def _report(case: Case, what: str, steps_code: str = "") -> str:
    text = f"{what}\n\n--- the notebook\n{case.render()}\n"
    if steps_code:
        text += f"\n--- the generated steps.py\n{steps_code}"
    text += "\n--- as a regression fixture (fixtures/equivalence/*.json)\n" + json.dumps(
        case.to_json()
    )
    return text
