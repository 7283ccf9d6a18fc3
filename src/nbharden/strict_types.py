"""Annotations that ``mypy --strict`` accepts, for the generated modules made of the notebook's code (issue 13).

The step signatures carry the types of the recorded run (``nbharden.recorded_types``); what no run and no
literal tells stays open. ``complete_annotations`` closes it, in the text of a generated module:

- a parameter without an annotation gets ``Any`` (not ``self``/``cls`` of a method), ``*args``/``**kwargs`` too;
- a function without a return annotation gets ``None`` when it returns no value (``__init__``, a plotting
  helper), else ``Any``: the notebook's own helpers as well as the steps, nested functions included;
- a generic type written bare (``np.ndarray``, ``list``, ``dict``, ``collections.OrderedDict``...) gets its
  parameters as ``Any`` (``np.ndarray[Any, Any]``), which ``--strict`` requires (``type-arg``);
- ``from typing import Any`` when the module uses it (import sorting is the formatter's).

Values of libraries without type information (pandas, scikit-learn, statsmodels) are ``Any`` to mypy, so a step
returning one under its recorded type would be a ``no-any-return`` error that says nothing about the code;
``ANY_RETURN_NOTE`` turns that one check off in the module, with the reason, where a function declares a
return type.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from nbharden.analyse import dotted_name
from nbharden.transform.codemods import find_all, names_in

#: Generic classes by qualified name, and the parameters a bare use of one gets.
GENERIC_PARAMETERS: dict[str, str] = {
    **{f"builtins.{n}": "Any" for n in ("list", "set", "frozenset", "type")},
    "builtins.dict": "Any, Any",
    "builtins.tuple": "Any, ...",
    **{f"collections.{n}": "Any, Any" for n in ("OrderedDict", "defaultdict", "ChainMap")},
    **{f"collections.{n}": "Any" for n in ("Counter", "deque")},
    **{
        f"{m}.{n}": "Any"
        for m in ("collections.abc", "typing")
        for n in (
            "Iterable",
            "Iterator",
            "Sequence",
            "MutableSequence",
            "Collection",
            "Set",
            "MutableSet",
            "AbstractSet",
            "Container",
            "Reversible",
            "KeysView",
            "ValuesView",
            "AsyncIterator",
            "AsyncIterable",
            "Awaitable",
        )
    },
    **{
        f"{m}.{n}": "Any, Any"
        for m in ("collections.abc", "typing")
        for n in ("Mapping", "MutableMapping", "ItemsView")
    },
    **{f"{m}.Generator": "Any, Any, Any" for m in ("collections.abc", "typing")},
    **{f"{m}.Callable": "..., Any" for m in ("collections.abc", "typing")},
    **{f"typing.{n}": "Any" for n in ("List", "Set", "FrozenSet", "Type", "Deque")},
    **{f"typing.{n}": "Any, Any" for n in ("Dict", "DefaultDict", "OrderedDict")},
    "typing.Tuple": "Any, ...",
    "re.Pattern": "Any",
    "re.Match": "Any",
    "os.PathLike": "Any",
    "queue.Queue": "Any",
    "numpy.ndarray": "Any, Any",
    "numpy.ma.MaskedArray": "Any, Any",
    "numpy.dtype": "Any",
    **{
        f"numpy.{n}": "Any"
        for n in ("number", "integer", "signedinteger", "unsignedinteger", "floating", "inexact")
    },
    "numpy.complexfloating": "Any, Any",
}

#: The comment that turns off ``no-any-return`` in a module, with why.
ANY_RETURN_NOTE = (
    "# Values of libraries without type information (pandas, scikit-learn) are Any to mypy; each\n"
    "# function declares the type its result had in the notebook.\n"
    '# mypy: disable-error-code="no-any-return"\n'
)




def _bindings(module: cst.Module) -> dict[str, str]:
    """Names bound by the module's top-level imports -> what they refer to (``np`` -> ``numpy``)."""
    bound: dict[str, str] = {}
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    full = dotted_name(alias.name) or ""
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        bound[alias.asname.name.value] = full
                    else:
                        bound[full.split(".")[0]] = full.split(".")[0]
            elif (
                isinstance(small, cst.ImportFrom)
                and small.module is not None
                and not small.relative
                and not isinstance(small.names, cst.ImportStar)
            ):
                module_name = dotted_name(small.module) or ""
                for alias in small.names:
                    name = dotted_name(alias.name) or ""
                    as_name = alias.asname.name if alias.asname is not None else None
                    key = as_name.value if isinstance(as_name, cst.Name) else name
                    bound[key] = f"{module_name}.{name}"
    return bound


