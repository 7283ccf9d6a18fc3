"""The codemods applied to notebook code on its way into step functions, one transformer per concern.

Each is a LibCST transformer with before/after tests in tests/test_codemods.py:
- ``PrintToLogging``: ``print(a, b)`` -> ``logger.info("%s %s", a, b)`` (NBH604); ``print(..., file=f)`` is kept.
- ``ShowToSave``: ``plt.show()`` -> ``show_figures()``, which saves the open figures to Config.output_dir (NBH605).
- ``DisplayToLog``: ``display(x)`` nested in a block -> ``logger.info("%s", x)``.
- ``LiftLiterals``: a path or URL literal passed to a call -> the Config field's name (NBH203/NBH204).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import libcst as cst

from nbharden.libcst_speed import IS_NODE, SubclassOf, child_fields


def _is_name_call(node: cst.Call, name: str) -> bool:
    return isinstance(node.func, cst.Name) and node.func.value == name


class PrintToLogging(cst.CSTTransformer):
    """``print(...)`` becomes a call on ``logger`` at INFO level; the message is built lazily by logging."""

    code = "NBH604"

    def __init__(self, logger: str = "logger") -> None:
        super().__init__()
        self.logger = logger
        self.count = 0

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not _is_name_call(updated, "print"):
            return updated
        keywords = {a.keyword.value: a for a in updated.args if a.keyword is not None}
        if "file" in keywords:
            return updated  # writing to a file or stream is real output, not a log line
        positional = [a for a in updated.args if a.keyword is None]
        self.count += 1
        func = cst.Attribute(cst.Name(self.logger), cst.Name("info"))
        starred = any(a.star for a in positional)
        if "sep" in keywords or starred:
            sep = keywords["sep"].value if "sep" in keywords else cst.SimpleString('" "')
            items = cst.Tuple(
                [
                    cst.Element(a.value) if not a.star else cst.StarredElement(a.value)
                    for a in positional
                ]
                + ([] if positional else [])
            )
            if len(positional) == 1 and not starred:
                items = cst.Tuple([cst.Element(positional[0].value, comma=cst.Comma())])
            joined = cst.Call(
                cst.Attribute(sep, cst.Name("join")),
                [cst.Arg(cst.Call(cst.Name("map"), [cst.Arg(cst.Name("str")), cst.Arg(items)]))],
            )
            return cst.Call(func, [cst.Arg(cst.SimpleString('"%s"')), cst.Arg(joined)])
        if not positional:
            return cst.Call(func, [cst.Arg(cst.SimpleString('""'))])
        if len(positional) == 1 and isinstance(
            positional[0].value, cst.FormattedString | cst.SimpleString | cst.ConcatenatedString
        ):
            # one string and no arguments: logging does not %-format the message, so it can go as it is
            return cst.Call(func, [cst.Arg(positional[0].value)])
        fmt = cst.SimpleString('"' + " ".join(["%s"] * len(positional)) + '"')
        args = [cst.Arg(fmt)] + [cst.Arg(a.value) for a in positional]
        return cst.Call(func, args)


class ShowToSave(cst.CSTTransformer):
    """``plt.show()`` (through any alias of matplotlib.pyplot or pylab) -> ``show_figures()``."""

    code = "NBH605"

    def __init__(self, pyplot_aliases: set[str], direct_show: set[str] | None = None) -> None:
        super().__init__()
        self.aliases = pyplot_aliases
        self.direct = direct_show or set()
        self.count = 0

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = updated.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "show"
            and isinstance(func.value, cst.Name)
            and func.value.value in self.aliases
        ) or (isinstance(func, cst.Name) and func.value in self.direct):
            self.count += 1
            return cst.Call(cst.Name("show_figures"))
        return updated


class DisplayToLog(cst.CSTTransformer):
    """``display(x)`` inside a block (a loop, a function) -> ``logger.info("%s", x)``; top-level ones are dropped
    by the extractor, as display-only statements."""

    code = "NBH603"

    def __init__(self, logger: str = "logger") -> None:
        super().__init__()
        self.logger = logger

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not _is_name_call(updated, "display") or any(a.keyword or a.star for a in updated.args):
            return updated
        func = cst.Attribute(cst.Name(self.logger), cst.Name("info"))
        fmt = cst.SimpleString('"' + " ".join(["%s"] * len(updated.args)) + '"')
        return cst.Call(func, [cst.Arg(fmt)] + [cst.Arg(a.value) for a in updated.args])


class LiftLiterals(cst.CSTTransformer):
    """A string literal passed as a call argument whose value was lifted into Config -> the field's name."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields  # literal value -> field name
        self.used: set[str] = set()

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        value = updated.value
        if isinstance(value, cst.SimpleString):
            literal = value.evaluated_value
            if isinstance(literal, str) and literal in self.fields:
                name = self.fields[literal]
                self.used.add(name)
                return updated.with_changes(value=cst.Name(name))
        return updated


