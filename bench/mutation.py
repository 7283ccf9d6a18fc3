#!/usr/bin/env python3
"""Mutation check of the generated characterization tests: how many changed steps do they catch?

    python bench/mutation.py [--fixtures] [--corpus [MANIFEST.tsv]] [--split dev] [--slugs S ...]
        [--limit N] [--cap 30] [--seed 0] [--python PY] [--nbharden CMD] [--kernel-path DIR]

For each notebook: copy its folder to a temporary folder, ``nbharden convert NB --out OUT --no-verify``
(recording on: the notebook runs with papermill), run the generated suite once as a baseline (it
must pass, else the notebook is reported and skipped), then make mutants of OUT/src/<pkg>/steps.py
with LibCST, one change per mutant, only inside functions (the step functions and the functions
hoisted from the notebook):

  constant   an int literal n becomes n + 1; a float literal x becomes x * 1.5 (0.0 becomes 1.0)
  operator   + and -, * and /, // and *, % and *, ** and * swap; & and |, and/or swap;
             < <= > >= == != in/not in and is/is not flip; augmented assignments too
  statement  a statement of a function body becomes ``pass`` (not a return, an import, a
             docstring, a nested def/class)

Calls on a logger (``logger.info(...)``, which the notebook's prints became) are left alone: the
generated tests compare values, not log lines, so mutating them only adds equivalent mutants.

Mutants are chosen deterministically: the candidates of each kind are shuffled with a
``random.Random`` seeded from ``--seed`` and the notebook's name, then taken in turn from each kind
up to ``--cap`` per notebook. Each mutant replaces steps.py in OUT and runs
``python -m pytest -x -q -p no:cacheprovider`` there (PYTHONPATH=OUT/src, no bytecode written, so a
stale .pyc can never hide a mutant); it is killed when the suite fails, errors or times out, and
survives when it passes. Survivors are listed as ``steps.py:LINE kind: change`` so that a developer
can see what the tests miss.

Results go to bench/results/mutation.json (fixtures) or mutation_corpus.json (corpus).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import functools
import http.server
import json
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from startup import git_commit  # bench/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPUS_CANDIDATES = (
    REPO.parent / "shared" / "corpus" / "MANIFEST.tsv",
    Path("/work/shared/corpus/MANIFEST.tsv"),
)
KINDS = ("constant", "operator", "statement")
COPY_IGNORE = shutil.ignore_patterns("*.expected", "*_prod", "__pycache__", ".ipynb_checkpoints")

# --- mutants ---------------------------------------------------------------------------------------

_BINARY_SWAPS: dict[type[cst.BaseBinaryOp], type[cst.BaseBinaryOp]] = {
    cst.Add: cst.Subtract,
    cst.Subtract: cst.Add,
    cst.Multiply: cst.Divide,
    cst.Divide: cst.Multiply,
    cst.FloorDivide: cst.Multiply,
    cst.Modulo: cst.Multiply,
    cst.Power: cst.Multiply,
    cst.BitAnd: cst.BitOr,
    cst.BitOr: cst.BitAnd,
    cst.MatrixMultiply: cst.Multiply,
}
_AUG_SWAPS: dict[type[cst.BaseAugOp], type[cst.BaseAugOp]] = {
    cst.AddAssign: cst.SubtractAssign,
    cst.SubtractAssign: cst.AddAssign,
    cst.MultiplyAssign: cst.DivideAssign,
    cst.DivideAssign: cst.MultiplyAssign,
    cst.FloorDivideAssign: cst.MultiplyAssign,
    cst.ModuloAssign: cst.MultiplyAssign,
    cst.PowerAssign: cst.MultiplyAssign,
    cst.BitAndAssign: cst.BitOrAssign,
    cst.BitOrAssign: cst.BitAndAssign,
}
_COMPARE_SWAPS: dict[type[cst.BaseCompOp], type[cst.BaseCompOp]] = {
    cst.LessThan: cst.LessThanEqual,
    cst.LessThanEqual: cst.LessThan,
    cst.GreaterThan: cst.GreaterThanEqual,
    cst.GreaterThanEqual: cst.GreaterThan,
    cst.Equal: cst.NotEqual,
    cst.NotEqual: cst.Equal,
    cst.In: cst.NotIn,
    cst.NotIn: cst.In,
    cst.Is: cst.IsNot,
    cst.IsNot: cst.Is,
}
_BOOL_SWAPS: dict[type[cst.BaseBooleanOp], type[cst.BaseBooleanOp]] = {
    cst.And: cst.Or,
    cst.Or: cst.And,
}
_NOT_DROPPED = (cst.Return, cst.Import, cst.ImportFrom, cst.Global, cst.Nonlocal, cst.Pass)


@dataclass(frozen=True)
class Site:
    """One place that can be mutated: the n-th candidate of the file, in traversal order."""

    index: int
    kind: str
    line: int
    change: str


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _short(text: str, width: int = 70) -> str:
    first = " ".join(text.strip().split())
    return first if len(first) <= width else first[: width - 3] + "..."


def _is_logging_call(node: cst.Call) -> bool:
    """``logger.info(...)``, ``logging.warning(...)``, ``log.debug(...)``: log lines, not values."""
    func = node.func
    return (
        isinstance(func, cst.Attribute)
        and isinstance(func.value, cst.Name)
        and func.value.value in ("logger", "logging", "log", "_logger", "LOGGER")
    )


def _is_docstring(node: cst.BaseStatement) -> bool:
    return (
        isinstance(node, cst.SimpleStatementLine)
        and len(node.body) == 1
        and isinstance(node.body[0], cst.Expr)
        and isinstance(node.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_log_statement(node: cst.BaseStatement) -> bool:
    return (
        isinstance(node, cst.SimpleStatementLine)
        and all(isinstance(s, cst.Expr) and isinstance(s.value, cst.Call) for s in node.body)
        and all(_is_logging_call(s.value) for s in node.body)  # type: ignore[attr-defined]
    )


class _Lines(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[cst.SimpleStatementLine] = []

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self.lines.append(node)


def _only_logs(node: cst.BaseStatement) -> bool:
    """A block (``for k in d: logger.info(k)``) whose every statement writes a log line."""
    lines = _Lines()
    node.visit(lines)
    return bool(lines.lines) and all(_is_log_statement(ln) for ln in lines.lines)


class Mutator(cst.CSTTransformer):
    """Lists the mutation sites of a module (``target=None``) or applies the one at ``target``.

    Both passes count sites in the same traversal order, so an index from the listing names the
    same place when applied.
    """

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, target: int | None = None) -> None:
        super().__init__()
        self.target = target
        self.sites: list[Site] = []
        self.applied: Site | None = None
        self._functions = 0  # depth of FunctionDef around the current node
        self._skip = 0  # inside a logging call, an annotation or a decorator
        self._elifs: set[int] = set()

    # scope bookkeeping
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions += 1

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.BaseStatement:
        self._functions -= 1
        return self._statement(original_node, updated_node)

    def visit_Call(self, node: cst.Call) -> None:
        if _is_logging_call(node):
            self._skip += 1

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if _is_logging_call(original_node):
            self._skip -= 1
        return updated_node

    def visit_Annotation(self, node: cst.Annotation) -> None:
        self._skip += 1

    def leave_Annotation(
        self, original_node: cst.Annotation, updated_node: cst.Annotation
    ) -> cst.Annotation:
        self._skip -= 1
        return updated_node

    def visit_Decorator(self, node: cst.Decorator) -> None:
        self._skip += 1

    def leave_Decorator(
        self, original_node: cst.Decorator, updated_node: cst.Decorator
    ) -> cst.Decorator:
        self._skip -= 1
        return updated_node

    # the one place where every kind goes through
    def _site(self, original: cst.CSTNode, kind: str, change: str) -> bool:
        """Register a site; True when it is the one to apply."""
        if self._functions == 0 or self._skip:
            return False
        line = self.get_metadata(PositionProvider, original).start.line
        site = Site(len(self.sites), kind, line, change)
        self.sites.append(site)
        if site.index == self.target:
            self.applied = site
            return True
        return False

    # constants
    def leave_Integer(
        self, original_node: cst.Integer, updated_node: cst.Integer
    ) -> cst.BaseExpression:
        value = ast.literal_eval(original_node.value)
        new = str(value + 1)
        if self._site(original_node, "constant", f"{original_node.value} -> {new}"):
            return updated_node.with_changes(value=new)
        return updated_node

    def leave_Float(self, original_node: cst.Float, updated_node: cst.Float) -> cst.BaseExpression:
        value = ast.literal_eval(original_node.value)
        new = repr(value * 1.5 if value else 1.0)
        if self._site(original_node, "constant", f"{original_node.value} -> {new}"):
            return updated_node.with_changes(value=new)
        return updated_node

    # operators
    def leave_BinaryOperation(
        self, original_node: cst.BinaryOperation, updated_node: cst.BinaryOperation
    ) -> cst.BaseExpression:
        swap = _BINARY_SWAPS.get(type(original_node.operator))
        if swap is None:
            return updated_node
        new_op = swap(
            whitespace_before=updated_node.operator.whitespace_before,  # type: ignore[call-arg]
            whitespace_after=updated_node.operator.whitespace_after,  # type: ignore[call-arg]
        )
        change = f"{_code(original_node.operator).strip()} -> {_code(new_op).strip()}"
        if self._site(original_node.operator, "operator", change):
            return updated_node.with_changes(operator=new_op)
        return updated_node

    def leave_AugAssign(
        self, original_node: cst.AugAssign, updated_node: cst.AugAssign
    ) -> cst.BaseSmallStatement:
        swap = _AUG_SWAPS.get(type(original_node.operator))
        if swap is None:
            return updated_node
        new_op = swap(
            whitespace_before=updated_node.operator.whitespace_before,  # type: ignore[call-arg]
            whitespace_after=updated_node.operator.whitespace_after,  # type: ignore[call-arg]
        )
        change = f"{_code(original_node.operator).strip()} -> {_code(new_op).strip()}"
        if self._site(original_node.operator, "operator", change):
            return updated_node.with_changes(operator=new_op)
        return updated_node

    def leave_ComparisonTarget(
        self, original_node: cst.ComparisonTarget, updated_node: cst.ComparisonTarget
    ) -> cst.ComparisonTarget:
        swap = _COMPARE_SWAPS.get(type(original_node.operator))
        if swap is None:
            return updated_node
        new_op = swap()  # default whitespace: one space either side, valid for every operator
        change = f"{_code(original_node.operator).strip()} -> {_code(new_op).strip()}"
        if self._site(original_node.operator, "operator", change):
            return updated_node.with_changes(operator=new_op)
        return updated_node

    def leave_BooleanOperation(
        self, original_node: cst.BooleanOperation, updated_node: cst.BooleanOperation
    ) -> cst.BaseExpression:
        swap = _BOOL_SWAPS[type(original_node.operator)]
        new_op = swap()
        change = f"{_code(original_node.operator).strip()} -> {_code(new_op).strip()}"
        if self._site(original_node.operator, "operator", change):
            return updated_node.with_changes(operator=new_op)
        return updated_node

    # dropped statements
    def _statement(
        self, original: cst.BaseStatement, updated: cst.BaseStatement
    ) -> cst.BaseStatement:
        if isinstance(original, (cst.FunctionDef, cst.ClassDef)) or _is_docstring(original):
            return updated
        if isinstance(original, cst.SimpleStatementLine):
            if any(isinstance(s, _NOT_DROPPED) for s in original.body):
                return updated
        if _only_logs(original):
            return updated
        change = f"drop `{_short(_code(original.with_changes(leading_lines=())))}`"
        if self._site(original, "statement", change):
            return cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=original.leading_lines)
        return updated

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement:
        return self._statement(original_node, updated_node)

    def visit_If(self, node: cst.If) -> None:
        if isinstance(node.orelse, cst.If):
            self._elifs.add(id(node.orelse))  # an elif cannot become `pass`

    def leave_If(self, original_node: cst.If, updated_node: cst.If) -> cst.BaseStatement:
        if id(original_node) in self._elifs:
            return updated_node
        return self._statement(original_node, updated_node)

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.BaseStatement:
        return self._statement(original_node, updated_node)

    def leave_While(self, original_node: cst.While, updated_node: cst.While) -> cst.BaseStatement:
        return self._statement(original_node, updated_node)

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.BaseStatement:
        return self._statement(original_node, updated_node)

    def leave_Try(self, original_node: cst.Try, updated_node: cst.Try) -> cst.BaseStatement:
        return self._statement(original_node, updated_node)


def list_sites(source: str) -> list[Site]:
    """Every mutation site of ``source``, in traversal order."""
    mutator = Mutator()
    MetadataWrapper(cst.parse_module(source)).visit(mutator)
    return mutator.sites


def apply_site(source: str, index: int) -> tuple[str, Site]:
    """``source`` with the site ``index`` mutated, and the site. Raises ValueError if absent."""
    mutator = Mutator(target=index)
    module = MetadataWrapper(cst.parse_module(source)).visit(mutator)
    if mutator.applied is None:
        raise ValueError(f"no mutation site {index}")
    return module.code, mutator.applied


def choose(sites: Sequence[Site], cap: int, seed: int, name: str) -> list[Site]:
    """Up to ``cap`` sites, taken in turn from each kind after a seeded shuffle; in file order."""
    rng = random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))
    pools = {kind: [s for s in sites if s.kind == kind] for kind in KINDS}
    for pool in pools.values():
        rng.shuffle(pool)
    chosen: list[Site] = []
    while len(chosen) < cap and any(pools.values()):
        for kind in KINDS:
            if pools[kind] and len(chosen) < cap:
                chosen.append(pools[kind].pop())
    return sorted(chosen, key=lambda s: s.index)


# --- running ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    line: int
    kind: str
    change: str
    source: str  # the original line, for the reader
    status: str  # killed | survived | invalid
    how: str  # failing test, "timeout", pytest's last line...
    seconds: float
    cpu_seconds: float


@dataclass
class NotebookResult:
    name: str
    status: str  # ok | convert failed | baseline failed | no sites
    detail: str = ""
    package: str = ""
    convert_seconds: float = 0.0
    baseline: str = ""
    baseline_seconds: float = 0.0
    sites: dict[str, int] = field(default_factory=dict)
    mutants: list[Outcome] = field(default_factory=list)

    @property
    def killed(self) -> int:
        return sum(m.status == "killed" for m in self.mutants)

    @property
    def counted(self) -> int:
        return sum(m.status in ("killed", "survived") for m in self.mutants)


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int | None, str, float, float]:
    """Run ``cmd`` in its own process group; (returncode or None on timeout, output, wall, cpu)."""
    cpu0, start = child_cpu(), time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the kernel or workers a test may have started too
        out, _ = proc.communicate()
        code = None
    return code, out or "", time.perf_counter() - start, child_cpu() - cpu0


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def first_failure(text: str) -> str:
    """pytest's first ``FAILED``/``ERROR`` line (with -x there is one), else its last line."""
    for ln in text.splitlines():
        if ln.startswith(("FAILED ", "ERROR ")):
            return ln[:200]
    return last_line(text)


