"""Strict comparison of a value from the notebook with the same name's value from the pipeline.

Both ran in this process on the same inputs, so values must be equal, not close. What differs on
purpose between the two worlds is where notebook classes and functions live (``__main__`` there, the
generated package or a vendored local module here): those compare by name and by their state.
"""

from __future__ import annotations

import itertools
import types
from typing import Any

import numpy as np
import pandas as pd


class Difference(AssertionError):
    """The two values differ; the message says where and how."""


def _same_class(a: type, b: type) -> bool:
    if a is b:
        return True
    if (
        a.__name__ != b.__name__
    ):  # a class a step defines is cell_4.<locals>.Box, Box in the notebook
        return False
    # a notebook class (module __main__, or a local module) and its copy in the generated package
    ma, mb = a.__module__, b.__module__
    return "__main__" in (ma, mb) or ma.split(".")[-1] == mb.split(".")[-1]


class _Draining:
    """Whether ``compare`` runs generators now (``on``), and whether it met one while it did not."""

    on = True
    skipped = False


def compare_at_end(pairs: list[tuple[Any, Any, str]]) -> None:
    """``compare`` each (notebook's value, pipeline's value, path): first every value as it is, with
    generators compared by type only; then the next values of the generators.

    Running a generator runs its code, which may change another name compared here (a function it calls
    rebinds a global), while the values to compare are those at the notebook's end: a generator drained
    before a plain value made that value differ in the notebook's namespace and not in the pipeline's
    returned copy (make fuzz-equivalence, shard 16 on d3e3aac).
    """
    later = []
    _Draining.on = False
    try:
        for expected, actual, path in pairs:
            _Draining.skipped = False
            compare(expected, actual, path)
            if _Draining.skipped:
                later.append((expected, actual, path))
    finally:
        _Draining.on = True
    for expected, actual, path in later:
        compare(expected, actual, path)


def _drain(gen: Any) -> Any:
    """The next five values of a generator, or the error it raises (it may read a global that changed)."""
    try:
        return list(itertools.islice(gen, 5))
    except Exception as exc:  # noqa: BLE001 - the same error on both sides is the same behaviour
        return ("raised", type(exc).__name__)


def compare(
    expected: Any, actual: Any, path: str, seen: set[tuple[int, int]] | None = None
) -> None:
    """Raise ``Difference`` unless ``actual`` equals ``expected`` (the notebook's value)."""
    from .runner import Uncopied

    seen = set() if seen is None else seen
    if getattr(expected, "missing", False) is True:
        if actual is None:
            # a name the notebook binds on some paths only, not bound on this one: the step returns it as
            # ``locals().get(name)`` (emit._return), so None stands for unbound; any other value is a difference
            return
        raise Difference(f"{path}: the notebook has no such name, the pipeline has {actual!r}")
    if isinstance(expected, Uncopied) or isinstance(actual, Uncopied):
        return
    key = (id(expected), id(actual))
    if key in seen:
        return
    seen.add(key)
    if not _same_class(type(expected), type(actual)):
        raise Difference(
            f"{path}: type {type(actual).__qualname__} != notebook's {type(expected).__qualname__}"
        )
    if isinstance(expected, np.ndarray):
        if (
            expected.dtype != actual.dtype
            or expected.shape != actual.shape
            or not np.array_equal(expected, actual)
        ):
            raise Difference(f"{path}: {actual!r} != notebook's {expected!r}")
        return
    if isinstance(expected, pd.DataFrame | pd.Series):
        try:
            if isinstance(expected, pd.DataFrame):
                pd.testing.assert_frame_equal(actual, expected, check_exact=True)
            else:
                pd.testing.assert_series_equal(actual, expected, check_exact=True)
        except AssertionError as exc:
            raise Difference(f"{path}: {exc}") from None
        return
    if isinstance(expected, float) and expected != expected:
        if actual == actual:
            raise Difference(f"{path}: {actual!r} != notebook's nan")
        return
    if isinstance(expected, list | tuple):
        if len(expected) != len(actual):
            raise Difference(f"{path}: {actual!r} != notebook's {expected!r}")
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            compare(e, a, f"{path}[{i}]", seen)
        return
    if isinstance(expected, dict):
        if list(expected) != list(actual):
            raise Difference(f"{path}: keys {list(actual)} != notebook's {list(expected)}")
        for k in expected:
            compare(expected[k], actual[k], f"{path}[{k!r}]", seen)
        return
    if isinstance(expected, types.GeneratorType):
        if not _Draining.on:
            _Draining.skipped = True
            return
        compare(_drain(expected), _drain(actual), f"{path} (next 5)", seen)
        return
    if isinstance(expected, types.FunctionType | types.BuiltinFunctionType | types.MethodType):
        # a step's function is a closure: section_2.<locals>.f here, f in the notebook
        if expected.__name__ != actual.__name__:
            raise Difference(
                f"{path}: function {actual.__qualname__} != notebook's {expected.__qualname__}"
            )
        return
    if isinstance(expected, type):
        if not _same_class(expected, actual):
            raise Difference(f"{path}: class {actual!r} != notebook's {expected!r}")
        own = {
            k: v for k, v in vars(expected).items() if not k.startswith("__") and not callable(v)
        }
        theirs = {
            k: v for k, v in vars(actual).items() if not k.startswith("__") and not callable(v)
        }
        compare(own, theirs, f"{path} (class attributes)", seen)
        return
    if isinstance(expected, types.ModuleType):
        if expected.__name__.split(".")[-1] != actual.__name__.split(".")[-1]:
            raise Difference(f"{path}: module {actual.__name__} != notebook's {expected.__name__}")
        return
    if isinstance(expected, np.random.RandomState):
        compare(
            expected.get_state(legacy=True), actual.get_state(legacy=True), f"{path}.state", seen
        )
        return
    if isinstance(expected, np.random.Generator):
        compare(expected.bit_generator.state, actual.bit_generator.state, f"{path}.state", seen)
        return
    if (
        type(expected).__module__ == "builtins"
        or isinstance(expected, np.generic)
        or isinstance(expected, int | str | set | frozenset)
    ):
        same = expected == actual
        if isinstance(same, np.ndarray):
            same = bool(same.all())
        if not same:
            raise Difference(f"{path}: {actual!r} != notebook's {expected!r}")
        return
    if hasattr(expected, "__dict__"):
        compare(vars(expected), vars(actual), f"{path}.__dict__", seen)
        return
    if expected != actual:
        raise Difference(f"{path}: {actual!r} != notebook's {expected!r}")
