"""Issue 13: a fitted hyper-parameter search is recorded without its fit and score times (they differ
between two runs of the same code), is stored as a restricted pickle even with a named scorer, and the
generated tests compare what it learned, not how long it took.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SRC = Path(__file__).parent.parent / "src" / "nbharden"
sys.path.insert(0, str(SRC / "record"))
sys.path.insert(0, str(SRC / "testgen"))
import _learned  # noqa: E402
import _values  # noqa: E402

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit  # noqa: E402


def _search(X: pd.DataFrame, y: pd.Series, alphas: list[float]) -> GridSearchCV:
    search = GridSearchCV(
        Ridge(),
        {"alpha": alphas},
        cv=TimeSeriesSplit(n_splits=3),
        scoring="neg_root_mean_squared_error",
    )
    return search.fit(X, y)


def _data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    return X, X["a"] * 3 + rng.normal(size=120)


def _digest(value: object) -> str:
    return hashlib.sha256(_values.dumps_pickle(_values.without_timings(value)).encode()).hexdigest()


def test_two_runs_of_a_search_record_the_same_pickle_and_it_loads_back() -> None:
    X, y = _data()
    first, second = _search(X, y, [0.1, 1.0]), _search(X, y, [0.1, 1.0])
    assert _digest(first) == _digest(second)
    text = _values.dumps_pickle(_values.without_timings(first))
    loaded = _values.loads_pickle(text, hashlib.sha256(text.encode()).hexdigest())
    assert loaded.refit_time_ == 0.0 and not loaded.cv_results_["mean_fit_time"].any()
    assert sorted(loaded.cv_results_) == sorted(first.cv_results_)  # every key is still there
    assert first.refit_time_ > 0  # the notebook's own object is left alone
    # another grid is another value
    assert _digest(_search(X, y, [0.1, 10.0])) != _digest(first)


def test_the_learned_state_leaves_out_timings_only() -> None:
    X, y = _data()
    state = _learned.learned_state(_search(X, y, [0.1, 1.0]))["fitted"]
    assert "refit_time_" not in state
    kept = set(state["cv_results_"])
    assert "mean_test_score" in kept and "params" in kept
    assert not {k for k in kept if k.endswith("_time")}


def test_the_unpickler_allows_metric_functions_only() -> None:
    unpickler = _values.SafeUnpickler(io.BytesIO(b""))
    for module, name in (("os", "system"), ("builtins", "eval"), ("sklearn.utils", "shuffle")):
        with pytest.raises(_values.Forbidden):
            unpickler.find_class(module, name)
    found = unpickler.find_class("sklearn.metrics._regression", "root_mean_squared_error")
    assert callable(found)
