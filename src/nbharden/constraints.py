"""Validation constraints for Config fields, inferred from how the notebook uses each value.

Only what the notebook shows is inferred, never guessed from a name alone:

- a float passed as ``test_size=``, ``frac=``... (or named like a fraction) whose value lies in (0, 1] must stay
  in (0, 1];
- an int passed as ``n_estimators=``, ``epochs=``... (or named like a count: ``n_rows``, ``num_epochs``) whose
  value is positive must stay positive; a seed must not be negative;
- a path the notebook reads, that exists now and that no cell writes, must exist when the pipeline starts;
- a path the notebook only writes (``joblib.dump(model, "model.joblib")``, ``df.to_csv("out.csv")``) is an
  output: it resolves from ``output_dir``, so a run never writes into the data folder.

Each constraint becomes ``Field(...)`` arguments (or the ``must_exist`` check of the generated Config) and an
NBH205 finding at the line that shows it.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import libcst as cst

from nbharden.analyse import NotebookFacts, looks_like_url
from nbharden.models import ConfigField, Finding, Fix, Severity, Span

_FRACTION_KWARGS = frozenset(
    {"test_size", "train_size", "frac", "validation_split", "subsample", "colsample_bytree",
     "learning_rate", "dropout", "rate", "momentum", "quantile", "q"}
)  # fmt: skip
_FRACTION_NAME = re.compile(
    r"(^|_)(frac|fraction|ratio|test_size|train_size|val_size|valid_size|split|pct|proportion|share)($|_)"
)
_COUNT_KWARGS = frozenset(
    {"n_estimators", "n_clusters", "n_components", "max_iter", "epochs", "batch_size", "n_splits",
     "n_neighbors", "n_init", "n_iter", "num_epochs", "num_boost_round", "n_bins", "bins", "cv", "k",
     "n", "nrows", "num", "maxiter", "steps", "window", "periods"}
)  # fmt: skip
_COUNT_NAME = re.compile(
    r"^(n|num|number|max|min)_\w+|\w+_(count|size|len|length|steps|epochs)$|^(n|k|epochs)$"
)
_SEED_KWARGS = frozenset({"random_state", "seed"})
_SEED_NAME = re.compile(r"(^|_)(seed|random_state)$")
_READS = re.compile(
    r"^(read_\w+|load\w*|imread|loadtxt|genfromtxt|fromfile|read_text|read_bytes|ExcelFile)$"
)
_WRITES = re.compile(r"^(to_\w+|save\w*|savefig|dump|write\w*|imwrite|savetxt|mkdir|touch)$")


#: For a generated test: a value of the right type that breaks each constraint (source text).
BREAKERS = {"gt=0, le=1": "1.5", "gt=0": "0", "ge=0": "-1"}
MISSING_FILE = "'no/such/file.csv'"


def breaking_value(field: ConfigField) -> str | None:
    """Source text of a value that ``field``'s inferred constraint rejects, or None when it has none."""
    return BREAKERS.get(field.constraints) or (MISSING_FILE if field.must_exist else None)


@dataclasses.dataclass
class _Use:
    kind: str  # "kwarg" | "read" | "write"
    detail: str
    cell: int
    line: int


def _func_name(node: cst.Call) -> str:
    func = node.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return ""


def _open_mode(node: cst.Call) -> str:
    for i, arg in enumerate(node.args):
        keyword = arg.keyword.value if arg.keyword else None
        if (keyword == "mode" or (keyword is None and i == 1)) and isinstance(
            arg.value, cst.SimpleString
        ):
            value = arg.value.evaluated_value
            return value if isinstance(value, str) else "r"
    return "r"


