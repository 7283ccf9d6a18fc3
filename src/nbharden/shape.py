"""Shape the steps like an engineer would: where they start, what they are called, what their docstring says.

``sections(analysis, code_cells)`` cuts the notebook into steps:

- any heading starts a section: Markdown ``#``..``######`` (ATX or setext), HTML ``<h1>``..``<h6>``, a bold first
  line (``**Outlier removal**``), or a ``step:<name>`` cell tag;
- inside a section without a heading (or a whole notebook without any), cells join the step whose data flow they
  continue; a read, a fit, an evaluation, a save and a figure-only cell start a step of their own kind, so a long
  notebook becomes a handful of steps, not one per cell;
- a giant headed section (several of: a read, a fit, an evaluation) is split the same way;
- a step is named after its heading, else the first comment line of its first cell, else what it does
  (``load_<source>``, ``train_<estimator>``, ``evaluate``, ``plot_<what>``, ``save_<what>``, ``clean_<frame>``),
  else the explanatory markdown above it, else what it produces; ``cell_N`` only when nothing applies;
- its docstring is the first paragraph of the markdown above it (the author's explanation).

Names are shortened at word boundaries, without stop words, to about 30 characters (``short_name``).
"""

from __future__ import annotations

import ast
import html
import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst

from nbharden.analyse import BUILTINS, FullAnalysis, qualify
from nbharden.models import Cell, CellAnalysis, Effect

#: About this long at most: names are cut at word boundaries, never inside a word.
NAME_LIMIT = 30

STOP_WORDS = frozenset(
    """a an the of to and or for in on at by with from into onto as is are was were be been being this that
    these those it its we our us you your i my me let lets let's now then here there so just some any which
    what how do does did can could will would should shall may might also very about
    """.split()
)

#: Kinds of cells, by what they do. The first four start a step of their own (``BOUNDARIES``).
LOAD, TRAIN, EVALUATE, SAVE, PLOT, PREP = "load", "train", "evaluate", "save", "plot", "prep"
BOUNDARIES = (LOAD, TRAIN, EVALUATE, SAVE)

_ATX = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_SETEXT = re.compile(r"^\s{0,3}(\S.*?)\s*\n\s{0,3}(=+|-+)\s*$", re.M)
_HTML_HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", re.I | re.S)
_BOLD_LINE = re.compile(r"^\s*(\*\*|__)(?P<text>[^*_\n].*?)(\*\*|__)\s*:?\s*$")
_TAG = re.compile(r"<[^>]+>")
_LEADING_NUMBER = re.compile(
    r"^\s*(?:(?:step|part|section|chapter)\s+)?(?:\d{1,2}(?:\.\d+)*[.):]?|[ivx]+[.):])\s+", re.I
)

_READER = re.compile(
    r"^(pandas\.read_\w+|numpy\.(load|loadtxt|genfromtxt|fromfile)|json\.load|pickle\.load|joblib\.load|"
    r"scipy\.io\.loadmat|PIL\.Image\.open|matplotlib\.image\.imread|sklearn\.datasets\.(load|fetch)_\w+|"
    r"seaborn\.load_dataset|open)$"
)
_WRITER_FUNCTION = re.compile(
    r"^(numpy\.(save|savez|savez_compressed|savetxt)|json\.dump|pickle\.dump|joblib\.dump)$"
)
_WRITER_METHOD = {
    "to_csv",
    "to_parquet",
    "to_excel",
    "to_json",
    "to_pickle",
    "to_feather",
    "to_hdf",
    "save_model",
    "save",
}
_METRIC = re.compile(
    r"^sklearn\.(metrics\.\w+|model_selection\.(cross_val_score|cross_validate|cross_val_predict))$"
)
_METRIC_METHOD = {"score", "predict", "predict_proba", "decision_function", "evaluate", "summary"}
_TRANSFORMER = re.compile(
    r"(Scaler|Encoder|Imputer|Vectorizer|Transformer|PCA|SVD|Binarizer|Normalizer|PolynomialFeatures|"
    r"Selector|SelectKBest|Discretizer)$"
)
_SEARCH = re.compile(
    r"(GridSearchCV|RandomizedSearchCV|HalvingGridSearchCV|HalvingRandomSearchCV)$"
)
_CLEAN_METHOD = {"dropna", "fillna", "drop_duplicates", "interpolate"}
_PLOT_MODULES = ("matplotlib.", "seaborn.", "pylab.", "plotly.")
_TITLE_METHODS = {"title", "set_title", "suptitle"}
_PLOT_METHODS = {"plot", "hist", "scatter", "boxplot", "bar", "barh", "imshow", *_TITLE_METHODS}
_PATH_WORDS = {"path", "file", "filename", "url", "dir", "folder", "fname", "fp"}


