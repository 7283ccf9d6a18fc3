"""Behaviour diff: what changed between two recorded runs of a notebook, step by step.

Both sides are what a generated package keeps of its recording: ``tests/data/recording.json`` (the index: per
step the values it read and wrote, each with a kind, a type, a fingerprint, a file) and the value files under
``tests/data/values/``. The base is a committed package (on disk, or at a git revision), the head a package
generated in memory; :func:`compare` works on both through a :class:`Snapshot`.

What counts as a change follows the generated tests' comparison ladder: identical files are the same value;
numbers within a relative tolerance (``Tolerances``, from ``[tool.nbharden.review]``) are the same; a frame's
float columns compare by their statistics, its other columns by hash; a value that differed between the two
recorded runs (volatile) compares by structure only, and a value that *became* volatile is a change.

Nothing here imports numpy or pandas, unpickles anything or runs notebook code: the diff reads JSON only.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbharden.settings import Settings

#: Where the generated tests keep the recording, relative to the output folder.
DATA = "tests/data"
INDEX = f"{DATA}/recording.json"

#: Relative tolerance when no pattern of ``[tool.nbharden.review] tolerance`` names a value: the generated
#: tests' own (``rel=1e-9``), so that float noise is no change and anything a test would catch is.
DEFAULT_TOLERANCE = 1e-9
_ABS = 1e-12
#: Statistics of a numeric column, in the order they are shown.
_STATS = ("n", "nonfinite", "mean", "std", "min", "max", "sum", "wmean")
#: Detail lines kept per value; the rest are counted.
MAX_DETAILS = 6


@dataclass(frozen=True)
class Tolerances:
    """How far a number may move before it counts as changed, and which steps not to compare.

    ``patterns``: (glob over value names, relative tolerance), first match wins (``("acc*", 0.01)``);
    ``ignore_steps``: globs over step names whose outputs are not compared (a plotting step).
    """

    default: float = DEFAULT_TOLERANCE
    patterns: tuple[tuple[str, float], ...] = ()
    ignore_steps: tuple[str, ...] = ()

    def for_name(self, name: str) -> float:
        """The relative tolerance of the value ``name``."""
        for pattern, tolerance in self.patterns:
            if fnmatch.fnmatchcase(name, pattern):
                return tolerance
        return self.default

    def ignores(self, step: str) -> bool:
        return any(fnmatch.fnmatchcase(step, pattern) for pattern in self.ignore_steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "default": self.default,
            "patterns": [list(p) for p in self.patterns],
            "ignore_steps": list(self.ignore_steps),
        }


@dataclass(frozen=True)
class Snapshot:
    """One recorded behaviour: the index of ``tests/data/recording.json`` and a reader of its value files.

    ``read(path)`` returns the text of ``tests/data/<path>`` (``path`` as the index names it,
    ``values/ab12.json``), or None when it is not there.
    """

    index: Mapping[str, Any]
    read: Callable[[str], str | None]

    def steps(self) -> dict[str, Mapping[str, Any]]:
        """Step name -> its entry, in the notebook's order (by first cell; the index sorts by name)."""
        steps = self.index.get("steps")
        if not isinstance(steps, dict):
            return {}
        items = [(name, s) for name, s in steps.items() if isinstance(s, dict)]
        items.sort(key=lambda item: (min(item[1].get("cells") or [0]), item[0]))
        return dict(items)

    def finals(self) -> dict[str, Mapping[str, Any]]:
        finals = self.index.get("finals")
        if not isinstance(finals, dict):
            return {}
        return {name: e for name, e in finals.items() if isinstance(e, dict)}


def snapshot_of_files(files: Mapping[str, str]) -> Snapshot | None:
    """The snapshot of a generated tree (output-relative POSIX path -> text); None when it has no recording."""
    text = files.get(INDEX)
    index = _parse_index(text)
    if index is None:
        return None
    return Snapshot(index, lambda path: files.get(f"{DATA}/{path}"))


