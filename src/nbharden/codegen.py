"""Generated modules built as code, not text: templates under ``nbharden/templates/`` filled with LibCST, and
imports scheduled with LibCST's ``AddImportsVisitor`` instead of being pasted into import lines.

A template is a real module (linted and type-checked in place). Its holes are module-level names it defines
with a stand-in value (``HELP = "Run the pipeline."``); ``fill_template`` drops those definitions and puts the
value given for each hole where the template reads it, so what a hole receives is always a parsed expression.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, ImportItem

from nbharden import libcst_speed
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

libcst_speed.install()


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
    even as an attribute), and parameters put first in the functions named in ``prepend``."""

    def __init__(
        self, values: Mapping[str, cst.BaseExpression], prepend: Mapping[str, list[cst.Param]]
    ) -> None:
        self.values = values
        self.prepend = prepend

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        value = self.values.get(updated_node.value)
        return updated_node if value is None else value.deep_clone()

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        params = self.prepend.get(updated_node.name.value)
        if params is None:
            return updated_node
        return updated_node.with_changes(
            params=updated_node.params.with_changes(params=[*params, *updated_node.params.params])
        )


class _Words(cst.CSTVisitor):
    """Every ``Name`` of a tree, and the names of the functions it defines (at any depth)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.defines: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.defines.add(node.name.value)


@dataclass(frozen=True)
class _Template:
    module: cst.Module
    names: tuple[frozenset[str], ...]  # per statement of the body: every Name in it
    defines: tuple[frozenset[str], ...]  # per statement of the body: the functions it defines

    def touches(self, i: int, holes: Collection[str], functions: Collection[str]) -> bool:
        return any(h in self.names[i] for h in holes) or any(
            f in self.defines[i] for f in functions
        )


@functools.cache
def _template(name: str) -> _Template:
    """The parsed template, parsed once per process (LibCST trees are immutable), with what each statement
    names: filling touches only the statements that read a hole, which keeps the others as they are.
    """
    module = cst.parse_module(template_text(name))
    names, defines = [], []
    for statement in module.body:
        words = _Words()
        statement.visit(words)
        names.append(frozenset(words.names))
        defines.append(frozenset(words.defines))
    return _Template(module, tuple(names), tuple(defines))


def fill_template(
    name: str,
    doc: str,
    holes: Mapping[str, cst.BaseExpression],
    leave_out: Collection[str] = (),
    prepend: Mapping[str, Sequence[cst.Param]] | None = None,
) -> cst.Module:
    """The template ``nbharden/templates/<name>`` with ``doc`` as its docstring and every hole filled, without
    its functions and classes named in ``leave_out``; ``prepend``: function name -> parameters put before the
    positional-or-keyword parameters of every ``def`` of that name (``prepend_parameters``, in the same pass).

    Raises ``InternalError`` when the template defines no hole of that name or has no docstring.
    """
    template = _template(name)
    module = template.module
    defined = {_hole(s) for s in module.body}
    missing = sorted(set(holes) - defined)
    first = module.body[0] if module.body else None
    if missing or not (
        isinstance(first, cst.SimpleStatementLine)
        and isinstance(first.body[0], cst.Expr)
        and isinstance(first.body[0].value, cst.SimpleString)
    ):
        raise InternalError(f"templates/{name}: no docstring or no hole {missing}")
    prepend = prepend or {}
    fill = _Fill(holes, {f: list(p) for f, p in prepend.items()})
    body: list[cst.BaseStatement] = [docstring(doc)]
    for i, statement in enumerate(module.body[1:], start=1):
        if _hole(statement) in holes or _defines(statement) in leave_out:
            continue
        if template.touches(i, holes, prepend):
            visited = statement.visit(fill)
            assert isinstance(visited, cst.BaseStatement)
            statement = visited
        body.append(statement)
    return module.with_changes(body=body)


def add_imports(module: cst.Module, imports: Iterable[ImportItem]) -> cst.Module:
    """``module`` with ``imports`` scheduled by ``AddImportsVisitor`` (merged into the module's own imports
    of the same module, never added twice)."""
    items = list(imports)
    if not items:
        return module
    # AddImportsVisitor reads and changes only the import block at the top of the module (after a docstring)
    # and puts a blank line before the statement that follows it: it is given that part, not the whole module
    # (it copies its input and walks it twice: most of the time of emitting a small notebook's modules).
    body = module.body
    end = 1 if body and _is_docstring(body[0]) else 0
    while end < len(body) and _is_import(body[end]):
        end += 1
    head = module.with_changes(body=body[: end + 1])
    done = AddImportsVisitor(CodemodContext(), items).transform_module(head)
    return done.with_changes(body=[*done.body, *body[end + 1 :]])


def _is_docstring(statement: cst.BaseStatement) -> bool:
    """A docstring or a ``__strict__ = ...`` line: what AddImportsVisitor keeps before the imports."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if isinstance(small, cst.Expr):
        return isinstance(small.value, cst.SimpleString)
    return (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and small.targets[0].target.value == "__strict__"
    )


def _is_import(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Import | cst.ImportFrom)
    )


def prepend_parameters(
    module: cst.Module, function: str, params: Iterable[cst.Param]
) -> cst.Module:
    """``module`` with ``params`` put before the positional-or-keyword parameters of every ``def function``."""
    return module.visit(_Fill({}, {function: list(params)}))  # fill_template's pass, with no hole


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
