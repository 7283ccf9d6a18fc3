"""What a notebook shows: the values its cells display, kept as the pipeline's results.

A cell's last expression (unless ended with ``;``) and a top-level ``display(x)`` show a value. ``find_shown``
decides which of them are results, kept by the generated pipeline (bound to a name, logged as a structured
``result`` event, returned, written to ``metrics.json``), and which are previews of data, dropped as before
(``df.head()``, ``df.describe()``, a bare frame: NBH603):

- a call is a result unless it returns nothing worth keeping (plotting, printing, writing files, fitting or
  changing an object in place, a notebook function without a ``return`` value) or previews data
  (``head``, ``describe``, ``value_counts``...): ``model.score(X, y)``, ``cross_val_score(...)``,
  ``leaderboard(models)``, ``pd.DataFrame(grid.cv_results_)``;
- a name, attribute or subscript is a result when it holds a computed value: a fitted attribute
  (``grid.best_params_``), or a name bound from a metric, a model's ``score``/``predict``, a notebook function or
  arithmetic over those (``acc``, ``scores.mean()``); a frame, an array or a constant is a preview;
- a value made from a computed value is computed too: a library call taking one (``pd.DataFrame(grid.cv_results_)``)
  and a method of one (``results.sort_values("rank_test_score")``, its columns ``[cols]``); so is a summary of
  data by group (``df.groupby("segment").mean()``, ``.agg([...])``, a pivot table, a crosstab), not a count by
  group (``.size()``, ``.agg("count")``: a preview, like ``value_counts``).

A computed value the notebook prints (``print(f"accuracy: {acc:.3f}")``, ``print("AUC", auc)``, ``"%.3f" % acc``,
``"{}".format(acc)``, ``print(classification_report(y, pred))``, ``print(grid.best_params_)``) is a result as
well: a name is logged after the print (which becomes a log line as before), another value is bound to its
result's name first and the print prints that name; returned and in ``metrics.json``. A name or attribute printed
again, or printed and shown, with the same binding counts once; ``round(acc, 3)``, ``str(acc)``... print ``acc``;
``len(...)`` is a size, not a result.

A preview dropped from a kept cell is reported at its line (NBH603, ``emit._display_findings``): nothing shown is
dropped silently.

Each result gets a name no notebook name, Config field or step uses: ``accuracy`` for a classifier's ``score``,
``r2`` for a regressor's, ``f1`` for ``f1_score(...)``, ``cv_scores``, ``best_params``, the function's name...
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Collection, Sequence
from typing import NamedTuple

import libcst as cst

from nbharden.analyse import (
    BUILTINS,
    MUTATING_METHODS,
    FullAnalysis,
    is_display_expression,
    qualify,
)
from nbharden.models import Shown
from nbharden.shape import remember_classes

PREVIEW_METHODS = frozenset(
    """head tail sample describe info value_counts nunique unique isnull isna notnull notna memory_usage
    dtypes columns shape index keys corr cov count to_frame style _repr_html_ plot hist boxplot ndim size
    get_params""".split()
)
#: Reports a fit prints (statsmodels' ``summary()``): a display of what the fit holds, which the fit
#: itself is compared on; never a result, nor anything taken from one (``summary().tables[1]``).
_REPORT_METHODS = frozenset({"summary", "summary2"})
_NO_VALUE_METHODS = frozenset(
    MUTATING_METHODS
    | set(
        """show savefig legend grid tight_layout axhline axvline annotate text colorbar close clf cla figure
        subplots plot hist bar barh scatter boxplot imshow pie heatmap xlabel ylabel title xticks yticks xlim
        ylim suptitle sleep write writelines flush mkdir touch unlink to_csv to_parquet to_excel to_json
        to_pickle to_feather to_hdf to_sql to_html save save_model dump fit_transform""".split()
    )
)
_NO_VALUE_PREFIXES = (
    "matplotlib.",
    "seaborn.",
    "pylab.",
    "plotly.",
    "warnings.",
    "logging.",
    "os.",
    "sys.",
    "shutil.",
    "subprocess.",
    "IPython.",
    "time.sleep",
    "random.seed",
    "numpy.random.seed",
    "pandas.set_option",
    "pandas.reset_option",
    "numpy.set_printoptions",
    "joblib.dump",
    "pickle.dump",
    "json.dump",
    "numpy.save",
)
_NO_VALUE_FUNCTIONS = frozenset(
    {"print", "display", "exec", "setattr", "delattr", "help", "breakpoint"}
)
_METRIC = re.compile(
    r"^sklearn\.(metrics\.\w+|model_selection\.(cross_val_score|cross_validate|cross_val_predict))$"
)
_MODEL_METHODS = frozenset(
    {
        "score",
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
        "evaluate",
        "summary",
    }
)
_NUMERIC_BUILTINS = frozenset(
    {"float", "int", "round", "abs", "max", "min", "sum", "len", "dict", "list"}
)
_CLASSIFIERS = re.compile(
    r"(Classifier|NB|SVC|LogisticRegression|LogisticRegressionCV|Perceptron|KNeighborsClassifier)$"
)
_REGRESSORS = re.compile(r"(Regress\w*|Regression|Ridge|Lasso|ElasticNet|SVR|LassoCV|RidgeCV)$")
#: Methods that reorder or reshape a value without making it something else: the result keeps its name.
_SAME_VALUE_METHODS = frozenset(
    {"sort_values", "sort_index", "round", "reset_index", "to_frame", "transpose", "copy", "astype",
     "rename", "set_index", "head", "tail", "nlargest", "nsmallest", "tolist", "to_list", "to_dict"}
)  # fmt: skip
#: Statistics of a group (``df.groupby(k).mean()``): a summary table the notebook computes, a result.
_STATISTICS = frozenset("mean median sum std var min max quantile prod sem first last".split())
#: What a count by group asks for (``.agg("count")``): a preview of the data, like ``value_counts``.
_COUNTS = frozenset({"count", "size", "nunique"})
_VERBS = (
    "get_",
    "compute_",
    "calc_",
    "calculate_",
    "make_",
    "build_",
    "find_",
    "create_",
    "run_",
    "predict_",
)


def _dotted_root(node: cst.BaseExpression) -> str | None:
    """``np`` for ``np.random``; None unless the expression is a dotted name."""
    while isinstance(node, cst.Attribute):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def _root(node: cst.BaseExpression) -> str | None:
    while isinstance(node, cst.Attribute | cst.Subscript | cst.Call):
        node = node.func if isinstance(node, cst.Call) else node.value
    return node.value if isinstance(node, cst.Name) else None


class _Context:
    """What the scan knows at one point of the notebook: imports, notebook functions, how names were bound."""

    def __init__(self, analysis: FullAnalysis) -> None:
        facts = analysis.facts
        assert facts is not None
        self.qualified = facts.qualified
        self.classes: dict[str, str] = {}
        self.inner: dict[str, str] = {}
        self.computed: dict[str, bool] = {}  # name -> bound from a computed (result-like) value
        self.fitted: set[str] = set()  # names bound to what a fit returned (a statsmodels result...)
        self.mappings: set[str] = set()  # names bound to a new dict: scores[name] = ... fills them
        self.returns: dict[str, bool] = {}  # notebook function -> returns a value
        self.version: dict[str, int] = {}  # name -> how many times it was bound so far
        for cf in facts.cells.values():
            for stmt in cf.module.body:
                if isinstance(stmt, cst.FunctionDef):
                    self.returns[stmt.name.value] = _returns_value(stmt)

    def no_value(self, call: cst.Call) -> bool:
        """The call returns nothing worth keeping (or changes something instead)."""
        q = qualify(call.func, self.qualified) or ""
        if q in _NO_VALUE_FUNCTIONS or q.startswith(_NO_VALUE_PREFIXES) or "get_ipython" in q:
            return True
        if any(a.keyword is not None and a.keyword.value == "inplace" for a in call.args):
            return True
        if isinstance(call.func, cst.Attribute):
            method = call.func.attr.value
            return method in _NO_VALUE_METHODS or method.startswith("set_")
        return isinstance(call.func, cst.Name) and self.returns.get(call.func.value) is False

    def computed_call(self, call: cst.Call) -> bool:
        """A metric, a model's score or prediction, a notebook function's value, a summary table, or a value
        made from those (``pd.DataFrame(grid.cv_results_)``, ``scores.mean()``, ``results.sort_values(...)``)."""
        q = qualify(call.func, self.qualified) or ""
        if _METRIC.match(q) or _summary_table(call, self.qualified):
            return True
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in _REPORT_METHODS:
            return False
        if isinstance(func, cst.Attribute):
            if _dotted_root(func.value) in self.qualified:  # a library function: pd.DataFrame(...)
                return not self.no_value(call) and self._computed_argument(call)
            if func.attr.value in _MODEL_METHODS and _root(func.value) not in self.qualified:
                return True
            return not self.no_value(call) and self.computed_value(func.value)
        if isinstance(func, cst.Name):
            if self.returns.get(func.value):
                return True
            if func.value in _NUMERIC_BUILTINS or func.value in self.qualified:
                return not self.no_value(call) and self._computed_argument(call)
        return False

    def _computed_argument(self, call: cst.Call) -> bool:
        return any(self.computed_value(a.value) for a in call.args)

    def computed_value(self, node: cst.BaseExpression) -> bool:
        if isinstance(node, cst.Name):
            return self.computed.get(node.value, False)
        if isinstance(node, cst.Call):
            return self.computed_call(node)
        if isinstance(node, cst.Attribute):
            attr = node.attr.value
            learned = attr.endswith("_") and not attr.startswith("_")
            of_fit = isinstance(node.value, cst.Name) and node.value.value in self.fitted
            if attr.startswith("_") or attr in PREVIEW_METHODS:
                return False
            return learned or of_fit or self.computed_value(node.value)
        if isinstance(node, cst.Subscript):
            return self.computed_value(node.value)
        if isinstance(node, cst.BinaryOperation):
            return self.computed_value(node.left) or self.computed_value(node.right)
        if isinstance(node, cst.UnaryOperation):
            return self.computed_value(node.expression)
        if isinstance(node, cst.Comparison):
            return self.computed_value(node.left) or any(
                self.computed_value(c.comparator) for c in node.comparisons
            )
        if isinstance(node, cst.Tuple | cst.List):
            return any(self.computed_value(e.value) for e in node.elements)
        if isinstance(node, cst.Dict):  # {"accuracy": accuracy_score(...), ...}
            return any(
                isinstance(e, cst.DictElement) and self.computed_value(e.value)
                for e in node.elements
            )
        if isinstance(node, cst.DictComp):  # {name: m.score(X, y) for name, m in models.items()}
            return self.computed_value(node.value)
        return False

    def is_result(self, expr: cst.BaseExpression) -> bool:
        """Whether a shown expression is a result (kept) rather than a preview of data or an action."""
        if isinstance(expr, cst.Call):
            if self.no_value(expr):
                return False
            func = expr.func
            if isinstance(func, cst.Attribute) and func.attr.value in _REPORT_METHODS:
                return False
            if isinstance(func, cst.Attribute) and func.attr.value in PREVIEW_METHODS:
                return self.computed_value(func.value)
            if is_display_expression(expr):
                return self.computed_call(expr)
            return True
        return self.computed_value(expr)

    def bind(self, stmt: cst.BaseStatement) -> None:
        """Remember how a top-level statement binds names (computed or not), and which classes."""
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign):
                    computed = self.computed_value(small.value)
                    value = small.value
                    fit = (
                        isinstance(value, cst.Call)
                        and isinstance(value.func, cst.Attribute)
                        and value.func.attr.value == "fit"
                    )
                    fresh_dict = isinstance(value, cst.Dict) and not value.elements
                    for t in small.targets:
                        for name in _names(t.target):
                            self._set(name, computed)
                            (self.fitted.add if fit else self.fitted.discard)(name)
                            (self.mappings.add if fresh_dict else self.mappings.discard)(name)
                elif isinstance(small, cst.AnnAssign | cst.AugAssign):
                    for name in _names(small.target):
                        self._set(name, False)
        elif isinstance(stmt, cst.For):
            for name in _names(stmt.target):
                self._set(name, False)
        for name in self._filled(stmt):  # scores = {} then scores[name] = cross_val_score(...).mean()
            self.computed[name] = True
        for name in _fitted_in_place(stmt):  # grid.fit(X, y): its learned attributes are new values
            self.version[name] = self.version.get(name, 0) + 1
        if isinstance(stmt, cst.SimpleStatementLine):
            remember_classes(cst.Module([stmt]), self.classes, self.inner)


    def _filled(self, stmt: cst.BaseStatement) -> set[str]:
        """The new dicts (``self.mappings``) that ``stmt`` fills with computed values, in loops and
        branches too (not in the functions or classes it defines)."""
        found: set[str] = set()
        context = self

        class Visitor(cst.CSTVisitor):
            def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
                return False

            def visit_ClassDef(self, node: cst.ClassDef) -> bool:
                return False

            def visit_Assign(self, node: cst.Assign) -> None:
                for t in node.targets:
                    target = t.target
                    if (
                        isinstance(target, cst.Subscript)
                        and isinstance(target.value, cst.Name)
                        and target.value.value in context.mappings
                        and context.computed_value(node.value)
                    ):
                        found.add(target.value.value)

        if self.mappings:
            stmt.visit(Visitor())
        return found

    def printed_result(self, node: cst.BaseExpression) -> bool:
        """Whether a printed value is a result: a computed name, attribute, item or call, not a size
        (``len(model.estimators_)``: a count, as ``shape`` is a preview)."""
        if isinstance(node, cst.Call) and _called(node) == "len":
            return False
        kinds = cst.Name | cst.Attribute | cst.Subscript | cst.Call
        return isinstance(node, kinds) and self.computed_value(node)

    def key(self, node: cst.BaseExpression) -> tuple[str, int] | None:
        """A name or an attribute of one (``grid.best_params_``) with the binding of the name it reads:
        the same key is the same value; None for anything else (a call computes a value again)."""
        root = node
        while isinstance(root, cst.Attribute):
            root = root.value
        if not isinstance(root, cst.Name):
            return None
        return cst.Module([]).code_for_node(node), self.version.get(root.value, 0)

    def base(self, node: cst.BaseExpression) -> str:
        return result_name(node, self.classes, self.inner, self.qualified)

    def _set(self, name: str, computed: bool) -> None:
        self.computed[name] = computed
        self.version[name] = self.version.get(name, 0) + 1


def _called(call: cst.Call) -> str | None:
    """The name a call calls (``len`` of ``len(x)``), None for a method or another expression."""
    return call.func.value if isinstance(call.func, cst.Name) else None


def _fitted_in_place(stmt: cst.BaseStatement) -> list[str]:
    """The names a top-level line fits (``grid.fit(X, y)``, ``model.partial_fit(X)``)."""
    if not isinstance(stmt, cst.SimpleStatementLine):
        return []
    return [
        small.value.func.value.value
        for small in stmt.body
        if isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and isinstance(small.value.func, cst.Attribute)
        and small.value.func.attr.value in {"fit", "partial_fit", "fit_transform"}
        and isinstance(small.value.func.value, cst.Name)
    ]


def _chain(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The links of a method chain, outermost first: ``a.groupby(k)[c].mean()`` -> the call of mean, its
    attribute, the subscript, the call of groupby, its attribute, ``a``."""
    links = [node]
    while isinstance(node, cst.Attribute | cst.Subscript | cst.Call):
        node = node.func if isinstance(node, cst.Call) else node.value
        links.append(node)
    return links


