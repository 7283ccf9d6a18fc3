"""Figures as outputs of a step: the fingerprint the recorder takes of each figure a cell shows
(``record/_figures.py``, also the generated tests' ``_figures.py``), its comparison, and which
recorded figures a step's test compares (``record.run._step_figures``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbharden.record import _figures
from nbharden.record.run import _step_figures

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Draw = dict[str, Any]

points = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=30
)
drawings = st.fixed_dictionaries(
    {
        "y": points,
        "scatter": points,
        "size": st.sampled_from([None, (8.0, 3.0), (12.0, 4.0)]),
        "title": st.text("abc xyz", max_size=8),
        "legend": st.booleans(),
        "bars": st.lists(st.integers(0, 50), min_size=1, max_size=6),
    }
)


def draw(spec: Draw) -> Any:
    """A figure like a notebook's: a line with a label, a scatter, bars in a second axes."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=spec["size"])
    ax.plot(range(len(spec["y"])), spec["y"], label="y")
    ax.scatter(spec["scatter"], spec["scatter"][::-1], s=8)
    ax.set_title(spec["title"])
    ax.set_xlabel("x")
    if spec["legend"]:
        ax.legend()
    bx.bar(range(len(spec["bars"])), spec["bars"])
    return fig


@pytest.fixture(autouse=True)
def _closed() -> Iterator[None]:
    yield
    plt.close("all")


def printed(spec: Draw, change: Callable[[Any], None] | None = None) -> dict[str, Any]:
    fig = draw(spec)
    if change is not None:
        change(fig)
    # through JSON, as the recording keeps it
    result: dict[str, Any] = json.loads(json.dumps(_figures.fingerprint(fig)))
    plt.close(fig)
    return result


def _scale_line(fig: Any) -> None:
    line = fig.axes[0].lines[0]
    line.set_ydata([v * 1.5 + 1 for v in line.get_ydata()])


CHANGES: dict[str, Callable[[Any], None]] = {
    "figsize": lambda fig: fig.set_size_inches(fig.get_size_inches()[0] + 1, 5),
    "a line's data": _scale_line,
    "an extra line": lambda fig: fig.axes[0].axhline(0),
    "a dropped scatter": lambda fig: fig.axes[0].collections[0].remove(),
    "a legend": lambda fig: fig.axes[1].legend(["bars"]),
    "tight_layout": lambda fig: fig.tight_layout(),
    "an axis label": lambda fig: fig.axes[1].set_ylabel("count"),
    "limits set": lambda fig: fig.axes[0].set_xlim(-3, 3),
    "a bar's height": lambda fig: fig.axes[1].patches[0].set_height(51),
}


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=drawings)
def test_the_same_drawing_gives_the_same_fingerprint(spec: Draw) -> None:
    first, again = printed(spec), printed(spec)
    assert first == again
    assert _figures.differences(again, first) == []
    _figures.check([again], [first], "step s")


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=drawings, change=st.sampled_from(sorted(CHANGES)))
def test_a_change_to_what_the_figure_shows_is_a_difference(spec: Draw, change: str) -> None:
    recorded = printed(spec)
    changed = printed(spec, CHANGES[change])
    assert _figures.differences(changed, recorded), change
    with pytest.raises(AssertionError, match="figure 1 differs"):
        _figures.check([changed], [recorded], "step s")


def test_figures_match_in_any_order_but_not_in_number() -> None:
    one = printed({"y": [1, 2], "scatter": [0, 1], "size": None, "title": "a", "legend": False,
                   "bars": [1]})  # fmt: skip
    two = printed({"y": [3, 1], "scatter": [0, 1], "size": (8.0, 3.0), "title": "b",
                   "legend": True, "bars": [2, 3]})  # fmt: skip
    _figures.check([two, one], [one, two], "step s")
    with pytest.raises(AssertionError, match="showed 1 figure"):
        _figures.check([one], [one, two], "step s")


def test_what_runs_disagree_on_is_not_compared() -> None:
    base = {"y": [1.0, 2.0], "scatter": [0.0, 1.0], "size": None, "title": "t", "legend": True,
            "bars": [1, 2]}  # fmt: skip
    first, other = printed(base), printed({**base, "y": [5.0, 7.0]})  # noisy line data
    kept = _figures.common([first, other])
    assert kept["varies"] is True
    assert kept["axes"][0]["data"]["lines"]["y"] == {"n": 2, "finite": 2}  # not its values
    assert kept["axes"][0]["data"]["offsets"] == first["axes"][0]["data"]["offsets"]
    # a third drawing with other noise passes; one without the scatter does not
    _figures.check([printed({**base, "y": [0.0, 9.0]})], [kept], "step s")
    with pytest.raises(AssertionError):
        _figures.check([printed(base, CHANGES["a dropped scatter"])], [kept], "step s")


