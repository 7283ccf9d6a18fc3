"""The structural fingerprint of a matplotlib figure, and its comparison.

Loaded into the notebook's kernel by the recorder (by path, like ``_values.py``), which
fingerprints each figure a cell shows; copied verbatim into a generated project's
``tests/_figures.py``, where a step's test fingerprints the figures the step shows and
compares them with the recorded ones. It imports matplotlib and numpy only when a figure
is fingerprinted, and never nbharden.

What a fingerprint holds is what the figure shows, not how a matplotlib version draws it:
the figure's size (``"default"`` when it is ``rcParams["figure.figsize"]``), its title,
and per axes its titles, axis labels and scales, its position in the figure (what
``tight_layout`` changes), the limits when the code set them (autoscaled limits follow
from the data and from styles), how many lines, collections, patches, images and texts it
holds, the legend's and the texts' strings, and statistics of the data each kind of
artist draws (count, sum, sum of squares, minimum and maximum per coordinate). Colours,
fonts, ticks and pixels are left out.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Iterator
from typing import Any

#: Relative (and absolute) tolerance of the data statistics and limits.
TOLERANCE = 1e-6
#: Tolerance of an axes' position, in fractions of the figure: layouts depend on fonts a little.
POSITION_TOLERANCE = 0.015


def is_figure(obj: object) -> bool:
    """A matplotlib ``Figure`` (told without importing matplotlib)."""
    kind = type(obj)
    return kind.__name__ == "Figure" and kind.__module__.startswith("matplotlib")


def fingerprint(figure: Any) -> dict[str, Any]:
    """The fingerprint of ``figure`` (a matplotlib ``Figure``)."""
    import matplotlib

    width, height = (float(v) for v in figure.get_size_inches())
    default = [float(v) for v in matplotlib.rcParams["figure.figsize"]]
    size: Any = "default"
    if not (math.isclose(width, default[0]) and math.isclose(height, default[1])):
        size = [round(width, 4), round(height, 4)]
    title = getattr(figure, "_suptitle", None)
    return {
        "size": size,
        "suptitle": title.get_text() if title is not None else "",
        "axes_count": len(figure.axes),
        "axes": [_axes(ax) for ax in figure.axes],
    }


def _axes(ax: Any) -> dict[str, Any]:
    titles = [ax.get_title(loc) for loc in ("left", "center", "right")]
    legend = ax.get_legend()
    entry: dict[str, Any] = {
        "title": " | ".join(t for t in titles if t),
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "scale": [ax.get_xscale(), ax.get_yscale()],
        "position": [round(float(v), 4) for v in ax.get_position().bounds],
        "artists": {
            "lines": len(ax.lines),
            "collections": len(ax.collections),
            "patches": len(ax.patches),
            "images": len(ax.images),
            "texts": len(ax.texts),
        },
        "legend": ([t.get_text() for t in legend.get_texts()] if legend is not None else None),
        "texts": [t.get_text() for t in ax.texts],
        # a 3D axes' artists hold their 2D projection, made when the figure is drawn (the notebook
        # drew it, a test does not): what it draws is not comparable, its counts and labels are
        "data": _data(ax) if getattr(ax, "name", "") != "3d" else {},
    }
    if not ax.get_autoscalex_on():
        entry["xlim"] = [float(v) for v in ax.get_xlim()]
    if not ax.get_autoscaley_on():
        entry["ylim"] = [float(v) for v in ax.get_ylim()]
    return entry


def _data(ax: Any) -> dict[str, Any]:
    """Statistics of what the axes' artists draw, per kind of artist."""
    import numpy as np

    points: dict[str, list[Any]] = {
        "lines": [],
        "offsets": [],
        "paths": [],
        "patches": [],
    }
    arrays: list[Any] = []
    for line in ax.lines:
        points["lines"].append(np.asarray(line.get_xydata(), dtype=float))
    for collection in ax.collections:
        offsets = collection.get_offsets()
        points["offsets"].append(np.ma.filled(np.ma.asarray(offsets, dtype=float), np.nan))
        array = collection.get_array()
        if array is not None:
            arrays.append(np.ma.filled(np.ma.asarray(array, dtype=float), np.nan).ravel())
        paths = collection.get_paths()
        if type(collection).__name__ != "QuadMesh" and len(paths) <= 1000:
            points["paths"] += [np.asarray(p.vertices, dtype=float) for p in paths]
    for patch in ax.patches:
        vertices = patch.get_patch_transform().transform(patch.get_path().vertices)
        points["patches"].append(np.asarray(vertices, dtype=float))
    for image in ax.images:
        arrays.append(np.ma.filled(np.ma.asarray(image.get_array(), dtype=float), np.nan).ravel())
    found: dict[str, Any] = {}
    for kind, parts in points.items():
        pairs = [p.reshape(-1, 2) for p in parts if p.size and p.shape[-1] == 2]
        if pairs:
            both = np.concatenate(pairs)
            found[kind] = {"x": _stats(both[:, 0]), "y": _stats(both[:, 1])}
    if arrays:
        found["arrays"] = _stats(np.concatenate(arrays))
    return found


