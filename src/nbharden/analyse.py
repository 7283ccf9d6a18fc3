"""Analyse a notebook: LibCST scope analysis per cell, one def/use graph across cells, effects, findings.

Cells are analysed one at a time (LibCST costs ~36 KB per source line: never one giant module), in top-to-bottom
order, which is the order the generated pipeline runs them in. What a cell *reads* is every name it uses that is not
bound in the cell before the use (LibCST's scope analysis resolves that, including uses inside functions,
comprehensions and classes); what it *writes* is every name bound at its top level.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import dataclasses
import functools
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import libcst as cst
from libcst.metadata import (
    BaseAssignment,
    BuiltinScope,
    ClassScope,
    CodeRange,
    ComprehensionScope,
    GlobalScope,
    MetadataWrapper,
    PositionProvider,
    Scope,
    ScopeProvider,
)

from nbharden import libcst_speed
from nbharden.local_modules import module_exports
from nbharden.models import Analysis, CellAnalysis, Effect, Finding, Fix, Notebook, Severity, Span
from nbharden.secrets import Site, redact, secret_values
from nbharden.secrets import is_secret_literal as is_secret_literal  # the plan's import of it
from nbharden.secrets import scan as scan_secrets
from nbharden.settings import Settings
from nbharden.transform.bound import certainly_bound, deleted
from nbharden.transform.codemods import find_all, names_in
from nbharden.transform.magics import MagicResult, UserMagic, translate_magics, user_magics

if TYPE_CHECKING:
    from nbharden.transform.network import NetworkScan

libcst_speed.install()

BUILTINS = frozenset(dir(builtins)) | {"display", "get_ipython", "__file__"}
OUTPUT_HISTORY = re.compile(r"^(_{1,3}|_\d+|_i\d*|_ii+|_oh|_ih|_dh|In|Out)$")

# Call targets by qualified name prefix -> effect. Prefixes end with "." to match a whole module.
_EFFECT_PREFIXES: tuple[tuple[str, Effect], ...] = (
    ("requests.", Effect.NETWORK),
    ("httpx.", Effect.NETWORK),
    ("urllib.request.urlopen", Effect.NETWORK),
    ("urllib.request.urlretrieve", Effect.NETWORK),
    ("boto3.", Effect.NETWORK),
    ("random.", Effect.RANDOM),
    ("numpy.random.", Effect.RANDOM),
    ("matplotlib.pyplot.", Effect.PLOT),
    ("seaborn.", Effect.PLOT),
    ("pylab.", Effect.PLOT),
    ("time.time", Effect.CLOCK),
    ("time.perf_counter", Effect.CLOCK),
    ("datetime.datetime.now", Effect.CLOCK),
    ("datetime.datetime.today", Effect.CLOCK),
    ("datetime.date.today", Effect.CLOCK),
    ("subprocess.", Effect.SHELL),
    ("os.system", Effect.SHELL),
    ("IPython.display.display", Effect.DISPLAY),
)
_READERS = re.compile(
    r"^(pandas\.read_\w+|numpy\.(load|loadtxt|genfromtxt|fromfile)|json\.load|pickle\.load|"
    r"scipy\.io\.loadmat|joblib\.load|PIL\.Image\.open|matplotlib\.image\.imread)$"
)
_READER_METHODS = {"read_text", "read_bytes"}
_WRITER_METHODS = {
    "to_csv",
    "to_parquet",
    "to_excel",
    "to_json",
    "to_pickle",
    "to_feather",
    "to_hdf",
    "savefig",
    "write_text",
    "write_bytes",
    "to_sql",
    "to_html",
}
_WRITERS = re.compile(
    r"^(numpy\.(save|savez|savez_compressed|savetxt)|json\.dump|pickle\.dump|joblib\.dump|"
    r"matplotlib\.pyplot\.savefig)$"
)
_NETWORK_NEEDS_TIMEOUT = re.compile(
    r"^(requests\.(get|post|put|patch|delete|head|options|request)|"
    r"httpx\.(get|post|put|patch|delete|head|options|request)|"
    r"urllib\.request\.urlopen)$"
)
# Methods that change their receiver in place (lists, dicts, sets, frames, arrays, estimators, figures).
MUTATING_METHODS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "remove",
        "pop",
        "clear",
        "sort",
        "reverse",
        "update",
        "add",
        "discard",
        "setdefault",
        "popitem",
        "fill",
        "resize",
        "put",
        "itemset",
        "fit",
        "partial_fit",
        "fit_transform",
        "set_index_inplace",
        "rename_axis_inplace",
        "shuffle",
        "seed",
        "sort_values_inplace",
        "__setitem__",
    }
)
# Functions that seed the global generators (with an argument); constructors of generators of their own, which
# are reproducible when given a seed and draw differently on every run without one.
_SEEDING = re.compile(r"^(random\.seed|numpy\.random\.seed)$")
_GENERATOR = re.compile(
    r"^(random\.Random|numpy\.random\.(default_rng|RandomState|Generator|SeedSequence|PCG64|PCG64DXSM|"
    r"MT19937|Philox|SFC64))$"
)
_SKLEARN_RANDOM = re.compile(
    r"^sklearn\.\w+(\.\w+)*\.(train_test_split|RandomForest\w+|ExtraTrees\w+|"
    r"GradientBoosting\w+|KMeans|MiniBatchKMeans|MLP\w+|SGD\w+|KFold|StratifiedKFold|"
    r"ShuffleSplit|DecisionTree\w+|PCA|TSNE|RandomizedSearchCV|HistGradientBoosting\w+|"
    r"IsolationForest|make_classification|make_regression|make_blobs|make_moons)$"
)
PATH_EXTENSIONS = frozenset(
    {
        "csv",
        "tsv",
        "json",
        "jsonl",
        "parquet",
        "xlsx",
        "xls",
        "txt",
        "npy",
        "npz",
        "pkl",
        "pickle",
        "h5",
        "hdf5",
        "feather",
        "zip",
        "gz",
        "bz2",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "pdf",
        "css",
        "dat",
        "data",
        "xml",
        "yaml",
        "yml",
        "sqlite",
        "db",
        "html",
        "mat",
        "arff",
        "sav",
        "dta",
        "orc",
        "avro",
        "tar",
        "joblib",
        "model",
        "bin",
        "pt",
        "pth",
        "ckpt",
        "keras",
        "onnx",
    }
)
_PATH_SHAPE = re.compile(r"^(~|\.{1,2})?[\w.\-/\\ ~]*\.([A-Za-z0-9]{1,7})$")


def looks_like_url(value: str) -> bool:
    return re.match(r"^(https?|ftp|s3|gs)://\S+$", value) is not None


def looks_like_path(value: str) -> bool:
    """A string literal that names a data file (``data/x.csv``, ``/abs/y.parquet``), not any dotted word."""
    if not value or len(value) > 400 or "\n" in value or looks_like_url(value):
        return False
    match = _PATH_SHAPE.match(value)
    return match is not None and match.group(2).lower() in PATH_EXTENSIONS


@dataclass
class TopStatement:
    """One top-level statement of a cell, with what it binds and reads."""

    index: int
    kind: str  # "import" | "def" | "class" | "code"
    binds: tuple[str, ...]
    reads: tuple[
        str, ...
    ]  # names read from outside the cell (after earlier statements of the cell)
    line: int
    import_names: tuple[tuple[str, str], ...] = ()  # (bound name, qualified name) for imports
    star_import: str | None = None
    conditional_import: bool = False
    uses: tuple[
        str, ...
    ] = ()  # every global name the statement touches, including ones bound in the cell
    # globals read when a function, lambda, generator expression or method it defines runs (later)
    lazy: tuple[str, ...] = ()
    # names it may delete: ``except E as e`` at the top level ends with an implicit ``del e`` when the
    # handler runs, and ``del x`` in a block (``if flag: del x``) runs on some paths only, so after the
    # statement the name holds what it held before, or nothing
    unbinds: tuple[str, ...] = ()


@dataclass
class CellFacts:
    """Analysis internals per code cell kept for the later stages (not serialised)."""

    index: int
    module: cst.Module
    statements: list[TopStatement]
    def_reads: dict[
        str, tuple[str, ...]
    ]  # def/class name -> global names it reads when called/defined
    dependencies: list[str] = field(default_factory=list)
    needs: set[str] = field(
        default_factory=set
    )  # stdlib helpers the magic translation needs: subprocess, os, path
    literals: list[tuple[str, int, int, str | None]] = field(
        default_factory=list
    )  # (value, line, col, context)
    global_decls: set[str] = field(default_factory=set)
    secrets: list[Site] = field(default_factory=list)  # hard-coded secrets (values: never serialise)
    # showing functions (print, display, ...) the notebook binds itself: calls of those do real work
    shadowed: frozenset[str] = frozenset()
    # statements a magic ran without showing their value (``%timeit f()``): never a shown result
    unshown: frozenset[int] = frozenset()
    # LibCST's PositionProvider metadata of ``module``, resolved once by ``analyse_cell`` (later stages' visitors
    # reuse it: resolving it again costs a code generation of the cell)
    positions: Mapping[cst.CSTNode, CodeRange] = field(default_factory=dict)


@dataclass(frozen=True)
class NotebookFacts:
    cells: dict[int, CellFacts]
    qualified: dict[
        str, str
    ]  # import alias -> qualified name (last binding wins; conflicts listed separately)
    conflicting_imports: frozenset[str]
    shadowed: frozenset[str] = frozenset()  # showing functions the notebook binds itself (rebound_showing_names)

    # Whole-notebook scans the plan and emit both need, made once per conversion on first use (a frozen
    # value's cells never change after ``analyse``): each was a walk of every cell, repeated per stage.
    @functools.cached_property
    def cell_names(self) -> dict[int, frozenset[str]]:
        """Per code cell, every identifier its code uses (``names_in``)."""
        return {index: frozenset(names_in(cf.module)) for index, cf in self.cells.items()}

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """Every identifier the notebook's code uses."""
        return frozenset().union(*self.cell_names.values())

    @functools.cached_property
    def network(self) -> NetworkScan:
        """Sessions, clients, URL-valued names and whether any call is a network call
        (``nbharden.transform.network.scan``)."""
        from nbharden.transform.network import scan  # network builds on this module

        return scan(self)


