"""Fuzzing the front door: generated hostile notebooks and byte-mutated fixtures.

Two derandomized hypothesis runs of ``FUZZ_EXAMPLES`` cases each (3,000 by default; more with
``NBHARDEN_FUZZ_EXAMPLES=100000``) drive the library in process: ``api.load`` then ``api.analyze``
(recording off). A smaller run takes what loads through ``api.generate`` (plan, emit, ruff, black,
verification), and a sample of a few hundred goes through the real CLI in one subprocess per
command, checked against the in-process result notebook by notebook.

The bar (RELIABILITY.md): zero unhandled exceptions. Every refusal is an ``NbhardenError`` with exit
code 2, never an internal error, and one line shaped ``path[:cell N[:line:col]]: reason``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbharden import api
from nbharden.errors import EXIT_BAD_INPUT, InputError, InternalError, NbhardenError
from nbharden.models import Notebook
from nbharden.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

#: Cases per fuzz run; the long run: NBHARDEN_FUZZ_EXAMPLES=100000 pytest tests/test_fuzz.py
FUZZ_EXAMPLES = int(os.environ.get("NBHARDEN_FUZZ_EXAMPLES", "3000"))
#: Cases that go on through generate (ruff and black: ~0.1-0.5 s each) and through the CLI.
GENERATE_EXAMPLES = max(40, FUZZ_EXAMPLES // 50)
CLI_EXAMPLES = max(300, FUZZ_EXAMPLES // 10)

SETTINGS = Settings(record=False, verify=False)

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def fuzz_settings(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


# --- the contract every refusal keeps -----------------------------------------------------------


def shape(path: Path) -> re.Pattern[str]:
    """``path[:cell N[:line:col]]: reason`` on one line; cells, lines and columns count from 1."""
    return re.compile(
        re.escape(str(path)) + r"(?::cell [1-9]\d*(?::[1-9]\d*:[1-9]\d*)?)?: \S[^\n\r]*"
    )


def assert_refusal(error: BaseException, path: Path) -> None:
    """A refusal as the contract wants it: InputError-like, exit 2, one located line, no bug text."""
    assert isinstance(error, NbhardenError), f"unhandled {type(error).__name__}: {error}"
    assert not isinstance(error, InternalError), str(error)
    assert error.exit_code == EXIT_BAD_INPUT, str(error)
    text = str(error)
    assert shape(path).fullmatch(text), repr(text)
    # load()'s safety net says "unexpected ... please report": the fuzzer must never reach it
    assert "please report" not in text and "cannot load notebook: unexpected" not in text, text
    text.encode("utf-8")  # printable: no lone surrogates leak into messages
    assert len(text) < len(str(path)) + 600, text


#: Warnings Python hides by default; any other would be printed around the CLI's one-line message.
HIDDEN = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def check_in_process(path: Path) -> Notebook | None:
    """Load and analyse (which loads again); returns the notebook, or None if refused.

    No warning may escape either: the CLI would print it on stderr next to its one-line message.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb = _check_in_process(path)
    shown = [w for w in caught if not issubclass(w.category, HIDDEN)]
    assert not shown, [str(w.message) for w in shown]
    return nb


def _check_in_process(path: Path) -> Notebook | None:
    try:
        nb = api.load(path, SETTINGS)
    except Exception as error:  # noqa: BLE001 - anything is checked against the contract
        assert_refusal(error, path)
        return None
    assert isinstance(nb, Notebook)
    try:
        analysis = api.analyze(path, SETTINGS)
    except Exception as error:  # noqa: BLE001
        assert_refusal(error, path)
        return None
    assert analysis.notebook == nb  # a second load gives the same notebook (ids are derived)
    code_cells = {c.index for c in nb.cells if c.cell_type == "code"}
    for finding in analysis.findings:
        assert finding.span is None or finding.span.cell in code_cells, finding
    return nb


_FOLDER = tempfile.TemporaryDirectory(prefix="nbharden-fuzz-")  # removed at exit