def _methods(call: cst.Call) -> list[tuple[str, cst.Call]]:
    """(method, its call) along a method chain, outermost first."""
    return [
        (link.func.attr.value, link)
        for link in _chain(call)
        if isinstance(link, cst.Call) and isinstance(link.func, cst.Attribute)
    ]


def _group_statistics(methods: list[tuple[str, cst.Call]]) -> tuple[cst.Call | None, list[str]]:
    """The ``groupby`` call of a chain and the statistics applied after it, innermost last."""
    for i, (method, call) in enumerate(methods):
        if method == "groupby":
            return call, [m for m, c in methods[:i] if _statistic(m, c)]
    return None, []


def _summary_table(call: cst.Call, qualified: dict[str, str]) -> bool:
    """A table that summarises data by group: a statistic of a ``groupby`` (``df.groupby(k).mean()``,
    ``.agg(["mean", "max"])``), a pivot table or a crosstab. A count by group (``.size()``, ``.count()``,
    ``.agg("count")``) describes the data as ``value_counts`` does: a preview, not a result."""
    if qualify(call.func, qualified) in {"pandas.pivot_table", "pandas.crosstab"}:
        return True
    methods = _methods(call)
    return any(m == "pivot_table" for m, _ in methods) or bool(_group_statistics(methods)[1])


