"""Compare what the code returns with what the notebook produced when it was recorded.

Written into the generated project's ``tests/`` by nbharden; it needs only pytest (and
numpy and pandas when the values are theirs). The ladder: exact values first, then
structure (type, shape, dtypes, columns, index), then tolerance: floats within
``rel=1e-9`` (and ``abs=1e-12``), big values by per-column hashes and statistics. A
value that cannot be compared (a generator, an open file, a connection) makes the test
skip with the reason; it never passes silently.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import types
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import _figures
import _learned
import _replay
import _values
import pytest

DATA = Path(__file__).parent / "data"
REL = 1e-9
ABS = 1e-12
_INDEX: dict[str, Any] = {}


class Uncomparable(Exception):
    """The value cannot be compared; the message says why."""


def index() -> dict[str, Any]:
    """The recording's index (``data/recording.json``), read once."""
    if not _INDEX:
        _INDEX.update(json.loads((DATA / "recording.json").read_text(encoding="utf-8")))
    return _INDEX


# --- loading --------------------------------------------------------------------------


def load_value(entry: Mapping[str, Any]) -> Any:
    """
    The recorded value of ``entry``. Raises ``Uncomparable`` when it was not stored or
    cannot be loaded.
    """
    kind = entry["kind"]
    if kind not in ("value", "pickle") or not entry.get("file"):
        raise Uncomparable(f"{kind}: {entry.get('note') or 'the value itself was not recorded'}")
    text = (DATA / entry["file"]).read_text(encoding="utf-8")
    if kind == "value":
        return _values.loads(text)
    try:
        return _values.loads_pickle(text, entry["sha256"])
    # e.g. a class that only existed in the notebook
    except Exception as exc:
        raise Uncomparable(
            f"cannot load the recorded {entry['type']}: {type(exc).__name__}: {exc}"
        ) from exc


def load_inputs(step: str) -> dict[str, Any]:
    """
    Keyword arguments for ``step``: the values it read in the notebook. Skips when one
    was not recorded.
    """
    kwargs: dict[str, Any] = {}
    for entry in index()["steps"][step]["inputs"]:
        name = entry["name"]
        if entry.get("alias_of") in kwargs:
            kwargs[name] = kwargs[
                entry["alias_of"]
            ]  # the notebook passed the very same object twice
            continue
        if name in index().get("secrets", ()):
            # a secret from the Config: the placeholder the tests' environment holds (conftest.py)
            kwargs[name] = f"test-placeholder-{name}"
            continue
        try:
            kwargs[name] = load_value(entry)
        except Uncomparable as exc:
            kwargs[name] = _made_again(step, entry, exc)
    return kwargs


def _made_again(step: str, entry: Mapping[str, Any], why: Uncomparable) -> Any:
    """An input kept as a fingerprint only (over the storage cap): made again by the step that
    produced it (``_replay``); skips with both reasons when that is not possible.
    """
    if entry["kind"] != "fingerprint":
        pytest.skip(f"step {step}: input {entry['name']!r} was not recorded ({why})")
    try:
        return _replay.make_again(index(), step, entry, load_inputs, check_value)
    except (_replay.NotReproducible, Uncomparable) as exc:
        pytest.skip(f"step {step}: input {entry['name']!r} was not recorded ({why}); {exc}")
    # the step before could not run here (an input file absent from data_dir...): its own test
    # reports that; this one cannot start
    except Exception as exc:  # noqa: BLE001
        pytest.skip(
            f"step {step}: input {entry['name']!r} was not recorded ({why}) and could not be "
            f"made again: {type(exc).__name__}: {exc}"
        )


def set_module_state(module: Any, step: str, inputs: dict[str, Any]) -> None:
    """Move the inputs of ``step`` that are module state (globals a function rebinds with
    ``global``) from ``inputs`` onto ``module``, where the step and its functions read them.
    """
    for name in index()["steps"][step].get("state", ()):
        if name in inputs:
            setattr(module, name, inputs.pop(name))