@contextmanager
def notebook_file(data: bytes) -> Iterator[Path]:
    """``data`` as a notebook file (one path, rewritten for each case: cheaper than a folder each)."""
    path = Path(_FOLDER.name) / "fuzz.ipynb"
    path.write_bytes(data)
    try:
        yield path
    finally:
        path.unlink()


# --- (a) structured notebooks ---------------------------------------------------------------------
#
# Drawn with module-level sampled_from strategies over fixed pools: cheap (hypothesis spends
# milliseconds labelling a strategy built inside a draw) and uniform. Hypothesis favours the first
# choice of a pool, so the first choice is always the benign one and hostile values are spiced in.

_POOLS: dict[int, tuple[list[Any], st.SearchStrategy[Any]]] = {}


def pick(draw: st.DrawFn, pool: list[Any]) -> Any:
    """One of ``pool`` (a module-level list), through one cached strategy per pool."""
    cached = _POOLS.get(id(pool))
    if cached is None or cached[0] is not pool:
        # hypothesis also favours the last choice: make it the first one again
        cached = _POOLS[id(pool)] = (pool, st.sampled_from([*pool, pool[0]]))
    return draw(cached[1])


def one_in(draw: st.DrawFn, odds: int) -> bool:
    """True about once in ``odds`` draws (the True sits in the middle of the pool)."""
    half = odds // 2
    return bool(
        pick(draw, _ODDS.setdefault(odds, [False] * half + [True] + [False] * (odds - half - 1)))
    )


_ODDS: dict[int, list[bool]] = {}

