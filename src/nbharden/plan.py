"""Plan the package: step boundaries, function names, inputs and outputs, config fields, what moves to module level.

The plan is data (``models.Plan``, JSON-serialisable, shown in review). It is derived from the analysis alone:
- steps follow the notebook's sections and data flow (``nbharden.shape``: headings of every kind, ``step:<name>``
  tags, then what the cells do), named like an engineer would;
- a step's inputs are the names it reads whose latest definition is in an earlier step (or the Config), its outputs
  the names a later step reads, the inputs it changes in place that are read later, and its final results;
- functions and classes move to module level when they only use imports, builtins and other moved definitions;
  anything that reads notebook state stays inside its step and flows as a value;
- the ``parameters`` cell's literals, paths and URLs assigned once, and file paths or URLs passed to I/O calls
  become Config fields.
"""

from __future__ import annotations

import ast
import dataclasses
import keyword
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass, field

import libcst as cst

from nbharden.analyse import (
    BUILTINS,
    MUTATING_METHODS,
    FullAnalysis,
    NotebookFacts,
    TopStatement,
    is_secret_literal,
    looks_like_path,
    looks_like_url,
)
from nbharden.constraints import infer_constraints
from nbharden.env_secrets import (
    default_secrets,
    env_reads,
    env_secret_fields,
    pinned_by_env,
    resolve_secrets,
    used_env_fields,
)
from nbharden.lift import liftable
from nbharden.load import refuse_top_level_await
from nbharden.models import (
    ConfigField,
    Finding,
    Fix,
    Notebook,
    Param,
    Plan,
    SecretUse,
    Severity,
    Shown,
    Span,
    Statement,
    Step,
)
from nbharden.secrets import (
    assign_fields,
    redact,
    secret_values,
    used_fields,
    uses_secret,
)
from nbharden.selection import RuleGate, gate
from nbharden.settings import Settings
from nbharden.shape import Flow, Section, sections
from nbharden.shown import bound_to_name, find_shown, shown_value
from nbharden.transform import network
from nbharden.transform.bound import certainly_bound
from nbharden.transform.codemods import find_all

RESERVED_MODULES = {"config", "pipeline", "steps", "support", "tests", "__main__"}
# Import name -> distribution name, for the generated pyproject's dependencies.
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "skimage": "scikit-image",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "Bio": "biopython",
    "mpl_toolkits": "matplotlib",
    "pylab": "matplotlib",
    "google": "protobuf",
    "dotenv": "python-dotenv",
    "jwt": "pyjwt",
    "serial": "pyserial",
    "IPython": "ipython",
    "sqlalchemy": "sqlalchemy",
}
_TYPE_OF_CALL = {
    "pandas.read_csv": "pd.DataFrame",
    "pandas.read_excel": "pd.DataFrame",
    "pandas.read_json": "pd.DataFrame",
    "pandas.read_parquet": "pd.DataFrame",
    "pandas.read_table": "pd.DataFrame",
    "pandas.DataFrame": "pd.DataFrame",
    "pandas.concat": "pd.DataFrame",
    "pandas.merge": "pd.DataFrame",
    "pandas.read_sql": "pd.DataFrame",
    "pandas.Series": "pd.Series",
    "numpy.array": "np.ndarray",
    "numpy.zeros": "np.ndarray",
    "numpy.ones": "np.ndarray",
    "numpy.arange": "np.ndarray",
    "numpy.linspace": "np.ndarray",
    "numpy.empty": "np.ndarray",
    "numpy.asarray": "np.ndarray",
    "numpy.loadtxt": "np.ndarray",
    "numpy.genfromtxt": "np.ndarray",
    "numpy.random.rand": "np.ndarray",
    "numpy.random.randn": "np.ndarray",
    "numpy.eye": "np.ndarray",
    "numpy.meshgrid": "list[np.ndarray]",
    "pandas.get_dummies": "pd.DataFrame",
    "pandas.pivot_table": "pd.DataFrame",
    "pandas.crosstab": "pd.DataFrame",
    "pandas.to_datetime": "pd.Series",
    "numpy.dot": "np.ndarray",
    "numpy.concatenate": "np.ndarray",
    "numpy.vstack": "np.ndarray",
    "numpy.hstack": "np.ndarray",
    "numpy.stack": "np.ndarray",
    "numpy.random.random": "np.ndarray",
    "numpy.random.normal": "np.ndarray",
    "numpy.random.randint": "np.ndarray",
    "numpy.full": "np.ndarray",
    "numpy.zeros_like": "np.ndarray",
    "numpy.ones_like": "np.ndarray",
    "numpy.where": "np.ndarray",
    "len": "builtins.int",
    "str": "builtins.str",
    "int": "builtins.int",
    "float": "builtins.float",
}


@dataclass
class _RawStep:
    """A step while the plan is being built, before its outputs are known."""

    name: str
    title: str
    doc: str
    cells: tuple[int, ...]
    reads: list[str]
    writes: list[str]
    results: list[str]
    mutated: list[str]
    sources: dict[str, str]
    in_types: dict[str, str | None]
    out_types: dict[str, str | None]
    shown: list[Shown]
    models: list[str]
    unconsumed: frozenset[str] = frozenset()  # bound here and not used up by the step's own code
    # maybe deleted by the step's last event for them (``except E as e``): never a result of the step
    unbound: frozenset[str] = frozenset()
    # bound here on some paths only (``if c: x = 1``), not read here, and bound by an earlier step (or the
    # Config): name -> that step. Where the path did not run, the value after this step is the earlier one
    unsure: dict[str, str] = field(default_factory=dict)


def snake(text: str, fallback: str = "step") -> str:
    """A Python identifier from free text: ``'Load the data!'`` -> ``load_the_data``."""
    text = re.sub(r"[`*_\[\]()#:]", " ", text)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    words = re.findall(r"[A-Za-z0-9]+", text.lower())
    name = "_".join(words[:6]) or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    if keyword.iskeyword(name) or name in BUILTINS:
        name += "_"
    return name


#: File names too common to be a top-level package: installed, they would shadow or be shadowed.
COMMON_NAMES = frozenset(
    {
        "index",
        "main",
        "test",
        "tests",
        "src",
        "untitled",
        "notebook",
        "notebooks",
        "app",
        "utils",
        "util",
        "demo",
        "model",
        "models",
        "pipeline",
        "data",
        "run",
        "setup",
        "config",
        "core",
        "common",
        "lib",
        "scratch",
        "example",
        "examples",
        "playground",
        "sandbox",
        "temp",
        "tmp",
        "draft",
        "new",
        "copy",
        "script",
    }
)


def _common(name: str) -> bool:
    """A common top-level name (``index``, ``main``, ``untitled1``, ``copy_of_x``...)."""
    return (
        name in COMMON_NAMES
        or re.sub(r"\d+$", "", name) in COMMON_NAMES
        or name.startswith(("untitled", "copy_of"))
    )


def package_name(stem: str, imported: set[str], folder: str = "") -> str:
    """The package name from the notebook's file name. Never a stdlib or imported module's name
    (``json_pipeline``); a common top-level name (``index``, ``main``, ``untitled``...) takes the
    folder's name in front (``ames_index``), or ``_pipeline`` after it when the folder's is common too.
    """
    name = snake(stem, fallback="nb")
    if name in sys.stdlib_module_names or name in imported:
        return name + "_pipeline"
    if not _common(name):
        return name
    prefix = snake(folder, fallback="nb") if re.search(r"[A-Za-z]", folder) else ""
    candidate = f"{prefix}_{name}"
    if prefix and not _common(prefix) and candidate not in imported:
        return candidate
    return name + "_pipeline"