def snapshot_in(out: Path) -> Snapshot | None:
    """The snapshot of the package in folder ``out`` (read lazily); None when it has no usable recording."""
    root = Path(out) / DATA
    try:
        text = (root / "recording.json").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    index = _parse_index(text)
    if index is None:
        return None

    def read(path: str) -> str | None:
        if ".." in path.split("/") or path.startswith("/"):
            return None
        try:
            return (root / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    return Snapshot(index, read)


def _parse_index(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        index = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(index, dict) or not isinstance(index.get("steps"), dict):
        return None
    return index


@dataclass(frozen=True)
class ValueChange:
    """One value that differs between base and head.

    ``change``: "changed", "added", "removed" or "volatile" (it now differs between two runs of the notebook).
    ``old`` and ``new`` are set for numbers (``relative``: their relative change, None from 0); ``details``
    say what moved, one short line each (``shape 791x10 -> 795x10``, ``column 'x' added``).
    """

    name: str
    change: str
    type: str = ""
    old: float | None = None
    new: float | None = None
    relative: float | None = None
    details: tuple[str, ...] = ()

    @property
    def is_number(self) -> bool:
        return self.old is not None and self.new is not None

    def summary(self) -> str:
        """``accuracy 0.778 -> 0.812 (+4.4%)``, ``df: shape 791x10 -> 795x10``, ``fig: added``."""
        if self.is_number:
            assert self.old is not None and self.new is not None
            old, new = format_pair(self.old, self.new)
            return f"{self.name} {old} -> {new}{format_relative(self.relative)}"
        if self.change != "changed" or not self.details:
            return f"{self.name}: {self.change}"
        return f"{self.name}: {self.details[0]}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "change": self.change,
            "type": self.type,
            "old": self.old,
            "new": self.new,
            "relative": self.relative,
            "details": list(self.details),
        }


@dataclass(frozen=True)
class StepChange:
    """One step of the notebook: ``status`` is "changed", "unchanged", "added", "removed" or "ignored"."""

    step: str
    status: str
    cells: tuple[int, ...] = ()
    outputs: tuple[ValueChange, ...] = ()
    inputs: tuple[ValueChange, ...] = ()
    renamed_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "cells": list(self.cells),
            "outputs": [v.to_json() for v in self.outputs],
            "inputs": [v.to_json() for v in self.inputs],
            "renamed_from": self.renamed_from,
        }


@dataclass(frozen=True)
class BehaviourDiff:
    """What changed between the base recording and the head recording.

    ``results`` are the changed results (the notebook's named results when the recording names them, else its
    final numbers); ``values`` every other final value that changed; ``steps`` the step-by-step view.
    """

    results: tuple[ValueChange, ...]
    values: tuple[ValueChange, ...]
    steps: tuple[StepChange, ...]
    tolerances: Tolerances = field(default_factory=Tolerances)

    @property
    def changed(self) -> bool:
        """Whether behaviour changed beyond tolerance (a result, a final value or a step's output)."""
        return bool(self.results or self.values) or any(s.status == "changed" for s in self.steps)

    def headline(self) -> str:
        """One line, results first: ``2 results changed: acc 0.778 -> 0.812 (+4.4%), auc ...``."""
        if not self.changed:
            return "no behaviour change"
        parts = []
        if self.results:
            noun = "result" if len(self.results) == 1 else "results"
            listed = ", ".join(v.summary() for v in self.results)
            parts.append(f"{len(self.results)} {noun} changed: {listed}")
        shown = {v.name for v in self.results}
        # a step output that changed but not what the notebook ended with (a later step overwrote it)
        others = list(self.values) or [
            v for s in self.steps if s.status == "changed" for v in s.outputs if v.name not in shown
        ]
        if others:
            noun = "value" if len(others) == 1 else "values"
            names = ", ".join(dict.fromkeys(v.name for v in others[:8]))
            more = f" and {len(others) - 8} more" if len(others) > 8 else ""
            lead = "" if self.results else "no result changed; "
            parts.append(f"{lead}{len(others)} other {noun} changed ({names}{more})")
        return "; ".join(parts)

    def lines(self) -> list[str]:
        """The diff as plain text, one line per change (for a terminal)."""
        lines = [self.headline()]
        for step in self.steps:
            if step.status in ("unchanged", "ignored"):
                continue
            renamed = f" (was {step.renamed_from})" if step.renamed_from else ""
            lines.append(f"  step {step.step}{renamed}: {step.status}")
            for value in step.outputs:
                lines.append(f"    {value.summary()}")
                lines.extend(f"      {d}" for d in value.details[1 if not value.is_number else 0 :])
            if step.inputs:
                lines.append(f"    inputs changed: {', '.join(v.name for v in step.inputs)}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "headline": self.headline(),
            "results": [v.to_json() for v in self.results],
            "values": [v.to_json() for v in self.values],
            "steps": [s.to_json() for s in self.steps],
            "tolerances": self.tolerances.to_json(),
        }


