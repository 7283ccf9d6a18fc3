"""Issue 13: a model kept as a fingerprint (a statsmodels result, which no restricted pickle holds: its
formula is code that loading it would evaluate) is compared by what it learned, not skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SRC = Path(__file__).parent.parent / "src" / "nbharden"
sys.path.insert(0, str(SRC / "record"))
sys.path.insert(0, str(SRC / "testgen"))
import _compare  # noqa: E402
import _values  # noqa: E402

smf = pytest.importorskip("statsmodels.formula.api")


def _ads(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    ads = pd.DataFrame({"TV": rng.normal(size=rows), "radio": rng.normal(size=rows)})
    ads["sales"] = 2 * ads["TV"] + 0.5 * ads["radio"] + rng.normal(size=rows)
    return ads


def _fit(formula: str, data: pd.DataFrame) -> object:
    return smf.ols(formula, data=data).fit()


def test_a_statsmodels_result_is_kept_as_what_it_learned_and_cannot_be_pickled() -> None:
    fit = _fit("sales ~ TV + radio", _ads())
    with pytest.raises(_values.Forbidden):
        _values.dumps_pickle(fit)
    fp = _values.fingerprint(fit)
    assert {"params", "bse", "df_resid"} <= set(fp["learned"])


@pytest.mark.parametrize(
    ("formula", "rows"),
    [("sales ~ TV", 60), ("sales ~ TV + radio", 55), ("sales ~ TV * radio", 60)],
)
def test_the_same_fit_passes_and_a_changed_fit_fails(formula: str, rows: int) -> None:
    recorded = _values.fingerprint(_fit("sales ~ TV + radio", _ads()))
    _compare.same_fingerprint(_values.fingerprint(_fit("sales ~ TV + radio", _ads())), recorded, "m")
    with pytest.raises(AssertionError):
        _compare.same_fingerprint(_values.fingerprint(_fit(formula, _ads(rows))), recorded, "m")