def literal_annotation(node: ast.expr) -> str | None:
    """Type of a literal expression, as source text; None when it is not a literal."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return _value_annotation(value)


def _value_annotation(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "None"
    if isinstance(value, int | float | str | bytes | complex):
        return type(value).__name__
    if isinstance(value, list | set | tuple | frozenset):
        kinds = sorted({_value_annotation(v) for v in value})
        container = type(value).__name__
        if isinstance(value, tuple):
            return (
                "tuple[" + ", ".join(_value_annotation(v) for v in value) + "]"
                if 0 < len(value) <= 6
                else "tuple"
            )
        if len(kinds) == 1:
            return f"{container}[{kinds[0]}]"
        return f"{container}[{' | '.join(kinds)}]" if kinds and len(kinds) <= 3 else container
    if isinstance(value, dict):
        keys = sorted({_value_annotation(k) for k in value})
        vals = sorted({_value_annotation(v) for v in value.values()})
        if len(keys) == 1 and len(vals) == 1:
            return f"dict[{keys[0]}, {vals[0]}]"
        return "dict"
    return "object"


def _cell_flows(
    analysis: FullAnalysis,
    order: dict[int, list[tuple[int, int]]],
    roles: dict[tuple[int, int], str],
    config_names: set[str],
    shown: dict[tuple[int, int], tuple[Shown, ...]],
    lifted: dict[str, tuple[str, ...]],
) -> dict[int, Flow]:
    """The data flow of the code each cell keeps in a step (cells that keep none are left out)."""
    facts = analysis.facts
    assert facts is not None
    kept: dict[int, list[TopStatement]] = {}
    for index in facts.cells:
        for c, i in order[index]:
            if roles[(c, i)] == "code":
                st = _with_shown(facts.cells[c].statements[i], c, shown)
                kept.setdefault(index, []).append(_with_state(st, lifted))
    data = {b for stmts in kept.values() for st in stmts for b in st.binds} - config_names
    mutates = {c.index: frozenset(c.mutates) & data for c in analysis.cells}
    flows: dict[int, Flow] = {}
    for index, stmts in kept.items():
        binds = tuple(dict.fromkeys(b for st in stmts for b in st.binds))
        reads = frozenset(u for st in stmts for u in st.uses if u in data)
        flows[index] = Flow(reads, binds, mutates.get(index, frozenset()))
    return flows


def changed_by(stmt: cst.BaseStatement) -> set[str]:
    """Names a simple statement changes in place without reading them otherwise: ``x.append(...)``,
    ``x[k] = ...``, ``x.attr = ...``, ``x.fit(...)``."""

    changed: set[str] = set()
    if not isinstance(stmt, cst.SimpleStatementLine):
        return changed
    for small in stmt.body:
        targets: list[cst.BaseExpression] = []
        if isinstance(small, cst.Assign):
            targets = [t.target for t in small.targets]
        elif isinstance(small, cst.AugAssign | cst.AnnAssign):
            targets = [small.target]
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            func = small.value.func
            if isinstance(func, cst.Attribute) and func.attr.value in MUTATING_METHODS:
                targets = [func]
        for target in targets:
            if isinstance(target, cst.Subscript | cst.Attribute) and isinstance(
                target.value, cst.Name
            ):
                changed.add(target.value.value)
    return changed


#: Calls that change process-wide settings: the pipeline's entry point makes them, not a step function.
_SETTING_CALLS = re.compile(
    r"^(warnings\.(filterwarnings|simplefilter|resetwarnings)|numpy\.set_printoptions|"
    r"seaborn\.(set|set_theme|set_style|set_context|set_palette|set_color_codes)|"
    r"matplotlib\.(pyplot\.)?(style\.use|rc|rcParams\.update)|pandas\.set_option)$"
)
#: pandas options that only change how values are shown (others, like mode.copy_on_write, change results).
_DISPLAY_OPTION = re.compile(r"^(display\.|mode\.chained_assignment$|max_(columns|rows|colwidth)$|precision$|"
                             r"width$|float_format$|expand_frame_repr$|chained_assignment$)")
_SETTING_TARGETS = re.compile(
    r"^(pandas\.options\.(display\.\w+|mode\.chained_assignment)|matplotlib\.(pyplot\.)?rcParams)$"
)


def process_settings(
    facts: NotebookFacts, hoisted_imports: set[str] | frozenset[str]
) -> tuple[tuple[int, int], ...]:
    """(cell, statement) of the top-level statements that only change process-wide settings:
    ``warnings.filterwarnings(...)``, ``pd.set_option("display...", ...)``, ``np.set_printoptions(...)``,
    ``sns.set_theme()``, ``plt.style.use(...)``, ``plt.rcParams[...] = ...``, ``pd.options.display.x = ...``.
    Only with literal arguments and names moved to module level, so they can run before any step; and only
    those before the first statement that reads a setting (``previous = pd.options.display.max_rows``, then
    ``pd.options.display.max_rows = 20``): moved to the start, they would change what it reads."""
    order = [
        (c, i, stmt) for c in sorted(facts.cells) for i, stmt in enumerate(facts.cells[c].module.body)
    ]
    settings = {
        (c, i)
        for c, i, stmt in order
        if _is_setting(stmt, facts.cells[c].statements[i], facts, hoisted_imports)
    }
    out: list[tuple[int, int]] = []
    for c, i, stmt in order:
        if len(out) == len(settings):  # no setting below: what reads one no longer matters (no walk)
            break
        if (c, i) in settings:
            out.append((c, i))
        elif facts.cells[c].statements[i].kind != "import" and _reads_settings(stmt, facts):
            break
    return tuple(out)


def _is_setting(
    stmt: cst.BaseStatement,
    st: TopStatement,
    facts: NotebookFacts,
    hoisted_imports: set[str] | frozenset[str],
) -> bool:
    """Whether top-level statement ``stmt`` only changes a process-wide setting (see ``process_settings``)."""
    from nbharden.analyse import qualify

    if st.kind != "code" or st.binds or not set(st.uses) <= {*hoisted_imports, *BUILTINS}:
        return False
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1):
        return False
    small = stmt.body[0]
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        target = qualify(small.value.func, facts.qualified) or ""
        if not _SETTING_CALLS.match(target):
            return False
        if target == "pandas.set_option":
            first = small.value.args[0].value if small.value.args else None
            return isinstance(first, cst.SimpleString) and bool(
                _DISPLAY_OPTION.match(str(first.evaluated_value))
            )
        return True
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        bound: cst.BaseExpression = small.targets[0].target
        if isinstance(bound, cst.Subscript):
            bound = bound.value
        return bool(_SETTING_TARGETS.match(qualify(bound, facts.qualified) or ""))
    return False


#: What reads process-wide settings (their current values), qualified.
_SETTING_READS = re.compile(
    r"^(pandas\.(options|get_option|describe_option)|numpy\.get_printoptions|warnings\.filters|"
    r"matplotlib\.(pyplot\.)?(rcParams|rc_params)|seaborn\.(axes_style|plotting_context))(\.|$)"
)


def _reads_settings(stmt: cst.CSTNode, facts: NotebookFacts) -> bool:
    """Whether ``stmt`` reads a process-wide setting (``pd.options.display.max_rows``, ``pd.get_option(...)``)."""
    from nbharden.analyse import qualify

    found = False

    class _Reads(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            nonlocal found
            found = found or bool(_SETTING_READS.match(qualify(node, facts.qualified) or ""))
            return not found

        def visit_Name(self, node: cst.Name) -> None:
            nonlocal found
            found = found or bool(_SETTING_READS.match(qualify(node, facts.qualified) or ""))

    stmt.visit(_Reads())
    return found


def _defined_at(facts: NotebookFacts, name: str) -> tuple[int, int]:
    """(cell, line) of the def or class statement binding ``name``."""
    return next(
        (cf.index, st.line)
        for cf in facts.cells.values()
        for st in cf.statements
        if st.kind in {"def", "class"} and st.binds[0] == name
    )


def _def_findings(
    facts: NotebookFacts,
    hoisted_defs: set[str],
    pinned: frozenset[str],
    lifted: dict[str, tuple[str, ...]],
) -> list[Finding]:
    """NBH610 for a function that moves to module level with the notebook state it reads as parameters,
    NBH606 for one that stays inside its step."""
    out = []
    for cf in facts.cells.values():
        for st in cf.statements:
            name = st.binds[0] if st.kind in {"def", "class"} else ""
            if name in lifted:
                state = ", ".join(lifted[name])
                out.append(
                    Finding(
                        "NBH610",
                        f"'{name}' reads notebook state ({state}): it moves to module level and takes "
                        "it as keyword-only parameters, which every call passes",
                        Span(cf.index, st.line, 1),
                        Severity.INFO,
                        Fix.SAFE,
                        applied=True,
                    )
                )
            elif name and name not in hoisted_defs:
                why = "uses a secret from the Config" if name in pinned else "reads notebook state"
                out.append(
                    Finding(
                        "NBH606",
                        f"'{name}' {why}, so it stays inside its step and is passed on as a value",
                        Span(cf.index, st.line, 1),
                        Severity.INFO,
                    )
                )
    return out


def _with_state(st: TopStatement, lifted: dict[str, tuple[str, ...]]) -> TopStatement:
    """A statement calling lifted functions also reads the notebook state they take as parameters."""
    extra = [s for f, state in lifted.items() if f in st.uses for s in state if s not in st.reads]
    if not extra:
        return st
    return dataclasses.replace(st, reads=(*st.reads, *extra), uses=(*st.uses, *extra))


def _settings_findings(
    facts: NotebookFacts, moved: tuple[tuple[int, int], ...]
) -> list[Finding]:
    return [
        Finding(
            "NBH609",
            "process-wide setting moved to the pipeline's start (apply_settings), out of the step",
            Span(c, facts.cells[c].statements[i].line, 1),
            Severity.INFO,
            Fix.SAFE,
            applied=True,
        )
        for c, i in moved
    ]


def _kept_results(facts: NotebookFacts, steps: list[Step]) -> list[Finding]:
    """NBH607 for every shown value the pipeline keeps as a result."""
    out = []
    for step in steps:
        for shown in step.shown:
            line = facts.cells[shown.cell].statements[shown.statement].line
            what = "the shown value" if bound_to_name(shown) else "the shown name"
            what = what.replace("shown", "printed") if shown.how == "print" else what
            out.append(
                Finding(
                    "NBH607",
                    f"{what} is kept as the result '{shown.name}' of step {step.name}: logged, "
                    "returned by run() and written to metrics.json",
                    Span(shown.cell, line, 1),
                    Severity.INFO,
                    Fix.SAFE,
                    applied=True,
                )
            )
    return out


def _with_shown(
    st: TopStatement, cell: int, shown: dict[tuple[int, int], tuple[Shown, ...]]
) -> TopStatement:
    """The statement with the name its shown value is bound to (``accuracy = model.score(...)``)."""
    bound = [s.name for s in shown.get((cell, st.index), ()) if bound_to_name(s)]
    return dataclasses.replace(st, binds=(*st.binds, *bound)) if bound else st


def fitted_names(stmt: cst.BaseStatement) -> list[str]:
    """Names a top-level statement fits: ``model.fit(X, y)``, ``scaler.fit_transform(X)``, and the target of
    ``model = LinearRegression().fit(X, y)`` or ``results = sm.OLS(y, X).fit()``; and the target of
    ``best = grid.best_estimator_`` (the fitted estimator a search or an ensemble chose)."""
    found: list[str] = []
    if not isinstance(stmt, cst.SimpleStatementLine):
        return found
    for small in stmt.body:
        value = getattr(small, "value", None)
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
            and isinstance(value, cst.Attribute)
            and value.attr.value.endswith("estimator_")
        ):
            found.append(small.targets[0].target.value)
            continue
        if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)):
            continue
        method, receiver = value.func.attr.value, value.func.value
        if method not in {"fit", "fit_transform", "fit_predict", "fit_resample"}:
            continue
        if isinstance(receiver, cst.Name):
            found.append(receiver.value)
        if method == "fit" and isinstance(small, cst.Assign) and len(small.targets) == 1:
            target = small.targets[0].target
            if isinstance(target, cst.Name):
                found.append(target.value)
    return [n for n in dict.fromkeys(found) if not n.startswith("_")]


def learned_names(stmt: cst.BaseStatement) -> list[str]:
    """Names whose learned attributes a statement reads (``forest.feature_importances_``): fitted models."""
    found: list[str] = []
    for node in find_all(stmt, cst.Attribute):
        assert isinstance(node, cst.Attribute)
        attr = node.attr.value
        if attr.endswith("_") and not attr.startswith("_") and isinstance(node.value, cst.Name):
            found.append(node.value.value)
    return [n for n in dict.fromkeys(found) if not n.startswith("_")]


def _only_prints(stmt: cst.BaseStatement) -> bool:
    """``print(x)``, ``display(x)``, ``pprint(x)``: a statement that only shows values."""
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and isinstance(small.value.func, cst.Name)
        and small.value.func.value in {"print", "display", "pprint"}
        for small in stmt.body
    )


def _deleted_names(stmt: cst.BaseStatement) -> list[str]:
    """Names a top-level ``del`` statement unbinds (``del label``, ``del a, b``)."""
    names: list[str] = []
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, cst.Del):
                target = small.target
                parts = (
                    [e.value for e in target.elements]
                    if isinstance(target, cst.Tuple | cst.List)
                    else [target]
                )
                names += [p.value for p in parts if isinstance(p, cst.Name)]
    return names


def _result_names(stmt: cst.BaseStatement, qualified: dict[str, str]) -> list[str]:
    """Names bound by a plain top-level assignment (the values a notebook shows as its results).

    Figures and axes (``fig, ax = plt.subplots()``) are not results: the pipeline saves them as images.
    """
    from nbharden.analyse import qualify

    names: list[str] = []
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            value = getattr(small, "value", None)
            if (
                isinstance(value, cst.Call)
                and isinstance(small, cst.Assign)
                and len(small.targets) == 1
            ):
                target = qualify(value.func, qualified) or ""
                plotting = target.startswith(("matplotlib.", "seaborn.", "pylab.", "plotly."))
                if plotting or (
                    isinstance(value.func, cst.Attribute) and value.func.attr.value == "subplots"
                ):
                    continue  # fig = plt.figure(): kept as a statement, the figure is saved, not returned
            targets: list[cst.BaseExpression] = []
            if isinstance(small, cst.Assign):
                targets = [t.target for t in small.targets]
            elif isinstance(small, cst.AnnAssign | cst.AugAssign):
                targets = [small.target]
            for bound in targets:
                parts: list[cst.BaseExpression] = (
                    [e.value for e in bound.elements]
                    if isinstance(bound, cst.Tuple | cst.List)
                    else [bound]
                )
                for part in parts:
                    if isinstance(part, cst.Name) and not part.value.startswith("_"):
                        names.append(part.value)
    return names


def module_state(facts: NotebookFacts) -> frozenset[str]:
    """The names that must stay globals of the steps module, as they were globals of the notebook.

    A function that says ``global TOKENS`` rebinds the module's ``TOKENS``: every step that binds or
    reads ``TOKENS``, and every function that reads it, must see that one binding, not a value passed
    from step to step (a function defined in a step would keep the step's own).

    Likewise a name that code defined in one cell reads when it runs (a function, a lambda, a
    generator, a method) and that a later cell binds again: in the notebook that code sees the new
    binding; as a closure over its step's value it would keep the old one. (By cell, not by step: the
    steps are shaped later, from a data flow that depends on what this decides.)
    """
    state = {n for cf in facts.cells.values() for n in cf.global_decls}
    bound_at: dict[str, list[tuple[int, int]]] = {}  # name -> (cell, statement) binding it at the top
    for c, cf in facts.cells.items():
        for i, st in enumerate(cf.statements):
            for name in [*st.binds, *_deleted_names(cf.module.body[i]), *st.unbinds]:
                bound_at.setdefault(name, []).append((c, i))
    for c, cf in facts.cells.items():
        for i, st in enumerate(cf.statements):
            for name in st.lazy:
                where = bound_at.get(name, [])
                before = [p for p in where if p <= (c, i)]  # its own binding (a class naming itself) too
                after = [p for p in where if p > (c, i)]
                later_cells = {b for b, _ in after if b > c}
                # bound once, only after the definition: the definition moves there (relocations); bound
                # before and after it within its own cell: the step's closure sees both; bound by
                # this very statement and by an earlier cell (d = sum(x * sum(d) for x in xs)): the
                # code may run before the statement binds, and read the earlier cell's value, where
                # a closure over the step's own d would be unbound
                rebinds_here = (c, i) in where and any(b < c for b, _ in before)
                if (
                    len(later_cells) >= 2
                    or (before and after and any(b != c for b, _ in [*before, *after]))
                    or rebinds_here
                ):
                    state.add(name)
    return frozenset(state)


def _hoistable(
    facts: NotebookFacts,
    write_counts: dict[str, int],
    pinned: frozenset[str] = frozenset(),
    state: frozenset[str] = frozenset(),
) -> tuple[set[str], set[str], frozenset[tuple[int, int]]]:
    """(import names to hoist, def/class names to hoist, star imports kept in their step), a fixpoint over
    what definitions read.

    ``pinned`` definitions never hoist (they use a secret, which only a step's parameters provide).
    A definition that reads ``state`` stays in its step too: a default argument or a decorator reads
    it when the definition runs, which at module level would be at import, before any step bound it
    (found by the differential tester: ``def h(k=v)`` raised NameError at import).
    """
    imports, kept_stars = _hoistable_imports(facts, write_counts)
    imported = {
        bound
        for cf in facts.cells.values()
        for st in cf.statements
        if st.kind == "import"
        for bound, _ in st.import_names
    }
    defs: dict[str, tuple[str, ...]] = {}
    for cf in facts.cells.values():
        for name, reads in cf.def_reads.items():
            # a name bound by anything else (an import too: pytudes Probability's def Fraction after
            # `from fractions import Fraction`, hoisted, replaced the import for the cells before it), or
            # defined twice, or next to a `global` statement never hoists
            if (
                write_counts.get(name, 0) == 0
                and name not in imported
                and not cf.global_decls
                and _def_count(facts, name) == 1
                and name not in pinned
            ):
                defs[name] = reads
    hoisted = set(defs)
    # A builtin the notebook redefines (lispy's own ``eval``) is notebook state, not the builtin.
    notebook_bound = {b for cf in facts.cells.values() for st in cf.statements for b in st.binds}
    changed = True
    while changed:
        changed = False
        for name in sorted(hoisted):
            allowed = imports | hoisted | (BUILTINS - (notebook_bound - hoisted - imports))
            if any(r not in allowed for r in defs[name]):
                hoisted.discard(name)
                changed = True
    return imports, hoisted, kept_stars


def _hoistable_imports(
    facts: NotebookFacts, write_counts: dict[str, int]
) -> tuple[set[str], frozenset[tuple[int, int]]]:
    """The names whose imports move to module level, and the star imports that stay in their step.

    A statement moves up whole: when a cell rebinds one of its names, all of them stay in the step. And a
    name an import kept in a step binds is hoisted nowhere: inside the step function it is a local, so a
    read of the module-level import before it in that step would raise UnboundLocalError (found by the
    differential tester: ``from helpers import register``, then ``ys = register(1)`` followed by
    ``from helpers import *`` in a cell that also rebinds ``scaled``).

    A name some function rebinds with ``global`` counts as rebound too, for star imports of a local module
    as well: an import run again after ``bump()`` changed ``SCALE`` sets it back, and a hoisted import runs
    once (found by the differential tester's long run: ``from helpers import *`` in two cells, a
    ``global SCALE`` function called between them)."""
    rebound = {n for cf in facts.cells.values() for n in cf.global_decls}
    located = [  # ((cell, statement), the names it binds, whether it is a star import)
        (
            (c, i),
            [b for b, _ in st.import_names] if st.star_import is None else list(st.binds),
            st.star_import is not None,
        )
        for c, cf in facts.cells.items()
        for i, st in enumerate(cf.statements)
        if st.kind == "import" and (st.star_import is None or st.binds)
    ]
    if not any(is_star and rebound.intersection(names) for _, names, is_star in located):
        located = [entry for entry in located if not entry[2]]  # as before: star imports move up
    local = {
        bound
        for _, names, is_star in located
        if rebound.intersection(names)
        or (
            not is_star
            and any(b in facts.conflicting_imports or write_counts.get(b, 0) for b in names)
        )
        for bound in names
    }
    changed = True
    while changed:  # a statement that binds a name kept local stays in its step too, with all its names
        changed = False
        for _, names, _ in located:
            if not set(names) <= local and any(b in local for b in names):
                local |= set(names)
                changed = True
    explicit = [names for _, names, is_star in located if not is_star]
    kept_stars = frozenset(ci for ci, names, is_star in located if is_star and local.intersection(names))
    return {bound for names in explicit for bound in names if bound not in local}, kept_stars


def _def_count(facts: NotebookFacts, name: str) -> int:
    return sum(
        1
        for cf in facts.cells.values()
        for st in cf.statements
        if st.kind in {"def", "class", "alias"} and name in st.binds
    )


def relocations(
    facts: NotebookFacts,
    hoisted_imports: set[str] | frozenset[str],
    hoisted_defs: set[str] | frozenset[str],
) -> tuple[tuple[int, int, int, int], ...]:
    """Functions defined before the globals they read: where each must move to run in a step.

    In a notebook a function looks its globals up when it is called, so ``def f(): return g()`` may come before
    ``g`` exists. A function that stays inside a step closes over the step's values instead, so it moves to just
    after the statement that binds the last name it needs - unless something uses it before that point, in which
    case it stays (and the step reports the missing name). Returns (cell, statement, to cell, after statement).
    """
    seq = [(c, i) for c in sorted(facts.cells) for i in range(len(facts.cells[c].statements))]
    binds_at: dict[str, list[int]] = {}
    for n, (c, i) in enumerate(seq):
        for b in facts.cells[c].statements[i].binds:
            binds_at.setdefault(b, []).append(n)
    effective: dict[int, float] = {n: float(n) for n in range(len(seq))}
    moved: dict[int, int] = {}
    for _ in range(4):  # a moved function can make another one late; a few rounds settle it
        changed = False
        for n, (c, i) in enumerate(seq):
            st = facts.cells[c].statements[i]
            if st.kind not in {"def", "class"} or st.binds[0] in hoisted_defs:
                continue
            here = effective[n]
            free = [
                r
                for r in facts.cells[c].def_reads.get(st.binds[0], ())
                if r not in hoisted_imports and r not in hoisted_defs and r in binds_at
            ]
            missing = [
                r for r in free if not any(effective[p] < here for p in binds_at[r] if p != n)
            ]
            later = [
                min((effective[p] for p in binds_at[r] if effective[p] > here), default=None)
                for r in missing
            ]
            if not missing or any(x is None for x in later):
                continue
            target = max(x for x in later if x is not None)
            name = st.binds[0]
            used_before = any(
                name in facts.cells[c2].statements[i2].uses
                for m, (c2, i2) in enumerate(seq)
                if m != n and here < effective[m] <= target
            )
            if used_before:
                continue
            anchor = int(target)
            effective[n] = anchor + 0.5 + n * 1e-6
            moved[n] = anchor
            changed = True
        if not changed:
            break
    out = []
    for n, anchor in sorted(moved.items()):
        c, i = seq[n]
        ac, ai = seq[anchor]
        out.append((c, i, ac, ai))
    return tuple(out)


def statement_order(
    facts: NotebookFacts, moved: tuple[tuple[int, int, int, int], ...]
) -> dict[int, list[tuple[int, int]]]:
    """For each cell, the (cell, statement) pairs that run in it, in order, after relocations."""
    away = {(c, i) for c, i, _, _ in moved}
    after: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for c, i, ac, ai in moved:
        after.setdefault((ac, ai), []).append((c, i))
    order: dict[int, list[tuple[int, int]]] = {}
    for c in sorted(facts.cells):
        items: list[tuple[int, int]] = []
        for i in range(len(facts.cells[c].statements)):
            if (c, i) not in away:
                items.append((c, i))
            items.extend(after.get((c, i), []))
        order[c] = items
    return order


def make_plan(analysis: FullAnalysis, *, settings: Settings) -> Plan:
    """Decide steps, data flow and configuration. Pure: the same analysis always gives the same plan."""
    facts = analysis.facts
    assert facts is not None, "make_plan needs the analysis from nbharden.analyse.analyse"
    nb = analysis.notebook
    refuse_top_level_await(nb)  # a step is a plain function: await there would not compile
    rules = gate(nb, settings.rules)  # a rule that is off (--ignore, noqa) leaves the code as it was
    place = _placement(facts, rules)
    findings: list[Finding] = list(
        _def_findings(facts, place.hoisted_defs, place.pinned, place.lifted)
    )
    package = _package(analysis, settings)
    config = _configuration(
        facts, nb, place.write_counts, place.secrets_found, package.upper() + "_"
    )
    findings += config.findings
    inputs, flow, found = _step_inputs(analysis, place, config, rules)
    findings += found
    steps_raw, found = _raw_steps(inputs, sections(analysis, flow))
    findings += found
    _add_rebound_results(steps_raw, facts)
    _pass_through(steps_raw)
    steps = _steps(steps_raw, facts, inputs.state, {f.name for f in config.fields})
    findings += _kept_results(facts, steps)
    deps = _dependencies(facts, package, {m.name for m in nb.local_modules})
    uses_plots = any(
        q.split(".")[0] in {"matplotlib", "seaborn", "pylab"} for q in facts.qualified.values()
    ) or any(e.value == "plot" for c in analysis.cells for e in c.effects)
    fields, found = _with_scaffold_fields(analysis, settings, config.fields, config.taken)
    findings += found
    if facts.network.found:  # NBH301/NBH302: timeout and retries of network calls
        fields.extend(network.network_fields({*config.taken, *(f.name for f in fields)}))
        deps = tuple(sorted({*deps, network.DEPENDENCY}, key=str.lower))
    if uses_plots or any(step.shown for step in steps) or any(f.output_file for f in fields):
        fields.append(_OUTPUT_DIR)
    plan = Plan(
        package,
        tuple(steps),
        tuple(fields),
        tuple(sorted(place.hoisted_defs)),
        tuple(sorted(place.hoisted_imports)),
        deps,
        uses_plots,
        tuple(
            dataclasses.replace(f, message=redact(f.message, place.secrets_found))
            for f in findings
        ),
        inputs.moved,
        tuple(sorted(inputs.state)),
        inputs.settings_moved,
        tuple(place.lifted.items()),
    )
    return dataclasses.replace(
        plan,
        statements=_statements(facts, inputs),
        secrets=secret_uses(facts, plan.config_fields),
        lifted_types=lifted_types(facts, plan.lifted),
    )


@dataclass(frozen=True)
class _Placement:
    """Where the notebook's names live in the package: moved to module level, module state, or data."""

    write_counts: dict[str, int]  # how often each name is bound by data writes
    secrets_found: list[str]  # the hard-coded secret values
    pinned: frozenset[str]  # functions and classes that hold a secret: they stay in their step
    state: frozenset[str]  # module state (globals of the steps module)
    hoisted_imports: set[str]
    hoisted_defs: set[str]  # moved to module level, closures lifted with their parameters included
    lifted: dict[str, tuple[str, ...]]  # closure -> the parameters it takes once lifted (NBH610)
    kept_stars: frozenset[tuple[int, int]]  # (cell, statement) of star imports run in their step


def _placement(facts: NotebookFacts, rules: RuleGate) -> _Placement:
    """Which imports and definitions move to module level, which names are module state, which closures are
    lifted (unless NBH610 is off where they are defined)."""
    write_counts = _write_counts(facts)
    # A function or class that uses a hard-coded secret reads it from its step's parameters: it stays there.
    secrets_found = secret_values(s for cf in facts.cells.values() for s in cf.secrets)
    pinned = _pinned_defs(facts, secrets_found) | pinned_by_env(facts)
    state = module_state(facts)
    hoisted_imports, hoisted_defs, kept_stars = _hoistable(facts, dict(write_counts), pinned, state)
    lifted = {
        name: params
        for name, params in liftable(
            facts, hoisted_imports | hoisted_defs | state, write_counts, pinned, state
        ).items()
        if rules.allows("NBH610", *_defined_at(facts, name))
    }
    return _Placement(
        write_counts,
        secrets_found,
        pinned,
        state,
        hoisted_imports,
        hoisted_defs | set(lifted),
        lifted,
        kept_stars,
    )


def _step_inputs(
    analysis: FullAnalysis, place: _Placement, config: _Configuration, rules: RuleGate
) -> tuple[_StepInputs, dict[int, Flow], list[Finding]]:
    """The order and role of every statement, and the data flow of each cell's kept code; the findings of the
    definitions moved after later cells (NBH105) and the process settings moved to the start (NBH609)."""
    facts = analysis.facts
    assert facts is not None
    config_names = {f.name for f in config.fields}
    # a function reads module state when it runs, wherever it is defined: no need to move it for that
    moved = relocations(facts, place.hoisted_imports, place.hoisted_defs | place.state)
    order = statement_order(facts, moved)
    shown_map: dict[tuple[int, int], tuple[Shown, ...]] = {}
    for s in find_shown(analysis, config.taken | {"log_result", "Results", "steps", "results"}):
        if rules.allows("NBH607", s.cell, facts.cells[s.cell].statements[s.statement].line):
            shown_map[(s.cell, s.statement)] = (*shown_map.get((s.cell, s.statement), ()), s)
    settings_moved = tuple(
        (c, i)
        for c, i in process_settings(facts, place.hoisted_imports)
        if rules.allows("NBH609", c, facts.cells[c].statements[i].line)
    )
    findings = [*_late_reader_findings(facts, moved), *_settings_findings(facts, settings_moved)]
    # the role of every statement, decided once: the data flow, the steps and Plan.statements follow it
    roles = {
        (c, i): statement_role(
            facts.cells[c],
            i,
            config.consumed,
            place.hoisted_imports,
            place.hoisted_defs,
            shown_map,
            settings_moved,
            place.kept_stars,
        )
        for pairs in order.values()
        for c, i in pairs
    }
    flow = _cell_flows(analysis, order, roles, config_names, shown_map, place.lifted)
    inputs = _StepInputs(
        analysis=analysis,
        facts=facts,
        order=order,
        roles=roles,
        consumed=config.consumed,
        consumed_names={
            (c, name) for c, i in config.consumed for name in facts.cells[c].statements[i].binds
        },
        hoisted_imports=place.hoisted_imports,
        hoisted_defs=place.hoisted_defs,
        shown_map=shown_map,
        settings_moved=settings_moved,
        lifted=place.lifted,
        moved=moved,
        moved_keys=frozenset((c, i) for c, i, _, _ in moved),
        module_alias={
            facts.qualified[a]: a for a in sorted(place.hoisted_imports) if a in facts.qualified
        },
        fields=tuple(config.fields),
        secret_map=config.secret_map,
        state=place.state - config_names,  # a Config field is passed to the steps that read it
        reserved=_reserved_names(place.hoisted_imports, place.hoisted_defs, place.state),
    )
    return inputs, flow, findings


#: Where the data of a run is read, and a run's working folder (always a Config field).
_DATA_DIR = ConfigField(
    "data_dir",
    "Path",
    "default_data_dir()",
    "folder of the notebook's data and working folder of a run: relative paths resolve "
    "from here as they did in Jupyter",
    0,
    0,
    kind="output",
)
#: Where figures, shown results and the files the notebook writes are saved (a Config field when there are any).
_OUTPUT_DIR = ConfigField(
    "output_dir",
    "Path",
    "default_output_dir()",
    "folder where figures, metrics.json and the files the notebook writes are saved",
    0,
    0,
    kind="output",
)


def _reserved_names(
    hoisted_imports: set[str], hoisted_defs: set[str], state: frozenset[str]
) -> frozenset[str]:
    """Names a step function cannot take. Step functions live in steps.py beside the moved imports and
    definitions: only those can collide."""
    return frozenset(
        set(RESERVED_MODULES)
        | hoisted_imports
        | hoisted_defs
        | BUILTINS
        | {"run", "main", "logger", "show_figures", "logging", "subprocess", "os", "Path"}
        | state  # globals of the steps module, like the step functions
    )


def _write_counts(facts: NotebookFacts) -> dict[str, int]:
    """How often each name is bound by something other than an import or a def (data writes)."""
    write_counts: dict[str, int] = {}
    for cf in facts.cells.values():
        for i, st in enumerate(cf.statements):
            if st.kind == "code":
                # ``del os`` unbinds an import as surely as ``os = ...`` rebinds it; ``except E as os``
                # makes it a local of the step (and may delete it)
                for name in [*st.binds, *_deleted_names(cf.module.body[i]), *st.unbinds]:
                    write_counts[name] = write_counts.get(name, 0) + 1
            if st.conditional_import:
                for bound, _ in st.import_names:
                    write_counts[bound] = write_counts.get(bound, 0) + 1
    return write_counts


def _pinned_defs(facts: NotebookFacts, secrets_found: list[str]) -> frozenset[str]:
    """The functions and classes whose code holds one of the hard-coded secrets: they stay in their step."""
    return frozenset(
        st.binds[0]
        for cf in facts.cells.values()
        for i, st in enumerate(cf.statements)
        if st.kind in {"def", "class"} and uses_secret(cf.module.body[i], secrets_found)
    )


def _package(analysis: FullAnalysis, settings: Settings) -> str:
    """The generated package's name: ``settings.name``, else one made from the notebook's name."""
    facts = analysis.facts
    assert facts is not None
    nb = analysis.notebook
    if settings.name:
        return snake(settings.name, "nb")
    imported_top = {q.split(".")[0] for q in facts.qualified.values() if not q.startswith(".")}
    return package_name(nb.stem, imported_top, nb.path.resolve().parent.name)


def _late_reader_findings(
    facts: NotebookFacts, moved: tuple[tuple[int, int, int, int], ...]
) -> list[Finding]:
    """NBH105 for each definition that reads names of later cells (``relocations`` moved it after them)."""
    findings: list[Finding] = []
    for c, i, ac, _after in moved:
        st = facts.cells[c].statements[i]
        findings.append(
            Finding(
                "NBH105",
                f"'{st.binds[0]}' reads names defined in later cells; it is defined in "
                f"the step of cell {ac}, once they exist",
                Span(c, st.line, 1),
                Severity.WARNING,
            )
        )
    return findings


def _with_scaffold_fields(
    analysis: FullAnalysis, settings: Settings, fields: list[ConfigField], taken: set[str]
) -> tuple[list[ConfigField], list[Finding]]:
    """``fields`` with ``data_dir``, the constraints inferred for them, and the seed of ``--unsafe-fixes``."""
    facts = analysis.facts
    assert facts is not None
    constrained, findings = infer_constraints(
        [*fields, _DATA_DIR], facts, analysis.notebook.path.resolve().parent
    )
    out = list(constrained)
    if settings.unsafe_fixes and any(f.code == "NBH401" for f in analysis.findings):
        seed_name = "seed"
        while seed_name in taken or seed_name in {f.name for f in out}:
            seed_name += "_"
        out.append(
            ConfigField(
                seed_name,
                "int",
                "0",
                "seed of random and numpy's global generator, applied at pipeline start "
                "(NBH401, added with --unsafe-fixes)",
                0,
                0,
                kind="seed",
                constraints="ge=0",
            )
        )
    return out, list(findings)


# --- configuration -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Configuration:
    """The Config fields found in the code, before the steps are planned."""

    fields: list[ConfigField]
    consumed: set[tuple[int, int]]  # (cell, statement index) turned into config
    findings: list[Finding]
    taken: set[str]  # every name of the notebook and the Config, and the generated code's own
    secret_map: dict[str, str]  # secret value -> the Config field holding it


def _configuration(
    facts: NotebookFacts,
    nb: Notebook,
    write_counts: dict[str, int],
    secrets_found: list[str],
    env_prefix: str,
) -> _Configuration:
    """The fields of the parameters cell, of paths, URLs and secrets bound once, of every other hard-coded
    secret, and of the paths and URLs passed straight to I/O calls, in that order."""
    fields, consumed, findings = _assigned_fields(facts, nb, write_counts, env_prefix)
    # Every other hard-coded secret: a SecretStr field; the code reads it from the step's parameter.
    known = _consumed_secrets(facts, consumed, {f.name for f in fields if f.secret})
    read_defaults = {r.default_secret for r in env_reads(facts)}  # they go with their env field
    fields += [
        _secret_field(
            name, f"{site.description} from cell {site.cell}, line {site.line}", site.cell, site.line, env_prefix
        )
        for value, name, site in assign_fields(facts.cells, consumed, known)
        if value not in read_defaults
    ]
    # Every secret read from the environment by its name: a SecretStr field the variable still sets.
    fields += env_secret_fields(facts, {f.name for f in fields}, env_prefix)
    secret_map = secret_fields(facts, fields, consumed)
    all_names = {n for cf in facts.cells.values() for st in cf.statements for n in (*st.binds, *st.reads)}
    taken = (
        all_names
        | {f.name for f in fields}
        | BUILTINS
        | {"config", "logger", "output_dir", "data_dir", "workdir"}
    )
    fields, lifted_findings = _io_literal_fields(facts, fields, taken, secrets_found)
    return _Configuration(fields, consumed, [*findings, *lifted_findings], taken, secret_map)


def _secret_field(name: str, origin: str, cell: int, line: int, env_prefix: str) -> ConfigField:
    """A ``SecretStr`` field set in the environment; ``origin`` says where the notebook wrote the secret."""
    return ConfigField(
        name,
        "SecretStr",
        '""',
        f"{origin}; set {env_prefix}{name.upper()} in the environment",
        cell,
        line,
        secret=True,
        kind="secret",
    )


def _parameter_field(
    name: str, value_src: str, value: object, cell: int, line: int, env_prefix: str
) -> ConfigField:
    """The field of ``name = value`` in the notebook's parameters cell."""
    annotation = literal_annotation(ast.parse(value_src, mode="eval").body) or "object"
    where = f"parameters cell (cell {cell}, line {line})"
    if isinstance(value, str) and is_secret_literal(name, value):
        return _secret_field(name, f"secret from the {where}", cell, line, env_prefix)
    if isinstance(value, str) and looks_like_path(value) and not value.startswith(("/", "~")):
        return ConfigField(
            name, "str", repr(value), f"{where}; relative to data_dir", cell, line, literal=value, kind="parameter"
        )
    return ConfigField(
        name,
        annotation if annotation != "None" else "object | None",
        value_src,
        where,
        cell,
        line,
        kind="parameter",
    )


def _assigned_fields(
    facts: NotebookFacts, nb: Notebook, write_counts: dict[str, int], env_prefix: str
) -> tuple[list[ConfigField], set[tuple[int, int]], list[Finding]]:
    """Fields from literal assignments: each of the parameters cell's, and a path, URL or secret bound once.

    Returns the fields, the (cell, statement index) of the assignments they replace, and the findings."""
    fields: list[ConfigField] = []
    consumed: set[tuple[int, int]] = set()
    findings: list[Finding] = []
    params_cell = next(
        (c.index for c in nb.code_cells if "parameters" in c.tags and c.index in facts.cells), None
    )
    for cf in sorted(facts.cells.values(), key=lambda c: c.index):
        for i, stmt in enumerate(cf.module.body):
            assignment = _literal_assignment(stmt)
            if assignment is None:
                continue
            name, value_src, value = assignment
            line = cf.statements[i].line
            # a list or dict holding a secret stays code: the secret alone moves to the Config (below)
            holds_secret = not isinstance(value, str) and any(
                site.stmt == i and not site.in_comment for site in cf.secrets
            )
            if cf.index == params_cell and write_counts.get(name, 0) >= 1 and not holds_secret:
                fields.append(_parameter_field(name, value_src, value, cf.index, line, env_prefix))
            elif (
                isinstance(value, str)
                and write_counts.get(name, 0) == 1
                and all(f.name != name for f in fields)
                and (looks_like_path(value) or looks_like_url(value) or is_secret_literal(name, value))
            ):
                if is_secret_literal(name, value):
                    origin = f"secret from cell {cf.index}, line {line}"
                    fields.append(_secret_field(name, origin, cf.index, line, env_prefix))
                else:
                    constant, finding = _lift(name, value, cf.index, line, 1, kind="constant")
                    fields.append(constant)
                    findings.append(finding)
            else:
                continue
            consumed.add((cf.index, i))
    return fields, consumed, findings


def _io_literal_fields(
    facts: NotebookFacts, fields: list[ConfigField], taken: set[str], secrets_found: list[str]
) -> tuple[list[ConfigField], list[Finding]]:
    """``fields`` and a field for each literal path or URL passed straight to an I/O call, named after the file.

    The new fields' names are added to ``taken``."""
    out = list(fields)
    findings: list[Finding] = []
    for cf in sorted(facts.cells.values(), key=lambda c: c.index):
        for value, line, col, context in cf.literals:
            if context is not None and any(f.name == context for f in out):
                continue
            if any(f.literal == value for f in out):
                continue
            if uses_secret(cst.SimpleString(repr(value)), secrets_found):
                continue  # a URL with a password: the password is a secret field, the URL stays
            if not (looks_like_path(value) or looks_like_url(value)) or not _in_io_call(cf, value):
                continue
            base = snake(
                re.sub(r"\.[A-Za-z0-9]+$", "", value.rstrip("/").rsplit("/", 1)[-1]), "file"
            )
            suffix = "_url" if looks_like_url(value) else "_path"
            name = base if base.endswith(suffix) else base + suffix
            n = 2
            while name in taken:
                name, n = f"{base}{suffix}_{n}", n + 1
            taken.add(name)
            lifted_field, finding = _lift(name, value, cf.index, line, col, kind="lifted")
            out.append(lifted_field)
            findings.append(finding)
    return out, findings


# --- steps -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StepInputs:
    """What every step is planned from: the statements' order and roles, the Config, the module's names."""

    analysis: FullAnalysis
    facts: NotebookFacts
    order: dict[int, list[tuple[int, int]]]  # cell -> the (cell, statement) its step function runs
    roles: dict[tuple[int, int], str]  # (cell, statement) -> its role (``statement_role``)
    consumed: set[tuple[int, int]]  # statements that became Config fields
    consumed_names: set[tuple[int, str]]  # (cell, name) of those
    hoisted_imports: set[str]
    hoisted_defs: set[str]
    shown_map: dict[tuple[int, int], tuple[Shown, ...]]
    settings_moved: tuple[tuple[int, int], ...]
    lifted: dict[str, tuple[str, ...]]
    moved: tuple[tuple[int, int, int, int], ...]  # definitions evaluated away from their cell (relocations)
    moved_keys: frozenset[tuple[int, int]]  # (cell, statement) of those
    module_alias: dict[str, str]  # qualified module name -> the name the steps module imports it as
    fields: tuple[ConfigField, ...]
    secret_map: dict[str, str]
    state: frozenset[str]  # module state, Config fields excepted
    reserved: frozenset[str]  # names a step function cannot take


@dataclass
class _StepScan:
    """What one step reads, binds and keeps, gathered statement by statement."""

    reads: list[str]
    in_types: dict[str, str | None]
    writes: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    mutated: list[str] = field(default_factory=list)
    cells_used: list[int] = field(default_factory=list)
    local: set[str] = field(default_factory=set)
    unconsumed: set[str] = field(default_factory=set)  # bound in the step and not read after: its final values
    unbound: set[str] = field(default_factory=set)  # maybe deleted (except E as x), not bound since
    # bound on every path by a statement above (``if c: x = 1`` binds x in ``local`` only): a later read of
    # a name in ``local`` but not here takes the earlier step's value, which the branch may not replace
    sure: set[str] = field(default_factory=set)
    shown: list[Shown] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    def add_read(self, name: str, annotation: str | None) -> None:
        self.reads.append(name)
        self.in_types[name] = annotation


def _raw_steps(inputs: _StepInputs, parts: list[Section]) -> tuple[list[_RawStep], list[Finding]]:
    """One step per section that keeps code, named uniquely, with what it reads and binds; and NBH608 for each
    step that only its cell's number names."""
    used_names = set(inputs.reserved)
    definer: dict[str, str] = {f.name: "config" for f in inputs.fields}
    types: dict[str, str | None] = {f.name: ("str" if f.secret else f.annotation) for f in inputs.fields}
    steps_raw: list[_RawStep] = []
    findings: list[Finding] = []
    for section in parts:
        # the module state that exists when the step starts: a test sets it before calling the step
        reads = [n for n in sorted(inputs.state) if n in definer]
        scan = _StepScan(reads, {n: types.get(n) for n in reads})
        for index in section.cells:
            if _scan_cell(inputs, scan, index, definer, types):
                scan.cells_used.append(index)
        if not scan.cells_used:
            continue
        base = section.name
        if section.named_by == "cell":
            findings.append(
                Finding(
                    "NBH608",
                    f"no heading, comment or recognisable action names the step of cell "
                    f"{scan.cells_used[0]}: it is called {base}",
                    Span(scan.cells_used[0], 1, 1),
                    Severity.INFO,
                )
            )
        name = base
        n = 2
        while name in used_names:
            name, n = f"{base}_{n}", n + 1
        used_names.add(name)
        steps_raw.append(_raw_step(name, section, scan, definer, types))
        for w in scan.writes:
            definer[w] = name
        for mname in scan.mutated:
            if mname in definer and mname not in scan.writes:
                definer[mname] = name
    return steps_raw, findings


def _raw_step(
    name: str, section: Section, scan: _StepScan, definer: dict[str, str], types: dict[str, str | None]
) -> _RawStep:
    return _RawStep(
        name=name,
        title=section.title,
        doc=section.doc,
        cells=tuple(scan.cells_used),
        reads=scan.reads,
        writes=scan.writes,
        results=[r for r in scan.results if r in scan.unconsumed],
        mutated=scan.mutated,
        sources={r: definer[r] for r in scan.reads},
        in_types=scan.in_types,
        out_types={w: types.get(w) for w in [*scan.writes, *scan.mutated]},
        unconsumed=frozenset(scan.unconsumed),
        unbound=frozenset(scan.unbound),
        unsure={
            w: definer[w]
            for w in scan.writes
            if w not in scan.sure and w in definer and w not in scan.reads and w not in scan.unbound
        },
        shown=scan.shown,
        models=[
            m for m in scan.models if (m in scan.local or m in scan.reads) and m not in scan.unbound
        ],
    )


def _scan_cell(
    inputs: _StepInputs, scan: _StepScan, index: int, definer: dict[str, str], types: dict[str, str | None]
) -> bool:
    """Add the code cell ``index`` keeps in its step to ``scan``; whether it keeps any."""
    facts = inputs.facts
    summary = next(c for c in inputs.analysis.cells if c.index == index)
    cell_has_code = False
    for src_cell, i in inputs.order[index]:
        if inputs.roles[(src_cell, i)] != "code":
            continue
        cell_has_code = True
        _scan_statement(inputs, scan, src_cell, i, definer, types)
    # a lifted literal used in this cell is read from the config
    for value, _line, _col, _ctx in facts.cells[index].literals:
        for f in inputs.fields:
            if f.kind == "lifted" and f.literal == value and f.name not in scan.reads and cell_has_code:
                scan.add_read(f.name, f.annotation)
    for name in summary.mutates:
        if name not in scan.mutated and name in scan.reads:
            scan.mutated.append(name)
    return cell_has_code


def _scan_statement(
    inputs: _StepInputs,
    scan: _StepScan,
    src_cell: int,
    i: int,
    definer: dict[str, str],
    types: dict[str, str | None],
) -> None:
    """Add statement ``i`` of cell ``src_cell`` to ``scan``: the types of what it binds go into ``types``."""
    cf = inputs.facts.cells[src_cell]
    stmt = cf.module.body[i]
    st = _with_state(_with_shown(cf.statements[i], src_cell, inputs.shown_map), inputs.lifted)
    scan.shown += inputs.shown_map.get((src_cell, i), ())
    scan.models += [m for m in fitted_names(stmt) if m not in scan.models]
    # a model the step got from elsewhere (forest = models["rf"]) and reads what it learned
    scan.models += [m for m in learned_names(stmt) if m in scan.local and m not in scan.models]
    if (src_cell, i) in inputs.moved_keys:  # evaluated away from its cell: every free name is a read
        st = dataclasses.replace(st, reads=tuple(cf.def_reads.get(st.binds[0], ())))
    inferred = _infer_assignment(stmt, inputs.facts.qualified, inputs.module_alias, inputs.hoisted_imports)
    for name in st.binds:
        types[name] = inferred.get(name)
    _scan_reads(inputs, scan, src_cell, st, stmt, definer, types)
    _scan_binds(scan, st, stmt, inputs.facts.qualified)


def _scan_reads(
    inputs: _StepInputs,
    scan: _StepScan,
    src_cell: int,
    st: TopStatement,
    stmt: cst.BaseStatement,
    definer: dict[str, str],
    types: dict[str, str | None],
) -> None:
    """The names the statement reads from an earlier step or the Config become the step's parameters."""
    for name in st.reads:
        if name in scan.sure or name in inputs.hoisted_imports or name in inputs.hoisted_defs:
            continue
        if name in BUILTINS and name not in definer:
            continue
        if name in definer and name not in scan.reads:
            scan.add_read(name, types.get(name))
    for name in st.uses:
        # a name whose assignment earlier in this cell became a Config field
        if (src_cell, name) in inputs.consumed_names and name not in scan.local and name not in scan.reads:
            scan.add_read(name, types.get(name))
    for name in used_fields(stmt, inputs.secret_map):
        if name not in scan.reads:  # a secret written in the statement: from the Config
            scan.add_read(name, "str")
    touched = (*st.reads, *st.uses, *st.lazy)
    for name in used_env_fields(stmt, touched, inputs.fields, inputs.facts.qualified):
        if name not in scan.reads:  # a secret read from the environment: from the Config
            scan.add_read(name, "str")


def _scan_binds(
    scan: _StepScan, st: TopStatement, stmt: cst.BaseStatement, qualified: dict[str, str]
) -> None:
    """What the statement binds, uses up, keeps as a result or deletes."""
    if not _only_prints(stmt):  # printing a value does not use it up
        # nor does changing it in place: items.append(3), df["c"] = 1
        scan.unconsumed.difference_update(set(st.uses) - changed_by(stmt))
    scan.unconsumed.update(st.binds)
    scan.unbound.difference_update(st.binds)
    certain = set(st.binds)
    if not isinstance(stmt, cst.SimpleStatementLine):
        found = certainly_bound([stmt], frozenset())
        certain = certain if found is None else certain & found  # None: it always raises
    for name in st.binds:
        scan.local.add(name)
        if name in certain:
            scan.sure.add(name)
        if name not in scan.writes:
            scan.writes.append(name)
    for name in _result_names(stmt, qualified):
        if name not in scan.results:
            scan.results.append(name)
    # ``del x``: x no longer exists after this, so the step cannot return it
    for name in _deleted_names(stmt):
        scan.local.discard(name)
        scan.sure.discard(name)
        if name in scan.writes:
            scan.writes.remove(name)
        if name in scan.results:
            scan.results.remove(name)
    # ``except E as x`` deletes x if its handler ran: the step cannot return x as a result (a later step
    # that reads x needs the value the handler did not delete, so x flows on as it was)
    for name in st.unbinds:
        scan.unbound.add(name)
        scan.sure.discard(name)
        if name in scan.results:
            scan.results.remove(name)


def _pass_through(steps_raw: list[_RawStep]) -> None:
    """A step that binds a name on some paths only (``for i in range(n): m = i``) and hands it on (a later
    step reads it from this one, or it is a final value) takes the earlier value as a parameter: where the
    path did not run, what it hands on is that value. Last step first, so that a parameter added here is
    handed on by the step it comes from, if that step binds it on some paths only too."""
    for pos in reversed(range(len(steps_raw))):
        raw = steps_raw[pos]
        later = steps_raw[pos + 1 :]
        for name, earlier in raw.unsure.items():
            handed_on = name in raw.results or any(t.sources.get(name) == raw.name for t in later)
            if handed_on and name not in raw.sources:
                raw.reads.append(name)
                raw.sources[name] = earlier
                raw.in_types[name] = raw.out_types.get(name)


def _add_rebound_results(steps_raw: list[_RawStep], facts: NotebookFacts) -> None:
    """A result a later step binds again (in a loop, a branch, with +=) is that step's result: the final
    value is the last one; one a later step deletes has none."""
    seen_results: set[str] = set()
    for raw in steps_raw:
        raw.results += [
            w
            for w in raw.writes
            if w in seen_results
            and w not in raw.results
            and w in raw.unconsumed
            and w not in raw.unbound
        ]
        seen_results |= set(raw.results)
        seen_results -= {
            n for c in raw.cells for stmt in facts.cells[c].module.body for n in _deleted_names(stmt)
        }


def _steps(
    steps_raw: list[_RawStep], facts: NotebookFacts, state: frozenset[str], config_names: set[str]
) -> list[Step]:
    """The steps with their outputs: what later steps read from each (by the definer recorded for each read),
    and its final results."""
    wanted: dict[str, list[str]] = {raw.name: [] for raw in steps_raw}
    for raw in steps_raw:
        for read, source in raw.sources.items():
            # module state is not handed from step to step: every step sees the module's binding
            if source != "config" and read not in wanted[source] and read not in state:
                wanted[source].append(read)
    # what the steps after each one read, and bind again: a name a later step binds again has its final value
    # there, not here (or none: del, or maybe none: except E as name). Gathered from the last step back, once
    # (issue 17: per step over every later step was quadratic in the steps)
    after_reads: list[set[str]] = [set()]
    after_writes: list[set[str]] = [set()]
    for raw in reversed(steps_raw[1:]):
        unbound = {
            name
            for c in raw.cells
            for i, stmt in enumerate(facts.cells[c].module.body)
            for name in [*_deleted_names(stmt), *facts.cells[c].statements[i].unbinds]
        }
        after_reads.append(after_reads[-1] | set(raw.reads))
        after_writes.append(after_writes[-1] | set(raw.writes) | unbound)
    after_reads.reverse()
    after_writes.reverse()
    steps: list[Step] = []
    for pos, raw in enumerate(steps_raw):
        outputs = list(wanted[raw.name])
        later_reads, later_writes = after_reads[pos], after_writes[pos]
        finals = [
            r
            for r in raw.results
            if r not in outputs
            and r not in later_reads
            and r not in later_writes
            and r not in config_names
        ]
        # fitted models and shown values are results even when a later step reads them
        # (not a model a later step binds again: the name's final value is that step's, as in the notebook)
        models = [m for m in raw.models if m not in later_writes]
        finals = list(dict.fromkeys([*finals, *models, *(s.name for s in raw.shown)]))
        # each name once: a model fitted in place that a later step reads is an output and a result
        ordered = list(
            dict.fromkeys([*(w for w in raw.writes if w in outputs or w in finals), *outputs, *finals])
        )
        steps.append(
            Step(
                raw.name,
                raw.title,
                raw.cells,
                tuple(Param(r, raw.in_types.get(r), raw.sources[r]) for r in raw.reads),
                tuple(Param(o, raw.out_types.get(o), raw.name) for o in ordered),
                tuple(raw.mutated),
                tuple(r for r in ordered if r in finals),
                doc=raw.doc,
                state=tuple(r for r in raw.reads if r in state),
                shown=tuple(raw.shown),
                models=tuple(raw.models),
            )
        )
    return steps


def _lift(
    name: str, value: str, cell: int, line: int, col: int, *, kind: str
) -> tuple[ConfigField, Finding]:
    """A Config field for a URL or file path found in the notebook, and the finding that reports it.

    ``kind`` is "constant" (a name bound once to the literal: the field keeps the name and the str type) or
    "lifted" (a literal passed to an I/O call: a ``Path`` field named after the file).
    """
    where = f"cell {cell}, line {line}"
    if looks_like_url(value):
        field = ConfigField(
            name, "str", repr(value), f"URL from {where}", cell, line, literal=value, kind=kind
        )
        return field, Finding(
            "NBH204",
            f"URL '{value}' lifted into Config.{name}",
            Span(cell, line, col),
            Severity.INFO,
            Fix.SAFE,
            applied=True,
        )
    absolute = value.startswith(("/", "~"))
    # relative paths stay relative: they resolve from data_dir, the working folder of a run
    if kind == "constant":
        annotation, default = "str", repr(value)
    else:
        annotation, default = "Path", f"Path({value!r})"
    description = f"path from {where}" + ("" if absolute else "; relative to data_dir")
    field = ConfigField(
        name, annotation, default, description, cell, line, literal=value, kind=kind
    )
    return field, Finding(
        "NBH203",
        f"path '{value}' lifted into Config.{name}",
        Span(cell, line, col),
        Severity.INFO,
        Fix.SAFE,
        applied=True,
    )


def secret_fields(
    facts: NotebookFacts,
    fields: list[ConfigField] | tuple[ConfigField, ...],
    consumed: set[tuple[int, int]] | None = None,
) -> dict[str, str]:
    """Secret value -> the Config field holding it (the generated code reads the field instead).

    Recomputed from the analysis wherever it is needed, so that no value is ever stored in the plan.
    Raises ``InternalError`` when ``fields`` lacks a field a secret needs (a plan made from other facts).
    """
    from nbharden.errors import InternalError

    if consumed is None:
        consumed = consumed_statements(facts, tuple(fields))
    names = {f.name for f in fields if f.secret}
    known = _consumed_secrets(facts, consumed, names)
    read_defaults = default_secrets(facts, fields)  # a secret default of an environment read: its field
    out = {**read_defaults, **known}
    for value, name, _site in assign_fields(facts.cells, consumed, known):
        if value in read_defaults:
            continue
        if name not in names:
            raise InternalError(f"the plan has no Config field {name!r} for a secret")
        out[value] = name
    return out


def _consumed_secrets(
    facts: NotebookFacts, consumed: set[tuple[int, int]], names: set[str]
) -> dict[str, str]:
    """Value -> name of the secrets assigned once to a name that became a Config field."""
    known: dict[str, str] = {}
    for c, i in sorted(consumed):
        assignment = _literal_assignment(facts.cells[c].module.body[i])
        if assignment is not None and assignment[0] in names and isinstance(assignment[2], str):
            known[assignment[2]] = assignment[0]
    return known


def consumed_statements(
    facts: NotebookFacts, fields: tuple[ConfigField, ...]
) -> set[tuple[int, int]]:
    """(cell, statement index) of the assignments that became Config fields."""
    out: set[tuple[int, int]] = set()
    for f in fields:
        if f.kind in {"parameter", "constant", "secret"} and f.cell in facts.cells:
            cf = facts.cells[f.cell]
            for i, st in enumerate(cf.statements):
                if (
                    st.line == f.line
                    and f.name in st.binds
                    and _literal_assignment(cf.module.body[i])
                ):
                    out.add((f.cell, i))
    return out


def statement_role(
    cf: object,
    i: int,
    consumed: set[tuple[int, int]],
    hoisted_imports: set[str] | frozenset[str],
    hoisted_defs: set[str] | frozenset[str],
    shown: Collection[tuple[int, int]] = (),
    settings: Collection[tuple[int, int]] = (),
    kept_stars: Collection[tuple[int, int]] = (),
) -> str:
    """What happens to top-level statement ``i`` of a cell: config | import | def | setting | display | code.

    ``shown``: (cell, statement) of the values kept as results (``nbharden.shown``): code, never display.
    ``settings``: (cell, statement) of the process-wide settings that run at the pipeline's start.
    ``kept_stars``: (cell, statement) of the star imports that run in their step (``_hoistable_imports``)."""
    from nbharden.analyse import CellFacts, is_display_expression

    assert isinstance(cf, CellFacts)
    st = cf.statements[i]
    if (cf.index, i) in consumed:
        return "config"
    if st.kind == "import" and (
        (st.star_import is not None and (cf.index, i) not in kept_stars)
        or all(b in hoisted_imports for b in st.binds)
    ):
        return "import"
    if st.kind in {"def", "class", "alias"} and st.binds[0] in hoisted_defs:
        return "def"
    if (cf.index, i) in settings:
        return "setting"
    if (cf.index, i) in shown:
        return "code"
    stmt = cf.module.body[i]
    if isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, cst.Expr) and is_display_expression(s.value, cf.shadowed) for s in stmt.body
    ):
        return "display"
    return "code"