def restore_random_state(step: str) -> None:
    """Put the global generators (``random``, numpy's) in the state they had when ``step``
    started in the notebook, so that what it draws is what the notebook drew.
    """
    entry = index()["steps"][step]
    text = (DATA / entry["random_state"]).read_text(encoding="utf-8")
    _values.set_random_state(json.loads(text)["random_state"])


def seed_as_recorded(config: Any) -> None:
    """Seed the global generators (``random``, numpy's) as the recorder seeded them before the
    notebook's first cell, unless ``config`` seeds the pipeline itself. What an unseeded notebook
    draws from them then follows the recorded run, so the test does not hang on chance: which
    model a cross-validation on shuffled folds picks is a coin toss two runs may agree on.
    """
    field = index().get("seed_field")
    if isinstance(field, str) and getattr(config, field, None) is not None:
        return
    _values.seed_everything(int(index().get("seed") or 0))


def recorded_parameters() -> dict[str, Any]:
    """The parameters the notebook was recorded with (Config fields only)."""
    return dict(index()["parameters"])


def config_for_run(config_cls: Any) -> Any:
    """``config_cls`` with the recorded parameters; skips when it needs secrets that are
    not set.
    """
    try:
        return config_cls(**recorded_parameters())
    except Exception as exc:
        if index().get("secrets") and type(exc).__name__ == "ValidationError":
            pytest.skip(
                "the configuration needs secrets from the environment "
                f"({', '.join(index()['secrets'])})"
            )
        raise


# --- checking -------------------------------------------------------------------------


def check_outputs(step: str, result: Any) -> None:
    """
    Compare ``result`` (None, one value, or a tuple in the step's output order) with the
    recording.
    """
    recorded = index()["steps"][step]
    check_written(recorded.get("cells", []), f"step {step}")
    outputs = recorded["outputs"]
    # what follows the notebook's random seed is reproduced when the step draws nothing
    # from the global generators or the test put them back in their recorded state
    reproduced = not recorded.get("draws_random") or bool(recorded.get("random_state"))
    if not outputs:
        assert result is None, (
            f"step {step}: returned {type(result).__name__}; the notebook made nothing"
        )
        return
    if len(outputs) == 1:
        values = [result]
    else:
        assert isinstance(result, tuple) and len(result) == len(outputs), (
            f"step {step}: expected a tuple of {len(outputs)} values "
            f"({', '.join(e['name'] for e in outputs)}), got {type(result).__name__}"
        )
        values = list(result)
    derived = [e["name"] for e in outputs] if recorded.get("uses_secrets") else []
    check_all(list(zip(outputs, values, strict=True)), f"step {step}", reproduced, derived)


#: ``with shown_figures(module) as shown:`` around a step: the fingerprints of the figures it shows.
shown_figures = _figures.shown


def check_figures(step: str, shown: list[dict[str, Any]]) -> None:
    """The figures ``step`` showed (``shown_figures``) are those its cells showed in the notebook:
    the same number, each with the same size, axes, titles, labels, legend, number of artists and
    data drawn (within a tolerance), in any order."""
    _figures.check(shown, index()["steps"][step]["figures"], f"step {step}")


def check_results(results: Any, config: Any = None) -> None:
    """Compare the pipeline's final values (the fields of its ``Results``, or a mapping by
    name) with the notebook's last recorded values.

    Values that follow the random seed are compared exactly only when ``config`` seeds the
    pipeline with the seed the notebook was recorded with; otherwise by type and shape.
    """
    if dataclasses.is_dataclass(results) and not isinstance(results, type):
        results = {f.name: getattr(results, f.name) for f in dataclasses.fields(results)}
    assert isinstance(results, Mapping), (
        f"pipeline returned {type(results).__name__}, not a dataclass or mapping of results"
    )
    finals = index()["finals"]
    pairs = [(finals[name], value) for name, value in results.items() if name in finals]
    if not pairs:
        pytest.skip(
            f"none of the pipeline's results ({', '.join(results)}) were recorded in the notebook"
        )
    field = index().get("seed_field")
    seeded = isinstance(field, str) and getattr(config, field, None) == index().get("seed")
    check_written(None, "the pipeline")
    if getattr(config, "output_dir", None) is not None:
        check_metrics(results, Path(config.output_dir))
    check_all(pairs, "pipeline", seeded, index().get("secret_derived", []))


