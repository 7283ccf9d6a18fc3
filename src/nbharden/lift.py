"""Functions that close over notebook state become module-level functions taking that state as parameters.

A notebook function looks its globals up when it is called: ``predict_price(location, sqft)`` reads the fitted
``lr_clf`` and the frame ``X`` as they are at the call. Kept inside its step and passed on as a value (NBH606), it
is hard to reuse; ``liftable`` finds the functions that can move to module level instead, with each notebook
name they read as a keyword-only parameter (``predict_price(location, sqft, *, X, lr_clf)``), and
``PassState`` makes every call pass the current values (``predict_price("Whitefield", 1000, X=X, lr_clf=lr_clf)``):
the same lookup at the same moment, so the same result.

A function qualifies when it is a plain ``def`` defined once, not decorated, next to no ``global`` statement,
not recursive, reading notebook names only in its body (not in defaults or annotations) and only while it is
called (not a generator, no function, lambda or generator expression in it reading them), and when every use of
its name is a direct call in step code (not a value passed around, not a call inside another function or a
comprehension that rebinds one of those names).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import libcst as cst

from nbharden.analyse import BUILTINS, NotebookFacts
from nbharden.transform.codemods import names_in


class _Uses(cst.CSTVisitor):
    """Every use of ``name`` in a module, told apart: direct calls at step level, or anything else."""

    def __init__(self, name: str, state: frozenset[str]) -> None:
        super().__init__()
        self.name = name
        self.state = state
        self.bad = False
        self.calls = 0
        self._callee: set[int] = set()
        self._depth = 0  # inside another function, a lambda, or a scope rebinding a state name

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if node.name.value == self.name:
            return False  # its own definition
        self._depth += 1
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        if original_node.name.value != self.name:
            self._depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._depth += 1

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._depth -= 1

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._depth += 1

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._depth -= 1

    def _rebinds_state(
        self, node: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp
    ) -> bool:
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            if names_in(clause.target) & self.state:
                return True
            clause = clause.inner_for_in
        return False

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._depth += self._rebinds_state(node)

    def leave_ListComp(self, original_node: cst.ListComp) -> None:
        self._depth -= self._rebinds_state(original_node)

    def visit_SetComp(self, node: cst.SetComp) -> None:
        self._depth += self._rebinds_state(node)

    def leave_SetComp(self, original_node: cst.SetComp) -> None:
        self._depth -= self._rebinds_state(original_node)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._depth += self._rebinds_state(node)

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp) -> None:
        self._depth -= self._rebinds_state(original_node)

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._depth += self._rebinds_state(node)

    def leave_DictComp(self, original_node: cst.DictComp) -> None:
        self._depth -= self._rebinds_state(original_node)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # ``obj.predict``: an attribute, not a use of a function named predict
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == self.name:
            self._callee.add(id(node.func))
            keywords = {a.keyword.value for a in node.args if a.keyword is not None}
            if self._depth or keywords & self.state or any(a.star == "**" for a in node.args):
                self.bad = True
            self.calls += 1

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name and id(node) not in self._callee:
            self.bad = True  # used as a value: passed, stored, rebound


def _variables(node: cst.CSTNode) -> set[str]:
    """Names used as variables in ``node`` (not attribute names: ``model.predict`` uses ``model`` only)."""
    found: set[str] = set()

    class _V(cst.CSTVisitor):
        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            attribute.value.visit(self)
            return False

        def visit_Name(self, name: cst.Name) -> None:
            found.add(name.value)

    node.visit(_V())
    return found


class _Later(cst.CSTVisitor):
    """Whether a function's body reads ``state`` after the call returns: it is a generator (its body runs at
    each ``next``), or a function, lambda or generator expression inside it reads a state name (it runs when
    called or consumed, which may be after a later cell bound the name again)."""

    def __init__(self, state: frozenset[str]) -> None:
        super().__init__()
        self.state = state
        self.later = False
        self._nested = 0  # inside a def, lambda or generator expression of the body

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._nested += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._nested -= 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._nested += 1

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._nested -= 1

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._nested += 1

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp) -> None:
        self._nested -= 1

    def visit_Yield(self, node: cst.Yield) -> None:
        if not self._nested:
            self.later = True

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # ``x.state_name`` reads ``x``, not the state
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if self._nested and node.value in self.state:
            self.later = True


def _reads_state_later(fn: cst.FunctionDef, state: frozenset[str]) -> bool:
    """``fn``'s body reads ``state`` after the call returns (``_Later``). Passing the state at the call would
    then give the values of the call's moment where the notebook reads them later (found by the differential
    tester's long run: a generator function reading ``tick``, consumed after a later cell bound ``tick``
    again, saw the earlier ``tick``)."""
    later = _Later(state)
    fn.body.visit(later)
    return later.later


def _plain_signature(fn: cst.FunctionDef, state: frozenset[str], bound: frozenset[str]) -> bool:
    """No decorators; no parameter named like a state name; defaults and annotations read no state and no
    other name the notebook binds outside module level (``bound``): at module level they are evaluated at
    import, before any step ran (found by the differential tester's long run: ``def f(k=total)``
    lifted for its read of ``tick`` raised NameError at import)."""
    if fn.decorators or fn.asynchronous is not None:
        return False
    params = fn.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    every += [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    for param in every:
        if param.name.value in state:
            return False
        for part in (param.default, param.annotation):
            if part is not None and names_in(part) & (state | bound):
                return False
    return fn.returns is None or not names_in(fn.returns) & (state | bound)


def liftable(
    facts: NotebookFacts,
    hoisted: Collection[str],
    write_counts: Mapping[str, int],
    pinned: Collection[str],
    module_state: Collection[str] = (),
) -> dict[str, tuple[str, ...]]:
    """Function name -> the notebook names it reads, for the functions that move to module level with those
    names as keyword-only parameters. ``hoisted``: the imports and definitions already at module level, and
    the ``module_state`` names (globals of the steps module once a step binds them).
    """
    notebook_bound = {b for cf in facts.cells.values() for st in cf.statements for b in st.binds}
    defined = [
        (cf, i, st.binds[0])
        for cf in facts.cells.values()
        for i, st in enumerate(cf.statements)
        if st.kind in {"def", "class"}
    ]
    names = [name for _, _, name in defined]
    # what a lifted function's defaults and annotations must not read: the notebook's names that are not at
    # module level when the module is imported (module state is there only once a step bound it)
    bound = frozenset((notebook_bound - set(hoisted)) | set(module_state))
    out: dict[str, tuple[str, ...]] = {}
    for cf, i, name in defined:
        fn = cf.module.body[i]
        reads = cf.def_reads.get(name, ())
        state = tuple(
            r for r in reads if r not in hoisted and (r not in BUILTINS or r in notebook_bound)
        )
        if (
            not isinstance(fn, cst.FunctionDef)
            or not state
            or name in hoisted
            or name in pinned
            or names.count(name) != 1
            or write_counts.get(name, 0)
            or cf.global_decls
            or name in facts.shadowed  # the notebook's own print/display: left as it is
            or any(s in names or s == name for s in state)  # another notebook function: not data
            or not _plain_signature(fn, frozenset(state), bound)
            or _reads_state_later(fn, frozenset(state))
            or name in _variables(fn.body)  # recursive: its own calls would need the state too
        ):
            continue
        if _used_only_in_direct_calls(facts, name, frozenset(state)):
            out[name] = state
    return out


def _used_only_in_direct_calls(facts: NotebookFacts, name: str, state: frozenset[str]) -> bool:
    calls = 0
    for index, cf in facts.cells.items():
        if name not in facts.cell_names[index]:
            continue
        uses = _Uses(name, state)
        cf.module.visit(uses)
        if uses.bad:
            return False
        calls += uses.calls
    return calls > 0


class PassState(cst.CSTTransformer):
    """``f(a, b)`` -> ``f(a, b, X=X, model=model)`` for every lifted function ``f`` and the state it reads."""

    def __init__(self, lifted: Mapping[str, tuple[str, ...]]) -> None:
        super().__init__()
        self.lifted = lifted

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = updated_node.func
        if not (isinstance(func, cst.Name) and func.value in self.lifted):
            return updated_node
        tight = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))
        extra = [
            cst.Arg(cst.Name(s), keyword=cst.Name(s), equal=tight) for s in self.lifted[func.value]
        ]
        args = list(updated_node.args)
        if args:
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(args=[*args, *extra])


def with_state_parameters(
    fn: cst.FunctionDef,
    state: tuple[str, ...],
    annotations: Mapping[str, str | None],
) -> cst.FunctionDef:
    """``fn`` taking ``state`` as keyword-only parameters, annotated with ``annotations`` where known
    (also its own unannotated parameters and its return, when ``annotations`` has them)."""

    def annotated(param: cst.Param) -> cst.Param:
        text = annotations.get(param.name.value)
        if param.annotation is not None or not text:
            return param
        return param.with_changes(annotation=cst.Annotation(cst.parse_expression(text)))

    params = fn.params
    added = [annotated(cst.Param(cst.Name(s))) for s in state]
    star = params.star_arg if isinstance(params.star_arg, cst.Param) else cst.ParamStar()
    new_params = params.with_changes(
        params=[annotated(p) for p in params.params],
        star_arg=star,
        kwonly_params=[*params.kwonly_params, *added],
    )
    returns = fn.returns
    if returns is None and annotations.get("return"):
        returns = cst.Annotation(cst.parse_expression(str(annotations["return"])))
    return fn.with_changes(params=new_params, returns=returns)