def _summary_name(call: cst.Call) -> str | None:
    """``mean_by_segment`` for ``df.groupby("segment")[cols].mean().round(1)``, ``shouting_mean_by_label``
    for one column (``df.groupby("label")["shouting"].mean()``); None if not a group summary."""
    grouped, statistics = _group_statistics(_methods(call))
    if grouped is None or not statistics:
        return None
    keys = [s.evaluated_value for a in grouped.args[:1] for s in _strings(a.value)]
    key = "_".join(str(k) for k in keys) or "group"
    column = next(
        (
            str(link.slice[0].slice.value.evaluated_value)
            for link in _chain(call)
            if isinstance(link, cst.Subscript)
            and len(link.slice) == 1
            and isinstance(link.slice[0].slice, cst.Index)
            and isinstance(link.slice[0].slice.value, cst.SimpleString)
        ),
        "",
    )
    statistic = "summary" if statistics[-1] in {"agg", "aggregate"} else statistics[-1]
    return compose_name([column, statistic, "by", key])


def _statistic(method: str, call: cst.Call) -> bool:
    """A statistic of a group: ``mean``, ``sum``..., or ``agg`` of anything but counts."""
    if method in _STATISTICS:
        return True
    if method not in {"agg", "aggregate"}:
        return False
    words = {str(s.evaluated_value) for a in call.args for s in _strings(a.value)}
    return not (words and words <= _COUNTS)


