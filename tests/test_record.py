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
import subprocess
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
from nbharden.record.models import Column
from nbharden.settings import Settings

#: Tier: kernels, papermill or generated packages in subprocesses (make test-fast skips these).
pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent.parent / "fixtures" / "record"


# --- helpers shared with test_testgen (the Plan builder is not ready: plans are built b


def load_notebook(path: Path) -> models.Notebook:
    """The notebook as nbharden loads it (magics masked for the analysis)."""
    from nbharden.load import load

    return load(path, settings=Settings())


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
    # the first run starts seeded like seed_everything(0): a pipeline seeded with 0 reproduces it
    assert unseeded.seed_dependent and unseeded.kind == "value"
    np.random.seed(0)
    np.testing.assert_array_equal(load(mutation, unseeded), np.random.rand(3))
    # a clock changes with the same seed too: nothing of it is kept but its type
    assert stamp.volatile and stamp.type == "float" and not stamp.seed_dependent
    assert (stamp.kind, stamp.file, stamp.fingerprint) == ("fingerprint", None, {"type": "float"})
    assert "same seed" in stamp.note


def test_unserialisable_values_are_described_not_stored(mutation: Recording) -> None:
    gen, fh, label = mutation.step("resources").outputs
    assert (gen.kind, gen.type, gen.file) == ("described", "types.GeneratorType", None)
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
    # two seeds, then the first seed again because values differed
    assert mutation.runs == 3 and len(mutation.seconds) == 3 and mutation.seeds == (0, 1, 0)
    assert mutation.step("nothing").executed is False and mutation.step("nothing").outputs == ()
    assert mutation.executed_notebook is not None and mutation.executed_notebook.is_file()
    events = [
        json.loads(line) for line in (mutation.root / "recorder.log").read_text().splitlines()
    ]
    ready = next(e for e in events if e["event"] == "ready")
    assert ready["hashseed"] == "0"
    assert not (mutation.root / ".run2").exists() and not (mutation.root / ".run3").exists()
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


RANDOM_PLAN = make_plan(
    "randomness",
    (
        make_step("unseeded_draws", (4,), (), ("first", "roll")),
        make_step("use_them", (6,), ("first", "roll"), ("shifted",)),
        make_step("seed", (8,), (), ("size",)),
        make_step("draw_later", (10,), ("size",), ("draws", "pick", "late_total")),
        make_step("clock", (12,), (), ("started", "fresh")),
        make_step("use_clock", (14,), ("started", "fresh"), ("elapsed", "scaled")),
    ),
)