class _Returns(cst.CSTVisitor):
    """Whether a function body returns a value or yields (not counting nested functions and classes).
    Without ``yields`` (the module has no ``yield``), expressions are not walked: a return is a statement."""

    def __init__(self, yields: bool = True) -> None:
        super().__init__()
        self.value = False
        self.yields = yields

    def on_visit(self, node: cst.CSTNode) -> bool:
        if not self.yields and isinstance(node, cst.BaseExpression):
            return False
        return super().on_visit(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None and not (
            isinstance(node.value, cst.Name) and node.value.value == "None"
        ):
            self.value = True

    def visit_Yield(self, node: cst.Yield) -> None:
        self.value = True


def _returns_value(node: cst.FunctionDef, yields: bool = True) -> bool:
    finder = _Returns(yields)
    node.body.visit(finder)
    return finder.value


class _Complete(cst.CSTTransformer):
    def __init__(self, bound: dict[str, str], any_name: str, yields: bool = True) -> None:
        super().__init__()
        self.bound = bound
        self.any_name = any_name
        self.yields = yields  # whether the module may yield (else a return value is found without expressions)
        self.used_any = False
        self.declares_return = False
        self._scopes: list[str] = []  # "class" or "function", innermost last

    def _any(self) -> cst.Annotation:
        self.used_any = True
        return cst.Annotation(cst.parse_expression(self.any_name))

    def _qualified(self, node: cst.BaseExpression) -> str | None:
        dotted = dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if head in self.bound:
            return self.bound[head] + ("." + rest if rest else "")
        return f"builtins.{dotted}" if not rest else dotted

    def complete(self, node: cst.BaseExpression) -> cst.BaseExpression:
        """``node`` (an annotation) with every bare generic class given ``Any`` parameters."""
        if isinstance(node, cst.Name | cst.Attribute):
            params = GENERIC_PARAMETERS.get(self._qualified(node) or "")
            if params is None:
                return node
            self.used_any = True
            text = cst.Module([]).code_for_node(node)
            return cst.parse_expression(f"{text}[{params.replace('Any', self.any_name)}]")
        if isinstance(node, cst.Subscript):
            elements = [
                (
                    e.with_changes(slice=e.slice.with_changes(value=self.complete(e.slice.value)))
                    if isinstance(e.slice, cst.Index)
                    else e
                )
                for e in node.slice
            ]
            return node.with_changes(slice=elements)
        if isinstance(node, cst.BinaryOperation):
            return node.with_changes(left=self.complete(node.left), right=self.complete(node.right))
        if isinstance(node, cst.List):
            return node.with_changes(
                elements=[e.with_changes(value=self.complete(e.value)) for e in node.elements]
            )
        return node

    def on_visit(self, node: cst.CSTNode) -> bool:
        # what this completes is in statements (defs, classes, annotated assignments; annotations are completed
        # from their def or assignment): an expression holds none, so its nodes are not walked
        if isinstance(node, cst.BaseExpression):
            return False
        if isinstance(node, cst.SimpleStatementLine) and not any(
            isinstance(small, cst.AnnAssign) for small in node.body
        ):
            return False  # a line without an annotated assignment has nothing to complete: kept as it is
        return super().on_visit(node)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._scopes.append("class")

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        self._scopes.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append("function")

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self._scopes.pop()
        method = bool(self._scopes) and self._scopes[-1] == "class"
        decorators = {dotted_name(d.decorator) for d in updated_node.decorators}
        bare_first = method and "staticmethod" not in decorators
        params = updated_node.params
        positional = [*params.posonly_params, *params.params]
        first = positional[0] if bare_first and positional else None
        returns = updated_node.returns
        if returns is None:
            returns = (
                self._any()
                if _returns_value(original_node, self.yields)
                else cst.Annotation(cst.Name("None"))
            )
        else:
            returns = returns.with_changes(annotation=self.complete(returns.annotation))
        if not (
            isinstance(returns.annotation, cst.Name)
            and returns.annotation.value in {"None", self.any_name}
        ):
            self.declares_return = True
        return updated_node.with_changes(
            params=params.with_changes(
                posonly_params=[self._param(p, first) for p in params.posonly_params],
                params=[self._param(p, first) for p in params.params],
                kwonly_params=[self._param(p, first) for p in params.kwonly_params],
                star_arg=(
                    self._param(params.star_arg, first)
                    if isinstance(params.star_arg, cst.Param)
                    else params.star_arg
                ),
                star_kwarg=(
                    self._param(params.star_kwarg, first) if params.star_kwarg is not None else None
                ),
            ),
            returns=returns,
        )

    def _param(self, param: cst.Param, first: cst.Param | None) -> cst.Param:
        if param is first:
            return param
        if param.annotation is None:
            return param.with_changes(annotation=self._any())
        return param.with_changes(
            annotation=param.annotation.with_changes(
                annotation=self.complete(param.annotation.annotation)
            )
        )

    def leave_AnnAssign(
        self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign
    ) -> cst.AnnAssign:
        annotation = updated_node.annotation
        return updated_node.with_changes(
            annotation=annotation.with_changes(annotation=self.complete(annotation.annotation))
        )


def _insert_after_header(
    body: Sequence[cst.BaseStatement], lines: list[cst.BaseStatement]
) -> list[cst.BaseStatement]:
    """``body`` with ``lines`` after its docstring and ``from __future__`` imports."""
    at = 0
    for i, stmt in enumerate(body):
        small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) else None
        docstring = (
            i == 0 and isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString)
        )
        future = (
            isinstance(small, cst.ImportFrom)
            and small.module is not None
            and dotted_name(small.module) == "__future__"
        )
        if not (docstring or future):
            break
        at = i + 1
    return [*body[:at], *lines, *body[at:]]


