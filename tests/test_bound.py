"""transform.bound: which names a block certainly binds (emit guards a step's results that may be unbound).

The property test draws small programs of branches, loops, ``try``, ``with``, ``del`` and ``except ... as``,
runs each on every combination of its conditions, and checks that every name ``certainly_bound`` reports is
bound at the end of every run that gets there.
"""

from __future__ import annotations

import itertools
import textwrap

import libcst as cst
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nbharden.transform.bound import certainly_bound, maybe_unbound

NAMES = ("a", "b")
CONDITIONS = ("p", "q")
START = frozenset({"a", *CONDITIONS})  # the parameters: bound before the block


@st.composite
def blocks(draw: st.DrawFn, depth: int = 0, in_loop: bool = False) -> list[str]:
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        lines += draw(statements(depth, in_loop))
    return lines


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


@st.composite
def statements(draw: st.DrawFn, depth: int, in_loop: bool) -> list[str]:
    name = draw(st.sampled_from(NAMES))
    cond = draw(st.sampled_from(CONDITIONS))
    simple = [
        f"{name} = 1",
        f"del {name}",
        f"{name} += 1",
        f"({name} := 2)",
        f"import os as {name}",
        f"from math import pi as {name}",
        f"if {cond}: int('x')",  # raises ValueError, twice as likely as the others
        f"if {cond}: int('x')",
        "raise ValueError('always')",
        "pass",
    ]
    if in_loop:
        simple += [f"if {cond}: break", f"if {cond}: continue"]
    kinds = (
        ["simple"] * 6
        + ["def", "class"]
        + (
            ["if", "if-else", "for", "while", "try", "try-finally", "suppress", "with-as"]
            if depth < 3
            else []
        )
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "simple":
        return [draw(st.sampled_from(simple))]
    if kind == "def":
        return [f"def {name}():", "    return 1"]
    if kind == "class":
        return [f"class {name}:", "    pass"]
    inner = draw(blocks(depth + 1, in_loop))
    if kind == "if":
        return [f"if {cond}:", *_indent(inner)]
    if kind == "if-else":
        return [f"if {cond}:", *_indent(inner), "else:", *_indent(draw(blocks(depth + 1, in_loop)))]
    if kind in ("for", "while"):
        body = draw(
            blocks(depth + 1, kind == "for")
        )  # no ``continue`` past the while's closing break
        iterable = draw(
            st.sampled_from(["range(0)", "range(2)", "range(1, 3)", "[]", "[1]", "'ab'", "q * [1]"])
        )
        head = f"for _ in {iterable}:" if kind == "for" else f"while {cond}:"
        tail = ["    break"] if kind == "while" else []  # a while loop runs at most once
        return [head, *_indent(body), *tail]
    if kind in ("try", "try-finally"):
        handler = draw(st.sampled_from([*NAMES, None]))
        lines = ["try:", *_indent(inner)]
        lines += [f"except ValueError as {handler}:" if handler else "except ValueError:"]
        lines += _indent(draw(blocks(depth + 1, in_loop)))
        if draw(st.booleans()):
            lines += ["else:", *_indent(draw(blocks(depth + 1, in_loop)))]
        if kind == "try-finally":
            lines += ["finally:", *_indent(draw(blocks(depth + 1, in_loop)))]
        return lines
    if kind == "suppress":
        return ["with suppress(ValueError):", *_indent(inner)]
    return [f"with nullcontext() as {name}:", *_indent(inner)]


def _run(source: str) -> list[set[str] | None]:
    """The names of NAMES bound at the end of ``source`` (a function body), for every combination of the
    conditions; None where the run raised before the end."""
    function = (
        "def block(p, q, a):\n" + textwrap.indent(source, "    ") + "\n    return set(locals())\n"
    )
    namespace: dict[str, object] = {}
    exec(
        "from contextlib import suppress, nullcontext\n" + function,
        namespace,
    )
    runs: list[set[str] | None] = []
    for p, q in itertools.product([False, True], repeat=2):
        try:
            bound = namespace["block"](p, q, 0)  # type: ignore[operator]
        except (NameError, ValueError, TypeError):
            runs.append(None)
        else:
            runs.append(set(bound) & set(NAMES))
    return runs


@settings(max_examples=600, deadline=None)
@given(blocks())
# shapes the draw reaches rarely: a try body stopped before its binding; a name bound again in a handler
@example(["try:", "    if p: int('x')", "    b = 1", "except ValueError:", "    pass"])
@example(["b = 1", "try:", "    int('x')", "except ValueError as b:", "    b = 2"])
@example(["for _ in range(2):", "    if p: break", "    b = 1"])
def test_what_it_says_is_bound_is_bound_on_every_run(lines: list[str]) -> None:
    source = "\n".join(lines) + "\n"
    module = cst.parse_module(source)
    certain = certainly_bound(module.body, START)
    runs = _run(source)
    if certain is None:  # no path reaches the end
        assert runs == [None] * len(runs), f"said to raise on every path, got to the end:\n{source}"
        return
    for bound in runs:
        if bound is not None:
            said = certain & set(NAMES)
            assert said <= bound, f"{sorted(said - bound)} said bound, not bound:\n{source}"


def _unsure(source: str, names: tuple[str, ...], start: tuple[str, ...] = ()) -> list[str]:
    return maybe_unbound(cst.parse_module(textwrap.dedent(source)).body, names, start)


def test_the_usual_shapes_of_a_step_need_no_guard() -> None:
    usual = """\
        import pandas as pd
        with open("data.csv") as fh:
            data = pd.read_csv(fh)
        for col in data.columns:
            total = total + 1
        try:
            model = fit(data)
        except ValueError:
            model = None
        if total > 1:
            label = "many"
        else:
            label = "few"
        def helper():
            return data
        """
    assert _unsure(usual, ("pd", "data", "total", "model", "label", "helper"), ("total",)) == []


def test_a_name_bound_on_some_paths_only_needs_a_guard() -> None:
    assert _unsure("if flag:\n    m = 1\n", ("m", "flag"), ("flag",)) == ["m"]
    assert _unsure("for i in range(n):\n    m = i\n", ("m", "i")) == ["m", "i"]
    assert _unsure("with suppress(KeyError):\n    m = d['k']\n", ("m",)) == ["m"]
    assert _unsure("if flag:\n    del m\n", ("m",), ("m",)) == ["m"]
    assert _unsure(
        "try:\n    v = int(s)\nexcept ValueError as m:\n    v = 0\n", ("m", "v"), ("m",)
    ) == ["m"]


def test_a_loop_over_a_literal_that_is_not_empty_binds_its_variable() -> None:
    assert _unsure("for k in range(4):\n    a += k\n", ("a", "k"), ("a",)) == []
    assert _unsure("for k in ['x', 'y']:\n    last = k\n", ("k", "last")) == []
    # a pass a break or continue may cut short, or an iterable that may be empty: guarded
    assert _unsure("for k in range(4):\n    if k:\n        break\n    last = k\n", ("last",)) == [
        "last"
    ]
    assert _unsure("for k in range(n):\n    last = k\n", ("k", "last")) == ["k", "last"]


def test_a_path_that_raises_binds_everything_it_joins() -> None:
    assert _unsure("if x > 0:\n    y = 1\nelse:\n    raise ValueError(x)\n", ("y",)) == []
    assert (
        _unsure(
            "try:\n    raise KeyError(1)\nexcept KeyError as exc:\n    msg = str(exc)\n", ("msg",)
        )
        == []
    )


def test_a_name_the_block_never_binds_is_left_alone() -> None:
    """A module-level definition the step returns is no local of it: no guard (``locals()`` lacks it)."""
    assert _unsure("x = helper()\n", ("helper", "x")) == []
