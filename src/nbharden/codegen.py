"""Generated modules built as code, not text: templates under ``nbharden/templates/`` filled with LibCST, and
imports scheduled with LibCST's ``AddImportsVisitor`` instead of being pasted into import lines.

A template is a real module (linted and type-checked in place). Its holes are module-level names it defines
with a stand-in value (``HELP = "Run the pipeline."``); ``fill_template`` drops those definitions and puts the
value given for each hole where the template reads it, so what a hole receives is always a parsed expression.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, ImportItem

from nbharden.errors import InternalError
from nbharden.templates import template_text

__all__ = [
    "ImportItem",
    "add_imports",
    "append_to_class",
    "docstring",
    "fill_template",
    "prepend_parameters",
    "string",
]


def string(text: str) -> cst.SimpleString:
    """``text`` as a Python string literal (its ``repr``)."""
    return cst.SimpleString(repr(text))


def docstring(text: str) -> cst.SimpleStatementLine:
    """A docstring statement saying ``text`` (triple-quoted; backslashes and triple quotes escaped)."""
    quoted = '"""' + text.replace("\\", "\\\\").replace('"""', "'''") + '"""'
    return cst.SimpleStatementLine([cst.Expr(cst.SimpleString(quoted))])


def _hole(statement: cst.BaseStatement) -> str | None:
    """The name a module-level ``NAME = value`` or ``NAME: T = value`` statement defines, else None."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.AnnAssign):
        target = small.target
    elif isinstance(small, cst.Assign) and len(small.targets) == 1:
        target = small.targets[0].target
    else:
        return None
    return target.value if isinstance(target, cst.Name) else None


def _defines(statement: cst.BaseStatement) -> str | None:
    """The name of a function or class statement, else None."""
    return statement.name.value if isinstance(statement, cst.FunctionDef | cst.ClassDef) else None


class _Fill(cst.CSTTransformer):
    """Every read of a hole replaced by its value (holes are names the template uses for nothing else, not
    even as an attribute)."""

    def __init__(self, values: Mapping[str, cst.BaseExpression]) -> None:
        self.values = values

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        value = self.values.get(updated_node.value)
        return updated_node if value is None else value.deep_clone()


def fill_template(
    name: str,
    doc: str,
    holes: Mapping[str, cst.BaseExpression],
    leave_out: Collection[str] = (),
) -> cst.Module:
    """The template ``nbharden/templates/<name>`` with ``doc`` as its docstring and every hole filled, without
    its functions and classes named in ``leave_out``.

    Raises ``InternalError`` when the template defines no hole of that name or has no docstring.
    """
    module = cst.parse_module(template_text(name))
    defined = {_hole(s) for s in module.body}
    missing = sorted(set(holes) - defined)
    first = module.body[0] if module.body else None
    if missing or not (
        isinstance(first, cst.SimpleStatementLine)
        and isinstance(first.body[0], cst.Expr)
        and isinstance(first.body[0].value, cst.SimpleString)
    ):
        raise InternalError(f"templates/{name}: no docstring or no hole {missing}")
    body = [
        docstring(doc),
        *(s for s in module.body[1:] if _hole(s) not in holes and _defines(s) not in leave_out),
    ]
    filled = module.with_changes(body=body).visit(_Fill(holes))
    assert isinstance(filled, cst.Module)
    return filled


def add_imports(module: cst.Module, imports: Iterable[ImportItem]) -> cst.Module:
    """``module`` with ``imports`` scheduled by ``AddImportsVisitor`` (merged into the module's own imports
    of the same module, never added twice)."""
    items = list(imports)
    if not items:
        return module
    return AddImportsVisitor(CodemodContext(), items).transform_module(module)


class _Prepend(cst.CSTTransformer):
    def __init__(self, function: str, params: list[cst.Param]) -> None:
        self.function = function
        self.params = params

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if updated_node.name.value != self.function:
            return updated_node
        params = updated_node.params
        return updated_node.with_changes(
            params=params.with_changes(params=[*self.params, *params.params])
        )


def prepend_parameters(
    module: cst.Module, function: str, params: Iterable[cst.Param]
) -> cst.Module:
    """``module`` with ``params`` put before the positional-or-keyword parameters of every ``def function``."""
    return module.visit(_Prepend(function, list(params)))


class _Append(cst.CSTTransformer):
    def __init__(
        self, cls: str, statements: list[cst.BaseStatement], footer: list[cst.EmptyLine]
    ) -> None:
        self.cls = cls
        self.statements = statements
        self.footer = footer

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        body = updated_node.body
        if updated_node.name.value != self.cls or not isinstance(body, cst.IndentedBlock):
            return updated_node
        return updated_node.with_changes(
            body=body.with_changes(
                body=[*body.body, *self.statements], footer=[*body.footer, *self.footer]
            )
        )


def append_to_class(
    module: cst.Module,
    cls: str,
    statements: Iterable[cst.BaseStatement],
    footer: Iterable[cst.EmptyLine] = (),
) -> cst.Module:
    """``module`` with ``statements`` added at the end of the body of every ``class cls``, and ``footer`` (blank
    and comment lines) after them."""
    return module.visit(_Append(cls, list(statements), list(footer)))