def _infer_assignment(
    stmt: cst.BaseStatement,
    qualified: dict[str, str],
    module_alias: dict[str, str],
    hoisted_imports: set[str],
) -> dict[str, str | None]:
    """Types of the names a simple assignment binds, when a literal, an annotation or a known call tells."""
    from nbharden.analyse import qualify

    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return {}
    small = stmt.body[0]
    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
        text = cst.Module([]).code_for_node(small.annotation.annotation)
        usable = all(
            n in hoisted_imports or n in BUILTINS
            for n in re.findall(r"[A-Za-z_]\w*", text)
            if not n[0].isdigit()
        )
        return {small.target.value: text if usable else None}
    if not (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
    ):
        return {}
    name, value = small.targets[0].target.value, small.value
    source = cst.Module([]).code_for_node(value)
    if len(source) < 2000:
        try:
            annotation = literal_annotation(ast.parse(source.strip(), mode="eval").body)
        except SyntaxError:
            annotation = None
        if annotation is not None:
            return {name: None if annotation in {"None", "object"} else annotation}
    if isinstance(value, cst.Call):
        target = qualify(value.func, qualified)
        if target in _TYPE_OF_CALL:
            module, _, cls = _TYPE_OF_CALL[target].rpartition(".")
            if module == "builtins":
                return {name: cls}
            full = {"pd": "pandas", "np": "numpy"}.get(module, module)
            alias = module_alias.get(full)
            if alias and "[" not in cls:
                return {name: f"{alias}.{cls}"}
        callee = value.func
        if (
            isinstance(callee, cst.Name)
            and callee.value in hoisted_imports
            and callee.value[:1].isupper()
        ):
            return {
                name: callee.value
            }  # an instance of an imported class: RandomForestClassifier(...)
    return {}


