"""Before/after pairs for the codemods in nbharden.transform.codemods (LibCST ``CodemodTest``
style), plus a check that what ``PrintToLogging`` logs is exactly what ``print`` printed.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import libcst as cst
import pytest
from fixture_cells import fixture_cells
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from nbequiv.grammar import Case, notebooks

from nbharden import api, libcst_speed
from nbharden.settings import Settings
from nbharden.transform.codemods import (
    Chain,
    DisplayToLog,
    LiftLiterals,
    PrintToLogging,
    ShowToSave,
    find_all,
    names_in,
)


def assert_codemod(transformer: cst.CSTTransformer, before: str, after: str) -> None:
    """``before`` through ``transformer`` gives exactly ``after`` (both dedented), and the result
    parses.
    """
    result = cst.parse_module(dedent(before)).visit(transformer).code
    assert result == dedent(after)
    compile(result, "<after>", "exec")


# --- PrintToLogging -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("print(a, b)\n", 'logger.info("%s %s", a, b)\n'),
        ("print(x)\n", 'logger.info("%s", x)\n'),
        # one string literal goes as the message itself: logging does not %-format a message without
        # args
        ("print('hello')\n", "logger.info('hello')\n"),
        ("print(f'x={x}')\n", "logger.info(f'x={x}')\n"),
        ("print('a' 'b')\n", "logger.info('a' 'b')\n"),
        ("print()\n", 'logger.info("")\n'),
        ("print('total', n, end='')\n", "logger.info(\"%s %s\", 'total', n)\n"),
        ("print(a, b, sep=', ')\n", "logger.info(\"%s\", ', '.join(map(str, (a, b))))\n"),
        ("print(x, sep='')\n", "logger.info(\"%s\", ''.join(map(str, (x,))))\n"),
        ("print(*items)\n", 'logger.info("%s", " ".join(map(str, (*items,))))\n'),
        ("print(a, *rest)\n", 'logger.info("%s", " ".join(map(str, (a, *rest))))\n'),
        (
            "def report(v):\n    print('value', v)\n    return v\n",
            "def report(v):\n    logger.info(\"%s %s\", 'value', v)\n    return v\n",
        ),
        ("print(len(print_me(x)))\n", 'logger.info("%s", len(print_me(x)))\n'),
    ],
)
def test_print_to_logging(before: str, after: str) -> None:
    codemod = PrintToLogging()
    assert_codemod(codemod, before, after)
    assert codemod.count == before.count("print(")


@pytest.mark.parametrize(
    "code",
    [
        "print('warning', file=sys.stderr)\n",
        "print(x, file=fh, sep='-')\n",
        "obj.print(x)\n",
        "pprint(x)\n",
        "log = print\n",
    ],
)
def test_print_to_logging_leaves_real_output_and_other_calls(code: str) -> None:
    codemod = PrintToLogging()
    assert_codemod(codemod, code, code)
    assert codemod.count == 0


def test_print_to_logging_uses_the_given_logger_name() -> None:
    assert_codemod(PrintToLogging("logger_"), "print(x)\n", 'logger_.info("%s", x)\n')


@pytest.mark.parametrize(
    "call",
    [
        "print(1, 'two', [3])",
        "print('100%', 5)",
        "print('%s literally')",
        "print(a, b, sep=' | ')",
        "print(*items, sep='')",
        "print(*items)",
        "print(x, sep='-')",
        "print()",
        "print(f'{a}%{b}')",
    ],
)
def test_logged_message_equals_printed_text(call: str) -> None:
    """The codemod keeps the text: run the print and the generated logging call, compare the two."""
    namespace = {"a": 1.5, "b": "bee", "x": None, "items": (1, "z", 3.0)}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(call, dict(namespace))
    new = cst.parse_module(call).visit(PrintToLogging("log")).code
    assert "print" not in new
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log = logging.getLogger("test_codemods.print")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        exec(new, {**namespace, "log": log})
    finally:
        log.removeHandler(handler)
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert records[0].getMessage() + "\n" == printed.getvalue()


# --- ShowToSave -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aliases", "direct", "before", "after"),
    [
        ({"plt"}, set(), "plt.show()\n", "show_figures()\n"),
        ({"plt"}, set(), "plt.show(block=False)\n", "show_figures()\n"),
        (
            {"pyplot", "plt"},
            set(),
            "pyplot.show()\nplt.show()\n",
            "show_figures()\nshow_figures()\n",
        ),
        (set(), {"show"}, "show()\n", "show_figures()\n"),
        (
            {"plt"},
            set(),
            "for k in range(2):\n    plt.plot([k])\n    plt.show()\n",
            "for k in range(2):\n    plt.plot([k])\n    show_figures()\n",
        ),
    ],
)
def test_show_to_save(aliases: set[str], direct: set[str], before: str, after: str) -> None:
    codemod = ShowToSave(aliases, direct)
    assert_codemod(codemod, before, after)
    assert codemod.count == after.count("show_figures()")


@pytest.mark.parametrize(
    "code",
    [
        "fig.show()\n",  # a Figure's own show, not pyplot's
        "plt.show()\n",  # `plt` is not an alias of pyplot in this notebook
        "show()\n",  # not imported from pyplot
        "plt.plot.show()\n",
        "img.show()\n",
    ],
)
def test_show_to_save_leaves_other_shows(code: str) -> None:
    codemod = ShowToSave({"pyplot"}, set())
    assert_codemod(codemod, code, code)
    assert codemod.count == 0


# --- DisplayToLog ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("display(x)\n", 'logger.info("%s", x)\n'),
        ("display(a, b)\n", 'logger.info("%s %s", a, b)\n'),
        (
            "for key in sorted(data):\n    display(key)\n",
            'for key in sorted(data):\n    logger.info("%s", key)\n',
        ),
        (
            "def show(df):\n    display(df.head())\n",
            'def show(df):\n    logger.info("%s", df.head())\n',
        ),
    ],
)
def test_display_to_log(before: str, after: str) -> None:
    assert_codemod(DisplayToLog(), before, after)


@pytest.mark.parametrize(
    "code",
    [
        "display(x, raw=True)\n",  # display options have no logging equivalent
        "display(*frames)\n",
        "IPython.display.display(x)\n",
        "obj.display(x)\n",
    ],
)
def test_display_to_log_leaves_other_calls(code: str) -> None:
    assert_codemod(DisplayToLog(), code, code)


def test_display_to_log_uses_the_given_logger_name() -> None:
    assert_codemod(DisplayToLog("log2"), "display(x)\n", 'log2.info("%s", x)\n')


# --- LiftLiterals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "used"),
    [
        ("df = pd.read_csv('data/sales.csv')\n", "df = pd.read_csv(sales_path)\n", {"sales_path"}),
        (
            'df = pd.read_csv("data/sales.csv", sep=";")\n',
            'df = pd.read_csv(sales_path, sep=";")\n',
            {"sales_path"},
        ),
        ("fh = open(file='data/sales.csv')\n", "fh = open(file=sales_path)\n", {"sales_path"}),
        (
            "r = get('https://example.com/x.json')\nd = load('data/sales.csv')\n",
            "r = get(x_url)\nd = load(sales_path)\n",
            {"x_url", "sales_path"},
        ),
        # only call arguments: an assignment, a bytes literal, an f-string and other strings stay
        ("p = 'data/sales.csv'\n", "p = 'data/sales.csv'\n", set()),
        ("f(b'data/sales.csv')\n", "f(b'data/sales.csv')\n", set()),
        ("f(f'data/sales.csv')\n", "f(f'data/sales.csv')\n", set()),
        ("f('data/other.csv')\n", "f('data/other.csv')\n", set()),
    ],
)
def test_lift_literals(before: str, after: str, used: set[str]) -> None:
    codemod = LiftLiterals({"data/sales.csv": "sales_path", "https://example.com/x.json": "x_url"})
    assert_codemod(codemod, before, after)
    assert codemod.used == used


# --- Chain and helpers ----------------------------------------------------------------------------


def test_chain_equals_the_codemods_one_after_another() -> None:
    code = dedent(
        """\
        for name in names:
            display(name)
            print(name, 'data/sales.csv')
            plt.show()
        df = pd.read_csv('data/sales.csv')
        """
    )
    made = [
        PrintToLogging(),
        ShowToSave({"plt"}),
        DisplayToLog(),
        LiftLiterals({"data/sales.csv": "sales_path"}),
    ]
    one_pass = cst.parse_module(code).visit(Chain(*made)).code
    sequential = cst.parse_module(code)
    for codemod in [
        PrintToLogging(),
        ShowToSave({"plt"}),
        DisplayToLog(),
        LiftLiterals({"data/sales.csv": "sales_path"}),
    ]:
        sequential = sequential.visit(codemod)
    assert one_pass == sequential.code
    assert "print(" not in one_pass and "display(" not in one_pass and "show_figures()" in one_pass
    assert "pd.read_csv(sales_path)" in one_pass
    assert made[0].count == 1 and made[1].count == 1  # type: ignore[attr-defined]


def test_chain_rewrite_returns_a_statement_without_a_call_itself_and_rewrites_the_others() -> None:
    chain = Chain(PrintToLogging(), LiftLiterals({"data/sales.csv": "sales_path"}))
    quiet = cst.parse_statement("path = 'data/sales.csv'\n")  # a literal, but no call to lift it from
    assert chain.rewrite(quiet) is quiet
    assert cst.Module([]).code_for_node(quiet.visit(chain)) == cst.Module([]).code_for_node(quiet)
    loud = cst.parse_statement("print(pd.read_csv('data/sales.csv'))\n")
    rewritten = chain.rewrite(loud)
    assert isinstance(rewritten, cst.CSTNode)
    assert cst.Module([]).code_for_node(rewritten) == cst.Module([]).code_for_node(loud.visit(chain))
    assert "sales_path" in cst.Module([]).code_for_node(rewritten)


def test_names_in_collects_every_identifier() -> None:
    module = cst.parse_module("def f(a):\n    return b.c + a\nlogger = 1\n")
    assert names_in(module) == {"f", "a", "b", "c", "logger"}


class _VisitedNames(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def _visited_names(node: cst.CSTNode) -> set[str]:
    visitor = _VisitedNames()
    libcst_speed._LIBCST_VISIT(node, visitor)  # LibCST's own visit, not nbharden's walk that replaces it
    return visitor.names


class _Visited(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.nodes.append(node)
        return True


def _visit_order(node: cst.CSTNode) -> list[int]:
    visitor = _Visited()
    libcst_speed._LIBCST_VISIT(node, visitor)
    return [id(n) for n in visitor.nodes]


def _same_walks(node: cst.CSTNode) -> bool:
    """names_in and find_all walk fields, not a visitor (issue 17): the same names, and every node in
    LibCST's visit order (identity)."""
    every = [id(n) for n in find_all(node, cst.CSTNode)]
    return names_in(node) == _visited_names(node) and every == _visit_order(node)