#: Hostile JSON values for any field: wrong types, empty, huge and odd values.
HOSTILE: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    7,
    2**64,
    -(2**70),
    1.5,
    -0.0,
    float("nan"),
    float("inf"),
    "",
    "x",
    "code",
    "\x00",
    "\ud800",
    "\ufeff",
    " " * 3,
    [],
    [None],
    ["a", 1],
    [[[]]],
    {},
    {"a": 1},
    {"cell_type": "code"},
    {"": None},
    {"\x00": [1]},
]
FRAGMENTS = [
    # plain Python
    "x = 1",
    "y = x + 1",
    "import pandas as pd",
    "from os.path import *",
    "import numpy as np, os",
    "df = pd.read_csv('data.csv')",
    "df.head()",
    "def f(a, b=2):\n    return a + b",
    "class C:\n    z = 1\n    def m(self):\n        return self.z",
    "for i in range(3):\n    total = i",
    "with open('/home/me/out.txt', 'w') as fh:\n    fh.write('x')",
    "password = 'hunter2hunter2'",
    "url = 'postgresql://user:pass@host/db'",
    "x",
    "x;",
    "print(x, sep='', file=None)",
    "lambda: (yield)",
    "(z := 3)",
    "match x:\n    case 1:\n        pass\n    case _:\n        pass",
    "@f\ndef g():\n    pass",
    "global q\nq = 1",
    "del x",
    "x += 1",
    "a, *b = [1, 2, 3]",
    "f'{x!r:>{y}}'",
    "assert x, 'msg'",
    "try:\n    pass\nexcept (ValueError, TypeError) as e:\n    raise",
    "import asyncio\nawait asyncio.sleep(0)",
    "async with a as b:\n    pass",
    "_",
    "__",
    "_3 + Out[2] + In[1]",
    "exec('x = 1')",
    "__import__('os').system('true')",
    "if __name__ == '__main__':\n    main()",
    "ünïcode = 'ß'",
    "s = '\\x00'",
    "x = 1 if y else 2  # comment",
    "\t\tindented = 1",
    "    x = 1\n    y = 2",
    "x = (\n1,\n2)",
    "x = \\\n  1",
    '"""docstring"""',
    "pass",
    "",
    "\n\n",
    "# only a comment",
    # IPython
    "%matplotlib inline",
    "%time y = 2",
    "%timeit -n1 x + 1",
    "%%time\ny = 2",
    "%%bash\nls -l",
    "%%writefile out.py\nprint('hi')",
    "%%capture cap\nx = 1",
    "!ls -la",
    "files = !ls",
    "x?",
    "x??",
    "?x",
    "%load_ext autoreload\n%autoreload 2",
    "%env A=1",
    "%run other.ipynb",
    "%pip install pandas",
    ">>> a = 1\n... b = 2",
    "In [1]: a = 1",
    "/print x",
    ",f a b",
    ";f a b",
    "%config InlineBackend.figure_format = 'svg'",
    "display(x)",
    "get_ipython().run_line_magic('time', 'x')",
    # characters
    "x = 1\r\ny = 2",
    "x = 1\ry = 2",
    "x = 1\x0cy = 2",
    "x = 1\u2028y = 2",
    "x\u200b = 1",
    "𝔁 = 1",
    "x = '" + "a" * 3000 + "'",
    "if x:\n" + "".join("    " * i + "if x:\n" for i in range(1, 15)) + "    " * 15 + "pass",
]
#: Code that load refuses: not Python 3, bad characters, too deep for LibCST.
BAD_FRAGMENTS = [
    "print 'hello'",
    "print x, y",
    "try:\n    pass\nexcept ValueError, e:\n    pass",
    "exec 'x = 1'",
    "x = 0777",
    "x = ur'text'",
    "`x`",
    "raise ValueError, 'no'",
    "x <> y",
    "return x",
    "yield x",
    "nonlocal x",
    "break",
    "def f(:\n    pass",
    "x = (",
    "x = ]",
    "library(ggplot2)\nx <- c(1, 2, 3)",
    'println!("{}", x);',
    "SELECT * FROM t;",
    "using DataFrames",
    "x = 1\x00",
    "\ufeffx = 1",
    "x = '\ud800'",
    "x = " + "(" * 150 + "1" + ")" * 150,
    "x = " + "[" * 150 + "]" * 150,
    "x = " + " + ".join(["1"] * 500),
    "x = " + " and ".join(["y"] * 200),
    "x = (" + "'a' " * 300 + ")",
]
SEPARATORS = ["\n", "\n", "\r\n", "\n\n", "\n", "\r", "; ", "\n    ", ""]
fragment_lists = st.lists(st.sampled_from([*FRAGMENTS, FRAGMENTS[0]]), min_size=1, max_size=3)
noise = st.text(alphabet="%!?()[]{}:;,.=+-*/\\'\"#@ \t\nabcx01_\x00\ufeff\u00e9", max_size=30)


def code_text(draw: st.DrawFn) -> str:
    if one_in(draw, 12):
        return draw(noise)
    parts = draw(fragment_lists)
    if one_in(draw, 12):
        parts.insert(draw(st.integers(0, len(parts))), pick(draw, BAD_FRAGMENTS))
    return str(pick(draw, SEPARATORS)).join(parts)


SOURCE_FORMS = ["string", "lines", "string", "lines", "mixed", "empty", "hostile"]
PLAIN_SOURCES = ["string", "lines"]


def source_value(draw: st.DrawFn, text: str) -> Any:
    """A cell source as nbformat writes it (a string or a list of lines), now and then not."""
    form = pick(draw, SOURCE_FORMS) if one_in(draw, 12) else pick(draw, PLAIN_SOURCES)
    lines = text.splitlines(keepends=True)
    if form == "lines":
        return lines
    if form == "mixed":
        return [*lines, 7, None]
    if form == "empty":
        return []
    if form == "hostile":
        return pick(draw, HOSTILE)
    return text


CORRUPTIONS = ["drop", "replace", "add"]
UNKNOWN_KEYS = ["extra", "", "cells", "source", "\x00"]