def _test_folder() -> Path:
    """The test's own folder (pytest's ``tmp_path``), which holds the folder the conftest makes the
    package's ``output_dir`` (``<PREFIX>OUTPUT_DIR``) and its working folder."""
    config = importlib.import_module(f"{index()['package']}.config").Config
    prefix = str(config.model_config.get("env_prefix", ""))
    return Path(os.environ[f"{prefix}OUTPUT_DIR"]).parent


def check_written(cells: Collection[int] | None, where: str) -> None:
    """The files the notebook's ``cells`` (None: all) wrote were written again, somewhere in the
    test's folder (its working folder, or ``output_dir`` when the package writes them there), and
    are not empty when the notebook's were not."""
    expected = [
        entry
        for entry in index().get("files_written", [])
        if cells is None or set(entry["cells"]) & set(cells)
    ]
    if not expected:
        return
    folder = _test_folder()
    sizes: dict[str, int] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            sizes[path.name] = max(sizes.get(path.name, 0), path.stat().st_size)
    missing = [
        entry["path"]
        for entry in expected
        if Path(entry["path"]).name not in sizes
        or (not entry.get("empty", True) and sizes[Path(entry["path"]).name] == 0)
    ]
    assert not missing, (
        f"{where}: the notebook wrote {', '.join(missing)}; not written here (looked in {folder})"
    )


def check_metrics(results: Mapping[str, Any], output_dir: Path) -> None:
    """Each result the notebook showed that is small data (``results.jsonable``) is in the
    ``metrics.json`` the pipeline wrote."""
    shown = [name for name in index().get("results", []) if name in results]
    if not shown:
        return
    jsonable = importlib.import_module(f"{index()['package']}.results").jsonable
    expected = [name for name in shown if jsonable(results[name]) is not None]
    path = output_dir / "metrics.json"
    if not expected:
        return
    assert path.is_file(), f"the pipeline wrote no {path}; the notebook showed {', '.join(expected)}"
    written = json.loads(path.read_text(encoding="utf-8"))
    missing = [name for name in expected if name not in written]
    assert not missing, f"{path} lacks the result(s) the notebook showed: {', '.join(missing)}"


def check_all(
    pairs: list[tuple[Mapping[str, Any], Any]],
    where: str,
    reproduced: bool = False,
    derived: Collection[str] = (),
) -> None:
    """Check every (recorded entry, actual value) pair.

    Fails on any difference, then skips for what could not be compared. ``reproduced``:
    the randomness of the notebook's run was reproduced, so values that follow the seed
    are compared like the others. ``derived``: names that may be computed from a secret,
    which the tests replace by a placeholder; a difference there is a skip, not a failure.
    """
    failures: list[str] = []
    skipped: list[str] = []
    compared: list[str] = []
    for entry, actual in pairs:
        try:
            check_value(actual, entry, reproduced)
        except Uncomparable as exc:
            skipped.append(f"{entry['name']} ({exc})")
        except AssertionError as exc:
            if entry["name"] in derived:
                skipped.append(
                    f"{entry['name']} (differs; computed from a secret, which the tests "
                    "replace by a placeholder)"
                )
            else:
                failures.append(f"{entry['name']}: {exc}")
        else:
            compared.append(entry["name"])
    if failures:
        raise AssertionError(f"{where} differs from the notebook:\n  " + "\n  ".join(failures))
    if skipped:
        done = f"compared {', '.join(compared)}; " if compared else ""
        pytest.skip(f"{where}: {done}could not compare {'; '.join(skipped)}")


