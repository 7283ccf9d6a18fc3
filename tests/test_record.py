"""
Recording: real papermill runs in a real kernel over the fixtures in fixtures/record/,
and the value codec.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import json
import pathlib
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from nbharden import models
from nbharden.errors import ExecutionError
from nbharden.record import Recording, parse_parameter, record
from nbharden.record import _values as V
from nbharden.settings import Settings

FIXTURES = Path(__file__).parent.parent / "fixtures" / "record"


# --- helpers shared with test_testgen (the Plan builder is not ready: plans are built b


def load_notebook(path: Path) -> models.Notebook:
    raw = nbformat.read(str(path), as_version=4)
    cells = tuple(
        models.Cell(
            index=i + 1,
            cell_type=c.cell_type,
            source=c.source,
            code=c.source,
            cell_id=c.get("id", ""),
            tags=tuple(c.metadata.get("tags", [])),
            execution_count=c.get("execution_count"),
        )
        for i, c in enumerate(raw.cells)
    )
    return models.Notebook(
        path=path,
        cells=cells,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        kernel_name=raw.metadata.get("kernelspec", {}).get("name", ""),
        language="python",
        nbformat_version=(4, 5),
    )


def make_plan(
    package: str, steps: tuple[models.Step, ...], config_fields: tuple[models.ConfigField, ...] = ()
) -> models.Plan:
    kwargs: dict[str, object] = {"package": package, "steps": steps, "config_fields": config_fields}
    for f in dataclasses.fields(models.Plan):  # fields the lead may add: empty values
        if (
            f.name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ):
            kwargs[f.name] = False if f.type == "bool" else ()
    return models.Plan(**kwargs)  # type: ignore[arg-type]


def make_step(
    name: str,
    cells: tuple[int, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    config: tuple[str, ...] = (),
) -> models.Step:
    return models.Step(
        name=name,
        title=name.replace("_", " ").capitalize(),
        cells=cells,
        inputs=tuple(
            models.Param(n, None, "config" if n in config else "previous") for n in inputs
        ),
        outputs=tuple(models.Param(n, None, name) for n in outputs),
    )


MUTATION_PLAN = make_plan(
    "mutation",
    (
        make_step("load_data", (3,), (), ("df",)),
        make_step("add_feature", (4, 5), ("df", "rate"), ("df",), config=("rate",)),
        make_step("split", (6,), ("df",), ("train", "test")),
        make_step("seeded", (7,), ("train",), ("noise", "seeded_total")),
        make_step("unseeded", (8,), (), ("unseeded",)),
        make_step("clock", (9,), (), ("stamp",)),
        make_step("resources", (10,), (), ("gen", "fh", "label")),
        make_step("fit", (11,), ("train", "same"), ("model",)),
        make_step("nothing", (12,), (), ()),
    ),
)


def load(rec: Recording, value: object) -> object:
    assert isinstance(value, __import__("nbharden").record.RecordedValue)
    text = rec.path(value).read_text(encoding="utf-8")
    if value.kind == "pickle":
        return V.loads_pickle(text, value.sha256 or "")
    return V.loads(text)


@pytest.fixture(scope="module")
def mutation(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    nb = FIXTURES / "mutation.ipynb"
    before = nb.read_bytes()
    rec = record(
        load_notebook(nb),
        MUTATION_PLAN,
        settings=Settings(parameters=(("rate", "0.25"),)),
        workdir=tmp_path_factory.mktemp("mutation"),
    )
    assert nb.read_bytes() == before  # never written
    return rec


# --- recording in a kernel ------------------------------------------------------------


def test_parameters_reach_the_kernel_and_cells_map_past_the_injected_cell(
    mutation: Recording,
) -> None:
    step = mutation.step("add_feature")
    assert step.cells == (
        5,
    )  # cell 4 is markdown; papermill's injected cell must not shift the mapping
    rate = step.inputs[1]
    assert (rate.name, rate.kind, rate.type) == ("rate", "value", "float")
    assert load(mutation, rate) == 0.25
    assert mutation.parameters == (("rate", 0.25),)


def test_in_place_mutation_is_seen_before_and_after(mutation: Recording) -> None:
    step = mutation.step("add_feature")
    before = load(mutation, step.inputs[0])
    after = load(mutation, step.outputs[0])
    assert isinstance(before, pd.DataFrame) and isinstance(after, pd.DataFrame)
    assert (
        list(before.columns) == ["a", "b"] and len(before) == 3
    )  # stored before the cell changed it
    assert list(after.columns) == ["a", "b", "c"] and list(after.index) == [1, 2]
    assert after["c"].tolist() == [0.5, 0.75]
    assert step.inputs[0].fingerprint["shape"] == [3, 2]
    assert step.outputs[0].fingerprint["dtypes"] == ["float64", "int64", "float64"]


def test_aliasing_through_a_list_reaches_both_frames(mutation: Recording) -> None:
    train, test = (load(mutation, v) for v in mutation.step("split").outputs)
    assert isinstance(train, pd.DataFrame) and isinstance(test, pd.DataFrame)
    assert train["flag"].tolist() == [1, 1] and test["flag"].tolist() == [1]


def test_same_object_twice_is_recorded_as_an_alias(mutation: Recording) -> None:
    first, second = mutation.step("fit").inputs
    assert first.alias_of is None and second.alias_of == "train" and second.kind == "value"


def test_seeded_randomness_is_stable_and_unseeded_and_clock_are_volatile(
    mutation: Recording,
) -> None:
    noise, total = mutation.step("seeded").outputs
    assert not noise.volatile and not total.volatile
    expected = np.random.default_rng(42).normal(size=5)
    np.testing.assert_array_equal(load(mutation, noise), expected)  # bit for bit
    (unseeded,) = mutation.step("unseeded").outputs
    (stamp,) = mutation.step("clock").outputs
    assert unseeded.volatile and unseeded.fingerprint["shape"] == [3]
    assert stamp.volatile and stamp.type == "float"


def test_unserialisable_values_are_described_not_stored(mutation: Recording) -> None:
    gen, fh, label = mutation.step("resources").outputs
    assert (gen.kind, gen.type, gen.file) == ("described", "generator", None)
    assert "generator" in gen.note
    assert (
        fh.kind == "described" and "open file 'mutation.ipynb'" in fh.note
    )  # cwd is the notebook's folder
    assert label.kind == "value" and load(mutation, label) == "done"


def test_pickle_is_the_last_resort_and_is_checked_by_hash(mutation: Recording) -> None:
    (model,) = mutation.step("fit").outputs
    assert model.kind == "pickle" and model.type == "types.SimpleNamespace"
    assert "no JSON form" in model.note
    loaded = load(mutation, model)
    assert loaded.slope == 0.625  # type: ignore[attr-defined]
    text = mutation.path(model).read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="changed since recording"):
        V.loads_pickle(text[:-4] + "AAAA", model.sha256 or "")


def test_recording_round_trips_and_records_the_environment(mutation: Recording) -> None:
    assert Recording.load(mutation.root) == mutation
    assert mutation.runs == 2 and len(mutation.seconds) == 2
    assert mutation.step("nothing").executed is False and mutation.step("nothing").outputs == ()
    assert mutation.executed_notebook is not None and mutation.executed_notebook.is_file()
    events = [
        json.loads(line) for line in (mutation.root / "recorder.log").read_text().splitlines()
    ]
    ready = next(e for e in events if e["event"] == "ready")
    assert ready["hashseed"] == "0"
    assert not (mutation.root / ".run2").exists()
    assert all(p.suffix in (".json", ".b64") for p in (mutation.root / "values").iterdir())


def test_failing_notebook_names_the_cell_and_hints_at_hidden_state(tmp_path: Path) -> None:
    nb = load_notebook(FIXTURES / "failing.ipynb")
    plan = make_plan("failing", (make_step("everything", (2, 3, 4, 5), (), ("w",)),))
    with pytest.raises(ExecutionError) as info:
        record(nb, plan, settings=Settings(parameters=(("x", "5"),)), workdir=tmp_path, runs=1)
    message = str(info.value)
    assert message.startswith(f"{nb.path}:cell 4: NameError: name 'undefined_name' is not defined")
    assert "hidden state" in message and "cell 3 before cell 2" in message
    assert info.value.exit_code == 3


def test_size_cap_keeps_fingerprints_of_a_100000_row_frame(tmp_path: Path) -> None:
    nb = load_notebook(FIXTURES / "pipeline.ipynb")
    plan = make_plan(
        "bigpipe",
        (
            make_step("make_frame", (4,), ("n",), ("frame",), config=("n",)),
            make_step(
                "add_scaled", (5,), ("frame", "scale"), ("frame", "summary"), config=("scale",)
            ),
        ),
    )
    rec = record(nb, plan, settings=Settings(), workdir=tmp_path, runs=1, cap_bytes=1_000_000)
    (frame,) = rec.step("make_frame").outputs
    assert frame.kind == "fingerprint" and "cap" in frame.note and rec.capped
    assert frame.fingerprint["shape"] == [100_000, 3]
    assert frame.fingerprint["dtypes"] == ["float64", "int64", "str"]
    x_stats = frame.fingerprint["data"][0]["stats"]  # type: ignore[index]
    assert abs(x_stats["mean"]) < 0.02 and x_stats["n"] == 100_000  # type: ignore[index]
    summary = rec.step("add_scaled").outputs[1]
    assert summary.kind == "value" and rec.stored_bytes < 1_000_000


# --- the codec (no kernel) ------------------------------------------------------------


def test_parse_parameter_types_like_papermill() -> None:
    assert [parse_parameter(t) for t in ("1", "0.5", "True", "None", "abc")] == [
        1,
        0.5,
        True,
        None,
        "abc",
    ]


@pytest.mark.parametrize(
    "value",
    [
        1,
        2.5,
        float("nan"),
        None,
        "s",
        [1, (2, 3)],
        {"a": {1, 2}},
        {1: "x", (1, 2): [3]},
        b"ab",
        1 + 2j,
        decimal.Decimal("1.10"),
        dt.datetime(2020, 1, 2, 3, 4, 5),
        dt.date(2020, 1, 1),
        dt.timedelta(1, 2, 3),
        pathlib.PurePosixPath("a/b"),
        range(3),
        np.float32(1.5),
        np.int64(3),
        {"__nbh__": 1},
    ],
)
def test_plain_values_round_trip_with_their_type(value: object) -> None:
    text = V.dumps(value)
    back = V.loads(text)
    assert type(back) is type(value) and V.dumps(back) == text
    assert back == value or value != value


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12.0).reshape(3, 4) / 7,
        np.array([1, 2], dtype=np.uint8),
        np.array(["a", "bc"]),
        np.array([1 + 1j]),
        np.array(["2020-01-01", "NaT"], dtype="datetime64[s]"),
        np.array([[1, "a"]], dtype=object),
        np.array([np.nan, np.inf, -0.0], dtype=np.float32),
    ],
)
def test_arrays_round_trip_exactly(array: np.ndarray) -> None:  # type: ignore[type-arg]
    back = V.loads(V.dumps(array))
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def _odd_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [0.1, np.nan, 1 / 3],
            "s": ["a", None, "c"],
            "o": [[1], {"a": 1}, None],
            "b": [True, False, True],
            "cat": pd.Categorical(["x", "y", "x"]),
            "dt": pd.to_datetime(["2020-01-01", None, "2021-05-05"]),
            "dtz": pd.to_datetime(["2020-01-01", "2020-01-02", None]).tz_localize("Europe/Paris"),
            "td": pd.to_timedelta([1, 2, None], unit="s"),
            "I": pd.array([1, None, 3], dtype="Int64"),
            "B": pd.array([True, None, False], dtype="boolean"),
            "F": pd.array([1.5, None, 2], dtype="Float64"),
            "S": pd.array(["a", None, "b"], dtype="string"),
            7: [1.0, 2.0, 3.0],
        },
        index=pd.Index([10, 30, 20], name="k"),
    )


@pytest.mark.parametrize(
    "frame",
    [
        _odd_frame(),
        _odd_frame().set_index(["i", "s"]),
        _odd_frame().iloc[:0],
        pd.DataFrame({"x": [1.0]}, index=pd.date_range("2020", periods=1, freq="D")),
    ],
)
def test_frames_round_trip_with_dtypes_and_index(frame: pd.DataFrame) -> None:
    back = V.loads(V.dumps(frame))
    pd.testing.assert_frame_equal(
        back,
        frame,
        check_exact=True,
        check_index_type=True,
        check_column_type=True,
        check_freq=True,
    )


def test_a_100000_row_frame_round_trips_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"a": rng.random(100_000), "b": np.arange(100_000), "c": rng.choice(["x", "y"], 100_000)}
    )
    pd.testing.assert_frame_equal(V.loads(V.dumps(frame)), frame, check_exact=True)
    series = frame["a"]
    pd.testing.assert_series_equal(V.loads(V.dumps(series)), series, check_exact=True)


def test_type_names_and_annotations_are_public() -> None:
    assert V.type_name(pd.DataFrame()) == "pandas.DataFrame"
    assert V.annotation([1, "a"]) == "list[int | str]"
    assert V.annotation({"a": [1]}) == "dict[str, list[int]]"
    assert V.annotation((1, 2.0)) == "tuple[int, float]"


def test_unserialisable_things_are_described() -> None:
    import io
    import sqlite3

    with io.StringIO() as fh, sqlite3.connect(":memory:") as conn:
        things = [fh, (i for i in []), lambda: 1, sys, conn]
        reasons = [V.describe_unserialisable(t) for t in things]
    assert all(reasons) and "lambda" in str(reasons[2]) and "live resource" in str(reasons[4])
    assert V.describe_unserialisable(pd.DataFrame()) is None
