"""
Test generation: the comparison ladder, and generated suites run with pytest against a
hand-made package.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nbharden import models
from nbharden.record import Recording, record
from nbharden.settings import Settings
from nbharden.testgen import generate_tests

sys.path.insert(0, str(Path(__file__).parent))
from test_record import FIXTURES, load_notebook, make_plan, make_step  # noqa: E402

#: Tier: kernels, papermill or generated packages in subprocesses (make test-fast skips these).
pytestmark = pytest.mark.slow

SRC = Path(__file__).parent.parent / "src" / "nbharden"


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    """
    The helper module exactly as it is written into generated projects (with its sibling
    _values).
    """
    sys.path.insert(0, str(SRC / "record"))
    sys.path.insert(0, str(SRC / "testgen"))
    try:
        return importlib.import_module("_compare")
    finally:
        sys.path.remove(str(SRC / "record"))
        sys.path.remove(str(SRC / "testgen"))


def _entry(compare: ModuleType, value: object, tmp: Path, **extra: object) -> dict[str, object]:
    values = sys.modules["_values"]
    try:
        text, kind, sha = values.dumps(value), "value", None
    except values.Unencodable:
        text, kind = values.dumps_pickle(value), "pickle"
        sha = __import__("hashlib").sha256(text.encode()).hexdigest()
    (tmp / "v.json").write_text(text, encoding="utf-8")
    entry = {
        "name": "x",
        "kind": kind,
        "type": values.type_name(value),
        "file": "v.json",
        "volatile": False,
    }
    entry["sha256"] = sha
    entry["fingerprint"] = values.fingerprint(value)
    entry.update(extra)
    compare.DATA = tmp
    return entry


def _frame(n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {"x": rng.normal(size=n), "k": np.arange(n), "s": rng.choice(["a", "b"], size=n)}
    )


# --- the comparison ladder ------------------------------------------------------------


def test_float_noise_passes_real_changes_fail(compare: ModuleType, tmp_path: Path) -> None:
    frame = _frame()
    entry = _entry(compare, frame, tmp_path)
    noisy = frame.copy()
    noisy["x"] = noisy["x"] * (1 + 1e-13)
    compare.check_value(noisy, entry)  # float noise: passes
    drift = frame.copy()
    drift.loc[5, "x"] *= 1.01
    dropped = frame.drop(index=7)
    retyped = frame.astype({"k": "float64"})
    reordered = frame.sort_values("x")
    shuffled_values = frame.copy()
    shuffled_values["x"] = frame["x"].to_numpy()[::-1]
    for changed, why in [
        (drift, "differ"),
        (dropped, "shape"),
        (retyped, "dtype"),
        (reordered, "order"),
        (shuffled_values, "differ"),
    ]:
        with pytest.raises(AssertionError, match=why):
            compare.check_value(changed, entry)


def test_scalars_containers_and_objects(compare: ModuleType, tmp_path: Path) -> None:
    compare.check_value(0.1 + 0.2, _entry(compare, 0.3, tmp_path))
    with pytest.raises(AssertionError):
        compare.check_value(0.303, _entry(compare, 0.3, tmp_path))
    with pytest.raises(AssertionError, match="type"):
        compare.check_value(1, _entry(compare, 1.0, tmp_path))
    with pytest.raises(AssertionError, match="length"):
        compare.check_value(["a"], _entry(compare, ["a", "b"], tmp_path))
    with pytest.raises(AssertionError):
        compare.check_value(["b", "a"], _entry(compare, ["a", "b"], tmp_path))
    arr = np.linspace(0, 1, 50)
    compare.check_value(arr + 1e-15, _entry(compare, arr, tmp_path))
    with pytest.raises(AssertionError, match="dtype"):
        compare.check_value(arr.astype(np.float32), _entry(compare, arr, tmp_path))
    model = SimpleNamespace(coef=np.array([1.0, 2.0]), name="m")
    entry = _entry(compare, model, tmp_path)
    assert entry["kind"] == "pickle"
    compare.check_value(SimpleNamespace(coef=np.array([1.0, 2.0 + 1e-14]), name="m"), entry)
    with pytest.raises(AssertionError, match="coef"):
        compare.check_value(SimpleNamespace(coef=np.array([1.0, 2.02]), name="m"), entry)


def test_lazy_pandas_objects_cycles_caches_and_environments(
    compare: ModuleType, tmp_path: Path
) -> None:
    s = pd.Series([1.0, 2.0, 3.0, 4.0], index=pd.date_range("2020-01-01", periods=4, freq="min"))
    # a groupby or a resampler has no value equality: its data and group sizes are compared
    grouped = _entry(compare, s.groupby([0, 0, 1, 1]), tmp_path)
    compare.check_value(s.groupby([0, 0, 1, 1]), grouped)
    with pytest.raises(AssertionError, match="size"):
        compare.check_value(s.groupby([0, 1, 1, 1]), grouped)
    with pytest.raises(AssertionError, match="obj"):
        compare.check_value((s * 2).groupby([0, 0, 1, 1]), grouped)
    resampled = _entry(compare, s.resample("2min"), tmp_path)
    compare.check_value(s.resample("2min"), resampled)
    with pytest.raises(AssertionError):
        compare.check_value(s.resample("3min"), resampled)
    # objects that point at each other (pytz zones do) end the comparison, not recurse forever
    a, b = SimpleNamespace(v=1), SimpleNamespace(v=1)
    a.other, b.other = b, a
    c, d = SimpleNamespace(v=1), SimpleNamespace(v=1)
    c.other, d.other = d, c
    cyclic = _entry(compare, a, tmp_path)
    compare.check_value(c, cyclic)
    d.v = 2
    with pytest.raises(AssertionError, match="other"):
        compare.check_value(c, cyclic)
    # caches and captured namespaces are not results
    model = SimpleNamespace(
        coef=[1.0], _cache={"xnames": ["a"]}, env={"__builtins__": {}, "__name__": "m"}
    )
    entry = _entry(compare, model, tmp_path)
    compare.check_value(SimpleNamespace(coef=[1.0], _cache={}, env=dict(vars(compare))), entry)
    with pytest.raises(AssertionError, match="coef"):
        compare.check_value(SimpleNamespace(coef=[2.0], _cache={}, env={}), entry)


def test_fingerprint_only_values_use_hashes_and_statistics(
    compare: ModuleType, tmp_path: Path
) -> None:
    frame = _frame()
    fp = sys.modules["_values"].fingerprint(frame)
    entry = {
        "name": "big",
        "kind": "fingerprint",
        "type": "pandas.DataFrame",
        "fingerprint": fp,
        "volatile": False,
    }
    compare.check_value(frame.copy(), entry)
    noisy = frame.assign(x=frame["x"] * (1 + 1e-14))
    compare.check_value(noisy, entry)
    swapped = frame.copy()
    swapped.loc[[10, 900], "x"] = frame.loc[[900, 10], "x"].to_numpy()
    for changed in [
        frame.assign(x=frame["x"] * 1.01),
        frame.iloc[1:],
        frame.astype({"k": "int32"}),
        swapped,
        frame.assign(k=frame["k"] + 1),
        frame.iloc[::-1],
    ]:
        with pytest.raises(AssertionError):
            compare.check_value(changed, entry)


def test_volatile_and_uncomparable_values(compare: ModuleType, tmp_path: Path) -> None:
    entry = _entry(compare, np.zeros(3), tmp_path, volatile=True)
    compare.check_value(np.ones(3), entry)  # different values, same structure
    with pytest.raises(AssertionError, match="shape"):
        compare.check_value(np.ones(4), entry)
    gen = {
        "name": "gen",
        "kind": "described",
        "type": "types.GeneratorType",
        "note": "cannot be stored: generator",
    }
    with pytest.raises(compare.Uncomparable, match="generator"):
        compare.check_value((i for i in ()), gen)
    with pytest.raises(AssertionError, match="type"):
        compare.check_value([1], gen)
    with pytest.raises(pytest.skip.Exception, match="could not compare gen"):
        compare.check_all(
            [({"name": "a", **_entry(compare, 1, tmp_path)}, 1), (gen, (i for i in ()))], "step s"
        )
    with pytest.raises(AssertionError):  # a failure wins over a skip
        compare.check_all([(_entry(compare, 1, tmp_path), 2), (gen, (i for i in ()))], "step s")


# --- generated suites, run with pytest ------------------------------------------------

HAND_STEPS = '''"""Steps of bigpipe (a hand-written stand-in for the generated package)."""

import numpy as np
import pandas as pd


def make_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.integers(0, 100, size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
        }
    )
    return frame


def add_scaled(frame: pd.DataFrame, scale: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame["z"] = frame["x"] * scale
    summary = frame.groupby("g")["z"].agg(["mean", "count"])
    return frame, summary


def totals(frame: pd.DataFrame) -> tuple[float, list[str]]:
    total = float(frame["z"].sum())
    labels = sorted(frame["g"].unique().tolist())
    return total, labels
'''

HAND_CONFIG = '''"""Configuration of bigpipe."""

from pydantic_settings import BaseSettings


class Config(BaseSettings):
    n: int = 100_000
    scale: float = 2.0
'''

HAND_PIPELINE = '''"""The bigpipe pipeline."""

from bigpipe.config import Config
from bigpipe.steps import add_scaled, make_frame, totals


def run(config: Config | None = None) -> dict[str, object]:
    config = config or Config()
    frame = make_frame(config.n)
    frame, summary = add_scaled(frame, config.scale)
    total, labels = totals(frame)
    return {"frame": frame, "summary": summary, "total": total, "labels": labels}
'''

BIG_PLAN = make_plan(
    "bigpipe",
    (
        make_step("make_frame", (4,), ("n",), ("frame",), config=("n",)),
        make_step("add_scaled", (5,), ("frame", "scale"), ("frame", "summary"), config=("scale",)),
        make_step("totals", (6,), ("frame",), ("total", "labels")),
    ),
    (
        models.ConfigField(
            name="n", annotation="int", default="100_000", description="", cell=2, line=1
        ),
        models.ConfigField(
            name="scale", annotation="float", default="2.0", description="", cell=2, line=2
        ),
    ),
)

#: (description, text to replace in steps.py, replacement, the tests that must fail)
MUTANTS = [
    (
        "changed constant",
        'frame["x"] * scale',
        'frame["x"] * scale * 1.01',
        ("test_add_scaled", "test_pipeline"),
    ),
    (
        "dropped row",
        "    return frame\n",
        "    return frame.iloc[1:]\n",
        ("test_make_frame", "test_pipeline"),
    ),
    (
        "changed dtype",
        '"y": rng.integers(0, 100, size=n),',
        '"y": rng.integers(0, 100, size=n).astype(float),',
        ("test_make_frame",),
    ),
    (
        "reordered rows",
        'summary = frame.groupby("g")',
        'summary = frame.groupby("g", sort=False)',
        ("test_add_scaled",),
    ),
    ("changed call", ".unique().tolist())", ".unique().tolist(), reverse=True)", ("test_totals",)),
]


@pytest.fixture(scope="module")
def big_recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    nb = load_notebook(FIXTURES / "pipeline.ipynb")
    # 10,000 rows (a parameter) keeps the six generated suites below fast; the
    # 100,000-row run is in test_record
    settings = Settings(parameters=(("n", "10000"),))
    return record(nb, BIG_PLAN, settings=settings, workdir=tmp_path_factory.mktemp("rec"), runs=1)


def _project(root: Path, files: dict[str, str], steps: str) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    pkg = root / "src" / "bigpipe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "steps.py").write_text(steps, encoding="utf-8")
    (pkg / "config.py").write_text(HAND_CONFIG, encoding="utf-8")
    (pkg / "pipeline.py").write_text(HAND_PIPELINE, encoding="utf-8")
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\npythonpath = ["src"]\n', encoding="utf-8"
    )
    return root


def _pytest(root: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("PYTHONPATH", None)  # the generated project must not need nbharden
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_generated_files_are_plain_python_without_nbharden(big_recording: Recording) -> None:
    files = generate_tests(BIG_PLAN, big_recording, package="bigpipe")
    assert {
        "tests/conftest.py",
        "tests/_compare.py",
        "tests/_values.py",
        "tests/test_steps.py",
        "tests/test_pipeline.py",
        "tests/test_config.py",
        "tests/data/recording.json",
    } <= set(files)
    for rel, text in files.items():
        assert isinstance(text, str)
        if rel.endswith(".py"):
            tree = ast.parse(text)
            imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            imported |= {
                a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
            }
            assert not any(str(m).startswith("nbharden") for m in imported), rel
    tests = ast.parse(files["tests/test_steps.py"])
    names = [f.name for f in tests.body if isinstance(f, ast.FunctionDef)]
    assert names == ["test_make_frame", "test_add_scaled", "test_totals"]
    assert generate_tests(BIG_PLAN, big_recording, package="bigpipe") == files  # deterministic


def test_generated_suite_passes_and_kills_mutants(big_recording: Recording, tmp_path: Path) -> None:
    files = generate_tests(BIG_PLAN, big_recording, package="bigpipe")
    runs = {"original": _pytest(_project(tmp_path / "original", files, HAND_STEPS))}
    for i, (what, old, new, _) in enumerate(MUTANTS):
        assert old in HAND_STEPS, what
        runs[what] = _pytest(
            _project(tmp_path / f"mutant{i}", files, HAND_STEPS.replace(old, new, 1))
        )
    outputs = {what: proc.communicate(timeout=300)[0] for what, proc in runs.items()}

    original = outputs["original"]
    assert runs["original"].returncode == 0, original
    assert "7 passed" in original and "skipped" not in original, original
    for what, _, _, must_fail in MUTANTS:
        out = outputs[what]
        assert runs[what].returncode == 1, f"{what} survived:\n{out}"
        for test in must_fail:
            assert "FAILED tests/test_" in out and test in "\n".join(
                line for line in out.splitlines() if line.startswith("FAILED")
            ), f"{what}: {test} did not fail:\n{out}"


# --- randomness and clocks, end to end through the real planner ------------------------

RANDOM_MUTANTS = [
    # (what, old, new, the test that must fail)
    ("unseeded draw scaled", "np.random.rand(3)", "np.random.rand(3) * 2", "test_unseeded_draws"),
    ("seed-dependent sum", "first + roll", "first - roll", "test_use_them"),
    ("late draw changed", "np.random.normal(size=size)", "np.random.normal(size=size + 1)",
     "test_draw_later"),
    ("late choice changed", 'random.choice("abcd")', 'random.choice("abdc")', "test_draw_later"),
]  # fmt: skip


def _write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_random_notebook_converts_identically_and_its_tests_replay_the_draws(
    tmp_path: Path,
) -> None:
    from nbharden import api

    nb = tmp_path / "randomness.ipynb"
    nb.write_bytes((FIXTURES / "randomness.ipynb").read_bytes())
    first = api.generate(nb, Settings(out=tmp_path / "out"))
    second = api.generate(nb, Settings(out=tmp_path / "out"))
    # unseeded draws, a notebook that seeds itself, a clock: two conversions, same bytes
    assert first.tree.as_dict() == second.tree.as_dict()
    files = first.tree.as_dict()
    steps_py = files["src/randomness/steps.py"]
    assert "restore_random_state" in files["tests/test_steps.py"]

    runs = {"original": _pytest(_write_tree(tmp_path / "original", files))}
    for i, (what, old, new, _) in enumerate(RANDOM_MUTANTS):
        assert steps_py.count(old) == 1, what
        mutant = {**files, "src/randomness/steps.py": steps_py.replace(old, new)}
        runs[what] = _pytest(_write_tree(tmp_path / f"mutant{i}", mutant))
    outputs = {what: proc.communicate(timeout=300)[0] for what, proc in runs.items()}

    original = outputs["original"]
    assert runs["original"].returncode == 0, original
    # the steps fed by the clock are not skipped: their volatile inputs (kept as fingerprints) are
    # made again by the step before (_replay), checked by structure like every volatile value
    skips = [line for line in original.splitlines() if line.startswith("SKIPPED")]
    assert not skips, original
    for test in ("test_clock_unseeded_generator", "test_use_clock"):
        assert f"PASSED tests/test_steps.py::{test}" in original, original
    for test in ("test_unseeded_draws", "test_use_them", "test_draw_later"):
        assert f"PASSED tests/test_steps.py::{test}" in original, original
    for what, _, _, test in RANDOM_MUTANTS:
        out = outputs[what]
        failed = [line for line in out.splitlines() if line.startswith("FAILED")]
        assert runs[what].returncode == 1 and any(test in line for line in failed), (
            f"{what} survived:\n{out}"
        )


def test_a_step_that_deletes_a_name_converts_to_code_that_passes_its_tests(
    tmp_path: Path,
) -> None:
    """late_change.ipynb binds label, then ``del label``: the step used to return it (and failed
    with UnboundLocalError in every generated test that ran it)."""
    from nbharden import api

    nb = tmp_path / "late_change.ipynb"
    nb.write_bytes((FIXTURES / "late_change.ipynb").read_bytes())
    files = api.generate(nb, Settings(out=tmp_path / "out")).tree.as_dict()
    returns = [
        line for line in files["src/late_change/steps.py"].splitlines() if "return " in line
    ]
    assert returns and not any("label" in line for line in returns)
    proc = _pytest(_write_tree(tmp_path / "package", files))
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    assert "passed" in out and "failed" not in out, out


@pytest.mark.slow
def test_inputs_over_the_storage_cap_are_made_again_not_skipped(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Issue 13: with a cap that only the small values fit under, the frame is kept as a
    fingerprint; the tests of the steps that read it make it again from the step before (checked
    against the fingerprint) instead of skipping, and still catch a changed constant.
    """
    nb = load_notebook(FIXTURES / "pipeline.ipynb")
    settings = Settings(parameters=(("n", "10000"),))
    capped = record(
        nb, BIG_PLAN, settings=settings, workdir=tmp_path_factory.mktemp("cap"), runs=1,
        cap_bytes=20_000,
    )  # fmt: skip
    assert capped.capped
    assert capped.step("add_scaled").inputs[0].kind == "fingerprint"
    files = generate_tests(BIG_PLAN, capped, package="bigpipe")
    original = _pytest(_project(tmp_path / "original", files, HAND_STEPS))
    old, new = 'frame["x"] * scale', 'frame["x"] * scale * 1.01'
    mutant = _pytest(_project(tmp_path / "mutant", files, HAND_STEPS.replace(old, new, 1)))
    out = original.communicate(timeout=300)[0]
    assert original.returncode == 0 and "skipped" not in out, out
    out = mutant.communicate(timeout=300)[0]
    assert mutant.returncode == 1 and "FAILED tests/test_steps.py::test_add_scaled" in out, out