def corrupted(draw: st.DrawFn, value: dict[str, Any], odds: int) -> dict[str, Any]:
    """``value``, once in ``odds`` with a key dropped, a value made hostile or an unknown key."""
    if not one_in(draw, odds):
        return value
    value = dict(value)
    for _ in range(1 + int(one_in(draw, 3))):
        keys = sorted(value)
        action = pick(draw, CORRUPTIONS)
        if action == "add" or not keys:
            value[pick(draw, UNKNOWN_KEYS)] = pick(draw, HOSTILE)
        elif action == "drop":
            del value[keys[draw(st.integers(0, len(keys) - 1))]]
        else:
            value[keys[draw(st.integers(0, len(keys) - 1))]] = pick(draw, HOSTILE)
    return value


ID_POOL: list[Any] = ["a", "b", "cell-1", "cell-2", "cell-3", "cell-2-2", "same", "x" * 64]
BAD_IDS: list[Any] = ["<missing>", "x" * 65, "bad id", "", 5, None]
OUTPUTS: list[Any] = [
    {"output_type": "stream", "name": "stdout", "text": ["hi\n"]},
    {"output_type": "stream", "name": "stderr", "text": "warn"},
    {
        "output_type": "execute_result",
        "execution_count": 1,
        "data": {"text/plain": ["1"]},
        "metadata": {},
    },
    {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=\n"}, "metadata": {}},
    {"output_type": "error", "ename": "NameError", "evalue": "x", "traceback": ["\x1b[0;31m"]},
]
BAD_OUTPUTS: list[Any] = [
    {"output_type": "pyout", "text": "old", "prompt_number": 1},
    {"output_type": "stream", "stream": "stdout", "text": "v3"},
    {"output_type": 5},
    {"output_type": "display_data"},
    {"name": "stdout"},
]
CELL_METADATA: list[Any] = [{}, {"tags": ["parameters"]}, {"tags": ["step:load", "x"]}]
BAD_CELL_METADATA: list[Any] = [{"tags": "oops"}, {"tags": [1, None, "ok"]}, [], {"collapsed": 1}]
CELL_TYPES = ["code", "code", "code", "code", "markdown", "markdown", "raw"]
BAD_CELL_TYPES: list[Any] = ["heading", "Code", 3, None, ""]
COUNTS: list[Any] = [None, 1, 2, 3, 4, 10, 0]
BAD_COUNTS: list[Any] = [-1, "1", 1.0, True]
V3_LANGUAGES: list[Any] = ["python", "python", "python", "R", "julia", 3]
V3_CELL_TYPES: list[Any] = ["code", "code", "code", "markdown", "raw", "heading"]
PROMPTS: list[Any] = [1, 2, 3, "<missing>", 0]
BAD_PROMPTS: list[Any] = [None, -1, "1"]
LEVELS: list[Any] = [1, 2, 6, 3]
BAD_LEVELS: list[Any] = [0, 7, "1"]


_SPICED: dict[tuple[int, int, int], tuple[list[Any], list[Any], list[Any]]] = {}


def spiced(draw: st.DrawFn, good: list[Any], bad: list[Any], odds: int = 12) -> Any:
    """From ``good``, but about once in ``odds`` from ``bad`` (one draw from a mixed pool)."""
    key = (id(good), id(bad), odds)
    cached = _SPICED.get(key)
    if cached is None or cached[0] is not good or cached[1] is not bad:
        copies = max(1, round((odds - 1) * len(bad) / len(good)))
        cached = _SPICED[key] = (good, bad, good * copies + bad + good[:1])
    return pick(draw, cached[2])


def output_list(draw: st.DrawFn) -> list[Any]:
    return [spiced(draw, OUTPUTS, BAD_OUTPUTS, 60) for _ in range(draw(st.integers(0, 2)))]


@st.composite
def v4_cell(draw: st.DrawFn, with_ids: bool = True) -> Any:
    cell_type = spiced(draw, CELL_TYPES, BAD_CELL_TYPES, 80)
    cell: dict[str, Any] = {
        "cell_type": cell_type,
        "metadata": spiced(draw, CELL_METADATA, BAD_CELL_METADATA, 80),
        "source": source_value(draw, code_text(draw)),
    }
    cell_id = spiced(draw, ID_POOL, BAD_IDS, 30)
    if cell_id != "<missing>" and (with_ids or one_in(draw, 20)):
        cell["id"] = cell_id
    if cell_type == "code":
        cell["execution_count"] = spiced(draw, COUNTS, BAD_COUNTS, 80)
        cell["outputs"] = output_list(draw)
    if one_in(draw, 100):
        return pick(draw, HOSTILE)  # not an object at all
    return corrupted(draw, cell, 100)


@st.composite
def v3_cell(draw: st.DrawFn) -> Any:
    kind = spiced(draw, V3_CELL_TYPES, BAD_CELL_TYPES, 80)
    text = code_text(draw)
    if kind == "code":
        cell: dict[str, Any] = {
            "cell_type": "code",
            "collapsed": False,
            "input": source_value(draw, text),
            "language": pick(draw, V3_LANGUAGES) if one_in(draw, 30) else "python",
            "metadata": {},
            "outputs": [{"output_type": "pyout", "prompt_number": 1, "text": "1", "metadata": {}}]
            * draw(st.integers(0, 1))
            + ([pick(draw, OUTPUTS)] if one_in(draw, 20) else []),
        }
        number = spiced(draw, PROMPTS, BAD_PROMPTS, 60)
        if number != "<missing>":
            cell["prompt_number"] = number
    else:
        cell = {"cell_type": kind, "metadata": {}, "source": source_value(draw, text)}
        if kind == "heading":
            cell["level"] = spiced(draw, LEVELS, BAD_LEVELS, 60)
    return corrupted(draw, cell, 100)


v4_cells = st.lists(v4_cell(), min_size=1, max_size=5)
v4_old_cells = st.lists(v4_cell(with_ids=False), min_size=1, max_size=5)
v3_cells = st.lists(v3_cell(), min_size=1, max_size=5)

KERNEL_METADATA: list[Any] = [
    {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11.4"},
    },
    {},
    {"kernelspec": {"name": "python2", "language": "python", "display_name": "Python 2"}},
    {"kernelspec": {"name": "py", "language": " IPython3 ", "display_name": "x"}},
    {"language_info": {"name": "python"}},
]
OTHER_KERNELS: list[Any] = [
    {"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}},
    {"kernelspec": {"name": "julia-1.9", "language": "julia", "display_name": "Julia"}},
    {"language_info": {"name": "scala"}},
    {"kernelspec": {"name": "", "language": "", "display_name": ""}},
    {"kernelspec": {"name": "x", "display_name": "no language"}},
    {"kernelspec": "python3"},
    {"kernelspec": {"name": 3, "language": None, "display_name": "x"}},
    {"language_info": {"name": ["python"]}},
    {"language_info": {"name": "python"}, "kernelspec": {}},
    [],
]
VERSIONS = [4] * 14 + [3] * 4 + [1, 2, 5]
MINORS: list[Any] = [5, 5, 5, 4, 4, 0, 1, 2, 3, 99, 6, 5]
BAD_MAJORS: list[Any] = ["4", 4.0, 3.0, True, None, -1, 2**64, [4], *HOSTILE]
BAD_MINORS: list[Any] = ["5", 5.0, -1, None, True, *HOSTILE]


@st.composite
def notebook(draw: st.DrawFn) -> Any:
    version = pick(draw, VERSIONS)
    metadata = spiced(draw, KERNEL_METADATA, OTHER_KERNELS, 8)
    nb: dict[str, Any]
    if version == 4:
        minor = pick(draw, MINORS)
        nb = {
            "cells": draw(v4_cells if minor >= 5 else v4_old_cells),
            "metadata": metadata,
            "nbformat": 4,
            "nbformat_minor": minor,
        }
    elif version == 3:
        worksheet = {"cells": draw(v3_cells), "metadata": {}}
        nb = {
            "metadata": {"name": "old", **metadata} if isinstance(metadata, dict) else metadata,
            "nbformat": 3,
            "nbformat_minor": 0,
            "worksheets": [worksheet] * draw(st.integers(1, 2)) if not one_in(draw, 10) else [],
        }
    elif version == 2:
        nb = {"metadata": metadata, "nbformat": 2, "worksheets": [{"cells": draw(v3_cells)}]}
    elif version == 1:
        nb = {"nbformat": 1, "cells": draw(v3_cells)}
    else:
        nb = {"cells": draw(v4_cells), "metadata": metadata, "nbformat": 5, "nbformat_minor": 0}
    if one_in(draw, 15):
        nb["cells" if version != 3 else "worksheets"] = []
    if one_in(draw, 25):
        nb["nbformat"] = pick(draw, BAD_MAJORS)
    if "nbformat_minor" in nb and one_in(draw, 25):
        nb["nbformat_minor"] = pick(draw, BAD_MINORS)
    if one_in(draw, 60):
        return pick(draw, HOSTILE)  # not an object at the top
    return corrupted(draw, nb, 30)


SERIALISED = [(False, 1), (True, None), (False, None), (True, 2)]
TOUCHES = ["bom", "trailing", "duplicate", "truncated"]
TRAILING = [b"\n", b" ", b"\x00", b"{}", b"\n,"]


@st.composite
def notebook_bytes(draw: st.DrawFn) -> bytes:
    """A generated notebook, serialised the ways a file may come: indents, escapes, BOM, NaN."""
    value = draw(notebook())
    ensure_ascii, indent = pick(draw, SERIALISED)
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8
    if one_in(draw, 25):
        touch = pick(draw, TOUCHES)
        if touch == "bom":
            data = b"\xef\xbb\xbf" + data
        elif touch == "trailing":
            data += pick(draw, TRAILING)
        elif touch == "duplicate" and data.startswith(b"{"):
            data = data[:1] + b'"cells": [], ' + data[1:]  # a duplicate key, maybe
        elif touch == "truncated":
            data = data[: len(data) // 2]
    return data


@fuzz_settings(FUZZ_EXAMPLES)
@given(data=notebook_bytes())
def test_fuzz_structured_notebooks(data: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    with notebook_file(data) as path:
        check_in_process(path)
    assert capfd.readouterr() == ("", "")  # the library never prints (nor logs through nbformat)


# --- (b) byte mutations of the fixtures -----------------------------------------------------------

#: Every fixture notebook (other engineers' too), small enough to mutate quickly.
SEEDS = sorted(
    (p for p in FIXTURES.glob("**/*.ipynb") if p.stat().st_size <= 256 * 1024),
    # hypothesis favours the first and last seed: make those good notebooks, not broken ones
    key=lambda p: (p.parent.name in ("broken", "errors"), p.relative_to(FIXTURES).as_posix()),
)
SEED_BYTES = [p.read_bytes() for p in SEEDS]
TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b"\\",
    b",",
    b":",
    b"0",
    b"-1",
    b"1e999",
    b"NaN",
    b"null",
    b"true",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\x00",
    b"\\u0000",
    b"\\ud800",
    b"\\n",
    b"\\t",
    b"%",
    b"!",
    b"?",
    b"(",
    b"print ",
    b"    ",
    b'"cell_type": "code", ',
    b'"id": "same", ',
    b'"nbformat": 3, ',
]

#: JSON-escaped code put at the start of a cell's source (the "code" mutation): stays valid JSON.
CODE_TOKENS = [
    b"x = 1\\n",
    b"print x\\n",
    b"%%time\\n",
    b"%time ",
    b"!ls\\n",
    b"x?\\n",
    b"    ",
    b"\\t",
    b"\\u0000",
    b"\\ud800",
    b"\\u2028",
    b"\\ufeff",
    b"\\r\\n",
    b"\\r",
    b"return 1\\n",
    b"await f()\\n",
    b"def f(:\\n",
    b"(",
    b"import os\\n",
    b"except E, e:\\n",
    b"x = y" + b" and y" * 150 + b"\\n",
    b"x = " + b"-" * 300 + b"1\\n",
    b"global x\\n",
    b"In [1]: ",
    b">>> ",
    b"%%bash\\n",
    b"_ + __\\n",
    b"password = 'p4ssw0rd-secret'\\n",
]
_SOURCE_KEY = re.compile(rb'"(?:source|input)":\s*\[?\s*"')

#: Bytes to set: any, or one that keeps a JSON string valid more often.
BYTES = st.sampled_from([*b"a (){}[]:;%!?.,#=+-*/'\t\\\"", *range(256), ord("x")])
mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 2**20), BYTES),
    st.tuples(st.just("delete"), st.integers(0, 2**20), st.integers(1, 16)),
    st.tuples(st.just("insert"), st.integers(0, 2**20), st.sampled_from(TOKENS)),
    st.tuples(st.just("code"), st.integers(0, 2**20), st.sampled_from(CODE_TOKENS)),
    st.one_of(  # these three nearly always break the JSON: one branch between them
        st.tuples(st.just("copy"), st.integers(0, 2**20), st.integers(0, 2**20)),
        st.tuples(st.just("truncate"), st.integers(0, 2**20), st.just(0)),
        st.tuples(st.just("splice"), st.integers(0, 2**20), st.integers(0, len(SEED_BYTES) - 1)),
    ),
    st.tuples(st.just("code"), st.integers(0, 2**20), st.sampled_from(CODE_TOKENS)),
)