def check_value(actual: Any, entry: Mapping[str, Any], reproduced: bool = False) -> None:
    """Check one value against its recorded ``entry``.

    Raises ``AssertionError`` when it differs, ``Uncomparable`` when it cannot tell.
    ``reproduced``: the randomness of the notebook's run was reproduced, so a value that
    follows the seed is compared like the others.
    """
    kind = entry["kind"]
    name = entry["name"]
    if kind in ("described", "redacted", "missing"):
        if kind == "described" and entry.get("type"):
            _same_type(_values.type_name(actual), entry["type"], name)
        raise Uncomparable(entry.get("note") or kind)
    fp = entry.get("fingerprint") or {"type": entry["type"]}
    if entry.get("volatile") and not (reproduced and entry.get("seed_dependent")):
        # differed between two runs of the notebook (clock, unseeded randomness): the
        # structure must still hold
        _same_structure(_values.fingerprint(actual), fp, name)
        return
    if kind == "fingerprint":
        same_fingerprint(_values.fingerprint(actual), fp, name)
        return
    expected = load_value(entry)
    if kind == "pickle":
        # the recording went through pickle (which may drop callbacks and caches, as
        # statsmodels' results do): so does the value it is compared with
        actual = _through_pickle(actual)
    assert_same(actual, expected, name)


def _through_pickle(value: Any) -> Any:
    """``value`` pickled and loaded back (by the same restricted unpickler as the recorded
    value), or ``value`` itself when it cannot be."""
    import io
    import pickle

    # numpy's global generator (an object's _random_state) stays itself: it is not the
    # object's value, and a copy would look like one (see _is_global_generator)
    class Keep(pickle.Pickler):
        def persistent_id(self, obj: Any) -> str | None:
            return _GLOBAL_GENERATOR if _is_global_generator(obj) else None

    class Load(_values.SafeUnpickler):  # type: ignore[misc]
        def persistent_load(self, pid: Any) -> Any:
            if pid != _GLOBAL_GENERATOR:
                raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
            import numpy.random

            return numpy.random.mtrand._rand

    try:
        buffer = io.BytesIO()
        Keep(buffer, protocol=4).dump(value)
        buffer.seek(0)
        return Load(buffer).load()
    except Exception:  # noqa: BLE001 - what cannot be pickled is compared as it is
        return value


_GLOBAL_GENERATOR = "numpy.random.mtrand._rand"


# --- the ladder -----------------------------------------------------------------------


def _same_type(actual: str, expected: str, path: str) -> None:
    # a class defined in the notebook lives in __main__ there and in the package here
    if actual == expected or (
        actual.rsplit(".", 1)[-1] == expected.rsplit(".", 1)[-1]
        and "__main__" in (actual + expected)
    ):
        return
    raise AssertionError(f"{path}: type {actual} != recorded {expected}")


def _same_structure(actual: dict[str, Any], expected: dict[str, Any], path: str) -> None:
    a, e = _values.structure(actual), _values.structure(expected)
    _same_type(a.pop("type", ""), e.pop("type", ""), path)
    # only what every run of the notebook agreed on was kept
    a = {k: v for k, v in a.items() if k in e}
    for key in sorted(set(a) | set(e)):
        if a.get(key) != e.get(key):
            raise AssertionError(f"{path}: {key} {a.get(key)} != recorded {e.get(key)}")


def same_fingerprint(actual: dict[str, Any], expected: dict[str, Any], path: str) -> None:
    """Compare by fingerprint: structure exactly, then per column: same hash, or (floats
    only) same statistics.
    """
    _same_structure(actual, expected, path)
    if "index" in expected and actual.get("index") != expected["index"]:
        raise AssertionError(
            f"{path}: the index (row labels or their order) differs from the recording"
        )
    if "data" in expected:
        columns = expected.get("columns") or [expected.get("name", "")]
        for col, a, e, dtype in zip(
            columns, actual["data"], expected["data"], expected["dtypes"], strict=True
        ):
            _same_hash_or_stats(a, e, dtype, f"{path}[{col}]")
        return
    if "hash" in expected or "stats" in expected:
        _same_hash_or_stats(actual, expected, str(expected.get("dtype", "")), path)
        return
    if "learned" in expected:  # a model kept as a fingerprint: its settings and what it learned
        return _same_model(actual, expected, path)
    raise Uncomparable(f"only the type and size of {expected['type']} were recorded")


