"""What keeps LibCST cheap (issue 17): the visitor-method cache of nbharden.libcst_speed finds the visitors
LibCST finds, its walk for read-only visitors visits as LibCST's ``visit`` does (the same calls in the same
order, the same scopes), and a whole conversion never imports ``libcst.matchers`` (about a third of a second
of start-up: hundreds of dataclasses whose docstrings format their signatures) or ``libcst.codemod``, which
imports it."""

from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import libcst as cst
from fixture_cells import fixture_cells
from hypothesis import HealthCheck, given
from libcst._batched_visitor import BatchableCSTVisitor
from libcst.metadata import ParentNodeProvider, PositionProvider, ScopeProvider
from nbequiv.grammar import Case, notebooks

from nbharden import libcst_speed
from nbharden.transform.codemods import find_all

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "notebooks" / "churn_analysis.ipynb"


def test_cached_visitor_methods_are_libcsts() -> None:
    libcst_speed.install()
    cached = BatchableCSTVisitor.get_visitors
    module = cst.parse_module("a = 1\n")
    for provider in (ScopeProvider, PositionProvider, ParentNodeProvider):
        for _ in range(2):  # the first instance fills the cache, the second reads it
            visitor = provider()
            theirs = dict(  # LibCST's own BatchableCSTVisitor.get_visitors
                inspect.getmembers(
                    visitor,
                    lambda m: inspect.ismethod(m)
                    and (m.__name__.startswith("visit_") or m.__name__.startswith("leave_"))
                    and not getattr(m, "_is_no_op", False),
                )
            )
            assert cached(visitor) == theirs
    assert cst.MetadataWrapper(module).resolve(ScopeProvider)


def test_install_is_idempotent() -> None:
    libcst_speed.install()
    first = BatchableCSTVisitor.get_visitors
    libcst_speed.install()
    assert BatchableCSTVisitor.get_visitors is first


def test_a_conversion_imports_neither_libcst_matchers_nor_codemod(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from nbharden.api import generate\n"
        "from nbharden.settings import Settings\n"
        "made = generate(Path(sys.argv[1]), Settings(record=False, verify=False, out=Path(sys.argv[2])))\n"
        "assert any(p.endswith('steps.py') for p in made.tree.as_dict()), made.tree.as_dict().keys()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('libcst.matchers', 'libcst.codemod'))))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-c", code, str(DEMO), str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- the walk that replaces CSTNode.visit for read-only visitors -------------------------------------------------


class _Recorder(cst.CSTVisitor):
    """Every on_visit and on_leave, in order; ``prune``: node types whose children it declines (returns False),
    so that the skip follows LibCST's too."""

    def __init__(self, prune: tuple[type, ...] = ()) -> None:
        super().__init__()
        self.prune = prune
        self.events: list[tuple[str, int]] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.events.append(("visit", id(node)))
        return not isinstance(node, self.prune)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.events.append(("leave", id(original_node)))


class _AttributeRecorder(_Recorder):
    """Also every per-attribute call (``on_visit_attribute``), which LibCST makes around each field it visits."""

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        self.events.append((f"visit {attribute}", id(node)))

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        self.events.append((f"leave {attribute}", id(original_node)))


class _Hooked(cst.CSTVisitor):
    """A visitor with a per-attribute hook, as LibCST's ScopeVisitor has (``visit_ClassDef_bases``)."""

    def __init__(self) -> None:
        super().__init__()
        self.funcs: list[str] = []

    def visit_Call_func(self, node: cst.Call) -> None:
        self.funcs.append(type(node.func).__name__)


@contextlib.contextmanager
def _libcsts_visit() -> Iterator[None]:
    """LibCST's own ``CSTNode.visit`` for the duration: the reference the walk is compared with."""
    saved = cst.CSTNode.visit
    cst.CSTNode.visit = libcst_speed._LIBCST_VISIT  # type: ignore[method-assign]
    try:
        yield
    finally:
        cst.CSTNode.visit = saved  # type: ignore[method-assign]


def _events(module: cst.Module, recorder: _Recorder) -> list[tuple[str, int]]:
    assert module.visit(recorder) is module
    return recorder.events


def _scopes(module: cst.Module) -> list[str]:
    """What ScopeProvider resolves, by source position: each scope's assignments and accesses (with what each
    access refers to)."""
    resolved = cst.MetadataWrapper(module, unsafe_skip_copy=True).resolve_many(
        [ScopeProvider, PositionProvider]
    )
    positions = resolved[PositionProvider]

    def where(node: object) -> str:
        found = positions.get(node)  # type: ignore[call-overload]
        return f"{type(node).__name__}@{found.start.line}:{found.start.column}" if found else "?"

    summary = []
    for scope in {s for s in resolved[ScopeProvider].values() if s is not None}:
        assignments = sorted(f"{a.name}={where(getattr(a, 'node', None))}" for a in scope.assignments)
        accesses = sorted(
            f"{where(a.node)}->{sorted(where(getattr(r, 'node', None)) for r in a.referents)}"
            for a in scope.accesses
        )
        summary.append(repr((type(scope).__name__, assignments, accesses)))
    return sorted(summary)


def _same_visits(code: str) -> None:
    libcst_speed.install()
    module = cst.parse_module(code)
    for kind in (_Recorder, _AttributeRecorder):
        for prune in ((), (cst.FunctionDef, cst.Lambda, cst.Call)):
            walked = _events(module, kind(prune))
            with _libcsts_visit():
                theirs = _events(module, kind(prune))
            assert walked == theirs
    walked_scopes = _scopes(module)
    with _libcsts_visit():
        assert _scopes(module) == walked_scopes
    hooked = _Hooked()
    module.visit(hooked)
    assert hooked.funcs == [
        type(n.func).__name__ for n in find_all(module, cst.Call) if isinstance(n, cst.Call)
    ]
    assert libcst_speed._plain(_Recorder()) and not libcst_speed._plain(_AttributeRecorder())


def test_the_walk_visits_as_libcst_does_on_every_cell_of_the_fixtures() -> None:
    """The same on_visit/on_leave calls (and per-attribute calls, for a visitor that has them) in the same
    order, the same skips, the same scopes, on every code cell of every fixture notebook (magics masked as the
    analysis sees them)."""
    cells = 0
    for _path, _index, module in fixture_cells():
        cells += 1
        _same_visits(module.code)
    assert cells > 300


@hypothesis.settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=notebooks())
def test_the_walk_visits_as_libcst_does_on_drawn_notebooks(case: Case) -> None:
    for code in case.cells:
        _same_visits(code)


def test_the_walk_is_not_used_for_transformers() -> None:
    libcst_speed.install()

    class Rename(cst.CSTTransformer):
        def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
            return updated_node.with_changes(value=updated_node.value.upper())

    assert cst.parse_module("a = b\n").visit(Rename()).code == "A = B\n"
    assert not libcst_speed._plain(_Hooked())



def test_importing_the_module_again_keeps_libcsts_visit() -> None:
    """A second import after ``install`` (importlib.reload) must not take the replacement for LibCST's own visit:
    the walk would then call itself for every transformer."""
    import importlib

    libcst_speed.install()
    again = importlib.reload(libcst_speed)
    try:
        assert again._LIBCST_VISIT.__qualname__ == "CSTNode.visit"
        again.install()
        assert cst.parse_module("a = b\n").visit(cst.CSTTransformer()).code == "a = b\n"
    finally:
        again.install()