def mutate(data: bytes, ops: list[tuple[str, int, Any]]) -> bytes:
    buf = bytearray(data)
    for op, at, arg in ops:
        # hypothesis favours small numbers: spread them over the file (0 stays the start)
        pos = ((at + 1) * 2654435761) % (len(buf) + 1)
        if op == "set" and pos < len(buf):
            buf[pos] = arg
        elif op == "delete":
            del buf[pos : pos + arg]
        elif op == "insert":
            buf[pos:pos] = arg
        elif op == "copy" and buf:
            start = ((arg + 1) * 2654435761) % len(buf)
            buf[pos:pos] = buf[start : start + 32]
        elif op == "truncate":
            del buf[pos:]
        elif op == "splice":
            other = SEED_BYTES[arg]
            buf[pos:] = other[pos % (len(other) + 1) :]
        elif op == "code":
            starts = [m.end() for m in _SOURCE_KEY.finditer(buf)]
            if starts:
                where = starts[at % len(starts)]
                buf[where:where] = arg
    return bytes(buf)


@fuzz_settings(FUZZ_EXAMPLES)
@given(
    seed=st.sampled_from([*range(len(SEED_BYTES)), 0]),
    ops=st.lists(mutation, min_size=1, max_size=3),
)
def test_fuzz_byte_mutations(
    seed: int, ops: list[tuple[str, int, Any]], capfd: pytest.CaptureFixture[str]
) -> None:
    with notebook_file(mutate(SEED_BYTES[seed], ops)) as path:
        check_in_process(path)
    assert capfd.readouterr() == ("", "")