def _stats(values: Any) -> dict[str, float | int]:
    import numpy as np

    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"n": int(values.size), "finite": 0}
    return {
        "n": int(values.size),
        "finite": int(finite.size),
        "sum": float(finite.sum()),
        "sumsq": float((finite * finite).sum()),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


_DROP = object()


def common(prints: list[dict[str, Any]]) -> dict[str, Any]:
    """What the fingerprints of the same figure in several runs agree on (a figure drawn from data
    that differs between runs: bootstrapped error bars, unseeded noise), marked ``"varies": True``;
    the first fingerprint itself when they all agree."""
    if all(p == prints[0] for p in prints[1:]):
        return prints[0]
    kept = _common(prints)
    return {**kept, "varies": True} if isinstance(kept, dict) else {"varies": True}


#: The statistics of one coordinate's values (``_stats``) that follow the values themselves.
_VALUE_STATS = frozenset({"sum", "sumsq", "min", "max"})


def _common(values: list[Any]) -> Any:
    first = values[0]
    if all(isinstance(v, dict) for v in values):
        if _VALUE_STATS & set(first):
            if all(_close(v, first) for v in values[1:]):
                return first
            # one coordinate's values differ between runs: none of their statistics is compared,
            # not even one the runs happened to share (a bootstrapped error bar's lowest bound over
            # 0/1 data is one of few fractions, the same in two runs and not in the third)
            values = [{k: x for k, x in v.items() if k not in _VALUE_STATS} for v in values]
            first = values[0]
        kept = {}
        for key in first:
            if all(key in v for v in values):
                part = _common([v[key] for v in values])
                if part is not _DROP:
                    kept[key] = part
        return kept
    same_length = all(isinstance(v, list) and len(v) == len(first) for v in values)
    if same_length and first and all(isinstance(item, dict) for item in first):
        return [_common([v[i] for v in values]) for i in range(len(first))]
    return first if all(v == first for v in values[1:]) else _DROP


def _close(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Two runs' statistics of a coordinate agree (within what the tests tolerate)."""
    return actual.keys() == expected.keys() and not differences(actual, expected)


# --- comparison (the generated tests) ----------------------------------------------------


def differences(actual: Any, expected: Any, path: str = "", partial: bool = False) -> list[str]:
    """Where ``actual`` differs from the recorded fingerprint ``expected`` (empty: the same).
    ``partial``: ``expected`` holds only what runs of the notebook agreed on (``common``), so the
    keys it lacks are not compared."""
    if isinstance(expected, dict):
        missing = not isinstance(actual, dict) or not set(expected) <= set(actual)
        if missing or (not partial and set(actual) != set(expected)):
            keys = sorted(actual) if isinstance(actual, dict) else actual
            return [f"{path or 'figure'}: {keys!r} != recorded {sorted(expected)!r}"]
        found: list[str] = []
        for key in expected:
            where = f"{path}.{key}" if path else key
            found += differences(actual[key], expected[key], where, partial)
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {actual!r} != recorded {expected!r}"]
        found = []
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            found += differences(a, e, f"{path}[{i}]", partial)
        return found
    if isinstance(expected, float) and isinstance(actual, int | float):
        position = ".position[" in path
        tolerance = POSITION_TOLERANCE if position else TOLERANCE
        rel = 0.0 if position else TOLERANCE
        if math.isclose(float(actual), expected, rel_tol=rel, abs_tol=tolerance):
            return []
        return [f"{path}: {actual!r} != recorded {expected!r}"]
    if actual != expected or type(actual) is not type(expected):
        return [f"{path}: {actual!r} != recorded {expected!r}"]
    return []


def check(actual: list[dict[str, Any]], expected: list[dict[str, Any]], where: str) -> None:
    """The figures shown (``actual``, fingerprints) are those recorded, in any order.

    Raises ``AssertionError`` naming what differs."""
    if len(actual) != len(expected):
        raise AssertionError(
            f"{where}: showed {len(actual)} figure(s); the notebook showed {len(expected)}"
        )
    left = list(actual)
    for number, recorded in enumerate(expected, 1):
        partial = bool(recorded.get("varies"))
        recorded = {k: v for k, v in recorded.items() if k != "varies"}
        same = next(
            (i for i, a in enumerate(left) if not differences(a, recorded, partial=partial)),
            None,
        )
        if same is None:
            found = differences(left[0], recorded, partial=partial)
            raise AssertionError(
                f"{where}: figure {number} differs from the notebook's:\n  "
                + "\n  ".join(found[:8])
            )
        del left[same]


@contextlib.contextmanager
def shown(module: Any) -> Iterator[list[dict[str, Any]]]:
    """The fingerprints of the figures shown while the block runs: those open when code of
    ``module`` calls its ``show_figures()``, then those still open at the end (the pipeline
    shows them after the step). Figures open before are closed first; all are closed after.
    """
    pyplot = importlib.import_module("matplotlib.pyplot")
    pyplot.close("all")
    prints: list[dict[str, Any]] = []

    def take() -> None:
        prints.extend(fingerprint(pyplot.figure(n)) for n in pyplot.get_fignums())

    original = getattr(module, "show_figures", None)

    def show_figures(*args: Any, **kwargs: Any) -> Any:
        take()
        return original(*args, **kwargs) if original is not None else None

    if original is not None:
        module.show_figures = show_figures
    try:
        yield prints
        take()
    finally:
        if original is not None:
            module.show_figures = original
        pyplot.close("all")