def _literal_assignment(stmt: cst.BaseStatement) -> tuple[str, str, object] | None:
    """``name = <literal>`` -> (name, literal source, value)."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    small = stmt.body[0]
    if (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
    ):
        target, value_node = small.targets[0].target, small.value
    elif (
        isinstance(small, cst.AnnAssign)
        and isinstance(small.target, cst.Name)
        and small.value is not None
    ):
        target, value_node = small.target, small.value
    else:
        return None
    source = cst.Module([]).code_for_node(value_node)
    try:
        value = ast.literal_eval(source.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return target.value, source.strip(), value


_IO_NAMES = re.compile(
    r"(read_\w+|load\w*|open|savefig|to_\w+|imread|urlopen|urlretrieve|get|post|Path|"
    r"genfromtxt|save\w*|dump|ExcelFile|HDFStore|connect|read_text|write_text|exists|listdir)$"
)


def _in_io_call(cf: object, value: str) -> bool:
    """Whether the literal ``value`` appears as an argument of an I/O-looking call in the cell."""
    from nbharden.analyse import CellFacts

    assert isinstance(cf, CellFacts)
    found = False

    class _Finder(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            nonlocal found
            func = node.func
            fname = (
                func.attr.value
                if isinstance(func, cst.Attribute)
                else func.value if isinstance(func, cst.Name) else ""
            )
            if not _IO_NAMES.match(fname):
                return
            for arg in node.args:
                if isinstance(arg.value, cst.SimpleString) and arg.value.evaluated_value == value:
                    found = True

    cf.module.visit(_Finder())
    return found


def _dependencies(facts: NotebookFacts, package: str, local: set[str]) -> tuple[str, ...]:
    """Distributions the generated package needs: what the notebook imports, less the standard library
    and the modules beside the notebook (the package carries a copy of those)."""
    stdlib = set(sys.stdlib_module_names)
    deps: set[str] = set()
    for qname in facts.qualified.values():
        top = qname.lstrip(".").split(".")[0]
        if (
            not top
            or qname.startswith(".")
            or top in stdlib
            or top == package
            or top == "__future__"
            or top in local
        ):
            continue
        deps.add(DISTRIBUTIONS.get(top, top))
    for cf in facts.cells.values():
        for req in cf.dependencies:
            name = re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0]
            if name:
                deps.add(req if name != req else name)
    deps -= {"ipython", "ipykernel", "jupyter"}
    return tuple(sorted(deps, key=str.lower))


# --- per-statement decisions: what emit renders (Plan.statements, Plan.secrets, Plan.lifted_types) ---------------


def _statements(facts: NotebookFacts, inputs: _StepInputs) -> tuple[Statement, ...]:
    """Every top-level statement of the code cells with its role (the one the steps were planned from), the
    cell whose step runs it and the names it may change, in the order the package runs them."""
    functions = {
        st.binds[0] for cf in facts.cells.values() for st in cf.statements if st.kind == "def"
    }
    out: list[Statement] = []
    for runs_in in sorted(inputs.order):
        for c, i in inputs.order[runs_in]:
            cf = facts.cells[c]
            role = inputs.roles[(c, i)]
            changes: set[str] = set()
            if role == "code":
                shown = inputs.shown_map.get((c, i), ())
                changes = _kept_changes(cf.module.body[i], cf.statements[i], functions, shown)
            out.append(Statement(c, i, role, runs_in, tuple(sorted(changes))))
    return tuple(out)


def _kept_changes(
    stmt: cst.BaseStatement, st: TopStatement, functions: set[str], shown: tuple[Shown, ...]
) -> set[str]:
    """What a kept statement may change as its step runs it: a shown value is bound to its name (or only
    logged, when it is a name), so only the calls of the value it shows count, besides its own bindings; a
    print that prints results runs as it is, then logs them."""
    if not shown or shown[0].how == "print":
        return _changes(stmt, st, functions)
    value = shown_value(stmt, shown[0])
    if value is None:
        return set(st.binds)
    return set(st.binds) | _call_changes(find_all(value, cst.Call), functions)


def _changes(stmt: cst.BaseStatement, st: TopStatement, functions: set[str]) -> set[str]:
    """Names a statement may bind or change: for placing a data contract after the last of them.

    Besides bindings, the in-place changes of every line in it (``df["c"] = ...``, ``df.pop("a")``,
    ``df.dropna(inplace=True)``) and the arguments of the notebook's own functions, which may change them.
    """
    changed = set(st.binds)
    nodes = find_all(stmt, cst.SimpleStatementLine, cst.Call)  # one walk for both
    for line in nodes:
        if isinstance(line, cst.SimpleStatementLine):
            changed |= changed_by(line)
    return changed | _call_changes(nodes, functions)


def _call_changes(nodes: list[cst.CSTNode], functions: set[str]) -> set[str]:
    """Names the calls among ``nodes`` may change: the receiver of an in-place method, the name arguments of
    the notebook's own functions."""
    changed: set[str] = set()
    for call in nodes:
        if not isinstance(call, cst.Call):
            continue
        func = call.func
        inplace = any(a.keyword is not None and a.keyword.value == "inplace" for a in call.args)
        if isinstance(func, cst.Attribute) and (inplace or func.attr.value in MUTATING_METHODS):
            changed |= {n for n in [_root_name(func.value)] if n}
        if isinstance(func, cst.Name) and func.value in functions:
            changed |= {a.value.value for a in call.args if isinstance(a.value, cst.Name)}
    return changed


