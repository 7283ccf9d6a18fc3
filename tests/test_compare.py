"""The comparison written into generated tests (src/nbharden/testgen/_compare.py) on objects that
hold bound methods of themselves (issue 11, repro 4): scipy's distributions keep ``_parse_args``
and friends as bound methods in their ``__dict__``, statsmodels' ETS models set
``self.loglike = self._loglike``. A recorded copy is another instance, so Python's method equality
(the very same ``__self__``) failed a correct step."""

from __future__ import annotations

import importlib
import pickle
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SRC = Path(__file__).parent.parent / "src" / "nbharden"


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    """The helper module exactly as it is written into generated projects."""
    sys.path.insert(0, str(SRC / "record"))
    sys.path.insert(0, str(SRC / "testgen"))
    try:
        return importlib.import_module("_compare")
    finally:
        sys.path.remove(str(SRC / "record"))
        sys.path.remove(str(SRC / "testgen"))


class Model:
    """Holds a bound method of itself, as statsmodels' ETSModel does after ``fit``."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.loglike = self._loglike
        self.params = np.arange(3.0) * k

    def _loglike(self) -> int:
        return self.k

    def other(self) -> int:
        return -self.k


def test_a_bound_method_of_an_equal_copy_is_the_same(compare: ModuleType) -> None:
    model = Model(3)
    compare.assert_same(model, pickle.loads(pickle.dumps(model)), "model")


def test_a_bound_method_of_a_different_object_differs(compare: ModuleType) -> None:
    model, copy = Model(3), pickle.loads(pickle.dumps(Model(3)))
    copy.k = 4
    with pytest.raises(AssertionError, match=r"model.__dict__\['k'\]: 3 != recorded 4"):
        compare.assert_same(model, copy, "model")
    copy = pickle.loads(pickle.dumps(Model(3)))
    copy.loglike = copy.other  # another function, bound to an equal object
    with pytest.raises(AssertionError, match=r"method Model._loglike != recorded Model.other"):
        compare.assert_same(model, copy, "model")


def test_scipy_distributions_compare_by_value(compare: ModuleType) -> None:
    stats = pytest.importorskip("scipy.stats")
    for dist in (stats.t, stats.norm, stats.t(df=3)):
        copy = pickle.loads(pickle.dumps(dist))
        np.random.rand(5)  # they hold numpy's global generator, which moves on: not their value
        compare.assert_same(dist, copy, "dist")
    with pytest.raises(AssertionError, match="recorded"):
        compare.assert_same(stats.t(df=3), pickle.loads(pickle.dumps(stats.t(df=4))), "dist")


class Opaque:
    """No value equality, no ``__dict__`` and nothing to pickle: only its fingerprint can tell."""

    __slots__ = ()

    def __getstate__(self) -> None:
        return None


def test_what_cannot_be_compared_says_why(compare: ModuleType) -> None:
    with pytest.raises(
        compare.Uncomparable, match=r"x: Opaque has no value equality; compared by type"
    ):
        compare.assert_same(Opaque(), Opaque(), "x")
    with pytest.raises(AssertionError, match="type"):
        compare.assert_same(Opaque(), Model(1), "x")


def test_the_global_generator_stays_itself_through_pickle(compare: ModuleType) -> None:
    """A recorded value goes through pickle, and so does the value it is compared with: numpy's
    global generator inside it (scipy's ``_random_state``) must stay the global one, or its state,
    which moves on with every draw anywhere, would make a correct step fail."""
    stats = pytest.importorskip("scipy.stats")
    recorded = pickle.loads(pickle.dumps(stats.t))
    np.random.rand(5)
    actual = compare._through_pickle(stats.t)
    assert actual._random_state is np.random.mtrand._rand
    compare.assert_same(actual, recorded, "dist")