def test_seeds_cover_the_fixtures() -> None:
    names = {p.relative_to(FIXTURES).parts[0] for p in SEEDS}
    assert {"broken", "load", "golden", "record", "cli"} <= names
    assert len(SEEDS) >= 40


# --- generate: plan, emit, format and verify on what loads ---------------------------------------


@fuzz_settings(GENERATE_EXAMPLES)
@given(
    data=st.one_of(
        notebook_bytes(),
        st.tuples(
            st.integers(0, len(SEED_BYTES) - 1), st.lists(mutation, min_size=1, max_size=2)
        ).map(lambda pair: mutate(SEED_BYTES[pair[0]], pair[1])),
    )
)
def test_fuzz_generate(data: bytes) -> None:
    with notebook_file(data) as path:
        if check_in_process(path) is None:
            return
        try:
            generated = api.generate(path, SETTINGS.replace(out=path.parent / "out"))
        except Exception as error:  # noqa: BLE001
            assert_refusal(error, path)
            return
        assert not (path.parent / "out").exists()  # generate writes nothing
        for name, text in generated.tree.as_dict().items():
            if name.endswith(".py"):
                compile(text, name, "exec", dont_inherit=True)  # every module re-parses


# --- the real CLI, on a sample --------------------------------------------------------------------


def collect(strategy: st.SearchStrategy[bytes], count: int, folder: Path) -> list[Path]:
    """``count`` derandomized examples of ``strategy`` written as notebooks into ``folder``."""
    paths: list[Path] = []

    @fuzz_settings(count)
    @given(data=strategy)
    def write(data: bytes) -> None:
        path = folder / f"nb{len(paths):05d}.ipynb"
        path.write_bytes(data)
        paths.append(path)

    write()
    return paths