@pytest.fixture(scope="module")
def randomness(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    nb = FIXTURES / "randomness.ipynb"
    return record(
        load_notebook(nb), RANDOM_PLAN, settings=Settings(), workdir=tmp_path_factory.mktemp("rnd")
    )


def test_unseeded_draws_follow_the_seed_of_the_first_run(randomness: Recording) -> None:
    assert randomness.seeds == (0, 1, 0)
    first, roll = randomness.step("unseeded_draws").outputs
    # what support.seed_everything(0) gives: random.seed(0), numpy.random.seed(0)
    import random

    random.seed(0)
    np.random.seed(0)
    expected_roll, expected_first = random.randint(1, 6), np.random.rand(3)
    assert first.volatile and first.seed_dependent and first.kind == "value"
    np.testing.assert_array_equal(load(randomness, first), expected_first)
    assert roll.volatile and roll.seed_dependent and load(randomness, roll) == expected_roll
    # a step that only reads them: its output follows the seed as well, and is kept
    (shifted,) = randomness.step("use_them").outputs
    assert shifted.seed_dependent and shifted.loadable
    assert not randomness.step("use_them").draws_random


def test_a_step_that_draws_keeps_the_generators_state_it_started_with(
    randomness: Recording,
) -> None:
    import random

    step = randomness.step("draw_later")
    draws, pick, total = step.outputs
    assert step.draws_random and step.random_state is not None
    assert not draws.volatile and not pick.volatile  # the notebook seeded itself a step before
    state = json.loads((randomness.root / step.random_state).read_text(encoding="utf-8"))
    assert set(state["random_state"]) == {"random", "numpy"}  # reviewable JSON, no pickle
    V.set_random_state(state["random_state"])
    drawn = np.random.normal(size=4)
    np.testing.assert_array_equal(drawn, load(randomness, draws))
    assert random.choice("abcd") == load(randomness, pick)
    text = (randomness.root / step.random_state).read_text(encoding="utf-8")
    assert hashlib.sha256(text.encode()).hexdigest() == step.random_state_sha256
    assert not randomness.step("clock").draws_random  # default_rng() leaves the global state


def test_values_that_change_with_the_same_seed_keep_only_their_structure(
    randomness: Recording,
) -> None:
    started, fresh = randomness.step("clock").outputs
    elapsed, scaled = randomness.step("use_clock").outputs
    for value in (started, fresh, elapsed, scaled, *randomness.step("use_clock").inputs):
        assert value.volatile and not value.seed_dependent
        assert (value.kind, value.file, value.sha256) == ("fingerprint", None, None)
        assert "same seed" in value.note
    assert started.fingerprint == {"type": "float"}
    assert fresh.fingerprint == {"type": "numpy.ndarray", "shape": [2], "dtype": "<f8"}
    # nothing of theirs stays in values/: every file there is one a recorded value names
    named = {
        v.file for s in randomness.steps for v in (*s.inputs, *s.outputs) if v.file is not None
    }
    named |= {s.random_state for s in randomness.steps if s.random_state}
    assert {f"values/{p.name}" for p in (randomness.root / "values").iterdir()} == named


def test_recorded_types_columns_and_dtypes_for_signatures_and_contracts(
    mutation: Recording,
) -> None:
    frame = mutation.step("add_feature").input("df")
    assert frame.type_name == "pandas.DataFrame" and frame.shape == (3, 2)
    assert frame.columns == (Column("'a'", "float64"), Column("'b'", "int64"))
    assert [c.name for c in frame.columns] == ["a", "b"]
    assert mutation.step("add_feature").output("df").columns == (
        Column("'a'", "float64"),
        Column("'b'", "int64"),
        Column("'c'", "float64"),
    )
    noise = mutation.step("seeded").output("noise")
    assert (noise.type_name, noise.dtype, noise.shape, noise.columns) == (
        "numpy.ndarray",
        "<f8",
        (5,),
        None,
    )
    assert mutation.step("seeded").output("seeded_total").annotation == "float"
    assert mutation.step("resources").output("label").type_name == "str"
    with pytest.raises(KeyError):
        mutation.step("seeded").input("nope")


def test_timeit_runs_its_code_once_like_the_generated_code(tmp_path: Path) -> None:
    nb = load_notebook(FIXTURES / "timeit.ipynb")
    plan = make_plan(
        "timeit",
        (
            make_step("start", (2,), (), ("u",)),
            make_step("timed", (3,), ("u",), ("u",)),
            make_step("line_magics", (4,), ("u",), ("x", "y", "total")),
        ),
    )
    rec = record(nb, plan, settings=Settings(), workdir=tmp_path, runs=1)
    # %%timeit -n 10 would have added k ten times (times the repeats) to u in place
    np.testing.assert_array_equal(load(rec, rec.step("timed").outputs[0]), [1.0, 3, 3, 3, 3])
    x, y, total = (load(rec, v) for v in rec.step("line_magics").outputs)
    assert (x, y, total) == (3, 5, 21.0)  # x = %timeit -o expr -> the expression's value


def test_final_values_are_taken_after_the_last_cell(tmp_path: Path) -> None:
    nb = load_notebook(FIXTURES / "late_change.ipynb")
    plan = make_plan(
        "late",
        (
            make_step("make", (2,), (), ("rng", "draw")),
            make_step("use", (3,), ("draw",), ("first",)),
            make_step("items", (4,), (), ("items", "label", "evens", "arr")),
            make_step("change", (5,), ("items",), ()),
            make_step("rebind", (6,), (), ()),  # a def: hoisted, no step output
            make_step("loop", (7,), (), ()),  # a loop variable nobody reads later
        ),
    )
    rec = record(nb, plan, settings=Settings(), workdir=tmp_path, runs=1)
    finals = rec.final_values()
    made = rec.step("make").output("rng")
    # draw() moved rng on through a closure; items.append(3) changed items in place
    assert finals["rng"] != made and finals["rng"].sha256 != made.sha256
    expected = np.random.default_rng(5)
    expected.normal()
    assert load(rec, finals["rng"]).bit_generator.state == expected.bit_generator.state
    assert load(rec, rec.step("items").output("items")) == [1, 2]
    assert load(rec, finals["items"]) == [1, 2, 3]
    # a plain value cannot change in place: its step's output stands; a deleted name too
    assert finals["first"] == rec.step("use").output("first")
    assert finals["label"] == rec.step("items").output("label")
    # a def rebinding a name is not a change of the object the step returned
    assert load(rec, finals["evens"]) == {2, 4}
    np.testing.assert_array_equal(load(rec, finals["arr"]), [0.0, 1.0, 2.0])
    assert {v.name for v in rec.finals} == {"rng", "draw", "items"}


# --- the CLI: nbharden record ---------------------------------------------------------


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbharden", "record", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        check=False,
    )


