"""What a fitted model learned, for the generated tests to compare: not its whole ``__dict__``.

Written into the generated project's ``tests/`` by nbharden next to ``_compare.py``; standard library
only (numpy and pandas are used through the values themselves). A scikit-learn estimator is its
``get_params()`` plus its fitted attributes (public names ending in ``_``: ``coef_``,
``feature_importances_``, ``cluster_centers_``, ``best_params_``...; not the fit and score times of a
search); a statsmodels results object is
its parameters, their covariance and degrees of freedom. Private attributes (``_n_threads``, a cache
such as ``_nobs_int``) describe how the fit ran, not what it learned, and are left out.
"""

from __future__ import annotations

from typing import Any

#: statsmodels results: the attributes that hold what the fit learned.
_STATSMODELS = ("params", "normalized_cov_params", "df_model", "df_resid", "cov_type")


def is_sklearn_estimator(value: object) -> bool:
    """A scikit-learn-style estimator: ``get_params`` and ``fit``."""
    return callable(getattr(value, "get_params", None)) and callable(getattr(value, "fit", None))


def is_statsmodels_results(value: object) -> bool:
    """A statsmodels results object (or its wrapper)."""
    module = type(value).__module__ or ""
    return module.startswith("statsmodels.") and hasattr(value, "params") and hasattr(value, "model")


def is_model(value: object) -> bool:
    """A fitted model whose learned state is compared instead of its ``__dict__``."""
    return is_sklearn_estimator(value) or is_statsmodels_results(value)


#: How long a fit took (a hyper-parameter search): differs between runs, never compared.
_TIMINGS = ("refit_time_",)


def _timing_key(key: object) -> bool:
    """A ``cv_results_`` key holding fit or score times (``mean_fit_time``...), not scores."""
    return isinstance(key, str) and key.endswith("_time") and key.startswith(("mean_", "std_"))


def _fitted(value: object) -> dict[str, Any]:
    names = sorted(
        k
        for k in vars(value)
        if k.endswith("_") and not k.startswith("_") and not k.endswith("__") and k not in _TIMINGS
    )
    fitted = {k: getattr(value, k) for k in names}
    results = fitted.get("cv_results_")
    if isinstance(results, dict):
        fitted["cv_results_"] = {k: v for k, v in results.items() if not _timing_key(k)}
    return fitted


def learned_state(value: object) -> dict[str, Any]:
    """The settings and what ``value`` learned, as plain containers the comparison ladder walks."""
    if is_statsmodels_results(value):
        results = getattr(value, "_results", value)
        return {k: getattr(results, k) for k in _STATSMODELS if hasattr(results, k)}
    params = value.get_params(deep=False)  # type: ignore[attr-defined]
    return {"params": params, "fitted": _fitted(value)}