def _same_model(actual: dict[str, Any], expected: dict[str, Any], path: str) -> None:
    """A model's fingerprint: its parameters as recorded, then what it learned, attribute by attribute
    (numbers within ``REL``, arrays and frames by fingerprint, else by structure)."""
    if actual.get("params") != expected.get("params"):
        raise AssertionError(f"{path}: parameters {actual.get('params')} != recorded {expected.get('params')}")
    learned = actual.get("learned") or {}
    for name, e in sorted(expected["learned"].items()):
        a, where = learned.get(name), f"{path}.{name}"
        if isinstance(e, dict) and isinstance(a, dict):
            try:
                same_fingerprint(a, e, where)
            except Uncomparable:
                _same_structure(a, e, where)
        elif isinstance(e, float) and isinstance(a, (int, float)) and not isinstance(a, bool):
            if not _values.is_close(float(a), e, REL, ABS):
                raise AssertionError(f"{where}: {a!r} != recorded {e!r} (rel={REL})")
        elif a != e:
            raise AssertionError(f"{where}: {a!r} != recorded {e!r}")


def _same_hash_or_stats(
    actual: dict[str, Any], expected: dict[str, Any], dtype: str, path: str
) -> None:
    if expected.get("hash") is not None and actual.get("hash") == expected["hash"]:
        return
    floating = any(k in dtype.lower() for k in ("float", "complex", "<f", "<c", ">f", ">c"))
    a, e = actual.get("stats"), expected.get("stats")
    if not floating or not a or not e:
        raise AssertionError(f"{path}: values differ from the recording (hash mismatch)")
    for key in sorted(set(a) | set(e)):
        x, y = a.get(key), e.get(key)
        if x is None or y is None or not _values.is_close(float(x), float(y), REL, ABS):
            raise AssertionError(f"{path}: {key} {x!r} != recorded {y!r}")


def assert_same(actual: Any, expected: Any, path: str) -> None:
    """Exact, structural and tolerant comparison of a value with the recorded one."""
    if actual is expected:
        return None
    pair = (id(actual), id(expected))
    if pair in _COMPARING:
        return None  # a cycle (pytz zones point at each other): same so far is same
    _COMPARING.add(pair)
    try:
        return _assert_same(actual, expected, path)
    finally:
        _COMPARING.discard(pair)


_COMPARING: set[tuple[int, int]] = set()


#: Objects that hold the environment some code ran in (the caller's namespaces and compiler
#: flags, captured by formula libraries), not a result: not compared.
_ENVIRONMENT_TYPES = {"patsy.eval.EvalEnvironment", "patsy.EvalEnvironment"}


def _is_environment(value: Any) -> bool:
    """A namespace (a module's globals: a dict with ``__builtins__``) or an object that
    captures one.
    """
    if isinstance(value, dict):
        return "__builtins__" in value and "__name__" in value
    return _values.type_name(value) in _ENVIRONMENT_TYPES


def by_fingerprint(actual: Any, expected: Any, path: str, why: str) -> None:
    """Compare what cannot be compared by value through its fingerprint (type, size,
    hashes where there are any). Raises ``AssertionError`` when those differ, else
    ``Uncomparable`` saying why and what was compared (the test skips with that reason).
    """
    fp_a, fp_e = _values.fingerprint(actual), _values.fingerprint(expected)
    if "hash" in fp_e or "data" in fp_e:
        same_fingerprint(fp_a, fp_e, path)
        return None
    _same_structure(fp_a, fp_e, path)
    what = "type and size" if "shape" in fp_e else "type"
    raise Uncomparable(f"{path}: {type(expected).__name__} {why}; compared by {what} only")


