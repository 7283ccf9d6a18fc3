"""Suite-wide pytest options and fixtures: ``--update-goldens`` and a small notebook builder.

Kept minimal on purpose: folder-specific fixtures live next to their tests
(``tests/lab/conftest.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat
import pytest
from hypothesis import settings
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

#: One cell for ``make_notebook``: code source, or (source, tags), or ("# md", ...) via ``md()``.
CellSpec = str | tuple[str, Sequence[str]]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite fixtures/golden/<stem>.expected/ from the current output instead of "
        "comparing",
    )




@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    """Whether this run rewrites golden files (``pytest --update-goldens``) rather than comparing
    with them.
    """
    return bool(request.config.getoption("--update-goldens"))


MARKDOWN_PREFIX = "md:"


@pytest.fixture
def make_notebook(tmp_path: Path) -> Callable[..., Path]:
    """Write a python3 notebook into ``tmp_path`` and return its path.

    Cells are code sources; ``("src", ["tag", ...])`` adds tags; a source starting with ``md:`` is a
    markdown cell. Code cells get execution counts 1, 2, ... unless ``counts`` is given (``None``
    entries: never run).
    """

    def make(
        cells: Sequence[CellSpec],
        name: str = "nb.ipynb",
        counts: Sequence[int | None] | None = None,
    ) -> Path:
        nb = new_notebook()
        nb.metadata = {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        n = 0
        for i, spec in enumerate(cells):
            source, tags = (spec, ()) if isinstance(spec, str) else spec
            if source.startswith(MARKDOWN_PREFIX):
                cell = new_markdown_cell(source[len(MARKDOWN_PREFIX) :])
            else:
                cell = new_code_cell(source)
                cell.execution_count = counts[n] if counts is not None else n + 1
                n += 1
            cell.id = f"cell-{i}"  # fixed ids: nbformat would invent random ones
            if tags:
                cell.metadata["tags"] = list(tags)
            nb.cells.append(cell)
        path = tmp_path / name
        nbformat.write(nb, path)
        return path

    return make


# Property tests draw the same examples on every run (as the fuzz tests always did): a failure found once is found
# again, and CI never goes red on an example nobody can reproduce. Widen the search with
# HYPOTHESIS_PROFILE=explore (random examples, more of them).
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