@dataclass(frozen=True)
class Section:
    """One step-to-be: its cells, the name it gets and the markdown that becomes its docstring."""

    title: str  # the heading as written, "" when the step has none
    name: str  # an identifier (not yet made unique)
    doc: str  # first paragraph of the markdown above it
    cells: tuple[int, ...]
    named_by: str  # heading | tag | comment | action | prose | data | cell


@dataclass(frozen=True)
class Flow:
    """The data flow of one cell's code (what stays in a step function): names it reads, binds and changes.

    ``reads`` counts only names some cell's code binds (not imports, moved functions or Config fields).
    """

    reads: frozenset[str]
    binds: tuple[str, ...]
    mutates: frozenset[str]


@dataclass
class CellActions:
    """What one code cell does, for grouping and naming."""

    kind: str = PREP
    load: list[str] = field(default_factory=list)  # source hints
    train: list[str] = field(default_factory=list)  # estimator hints
    tune: list[str] = field(default_factory=list)
    evaluate: list[str] = field(default_factory=list)  # model names
    save: list[str] = field(default_factory=list)
    plot: list[str] = field(default_factory=list)  # titles, columns, names
    clean: list[str] = field(default_factory=list)
    prepare: list[str] = field(default_factory=list)  # split_data, prepare_features
    plot_binds: set[str] = field(default_factory=set)
    loop_targets: set[str] = field(default_factory=set)


# --- text ---------------------------------------------------------------------------------------


def _plain(text: str, marks: str = "") -> str:
    """Markdown/HTML inline text as plain words: tags, images, links, emphasis and code marks replaced by
    ``marks``."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = html.unescape(_TAG.sub(" ", text))
    text = re.sub(r"(\*\*|__|\*|`)", marks, text)
    return " ".join(text.split())


def heading_of(cell: Cell) -> str | None:
    """The heading a markdown cell carries (the last one, closest to the code below), else None."""
    if cell.cell_type != "markdown":
        return None
    found: list[tuple[int, str]] = [(m.start(), m.group(1)) for m in _ATX.finditer(cell.source)]
    found += [(m.start(), m.group(2)) for m in _HTML_HEADING.finditer(cell.source)]
    found += [
        (m.start(), m.group(1))
        for m in _SETEXT.finditer(cell.source)
        if not m.group(1).startswith(("#", "<", "|", "-", "*"))
    ]
    first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
    bold = _BOLD_LINE.match(first)
    if bold:
        found.append((cell.source.find(first), bold.group("text")))
    for _, raw in sorted(found, reverse=True):
        text = _plain(raw).strip(" :.-")
        if re.search(r"[A-Za-z0-9]", text):
            return text
    return None


def prose_of(cell: Cell) -> str:
    """The first paragraph of a markdown cell's prose (headings, code blocks, tables and images left out)."""
    if cell.cell_type != "markdown":
        return ""
    text = re.sub(r"```.*?(```|$)", "\n\n", cell.source, flags=re.S)
    text = _HTML_HEADING.sub("\n\n", text)
    text = re.sub(r"<(p|br|div)\b[^>]*>", "\n\n", text, flags=re.I)
    paragraphs = re.split(r"\n\s*\n", text)
    for para in paragraphs:
        lines = [
            ln
            for ln in para.splitlines()
            if ln.strip()
            and not _ATX.match(ln)
            and not re.match(r"^\s*(\||=+\s*$|-+\s*$|\$\$)", ln)
            and not _BOLD_LINE.match(ln)
        ]
        plain = _plain(" ".join(lines)).lstrip("-*> ").strip()
        if len(re.findall(r"[A-Za-z]{2,}", plain)) >= 2:
            return _clip(plain, 600)
    return ""


