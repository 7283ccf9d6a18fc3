"""Generated modules built as code, not text: templates under ``nbharden/templates/`` filled with LibCST, and
imports scheduled the way LibCST's ``AddImportsVisitor`` does (``add_imports``) instead of being pasted into
import lines.

A template is a real module (linted and type-checked in place). Its holes are module-level names it defines
with a stand-in value (``HELP = "Run the pipeline."``); ``fill_template`` drops those definitions and puts the
value given for each hole where the template reads it, so what a hole receives is always a parsed expression.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst.helpers import get_full_name_for_node

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


_Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement


@dataclass(frozen=True)
class ImportItem:
    """An import to schedule: ``from <relative dots><module_name> import obj_name as alias``, or
    ``import module_name as alias`` when there is no ``obj_name`` (LibCST's ``ImportItem``)."""

    module_name: str
    obj_name: str | None = None
    alias: str | None = None
    relative: int = 0

    @property
    def module(self) -> str:
        return "." * self.relative + self.module_name


def add_imports(module: cst.Module, imports: Iterable[ImportItem]) -> cst.Module:
    """``module`` with ``imports`` merged into its own imports of the same module, never added twice.

    The same module, byte for byte, as LibCST's ``AddImportsVisitor`` (with no package name) gives: it reads
    and changes only the import block at the top of the module (after a docstring or ``__strict__`` line).
    Done here without it because ``libcst.codemod`` imports ``libcst.matchers``, a third of a second of
    start-up for every conversion (issue 17); tests/test_codegen.py compares the two on drawn modules.
    """
    items = list(imports)
    if not items:
        return module
    for item in items:
        if item.module == "__future__" and (item.obj_name is None or item.alias is not None):
            raise InternalError(f"cannot import {item} from __future__")
    items = [  # ``import ..a`` is ``from .. import a``
        ImportItem("", item.module_name, item.alias, item.relative)
        if item.relative and item.obj_name is None
        else item
        for item in items
    ]
    modules = {i.module for i in items if i.obj_name is None and i.alias is None}
    objects: dict[str, set[str]] = {
        name: {i.obj_name for i in items if i.module == name and i.obj_name and i.alias is None}
        for name in sorted({i.module for i in items if i.obj_name is not None and i.alias is None})
    }
    module_aliases: dict[str, str] = {
        i.module: i.alias for i in items if i.obj_name is None and i.alias is not None
    }
    aliases: dict[str, list[tuple[str, str]]] = {
        name: [(i.obj_name, i.alias) for i in items if i.module == name and i.obj_name and i.alias]
        for name in sorted({i.module for i in items if i.obj_name is not None and i.alias is not None})
    }

    body = list(module.body)
    start = 1 if body and _is_docstring(body[0]) else 0
    end = start
    while end < len(body) and _is_import(body[end]):
        end += 1
    top = [_import_of(statement) for statement in body[start:end]]

    # What the top block imports already is not added again (a star import covers its whole module).
    for node in top:
        if isinstance(node, cst.Import):
            for imported in node.names:
                alias = imported.evaluated_alias
                if alias is None:
                    modules.discard(imported.evaluated_name)
                elif module_aliases.get(imported.evaluated_name) == alias:
                    del module_aliases[imported.evaluated_name]
    had = _from_imports(top)
    for name, (names, pairs) in had.items():
        for pair in pairs:
            if pair in aliases.get(name, ()):
                aliases[name].remove(pair)
                if not aliases[name]:
                    del aliases[name]
        if name in objects:
            if "*" in names:
                del objects[name]
            else:
                objects[name] -= names
                if not objects[name]:
                    del objects[name]

    # The first ``from <module> import ...`` of the top block takes the module's new names, in front.
    for offset, node in enumerate(top):
        if not isinstance(node, cst.ImportFrom) or isinstance(node.names, cst.ImportStar):
            continue
        source = _from_module(node)
        if source is None or (source not in objects and source not in aliases):
            continue
        added = [cst.ImportAlias(name=cst.Name(n)) for n in sorted(objects.pop(source, ()))]
        added += [
            cst.ImportAlias(name=cst.Name(n), asname=cst.AsName(name=cst.Name(a)))
            for n, a in sorted(aliases.pop(source, []))
        ]
        line = body[start + offset]
        assert isinstance(line, cst.SimpleStatementLine)
        body[start + offset] = line.with_changes(
            body=[node.with_changes(names=[*added, *node.names])]
        )

    if not (modules or objects or module_aliases or aliases):
        return module.with_changes(body=body)
    merged: dict[str, list[tuple[str, str | None]]] = {}
    for source, named in aliases.items():
        merged.setdefault(source, []).extend(named)
    for source, plain in objects.items():
        merged.setdefault(source, []).extend((n, None) for n in plain)
    # (LibCST sorts the pairs as they are, and fails on a name imported both with and without ``as``.)
    merged = {m: sorted(pairs, key=lambda p: (p[0], p[1] or "")) for m, pairs in merged.items()}
    config = module.config_for_parsing

    def parsed(line: str) -> _Statement:
        return cst.parse_statement(line, config=config)

    def from_line(name: str) -> _Statement:
        names = ", ".join(n if a is None else f"{n} as {a}" for n, a in merged[name])
        return parsed(f"from {name} import {names}")

    return module.with_changes(
        body=[
            *body[:start],
            *(from_line(name) for name in merged if name == "__future__"),
            *body[start:end],
            *(parsed(f"import {name}") for name in sorted(modules)),
            *(parsed(f"import {name} as {alias}") for name, alias in module_aliases.items()),
            *(from_line(name) for name in merged if name != "__future__"),
            *_blank_line_before(body[end:]),
        ]
    )


def _import_of(statement: cst.BaseStatement) -> cst.Import | cst.ImportFrom:
    assert isinstance(statement, cst.SimpleStatementLine)
    node = statement.body[0]
    assert isinstance(node, cst.Import | cst.ImportFrom)
    return node


def _from_module(node: cst.ImportFrom) -> str | None:
    """The absolute module a from-import reads; None for a relative one (there is no package to resolve
    it against, as for LibCST without a package name)."""
    if node.relative:
        return None
    return get_full_name_for_node(node.module) if node.module else None


def _from_imports(top: list[cst.Import | cst.ImportFrom]) -> dict[str, tuple[set[str], list[Any]]]:
    """Per module the top block imports from: the names it imports without ``as`` (``{"*"}`` after a star
    import) and the (name, alias) pairs it imports with one, as LibCST's import gatherer records them."""
    found: dict[str, tuple[set[str], list[Any]]] = {}
    for node in top:
        if not isinstance(node, cst.ImportFrom):
            continue
        name = _from_module(node)
        if name is None:
            continue
        names, pairs = found.setdefault(name, (set(), []))
        if isinstance(node.names, cst.ImportStar):
            names.clear()
            names.add("*")
            continue
        pairs.extend((a.evaluated_name, a.evaluated_alias) for a in node.names if a.asname)
        plain = {a.evaluated_name for a in node.names if a.asname is None}
        if plain and "*" not in names:
            names.update(plain)
    return found


def _blank_line_before(statements: Sequence[_Statement]) -> Sequence[_Statement]:
    """``statements`` with an empty line before the first, unless it has one (LibCST's rule: a comment
    line directly above the statement gets an empty line above it)."""
    if not statements:
        return statements
    first = statements[0]
    lines = first.leading_lines
    if lines and lines[0].comment is None:
        return statements
    return [first.with_changes(leading_lines=(cst.EmptyLine(), *lines)), *statements[1:]]


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