def _is_global_generator(value: Any) -> bool:
    """numpy's global RandomState (what scipy distributions and unseeded estimators hold
    as ``_random_state``): the process's generator, not part of the object's value."""
    import sys

    mtrand = getattr(sys.modules.get("numpy.random"), "mtrand", None)
    return mtrand is not None and value is getattr(mtrand, "_rand", None)


def _same_function(actual: Any, expected: Any) -> bool:
    """The same function: the very object, or (a class of the notebook, defined in
    ``__main__`` there and in the package here) the same qualified name."""
    if actual is expected:
        return True
    name_a = getattr(actual, "__qualname__", None)
    name_e = getattr(expected, "__qualname__", None)
    if name_a is None or name_a != name_e:
        return False
    mod_a = str(getattr(actual, "__module__", ""))
    mod_e = str(getattr(expected, "__module__", ""))
    return mod_a == mod_e or "__main__" in (mod_a, mod_e)


def _same_bound_method(actual: Any, expected: Any, path: str) -> None:
    """A bound method (``self.loglike = self._loglike``, scipy's ``_parse_args``): the
    same function, bound to an equal object. Python's own ``==`` asks for the very same
    ``__self__``, which a recorded copy never is; an object that holds a method of itself
    is a cycle, which ``assert_same`` cuts.
    """
    if not _same_function(actual.__func__, expected.__func__):
        raise AssertionError(
            f"{path}: method {getattr(actual.__func__, '__qualname__', actual)} "
            f"!= recorded {getattr(expected.__func__, '__qualname__', expected)}"
        )
    assert_same(actual.__self__, expected.__self__, f"{path}.__self__")


def _assert_same(actual: Any, expected: Any, path: str) -> None:
    if _is_environment(expected) and _is_environment(actual):
        return None
    if _is_global_generator(actual):
        return None  # the process's generator: its state is where the run is, not a result
    _same_type(_values.type_name(actual), _values.type_name(expected), path)
    if _learned.is_model(expected):
        # a fitted model: its settings and what it learned, not how the fit ran (thread counts, caches)
        return assert_same(
            _learned.learned_state(actual), _learned.learned_state(expected), f"{path}.learned"
        )
    if isinstance(expected, types.MethodType) and isinstance(actual, types.MethodType):
        return _same_bound_method(actual, expected, path)
    top = type(expected).__module__.split(".")[0]
    if top == "pandas":
        return _same_pandas(actual, expected, path)
    if top == "numpy" and _is_numpy_data(expected):
        return _same_numpy(actual, expected, path)
    if isinstance(expected, float):
        if not _values.is_close(actual, expected, REL, ABS):
            raise AssertionError(f"{path}: {actual!r} != recorded {expected!r} (rel={REL})")
        return None
    if isinstance(expected, complex):
        assert_same(actual.real, expected.real, f"{path}.real")
        return assert_same(actual.imag, expected.imag, f"{path}.imag")
    if isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            raise AssertionError(f"{path}: length {len(actual)} != recorded {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{i}]")
        return None
    if isinstance(expected, dict):
        if set(actual) != set(expected):
            raise AssertionError(
                f"{path}: keys {sorted(map(repr, actual))} "
                f"!= recorded {sorted(map(repr, expected))}"
            )
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}[{key!r}]")
        return None
    if (
        type(expected).__eq__ is object.__eq__  # type: ignore[comparison-overlap]
        and not _has_state(expected)
        and not isinstance(expected, (type(None), type, range))
        and not callable(expected)
    ):
        # no value equality and no __dict__ (an extension type, e.g. a fitted tree):
        # compare the state it pickles, else say it cannot be compared
        state = getattr(expected, "__getstate__", lambda: None)()
        if state is None:
            return by_fingerprint(actual, expected, path, "has no value equality")
        return assert_same(actual.__getstate__(), state, f"{path}.__getstate__()")
    if isinstance(
        expected, (str, bytes, int, bool, type(None), set, frozenset, range)
    ) or not _has_state(expected):
        try:
            same = bool(actual == expected)
        # an __eq__ that cannot answer
        except Exception as exc:
            return by_fingerprint(actual, expected, path, f"cannot be compared ({exc})")
        if not same:
            raise AssertionError(f"{path}: {actual!r} != recorded {expected!r}")
        return None
    # an object (a fitted model, a namespace): compare its attributes with the same
    # ladder
    return assert_same(_state(actual), _state(expected), f"{path}.__dict__")