def first_sentence(text: str) -> str:
    """``text`` up to the end of its first sentence (``.``, ``?``, ``!`` or ``:`` before a space)."""
    found = re.search(r"[.?!:](\s|$)", text)
    return text[: found.start() + 1] if found else text


def summary_of(title: str, doc: str, name: str) -> str:
    """The one-line summary of a step: its heading, else the first sentence of the markdown above it when
    short, else what its name says (``train_random_forest`` -> "Train random forest."); "" for ``cell_N``."""
    if title:
        return title.strip().rstrip(".:") + "."
    first = first_sentence(doc.strip())
    if first and len(first) <= 72 and first[-1] in ".?!" and _says(first, name):
        return first
    if re.fullmatch(r"cell_\d+", name):
        return ""
    return name.replace("_", " ").capitalize() + "."


def _says(sentence: str, name: str) -> bool:
    """Whether every word of the step's name is a word of ``sentence`` (a step named by what it does,
    ``train_ols``, keeps the author's explanation as its docstring's body, not its summary)."""
    words = set(_words(sentence)) | {"check", "step"}
    return all(part in words for part in name.split("_") if part and not part.isdigit())


def _words(text: str) -> list[str]:
    """The lower-case words of ``text``, camelCase split (``KMeans fit`` -> k, means, fit); "let's" is one."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text.replace("'", ""))
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return [w.lower() for w in re.findall(r"[A-Za-z0-9]+", text)]


def _clip(text: str, limit: int) -> str:
    """``text`` cut at the last sentence (else word) end before ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if end > limit // 3:
        return cut[: end + 1]
    return cut.rsplit(" ", 1)[0] + " ..."


def comment_title(cell: Cell) -> str | None:
    """The first line of a code cell when it is a comment in words (``# Train the model``), not code."""
    if cell.cell_type != "code":
        return None
    first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
    if not first.startswith("#") or first.startswith(("#!", "# In[", "# %%", "#%%")):
        return None
    text = first.lstrip("#").strip()
    if re.match(r"^(noqa|type:|fmt:|pylint|-\*-|coding[:=]|todo\b|fixme\b)", text, re.I):
        return None
    words = re.findall(r"[A-Za-z]{2,}", text)
    if not words:
        return None
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text  # words, not code
    single_word = (
        len(tree.body) == 1
        and isinstance(tree.body[0], ast.Expr)
        and isinstance(tree.body[0].value, ast.Name)
    )
    return text if single_word else None


def short_name(text: str, fallback: str = "step", limit: int = NAME_LIMIT) -> str:
    """A readable identifier from free text: stop words out, cut at a word boundary near ``limit`` characters.

    ``'Create an evaluate function to give the score'`` -> ``create_evaluate_function_give``.
    """
    words = _words(_LEADING_NUMBER.sub("", _plain(text, " ")))
    kept = [w for w in words if w not in STOP_WORDS] or words
    if kept and kept[0][0].isdigit() and fallback:
        kept.insert(0, fallback)  # an identifier cannot start with a digit: "2021 results" -> step_2021_results
    name = ""
    for word in kept:
        candidate = f"{name}_{word}" if name else word
        if name and len(candidate) > limit:
            break
        name = candidate
    name = name or fallback
    if name[:1].isdigit():
        name = f"{fallback}_{name}"
    if name == "test" or name.startswith("test_"):  # pytest would take a step function for a test
        name = "check" + name[4:]
    if keyword.iskeyword(name) or name in BUILTINS:
        name += "_"
    return name


