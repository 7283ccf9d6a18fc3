"""Inputs that were too big to store: made again by running the steps that produced them.

Written into the generated project's ``tests/`` by nbharden next to ``_compare.py``. A value over
the recording's storage cap keeps only its fingerprint (shape, dtypes, per-column hashes and
statistics). A step test that needs it as an input gets it by running, from their own recorded
inputs, the earlier steps that produced it (recursively); the value made is checked against the
recorded fingerprint first, so the test still starts from what the notebook had.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Mapping
from typing import Any

#: (step, name) -> the value made again, for the rest of the session.
_MADE: dict[tuple[str, str], Any] = {}


class NotReproducible(Exception):
    """The value cannot be made again; the message says why."""


def producer(index: Mapping[str, Any], step: str, name: str) -> str | None:
    """The last step before ``step`` (in the pipeline's order) whose outputs include ``name``."""
    order: list[str] = list(index.get("order", []))
    if step not in order:
        return None
    for earlier in reversed(order[: order.index(step)]):
        outputs = index["steps"].get(earlier, {}).get("outputs", [])
        if any(entry["name"] == name for entry in outputs):
            return earlier
    return None


def make_again(
    index: Mapping[str, Any],
    step: str,
    entry: Mapping[str, Any],
    load_inputs: Callable[[str], dict[str, Any]],
    check: Callable[[Any, Mapping[str, Any]], None],
) -> Any:
    """The input ``entry`` of ``step`` (recorded as a fingerprint only), made by running the step
    that produced it again; a fresh copy each time, since a step may change its inputs in place.

    ``load_inputs`` gives a step's recorded inputs (and may call this function in turn);
    ``check`` compares a value with its recorded entry (raising ``AssertionError`` when it
    differs). Raises ``NotReproducible``.
    """
    name = entry["name"]
    source = producer(index, step, name)
    if source is None:
        raise NotReproducible(f"no earlier step produced {name!r}")
    if (source, name) not in _MADE:
        outputs = index["steps"][source]["outputs"]
        module_name = index.get("modules", {}).get(source, "steps")
        module = importlib.import_module(f"{index['package']}.{module_name}")
        result = getattr(module, source)(**load_inputs(source))
        values = [result] if len(outputs) == 1 else list(result)
        for output, value in zip(outputs, values, strict=True):
            _MADE[(source, output["name"])] = value
    made = copy.deepcopy(_MADE[(source, name)])
    try:
        check(made, entry)  # what the step started from in the notebook, by its fingerprint
    except AssertionError as exc:
        raise NotReproducible(f"step {source} made {name!r} differently: {exc}") from exc
    return made