def _is_na(value: Any) -> bool:
    return (
        value is None
        or type(value).__name__ in ("NAType", "NaTType")
        or (isinstance(value, float) and math.isnan(value))
    )


def _has_state(obj: Any) -> bool:
    return bool(getattr(obj, "__dict__", None))


def _is_numpy_data(value: Any) -> bool:
    """An array or a numpy scalar; other numpy objects (ufuncs, generators) are compared as objects."""
    import numpy as np

    return isinstance(value, np.ndarray | np.generic)


def _same_numpy(actual: Any, expected: Any, path: str) -> None:
    import numpy as np

    if not isinstance(expected, np.ndarray):  # a numpy scalar
        if expected.dtype != actual.dtype:
            raise AssertionError(f"{path}: dtype {actual.dtype} != recorded {expected.dtype}")
        return _same_numpy(np.asarray(actual), np.asarray(expected), path)
    if actual.dtype != expected.dtype:
        raise AssertionError(f"{path}: dtype {actual.dtype} != recorded {expected.dtype}")
    if actual.shape != expected.shape:
        raise AssertionError(f"{path}: shape {actual.shape} != recorded {expected.shape}")
    if expected.dtype.kind in "fc":
        close = np.isclose(actual, expected, rtol=REL, atol=ABS, equal_nan=True)
        if not close.all():
            where = tuple(int(i) for i in np.argwhere(~close)[0])
            raise AssertionError(
                f"{path}: {int((~close).sum())} value(s) differ, first at {where}: "
                f"{actual[where]!r} != recorded {expected[where]!r}"
            )
        return None
    if expected.dtype.kind == "O":
        for i, (a, e) in enumerate(zip(actual.reshape(-1), expected.reshape(-1), strict=True)):
            assert_same(a, e, f"{path}.flat[{i}]")
        return None
    if not np.array_equal(actual, expected):
        first = tuple(int(i) for i in np.argwhere(actual != expected)[0]) if actual.ndim else ()
        raise AssertionError(f"{path}: values differ, first at {first}")
    return None


def _same_pandas(actual: Any, expected: Any, path: str) -> None:
    import pandas as pd

    if isinstance(expected, pd.DataFrame):
        if actual.shape != expected.shape:
            raise AssertionError(f"{path}: shape {actual.shape} != recorded {expected.shape}")
        _same_index(actual.columns, expected.columns, f"{path}.columns")
        _same_index(actual.index, expected.index, f"{path}.index")
        for i, col in enumerate(expected.columns):
            _same_column(actual.iloc[:, i], expected.iloc[:, i], f"{path}[{col!r}]")
        return
    if isinstance(expected, pd.Series):
        if actual.name != expected.name:
            raise AssertionError(f"{path}: name {actual.name!r} != recorded {expected.name!r}")
        _same_index(actual.index, expected.index, f"{path}.index")
        _same_column(actual, expected, path)
        return
    if isinstance(expected, pd.Index):
        _same_index(actual, expected, path)
        return
    if hasattr(expected, "obj") and hasattr(actual, "obj"):
        # a groupby, resampler or window: the data it holds and how it splits it
        return assert_same(_lazy_view(actual), _lazy_view(expected), path)
    if type(expected).__eq__ is object.__eq__:  # type: ignore[comparison-overlap]
        if not _has_state(expected):
            return by_fingerprint(actual, expected, path, "has no value equality")
        return assert_same(_state(actual), _state(expected), f"{path}.__dict__")
    if not (actual == expected or (pd.isna(actual) and pd.isna(expected))):
        raise AssertionError(f"{path}: {actual!r} != recorded {expected!r}")