def cut_at_word(name: str, limit: int = NAME_LIMIT, fallback: str = "step") -> str:
    """``name`` cut at an underscore before ``limit`` characters (never inside a word)."""
    parts = [p for p in name.split("_") if p]
    out = parts[0] if parts else fallback
    for part in parts[1:]:
        if len(out) + 1 + len(part) > limit:
            break
        out = f"{out}_{part}"
    return out


def _hint(text: str) -> str:
    """An identifier part from a file path, a variable or a class name (``data/titanic.csv`` -> ``titanic``)."""
    stem = re.sub(
        r"\.[A-Za-z0-9]{1,7}$", "", text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    )
    name = short_name(stem, fallback="", limit=24)
    parts = [p for p in name.split("_") if p and p not in _PATH_WORDS]
    return "_".join(parts).strip("_")


# --- what cells do ------------------------------------------------------------------------------


def _class_of(call: cst.Call) -> str | None:
    """The class a constructor call makes: ``RandomForestClassifier(...)``; a pipeline's last step."""
    func = call.func
    name = (
        func.attr.value
        if isinstance(func, cst.Attribute)
        else func.value if isinstance(func, cst.Name) else None
    )
    if name in {"make_pipeline", "Pipeline"}:
        inner = [
            n
            for n in _calls_in(call)
            if n is not call and _class_of(n) not in (None, "make_pipeline", "Pipeline")
        ]
        return _class_of(inner[-1]) if inner else name
    return name


def _calls_in(node: cst.CSTNode) -> list[cst.Call]:
    found: list[cst.Call] = []

    class _V(cst.CSTVisitor):
        def visit_Call(self, n: cst.Call) -> None:
            found.append(n)

    node.visit(_V())
    return found


def _first_string(args: Sequence[cst.Arg]) -> str | None:
    for arg in args:
        if isinstance(arg.value, cst.SimpleString) and isinstance(arg.value.evaluated_value, str):
            return arg.value.evaluated_value
    return None