def in_process(path: Path) -> tuple[int, str]:
    """What the CLI should say about ``path``: exit code (0 or 1 for findings, 2) and message."""
    try:
        analysis = api.analyze(path, SETTINGS)
    except NbhardenError as error:
        return error.exit_code, error.message
    worrying = [f for f in analysis.findings if f.severity.value in ("error", "warning")]
    return (1 if worrying else 0), ""


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbharden", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1", "PYTHONHASHSEED": "0"},
        stdin=subprocess.DEVNULL,
        check=False,
    )


SAMPLES: list[tuple[str, Callable[[], st.SearchStrategy[bytes]]]] = [
    ("structured", notebook_bytes),
    (
        "mutated",
        lambda: st.tuples(
            st.integers(0, len(SEED_BYTES) - 1), st.lists(mutation, min_size=1, max_size=3)
        ).map(lambda pair: mutate(SEED_BYTES[pair[0]], pair[1])),
    ),
]


@pytest.mark.parametrize("kind", [s[0] for s in SAMPLES])
@pytest.mark.slow
def test_fuzz_cli_analyze_agrees_with_the_library(kind: str, tmp_path: Path) -> None:
    strategy = dict(SAMPLES)[kind]()
    paths = collect(strategy, CLI_EXAMPLES // 2, tmp_path)
    names = [p.name for p in paths]
    proc = run_cli(["analyze", "--format", "json", *names], tmp_path)
    assert "Traceback" not in proc.stderr
    results = {r["notebook"]: r for r in json.loads(proc.stdout)}
    assert set(results) == set(names)
    refused = []
    for path in paths:
        code, message = in_process(path)
        error = results[path.name]["error"]
        if code == EXIT_BAD_INPUT:
            refused.append(path.name)
            assert error is not None, path.name
            assert (error["exit_code"], error["message"]) == (EXIT_BAD_INPUT, message)
        else:
            assert error is None, (path.name, error)
    # stderr: exactly one line per refused notebook, shaped like the library's message
    lines = proc.stderr.splitlines()
    assert len(lines) == len(refused), proc.stderr[-2000:]
    for line, name in zip(lines, refused, strict=True):
        assert shape(Path(name)).fullmatch(line), line
    assert proc.returncode == (2 if refused else max(in_process(p)[0] for p in paths))
    assert 0 < len(refused) < len(paths)  # the sample has both kinds


@pytest.mark.slow
def test_fuzz_cli_convert_refusals(tmp_path: Path) -> None:
    """convert --no-record --no-verify: one exact line per refused notebook and exit 2, writing
    nothing; alone in its process, a refused notebook exits 2 too."""
    paths = collect(notebook_bytes(), 100, tmp_path)
    refused = [p for p in paths if in_process(p)[0] == EXIT_BAD_INPUT][:40]
    assert len(refused) == 40
    expected = []
    for path in refused:
        with pytest.raises(InputError) as info:
            api.load(path, SETTINGS)
        expected.append(str(info.value).replace(str(path), path.name, 1))
    for batch in (refused, refused[:1]):
        proc = run_cli(
            ["convert", *(p.name for p in batch), "--no-record", "--no-verify"], tmp_path
        )
        assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
        assert proc.stderr.splitlines() == expected[: len(batch)]
        assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