def _strings(node: cst.BaseExpression) -> list[cst.SimpleString]:
    if isinstance(node, cst.SimpleString):
        return [node]
    if isinstance(node, cst.List | cst.Tuple):
        return [s for e in node.elements for s in _strings(e.value)]
    return []


def _names(node: cst.BaseExpression) -> list[str]:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Tuple | cst.List):
        return [n for e in node.elements for n in _names(e.value)]
    return []


def _returns_value(fn: cst.FunctionDef) -> bool:
    found = False

    class _V(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is fn  # a nested function's return is not this one's

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_Return(self, node: cst.Return) -> None:
            nonlocal found
            found = found or node.value is not None

        def visit_Yield(self, node: cst.Yield) -> None:
            nonlocal found
            found = True

    fn.visit(_V())
    return found


def bound_to_name(shown: Shown) -> bool:
    """Whether the pipeline binds the value to the result's name (not for a shown or printed name)."""
    return shown.how in {"bind", "display"} or (shown.how == "print" and shown.display >= 0)


def shown_value(stmt: cst.BaseStatement, shown: Shown) -> cst.BaseExpression | None:
    """The expression a kept shown statement shows (``x`` of ``display(x)``), which the pipeline binds to
    the result's name; None when the statement shows or prints a name (only logged) or is not one simple
    line."""
    if shown.how in {"name", "print"} or not isinstance(stmt, cst.SimpleStatementLine):
        return None
    small = stmt.body[0]
    assert isinstance(small, cst.Expr)
    value = small.value
    if shown.how == "display":
        assert isinstance(value, cst.Call)
        value = value.args[0].value
    return value


def shown_expression(
    stmt: cst.BaseStatement, last: bool, shadowed: Collection[str] = ()
) -> tuple[cst.BaseExpression, str] | None:
    """(the shown expression, how) of a top-level statement: the cell's last expression ("bind"), or
    ``display(x)`` ("display"; not when the notebook binds a ``display`` of its own, in ``shadowed``); None
    when the statement shows nothing."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    small = stmt.body[0]
    if not isinstance(small, cst.Expr):
        return None
    value = small.value
    if (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and value.func.value == "display"
        and "display" not in shadowed
        and len(value.args) == 1
        and value.args[0].keyword is None
        and not value.args[0].star
    ):
        return value.args[0].value, "display"
    if last and isinstance(small.semicolon, cst.MaybeSentinel):
        return value, "bind"
    return None


def result_name(
    expr: cst.BaseExpression,
    classes: dict[str, str],
    inner: dict[str, str],
    modules: Collection[str] = (),
) -> str:
    """A readable name for a shown value: ``accuracy``, ``r2``, ``f1``, ``cv_scores``, ``best_params``...

    ``modules``: the names imports bind (``pd.DataFrame(...)`` is a function of a module, not a method)."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Call):
        func = expr.func
        if summary := _summary_name(expr):
            return summary
        if isinstance(func, cst.Attribute) and _dotted_root(func.value) in modules:
            return _function_result(func.attr.value, expr)
        if isinstance(func, cst.Attribute) and not isinstance(func.value, cst.Name):
            # a method of a computed value: pd.Series(forest.feature_importances_).sort_values()
            base = result_name(func.value, classes, inner, modules)
            base = base.removesuffix("_result") or base  # Counter(words).most_common(5): counter_most_common
            method = func.attr.value
            return base if method in _SAME_VALUE_METHODS else f"{base}_{method.strip('_')}"
        if isinstance(func, cst.Attribute):
            return _method_result(func, classes, inner)
        if isinstance(func, cst.Name):
            return _function_result(func.value, expr)
    if isinstance(expr, cst.Attribute):
        attr = expr.attr.value
        if attr.endswith("_") and not attr.startswith("_"):
            return attr.strip("_")
        return f"{_root(expr) or 'value'}_{attr}"
    if isinstance(expr, cst.Tuple) and expr.elements:
        parts = [result_name(e.value, classes, inner, modules) for e in expr.elements]
        roots = {_root(e.value) for e in expr.elements}
        if len(roots) == 1 and all(isinstance(e.value, cst.Attribute) for e in expr.elements):
            root = next(iter(roots)) or "value"  # (model.rsquared, model.rsquared_adj): rsquared_adj
            parts = [p[len(root) + 1 :] if p.startswith(root + "_") else p for p in parts]
        return compose_name(parts)
    if isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
        index = expr.slice[0].slice
        key = ""
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            key = str(index.value.evaluated_value)
        if not isinstance(expr.value, cst.Name):  # columns of a computed table: that table's name
            base = result_name(expr.value, classes, inner, modules)
            return f"{base}_{key}" if key else base
        return f"{_root(expr) or 'value'}_{key or 'item'}"
    return "result"


def _method_result(func: cst.Attribute, classes: dict[str, str], inner: dict[str, str]) -> str:
    method = func.attr.value
    receiver = _root(func.value) or "model"
    if method == "score":
        cls = inner.get(receiver) or classes.get(receiver, "")
        if _CLASSIFIERS.search(cls):
            return "accuracy"
        if _REGRESSORS.search(cls):
            return "r2"
        return f"{receiver}_score"
    named = {"predict": "predictions", "predict_proba": "probabilities", "evaluate": "evaluation"}
    if method in named:
        return named[method]
    if method in {"sort_values", "sort_index"}:
        return f"{receiver}_sorted"
    return f"{receiver}_{method.strip('_')}"


#: What engineers call the value of a library function whose own name the function keeps.
_LIBRARY_RESULTS = {
    "cross_val_score": "cv_scores",
    "cross_validate": "cv_results",
    "classification_report": "report",
    "confusion_matrix": "confusion",
    "mean_squared_error": "mse",
    "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae",
    "mean_absolute_percentage_error": "mape",
}


def _function_result(function: str, call: cst.Call) -> str:
    if function in _LIBRARY_RESULTS:
        return _LIBRARY_RESULTS[function]
    if function.endswith("_score") and len(function) > 6:
        return function[: -len("_score")]
    if function in {"DataFrame", "Series"} and call.args:
        first = call.args[0].value
        while isinstance(first, cst.Subscript):  # pd.Series(model.coef_[0]): the coefficients
            first = first.value
        if isinstance(first, cst.Attribute):
            return first.attr.value.strip("_") or "table"
        if isinstance(first, cst.Name):
            return f"{first.value}_table"
        return "table"
    for verb in _VERBS:
        if function.startswith(verb) and len(function) > len(verb):
            return function[len(verb) :]
    return f"{function}_result"  # the function's own name is taken by the function


#: How long a result's name may grow from its parts (a single longer word is kept whole).
NAME_LIMIT = 30


def compose_name(parts: Sequence[str], limit: int = NAME_LIMIT, fallback: str = "result") -> str:
    """One snake_case identifier from name parts, as an engineer would write it: every word once (where it
    first comes: ``is_spam_result`` + ``is_spam_result`` -> ``is_spam_result``, ``rsquared`` +
    ``rsquared_adj`` -> ``rsquared_adj``), cut between words to at most ``limit`` characters (a first word
    longer than that is kept whole, never cut), numbers never first (``2021_sales`` -> ``sales_2021``)."""
    words: list[str] = []
    for word in (w for part in parts for w in re.findall(r"[a-z0-9]+", part.lower())):
        if word not in words:
            words.append(word)
    leading = next((i for i, w in enumerate(words) if not w[0].isdigit()), len(words))
    words = words[leading:] + words[:leading] if leading < len(words) else [fallback, *words]
    name = words[0]
    for word in words[1:]:
        if len(name) + 1 + len(word) > limit:
            break
        name = f"{name}_{word}"
    return name


def _fresh(base: str, taken: set[str]) -> str:
    """``base`` as a name (``compose_name``) no notebook name, Config field, step or earlier result uses:
    ``accuracy``, then ``accuracy_2``, ``accuracy_3``..."""
    name = compose_name([base])
    words = name.split("_")
    candidate, n = name, 2
    while candidate in taken or keyword.iskeyword(candidate) or candidate in BUILTINS:
        n += str(n) in words  # price_2 taken: price_2_3, never price_2_2
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _top_level_displays(body: Sequence[cst.BaseStatement], shadowed: Collection[str]) -> int:
    return sum(
        1
        for stmt in body
        if (found := shown_expression(stmt, False, shadowed)) and found[1] == "display"
    )


def printed_values(
    stmt: cst.BaseStatement, shadowed: Collection[str] = ()
) -> list[cst.BaseExpression]:
    """The values a top-level ``print(...)`` prints, in order: its arguments, the replacement fields of an
    f-string (``f"accuracy: {acc:.3f}"``), the operands of ``"%.3f" % acc`` and the arguments of
    ``"{}".format(acc)``; [] for any other statement, a ``print`` the notebook binds itself (in ``shadowed``)
    or one that writes to a file (``file=``: real output, kept as it is)."""
    if "print" in shadowed or not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return []
    small = stmt.body[0]
    call = small.value if isinstance(small, cst.Expr) else None
    if not (
        isinstance(call, cst.Call)
        and isinstance(call.func, cst.Name)
        and call.func.value == "print"
        and not any(a.keyword is not None and a.keyword.value == "file" for a in call.args)
    ):
        return []
    return [v for a in call.args if a.keyword is None and not a.star for v in _printed(a.value)]


def _printed(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The values a printed expression formats: those of a string's formatting, else the expression."""
    if isinstance(node, cst.FormattedString):
        fields = [p.expression for p in node.parts if isinstance(p, cst.FormattedStringExpression)]
        return [v for field in fields for v in _printed(field)]
    if isinstance(node, cst.ConcatenatedString):
        return _printed(node.left) + _printed(node.right)
    if isinstance(node, cst.BaseString):
        return []
    if (
        isinstance(node, cst.BinaryOperation)
        and isinstance(node.operator, cst.Modulo)
        and isinstance(node.left, cst.BaseString)
    ):
        right = node.right
        if isinstance(right, cst.Tuple):
            items = [e.value for e in right.elements if not isinstance(e, cst.StarredElement)]
        elif isinstance(right, cst.Dict):  # "%(acc).3f" % {"acc": acc}
            items = [e.value for e in right.elements if isinstance(e, cst.DictElement)]
        else:
            items = [right]
        return _printed(node.left) + [v for item in items for v in _printed(item)]
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "format"
        and isinstance(node.func.value, cst.BaseString)
    ):
        fields = _printed(node.func.value)  # f"{a} {{}}".format(b)
        return fields + [v for a in node.args if not a.star for v in _printed(a.value)]
    return [node]


class _Found(NamedTuple):
    shown: Shown  # named later (``_named``), once the values printed again are left out
    key: tuple[str, int] | None  # a name or attribute with the binding of its name: the same value
    base: str  # the name, or what the result's name is made from


def find_shown(analysis: FullAnalysis, taken: Collection[str]) -> tuple[Shown, ...]:
    """The results a notebook shows, in order, each with a fresh name (not in ``taken``); and the computed
    values it prints (``print(f"accuracy: {acc:.3f}")``: "print"), once each, unless shown too."""
    facts = analysis.facts
    assert facts is not None
    context = _Context(analysis)
    found: list[_Found] = []
    for index in sorted(facts.cells):
        body = facts.cells[index].module.body
        displays = 0
        unshown = facts.cells[index].unshown
        for i, stmt in enumerate(body):
            shown = None if i in unshown else shown_expression(stmt, i == len(body) - 1, facts.shadowed)
            if shown is not None:
                expr, how = shown
                ordinal = displays if how == "display" else -1
                displays += how == "display"
                if context.is_result(expr):
                    expected = _top_level_displays(body, facts.shadowed)
                    how = "name" if isinstance(expr, cst.Name) else how
                    value = Shown("", index, i, how, ordinal, expected)
                    found.append(_Found(value, context.key(expr), context.base(expr)))
            for part, printed in enumerate(printed_values(stmt, facts.shadowed)):
                printed = _formatted(printed)
                if context.printed_result(printed):
                    named = isinstance(printed, cst.Name)
                    code = "" if named else cst.Module([]).code_for_node(printed)
                    value = Shown("", index, i, "print", -1 if named else part, source=code)
                    found.append(_Found(value, context.key(printed), context.base(printed)))
            context.bind(stmt)
    return _named(found, taken)


def _formatted(node: cst.BaseExpression) -> cst.BaseExpression:
    """The name a print formats (``round(acc, 3)``, ``float(acc)``, ``str(acc)``: ``acc``), else ``node``."""
    if (
        isinstance(node, cst.Call)
        and _called(node) in {"round", "float", "int", "str", "repr", "format"}
        and node.args
        and node.args[0].keyword is None
        and not node.args[0].star
        and isinstance(node.args[0].value, cst.Name)
    ):
        return node.args[0].value
    return node


def _named(found: list[_Found], taken: Collection[str]) -> tuple[Shown, ...]:
    """The results named, without a value printed again or printed and shown (a name or attribute of
    the same binding): a shown value is kept where shown, a printed one where first printed."""
    shown = {f.key for f in found if f.key is not None and f.shown.how != "print"}
    seen: set[tuple[str, int]] = set()
    used = set(taken)
    out: list[Shown] = []
    for value, key, base in found:
        if value.how == "print" and key is not None:
            if key in shown or key in seen:
                continue
            seen.add(key)
        named = value.how == "name" or (value.how == "print" and value.display < 0)
        out.append(dataclasses.replace(value, name=base if named else _fresh(base, used)))
    return tuple(out)
