"""The behaviour diff between two recordings (``nbharden.behaviour``) and the approved-baseline gate of
``convert``: a conversion that changes recorded behaviour writes only with ``--accept-changes``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbharden.behaviour import (
    INDEX,
    Snapshot,
    Tolerances,
    compare,
    format_pair,
    format_relative,
    snapshot_of_files,
)

# --- snapshots built by hand: the index format the generated tests keep ----------------------------------


def _entry(name: str, value_file: str | None, **extra: Any) -> dict[str, Any]:
    entry = {
        "name": name,
        "kind": "value",
        "type": "float",
        "file": value_file,
        "sha256": value_file,
    }
    entry.update(extra)
    return entry


def _snapshot(
    numbers: dict[str, float | int],
    frames: dict[str, dict[str, Any]] | None = None,
    *,
    volatile: frozenset[str] = frozenset(),
    results: list[str] | None = None,
) -> Snapshot:
    """One step ``evaluate`` (cells 3, 4) that outputs ``numbers`` (stored as JSON) and ``frames`` (by
    fingerprint), every one of them also a final value."""
    files: dict[str, str] = {}
    outputs = []
    for name, value in numbers.items():
        text = json.dumps({"format": 1, "value": value})
        path = f"values/{name}-{value!r}.json"
        files[f"tests/data/{path}"] = text
        type_ = "int" if isinstance(value, int) else "float"
        outputs.append(_entry(name, path, type=type_, volatile=name in volatile))
    for name, fp in (frames or {}).items():
        outputs.append(
            {
                "name": name,
                "kind": "fingerprint",
                "type": fp["type"],
                "fingerprint": fp,
                "sha256": None,
            }
        )
    index: dict[str, Any] = {
        "steps": {"evaluate": {"cells": [3, 4], "inputs": [], "outputs": outputs}},
        "finals": {o["name"]: o for o in outputs},
    }
    if results is not None:
        index["results"] = results
    files[INDEX] = json.dumps(index)
    snapshot = snapshot_of_files(files)
    assert snapshot is not None
    return snapshot


def _frame(rows: int, columns: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """A frame fingerprint: column -> (dtype, mean); the hash follows the mean."""
    return {
        "type": "pandas.DataFrame",
        "shape": [rows, len(columns)],
        "columns": [repr(c) for c in columns],
        "dtypes": [d for d, _ in columns.values()],
        "index": {"type": "pandas.RangeIndex", "hash": f"rows{rows}"},
        "data": [
            {"hash": f"{c}{m!r}", "stats": {"n": rows, "nonfinite": 0, "mean": m, "min": 0.0}}
            for c, (_, m) in columns.items()
        ],
    }


def test_headline_names_exactly_the_changed_numbers() -> None:
    base = _snapshot({"accuracy": 0.7777777, "auc": 0.85, "rows": 800})
    head = _snapshot({"accuracy": 0.8121212, "auc": 0.85, "rows": 795})
    diff = compare(base, head)
    assert diff.changed
    assert (
        diff.headline()
        == "2 results changed: accuracy 0.778 -> 0.812 (+4.4%), rows 800 -> 795 (-0.6%)"
    )
    assert [s.status for s in diff.steps] == ["changed"]
    assert not compare(base, base).changed
    assert compare(base, base).headline() == "no behaviour change"


def test_tolerance_per_name_pattern() -> None:
    base = _snapshot({"accuracy": 0.80, "loss": 0.30})
    head = _snapshot({"accuracy": 0.805, "loss": 0.30000000001})
    assert compare(base, head).headline().startswith("1 result changed: accuracy 0.800 -> 0.805")
    loose = Tolerances(patterns=(("acc*", 0.01),))
    assert not compare(base, head, loose).changed  # 0.6% < 1%; loss moved by float noise only
    strict = Tolerances(default=0.0)
    assert [v.name for v in compare(base, head, strict).results] == ["accuracy", "loss"]


def test_ignored_steps_are_not_compared() -> None:
    base = _snapshot({"accuracy": 0.80})
    head = _snapshot({"accuracy": 0.90})
    diff = compare(base, head, Tolerances(ignore_steps=("eval*",)))
    assert not diff.changed
    assert [s.status for s in diff.steps] == ["ignored"]


def test_named_results_lead_the_headline() -> None:
    # once the recording names the notebook's results (metrics), only those are "results"
    base = _snapshot({"accuracy": 0.8, "rows": 800}, results=["accuracy"])
    head = _snapshot({"accuracy": 0.9, "rows": 795}, results=["accuracy"])
    diff = compare(base, head)
    assert [v.name for v in diff.results] == ["accuracy"]
    assert [v.name for v in diff.values] == ["rows"]
    assert diff.headline().endswith("; 1 other value changed (rows)")


def test_frames_shape_columns_dtypes_and_statistics() -> None:
    base = _frame(
        800, {"age": ("int64", 41.0), "spend": ("float64", 1515.46), "city": ("object", 0.0)}
    )
    head = _frame(
        795, {"age": ("float64", 41.0), "spend": ("float64", 1162.63), "tier": ("int64", 1.0)}
    )
    diff = compare(_snapshot({}, {"df": base}), _snapshot({}, {"df": head}))
    (change,) = diff.values
    assert change.name == "df" and not diff.results
    assert change.details[:4] == (
        "shape 800x3 -> 795x3",
        "column 'tier' added",
        "column 'city' removed",
        "dtype of 'age': int64 -> float64",
    )
    assert "mean of 'spend' 1515.46 -> 1162.63 (-23.3%)" in change.details
    assert diff.headline() == "no result changed; 1 other value changed (df)"


def test_float_noise_in_a_frame_is_no_change() -> None:
    base = _frame(10, {"x": ("float64", 1.0)})
    head = _frame(10, {"x": ("float64", 1.0 + 1e-13)})  # another hash, the same statistics
    assert not compare(_snapshot({}, {"df": base}), _snapshot({}, {"df": head})).changed
    ints = _frame(10, {"x": ("int64", 1.0)})
    moved = json.loads(json.dumps(ints))
    moved["data"][0][
        "hash"
    ] = "other"  # integers: a new hash is a change, even with equal statistics
    diff = compare(_snapshot({}, {"df": ints}), _snapshot({}, {"df": moved}))
    assert diff.values[0].details == ("values of 'x' changed",)


def test_value_that_became_volatile_is_a_change() -> None:
    base = _snapshot({"score": 0.5})
    head = _snapshot({"score": 0.7}, volatile=frozenset({"score"}))
    diff = compare(base, head)
    assert diff.changed and diff.values[0].change == "volatile"
    both = _snapshot({"score": 0.9}, volatile=frozenset({"score"}))
    assert not compare(head, both).changed  # volatile on both sides: structure only


def test_model_fingerprints_compare_leaf_by_leaf() -> None:
    def model(trees: int, importance: float, classes: str) -> dict[str, Any]:
        stats = {"n": 19, "nonfinite": 0, "mean": importance, "max": 0.3}
        return {
            "type": "sklearn.ensemble.RandomForestClassifier",
            "params": {"n_estimators": trees, "max_depth": 6},
            "learned": {
                "feature_importances_": {
                    "shape": [19],
                    "dtype": "<f8",
                    "hash": f"h{importance}",
                    "stats": stats,
                },
                "classes_": {"shape": [2], "dtype": "<i8", "hash": classes, "stats": None},
                "n_features_in_": 19,
            },
        }

    base, head = model(50, 0.05, "c1"), model(100, 0.0526, "c2")
    diff = compare(_snapshot({}, {"model": base}), _snapshot({}, {"model": head}))
    assert diff.values[0].details == (
        "values of learned.classes_ changed",
        "mean of learned.feature_importances_ 0.0500 -> 0.0526 (+5.2%)",
        "params.n_estimators 50 -> 100 (+100.0%)",
    )
    same = model(50, 0.05, "c1")
    same["learned"]["feature_importances_"]["hash"] = "float noise"
    assert not compare(_snapshot({}, {"model": base}), _snapshot({}, {"model": same})).changed


def test_renamed_step_is_matched_by_its_outputs() -> None:
    base = _snapshot({"accuracy": 0.8})
    index = json.loads(json.dumps(base.index))
    index["steps"] = {"score_model": index["steps"]["evaluate"]}  # a heading was reworded
    head = Snapshot(index, base.read)
    diff = compare(base, head)
    assert not diff.changed
    assert [(s.step, s.status, s.renamed_from) for s in diff.steps] == [
        ("score_model", "unchanged", "evaluate")
    ]


@given(st.floats(-1e12, 1e12, allow_nan=False), st.floats(-1e12, 1e12, allow_nan=False))
@settings(max_examples=200, deadline=None)
def test_numbers_as_shown_tell_old_from_new(old: float, new: float) -> None:
    a, b = format_pair(old, new)
    assert (a == b) == (old == new)
    if old != new and old != 0:
        text = format_relative((new - old) / abs(old))
        assert text.startswith(" (+") == (new > old) or text.startswith(" (-") == (new < old)


@given(
    st.floats(0.1, 1e6),
    st.floats(1e-6, 0.5),
    st.floats(0.0, 0.99),
)
@settings(max_examples=200, deadline=None)
def test_tolerance_is_relative(value: float, tolerance: float, fraction: float) -> None:
    inside = value * (1 + tolerance * fraction)
    outside = value * (1 + tolerance * 1.01) + 1e-9
    rules = Tolerances(patterns=(("score", tolerance),))
    assert not compare(_snapshot({"score": value}), _snapshot({"score": inside}), rules).changed
    changed = compare(_snapshot({"score": value}), _snapshot({"score": outside}), rules)
    assert changed.changed and math.isclose(changed.results[0].new or 0, outside)


# --- the approved-baseline gate, with real recorded conversions -------------------------------------------

CELLS = [
    ("scale = 2", ["parameters"]),
    "values = [1.0, 2.0, 3.0, 4.0]",
    "md:## Score",
    "total = sum(v * scale for v in values)\nscore = total / len(values)\nprint(score)",
]


def _convert(nb: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "nbharden", "convert", str(nb), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _edit(nb: Path, index: int, source: str) -> None:
    data = nbformat.read(nb, as_version=4)
    data.cells[index].source = source
    nbformat.write(data, nb)


@pytest.mark.slow
def test_convert_writes_a_behaviour_change_only_when_accepted(
    make_notebook: Callable[..., Path],
) -> None:
    nb = make_notebook(CELLS)
    out = nb.parent / "nb_prod"
    first = _convert(nb)
    assert first.returncode == 0, first.stderr
    before = _files(out)

    _edit(
        nb,
        3,
        "total = sum(v * scale for v in values)\nscore = total / (len(values) + 1)\nprint(score)",
    )
    refused = _convert(nb)
    assert refused.returncode == 1, refused.stderr
    assert "behaviour changed: 1 result changed: score 5 -> 4 (-20.0%)" in refused.stderr
    assert "--accept-changes" in refused.stderr
    assert (
        ": changed\n    score 5 -> 4 (-20.0%)" in refused.stderr
    )  # the behaviour diff, step by step
    assert _files(out) == before  # nothing written

    accepted = _convert(nb, "--accept-changes")
    assert accepted.returncode == 0, accepted.stderr
    assert "behaviour: 1 result changed: score 5 -> 4 (-20.0%)" in accepted.stdout
    recorded = json.loads((out / "tests/data/recording.json").read_text())
    assert recorded["finals"]["score"]["type"] == "float"
    assert _files(out) != before

    # a comment and a markdown cell: the same behaviour, rewritten without asking
    after_accept = _files(out)
    _edit(nb, 2, "## Score of the values")
    _edit(
        nb,
        3,
        "total = sum(v * scale for v in values)  # weighted\nscore = total / (len(values) + 1)\nprint(score)",
    )
    text_only = _convert(nb)
    assert text_only.returncode == 0, text_only.stderr
    assert "behaviour" not in text_only.stdout + text_only.stderr
    changed = {p for p, b in _files(out).items() if after_accept.get(p) != b}
    assert any(p.endswith("steps.py") for p in changed), changed


def test_review_table_in_pyproject(tmp_path: Path) -> None:
    from nbharden.behaviour import tolerances_from
    from nbharden.errors import UsageError
    from nbharden.settings import load_settings

    (tmp_path / "pyproject.toml").write_text(
        "[tool.nbharden]\nrecord = true\n[tool.nbharden.review]\ndefault-tolerance = 1e-6\n"
        'tolerances = { "acc*" = 0.01 }\nignore-steps = ["plot_*"]\n'
    )
    rules = tolerances_from(load_settings(tmp_path))
    assert rules == Tolerances(1e-6, (("acc*", 0.01),), ("plot_*",))
    assert rules.for_name("accuracy") == 0.01 and rules.for_name("loss") == 1e-6
    for bad, says in [
        ('tolerances = { "acc*" = "1%" }', "'tolerances' must map name patterns to numbers"),
        ("ignore-steps = 'plot'", "'ignore-steps' must be a list"),
        ("tolerance = 0.1", "unknown key 'tolerance'"),
    ]:
        (tmp_path / "pyproject.toml").write_text(f"[tool.nbharden.review]\n{bad}\n")
        with pytest.raises(UsageError, match=says):
            load_settings(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.nbharden]\naccept-changes = true\n")
    with pytest.raises(UsageError, match="unknown key 'accept-changes'"):
        load_settings(tmp_path)