class _Uses(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (cst.metadata.PositionProvider,)

    def __init__(self, cell: int) -> None:
        super().__init__()
        self.cell = cell
        self.by_name: dict[str, list[_Use]] = {}
        self.by_literal: dict[str, list[_Use]] = {}

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(cst.metadata.PositionProvider, node).start.line

    def visit_Call(self, node: cst.Call) -> None:
        name = _func_name(node)
        line = self._line(node)
        kind = ""
        if name == "open":
            kind = "write" if any(c in _open_mode(node) for c in "wax+") else "read"
        elif _READS.match(name):
            kind = "read"
        elif _WRITES.match(name):
            kind = "write"
        for i, arg in enumerate(node.args):
            value = arg.value
            if arg.keyword is not None and isinstance(value, cst.Name):
                self.by_name.setdefault(value.value, []).append(
                    _Use("kwarg", arg.keyword.value, self.cell, line)
                )
            if kind and (arg.keyword is None and i == 0 or kind == "write"):
                if isinstance(value, cst.Name):
                    self.by_name.setdefault(value.value, []).append(
                        _Use(kind, name, self.cell, line)
                    )
                elif isinstance(value, cst.SimpleString) and isinstance(value.evaluated_value, str):
                    self.by_literal.setdefault(value.evaluated_value, []).append(
                        _Use(kind, name, self.cell, line)
                    )


def _number(source: str) -> float | None:
    try:
        value = ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def infer_constraints(
    fields: list[ConfigField], facts: NotebookFacts, notebook_dir: Path
) -> tuple[list[ConfigField], list[Finding]]:
    """``fields`` with ``constraints``/``must_exist`` filled in where the notebook shows them, and the findings."""
    by_name, by_literal = _collect_uses(facts)
    # files the notebook writes, by stem: np.save("x", a) writes x.npy, which a later np.load("x.npy") reads; the
    # recording run creates such files, so their existence says nothing (and would change between conversions)
    written_stems = {
        Path(lit).name.split(".")[0]
        for lit, uses in by_literal.items()
        if any(u.kind == "write" for u in uses)
    }
    out: list[ConfigField] = []
    findings: list[Finding] = []
    for f in fields:
        if f.kind not in {"parameter", "constant", "lifted"} or f.secret or f.constraints:
            out.append(f)
            continue
        uses = by_name.get(f.name, []) if f.kind != "lifted" else []
        constraint, bound = _number_constraint(f, uses)
        exists = _must_exist(f, uses, by_literal, notebook_dir, written_stems)
        findings += [found for found in (bound, exists) if found is not None]
        f = dataclasses.replace(f, constraints=constraint, must_exist=exists is not None)
        out.append(_as_output(f) if _only_written(f, uses, by_literal) else f)
    return out, findings


def _only_written(f: ConfigField, uses: list[_Use], by_literal: dict[str, list[_Use]]) -> bool:
    """Whether the notebook writes the file a path field names and never reads it (an output)."""
    if f.annotation not in {"str", "Path"} or not f.literal or looks_like_url(f.literal):
        return False
    io = [u for u in uses + by_literal.get(f.literal, []) if u.kind in {"read", "write"}]
    return bool(io) and all(u.kind == "write" for u in io)


_FROM_DATA_DIR = "; relative to data_dir"


def _as_output(f: ConfigField) -> ConfigField:
    """``f`` as a file the pipeline writes: relative to output_dir (``_lift`` wrote "relative to data_dir")."""
    description = f.description.removesuffix(_FROM_DATA_DIR)
    if description != f.description:
        description += "; relative to output_dir"
    return dataclasses.replace(f, output_file=True, must_exist=False, description=description)


def _collect_uses(facts: NotebookFacts) -> tuple[dict[str, list[_Use]], dict[str, list[_Use]]]:
    """How the notebook uses each name and each string literal, in cell order."""
    by_name: dict[str, list[_Use]] = {}
    by_literal: dict[str, list[_Use]] = {}
    for index in sorted(facts.cells):
        visitor = _Uses(index)
        cf = facts.cells[index]
        if cf.positions:  # resolved by the analysis: not again
            visitor.metadata = {cst.metadata.PositionProvider: cf.positions}
            cf.module.visit(visitor)
        else:
            cst.metadata.MetadataWrapper(cf.module, unsafe_skip_copy=True).visit(visitor)
        for key, uses in visitor.by_name.items():
            by_name.setdefault(key, []).extend(uses)
        for key, uses in visitor.by_literal.items():
            by_literal.setdefault(key, []).extend(uses)
    return by_name, by_literal


def _finding(f: ConfigField, text: str, use: _Use | None) -> Finding:
    """NBH205: the constraint put on ``f``, where the notebook shows it (``use``), else where ``f`` is set."""
    span = Span(use.cell, use.line, 1) if use else Span(f.cell, f.line, 1)
    return Finding("NBH205", f"Config.{f.name} {text}", span, Severity.INFO, Fix.SAFE, applied=True)


def _number_constraint(f: ConfigField, uses: list[_Use]) -> tuple[str, Finding | None]:
    """The bounds of a numeric field passed as, or named as, a fraction, a seed or a count ("" for none)."""
    number = _number(f.default) if f.annotation in {"int", "float"} else None
    if number is None:
        return "", None
    kwargs = [u for u in uses if u.kind == "kwarg"]
    frac_use = next((u for u in kwargs if u.detail in _FRACTION_KWARGS), None)
    count_use = next((u for u in kwargs if u.detail in _COUNT_KWARGS), None)
    seed_use = next((u for u in kwargs if u.detail in _SEED_KWARGS), None)
    if f.annotation == "float" and 0 < number <= 1 and (frac_use or _FRACTION_NAME.search(f.name)):
        shown = f"is passed as {frac_use.detail}=" if frac_use else "is named as a fraction"
        return "gt=0, le=1", _finding(f, f"must be in (0, 1]: it {shown} and is {f.default}", frac_use)
    if f.annotation == "int" and (seed_use or _SEED_NAME.search(f.name)) and number >= 0:
        shown = f"is passed as {seed_use.detail}=" if seed_use else "is a seed"
        return "ge=0", _finding(f, f"must not be negative: it {shown}", seed_use)
    if f.annotation == "int" and number > 0 and (count_use or _COUNT_NAME.search(f.name)):
        shown = f"is passed as {count_use.detail}=" if count_use else "is named as a count"
        return "gt=0", _finding(f, f"must be positive: it {shown} and is {f.default}", count_use)
    return "", None


def _must_exist(
    f: ConfigField,
    uses: list[_Use],
    by_literal: dict[str, list[_Use]],
    notebook_dir: Path,
    written_stems: set[str],
) -> Finding | None:
    """The finding that a path field must exist: the notebook only reads the file, and it exists now."""
    literal = f.literal
    if (
        not literal
        or f.annotation not in {"str", "Path"}
        or looks_like_url(literal)
        or literal.startswith("~")
    ):
        return None
    all_uses = uses + by_literal.get(literal, [])
    reads = [u for u in all_uses if u.kind == "read"]
    writes = [u for u in all_uses if u.kind == "write"]
    target = Path(literal) if Path(literal).is_absolute() else notebook_dir / literal
    try:
        exists = target.exists()
    except OSError:
        exists = False
    if reads and not writes and exists and Path(literal).name.split(".")[0] not in written_stems:
        return _finding(f, f"must exist: the notebook reads it with {reads[0].detail}()", reads[0])
    return None