def _state(obj: Any) -> dict[str, Any]:
    """An object's attributes without its caches (filled by what happened to be looked at,
    not by what the code computed).
    """
    return {k: v for k, v in vars(obj).items() if "cache" not in str(k).lower()}


def _lazy_view(obj: Any) -> dict[str, Any]:
    """What a pandas groupby, resampler or window stands for: its data, its group sizes
    and its settings (its repr, when that holds no memory address).
    """
    view: dict[str, Any] = {"obj": obj.obj}
    size = getattr(obj, "size", None)
    if callable(size):
        try:
            view["size"] = size()
        except Exception as exc:  # noqa: BLE001 - a view the object cannot give is left out
            view["size"] = f"cannot size: {type(exc).__name__}"
    text = repr(obj)
    if " at 0x" not in text:
        view["repr"] = text
    return view


def _same_index(actual: Any, expected: Any, path: str) -> None:
    import pandas as pd

    # a RangeIndex and an int64 Index with the same labels are the same rows (pandas'
    # "equiv")
    plain = {type(actual), type(expected)} <= {pd.RangeIndex, pd.Index}
    if (type(actual) is not type(expected) and not plain) or actual.dtype != expected.dtype:
        raise AssertionError(
            f"{path}: {type(actual).__name__}[{actual.dtype}] "
            f"!= recorded {type(expected).__name__}[{expected.dtype}]"
        )
    if list(actual.names) != list(expected.names):
        raise AssertionError(
            f"{path}: names {list(actual.names)} != recorded {list(expected.names)}"
        )
    if not actual.equals(expected):
        if len(actual) != len(expected):
            raise AssertionError(f"{path}: length {len(actual)} != recorded {len(expected)}")
        if sorted(map(repr, actual)) == sorted(map(repr, expected)):
            raise AssertionError(f"{path}: same labels in a different order")
        raise AssertionError(
            f"{path}: labels differ: {list(actual[:5])}... != recorded {list(expected[:5])}..."
        )


def _same_column(actual: Any, expected: Any, path: str) -> None:
    import numpy as np
    import pandas as pd

    if actual.dtype != expected.dtype:
        raise AssertionError(f"{path}: dtype {actual.dtype} != recorded {expected.dtype}")
    if len(actual) != len(expected):
        raise AssertionError(f"{path}: length {len(actual)} != recorded {len(expected)}")
    kind = getattr(expected.dtype, "kind", "O")
    if kind in "fc" and not isinstance(expected.dtype, pd.CategoricalDtype):
        na = np.nan if kind == "f" else complex("nan")
        a = actual.to_numpy(dtype=np.complex128 if kind == "c" else np.float64, na_value=na)
        e = expected.to_numpy(dtype=np.complex128 if kind == "c" else np.float64, na_value=na)
        close = np.isclose(a, e, rtol=REL, atol=ABS, equal_nan=True)
        if not close.all():
            row = int(np.argmin(close))
            raise AssertionError(
                f"{path}: {int((~close).sum())} value(s) differ, first at row {row}: "
                f"{a[row]!r} != recorded {e[row]!r} (rel={REL})"
            )
        return
    if expected.dtype == object:
        for i, (a, e) in enumerate(zip(actual.tolist(), expected.tolist(), strict=True)):
            if _is_na(a) and _is_na(e):
                continue
            assert_same(a, e, f"{path}[row {i}]")
        return
    try:
        pd.testing.assert_series_equal(
            actual.reset_index(drop=True),
            expected.reset_index(drop=True),
            check_exact=True,
            check_names=False,
        )
    except AssertionError as exc:
        raise AssertionError(f"{path}: {str(exc).strip().splitlines()[-1]}") from None