class _ActionVisitor(cst.CSTVisitor):
    """Collects what a cell's top-level code does (function and class bodies are not the cell's actions)."""

    def __init__(
        self, qualified: dict[str, str], classes: dict[str, str], inner: dict[str, str]
    ) -> None:
        super().__init__()
        self.qualified = qualified
        self.classes = classes  # name -> class of the object last bound to it
        self.inner = inner  # search object -> class of the estimator it tunes
        self.acts = CellActions()
        self._target: list[str | None] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_For(self, node: cst.For) -> None:
        if isinstance(node.target, cst.Name):
            self.acts.loop_targets.add(node.target.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        target = node.targets[0].target if len(node.targets) == 1 else None
        self._target.append(target.value if isinstance(target, cst.Name) else None)
        if isinstance(node.value, cst.Call):
            q = qualify(node.value.func, self.qualified) or ""
            if q.startswith(_PLOT_MODULES) or (
                isinstance(node.value.func, cst.Attribute)
                and node.value.func.attr.value in {"plot", "subplots"}
            ):
                for t in node.targets:
                    for n in _names_of(t.target):
                        self.acts.plot_binds.add(n)

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._target.pop()

    def visit_Call(self, node: cst.Call) -> None:
        q = qualify(node.func, self.qualified) or ""
        method = node.func.attr.value if isinstance(node.func, cst.Attribute) else None
        receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
        target = self._target[-1] if self._target else None
        acts = self.acts
        if _READER.match(q) and not (q == "open" and _writes_mode(node)):
            source = _first_string(node.args)
            acts.load.append(_hint(source) if source else _hint(target or "data"))
        elif _WRITER_FUNCTION.match(q) and node.args:
            first = node.args[0].value
            acts.save.append(first.value if isinstance(first, cst.Name) else "data")
        elif (
            method in _WRITER_METHOD
            and isinstance(receiver, cst.Name)
            and receiver.value not in self.qualified
        ):
            acts.save.append(receiver.value)
        elif _METRIC.match(q):
            acts.evaluate.append("")
        elif method in {"fit", "fit_predict"} and receiver is not None:
            self._fit(receiver)
        elif (
            method in _METRIC_METHOD
            and isinstance(receiver, cst.Name)
            and receiver.value not in self.qualified
        ):
            if method != "summary" or receiver.value in self.classes:
                acts.evaluate.append(receiver.value)
        elif method == "fit_transform" or q.endswith(
            ("get_dummies", "LabelEncoder", "OneHotEncoder")
        ):
            acts.prepare.append("prepare_features")
        elif q.endswith("train_test_split"):
            acts.prepare.append("split_data")
        elif method in _CLEAN_METHOD and isinstance(receiver, cst.Name):
            acts.clean.append(receiver.value)
        if q.startswith(_PLOT_MODULES) or method in _PLOT_METHODS:
            self._plot(node, q, method)

    def _fit(self, receiver: cst.BaseExpression) -> None:
        if isinstance(receiver, cst.Call):
            cls = _class_of(receiver) or "model"
            inner = None
        elif isinstance(receiver, cst.Name):
            cls = self.classes.get(receiver.value, receiver.value)
            inner = self.inner.get(receiver.value)
        else:
            return
        if _TRANSFORMER.search(cls):
            self.acts.prepare.append("prepare_features")
        elif _SEARCH.search(cls):
            self.acts.tune.append(inner or cls)
        else:
            self.acts.train.append(cls)

    def _plot(self, node: cst.Call, q: str, method: str | None) -> None:
        last = q.rsplit(".", 1)[-1]
        kwargs = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
        title = kwargs.get("title")
        if (method in _TITLE_METHODS or last in _TITLE_METHODS) and _first_string(node.args):
            self.acts.plot.insert(0, "title:" + str(_first_string(node.args)))
        elif isinstance(title, cst.SimpleString) and isinstance(title.evaluated_value, str):
            self.acts.plot.insert(0, "title:" + title.evaluated_value)
        for key in ("x", "y", "column"):
            value = kwargs.get(key)
            if isinstance(value, cst.SimpleString) and isinstance(value.evaluated_value, str):
                self.acts.plot.append(value.evaluated_value)
        for arg in node.args:
            value = arg.value
            if isinstance(value, cst.Subscript) and len(value.slice) == 1:
                index = value.slice[0].slice
                if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
                    self.acts.plot.append(str(index.value.evaluated_value))
            elif isinstance(value, cst.Name) and arg.keyword is None:
                self.acts.plot.append(value.value)


def _writes_mode(node: cst.Call) -> bool:
    mode = (
        node.args[1].value
        if len(node.args) > 1
        else next(
            (a.value for a in node.args if a.keyword is not None and a.keyword.value == "mode"),
            None,
        )
    )
    return isinstance(mode, cst.SimpleString) and any(
        c in str(mode.evaluated_value) for c in "wax+"
    )


def _names_of(node: cst.BaseExpression) -> list[str]:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Tuple | cst.List):
        return [n for e in node.elements for n in _names_of(e.value)]
    return []


def remember_classes(module: cst.Module, classes: dict[str, str], inner: dict[str, str]) -> None:
    """Record which class each top-level ``name = Class(...)`` binds (for ``train_<estimator>``)."""
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if not (isinstance(small, cst.Assign) and isinstance(small.value, cst.Call)):
                continue
            cls = _class_of(small.value)
            if not cls or not (cls[0].isupper() or cls in {"make_pipeline"}):
                continue
            for t in small.targets:
                for name in _names_of(t.target):
                    classes[name] = cls
                    if _SEARCH.search(cls) and small.value.args:
                        first = small.value.args[0].value
                        est = _class_of(first) if isinstance(first, cst.Call) else None
                        if isinstance(first, cst.Name):
                            est = classes.get(first.value)
                        if est:
                            inner[name] = est


