"""What keeps LibCST cheap to start (issue 17): the visitor-method cache of nbharden.libcst_speed finds the
visitors LibCST finds, and a whole conversion never imports ``libcst.matchers`` (about a third of a second of
start-up: hundreds of dataclasses whose docstrings format their signatures) or ``libcst.codemod``, which
imports it."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import libcst as cst
from libcst._batched_visitor import BatchableCSTVisitor
from libcst.metadata import ParentNodeProvider, PositionProvider, ScopeProvider

from nbharden import libcst_speed

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