def test_cli_records_with_parameters_and_keeps_the_executed_copy(tmp_path: Path) -> None:
    nb = tmp_path / "mutation.ipynb"
    nb.write_bytes((FIXTURES / "mutation.ipynb").read_bytes())
    before = nb.read_bytes()
    executed = tmp_path / "run" / "executed.ipynb"
    proc = _cli(
        str(nb), "-p", "rate", "0.25", "--output", str(executed), "--cell-timeout", "120",
        "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert nb.read_bytes() == before  # never written
    assert data["error"] is None and data["kernel"] == "python3"
    assert data["parameters"] == {"rate": 0.25} and data["runs"] == 3
    assert data["executed"] == str(executed)
    ran = nbformat.read(str(executed), as_version=4)
    injected = [c for c in ran.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "rate = 0.25" in injected[0].source
    outputs = {v["name"]: v for s in data["steps"] for v in s["outputs"]}
    assert outputs["df"]["type"] == "pandas.DataFrame" and outputs["df"]["shape"] == [3, 2]
    assert outputs["df"]["columns"] == [
        {"name": "a", "label": "'a'", "dtype": "float64"},
        {"name": "b", "label": "'b'", "dtype": "int64"},
    ]
    assert outputs["fh"]["type"] == "io.TextIOWrapper" and outputs["fh"]["kind"] == "described"
    assert outputs["stamp"]["volatile"] and not outputs["stamp"]["seed_dependent"]
    assert outputs["unseeded"]["seed_dependent"]
    assert any(v.endswith(".stamp") for v in data["volatile"])
    assert data["values"] >= len(outputs) and 0 < data["stored_bytes"] <= data["cap_bytes"]


def test_cli_failing_notebook_exits_3_with_the_cell_and_the_hint(tmp_path: Path) -> None:
    nb = tmp_path / "failing.ipynb"
    nb.write_bytes((FIXTURES / "failing.ipynb").read_bytes())
    proc = _cli("failing.ipynb", cwd=tmp_path)
    assert proc.returncode == 3 and proc.stdout == ""
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "failing.ipynb:cell 4: NameError: name 'undefined_name' is not defined (hint: "
    )
    assert "hidden state" in line
    proc = _cli("failing.ipynb", "--format", "json", cwd=tmp_path)
    error = json.loads(proc.stdout)["error"]
    assert proc.returncode == 3 and (error["cell"], error["exit_code"]) == (4, 3)
    assert error["message"].startswith("NameError: name 'undefined_name'")


def test_cli_refuses_to_write_over_the_notebook(tmp_path: Path) -> None:
    nb = tmp_path / "failing.ipynb"
    nb.write_bytes((FIXTURES / "failing.ipynb").read_bytes())
    before = nb.read_bytes()
    proc = _cli(str(nb), "--output", str(nb))
    assert proc.returncode == 2 and "overwrite the notebook" in proc.stderr
    assert nb.read_bytes() == before
    proc = _cli(str(nb), "-p", "x")
    assert proc.returncode == 2 and "missing VALUE" in proc.stderr


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


def _stacked() -> pd.Series:
    """pydata ch08's ``data.stack()``: levels in the order the frame gave them, not sorted."""
    data = pd.DataFrame(
        np.arange(6).reshape((2, 3)),
        index=pd.Index(["Ohio", "Colorado"], name="state"),
        columns=pd.Index(["one", "two", "three"], name="number"),
    )
    return data.stack()


@pytest.mark.parametrize(
    "value",
    [
        _stacked(),
        _stacked().to_frame("v"),
        _stacked().unstack(level="state").stack(),
        pd.Series([1.0, 2.0], index=pd.MultiIndex.from_tuples([("b", np.nan), ("a", 1.0)])),
    ],
    ids=["stacked", "frame", "restacked", "nan-label"],
)
def test_a_multiindex_round_trips_with_its_levels_order(value: pd.Series | pd.DataFrame) -> None:
    """Levels in their own order, not sorted: unstack orders columns by them (pydata ch08's
    ``df.unstack(level="state")`` came back with its columns in another order)."""
    back = V.loads(V.dumps(value))
    assert [list(lv) for lv in back.index.levels] == [list(lv) for lv in value.index.levels]
    if isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value, check_exact=True)
        pd.testing.assert_frame_equal(back.unstack(level=0), value.unstack(level=0))
    else:
        pd.testing.assert_frame_equal(back, value, check_exact=True)
        pd.testing.assert_frame_equal(back.unstack(level=0), value.unstack(level=0))


