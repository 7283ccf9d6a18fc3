"""Results of the pipeline: the values the notebook showed, logged as structured events and saved to
``metrics.json``. Yours to change.

``log_result(name, value)`` logs ``result name=accuracy value=0.778`` (in the JSON log format: the fields
``event``, ``result`` and ``value``) and keeps the value; the pipeline writes the small ones (numbers, short
strings, small lists, dicts, arrays and tables) to ``metrics.json`` with ``write_metrics`` at the end of a run,
so that two runs' results can be compared.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: A result with more items than this (elements, cells, entries) is logged by its shape only.
SMALL = 100
#: Strings longer than this are not metrics (a report's text is still logged, shortened).
LONG_TEXT = 10_000
_kept: dict[str, Any] = {}


def log_result(name: str, value: Any) -> None:
    """Log a result the notebook showed and keep it for ``metrics.json``."""
    _kept[name] = value
    data = jsonable(value)
    text = describe(value)
    logger.info(
        "result name=%s value=%s",
        name,
        text,
        extra={"event": "result", "result": name, "value": text if data is None else data},
    )


def start_results() -> None:
    """Forget the results of an earlier run (called when a run starts)."""
    _kept.clear()


def collected_results() -> dict[str, Any]:
    """The results logged since the run started, by name, in the order they were shown."""
    return dict(_kept)


def describe(value: Any, limit: int = 200) -> str:
    """Short text for a log line: the value itself when small, else its type and shape."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and _size(value) > SMALL:
        return f"{type(value).__name__}{shape}"
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # a numpy scalar: its plain value
        value = item()
    text = " ".join(repr(value).split()) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _size(value: Any) -> int:
    size = getattr(value, "size", None)
    if isinstance(size, int):
        return size
    try:
        return len(value)
    except TypeError:
        return 1


def _plain(value: Any) -> Any:
    """``value`` as Python data through its library's own conversion (numpy scalars and arrays, pandas
    frames and series), or ``value`` itself when it has none."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # a numpy scalar
        return item()
    if type(value).__name__ == "DataFrame":  # rows, by their index unless it is 0, 1, 2...
        plain = type(getattr(value, "index", None)).__name__ == "RangeIndex"
        return value.to_dict(orient="records" if plain else "index")
    for method in ("to_dict", "tolist"):  # pandas series, numpy arrays
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    return value


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON data when it is small (numbers, short strings, small containers, arrays and
    tables), else None. NaN and infinities become None."""
    if value is None or isinstance(value, bool | int | str):
        return value if not isinstance(value, str) or len(value) <= LONG_TEXT else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, type) or depth > 3 or _size(value) > SMALL:
        return None  # a class (type(x), np.ndarray) is no data: its to_dict and tolist are unbound
    try:
        plain = _plain(value)
    except (TypeError, ValueError):  # e.g. a frame whose index repeats has no dict by index: not a metric
        return None
    if plain is not value:
        return jsonable(plain, depth + 1)
    if isinstance(value, Mapping):
        keys, items = [str(k) for k in value], list(value.values())
    elif isinstance(value, list | tuple):
        keys, items = [], list(value)
    else:
        return None
    converted = [jsonable(v, depth + 1) for v in items]
    if any(c is None and v is not None for c, v in zip(converted, items, strict=True)):
        return None  # a part that is not small data: the whole is not a metric
    return (
        dict(zip(keys, converted, strict=True)) if keys or isinstance(value, Mapping) else converted
    )


def write_metrics(folder: Path, results: Mapping[str, Any]) -> Path:
    """Write the small results to ``folder/metrics.json`` (created if missing); return its path."""
    metrics = {
        name: data for name, value in results.items() if (data := jsonable(value)) is not None
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    logger.info(
        "metrics: %d result(s) written to %s",
        len(metrics),
        path,
        extra={"event": "metrics", "path": str(path)},
    )
    return path
