"""The code cells of every fixture notebook nbharden reads, as the analysis sees them (magics masked and
translated): a corpus for the tests that compare a walk of LibCST trees with LibCST's own visit
(tests/test_codemods.py, tests/test_libcst_speed.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libcst as cst

from nbharden import api
from nbharden.settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
_REFUSED = ("broken", "hostile", "load")  # folders of input nbharden refuses


def fixture_cells() -> Iterator[tuple[Path, int, cst.Module]]:
    """(notebook, cell index, the cell's module) for every code cell of every fixture notebook."""
    from nbharden.analyse import analyse

    for path in sorted(p for p in FIXTURES.rglob("*.ipynb") if p.parent.name not in _REFUSED):
        settings = Settings(record=False, verify=False)
        try:
            analysis = analyse(api.load(path, settings), settings=settings)
        except Exception:  # noqa: BLE001 - fixtures of refused input; their cells are not analysed
            continue
        assert analysis.facts is not None
        for facts in analysis.facts.cells.values():
            yield path, facts.index, facts.module