def _push_children(stack: list[object], node: object) -> None:
    """Put ``node``'s children on ``stack`` so that they pop in source order."""
    children: list[object] = []
    for field in child_fields(type(node)):
        value = getattr(node, field)
        if IS_NODE[type(value)]:
            children.append(value)
        elif type(value) is tuple or type(value) is list:
            children.extend(value)
    children.reverse()
    stack.extend(children)


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """``node.children`` (its direct child nodes in source order) read from its fields: LibCST's property
    rebuilds the node with a visitor to collect them (issue 17)."""
    found: list[object] = []
    _push_children(found, node)
    found.reverse()
    return cast(list[cst.CSTNode], found)


def names_in(node: cst.CSTNode) -> set[str]:
    """Every identifier used anywhere in ``node`` (the value of every ``cst.Name`` under it).

    Read from the node's fields, not with a visitor: a LibCST visit rebuilds every node it passes (about five
    times the cost; issue 17), the same walk as ``find_all``.
    tests/test_codemods.py checks it against a visitor on every cell of the fixtures and on drawn notebooks.
    """
    found: set[str] = set()
    stack: list[object] = [node]
    while stack:
        current = stack.pop()
        if type(current) is cst.Name:
            found.add(current.value)
        else:
            _push_children(stack, current)
    return found


def _always(code: str) -> bool:
    return True


class Chain(cst.CSTTransformer):
    """Run several call/argument codemods in one traversal (each is written and tested on its own).

    A codemod with a rule ``code`` runs only where that rule is on: ``allows(code)`` (the selection and the
    cell's noqa comments, ``nbharden.selection``) and no ``# nbharden: noqa[...]`` comment at the end of the
    statement's line lists it.
    """

    def __init__(self, *codemods: cst.CSTTransformer, allows: Callable[[str], bool] = _always) -> None:
        super().__init__()
        self.calls = [
            c for c in codemods if type(c).leave_Call is not cst.CSTTransformer.leave_Call
        ]
        self.args = [c for c in codemods if type(c).leave_Arg is not cst.CSTTransformer.leave_Arg]
        self.allows = allows
        self._lines: list[frozenset[str] | None] = []  # noqa codes of the enclosing lines; None: all

    def rewrite(
        self, node: cst.CSTNode
    ) -> cst.CSTNode | cst.RemovalSentinel | cst.FlattenSentinel[cst.CSTNode]:
        """``node.visit(self)``, or ``node`` itself where it holds no call: the chain rewrites only calls and
        their arguments, and LibCST's visit of a transformer rebuilds every node it passes (issue 17)."""
        if not find_all(node, cst.Call):
            return node
        return node.visit(self)

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        comment = node.trailing_whitespace.comment
        self._lines.append(noqa_codes(comment.value) if comment is not None else frozenset())

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        self._lines.pop()
        return updated

    def _on(self, codemod: cst.CSTTransformer) -> bool:
        code = getattr(codemod, "code", None)
        if code is None:
            return True
        line = self._lines[-1] if self._lines else frozenset()
        return self.allows(code) and line is not None and code not in line

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        node: cst.BaseExpression = updated
        for codemod in self.calls:
            if not isinstance(node, cst.Call):
                break
            if self._on(codemod):
                node = codemod.leave_Call(original, node)
        return node

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        node = updated
        for codemod in self.args:
            if not self._on(codemod):
                continue
            result = codemod.leave_Arg(original, node)
            if not isinstance(result, cst.Arg):
                return updated  # argument codemods here only replace values, never remove arguments
            node = result
        return node


def noqa_codes(comment: str) -> frozenset[str] | None:
    """The rule codes a ``# nbharden: noqa[...]`` comment lists: empty when it is no such comment, ``None``
    when it lists none (every rule)."""
    from nbharden.selection import noqa_in

    return noqa_in(comment)


#: Nodes no expression holds: a search for only these never needs to walk into an expression.
_STATEMENT_NODES = (
    cst.BaseStatement,
    cst.BaseSmallStatement,
    cst.BaseSuite,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
)


def find_all(node: cst.CSTNode, *types: type[cst.CSTNode]) -> list[cst.CSTNode]:
    """Every node of one of ``types`` under ``node`` (itself included), in source order (LibCST's visit
    order).

    Read from the nodes' fields (``libcst_speed.child_fields``) rather than with a visitor, which rebuilds every node it
    passes (issue 17); ``libcst.matchers`` would do the same but costs a third of a second to import.
    tests/test_codemods.py checks the walk's order against a visitor's on the fixtures and drawn notebooks.
    """
    statements_only = all(issubclass(t, _STATEMENT_NODES) for t in types)
    wanted = _TESTS.get(types)
    if wanted is None:
        wanted = _TESTS[types] = SubclassOf(types)
    found: list[cst.CSTNode] = []
    stack: list[object] = [node]
    while stack:
        current = stack.pop()
        cls = type(current)
        if wanted[cls]:
            found.append(current)  # type: ignore[arg-type]
        if statements_only and _IS_EXPRESSION[cls]:
            continue
        _push_children(stack, current)
    return found


#: ``find_all``'s type tests, per tuple of types asked for (a few dozen in all)
_TESTS: dict[tuple[type[cst.CSTNode], ...], SubclassOf] = {}
_IS_EXPRESSION = SubclassOf(cst.BaseExpression)


def is_get_ipython_call(node: cst.CSTNode) -> bool:
    """``get_ipython()``."""
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value == "get_ipython"
    )