def test_names_in_and_find_all_equal_a_visitor_on_every_cell_of_the_fixtures() -> None:
    """On every code cell of every fixture notebook nbharden reads (magics masked as the analysis sees them)."""
    cells = 0
    for path, index, module in fixture_cells():
        cells += 1
        assert _same_walks(module), (path, index)
    assert cells > 300


@settings_(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=notebooks())
def test_names_in_and_find_all_equal_a_visitor_on_drawn_notebooks(case: Case) -> None:
    for code in case.cells:
        assert _same_walks(cst.parse_module(code))


def test_print_to_logging_keeps_stdout_silent_in_generated_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The rewritten code prints nothing: the text goes to the logger only."""
    new = cst.parse_module("print('x', 1)\n").visit(PrintToLogging("log")).code
    log = logging.getLogger("test_codemods.silent")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    exec(new, {"log": log})
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_print_and_display_the_notebook_binds_itself_are_kept(make_notebook: Callable[..., Path]) -> None:
    # NBH604 and the display fixes apply to the builtins only: a print imported from rich or a display the
    # notebook defines does the notebook's own work (found as a bug: both became logger.info, the import dropped)
    nb = make_notebook(
        [
            "from rich import print\nprint('[bold]start[/bold]')",
            "seen = []\ndef display(x):\n    seen.append(x)",
            "for i in range(2):\n    display(i)\ndisplay(3)\ncount = len(seen)",
        ]
    )
    gen = api.generate(nb, Settings(out=nb.parent / "out", record=False))
    files = gen.tree.as_dict()
    code = next(text for path, text in files.items() if path.endswith("/steps.py"))
    assert "from rich import print" in code
    assert "print(\"[bold]start[/bold]\")" in code
    assert "display(i)" in code and "display(3)" in code
    assert "logger.info" not in code
    assert "NBH604" not in [f.code for f in gen.findings]