def complete_annotations(code: str | cst.Module) -> str:
    """``code`` (a generated module, or its tree: no second parse) with the annotations ``mypy --strict``
    needs; see the module docstring."""
    text = code if isinstance(code, str) else None  # a tree's text is generated once, at the end
    module = cst.parse_module(code) if isinstance(code, str) else code
    bound = _bindings(module)
    typing_any = bound.get("Any", "typing.Any") in ("typing.Any", "typing_extensions.Any")
    yields = "yield" in text if text is not None else bool(find_all(module, cst.Yield))
    complete = _Complete(bound, "Any" if typing_any else "typing.Any", yields)
    new = module.visit(complete)
    lines: list[cst.BaseStatement] = []
    # every Any the completion wrote is the name ``Any`` (with ``typing_any``): no walk needed to know it is used
    if typing_any and "Any" not in bound and (complete.used_any or "Any" in names_in(new)):
        lines.append(cst.parse_statement("from typing import Any\n"))
    elif complete.used_any and not typing_any and "typing" not in bound:
        lines.append(cst.parse_statement("import typing\n"))
    if lines:
        new = new.with_changes(body=_insert_after_header(new.body, lines))
    done = new.code
    # the completion writes annotations, no comment: the note is in its result when it was in ``code``
    if complete.declares_return and ANY_RETURN_NOTE not in (text if text is not None else done):
        done = _with_header_lines(new, done, _comment_lines(ANY_RETURN_NOTE))
    return done


def _header_code(module: cst.Module, lines: Sequence[cst.EmptyLine]) -> str:
    """The code of ``lines`` as the header of ``module`` (an empty module's code is a newline: not here)."""
    if not lines:
        return ""
    return cst.Module(body=[], header=lines, default_newline=module.default_newline).code


def _with_header_lines(module: cst.Module, code: str, lines: Sequence[cst.EmptyLine]) -> str:
    """``module.with_changes(header=[*module.header, *lines]).code``, given ``code``, ``module``'s code: a
    module's code begins with its header lines', so the new ones go in after those, and the module is not
    generated again (issue 17: the biggest module of a conversion)."""
    head = _header_code(module, module.header)
    # without a trailing newline the last line's would go (and an empty module's code ends on a header line)
    if not (module.has_trailing_newline and module.body and code.startswith(head)):
        return module.with_changes(header=[*module.header, *lines]).code
    return head + _header_code(module, lines) + code[len(head) :]


def _comment_lines(text: str) -> list[cst.EmptyLine]:
    return [cst.EmptyLine(comment=cst.Comment(line)) for line in text.strip().split("\n")]