def dotted_name(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a name or an attribute chain of names, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def _root_name(node: cst.BaseExpression) -> str | None:
    while isinstance(node, cst.Attribute | cst.Subscript):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def qualify(node: cst.BaseExpression, qualified: dict[str, str]) -> str | None:
    """The qualified name of a call target through the notebook's imports.

    ``np.random.rand`` -> ``numpy.random.rand``.
    """
    dotted = dotted_name(node)
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    if head in qualified:
        return qualified[head] + ("." + rest if rest else "")
    return dotted


def _import_bindings(node: cst.Import | cst.ImportFrom) -> tuple[list[tuple[str, str]], str | None]:
    names: list[tuple[str, str]] = []
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = dotted_name(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                names.append((alias.asname.name.value, full))
            else:
                head = full.split(".")[0]
                names.append((head, head))
        return names, None
    module = dotted_name(node.module) if node.module is not None else ""
    prefix = "." * len(node.relative) + (module or "")
    if isinstance(node.names, cst.ImportStar):
        return [], prefix
    for alias in node.names:
        name = dotted_name(alias.name) or ""
        bound = (
            alias.asname.name.value
            if alias.asname and isinstance(alias.asname.name, cst.Name)
            else name
        )
        names.append((bound, f"{prefix}.{name}"))
    return names, None


class _CellVisitor(cst.CSTVisitor):
    """Collects effects, mutations, literals and findings of one cell, with positions."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, cell: int, qualified: dict[str, str], seeded: bool) -> None:
        super().__init__()
        self.cell = cell
        self.qualified = qualified
        self.seeded = seeded
        self.effects: set[Effect] = set()
        self.mutates: list[str] = []
        self.findings: list[Finding] = []
        self.literals: list[tuple[str, int, int, str | None]] = []
        self.aliases: dict[str, list[str]] = {}  # loop variable -> names it iterates over
        self.seeds = False
        self.global_decls: set[str] = set()
        self._function_depth = 0
        self._assign_target: list[str | None] = []

    def _pos(self, node: cst.CSTNode) -> tuple[int, int]:
        pos = self.get_metadata(PositionProvider, node, None)
        return (pos.start.line, pos.start.column + 1) if pos else (1, 1)

    def _add(
        self,
        code: str,
        message: str,
        node: cst.CSTNode,
        fix: Fix = Fix.NONE,
        severity: Severity = Severity.WARNING,
    ) -> None:
        line, col = self._pos(node)
        self.findings.append(
            Finding(code, message, Span(self.cell, line, col), severity=severity, fix=fix)
        )

    def _mutated(self, name: str | None) -> None:
        if not name or self._function_depth:
            return
        for target in [name, *self.aliases.get(name, [])]:
            if target not in self.mutates:
                self.mutates.append(target)

    # scopes
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._function_depth += 1

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._function_depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._function_depth += 1

    def leave_Lambda(self, node: cst.Lambda) -> None:
        self._function_depth -= 1

    def visit_Global(self, node: cst.Global) -> None:
        names = [n.name.value for n in node.names]
        self.global_decls.update(names)
        self._add("NBH104", f"'global {', '.join(names)}': a function changes notebook state", node)

    # aliasing: for d in [train, test]: d[...] = ...
    def visit_For(self, node: cst.For) -> None:
        if isinstance(node.target, cst.Name) and isinstance(node.iter, cst.List | cst.Tuple):
            names = [e.value.value for e in node.iter.elements if isinstance(e.value, cst.Name)]
            if names:
                self.aliases[node.target.value] = names

    def visit_Assign(self, node: cst.Assign) -> None:
        target = node.targets[0].target if len(node.targets) == 1 else None
        self._assign_target.append(target.value if isinstance(target, cst.Name) else None)
        for t in node.targets:
            if isinstance(t.target, cst.Subscript | cst.Attribute):
                self._mutated(_root_name(t.target))
        if (
            isinstance(target, cst.Name)
            and isinstance(node.value, cst.Name)
            and not self._function_depth
        ):
            self.aliases.setdefault(target.value, []).append(node.value.value)

    def leave_Assign(self, node: cst.Assign) -> None:
        self._assign_target.pop()

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Subscript | cst.Attribute):
            self._mutated(_root_name(node.target))
        elif isinstance(node.target, cst.Name):
            # ``lst += [...]`` changes a list in place; for numbers it rebinds (handled as a write).
            self._mutated(node.target.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if isinstance(node.target, cst.Subscript | cst.Attribute):
            self._mutated(_root_name(node.target))

    def visit_Del(self, node: cst.Del) -> None:
        for el in find_all(node.target, cst.Subscript, cst.Attribute):
            if isinstance(el, cst.Subscript | cst.Attribute):
                self._mutated(_root_name(el))

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.type is None:
            self._add(
                "NBH602", "bare 'except:' hides every error, including KeyboardInterrupt", node
            )

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            module = dotted_name(node.module) if node.module else ""
            self._add("NBH601", f"'from {module} import *' hides where names come from", node)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        value = node.evaluated_value
        if isinstance(value, str):
            line, col = self._pos(node)
            context = self._assign_target[-1] if self._assign_target else None
            self.literals.append((value, line, col, context))

    def visit_Call(self, node: cst.Call) -> None:
        name = qualify(node.func, self.qualified)
        kwargs = {a.keyword.value: a for a in node.args if a.keyword is not None}
        if name:
            self._call_effects(name, node, kwargs)
            self._network_call(name, node, kwargs)
            self._random_call(name, node, kwargs)
        if isinstance(node.func, cst.Attribute):
            self._method_call(node.func, kwargs)

    def _call_effects(self, name: str, node: cst.Call, kwargs: Mapping[str, cst.Arg]) -> None:
        """The effects of a call to the function qualified as ``name``: I/O, printing, showing."""
        for prefix, effect in _EFFECT_PREFIXES:
            if name == prefix or (prefix.endswith(".") and name.startswith(prefix)):
                self.effects.add(effect)
        if name in {"print"}:
            self.effects.add(Effect.PRINT)
        if name in {"display", "IPython.display.display"}:
            self.effects.add(Effect.DISPLAY)
        if _READERS.match(name):
            self.effects.add(Effect.FILE_READ)
            first = node.args[0].value if node.args else None
            if isinstance(first, cst.SimpleString) and looks_like_url(str(first.evaluated_value)):
                self.effects.add(Effect.NETWORK)
        if _WRITERS.match(name):
            self.effects.add(Effect.FILE_WRITE)
        if name == "open":
            mode = (
                node.args[1].value
                if len(node.args) > 1
                else kwargs["mode"].value
                if "mode" in kwargs
                else None
            )
            text = mode.evaluated_value if isinstance(mode, cst.SimpleString) else "r"
            self.effects.add(
                Effect.FILE_WRITE if any(c in str(text) for c in "wax+") else Effect.FILE_READ
            )

    def _network_call(self, name: str, node: cst.Call, kwargs: Mapping[str, cst.Arg]) -> None:
        """NBH301 for a network call without a timeout, NBH302 for one without retries."""
        if _NETWORK_NEEDS_TIMEOUT.match(name) and "timeout" not in kwargs:
            self._add("NBH301", f"{name}() without a timeout can hang forever", node, Fix.SAFE)
        if _NETWORK_NEEDS_TIMEOUT.match(name) or name.startswith("boto3."):
            self._add(
                "NBH302",
                f"{name}() fails on the first transient error (no retry)",
                node,
                Fix.SAFE,
                Severity.INFO,
            )

    def _random_call(self, name: str, node: cst.Call, kwargs: Mapping[str, cst.Arg]) -> None:
        """Seeding (the cell seeds the global generators), or NBH401 for randomness that differs between runs."""
        if _SEEDING.match(name) and node.args:
            self.seeds = True
        elif _GENERATOR.match(name) or _SEEDING.match(name):
            if not _seed_given(node):  # the seed fix seeds the global generators, not this one
                self._add(
                    "NBH401",
                    f"{name}() without a seed draws different numbers on every run; pass a seed",
                    node,
                    Fix.NONE,
                )
        elif name.startswith(("random.", "numpy.random.")) and not self.seeded and not self.seeds:
            self._add(
                "NBH401",
                f"{name}() draws unseeded random numbers: results change on every run",
                node,
                Fix.UNSAFE,
            )
        elif (
            _SKLEARN_RANDOM.match(name)
            and "random_state" not in kwargs
            and not (name.endswith(".PCA") and _pca_is_deterministic(node, kwargs))
        ):
            self.effects.add(Effect.RANDOM)
            self._add(
                "NBH401",
                f"{name.rsplit('.', 1)[-1]}() without random_state is not reproducible",
                node,
                Fix.UNSAFE,
            )

    def _method_call(self, func: cst.Attribute, kwargs: Mapping[str, cst.Arg]) -> None:
        """A method call: in-place changes of its receiver, I/O and plotting methods."""
        method = func.attr.value
        receiver = _root_name(func.value)
        if method in MUTATING_METHODS or (
            "inplace" in kwargs
            and isinstance(kwargs["inplace"].value, cst.Name)
            and kwargs["inplace"].value.value == "True"
        ):
            if receiver not in self.qualified:
                self._mutated(receiver)
        if method in _WRITER_METHODS:
            self.effects.add(Effect.FILE_WRITE)
        if method in _READER_METHODS:
            self.effects.add(Effect.FILE_READ)
        if method in {"plot", "hist", "boxplot", "scatter", "imshow", "bar", "barh", "pie"}:
            self.effects.add(Effect.PLOT)
        if method == "show" and receiver in self.qualified:
            self.effects.add(Effect.PLOT)


_TYPE_NAMES = frozenset(
    {"str", "int", "float", "complex", "bool", "bytes", "bytearray", "list", "dict", "set", "frozenset",
     "tuple", "type", "object", "range", "slice"}
)  # fmt: skip
_TYPE_MODULES = ("typing.", "typing_extensions.", "collections.abc.", "collections.")


def _type_alias(
    small: cst.BaseSmallStatement | None, qualified: dict[str, str], classes: set[str]
) -> str | None:
    """The name a type alias statement binds (``Word = str``, ``Chain = List[Word]``), else None.

    Only plain ``Name = <type expression>`` where every name in the expression is a builtin type, a name from
    ``typing``/``collections.abc`` or a class (the notebook's own, or an earlier alias): evaluating it has no
    effect, so it can move to module level where annotations of moved functions can use it.
    """
    if not isinstance(small, cst.Assign) or len(small.targets) != 1:
        return None
    target = small.targets[0].target
    if not isinstance(target, cst.Name):
        return None

    def is_type(node: cst.BaseExpression, top: bool) -> bool:
        if isinstance(node, cst.Name):
            q = qualified.get(node.value, "")
            return (
                node.value in _TYPE_NAMES
                or node.value in classes
                or q.startswith(_TYPE_MODULES)
                or (not top and node.value == "None")
            )
        if isinstance(node, cst.Attribute):  # typing.List, t.Dict
            return (qualify(node, qualified) or "").startswith(_TYPE_MODULES)
        if isinstance(node, cst.Subscript):
            return is_type(node.value, False) and all(
                isinstance(el.slice, cst.Index) and is_type(el.slice.value, False)
                for el in node.slice
            )
        if not top and isinstance(node, cst.List):
            return all(is_type(el.value, False) for el in node.elements)
        if not top and isinstance(node, cst.SimpleString | cst.Ellipsis):
            return True
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
            return is_type(node.left, False) and is_type(node.right, False)
        return False

    if not is_type(small.value, True):
        return None
    classes.add(target.value)  # a later alias may use this one
    return target.value


def _statement_line(wrapper_positions: Any, node: cst.CSTNode) -> int:
    pos = wrapper_positions.get(node)
    return pos.start.line if pos else 1


def analyse_cell(
    index: int,
    code: str,
    qualified: dict[str, str],
    seeded: bool,
    known_types: set[str] | None = None,
    magics: Mapping[str, UserMagic] | None = None,
    shadowed: frozenset[str] = frozenset(),
    local_exports: Mapping[str, tuple[str, ...]] | None = None,
    earlier: Collection[str] = frozenset(),
) -> tuple[CellAnalysis, CellFacts, list[Finding], bool]:
    """Analyse one code cell (already masked). Returns its summary, internals, findings and whether it seeds RNGs.

    ``magics``: the magics earlier cells defined, whose uses in this cell become calls. ``shadowed``: showing
    functions the notebook binds itself (``rebound_showing_names``). ``local_exports``: module beside the
    notebook -> the names ``from <module> import *`` binds. ``earlier``: the names cells above bind."""
    parsed = module = cst.parse_module(code)
    if "get_ipython" in code or "_magic" in code:
        magic = translate_magics(module, index, magics)
        module = magic.module
    else:
        magic = MagicResult(module)
    text = code if module is parsed else module.code  # LibCST round-trips: a parsed module's code is ``code``
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    resolved = wrapper.resolve_many([ScopeProvider, PositionProvider])
    positions = cast(Mapping[cst.CSTNode, CodeRange], resolved[PositionProvider])
    names = _cell_names(module, text, resolved[ScopeProvider], positions, earlier)
    # classes and type aliases of this cell and the cells above (``known_types`` is shared, and grows)
    classes = known_types if known_types is not None else set()
    classes.update(s.name.value for s in module.body if isinstance(s, cst.ClassDef))
    statements, def_reads = _top_statements(
        module, positions, names, qualified, classes, local_exports
    )
    for st in statements:
        for bound, qname in st.import_names:
            qualified[bound] = qname.lstrip(".") if not qname.startswith(".") else qname

    visitor = _CellVisitor(index, qualified, seeded)
    visitor.metadata = {PositionProvider: positions}  # reuse the positions resolved above
    module.visit(visitor)
    introduced = {
        n
        for n, flag in (
            ("subprocess", magic.needs_subprocess),
            ("os", magic.needs_os),
            ("Path", magic.needs_path),
        )
        if flag
    }
    for st in statements:
        st.reads = tuple(n for n in st.reads if n not in introduced)
    summary = _cell_summary(
        index, statements, visitor.mutates, _cell_effects(module, visitor, magic, shadowed)
    )
    facts = CellFacts(
        index,
        module,
        statements,
        def_reads,
        list(magic.dependencies),
        {"path" if n == "Path" else n for n in introduced},  # what the translated magics need
        visitor.literals,
        visitor.global_decls,
        shadowed=shadowed,
        unshown=magic.unshown,
        positions=positions,
    )
    facts.secrets = scan_secrets(module, index, positions)  # the positions resolved above, not again
    return summary, facts, [*magic.findings, *visitor.findings], seeded or visitor.seeds


@dataclass
class _CellNames:
    """The global names each top-level statement of a cell binds, uses and reads, by statement index."""

    global_scope: GlobalScope | None
    reads: dict[int, list[str]]  # read before this cell binds them: what the statement takes from earlier cells
    free: dict[int, set[str]] = field(default_factory=dict)  # every global it uses, even if bound in the cell
    lazy: dict[int, set[str]] = field(default_factory=dict)  # read by code that runs later (a function's body)
    bound_before: dict[str, int] = field(default_factory=dict)  # name -> the first statement binding it
    bound_by: dict[int, set[str]] = field(default_factory=dict)  # statement -> the global names it binds
    # statement -> the names its top-level ``except E as name`` handlers may delete
    unbound_by: dict[int, set[str]] = field(default_factory=dict)
    handlers: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = field(default_factory=dict)
    # name -> the first statement that binds it on every path (``bound_before`` counts ``if c: x = 1`` too)
    certain_before: dict[str, int] = field(default_factory=dict)
    # LibCST assignments inside an ``except E as name`` handler of their name: no read after the handler sees
    # them (reads inside it are not recorded at all)
    in_handlers: set[object] = field(default_factory=set)
    earlier: Collection[str] = frozenset()  # the names cells above bind


def _statement_owner(module: cst.Module, positions: Any) -> Callable[[cst.CSTNode | None], int]:
    """The index of the top-level statement a node belongs to (-1 for none), by position: statements are disjoint
    line/column ranges. (A decorated def starts at its first decorator; LibCST's position of the def starts at
    'def'.)"""
    starts = []
    for stmt in module.body:
        head: cst.CSTNode = (
            stmt.decorators[0]
            if isinstance(stmt, cst.FunctionDef | cst.ClassDef) and stmt.decorators
            else stmt
        )
        where = cast(CodeRange, positions[head])
        starts.append((where.start.line, where.start.column))

    def owner_of(node: cst.CSTNode | None) -> int:
        where = cast(CodeRange | None, positions.get(node)) if node is not None else None
        if where is None:
            return -1
        return bisect.bisect_right(starts, (where.start.line, where.start.column)) - 1

    return owner_of


def _cell_names(
    module: cst.Module,
    text: str,
    scopes: Mapping[cst.CSTNode, object],
    positions: Any,
    earlier: Collection[str] = frozenset(),
) -> _CellNames:
    """Which global names each top-level statement binds, uses, and reads from earlier cells. ``text``:
    ``module.code``, which the helpers look into before walking the module for what it cannot hold."""
    global_scope = next((s for s in scopes.values() if isinstance(s, GlobalScope)), None)
    owner_of = _statement_owner(module, positions)
    names = _CellNames(global_scope, {i: [] for i in range(len(module.body))}, earlier=earlier)
    names.handlers = _except_as_handlers(module, text, scopes, positions)
    if global_scope is not None:
        for assignment in [*global_scope.assignments, *_walrus_in_comprehensions(module, text, scopes)]:
            node = _assigned_node(assignment)
            i = owner_of(node)
            if i >= 0 and _in_handler(names, assignment.name, node, positions):
                # never outlives its handler: the statement may delete the name, it binds nothing
                names.unbound_by.setdefault(i, set()).add(assignment.name)
                names.in_handlers.add(assignment)
            elif i >= 0:
                names.bound_before[assignment.name] = min(names.bound_before.get(assignment.name, i), i)
                names.bound_by.setdefault(i, set()).add(assignment.name)
    for i, stmt in enumerate(module.body):
        if not isinstance(stmt, cst.SimpleStatementLine) and names.bound_by.get(i):
            # ``if c: x = 1`` binds x on some paths only: a later statement's read of x may read the x of
            # a cell above (``_note_access``)
            certain = certainly_bound([stmt], frozenset()) or frozenset()
            for name in names.bound_by[i] & certain:
                names.certain_before.setdefault(name, i)
        else:
            for name in names.bound_by.get(i, ()):
                names.certain_before.setdefault(name, i)
        # ``del x`` inside a block of a compound statement: a maybe-deletion, as a handler's is (a top-level
        # ``del`` statement deletes for certain: the plan reads it from the statement itself)
        if not isinstance(stmt, cst.SimpleStatementLine | cst.FunctionDef | cst.ClassDef) and "del" in text:
            for name in deleted(stmt, handlers=False):
                names.unbound_by.setdefault(i, set()).add(name)

    # Scopes and accesses are sets in LibCST (ordered by object id): walk them in source order, so that the
    # order of a step's parameters never depends on the process (a second conversion gives the same bytes).
    def _where(access: Any) -> tuple[int, int]:
        where = cast(CodeRange | None, positions.get(access.node))
        return (where.start.line, where.start.column) if where is not None else (0, 0)

    augmented = _augmented_reads(
        module, text, cast(Mapping[cst.CSTNode, Scope | None], scopes), global_scope, positions
    )
    for scope in dict.fromkeys(cast(Scope | None, s) for s in scopes.values()):
        if scope is None:
            continue
        for access in sorted([*scope.accesses, *augmented.get(scope, ())], key=_where):
            if isinstance(access.node, cst.Name):
                # ``print(e)`` in ``except E as e``: reads the handler's own binding, nothing earlier
                if not _in_handler(names, access.node.value, access.node, positions):
                    _note_access(names, module, scope, access, owner_of(access.node))
    return names


def _except_as_handlers(
    module: cst.Module, text: str, scopes: Mapping[cst.CSTNode, object], positions: Any
) -> dict[str, list[tuple[tuple[int, int], tuple[int, int]]]]:
    """Per name, where the cell's top-level ``except E as name:`` handlers bind it: from the name to
    the handler's end. Python deletes the name when such a handler ends (an implicit ``del name``), so
    what binds the name there (the target, or an assignment in the body) never outlives the handler,
    and what reads it there reads the handler's binding. Handlers in functions and classes are local.
    """
    if "except" not in text:
        return {}
    found: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    for handler in find_all(module, cst.ExceptHandler, cst.ExceptStarHandler):
        assert isinstance(handler, cst.ExceptHandler | cst.ExceptStarHandler)
        target = handler.name.name if handler.name is not None else None
        if not isinstance(target, cst.Name) or not isinstance(scopes.get(target), GlobalScope):
            continue
        start = cast(CodeRange | None, positions.get(target))
        end = cast(CodeRange | None, positions.get(handler))
        if start is not None and end is not None:
            span = ((start.start.line, start.start.column), (end.end.line, end.end.column))
            found.setdefault(target.value, []).append(span)
    return found


def _in_handler(names: _CellNames, name: str, node: cst.CSTNode | None, positions: Any) -> bool:
    """Whether ``node`` (a binding or a read of ``name``) lies in a top-level handler ``except E as name``."""
    spans = names.handlers.get(name)
    where = cast(CodeRange | None, positions.get(node)) if spans and node is not None else None
    if where is None:
        return False
    here = (where.start.line, where.start.column)
    return any(start <= here <= end for start, end in spans or ())


def _note_access(names: _CellNames, module: cst.Module, scope: Scope, access: Any, i: int) -> None:
    """Record a read of a global name by top-level statement ``i`` (``access`` is a LibCST ``Access`` of a
    ``Name``, or an augmented assignment's read)."""
    name = access.node.value
    referents = [r for r in access.referents if r not in names.in_handlers]
    if referents and any(not isinstance(r.scope, GlobalScope | BuiltinScope) for r in referents):
        return  # bound in a function, class or comprehension scope
    global_scope = names.global_scope
    if i >= 0:
        names.free.setdefault(i, set()).add(name)  # every global a def uses, even if bound in the cell
        if scope is not global_scope and not _runs_at_once(scope):
            names.lazy.setdefault(i, set()).add(name)
    first = names.bound_before.get(name)
    if scope is global_scope or _runs_at_once(scope):
        if first is not None and first < i:
            certain = names.certain_before.get(name)
            if (certain is not None and certain < i) or name not in names.earlier:
                return
            if name in names.bound_by.get(i, ()) and referents:
                if not _reads_before_binding(module.body[i]):
                    return  # bound again by this statement first (a loop's target, read in its body)
            # bound by a statement above on some paths only (``if c: x = 1``): the x of a cell above
        if first is not None and first == i and referents:
            # bound earlier inside the same compound statement (loop body, if-branch...)
            if not _reads_before_binding(module.body[i]):
                return
    elif first is not None and first < i:
        return  # a nested scope reading a global bound by an earlier statement of this cell
    elif first is not None and scope is not global_scope:
        # a function reading a global bound later in this cell: resolved at call time, inside the cell
        return
    if i >= 0 and name not in names.reads[i]:
        names.reads[i].append(name)


def _top_statements(
    module: cst.Module,
    positions: Any,
    names: _CellNames,
    qualified: dict[str, str],
    classes: set[str],
    local_exports: Mapping[str, tuple[str, ...]] | None,
) -> tuple[list[TopStatement], dict[str, tuple[str, ...]]]:
    """The cell's top-level statements, and the globals each of its definitions reads (``def_reads``)."""
    statements: list[TopStatement] = []
    def_reads: dict[str, tuple[str, ...]] = {}
    local_imports: dict[str, str] = {}
    for i, stmt in enumerate(module.body):
        kind, binds, import_names, star = _statement_kind(
            stmt, i, names, positions, qualified, local_imports, classes, local_exports
        )
        if kind == "import":
            local_imports.update((b, q.lstrip(".")) for b, q in import_names)
        free = names.free.get(i, set())
        statements.append(
            TopStatement(
                i,
                kind,
                tuple(binds),
                tuple(names.reads[i]),
                _statement_line(positions, stmt),
                tuple(import_names),
                star,
                conditional_import=kind != "import" and bool(import_names),
                uses=tuple(sorted(free)),
                lazy=tuple(sorted(names.lazy.get(i, set()))),
                unbinds=tuple(sorted(names.unbound_by.get(i, set()))),
            )
        )
        if kind in {"def", "class", "alias"}:
            def_reads[binds[0]] = tuple(sorted(free - {binds[0]}))
    return statements, def_reads


def _statement_kind(
    stmt: cst.BaseStatement,
    i: int,
    names: _CellNames,
    positions: Any,
    qualified: dict[str, str],
    local_imports: dict[str, str],
    classes: set[str],
    local_exports: Mapping[str, tuple[str, ...]] | None,
) -> tuple[str, list[str], list[tuple[str, str]], str | None]:
    """What top-level statement ``i`` is (import | def | class | alias | code), the global names it binds, the
    imports it makes, conditional ones included (bound name, qualified name), and the module of a star import
    whose names are unknown."""
    inner = (
        stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 else None
    )
    if isinstance(inner, cst.Import | cst.ImportFrom):
        pairs, star = _import_bindings(inner)
        if star is not None and local_exports is not None and star in local_exports:
            # a local module's star import binds names we can read from its source
            pairs, star = [(n, f"{star}.{n}") for n in local_exports[star]], None
        return "import", [p[0] for p in pairs], pairs, star
    if isinstance(stmt, cst.FunctionDef):
        return "def", [stmt.name.value], [], None
    if isinstance(stmt, cst.ClassDef):
        return "class", [stmt.name.value], [], None
    if (alias := _type_alias(inner, {**qualified, **local_imports}, classes)) is not None:
        # ``Word = str``, ``Chain = List[Word]``: may move to module level like a def
        return "alias", [alias], [], None
    binds: list[str] = []
    global_scope = names.global_scope
    if global_scope is not None:
        binds = sorted(  # bound_by, not a scan of every assignment: quadratic in a big cell
            names.bound_by.get(i, set()),
            key=lambda n: _first_position(global_scope, n, positions),
        )
    conditional = [
        pair
        for imp in find_all(stmt, cst.Import, cst.ImportFrom)
        if isinstance(imp, cst.Import | cst.ImportFrom)
        for pair in _import_bindings(imp)[0]
    ]
    return "code", binds, conditional, None


def _cell_effects(
    module: cst.Module, visitor: _CellVisitor, magic: MagicResult, shadowed: frozenset[str]
) -> set[Effect]:
    """What the cell does: its calls' effects, a shell line, or only showing values."""
    effects = set(visitor.effects)
    if magic.needs_subprocess:
        effects.add(Effect.SHELL)
    # A cell that only shows values (every statement an expression, none a call that does something).
    if module.body and all(_display_only_statement(s, shadowed) for s in module.body):
        effects.add(Effect.DISPLAY)
    return effects


def _cell_summary(
    index: int, statements: list[TopStatement], mutates: Iterable[str], effects: set[Effect]
) -> CellAnalysis:
    """The cell's summary: what it reads from earlier cells, binds, changes in place, imports and defines."""
    reads = list(dict.fromkeys(n for st in statements for n in st.reads))
    writes = list(dict.fromkeys(n for st in statements for n in st.binds))
    imports = [b for st in statements if st.kind == "import" for b in st.binds]
    defines = [b for st in statements if st.kind in {"def", "class"} for b in st.binds]
    return CellAnalysis(
        index=index,
        reads=tuple(reads),
        writes=tuple(writes),
        mutates=tuple(n for n in mutates if n not in imports),
        imports=tuple(imports),
        defines=tuple(defines),
        effects=tuple(sorted(effects, key=lambda e: e.value)),
    )


def _seed_given(node: cst.Call) -> bool:
    """Whether a generator constructor or seed call gets a seed (a first argument or ``seed=`` that is not None)."""
    for arg in node.args:
        if arg.keyword is None or arg.keyword.value in {"seed", "x"}:
            return not (isinstance(arg.value, cst.Name) and arg.value.value == "None")
    return False


def _pca_is_deterministic(node: cst.Call, kwargs: Mapping[str, cst.Arg]) -> bool:
    """``PCA(...)`` that scikit-learn solves by a full SVD, whatever the data: a fraction of variance
    (``PCA(0.95)``), ``'mle'``, no ``n_components``, or ``svd_solver`` 'full' / 'covariance_eigh'. With an int it
    may choose the randomized solver on large data, and 'randomized' / 'arpack' are random."""
    solver = kwargs.get("svd_solver")
    if solver is not None:
        chosen = solver.value.evaluated_value if isinstance(solver.value, cst.SimpleString) else None
        return chosen in {"full", "covariance_eigh"}
    given = kwargs.get("n_components") or next((a for a in node.args if a.keyword is None), None)
    if given is None:
        return True
    value = given.value
    if isinstance(value, cst.Float):
        return True
    if isinstance(value, cst.SimpleString):
        return value.evaluated_value == "mle"
    return isinstance(value, cst.Name) and value.value == "None"


def _runs_at_once(scope: Scope) -> bool:
    """A list, set or dict comprehension or a class body at the cell's top level: its code runs where it
    stands, so what it reads is read there (a function's or a generator expression's body runs later).
    """
    while isinstance(scope, ComprehensionScope | ClassScope):
        if isinstance(scope, ComprehensionScope) and isinstance(scope.node, cst.GeneratorExp):
            return False
        scope = scope.parent
    return isinstance(scope, GlobalScope)


def _walrus_in_comprehensions(
    module: cst.Module, text: str, scopes: Mapping[cst.CSTNode, object]
) -> list[BaseAssignment]:
    """``(last := v)`` inside a comprehension binds ``last`` in the scope around it (PEP 572): at the cell's
    top level, a global of the notebook. LibCST puts the binding in the comprehension's scope."""
    if ":=" not in text:
        return []
    targets = {
        id(n.target) for n in find_all(module, cst.NamedExpr) if isinstance(n, cst.NamedExpr)
    }
    found: list[BaseAssignment] = []
    for scope in dict.fromkeys(s for s in scopes.values() if isinstance(s, ComprehensionScope)):
        outer: Scope = scope
        while isinstance(outer, ComprehensionScope):
            outer = outer.parent
        if isinstance(outer, GlobalScope):
            found += [a for a in scope.assignments if id(_assigned_node(a)) in targets]
    return found


@dataclass(frozen=True)
class _AugmentedRead:
    """The read an augmented assignment ``y += 1`` makes of its target (LibCST records only the binding)."""

    node: cst.Name
    referents: tuple[BaseAssignment, ...]  # the bindings of the name in the cell before it


def _augmented_reads(
    module: cst.Module,
    text: str,
    scopes: Mapping[cst.CSTNode, Scope | None],
    global_scope: GlobalScope | None,
    positions: Any,
) -> dict[Scope, list[_AugmentedRead]]:
    """Per scope, the reads of global names that ``name op= value`` makes (at the top level, or in a function
    that declares the name ``global``): ``y += 1`` reads ``y`` before it binds it."""
    if global_scope is None or "=" not in text:
        return {}
    found: dict[Scope, list[_AugmentedRead]] = {}
    for node in find_all(module, cst.AugAssign):
        if not isinstance(node, cst.AugAssign) or not isinstance(node.target, cst.Name):
            continue
        target = node.target
        bindings = [
            a for a in global_scope.assignments[target.value] if _assigned_node(a) is not None
        ]
        if not any(_assigned_node(a) is target for a in bindings):
            continue  # a local of a function or class: nothing global is read
        scope = scopes.get(target)
        where = positions.get(target)
        if scope is None or where is None:
            continue
        here = (where.start.line, where.start.column)
        earlier = tuple(
            a
            for a in bindings
            if (pos := positions.get(_assigned_node(a))) is not None
            and (pos.start.line, pos.start.column) < here
        )
        found.setdefault(scope, []).append(_AugmentedRead(target, earlier))
    return found


def _assigned_node(assignment: BaseAssignment) -> cst.CSTNode | None:
    """The node that binds a name (builtins have none)."""
    node = getattr(assignment, "node", None)
    return node if isinstance(node, cst.CSTNode) else None


def _first_position(scope: GlobalScope, name: str, positions: Any) -> tuple[int, int]:
    best = (10**9, 0)
    for a in scope.assignments[name]:  # by name: scanning every assignment is quadratic in a big cell
        pos = positions.get(_assigned_node(a))
        if pos is not None:
            best = min(best, (pos.start.line, pos.start.column))
    return best


def _reads_before_binding(stmt: cst.BaseStatement) -> bool:
    """Whether ``stmt`` is a one-line assignment, where every read runs before the targets are bound.

    ``x = f(x)`` reads the x of an earlier cell; a read after a binding inside a loop body or a branch of the same
    compound statement does not.
    """
    if not isinstance(stmt, cst.SimpleStatementLine):
        return False
    for small in stmt.body:
        if isinstance(small, cst.Assign | cst.AugAssign | cst.AnnAssign):
            return True
    return False


_DISPLAY_METHODS = frozenset(
    {
        # read-only methods of frames, series and arrays (with inplace=True they change their receiver:
        # is_display_expression refuses those calls)
        "any",
        "all",
        "toarray",
        "todense",
        "sort_values",
        "sort_index",
        "nlargest",
        "nsmallest",
        "idxmax",
        "idxmin",
        "argmax",
        "argmin",
        "quantile",
        "select_dtypes",
        "isin",
        "duplicated",
        "tolist",
        "to_list",
        "to_numpy",
        "groupby",
        "agg",
        "aggregate",
        "transpose",
        "cumsum",
        "head",
        "tail",
        "describe",
        "info",
        "sample",
        "shape",
        "dtypes",
        "columns",
        "value_counts",
        "nunique",
        "unique",
        "isnull",
        "isna",
        "notnull",
        "notna",
        "sum",
        "mean",
        "median",
        "std",
        "var",
        "min",
        "max",
        "count",
        "corr",
        "cov",
        "to_frame",
        "keys",
        "values",
        "items",
        "round",
        "abs",
        "memory_usage",
        "show",
        "_repr_html_",
        "style",
    }
)


def _display_only_statement(stmt: cst.BaseStatement, shadowed: frozenset[str] = frozenset()) -> bool:
    if not isinstance(stmt, cst.SimpleStatementLine):
        return False
    return all(isinstance(s, cst.Expr) and is_display_expression(s.value, shadowed) for s in stmt.body)


_DISPLAY_FUNCTIONS = frozenset({"display", "type", "len", "repr", "dir", "id", "help", "vars"})


def is_display_expression(expr: cst.BaseExpression, shadowed: frozenset[str] = frozenset()) -> bool:
    """An expression statement whose only effect is to show a value: it can be dropped without changing results.

    Names, attributes, subscripts, literals, arithmetic and comparisons of those, and calls of well-known
    read-only methods (``df.head()``, ``s.describe()``) qualify; any other call might change state and is kept,
    and so is a call of a showing function the notebook defines or imports itself (``shadowed``).
    """

    def pure(node: cst.BaseExpression) -> bool:
        return is_display_expression(node, shadowed)

    if isinstance(expr, cst.Name | cst.BaseNumber | cst.BaseString | cst.Ellipsis):
        return True
    if isinstance(expr, cst.Attribute):
        return pure(expr.value)
    if isinstance(expr, cst.Subscript):
        return pure(expr.value) and all(_pure_slice(e.slice) for e in expr.slice)
    if isinstance(expr, cst.Tuple | cst.List | cst.Set):
        return all(pure(e.value) for e in expr.elements)
    if isinstance(expr, cst.BinaryOperation):
        return pure(expr.left) and pure(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return pure(expr.expression)
    if isinstance(expr, cst.Comparison):
        return pure(expr.left) and all(pure(c.comparator) for c in expr.comparisons)
    if isinstance(expr, cst.Call):
        func = expr.func
        if any(a.keyword is not None and a.keyword.value == "inplace" for a in expr.args):
            return False
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in _DISPLAY_METHODS
            and func.attr.value != "show"
        ):
            return pure(func.value) and all(pure(a.value) for a in expr.args)
        if isinstance(func, cst.Name) and func.value in _DISPLAY_FUNCTIONS - shadowed:
            return all(pure(a.value) for a in expr.args)
    return False


def _pure_slice(part: cst.BaseSlice) -> bool:
    if isinstance(part, cst.Index):
        return is_display_expression(part.value)
    if isinstance(part, cst.Slice):
        return all(
            is_display_expression(x) for x in (part.lower, part.upper, part.step) if x is not None
        )
    return False


@dataclass(frozen=True)
class FullAnalysis(Analysis):
    """``Analysis`` plus the per-cell internals the plan and transform stages use (not serialised)."""

    facts: NotebookFacts | None = None


def analyse(nb: Notebook, *, settings: Settings) -> FullAnalysis:
    """Analyse every code cell top to bottom; build the cross-cell def/use findings."""
    qualified: dict[str, str] = {}
    import_seen: dict[str, str] = {}
    conflicts: set[str] = set()
    summaries: list[CellAnalysis] = []
    facts: dict[int, CellFacts] = {}
    findings: list[Finding] = []
    seeded = False
    defined: set[str] = set()
    codes = _redefine_late_readers(nb, _name_last_results(nb))
    shadowed = rebound_showing_names(codes.values())
    star_seen = False
    known_types: set[str] = set()
    undefined: list[tuple[bool, Finding, str]] = []
    magics: dict[str, UserMagic] = {}
    local_exports = module_exports(nb.local_modules)
    for cell in nb.code_cells:
        if not cell.code.strip():
            continue
        if "_magic" in codes[cell.index]:
            magics.update(user_magics(codes[cell.index]))
        summary, cell_facts, cell_findings, seeded = analyse_cell(
            cell.index,
            codes[cell.index],
            qualified,
            seeded,
            known_types,
            magics,
            shadowed,
            local_exports,
            defined,
        )
        summaries.append(summary)
        facts[cell.index] = cell_facts
        findings.extend(cell_findings)
        conflicts |= _import_conflicts(cell_facts, import_seen)
        star_seen = star_seen or any(st.star_import for st in cell_facts.statements)
        history, unbound = _read_findings(summary, cell_facts, defined)
        findings += history
        undefined += [(star_seen, f, name) for f, name in unbound]
        defined.update(summary.writes)
        findings.extend(_secret_finding(site) for site in cell_facts.secrets)
        findings += _absolute_path_findings(cell.index, cell_facts)
    # After a star import, a name no cell ever binds may well come from it (NBH601 says so once); a name a
    # later cell binds is used before its definition either way.
    findings.extend(f for after_star, f, name in undefined if not after_star or name in defined)
    findings.extend(_execution_order_findings(nb))
    nb_facts = NotebookFacts(facts, dict(qualified), frozenset(conflicts), shadowed)
    # a message may quote code (a magic line, a path): never a secret's value
    values = secret_values(s for cf in facts.values() for s in cf.secrets)
    if values:
        findings = [dataclasses.replace(f, message=redact(f.message, values)) for f in findings]
    return FullAnalysis(nb, tuple(summaries), tuple(_dedupe(findings)), nb_facts)


def _import_conflicts(cell_facts: CellFacts, import_seen: dict[str, str]) -> set[str]:
    """The names this cell imports from somewhere else than an earlier import of the same name did.
    ``import_seen`` (name -> what it was last imported as) is updated."""
    conflicts: set[str] = set()
    for st in cell_facts.statements:
        for bound, qname in st.import_names:
            if import_seen.get(bound, qname) != qname:
                conflicts.add(bound)
            import_seen[bound] = qname
    return conflicts


def _read_findings(
    summary: CellAnalysis, cell_facts: CellFacts, defined: set[str]
) -> tuple[list[Finding], list[tuple[Finding, str]]]:
    """For the names a cell reads that no cell above defines: NBH106 for the output history (``_``, ``Out``),
    and NBH101 with the name for the others (kept or not once every cell is known)."""
    history: list[Finding] = []
    unbound: list[tuple[Finding, str]] = []
    for name in summary.reads:
        if name in defined or name in BUILTINS:
            continue
        span = _span_of(cell_facts, name)
        if OUTPUT_HISTORY.match(name):
            history.append(
                Finding(
                    "NBH106",
                    f"'{name}' refers to the notebook's output history",
                    span,
                    Severity.WARNING,
                )
            )
            continue
        unbound.append(
            (
                Finding(
                    "NBH101",
                    f"'{name}' is used before any cell above defines it",
                    span,
                    Severity.WARNING,
                ),
                name,
            )
        )
    return history, unbound


def _absolute_path_findings(index: int, cell_facts: CellFacts) -> list[Finding]:
    """NBH202 for each absolute path literal of the cell (a secret is NBH201, from the secret scan)."""
    findings: list[Finding] = []
    for value, line, col, context in cell_facts.literals:
        if is_secret_literal(context, value):
            continue  # NBH201, from the secret scan
        if looks_like_path(value) and (
            value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:\\", value)
        ):
            findings.append(
                Finding(
                    "NBH202",
                    f"absolute path '{value}' only exists on one machine",
                    Span(index, line, col),
                    Severity.WARNING,
                )
            )
    return findings


def _secret_finding(site: Site) -> Finding:
    """NBH201 for one hard-coded secret: where it is and what kind, never its value."""
    where = f" in '{site.context}'" if site.context else ""
    kind = f" ({site.description})" if site.kind != "named" else ""
    if site.in_comment:
        return Finding(
            "NBH201",
            f"hard-coded secret{kind} in a comment; it is removed from the generated code",
            Span(site.cell, site.line, site.col),
            Severity.ERROR,
            Fix.SAFE,
        )
    return Finding(
        "NBH201",
        f"hard-coded secret{where}{kind}; it becomes a SecretStr Config field read from the "
        "environment",
        Span(site.cell, site.line, site.col),
        Severity.ERROR,
        Fix.SAFE,
    )


def _redefine_late_readers(nb: Notebook, codes: dict[int, str]) -> dict[int, str]:
    """Code per cell, with the functions that call a redefined function defined again after it.

    A notebook's functions look their globals up when they run: after cell 36 redefines ``eval``, the
    ``batch`` that cell 20 defined calls the new ``eval``. A step's functions are closures over what the step
    was given, so the generated ``batch`` would go on calling the old one. When a cell redefines a function or
    class ``g`` with ``def``/``class``, every function or class an earlier cell defined that reads ``g``
    (directly, or through another one of them), and that this cell or a later one uses, is defined again right
    after, copied from its cell with a comment saying why. The code then runs as it did in the notebook.

    The copies go at the end of the cell, so that its lines keep their numbers, unless the rest of the cell
    after the redefinition uses them: then they go right after it, and the lines below move down.
    """
    trees: dict[int, ast.Module] = {}
    for cell in nb.code_cells:
        if "def " in codes[cell.index] or "class " in codes[cell.index]:
            tree = _parsed(codes[cell.index])
            if tree is not None:
                trees[cell.index] = tree
    if len(trees) < 2:
        return codes
    later_loads = _later_loads(nb, codes, trees)
    # name -> (cell, source of the def or class, the global names it reads)
    defined: dict[str, tuple[int, str, set[str]]] = {}
    out = dict(codes)
    for cell in nb.code_cells:
        tree = trees.get(cell.index)
        if tree is None:
            continue
        lines = codes[cell.index].splitlines(keepends=True)
        here = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
        # every name the cell binds again (a def inside an if, an assignment, an import, a del...): what an
        # earlier cell defined under it is no longer what the notebook calls, so it is never copied back
        bound_here = _bound_in_module_scope(tree)
        redefined = {n.name for n in here if n.name in defined}
        stale = _stale(defined, redefined, bound_here)
        readers = [
            name
            for name in defined  # in the order the notebook defined them
            if name in stale and name not in redefined and name in later_loads[cell.index]
        ] if redefined else []
        for name in bound_here:
            defined.pop(name, None)
        for node in here:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            source = _copy_source(node, lines[first - 1 : node.end_lineno], first)
            defined.pop(node.name, None)
            defined[node.name] = (cell.index, source, _global_reads(node))
        if not readers:
            continue
        copies = []
        for name in readers:
            origin, source, reads = defined[name]
            why = ", ".join(sorted(reads & (stale - {name})))
            copies.append(
                f"\n\n# {name} again, as cell {origin} defined it: it calls {why}, redefined above\n{source.rstrip()}\n"
            )
            defined.pop(name)
            defined[name] = (cell.index, source, reads)
        out[cell.index] = _with_copies(lines, tree, redefined, readers, "".join(copies))
    return out


def _copy_source(node: ast.stmt, lines: list[str], first: int) -> str:
    """The source of a definition to copy after a redefinition: its text, with each default value that reads a
    name replaced by the value the first definition stored (``f.__defaults__[0]``). A copy evaluates its
    defaults again, where a later cell may have bound those names to something else (found by the
    differential tester's long run: ``def f(k=a)`` copied after ``a`` became a dict made ``f()`` add a dict)."""
    text = "".join(lines)
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.decorator_list:
        return text
    args = node.args
    replaced: list[tuple[ast.expr, str]] = []
    for j, default in enumerate(args.defaults):
        replaced.append((default, f"{node.name}.__defaults__[{j}]"))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if kw_default is not None:
            replaced.append((kw_default, f"{node.name}.__kwdefaults__[{arg.arg!r}]"))
    out = lines[:]
    for expr, value in sorted(replaced, key=lambda r: (r[0].lineno, r[0].col_offset), reverse=True):
        if not any(isinstance(n, ast.Name) for n in ast.walk(expr)) or expr.end_lineno is None:
            continue
        start, end = expr.lineno - first, expr.end_lineno - first
        if start != end:  # a default spanning lines: kept as it is
            continue
        line = out[start].encode("utf-8")
        out[start] = (
            line[: expr.col_offset].decode("utf-8") + value + line[expr.end_col_offset :].decode("utf-8")
        )
    return "".join(out)


def _parsed(code: str) -> ast.Module | None:
    """The cell's ``ast`` module, or None when Python cannot parse it."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _later_loads(nb: Notebook, codes: dict[int, str], trees: dict[int, ast.Module]) -> dict[int, set[str]]:
    """Cell -> the names it and every later cell load."""
    later_loads: dict[int, set[str]] = {}
    seen: set[str] = set()
    for cell in reversed(nb.code_cells):
        tree = trees.get(cell.index) or _parsed(codes[cell.index]) or ast.Module(body=[], type_ignores=[])
        seen |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        later_loads[cell.index] = set(seen)
    return later_loads


def _stale(
    defined: dict[str, tuple[int, str, set[str]]], redefined: set[str], bound_here: set[str]
) -> set[str]:
    """The redefined names and every definition that reads one of them, directly or through another one
    (except those the cell binds again itself)."""
    stale = set(redefined)
    changed = bool(redefined)
    while changed:
        changed = False
        for name, (_, _, reads) in defined.items():
            if name not in stale and name not in bound_here and reads & stale:
                stale.add(name)
                changed = True
    return stale


def _with_copies(
    lines: list[str], tree: ast.Module, redefined: set[str], readers: list[str], copies: str
) -> str:
    """The cell's code with ``copies`` (the readers defined again) inserted.

    At the end of the cell, so that every line of it keeps its number (findings point at them); right after
    the last redefinition when the rest of the cell calls one of them (its lines then move down)."""
    last = max(
        n.end_lineno or n.lineno
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n.name in redefined
    )
    rest = [n for n in tree.body if n.lineno > last]
    calls = {m.id for n in rest for m in ast.walk(n) if isinstance(m, ast.Name)}
    if not calls & set(readers):
        last = len(lines)
    head, tail = "".join(lines[:last]).rstrip(), "".join(lines[last:])
    return head + copies + ("\n" + tail if tail.strip() else "")


def _global_reads(node: ast.AST) -> set[str]:
    """The names a def or class reads that it does not bind itself (parameters, assignments in it)."""
    loads: set[str] = set()
    bound: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            (loads if isinstance(child.ctx, ast.Load) else bound).add(child.id)
        elif isinstance(child, ast.arg):
            bound.add(child.arg)
    return loads - bound


_UNDERSCORE = re.compile(r"(?<![\w.])_(?!\w)")
_NONE_CALLS = {"print", "display", "exec", "setattr", "delattr"}


#: Functions whose call only shows a value: print, display, ... (unless the notebook binds the name itself).
SHOWING_NAMES = frozenset({"print", "pprint"}) | _DISPLAY_FUNCTIONS
#: Imports that bind a showing name to the function it already is.
_SAME_SHOWING = frozenset(
    {
        "IPython.display.display",
        "IPython.core.display.display",
        "IPython.core.display_functions.display",
        "pprint.pprint",
    }
)


def rebound_showing_names(codes: Iterable[str]) -> frozenset[str]:
    """The showing functions (``SHOWING_NAMES``) the notebook binds itself at any cell's top level: ``def display``,
    ``from rich import print``, ``print = logger.info``. Their calls do the notebook's own work and stay."""
    bound: set[str] = set()
    for code in codes:
        if not any(name in code for name in SHOWING_NAMES):
            continue
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for stmt in tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(stmt.name)
            elif isinstance(stmt, ast.Import | ast.ImportFrom):
                module = stmt.module if isinstance(stmt, ast.ImportFrom) else None
                for alias in stmt.names:
                    name = alias.asname or alias.name.split(".")[0]
                    if f"{module}.{alias.name}" not in _SAME_SHOWING:
                        bound.add(name)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                bound |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return frozenset(bound & SHOWING_NAMES)


def _name_last_results(nb: Notebook) -> dict[int, str]:
    """Code per cell, with ``_`` (IPython's last result) made explicit.

    A cell that reads ``_`` sees the value of the last expression an earlier cell showed. That earlier cell's final
    expression becomes ``_ = <expression>``, so the value flows like any other variable.
    """
    codes = {c.index: c.code for c in nb.code_cells}
    if not any(_UNDERSCORE.search(code) for code in codes.values()):
        return codes
    last_shown: int | None = None
    assigned = False
    magics: dict[str, UserMagic] = {}
    for cell in nb.code_cells:
        try:
            tree = ast.parse(cell.code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        if "_magic" in cell.code:
            magics.update(user_magics(cell.code))
        names = list(_module_level_names(tree))
        loads = any(n.id == "_" and isinstance(n.ctx, ast.Load) for n in names)
        stores = any(n.id == "_" and isinstance(n.ctx, ast.Store) for n in names)
        if loads and not assigned and last_shown is not None:
            prev = codes[last_shown]
            prev_tree = ast.parse(prev)
            last = prev_tree.body[-1]
            lines = prev.splitlines(keepends=True)
            line = lines[last.lineno - 1]
            lines[last.lineno - 1] = line[: last.col_offset] + "_ = " + line[last.col_offset :]
            codes[last_shown] = "".join(lines)
            assigned = True  # one producer: later reads see the same name
        if stores:
            assigned = True
        body = tree.body
        if (
            body
            and isinstance(body[-1], ast.Expr)
            and not _returns_none(body[-1].value, magics)
            and not assigned
        ):
            last_shown = cell.index
    return codes


def _bound_in_module_scope(tree: ast.Module) -> set[str]:
    """Every name the module's own scope binds or deletes: assignment and loop targets, ``def`` and ``class``
    at any depth of its ``if``/``for``/``try``/``with``/``match`` blocks, imports, ``except ... as``, match
    captures, ``del`` (not inside functions, classes, lambdas or comprehensions)."""
    names = {n.id for n in _module_level_names(tree) if isinstance(n.ctx, ast.Store | ast.Del)}
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {a.asname or a.name.split(".")[0] for a in node.names if a.name != "*"}
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
                stack.append(child)
    return names


def _module_level_names(node: ast.AST) -> list[ast.Name]:
    """Names in the module's own scope (not inside functions, lambdas, classes or comprehensions)."""
    found: list[ast.Name] = []
    stack = [node]
    scoped = (
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.Lambda,
        ast.ClassDef,
        ast.ListComp,
        ast.SetComp,
        ast.DictComp,
        ast.GeneratorExp,
    )
    while stack:
        current = stack.pop()
        for child in ast.iter_child_nodes(current):
            if isinstance(child, ast.Name):
                found.append(child)
            if not isinstance(child, scoped):
                stack.append(child)
    return found


def _returns_none(expr: ast.expr, magics: Mapping[str, UserMagic] | None = None) -> bool:
    if isinstance(expr, ast.Call):
        func = expr.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in {"run_line_magic", "run_cell_magic"}
            and expr.args
            and isinstance(expr.args[0], ast.Constant)
            and expr.args[0].value in (magics or {})
        ):
            return False  # a magic the notebook defined: its function's value is shown
        name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            else ""
        )
        text = ast.unparse(func) if not isinstance(func, ast.Name) else name
        return name in _NONE_CALLS or "get_ipython" in text or text.startswith(("plt.", "pyplot."))
    return False


def _span_of(facts: CellFacts, name: str) -> Span:
    for st in facts.statements:
        if name in st.reads:
            return Span(facts.index, st.line, 1)
    return Span(facts.index, 1, 1)


def _execution_order_findings(nb: Notebook) -> list[Finding]:
    findings: list[Finding] = []
    counts = [(c.index, c.execution_count) for c in nb.code_cells if c.code.strip()]
    ran = [(i, n) for i, n in counts if n is not None]
    ran_counts: list[tuple[int, int]] = [(i, n) for i, n in ran if n is not None]
    previous: int | None = None
    for index, count in ran_counts:
        if previous is not None and count < previous:
            findings.append(
                Finding(
                    "NBH102",
                    f"execution count {count} after {previous}: cells ran out of order, "
                    "the saved outputs may depend on hidden state",
                    Span(index, 1, 1),
                )
            )
            break
        previous = count
    if ran and len(ran) < len(counts):
        for index, never in counts:
            if never is None:
                findings.append(
                    Finding(
                        "NBH103",
                        "this cell was never run while others were",
                        Span(index, 1, 1),
                        Severity.INFO,
                    )
                )
    return findings


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, Span | None]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.code, f.message, f.span)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