def _root_name(node: cst.BaseExpression) -> str | None:
    while isinstance(node, cst.Attribute | cst.Subscript):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def secret_uses(
    facts: NotebookFacts, fields: tuple[ConfigField, ...]
) -> tuple[SecretUse, ...]:
    """``secret_fields`` as the plan carries it: each secret by where the notebook wrote it (its first site,
    or the environment read it is the default of), never by value. Checked to resolve back to the same map."""
    from nbharden.errors import InternalError

    mapping = secret_fields(facts, fields)
    if not mapping:
        return ()
    assigned: dict[str, tuple[int, int]] = {}
    for c, i in sorted(consumed_statements(facts, fields)):
        assignment = _literal_assignment(facts.cells[c].module.body[i])
        if assignment is not None and isinstance(assignment[2], str):
            assigned.setdefault(assignment[2], (c, i))
    sites = [(c, n, site) for c in sorted(facts.cells) for n, site in enumerate(facts.cells[c].secrets)]
    reads = env_reads(facts)
    out: list[SecretUse] = []
    for value, name in mapping.items():
        if value in assigned:
            c, i = assigned[value]
            out.append(SecretUse(name, c, facts.cells[c].statements[i].line, "assignment", i))
            continue
        site = next(((c, n, s) for c, n, s in sites if s.secret == value), None)
        if site is not None:
            out.append(SecretUse(name, site[0], site[2].line, "site", site[1]))
            continue
        read = next((r for r in reads if r.default_secret == value), None)
        if read is None:
            raise InternalError(f"no site of the secret of Config field {name!r}")
        out.append(SecretUse(name, read.cell, read.line, "env-default", env_var=read.var))
    uses = tuple(out)
    if resolve_secrets(facts, uses) != mapping:
        raise InternalError("the secrets' locations do not name their values uniquely")
    return uses