def cell_actions(analysis: FullAnalysis, flow: dict[int, Flow]) -> dict[int, CellActions]:
    """What each analysed code cell does, and the kind that decides its step (load, train, ...)."""
    facts = analysis.facts
    assert facts is not None
    summaries = {c.index: c for c in analysis.cells}
    empty = Flow(frozenset(), (), frozenset())
    classes: dict[str, str] = {}
    inner: dict[str, str] = {}
    out: dict[int, CellActions] = {}
    for index in sorted(facts.cells):
        module = facts.cells[index].module
        remember_classes(module, classes, inner)
        visitor = _ActionVisitor(facts.qualified, classes, inner)
        module.visit(visitor)
        acts = visitor.acts
        acts.kind = _kind(acts, summaries[index], flow.get(index, empty))
        out[index] = acts
    return out


def _kind(acts: CellActions, summary: CellAnalysis, flow: Flow) -> str:
    if acts.train or acts.tune:
        return TRAIN
    if acts.evaluate:
        return EVALUATE
    if acts.load:
        return LOAD
    if acts.save:
        return SAVE
    loose = set(flow.binds) - acts.plot_binds - acts.loop_targets
    if Effect.PLOT in summary.effects and not loose and not flow.mutates:
        return PLOT
    return PREP


def action_name(acts: list[CellActions], outputs: list[str]) -> tuple[str, str] | None:
    """(name, how) from what a group of cells does: ``load_titanic``, ``train_random_forest``, ``evaluate``..."""
    kinds = [a.kind for a in acts]
    kind = next((k for k in kinds if k in BOUNDARIES), kinds[0] if kinds else PREP)
    merged = CellActions()
    for a in acts:
        for attr in ("load", "train", "tune", "evaluate", "save", "plot", "clean", "prepare"):
            getattr(merged, attr).extend(getattr(a, attr))
    if kind == LOAD:
        return _joined("load", merged.load, "data"), "action"
    if kind == TRAIN:
        if merged.tune:
            return _joined("tune", merged.tune, "model"), "action"
        return _joined("train", merged.train, "model", plural="models"), "action"
    if kind == EVALUATE:
        return "evaluate", "action"
    if kind == SAVE:
        return _joined("save", merged.save, "data"), "action"
    if kind == PLOT:
        return _plot_name(merged.plot), "action"
    if merged.clean:
        return _joined("clean", merged.clean, "data"), "action"
    if merged.prepare:
        return merged.prepare[0], "action"
    named = [o for o in outputs if not o.startswith("_") and o.isidentifier()]
    if named:
        return cut_at_word(f"prepare_{named[0].lower()}"), "data"
    return None


def _joined(verb: str, hints: list[str], default: str, plural: str | None = None) -> str:
    unique = [h for h in dict.fromkeys(_hint(h) for h in hints) if h]
    if not unique:
        return f"{verb}_{default}"
    if len(unique) > 1 and plural:
        return f"{verb}_{plural}"
    return short_name(f"{verb} {unique[0].replace('_', ' ')}", verb)


def _plot_name(hints: list[str]) -> str:
    for hint in hints:
        text = hint[6:] if hint.startswith("title:") else hint
        if re.search(r"[A-Za-z]", text):
            return short_name(f"plot {text}", "plot")
    return "plot"


# --- sections ----------------------------------------------------------------------------------


@dataclass
class _Chunk:
    cells: list[int]
    kind: str
    writes: set[str]
    title: str = ""
    named_by: str = ""
    prose: str = ""


def _starts_new(chunk: _Chunk, acts: CellActions, flow: Flow) -> bool:
    """Whether a cell starts a new step rather than continuing ``chunk`` (see the module docstring).

    A cell of code that neither reads nor binds data (``os.environ[...] = ...``, a shell command) joins the step
    before it."""
    kind = acts.kind
    flows = bool((flow.reads | flow.mutates) & chunk.writes)
    if kind == PLOT or chunk.kind == PLOT:
        return not (kind == PLOT and chunk.kind == PLOT)
    if kind in BOUNDARIES:
        if chunk.kind == kind:
            return False
        return not (chunk.kind == PREP and flows)
    return not flows and bool(flow.reads or flow.binds)


