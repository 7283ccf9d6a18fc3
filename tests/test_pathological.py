"""Pathological notebooks, generated at test time, through the real command line.

Each one runs ``nbharden convert --no-record --no-verify`` in a subprocess of its own; the test
reads the process's peak memory (``os.wait4``: the largest resident set of the command and the
worker processes it waited for) and its wall time. The bar (RELIABILITY.md): no crash (exit 0, or
2 with a one-line message; never a signal, never 123), done or refused within 30 s and 1 GB.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Tier: kernels, papermill or generated packages in subprocesses (make test-fast skips these).
pytestmark = pytest.mark.slow

#: The bar: refused or done within these.
MAX_SECONDS = 30.0
MAX_BYTES = 1024**3

PY_KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def code_cell(source: str, index: int, outputs: list[Any] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": f"c{index}",
        "metadata": {},
        "outputs": outputs or [],
        "source": source,
    }


def notebook(cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cells": cells, "metadata": PY_KERNEL, "nbformat": 4, "nbformat_minor": 5}


def many_cells() -> bytes:
    """10,000 small code cells (a long-running exploratory notebook)."""
    cells = [code_cell("import math\nvalue_0 = 0", 0)]
    for i in range(1, 10_000):
        source = f"value_{i} = value_{i - 1} + math.sqrt({i})"
        if i % 10 == 0:
            source += f"\nprint(value_{i})"
        cells.append(code_cell(source, i))
    return json.dumps(notebook(cells), indent=1).encode()


def big_outputs() -> bytes:
    """100 MB of saved image outputs over 50 small cells."""
    image = "iVBORw0KGgo" + "A" * (2 * 1024 * 1024)  # 2 MB of base64 "PNG"
    cells = [code_cell("def plot(i):\n    return i", 50)]
    for i in range(50):
        output = {
            "output_type": "display_data",
            "data": {"image/png": image, "text/plain": ["<Figure>"]},
            "metadata": {},
        }
        cells.append(code_cell(f"figure_{i} = plot({i})", i, [output]))
    return json.dumps(notebook(cells)).encode()


def one_mb_cell() -> bytes:
    """One cell of 1 MB of code: 40,000 short assignments."""
    lines = [f"row_{i} = {i} * 2 + 1" for i in range(40_000)]
    source = "\n".join(lines)
    assert len(source) > 1_000_000
    return json.dumps(notebook([code_cell(source, 0)])).encode()


def one_mb_literal() -> bytes:
    """One cell holding a 1 MB literal: a pasted list of 100,000 numbers."""
    source = (
        "data = [" + ", ".join(str(i * 7 % 1000) for i in range(210_000)) + "]\ntotal = sum(data)"
    )
    assert len(source) > 1_000_000
    return json.dumps(notebook([code_cell(source, 0)])).encode()


def parentheses() -> bytes:
    """A cell nested 2,000 parentheses deep (LibCST's parser crashed the process on this)."""
    return json.dumps(notebook([code_cell("x = " + "(" * 2000 + "1" + ")" * 2000, 0)])).encode()


def long_sum() -> bytes:
    """A 10,000-term sum (CPython's compiler runs out of recursion; LibCST crashed)."""
    return json.dumps(notebook([code_cell("x = " + " + ".join(["1"] * 10_000), 0)])).encode()


def long_and() -> bytes:
    """A 10,000-term ``and``: flat for CPython, 10,000 levels deep for LibCST (a segfault)."""
    source = "x = " + " and ".join(f"y{i % 10}" for i in range(10_000))
    return json.dumps(notebook([code_cell(source, 0)])).encode()


def long_concatenation() -> bytes:
    """10,000 implicitly concatenated strings (a pasted query): one constant for CPython."""
    source = "query = (\n" + "".join(f"    'line {i} '\n" for i in range(10_000)) + ")"
    return json.dumps(notebook([code_cell(source, 0)])).encode()


def deep_json() -> bytes:
    """Cell metadata nested 100,000 levels deep."""
    cell = json.dumps(code_cell("x = 1", 0))
    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000
    cell = cell.replace('"metadata": {}', f'"metadata": {{"deep": {deep}}}', 1)
    return (
        '{"cells": [' + cell + '], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    ).encode()


@dataclass(frozen=True)
class Case:
    make: Callable[[], bytes]
    outcome: int  # 0 converted, 2 refused
    message: str = ""  # for a refusal: the exact line after "nb.ipynb"


TOO_DEEP = (
    ": refused: code nested deeper than 100 levels (LibCST would run out of stack); "
    "split it into smaller statements"
)
TOO_BIG = (
    ":cell 1: refused: the code up to this cell has more than 50000 syntax nodes, the most "
    "nbharden converts (max-syntax-nodes in [tool.nbharden])"
)
CASES = {
    "10000_cells": Case(
        many_cells,
        2,
        ": refused: 10000 code cells, more than the 2000 nbharden converts "
        "(max-code-cells in [tool.nbharden])",
    ),
    "100mb_outputs": Case(big_outputs, 0),
    "1mb_cell": Case(one_mb_cell, 2, TOO_BIG),
    "1mb_literal": Case(one_mb_literal, 2, TOO_BIG),
    "2000_parentheses": Case(parentheses, 2, ":cell 1:1:205: too many nested parentheses"),
    "10000_term_sum": Case(long_sum, 2, ":cell 1: refused: code nested too deeply to compile"),
    "10000_term_and": Case(long_and, 2, ":cell 1:1:5" + TOO_DEEP),
    "10000_strings": Case(long_concatenation, 2, ":cell 1:2:5" + TOO_DEEP),
    "deep_json": Case(deep_json, 2, ": refused: nesting deeper than 64"),
}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_bytes: int


#: Runs the command and writes its exit code and peak memory (KiB) as JSON to argv[1]. A process
#: of its own: a child's ru_maxrss starts at its parent's resident size (Linux carries the high-water
#: mark over fork and exec), and this small parent is not pytest with its generated notebooks.
MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_maxrss], f)
"""


def run_measured(args: list[str], cwd: Path) -> Run:
    """Run the CLI; its wall time and the peak resident memory of it and the workers it waited for
    (``os.wait4``: a child's usage includes the children it reaped)."""
    measured = cwd / "measured.json"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(measured), sys.executable, "-m", "nbharden", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="replace",
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=600,
        check=False,
    )
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]  # the measuring process itself
    returncode, peak_kib = json.loads(measured.read_text())
    measured.unlink()
    return Run(returncode, proc.stdout, proc.stderr, seconds, peak_kib * 1024)


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 (POSIX)")
@pytest.mark.parametrize("name", list(CASES))
def test_pathological_notebook(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    path = tmp_path / f"{name}.ipynb"
    path.write_bytes(case.make())
    run = run_measured(["convert", path.name, "--no-record", "--no-verify", "-o", "out"], tmp_path)
    print(
        f"{name}: {path.stat().st_size / 1e6:.1f} MB, exit {run.returncode}, "
        f"{run.seconds:.1f} s, peak {run.peak_bytes / 1e6:.0f} MB"
    )
    assert run.returncode >= 0, f"killed by signal {-run.returncode}: {run.stderr[-2000:]}"
    assert run.returncode == case.outcome, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    if case.outcome == 2:
        (line,) = run.stderr.splitlines()
        assert line == path.name + case.message
        assert not (tmp_path / "out").exists()
    else:
        summary = rf"^{re.escape(path.name)} -> out/ \(\d+ files"
        assert re.search(summary, run.stdout, re.MULTILINE), run.stdout[-2000:]
        assert (tmp_path / "out" / "pyproject.toml").is_file()
    assert run.seconds <= MAX_SECONDS
    assert run.peak_bytes <= MAX_BYTES


def test_the_measurement_sees_memory_and_exit_codes(tmp_path: Path) -> None:
    """The bar above can fail: a 300 MB child is seen as such, a crash as a negative exit code."""
    grow = "import os, sys; b = bytearray(300 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"
    measured = tmp_path / "measured.json"
    for code, expected in ((grow, 0), ("import os, signal; os.kill(os.getpid(), 11)", -11)):
        subprocess.run(
            [sys.executable, "-c", MEASURE, str(measured), sys.executable, "-c", code],
            check=True,
            timeout=120,
        )
        returncode, peak_kib = json.loads(measured.read_text())
        assert returncode == expected
        if expected == 0:
            assert peak_kib * 1024 >= 300 * 1024 * 1024