def lifted_types(
    facts: NotebookFacts, lifted: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """For each lifted function, its parameters that every call passes a literal of one type (int, float,
    str, bool) to, with that type: their annotations."""
    out: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for name, _state in lifted:
        fn = next(
            cf.module.body[i]
            for cf in facts.cells.values()
            for i, st in enumerate(cf.statements)
            if st.kind == "def" and st.binds[0] == name
        )
        assert isinstance(fn, cst.FunctionDef)
        positional = [p.name.value for p in fn.params.params]
        seen: dict[str, set[str | None]] = {}
        for cf in facts.cells.values():
            for call in find_all(cf.module, cst.Call):
                assert isinstance(call, cst.Call)
                if not (isinstance(call.func, cst.Name) and call.func.value == name):
                    continue
                for n, arg in enumerate(call.args):
                    key = arg.keyword.value if arg.keyword else (positional[n] if n < len(positional) else "")
                    seen.setdefault(key, set()).add(_literal_type(arg.value))
        typed: list[tuple[str, str]] = []
        for key, kinds in seen.items():
            kind = next(iter(kinds))
            if key and len(kinds) == 1 and kind is not None:
                typed.append((key, kind))
        out.append((name, tuple(typed)))
    return tuple(out)


def _literal_type(node: cst.BaseExpression) -> str | None:
    try:
        annotation = literal_annotation(ast.parse(cst.Module([]).code_for_node(node), mode="eval").body)
    except SyntaxError:
        return None
    return annotation if annotation in {"int", "float", "str", "bool"} else None