def _chunks(
    cells: list[int],
    code: set[int],
    acts: dict[int, CellActions],
    flow: dict[int, Flow],
) -> list[_Chunk]:
    chunks: list[_Chunk] = []
    for index in cells:
        if index not in code:
            if chunks:
                chunks[-1].cells.append(index)
            continue
        cell = flow[index]
        if not chunks or _starts_new(chunks[-1], acts[index], cell):
            chunks.append(_Chunk([index], acts[index].kind, set()))
        else:
            chunks[-1].cells.append(index)
            if chunks[-1].kind == PREP and acts[index].kind in BOUNDARIES:
                chunks[-1].kind = acts[index].kind
        chunks[-1].writes |= set(cell.binds) | cell.mutates
    return chunks


@dataclass
class _Headed:
    title: str
    named_by: str
    body: str  # prose of the heading cell
    cells: list[int] = field(default_factory=list)


def _headed(analysis: FullAnalysis) -> tuple[list[_Headed], dict[int, str]]:
    """Sections by headings and tags (the first one untitled), and the prose above each code cell."""
    nb = analysis.notebook
    facts = analysis.facts
    assert facts is not None
    headed = [_Headed("", "", "")]
    prose_above: dict[int, str] = {}
    pending: list[str] = []
    for cell in nb.cells:
        tag = next((t[5:] for t in cell.tags if t.startswith("step:") and len(t) > 5), None)
        title = heading_of(cell)
        if tag or title:
            headed.append(_Headed(tag or title or "", "tag" if tag else "heading", prose_of(cell)))
            pending = []
        elif cell.cell_type == "markdown":
            text = prose_of(cell)
            if text:
                pending.append(text)
        if cell.cell_type == "code" and cell.index in facts.cells:
            headed[-1].cells.append(cell.index)
            if pending:
                prose_above[cell.index] = pending[0]
            pending = []
    return [h for h in headed if h.cells], prose_above


def sections(analysis: FullAnalysis, flow: dict[int, Flow]) -> list[Section]:
    """The steps-to-be of a notebook, in order. ``flow``: the data flow of each cell that keeps code in a step
    function (the others belong to no step)."""
    acts = cell_actions(analysis, flow)
    cells = {c.index: c for c in analysis.notebook.cells}
    out: list[Section] = []
    parts, prose_above = _headed(analysis)
    for part in parts:
        chunks = _chunks(part.cells, set(flow), acts, flow)
        phases = {c.kind for c in chunks if c.kind in (LOAD, TRAIN, EVALUATE)}
        giant = len(phases) >= 2 and sum(1 for i in part.cells if i in flow) >= 4
        if part.named_by == "tag" or (part.title and not giant):
            chunks = [_Chunk(list(part.cells), PREP, set(), part.title, part.named_by)]
        for n, chunk in enumerate(chunks):
            first = next((i for i in chunk.cells if i in flow), chunk.cells[0])
            docs = [prose_above.get(first, "") or (part.body if n == 0 else "")]
            docs += [prose_above[i] for i in chunk.cells if i != first and i in prose_above]
            doc = "\n\n".join(d for d in docs if d)  # the explanation above each of its cells
            out.append(_section(chunk, doc, acts, flow, cells[first]))
    return out


def _section(
    chunk: _Chunk, doc: str, acts: dict[int, CellActions], flow: dict[int, Flow], first: Cell
) -> Section:
    cells = tuple(chunk.cells)
    if chunk.title:
        return Section(chunk.title, short_name(chunk.title), doc, cells, chunk.named_by)
    comment = comment_title(first)
    if comment:
        return Section(comment, short_name(comment), doc, cells, "comment")
    binds = [b for i in chunk.cells if i in flow for b in flow[i].binds]
    named = action_name([acts[i] for i in chunk.cells if i in flow], binds)
    if named is not None and named[1] == "action":
        return Section("", named[0], doc, cells, "action")
    if doc:
        return Section("", short_name(first_sentence(doc)), doc, cells, "prose")
    if named is not None:
        return Section("", named[0], doc, cells, named[1])
    return Section("", f"cell_{first.index}", doc, cells, "cell")