def compare(base: Snapshot, head: Snapshot, tolerances: Tolerances = Tolerances()) -> BehaviourDiff:
    """The behaviour diff from ``base`` to ``head``."""
    steps = _compare_steps(base, head, tolerances)
    ignored = {s.step for s in steps if s.status == "ignored"}
    producers = {**_producers(base.steps()), **_producers(head.steps())}
    old, new = base.finals(), head.finals()
    results_named = _result_names(head) or _result_names(base)
    results: list[ValueChange] = []
    values: list[ValueChange] = []
    for name in sorted(set(old) | set(new), key=_order(head, base)):
        if producers.get(name) in ignored:
            continue
        change = compare_entries(name, old.get(name), new.get(name), base, head, tolerances)
        if change is None:
            continue
        is_result = name in results_named if results_named else change.is_number
        (results if is_result else values).append(change)
    return BehaviourDiff(tuple(results), tuple(values), steps, tolerances)


def _result_names(snapshot: Snapshot) -> set[str]:
    """The names the recording marks as the notebook's results (``"results"`` in the index), if any."""
    names = snapshot.index.get("results")
    if isinstance(names, list):
        return {str(n) for n in names}
    if isinstance(names, dict):
        return {str(n) for n in names}
    return set()


def _producers(steps: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Value name -> the last step (in order) that outputs it."""
    producers: dict[str, str] = {}
    for step, entry in steps.items():
        for value in entry.get("outputs") or ():
            if isinstance(value, dict):
                producers[str(value.get("name"))] = step
    return producers


def _order(head: Snapshot, base: Snapshot) -> Callable[[str], tuple[int, str]]:
    """Sort key of value names: by the step that makes them (notebook order), then by name."""
    position: dict[str, int] = {}
    for snapshot in (base, head):
        for i, entry in enumerate(snapshot.steps().values()):
            for value in entry.get("outputs") or ():
                if isinstance(value, dict):
                    position[str(value.get("name"))] = i
    return lambda name: (position.get(name, 1 << 30), name)


def _compare_steps(
    base: Snapshot, head: Snapshot, tolerances: Tolerances
) -> tuple[StepChange, ...]:
    """Per step of the head (then the base's removed ones): what its outputs and inputs did."""
    old, new = base.steps(), head.steps()
    renamed = _match_renamed(old, new)
    changes: list[StepChange] = []
    for name, entry in new.items():
        cells = tuple(int(c) for c in entry.get("cells") or () if isinstance(c, int))
        was = name if name in old else renamed.get(name)
        if tolerances.ignores(name):
            changes.append(StepChange(name, "ignored", cells))
            continue
        if was is None:
            changes.append(StepChange(name, "added", cells))
            continue
        outputs = _compare_lists(
            old[was].get("outputs"), entry.get("outputs"), base, head, tolerances
        )
        inputs = _compare_lists(old[was].get("inputs"), entry.get("inputs"), base, head, tolerances)
        status = "changed" if outputs else "unchanged"
        renamed_from = was if was != name else None
        changes.append(StepChange(name, status, cells, outputs, inputs, renamed_from))
    matched = set(new) | set(renamed.values())
    for name, entry in old.items():
        if name not in matched and not tolerances.ignores(name):
            cells = tuple(int(c) for c in entry.get("cells") or () if isinstance(c, int))
            changes.append(StepChange(name, "removed", cells))
    return tuple(changes)


def _match_renamed(
    old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """New step name -> old step name, for steps that only changed their name (a heading was edited): the
    same output names, in the same order."""

    def outputs(entry: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(v.get("name")) for v in entry.get("outputs") or () if isinstance(v, dict))

    free = {name: outputs(e) for name, e in old.items() if name not in new}
    matches: dict[str, str] = {}
    for name, entry in new.items():
        if name in old:
            continue
        for was, names in free.items():
            if names == outputs(entry) and was not in matches.values():
                matches[name] = was
                break
    return matches


def _compare_lists(
    old: object, new: object, base: Snapshot, head: Snapshot, tolerances: Tolerances
) -> tuple[ValueChange, ...]:
    def by_name(items: object) -> dict[str, Mapping[str, Any]]:
        if not isinstance(items, list):
            return {}
        return {str(e.get("name")): e for e in items if isinstance(e, dict)}

    before, after = by_name(old), by_name(new)
    names = [*after, *(n for n in before if n not in after)]
    changes = (
        compare_entries(n, before.get(n), after.get(n), base, head, tolerances) for n in names
    )
    return tuple(c for c in changes if c is not None)


def compare_entries(
    name: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    base: Snapshot,
    head: Snapshot,
    tolerances: Tolerances,
) -> ValueChange | None:
    """How the recorded value ``name`` changed from ``old`` to ``new`` (index entries); None when it did not."""
    if old is None and new is None:
        return None
    if old is None or new is None:
        entry = new if new is not None else old
        assert entry is not None
        return ValueChange(
            name, "added" if old is None else "removed", str(entry.get("type") or "")
        )
    type_ = str(new.get("type") or "")
    if "redacted" in (old.get("kind"), new.get("kind")):
        return None  # a secret: never compared, never shown
    if new.get("volatile") and not old.get("volatile"):
        return ValueChange(name, "volatile", type_, details=("now differs between two runs",))
    if old.get("type") != new.get("type"):
        return ValueChange(name, "changed", type_, details=(f"type {old.get('type')} -> {type_}",))
    if old.get("volatile") or new.get("volatile"):
        details = _structure_details(_fingerprint(old), _fingerprint(new))
        return ValueChange(name, "changed", type_, details=tuple(details)) if details else None
    if old.get("sha256") and old.get("sha256") == new.get("sha256"):
        return None
    tolerance = tolerances.for_name(name)
    number = _number_change(name, old, new, base, head, tolerance)
    if number is not None:
        return number if number.change else None
    details = _value_details(old, new, base, head, tolerance)
    if not details:
        return None
    return ValueChange(name, "changed", type_, details=_capped(details))


def _capped(details: Sequence[str]) -> tuple[str, ...]:
    if len(details) <= MAX_DETAILS:
        return tuple(details)
    return (*details[: MAX_DETAILS - 1], f"... and {len(details) - MAX_DETAILS + 1} more")


def _fingerprint(entry: Mapping[str, Any]) -> dict[str, Any]:
    fp = entry.get("fingerprint")
    return fp if isinstance(fp, dict) else {}


def _number_change(
    name: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    base: Snapshot,
    head: Snapshot,
    tolerance: float,
) -> ValueChange | None:
    """For two recorded numbers: a ValueChange (``change=""`` when within tolerance); None for other values."""
    a, b = _stored_number(old, base), _stored_number(new, head)
    if a is None or b is None:
        return None
    type_ = str(new.get("type") or "")
    if is_close(a, b, tolerance):
        return ValueChange(name, "", type_)
    relative = (
        (b - a) / abs(a) if a not in (0.0,) and math.isfinite(a) and math.isfinite(b) else None
    )
    return ValueChange(name, "changed", type_, a, b, relative)


def is_close(a: float, b: float, rel: float) -> bool:
    """Whether ``b`` is within ``rel`` of ``a`` relative to ``a`` (the base value: a tolerance of 0.01 lets
    0.800 move to 0.808), with the tests' absolute floor; two NaNs are equal."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(b - a) <= max(rel * abs(a), _ABS)


def _stored(entry: Mapping[str, Any], snapshot: Snapshot) -> object:
    """The decoded JSON of a value stored as JSON (``kind`` "value"); ``_MISSING`` when there is none."""
    file = entry.get("file")
    if entry.get("kind") != "value" or not isinstance(file, str):
        return _MISSING
    text = snapshot.read(file)
    if text is None:
        return _MISSING
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return _MISSING
    return data.get("value", _MISSING) if isinstance(data, dict) else _MISSING


_MISSING = object()


def _stored_number(entry: Mapping[str, Any], snapshot: Snapshot) -> float | None:
    """A recorded int, float or numpy scalar as a float; None for anything else (bools too)."""
    if str(entry.get("type") or "") == "bool":
        return None
    value = _stored(entry, snapshot)
    if isinstance(value, dict) and value.get("__nbh__") == "npscalar":
        value = value.get("v")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _value_details(
    old: Mapping[str, Any], new: Mapping[str, Any], base: Snapshot, head: Snapshot, tolerance: float
) -> list[str]:
    """What differs between two recorded values that are not plain numbers (empty: the same)."""
    a, b = _fingerprint(old), _fingerprint(new)
    details = _structure_details(a, b)
    if "data" in a and "data" in b:
        details += _column_details(a, b, tolerance)
        if not details and a.get("index") != b.get("index"):
            details.append("row labels or their order changed")
        return details
    if "stats" in a or "stats" in b or "hash" in a:
        if a.get("hash") is not None and a.get("hash") == b.get("hash"):
            return details
        return details + _stats_details(
            a.get("stats"), b.get("stats"), tolerance, "", str(b.get("dtype", ""))
        )
    details += _other_fingerprint_details(a, b, tolerance)
    stored = _stored_details(old, new, base, head)
    if not details or stored not in ([], ["value changed"], ["stored object changed"]):
        details += stored  # a list's items added and removed say more than its new length
    return details


def _structure_details(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Type, shape, columns and dtypes that differ."""
    details = []
    if a.get("shape") != b.get("shape") and (a.get("shape") or b.get("shape")):
        details.append(f"shape {_shape(a.get('shape'))} -> {_shape(b.get('shape'))}")
    old_cols = [str(c) for c in a.get("columns") or ()]
    new_cols = [str(c) for c in b.get("columns") or ()]
    added = [c for c in new_cols if c not in old_cols]
    removed = [c for c in old_cols if c not in new_cols]
    if added:
        details.append(f"column{'s' if len(added) > 1 else ''} {', '.join(added)} added")
    if removed:
        details.append(f"column{'s' if len(removed) > 1 else ''} {', '.join(removed)} removed")
    old_types = dict(zip(old_cols, a.get("dtypes") or (), strict=False))
    new_types = dict(zip(new_cols, b.get("dtypes") or (), strict=False))
    for col in new_cols:
        if col in old_types and old_types[col] != new_types.get(col):
            details.append(f"dtype of {col}: {old_types[col]} -> {new_types.get(col)}")
    if "columns" not in a and a.get("dtypes") != b.get("dtypes") and a.get("dtypes"):
        details.append(f"dtype {_one(a.get('dtypes'))} -> {_one(b.get('dtypes'))}")
    if a.get("dtype") != b.get("dtype") and a.get("dtype"):
        details.append(f"dtype {a.get('dtype')} -> {b.get('dtype')}")
    return details


def _one(dtypes: object) -> str:
    return str(dtypes[0]) if isinstance(dtypes, list) and dtypes else str(dtypes)


def _shape(shape: object) -> str:
    if isinstance(shape, list):
        return "x".join(str(n) for n in shape) if len(shape) != 1 else f"{shape[0]} items"
    return "?"


def _column_details(a: Mapping[str, Any], b: Mapping[str, Any], tolerance: float) -> list[str]:
    """Per column present on both sides: statistics that moved beyond tolerance, or (not floats) new hashes."""
    labels_a = [str(c) for c in a.get("columns") or ()] or [str(a.get("name", ""))]
    labels_b = [str(c) for c in b.get("columns") or ()] or [str(b.get("name", ""))]
    data_a = dict(zip(labels_a, a.get("data") or (), strict=False))
    data_b = dict(zip(labels_b, b.get("data") or (), strict=False))
    dtypes = dict(zip(labels_b, b.get("dtypes") or (), strict=False))
    single = "columns" not in b
    details: list[str] = []
    for label in labels_b:
        x, y = data_a.get(label), data_b.get(label)
        if not isinstance(x, dict) or not isinstance(y, dict):
            continue
        if x.get("hash") is not None and x.get("hash") == y.get("hash"):
            continue
        where = "" if single else label
        details += _stats_details(
            x.get("stats"), y.get("stats"), tolerance, where, str(dtypes.get(label, ""))
        )
    return details


def _stats_details(x: object, y: object, tolerance: float, where: str, dtype: str) -> list[str]:
    """Statistics beyond tolerance (``mean of 'age' 41.2 -> 43.9 (+6.6%)``); for data that is not floating
    point, a changed hash is a change even when the statistics agree (``values of 'city' changed``).
    """
    of = f" of {where}" if where else ""
    details = []
    if isinstance(x, dict) and isinstance(y, dict):
        for key in _STATS:
            u, v = x.get(key), y.get(key)
            if not isinstance(u, (int, float)) or not isinstance(v, (int, float)):
                continue
            if not is_close(float(u), float(v), tolerance):
                old, new = format_pair(float(u), float(v))
                rel = (v - u) / abs(u) if u else None
                details.append(f"{key}{of} {old} -> {new}{format_relative(rel)}")
    floating = any(k in dtype.lower() for k in ("float", "complex", "<f", "<c", ">f", ">c"))
    if not details and not floating:
        details.append(f"values{of} changed")
    return details


def _other_fingerprint_details(
    a: Mapping[str, Any], b: Mapping[str, Any], tolerance: float
) -> list[str]:
    """Fingerprint entries beyond type and structure (a fitted model's parameters and learned state, a
    content hash), compared leaf by leaf."""
    known = {"type", "shape", "dtype", "dtypes", "columns", "index", "data", "stats", "name"}
    details: list[str] = []
    for key in sorted((set(a) | set(b)) - known):
        details += _leaf_diff(key, a.get(key), b.get(key), tolerance)
    return details


def _leaf_diff(path: str, x: object, y: object, tolerance: float) -> list[str]:
    if isinstance(x, dict) and isinstance(y, dict) and ("hash" in x or "stats" in x):
        # an array's fingerprint (a model's learned coefficients): its shape, then its statistics
        if x.get("hash") is not None and x.get("hash") == y.get("hash"):
            return []
        moved = [f"{path}: {d}" for d in _structure_details(x, y)]
        if moved:  # another shape: its statistics differ too, saying so adds nothing
            return moved
        dtype = str(y.get("dtype", ""))
        return _stats_details(x.get("stats"), y.get("stats"), tolerance, path, dtype)[:2]
    if isinstance(x, dict) and isinstance(y, dict):
        out: list[str] = []
        for key in sorted(set(x) | set(y), key=str):
            out += _leaf_diff(f"{path}.{key}", x.get(key), y.get(key), tolerance)
        return out
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
    if numbers:
        assert isinstance(x, (int, float)) and isinstance(y, (int, float))
        if is_close(float(x), float(y), tolerance):
            return []
        old, new = format_pair(float(x), float(y))
        return [f"{path} {old} -> {new}{format_relative((y - x) / abs(x) if x else None)}"]
    if x == y:
        return []
    if path.endswith("hash") or (isinstance(x, str) and len(x) == 64) or _long(x) or _long(y):
        return [f"{path} changed"]
    return [f"{path} {_short(x)} -> {_short(y)}"]


def _long(value: object) -> bool:
    return len(json.dumps(value, default=str)) > 40


def _short(value: object) -> str:
    return "absent" if value is None else json.dumps(value, default=str)


def _stored_details(
    old: Mapping[str, Any], new: Mapping[str, Any], base: Snapshot, head: Snapshot
) -> list[str]:
    """Two stored values with different files: what differs in them (list items, a short text)."""
    if old.get("kind") != "value" or new.get("kind") != "value":
        if old.get("sha256") != new.get("sha256") and (old.get("sha256") or new.get("sha256")):
            return ["stored object changed"]
        return []
    x, y = _stored(old, base), _stored(new, head)
    if x is _MISSING or y is _MISSING:
        return ["value changed"]
    if x == y:
        return []
    if isinstance(x, list) and isinstance(y, list):
        return _list_details(x, y)
    if not _long(x) and not _long(y):
        return [f"{_short(x)} -> {_short(y)}"]
    return ["value changed"]


def _list_details(x: list[Any], y: list[Any]) -> list[str]:
    texts_x = [json.dumps(v, sort_keys=True, default=str) for v in x]
    texts_y = [json.dumps(v, sort_keys=True, default=str) for v in y]
    added = [t for t in texts_y if t not in texts_x]
    removed = [t for t in texts_x if t not in texts_y]
    details = []
    if added:
        details.append("added " + _listed(added))
    if removed:
        details.append("removed " + _listed(removed))
    if not details:
        details.append(
            "same items, another order" if sorted(texts_x) == sorted(texts_y) else "items changed"
        )
    return details


def _listed(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def format_pair(old: float, new: float) -> tuple[str, str]:
    """Two numbers with just enough significant digits to tell them apart (at least 3)."""
    for digits in range(3, 17):
        a, b = _number(old, digits), _number(new, digits)
        if a != b or old == new:
            return a, b
    return _number(old, 17), _number(new, 17)


def _number(x: float, digits: int) -> str:
    """``x`` with ``digits`` significant digits, in plain notation where it reads well (``0.778``,
    ``1515.46``: at least two decimals past the point for numbers above 1), integers as integers."""
    if not math.isfinite(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    if not 1e-4 <= abs(x) < 1e15:
        return f"{x:.{digits}g}"
    exponent = math.floor(math.log10(abs(x)))
    decimals = max(2 if exponent >= 0 else 0, digits - 1 - exponent)
    return f"{x:.{decimals}f}"


def format_relative(relative: float | None) -> str:
    """`` (+4.4%)``; more digits for small changes; empty when there is none (from 0)."""
    if relative is None or not math.isfinite(relative):
        return ""
    percent = relative * 100
    for decimals in (1, 2, 3, 4, 6):
        text = f"{percent:+.{decimals}f}"
        if float(text) != 0:
            return f" ({text}%)"
    return f" ({percent:+.2g}%)"


def tolerances_from(settings: Settings) -> Tolerances:
    """The tolerances ``[tool.nbharden.review]`` sets (``Settings.review_*``)."""
    return Tolerances(
        settings.review_default_tolerance, settings.review_tolerances, settings.review_ignore_steps
    )


def diff_against_disk(
    files: Mapping[str, str], out: Path, settings: Settings
) -> BehaviourDiff | None:
    """The behaviour diff from the recording of the package in ``out`` to the one in ``files`` (a generated
    tree); None when either side has no recording."""
    head = snapshot_of_files(files)
    base = snapshot_in(out) if head is not None else None
    if base is None or head is None:
        return None
    return compare(base, head, tolerances_from(settings))