# a coordinate drawn from few values (bootstrapped bounds of 0/1 data are fractions k/n): two runs
# often share a minimum or a maximum by chance
few = st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=3, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=st.lists(few, min_size=3, max_size=3).filter(lambda r: sorted(r[0]) != sorted(r[1])))
def test_a_coordinate_that_varies_between_runs_is_compared_by_count_only(
    runs: list[list[float]],
) -> None:
    """Recorded from two runs whose line data differ, a third run's drawing passes, whatever minimum
    or maximum the first two happened to share (titanic_logreg's seaborn error bars, CI)."""
    base = {"scatter": [0.0, 1.0], "size": None, "title": "t", "legend": False, "bars": [1]}
    first, other, third = (printed({**base, "y": y}) for y in runs)
    kept = _figures.common([first, other])
    assert kept["axes"][0]["data"]["lines"]["y"] == {"n": 3, "finite": 3}
    _figures.check([third], [kept], "step s")
    # what did not vary is still compared
    assert kept["axes"][0]["data"]["lines"]["x"] == first["axes"][0]["data"]["lines"]["x"]
    with pytest.raises(AssertionError, match="differs"):
        _figures.check([printed({**base, "y": runs[2], "bars": [2]})], [kept], "step s")


def test_runs_that_agree_within_the_tolerance_keep_every_statistic() -> None:
    base = {"y": [1.0, 2.0], "scatter": [0.0, 1.0], "size": None, "title": "t", "legend": False,
            "bars": [1]}  # fmt: skip
    first, other = printed(base), printed({**base, "y": [1.0, 2.0 + 1e-12]})
    assert first != other
    kept = _figures.common([first, other])
    assert kept["axes"][0]["data"]["lines"]["y"] == first["axes"][0]["data"]["lines"]["y"]


def test_shown_takes_the_figures_a_module_shows_and_those_left_open() -> None:
    shown_by_module: list[int] = []

    class Module:
        @staticmethod
        def show_figures() -> None:
            shown_by_module.append(len(plt.get_fignums()))
            plt.close("all")

    with _figures.shown(Module) as prints:
        plt.figure(figsize=(3, 2))
        Module.show_figures()
        plt.figure(figsize=(4, 2))
    assert shown_by_module == [1]
    assert [p["size"] for p in prints] == [[3.0, 2.0], [4.0, 2.0]]
    assert plt.get_fignums() == []


FP = {"size": "default", "suptitle": "", "axes_count": 0, "axes": []}


def _fp(n: int) -> dict[str, Any]:
    return {**FP, "axes_count": n}


def test_a_step_compares_the_figures_its_cells_showed() -> None:
    first = {3: [(_fp(1), False)], 4: [(_fp(2), True)]}
    assert _step_figures([3, 4], first, [dict(first)], None, restored=False) == (_fp(1), _fp(2))
    assert _step_figures([5], first, [dict(first)], None, restored=False) == ()
    # not watched by the recorder: not compared
    assert _step_figures([3], None, [None], None, restored=False) is None


def test_a_figure_left_open_before_another_cell_of_the_step_draws_is_not_compared() -> None:
    # the inline backend showed cell 3's figure at its end; in the package cell 4 would draw into it
    first = {3: [(_fp(1), True)], 4: [(_fp(1), True)]}
    assert _step_figures([3, 4], first, [dict(first)], None, restored=False) is None


def test_figures_that_differ_between_runs_keep_what_the_runs_agree_on() -> None:
    first = {3: [({**_fp(1), "suptitle": "a"}, False)]}
    other = {3: [({**_fp(1), "suptitle": "b"}, False)]}
    (kept,) = _step_figures([3], first, [other], None, restored=False) or ()
    assert kept == {"size": "default", "axes_count": 1, "axes": [], "varies": True}
    # the same seed reproduced them and the test restores the generators: compared whole
    assert _step_figures([3], first, [other], dict(first), restored=True) == (first[3][0][0],)
    # a different number of figures per run: not compared
    assert _step_figures([3], first, [{3: []}], None, restored=False) is None


def _drawn(fig: Any) -> dict[str, Any]:
    fig.canvas.draw()  # as the notebook's inline backend does before it shows the figure
    return dict(json.loads(json.dumps(_figures.fingerprint(fig))))


@pytest.mark.parametrize("projection", [None, "3d", "polar"])
@given(xs=points)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_drawing_a_figure_does_not_change_its_fingerprint(
    projection: str | None, xs: list[float]
) -> None:
    """The recording fingerprints figures the notebook drew; a generated test, figures nobody drew.
    A 3D axes' scatter holds its 2D projection only once drawn (the local_module repro's test
    compared raw data with the recorded projection and failed)."""
    fig = plt.figure()
    ax = fig.add_subplot(projection=projection)
    if projection == "3d":
        ax.scatter(xs, xs[::-1], xs)
        ax.plot(xs, xs, xs)
    else:
        ax.scatter(xs, xs[::-1])
        ax.plot(xs, xs)
    ax.set_title("t")
    before = dict(json.loads(json.dumps(_figures.fingerprint(fig))))
    assert _figures.differences(_drawn(fig), before) == []
    plt.close(fig)