def test_env(out: Path) -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=str(out / "src"),
        PYTHONDONTWRITEBYTECODE="1",  # never a stale .pyc of the previous mutant
        MPLBACKEND="Agg",
    )


def package_of(out: Path) -> str:
    found = sorted(p.parent.name for p in (out / "src").glob("*/steps.py"))
    if len(found) != 1:
        raise RuntimeError(f"expected one src/<pkg>/steps.py in {out}, found {found}")
    return found[0]


def measure(
    nb: Path,
    name: str,
    work: Path,
    args: argparse.Namespace,
) -> NotebookResult:
    """Convert ``nb`` (a copy in ``work``), check the baseline, run the chosen mutants."""
    result = NotebookResult(name=name, status="ok")
    out = work / "out"
    env = dict(os.environ)
    if args.kernel_path:
        # the recorded run uses the kernel named like the notebook's, else python3: found here first
        env["JUPYTER_PATH"] = os.pathsep.join(
            [str(args.kernel_path), *filter(None, [env.get("JUPYTER_PATH")])]
        )
    with served(nb.parent) as params:
        cmd = [*args.nbharden, "convert", nb.name, "--out", str(out), "--no-verify", *params]
        code, text, wall, _ = run(cmd, nb.parent, env, args.convert_timeout)
    result.convert_seconds = round(wall, 2)
    if code != 0:
        result.status = "convert failed"
        result.detail = "timeout" if code is None else f"exit {code}: {last_line(text)}"
        return result
    try:
        result.package = package_of(out)
    except RuntimeError as exc:
        result.status, result.detail = "convert failed", str(exc)
        return result
    steps = out / "src" / result.package / "steps.py"
    original = steps.read_text(encoding="utf-8")

    pytest = [args.python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header"]
    code, text, wall, _ = run(pytest, out, test_env(out), args.convert_timeout)
    result.baseline = last_line(text)
    result.baseline_seconds = round(wall, 2)
    if code != 0:
        result.status = "baseline failed"
        result.detail = first_failure(text)
        return result
    timeout = max(args.timeout, 4 * wall)  # a mutant that loops forever is killed, slowly

    sites = list_sites(original)
    result.sites = {kind: sum(s.kind == kind for s in sites) for kind in KINDS}
    if not sites:
        result.status = "no sites"
        return result
    lines = original.splitlines()
    try:
        for site in choose(sites, args.cap, args.seed, name):
            mutated, applied = apply_site(original, site.index)
            assert applied == site, (applied, site)
            source = _short(lines[site.line - 1], 100)
            try:
                compile(mutated, str(steps), "exec")
            except SyntaxError as exc:
                result.mutants.append(
                    Outcome(site.line, site.kind, site.change, source, "invalid", str(exc), 0, 0)
                )
                continue
            steps.write_text(mutated, encoding="utf-8")
            code, text, wall, cpu = run(pytest, out, test_env(out), timeout)
            if code is None:
                status, how = "killed", f"timeout {timeout:.0f} s"
            elif code == 0:
                status, how = "survived", last_line(text)
            else:
                status, how = "killed", first_failure(text)
            outcome = Outcome(
                site.line,
                site.kind,
                site.change,
                source,
                status,
                how,
                round(wall, 2),
                round(cpu, 2),
            )
            result.mutants.append(outcome)
            mark = "x" if status == "killed" else "SURVIVED"
            print(
                f"    {mark:8} steps.py:{site.line} {site.kind}: {site.change}  [{wall:.1f} s]",
                flush=True,
            )
    finally:
        steps.write_text(original, encoding="utf-8")
    return result


# --- notebooks -------------------------------------------------------------------------------------


def fixture_notebooks() -> list[tuple[str, Path, Path]]:
    """(name, folder to copy, notebook relative to it) for the project's fixtures and demo."""
    found = [
        *sorted((REPO / "fixtures" / "golden").glob("*.ipynb")),
        *sorted((REPO / "fixtures" / "record").glob("*.ipynb")),
        REPO / "notebooks" / "churn_analysis.ipynb",
    ]
    return [(f"{p.parent.name}/{p.stem}", p.parent, Path(p.name)) for p in found]


def ml_notebooks() -> list[tuple[str, Path, Path]]:
    """(name, folder to copy, notebook relative to it) for the ML proof-of-concept fixtures."""
    found = sorted((REPO / "fixtures" / "ml").glob("*/*.ipynb"))
    return [(f"ml/{p.stem}", p.parent, Path(p.name)) for p in found]


@contextlib.contextmanager
def served(folder: Path) -> Iterator[list[str]]:
    """For a notebook folder with ``serve.json`` (fixtures/ml): a local HTTP server of its
    ``server/`` folder while the block runs, and the ``-p NAME VALUE`` arguments that point the
    notebook at it. Empty arguments for any other folder.
    """
    spec = folder / "serve.json"
    if not spec.is_file():
        yield []
        return
    handler = functools.partial(QuietHandler, directory=str(folder / "server"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        params = json.loads(spec.read_text(encoding="utf-8"))["parameters"]
        yield [a for k, v in params.items() for a in ("-p", k, v.format(base=base))]
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


def corpus_notebooks(
    manifest: Path, split: str, slugs: list[str] | None
) -> list[tuple[str, Path, Path]]:
    """(slug, the notebook's top folder, notebook relative to it) for the corpus's runnable set."""
    rows = list(csv.DictReader(manifest.open(encoding="utf-8"), delimiter="\t"))
    found = []
    for row in rows:
        if row["set"] != "runnable" or (split != "all" and row["split"] != split):
            continue
        if slugs and row["slug"] not in slugs:
            continue
        local = Path(row["local_path"])  # runnable/<slug>/...
        top = Path(*local.parts[:2])
        found.append((row["slug"], manifest.parent / top, local.relative_to(top)))
    return found


def summary(results: list[NotebookResult]) -> dict[str, object]:
    counted = [m for r in results for m in r.mutants if m.status in ("killed", "survived")]
    killed = sum(m.status == "killed" for m in counted)
    by_kind = {}
    for kind in KINDS:
        ms = [m for m in counted if m.kind == kind]
        k = sum(m.status == "killed" for m in ms)
        by_kind[kind] = {
            "mutants": len(ms),
            "killed": k,
            "kill_rate": round(k / len(ms), 4) if ms else None,
        }
    measured = [r for r in results if r.counted]
    return {
        "notebooks": len(results),
        "notebooks_measured": len(measured),
        "mutants": len(counted),
        "killed": killed,
        "survived": len(counted) - killed,
        "kill_rate": round(killed / len(counted), 4) if counted else None,
        # each notebook counts once, however many mutants it had
        "mean_notebook_kill_rate": (
            round(sum(r.killed / r.counted for r in measured) / len(measured), 4)
            if measured
            else None
        ),
        "by_kind": by_kind,
        "not_measured": {r.name: f"{r.status}: {r.detail}" for r in results if not r.counted},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", action="store_true", help="the project's fixtures (the default)")
    ap.add_argument(
        "--ml", action="store_true", help="the ML proof-of-concept fixtures (fixtures/ml)"
    )
    ap.add_argument(
        "--corpus",
        nargs="?",
        const="auto",
        default=None,
        help="the shared corpus's runnable notebooks (MANIFEST.tsv; found beside the checkout)",
    )
    ap.add_argument("--split", default="dev", help="corpus split: dev, heldout or all")
    ap.add_argument("--slugs", nargs="*", help="only these corpus notebooks or fixture names")
    ap.add_argument("--limit", type=int, default=0, help="at most N notebooks")
    ap.add_argument("--cap", type=int, default=30, help="mutants per notebook (default 30)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="minimum seconds per mutant run")
    ap.add_argument("--convert-timeout", type=float, default=900.0)
    ap.add_argument(
        "--python", default=sys.executable, help="interpreter that runs the generated tests"
    )
    ap.add_argument(
        "--nbharden",
        default=str(Path(sys.executable).parent / "nbharden"),
        help="nbharden command (split on spaces)",
    )
    ap.add_argument(
        "--kernel-path",
        type=Path,
        default=None,
        help="a Jupyter data folder put first on JUPYTER_PATH for the recorded run; default: "
        "--python's share/jupyter when it has a python3 kernel and differs from this venv",
    )
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = ap.parse_args()
    # a stopped run still restores steps.py and removes its temporary folders (finally blocks)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    args.nbharden = args.nbharden.split()
    args.python = str(Path(args.python).absolute())  # the venv's own python; do not resolve links

    if args.kernel_path is None:
        share = Path(args.python).parent.parent / "share" / "jupyter"
        if (share / "kernels" / "python3").is_dir() and Path(sys.prefix) != share.parent.parent:
            args.kernel_path = share

    if args.corpus:
        manifest = (
            next((p for p in CORPUS_CANDIDATES if p.exists()), None)
            if args.corpus == "auto"
            else Path(args.corpus)
        )
        if manifest is None or not manifest.exists():
            raise SystemExit("mutation.py: no corpus MANIFEST.tsv found; pass --corpus PATH")
        notebooks = corpus_notebooks(manifest, args.split, args.slugs)
        default_results = HERE / "results" / "mutation_corpus.json"
    else:
        notebooks = ml_notebooks() if args.ml else fixture_notebooks()
        if args.slugs:
            notebooks = [
                n for n in notebooks if n[0] in args.slugs or n[0].split("/")[-1] in args.slugs
            ]
        default_results = HERE / "results" / ("mutation_ml.json" if args.ml else "mutation.json")
    if args.limit:
        notebooks = notebooks[: args.limit]
    results_path = args.results or default_results

    print(
        f"mutation.py: {len(notebooks)} notebooks, cap {args.cap}, seed {args.seed}, "
        f"tests with {args.python}"
        + (f", kernels from {args.kernel_path}" if args.kernel_path else ""),
        flush=True,
    )
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(
            f"  note: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True
        )
    started, cpu0 = time.perf_counter(), child_cpu()
    results: list[NotebookResult] = []
    for name, folder, rel in notebooks:
        print(f"{name}", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix="nbh-mutation-"))
        try:
            copy = tmp / "nb"
            shutil.copytree(folder, copy, ignore=COPY_IGNORE)
            result = measure(copy / rel, name, tmp, args)
        finally:
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                print(f"  kept {tmp}")
        results.append(result)
        if result.counted:
            print(
                f"  {result.killed}/{result.counted} killed "
                f"({100 * result.killed / result.counted:.0f}%), sites {result.sites}",
                flush=True,
            )
        else:
            print(f"  {result.status}: {result.detail}", flush=True)
        # written after every notebook: a long run that is stopped still leaves its figures
        write_results(
            results_path, results, args, time.perf_counter() - started, child_cpu() - cpu0
        )

    total = summary(results)
    print()
    print(f"{'notebook':44} {'killed':>7} {'mutants':>7} {'rate':>6}")
    for r in results:
        rate = f"{100 * r.killed / r.counted:.0f}%" if r.counted else r.status
        print(f"{r.name:44} {r.killed:7} {r.counted:7} {rate:>6}")
    rate = total["kill_rate"]
    print(
        f"{'overall':44} {total['killed']:7} {total['mutants']:7} "
        f"{(f'{100 * rate:.1f}%' if isinstance(rate, float) else '-'):>6}"
    )
    for kind, k in total["by_kind"].items():  # type: ignore[union-attr]
        if k["mutants"]:
            print(f"  {kind:10} {k['killed']}/{k['mutants']} killed")
    survivors = [(r.name, m) for r in results for m in r.mutants if m.status == "survived"]
    if survivors:
        print("\nsurvivors:")
        for name, m in survivors:
            print(f"  {name} steps.py:{m.line} {m.kind}: {m.change}   | {m.source}")
    print(f"\nresults: {results_path}")
    return 0


def write_results(
    path: Path, results: list[NotebookResult], args: argparse.Namespace, wall: float, cpu: float
) -> None:
    data = {
        "commit": git_commit(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "settings": {
            "cap": args.cap,
            "seed": args.seed,
            "timeout_min_s": args.timeout,
            "tests_python": args.python,
            "nbharden": " ".join(args.nbharden),
            "kernel_path": str(args.kernel_path) if args.kernel_path else None,
        },
        "wall_seconds": round(wall, 1),
        "cpu_seconds_children": round(cpu, 1),
        "summary": summary(results),
        "notebooks": [
            {
                **{k: v for k, v in asdict(r).items() if k != "mutants"},
                "killed": r.killed,
                "mutants": r.counted,
                "kill_rate": round(r.killed / r.counted, 4) if r.counted else None,
                "outcomes": [asdict(m) for m in r.mutants],
            }
            for r in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
