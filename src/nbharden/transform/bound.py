"""Which names a block of statements certainly binds: definite assignment over LibCST statements.

A step returns what later steps read. In the notebook such a name may be bound on some paths only: ``if flag:
m = 1``, a loop that may run zero times, ``del`` in a branch, or ``except E as m`` (Python deletes ``m`` when
the handler ends). A later cell that reads it only when it is bound runs fine in the notebook, but ``return m``
in the step function raises UnboundLocalError. emit asks ``maybe_unbound`` which results need a guard.

Sound, not complete: a name in ``certainly_bound``'s answer is bound on every path that reaches the end of the
block without raising; a name outside it may still always be bound (a walrus, a loop that always runs), and
then costs a guard it did not need, never a wrong value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import libcst as cst

from nbharden.transform.codemods import children

__all__ = ["certainly_bound", "deleted", "maybe_unbound"]

_NESTED_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


def maybe_unbound(
    body: Sequence[cst.BaseStatement], names: Iterable[str], start: Iterable[str]
) -> list[str]:
    """Those of ``names`` (in their order) that ``body`` binds or deletes somewhere and that may be unbound at
    its end, when ``start`` (the parameters) is bound before it. A name ``body`` never binds is left alone: it
    is no local of the step (a module-level definition), and reading it is not this module's business."""
    certain = certainly_bound(body, frozenset(start))
    if certain is None:  # the end is never reached: nothing returns
        return []
    doubtful = [n for n in names if n not in certain]
    if not doubtful:  # the usual case: no walk of the whole body
        return []
    touched = set(_bound_anywhere(body)) | set(start)
    return [n for n in doubtful if n in touched]


#: What a block leaves bound where it gets to its end; None where no path does (every one raises).
Bound = frozenset[str] | None


def certainly_bound(body: Sequence[cst.BaseStatement], bound: Bound) -> Bound:
    """The names bound after ``body`` on every path that reaches its end, ``bound`` being bound before; None if
    no path reaches it."""
    for stmt in body:
        if bound is None:
            break
        bound = _after(stmt, bound)
    return bound


def _meet(a: Bound, b: Bound) -> Bound:
    """What two paths that join both leave bound (a path that never gets there leaves everything)."""
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _block(node: cst.BaseSuite, bound: Bound) -> Bound:
    if isinstance(node, cst.IndentedBlock):
        return certainly_bound(node.body, bound)
    assert isinstance(node, cst.SimpleStatementSuite)
    return _smalls(node.body, bound)


def _smalls(body: Sequence[cst.BaseSmallStatement], bound: Bound) -> Bound:
    for small in body:
        if bound is None or isinstance(small, cst.Raise):
            return None
        bound = _after_small(small, bound)
    return bound


def _after(stmt: cst.BaseStatement, bound: frozenset[str]) -> Bound:
    if isinstance(stmt, cst.SimpleStatementLine):
        return _smalls(stmt.body, bound)
    if isinstance(stmt, cst.FunctionDef | cst.ClassDef):
        return bound | {stmt.name.value}
    if isinstance(stmt, cst.If):
        taken = _block(stmt.body, bound)
        if isinstance(stmt.orelse, cst.If):
            other = _after(stmt.orelse, bound)
        elif isinstance(stmt.orelse, cst.Else):
            other = _block(stmt.orelse.body, bound)
        else:
            other = bound
        return _meet(taken, other)
    if isinstance(stmt, cst.With) and not _may_suppress(stmt):
        for item in stmt.items:
            if item.asname is not None:
                bound = bound | set(_target_names(item.asname.name))
        return _block(stmt.body, bound)
    if isinstance(stmt, cst.Try | cst.TryStar):
        return _after_try(stmt, bound)
    if isinstance(stmt, cst.For) and _runs_through(stmt):
        # every pass binds what one pass certainly binds and keeps what it cannot delete (the analysis is
        # per name), so what the first full pass leaves holds after the last one
        done = _block(stmt.body, bound | set(_target_names(stmt.target)))
        return (
            _block(stmt.orelse.body, done) if stmt.orelse is not None and done is not None else done
        )
    # a loop may run zero times or stop at a break, a suppressing ``with`` anywhere, a ``match`` may match no
    # case: what was bound before stays bound unless the statement may delete it
    return bound - set(deleted(stmt))


def _runs_through(stmt: cst.For) -> bool:
    """Whether the loop certainly makes at least one full pass: it iterates over a literal that is not empty
    (``range(3)``, ``range(1, 4)``, ``[a, b]``, ``"ab"``), and no ``break`` or ``continue`` cuts a pass short."""
    if stmt.asynchronous is not None or _cuts_passes(stmt.body):
        return False
    it = stmt.iter
    if isinstance(it, cst.List | cst.Tuple | cst.Set):
        return bool(it.elements) and not any(isinstance(e, cst.StarredElement) for e in it.elements)
    if isinstance(it, cst.SimpleString):
        return len(it.evaluated_value) > 0
    if isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and it.func.value == "range":
        ends = [_int_literal(a.value) for a in it.args if a.keyword is None and not a.star]
        if len(ends) != len(it.args) or None in ends:
            return False
        if len(ends) == 1:
            return ends[0] is not None and ends[0] > 0
        if len(ends) == 2:
            return ends[0] is not None and ends[1] is not None and ends[0] < ends[1]
    return False


