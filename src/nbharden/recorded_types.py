"""Types and data contracts from a recorded run: a plan made precise by what the notebook really held.

``refine(plan, recording, analysis)`` returns the plan with

- each step parameter and return value annotated with the type recorded for it (``pd.DataFrame``,
  ``np.ndarray``, ``float``, ``list[str]``, ``LinearRegression``...), written with the names the generated
  ``steps.py`` already imports; a type that cannot be spelled with them keeps the static guess;
- a data contract (``Contract``) for every frame a step takes in from another step (checked at entry) and for
  every frame a step reads from a file or the network (checked before it returns), with the columns and dtypes
  of the recorded run; each contract is reported as NBH206.

Values that changed type between the recording runs, or were never recorded, keep the static annotation.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import re
from collections.abc import Mapping

from nbharden.analyse import FullAnalysis
from nbharden.models import Contract, Effect, Finding, Fix, Param, Plan, Severity, Span, Step
from nbharden.record.models import RecordedValue, Recording, StepRecording

#: A longer recorded annotation (a union of nested tuples...) says less than it costs: the static guess stays.
MAX_ANNOTATION = 80

#: Frames with more columns than this get no contract: the check would drown the step's code.
MAX_CONTRACT_COLUMNS = 40

_BUILTIN_TYPES = {name for name in dir(builtins) if isinstance(getattr(builtins, name), type)} | {
    "None"
}
_FRAME_TYPES = {"pandas.DataFrame", "pandas.core.frame.DataFrame"}
#: The run's class of a function says nothing a type checker accepts: mypy types a ``def`` or a
#: lambda as a ``Callable``, never as ``types.FunctionType``, so such an annotation fails
#: ``mypy --strict`` on the step that returns the function. Those values stay ``Any``.
_FUNCTION_TYPES = re.compile(
    r"\b(?:types\.(?:FunctionType|LambdaType|MethodType|BuiltinFunctionType|BuiltinMethodType)"
    r"|builtins\.(?:function|builtin_function_or_method|method)|functools\.partial)\b"
)


class _Unspellable(Exception):
    pass


class _Spell(ast.NodeTransformer):
    """Rewrite dotted names of a recorded annotation into names bound in ``steps.py``."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = names  # qualified name -> expression text usable in steps.py

    def _dotted(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _replace(self, node: ast.expr) -> ast.expr:
        dotted = self._dotted(node)
        if dotted is None or any(part.startswith("_") for part in dotted.split(".")):
            # private names (numpy._ArrayFunctionDispatcher) may not exist where the annotation is evaluated
            raise _Unspellable(ast.dump(node))
        if dotted in _BUILTIN_TYPES:
            return node
        spelled = self.names.get(dotted)
        if spelled is None:
            module, _, attr = dotted.rpartition(".")
            while module and spelled is None:  # pandas.DataFrame -> pd.DataFrame
                prefix = self.names.get(module)
                if prefix is not None:
                    spelled = f"{prefix}.{dotted[len(module) + 1 :]}"
                module, _, attr = module.rpartition(".")
        if spelled is None:
            raise _Unspellable(dotted)
        return ast.parse(spelled, mode="eval").body

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self._replace(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        return self._replace(node)


def spell(annotation: str, names: Mapping[str, str]) -> str | None:
    """``annotation`` (dotted names from the run) written with ``names``; None when some name is not bound."""
    if not annotation or len(annotation) > MAX_ANNOTATION:
        return None
    try:
        tree = ast.parse(annotation, mode="eval")
        return ast.unparse(_Spell(names).visit(tree))
    except (SyntaxError, ValueError, RecursionError, _Unspellable):
        return None


def importable_names(plan: Plan, analysis: FullAnalysis) -> dict[str, str]:
    """Qualified name -> the name that refers to it at module level of the generated ``steps.py``."""
    facts = analysis.facts
    assert facts is not None
    names: dict[str, str] = {}
    for alias in sorted(plan.hoisted_imports):
        qualified = facts.qualified.get(alias)
        if qualified and qualified not in names:
            names[qualified] = alias
    for name in plan.hoisted:  # classes defined in the notebook and moved to module level
        names.setdefault(f"__main__.{name}", name)
    return names


def _annotation(value: RecordedValue | None, names: Mapping[str, str]) -> str | None:
    if value is None or value.kind == "missing" or not value.type:
        return None
    text = value.annotation or value.type
    if _FUNCTION_TYPES.search(text):
        return None
    return spell(text, names)


def _contract(value: RecordedValue | None, at: str) -> Contract | None:
    if value is None or value.type not in _FRAME_TYPES or value.kind == "missing":
        return None
    columns = value.columns
    if not columns or len(columns) > MAX_CONTRACT_COLUMNS:
        return None
    if len({c.label for c in columns}) != len(columns):  # duplicate labels: no per-label dtype
        return None
    for c in columns:  # labels are written into the code as literals
        try:
            ast.literal_eval(c.label)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return Contract(value.name, tuple((c.label, c.dtype) for c in columns), at)


def _find(values: tuple[RecordedValue, ...], name: str) -> RecordedValue | None:
    return next((v for v in values if v.name == name), None)


def refine(
    plan: Plan, recording: Recording, analysis: FullAnalysis
) -> tuple[Plan, tuple[Finding, ...]]:
    """The plan with recorded types in step signatures and data contracts on frames; the NBH206 findings."""
    names = importable_names(plan, analysis)
    by_step: dict[str, StepRecording] = {s.step: s for s in recording.steps}
    effects = {c.index: c.effects for c in analysis.cells}
    findings: list[Finding] = []
    steps: list[Step] = []
    checked: set[Contract] = (
        set()
    )  # a frame checked unchanged by an earlier step is not checked again
    for step in plan.steps:
        rec = by_step.get(step.name)
        if rec is None or not rec.executed:
            steps.append(step)
            continue
        inputs = tuple(
            p
            if p.source == "config"
            else Param(
                p.name, _annotation(_find(rec.inputs, p.name), names) or p.annotation, p.source
            )
            for p in step.inputs
        )
        outputs = tuple(
            Param(p.name, _annotation(_find(rec.outputs, p.name), names) or p.annotation, p.source)
            for p in step.outputs
        )
        contracts: list[Contract] = []
        for p in step.inputs:
            if p.source != "config":
                contract = _contract(_find(rec.inputs, p.name), "entry")
                if contract is not None:
                    contracts.append(contract)
        reads_outside = any(
            e in {Effect.FILE_READ, Effect.NETWORK} for c in step.cells for e in effects.get(c, ())
        )
        if reads_outside:
            for p in step.outputs:
                contract = _contract(_find(rec.outputs, p.name), "exit")
                if contract is not None:
                    contracts.append(contract)
        contracts = [c for c in contracts if dataclasses.replace(c, at="entry") not in checked]
        checked.update(dataclasses.replace(c, at="entry") for c in contracts)
        for contract in contracts:
            where = "takes in" if contract.at == "entry" else "reads"
            findings.append(
                Finding(
                    "NBH206",
                    f"step {step.name} checks the {len(contract.columns)} column(s) and dtypes of the "
                    f"frame {contract.name} it {where}, as recorded",
                    Span(step.cells[0], 1, 1),
                    Severity.INFO,
                    Fix.SAFE,
                    applied=True,
                )
            )
        steps.append(
            dataclasses.replace(step, inputs=inputs, outputs=outputs, contracts=tuple(contracts))
        )
    return dataclasses.replace(plan, steps=tuple(steps)), tuple(findings)