def test_a_100000_row_frame_round_trips_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"a": rng.random(100_000), "b": np.arange(100_000), "c": rng.choice(["x", "y"], 100_000)}
    )
    pd.testing.assert_frame_equal(V.loads(V.dumps(frame)), frame, check_exact=True)
    series = frame["a"]
    pd.testing.assert_series_equal(V.loads(V.dumps(series)), series, check_exact=True)


def test_a_daily_index_converted_across_daylight_saving_round_trips() -> None:
    """pandas 2.2 keeps freq D on a daily UTC index converted to New York, then refuses D when the index is built
    from those local times (pydata ch11's tz_convert). The document says what pandas 2.2 writes, whichever pandas
    runs the test: the values come back, without the freq they cannot take."""
    index = pd.date_range("2012-03-09 09:30", periods=6, freq="D", tz="UTC").tz_convert("America/New_York")
    series = pd.Series(np.arange(6.0), index=index)
    document = json.loads(V.dumps(series))
    document["value"]["index"]["freq"] = "D"
    back = V.loads(json.dumps(document))
    pd.testing.assert_series_equal(back, series, check_exact=True, check_freq=False)


def test_type_names_and_annotations_are_public() -> None:
    assert V.type_name(pd.DataFrame()) == "pandas.DataFrame"
    assert V.annotation([1, "a"]) == "list[int | str]"
    assert V.annotation({"a": [1]}) == "dict[str, list[int]]"
    assert V.annotation((1, 2.0)) == "tuple[int, float]"
    # annotations use importable names only: a private class becomes what it can be spelled as
    assert V.type_name(np.mean) == "numpy._ArrayFunctionDispatcher"
    assert V.annotation([np.mean]) == "list[collections.abc.Callable]"
    assert V.annotation(iter([])) == "object" and V.annotation(i for i in ()) == (
        "types.GeneratorType"
    )
    assert V.annotation(pd.DataFrame().groupby([])) == "pandas.api.typing.DataFrameGroupBy"


def test_unserialisable_things_are_described() -> None:
    import io
    import sqlite3

    with io.StringIO() as fh, sqlite3.connect(":memory:") as conn:
        things = [fh, (i for i in []), lambda: 1, sys, conn]
        reasons = [V.describe_unserialisable(t) for t in things]
    assert all(reasons) and "lambda" in str(reasons[2]) and "live resource" in str(reasons[4])
    assert V.describe_unserialisable(pd.DataFrame()) is None


_LEVELS = {
    "categorical": lambda n: pd.Categorical([f"c{i % 3}" for i in range(n)]),
    "string": lambda n: [f"s{i % 4}" for i in range(n)],
    "datetime": lambda n: pd.date_range("2024-01-01", periods=n, freq="D"),
    "period": lambda n: pd.period_range("2024-01", periods=n, freq="M"),
    "int": lambda n: list(range(n)),
}


@pytest.mark.parametrize("first", sorted(_LEVELS))
@pytest.mark.parametrize("second", ["string", "int"])
def test_a_frame_on_a_multiindex_has_a_fingerprint_that_sees_its_labels(first: str, second: str) -> None:
    """``df.set_index(['region', 'family'])`` (a categorical level: pandas 3 holds no MultiIndex in a
    Series, and the recorder failed on the index's hash)."""
    n = 6
    index = pd.MultiIndex.from_arrays([_LEVELS[first](n), _LEVELS[second](n)], names=["a", "b"])
    frame = pd.DataFrame({"v": np.arange(n, dtype=float)}, index=index)
    fp = V.fingerprint(frame)
    assert fp["index"]["type"] == "pandas.MultiIndex" and fp["index"]["hash"]
    assert V.fingerprint(frame.copy()) == fp
    relabelled = frame.rename(index={frame.index[0][1]: "other"}, level=1)
    assert V.fingerprint(relabelled)["index"]["hash"] != fp["index"]["hash"]
    assert V.fingerprint(frame["v"])["index"]["hash"] == fp["index"]["hash"]