def _int_literal(node: cst.BaseExpression) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.evaluated_value)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = _int_literal(node.expression)
        return -inner if inner is not None else None
    return None


def _cuts_passes(node: cst.CSTNode) -> bool:
    """A ``break`` or ``continue`` of this loop in ``node`` (not of a loop nested in it)."""
    stack = children(node)
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Break | cst.Continue):
            return True
        if isinstance(current, cst.BaseExpression):
            continue  # no statement in it
        if not isinstance(current, (*_NESTED_SCOPES, cst.For, cst.While)):
            stack.extend(children(current))
        elif isinstance(current, cst.For | cst.While) and current.orelse is not None:
            stack.extend(children(current.orelse))  # a nested loop's else belongs to this pass
    return False


def _after_try(stmt: cst.Try | cst.TryStar, bound: frozenset[str]) -> Bound:
    """The ``try`` body may stop anywhere: a handler starts from what the body cannot have deleted."""
    done = _block(stmt.body, bound)
    if stmt.orelse is not None:
        done = _block(stmt.orelse.body, done)
    interrupted = bound - set(deleted(stmt.body))
    for handler in stmt.handlers:
        own = _target_names(handler.name.name) if handler.name is not None else []
        after = _block(handler.body, interrupted | set(own))
        done = _meet(
            done, after - set(own) if after is not None else None
        )  # ``as e`` ends with ``del e``
    if stmt.finalbody is not None:
        done = _block(stmt.finalbody.body, done)
    return done


def _after_small(small: cst.BaseSmallStatement, bound: frozenset[str]) -> frozenset[str]:
    if isinstance(small, cst.Assign):
        return bound | {n for t in small.targets for n in _target_names(t.target)}
    if isinstance(small, cst.AnnAssign) and small.value is not None:
        return bound | set(_target_names(small.target))
    if isinstance(small, cst.AugAssign):
        return bound | set(
            _target_names(small.target)
        )  # it read the name: it was bound, and still is
    if isinstance(small, cst.Import):
        return bound | {_imported(a) for a in small.names}
    if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
        return bound | {_imported(a) for a in small.names}
    if isinstance(small, cst.Del):
        return bound - set(_target_names(small.target))
    return bound


def _imported(alias: cst.ImportAlias) -> str:
    if alias.asname is not None:
        return next(iter(_target_names(alias.asname.name)), "")
    name: cst.BaseExpression = alias.name
    while isinstance(name, cst.Attribute):
        name = name.value
    return name.value if isinstance(name, cst.Name) else ""


def _target_names(target: cst.BaseExpression) -> list[str]:
    """The plain names an assignment target binds (``a``, ``a, (b, *c)``; not ``a.b`` or ``a[0]``)."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, cst.Tuple | cst.List):
        return [n for e in target.elements for n in _target_names(e.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


def _may_suppress(stmt: cst.With) -> bool:
    """A ``with`` whose context manager may swallow an exception (``contextlib.suppress``): its body may stop
    anywhere and the code after it still runs. Other context managers are taken to let exceptions through."""
    for item in stmt.items:
        func = item.item.func if isinstance(item.item, cst.Call) else item.item
        if isinstance(func, cst.Attribute):
            func = func.attr
        if not isinstance(func, cst.Name) or func.value == "suppress":
            return True
    return False


def _walk(node: cst.CSTNode, statements_only: bool = False) -> Iterator[cst.CSTNode]:
    """``node`` and its descendants, not entering functions, classes or lambdas (their own scopes; the node
    of one is yielded, its body is not), nor expressions with ``statements_only``."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if not isinstance(current, _NESTED_SCOPES) and not (
            statements_only and isinstance(current, cst.BaseExpression)
        ):
            stack.extend(children(current))


def deleted(node: cst.CSTNode, handlers: bool = True) -> Iterator[str]:
    """The names ``node`` may delete in its scope: ``del`` targets, and ``except ... as`` names (Python
    deletes them when the handler ends) with ``handlers``."""
    for n in _walk(node, statements_only=True):  # ``del`` and handlers are statements
        if isinstance(n, cst.Del):
            yield from _target_names(n.target)
        elif (
            handlers
            and isinstance(n, cst.ExceptHandler | cst.ExceptStarHandler)
            and n.name is not None
        ):
            yield from _target_names(n.name.name)


def _bound_anywhere(body: Sequence[cst.BaseStatement]) -> Iterator[str]:
    """Every name the statements bind or delete somewhere in their scope, at any depth of their blocks."""
    for stmt in body:
        for n in _walk(stmt):
            if isinstance(n, cst.AssignTarget):
                yield from _target_names(n.target)
            elif isinstance(n, cst.AnnAssign | cst.AugAssign):
                yield from _target_names(n.target)
            elif isinstance(
                n, cst.NamedExpr | cst.For
            ):  # a comprehension's own ``for`` binds in it
                yield from _target_names(n.target)
            elif isinstance(n, cst.AsName):
                yield from _target_names(n.name)
            elif isinstance(n, cst.ImportAlias):
                yield _imported(n)
            elif isinstance(n, cst.FunctionDef | cst.ClassDef):
                yield n.name.value
            elif isinstance(n, cst.Del):
                yield from _target_names(n.target)
            elif isinstance(n, cst.MatchAs | cst.MatchStar) and n.name is not None:
                yield n.name.value
