"""The load stage: refusals, upgrades, masking, ids (the error table: test_error_table.py; fuzz: test_fuzz.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nbharden.errors import EXIT_BAD_INPUT, InputError
from nbharden.load import load
from nbharden.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "fixtures" / "broken"
GOOD = ROOT / "fixtures" / "load"
DEFAULT = Settings()

PY_KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def refusal(path: Path, settings: Settings = DEFAULT) -> InputError:
    with pytest.raises(InputError) as info:
        load(path, settings=settings)
    assert info.value.path == path
    assert info.value.exit_code == EXIT_BAD_INPUT
    return info.value


def write_nb(
    folder: Path,
    cells: list[dict[str, Any]],
    metadata: dict[str, Any] | None = None,
    name: str = "nb.ipynb",
) -> Path:
    """A v4.5 notebook with the given cells (ids and required keys filled in)."""
    full = []
    for i, cell in enumerate(cells):
        cell = {"id": f"c{i}", "metadata": {}, **cell}
        if cell["cell_type"] == "code":
            cell = {"execution_count": None, "outputs": [], **cell}
        full.append(cell)
    nb = {
        "cells": full,
        "metadata": PY_KERNEL if metadata is None else metadata,
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = folder / name
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def code(source: str) -> dict[str, Any]:
    return {"cell_type": "code", "source": source}


# --- refusals beyond the error table (tests/test_error_table.py: one fixture per row) ----------


def test_too_large_is_refused_before_reading() -> None:
    path = GOOD / "sales.ipynb"
    error = refusal(path, Settings(max_bytes=100))
    assert str(error) == f"{path}: refused: file larger than 100 bytes"
    # exactly at the limit is fine
    assert load(path, settings=Settings(max_bytes=path.stat().st_size)).cells


def test_max_depth_comes_from_settings() -> None:
    path = BROKEN / "too_deep.ipynb"
    assert str(refusal(path, Settings(max_depth=10))) == f"{path}: refused: nesting deeper than 10"
    nb = load(path, settings=Settings(max_depth=200))  # 100 levels of metadata is fine under 200
    assert len(nb.cells) == 4


def test_nesting_beyond_the_recursion_limit_is_refused_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "deep.ipynb"
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert str(refusal(path)) == f"{path}: refused: nesting deeper than 64"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ipynb"
    assert str(refusal(missing)) == f"{missing}: cannot read: No such file or directory"
    assert str(refusal(tmp_path)) == f"{tmp_path}: cannot read: is a directory"


def test_lone_surrogate_in_code(tmp_path: Path) -> None:
    path = write_nb(
        tmp_path, [{"cell_type": "markdown", "source": "hi"}, code("x = 1\ny = '\ud800'")]
    )
    error = refusal(path)
    assert str(error) == (
        f"{path}:cell 2:2:6: cell contains a lone surrogate character that is not valid Unicode text"  # noqa: E501
    )


def test_syntax_errors_python3_only(tmp_path: Path) -> None:
    # compile() runs, not just parse(): errors the compiler finds are refused too
    path = write_nb(tmp_path, [code("x = 1"), code("return x")])
    assert str(refusal(path)) == f"{path}:cell 2:1:1: 'return' outside function"


# --- kernels and languages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "kernel_name"),
    [
        (
            {"kernelspec": {"display_name": "Python 2", "language": "python", "name": "python2"}},
            "python2",
        ),
        ({"kernelspec": {"display_name": "Py", "language": "Python", "name": "py"}}, "py"),
        ({"language_info": {"name": "python"}}, "python3"),
        ({}, "python3"),  # no language at all counts as Python
    ],
)
def test_python_kernels_are_accepted(
    tmp_path: Path, metadata: dict[str, Any], kernel_name: str
) -> None:
    nb = load(write_nb(tmp_path, [code("x = 1")], metadata), settings=DEFAULT)
    assert (nb.kernel_name, nb.language) == (kernel_name, "python")


def test_language_info_is_used_without_kernelspec_language(tmp_path: Path) -> None:
    path = write_nb(tmp_path, [code("x = 1")], {"language_info": {"name": "julia"}})
    assert str(refusal(path)) == f"{path}: kernel language 'julia' is not supported"


# --- good notebooks -------------------------------------------------------------------------------


def test_v3_notebook_is_upgraded() -> None:
    path = GOOD / "v3.ipynb"
    nb = load(path, settings=DEFAULT)
    assert nb.nbformat_version == (3, 0)
    assert [(c.index, c.cell_type) for c in nb.cells] == [
        (1, "markdown"),
        (2, "markdown"),
        (3, "code"),
        (4, "code"),
    ]
    assert nb.cells[0].source == "# Old analysis"  # heading cell -> markdown heading
    assert nb.cells[2].source == "%matplotlib inline\nx = 2\nx * 3"
    assert nb.cells[2].code == "get_ipython().run_line_magic('matplotlib', 'inline')\nx = 2\nx * 3"
    assert nb.cells[2].execution_count == 4  # from prompt_number
    assert nb.cells[3].execution_count is None
    # nbformat's converter invents random ids; ours are derived
    assert [c.cell_id for c in nb.cells] == ["cell-1", "cell-2", "cell-3", "cell-4"]
    assert load(path, settings=DEFAULT) == nb


def test_magics_are_masked() -> None:
    nb = load(GOOD / "magics.ipynb", settings=DEFAULT)
    assert [c.code for c in nb.cells] == [
        "get_ipython().run_line_magic('matplotlib', 'inline')\nimport math",
        "get_ipython().system('pip install x')",
        "get_ipython().run_cell_magic('timeit', '', 'x = 1\\ny = x + 1\\n')\n",
        "get_ipython().run_line_magic('pinfo', 'math')",
        "files = get_ipython().getoutput('ls')\nn = len(files)",
        "def f():\n    get_ipython().run_line_magic('time', 'y = 2')\n    return 1",
        # top-level await is fine
        "import asyncio\nawait asyncio.sleep(0)\nasync for x in agen():\n    pass",
    ]
    assert nb.cells[0].source == "%matplotlib inline\nimport math"  # source stays as written
    assert nb.cells[2].source == "%%timeit\nx = 1\ny = x + 1\n"


def test_plain_python_is_left_alone(tmp_path: Path) -> None:
    source = "import math\n\n\nx = math.pi  # 100% plain\ny = x != 2\n"
    nb = load(write_nb(tmp_path, [code(source), code("a = 1")]), settings=DEFAULT)
    assert [c.code for c in nb.cells] == [source, "a = 1"]


def test_indented_cell_and_prompts_are_masked_like_ipython(tmp_path: Path) -> None:
    nb = load(
        write_nb(tmp_path, [code("    a = 1\n    b = 2"), code(">>> a = 1\n... b = 2")]),
        settings=DEFAULT,
    )
    assert [c.code for c in nb.cells] == ["a = 1\nb = 2", "a = 1\nb = 2"]


def test_tags_execution_counts_and_cell_kinds() -> None:
    nb = load(GOOD / "v4_4_no_ids.ipynb", settings=DEFAULT)
    assert nb.nbformat_version == (4, 4)
    assert [(c.cell_type, c.tags, c.execution_count) for c in nb.cells] == [
        ("markdown", (), None),
        ("code", ("parameters", "x"), 3),
        ("raw", (), None),
        ("code", (), None),
    ]
    assert nb.cells[0].source == "# Title\ntext"  # list-of-lines sources are joined
    assert nb.cells[0].code == ""  # only code cells carry code
    assert nb.cells[2].source == "raw text %not a magic"
    assert nb.cells[2].code == ""
    assert [c.index for c in nb.code_cells] == [2, 4]


def test_ids_are_derived_deterministically() -> None:
    nb = load(GOOD / "v4_4_no_ids.ipynb", settings=DEFAULT)
    assert [c.cell_id for c in nb.cells] == ["cell-1", "cell-2", "cell-3", "cell-4"]
    assert load(GOOD / "v4_4_no_ids.ipynb", settings=DEFAULT) == nb


def test_duplicate_ids_are_replaced_without_collisions() -> None:
    nb = load(GOOD / "duplicate_ids.ipynb", settings=DEFAULT)
    # the first "same" is kept; later ones get cell-N, and cell-4 is taken by an original id
    assert [c.cell_id for c in nb.cells] == ["same", "cell-2", "cell-4", "cell-4-2", "ok-id"]
    assert load(GOOD / "duplicate_ids.ipynb", settings=DEFAULT) == nb


def test_ids_are_the_same_in_another_process() -> None:
    script = (
        "from pathlib import Path; from nbharden.load import load; "
        "from nbharden.settings import Settings; "
        f"nb = load(Path({str(GOOD / 'v3.ipynb')!r}), settings=Settings()); "
        "print([c.cell_id for c in nb.cells])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src")},
    ).stdout
    assert out.strip() == str([c.cell_id for c in load(GOOD / "v3.ipynb", settings=DEFAULT).cells])


def test_hash_path_and_version() -> None:
    path = GOOD / "sales.ipynb"
    nb = load(path, settings=DEFAULT)
    assert nb.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert nb.path == path
    assert nb.nbformat_version == (4, 5)
    assert [c.cell_id for c in nb.cells] == [
        "c0",
        "c1",
        "c2",
        "c3",
        "c4",
    ]  # valid original ids are kept
    assert nb.cells[1].tags == ("parameters",)


# --- speed and imports ----------------------------------------------------------------------------


def test_fifty_cells_load_fast(tmp_path: Path) -> None:
    cells = []
    for i in range(50):
        source = (
            f"%time value_{i} = sum(range({i}))\n!echo {i}"
            if i % 5 == 0
            else f"value_{i} = {i} * 2\nvalue_{i}"
        )
        cells.append(code(source))
    path = write_nb(tmp_path, cells)
    load(path, settings=DEFAULT)  # first call pays the one-time imports and schema compile
    start = time.perf_counter()
    nb = load(path, settings=DEFAULT)
    assert time.perf_counter() - start < 0.1
    assert len(nb.code_cells) == 50


def test_importing_load_is_light_and_valid_notebooks_skip_jsonschema() -> None:
    script = (
        "import sys; from pathlib import Path; import nbharden.load as m; "
        "heavy = {'IPython', 'nbformat', 'jsonschema', 'libcst'}; "
        "print(sorted(heavy & set(sys.modules))); "
        f"m.load(Path({str(GOOD / 'sales.ipynb')!r}), settings=m.Settings()); "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src")},
    ).stdout.splitlines()
    assert out == ["[]", "['IPython']"]
