"""Encode, decode and fingerprint recorded values as reviewable JSON text.

This module is standalone on purpose: it runs inside the notebook's kernel (loaded by
the recorder) and is copied verbatim into a generated project's ``tests/_values.py``, so
it imports only the standard library, and numpy and pandas lazily, when a value of
theirs is met.

Encoding: plain JSON for ``None``, ``bool``, ``int``, ``str``, finite and non-finite
``float`` (Python's JSON reads ``NaN`` and ``Infinity``), lists and dicts with string
keys; everything else is an object tagged ``{"__nbh__": tag, ...}``: tuples, sets, other
dicts, bytes, complex, dates, numpy scalars and arrays, pandas frames, series and
indexes. Floats are written with ``repr`` so every value reads back bit for bit.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import hashlib
import io
import json
import math
import pathlib
import pickle
import sys
from typing import Any

TAG = "__nbh__"
FORMAT_VERSION = 1
_MASKED = {
    "boolean",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Float32",
    "Float64",
}


class Unencodable(Exception):
    """
    The value (or a part of it) has no exact JSON form; the message says which part and
    why.
    """


# --- names ----------------------------------------------------------------------------


def class_name(cls: type) -> tuple[str, bool]:
    """The public dotted name of a class, and whether importing it by that name gives the
    class back (checked against the modules already imported, importing nothing).
    """
    module = getattr(cls, "__module__", "") or ""
    qualname = getattr(cls, "__qualname__", cls.__name__)
    if module == "builtins":
        import builtins
        import types

        if getattr(builtins, qualname, None) is cls:
            return qualname, True
        # function, generator, module, NoneType...: importable from ``types``
        for name, value in vars(types).items():
            if value is cls and not name.startswith("_"):
                return f"types.{name}", True
        return qualname, False
    parts = module.split(".")
    if parts[0].startswith("_") and parts[0][1:] in sys.modules:
        # a C module re-exported by its public twin: _io.TextIOWrapper -> io.TextIOWrapper
        public = sys.modules[parts[0][1:]]
        if _resolve(public, qualname) is cls:
            return f"{parts[0][1:]}.{qualname}", True
    # the shortest importable prefix that exports the same class, e.g.
    # sklearn.linear_model
    for end in range(1, len(parts) + 1):
        prefix = ".".join(parts[:end])
        mod = sys.modules.get(prefix)
        if mod is not None and _resolve(mod, qualname) is cls:
            return f"{prefix}.{qualname}", True
    return f"{module}.{qualname}", False


def _resolve(module: Any, qualname: str) -> Any:
    """``module.A.B`` for qualname ``A.B``, or None."""
    found = module
    for part in qualname.split("."):
        try:
            found = getattr(found, part, None)
        except Exception:  # noqa: BLE001 - a module's __getattr__ may raise anything
            return None
        if found is None:
            return None
    return found


def type_name(obj: Any) -> str:
    """The public dotted name of ``type(obj)``: ``pandas.DataFrame``, not
    ``pandas.core.frame.DataFrame``.
    """
    return class_name(type(obj))[0]


def _importable(obj: Any) -> str:
    """An importable name for ``obj``'s type: its own, else (a private class, one defined in
    a function) ``collections.abc.Callable`` for callables, else the nearest importable base
    class.
    """
    name, ok = class_name(type(obj))
    if ok:
        return name
    if callable(obj):
        return "collections.abc.Callable"
    for base in type(obj).__mro__[1:]:
        name, ok = class_name(base)
        if ok:
            return name
    return "object"


def annotation(obj: Any, depth: int = 0) -> str:
    """A type annotation for ``obj`` as seen in the run, made of importable names:
    ``float``, ``list[str]``, ``pandas.DataFrame``, ``sklearn.linear_model.LinearRegression``.
    """
    if obj is None:
        return "None"
    name = _importable(obj)
    if depth > 2:
        return name
    if isinstance(obj, (list, set, frozenset)) and type(obj) in (list, set, frozenset) and obj:
        inner = sorted({annotation(x, depth + 1) for x in obj})
        return f"{type(obj).__name__}[{' | '.join(inner)}]"
    if type(obj) is tuple and obj:
        inner = sorted({annotation(x, depth + 1) for x in obj})
        return (
            f"tuple[{inner[0]}, ...]"
            if len(inner) == 1
            else f"tuple[{', '.join(annotation(x, depth + 1) for x in obj)}]"
        )
    if type(obj) is dict and obj:
        keys = sorted({annotation(k, depth + 1) for k in obj})
        values = sorted({annotation(v, depth + 1) for v in obj.values()})
        return f"dict[{' | '.join(keys)}, {' | '.join(values)}]"
    return name


# --- JSON encoding --------------------------------------------------------------------


def _module_of(obj: Any) -> str:
    return (getattr(type(obj), "__module__", "") or "").split(".")[0]


def to_jsonable(obj: Any, where: str = "value") -> Any:
    """The JSON form of ``obj``. Raises ``Unencodable`` naming the part without one."""
    if obj is None or isinstance(obj, (bool, str)) and type(obj) in (bool, str):
        return obj
    if type(obj) is int:
        return obj
    if type(obj) is float:
        return obj
    if type(obj) is list:
        return [to_jsonable(x, f"{where}[{i}]") for i, x in enumerate(obj)]
    if type(obj) is dict:
        if all(type(k) is str for k in obj) and TAG not in obj:
            return {k: to_jsonable(v, f"{where}[{k!r}]") for k, v in obj.items()}
        return {
            TAG: "dict",
            "items": [
                [to_jsonable(k, f"{where} key"), to_jsonable(v, f"{where}[{k!r}]")]
                for k, v in obj.items()
            ],
        }
    if type(obj) is tuple:
        return {
            TAG: "tuple",
            "items": [to_jsonable(x, f"{where}[{i}]") for i, x in enumerate(obj)],
        }
    if type(obj) in (set, frozenset):
        items = [to_jsonable(x, f"{where} item") for x in obj]
        # sets have no order: sort by the JSON text so that two runs write the same file
        items.sort(key=lambda x: json.dumps(x, sort_keys=True))
        return {TAG: type(obj).__name__, "items": items}
    if type(obj) is bytes:
        return {TAG: "bytes", "b64": base64.b64encode(obj).decode("ascii")}
    if type(obj) is complex:
        return {TAG: "complex", "re": obj.real, "im": obj.imag}
    if type(obj) is decimal.Decimal:
        return {TAG: "decimal", "v": str(obj)}
    if type(obj) is _dt.datetime:
        return {
            TAG: "datetime",
            "v": obj.isoformat(),
            "tz": None if obj.tzinfo is None else repr(obj.tzinfo),
        }
    if type(obj) is _dt.date:
        return {TAG: "date", "v": obj.isoformat()}
    if type(obj) is _dt.timedelta:
        return {
            TAG: "timedelta",
            "d": obj.days,
            "s": obj.seconds,
            "us": obj.microseconds,
        }
    if isinstance(obj, pathlib.PurePath) and type(obj).__module__ == "pathlib":
        return {TAG: "path", "cls": type(obj).__name__, "v": str(obj)}
    if type(obj) is range:
        return {TAG: "range", "v": [obj.start, obj.stop, obj.step]}
    top = _module_of(obj)
    if top == "numpy":
        return _numpy_to_jsonable(obj, where)
    if top == "pandas":
        return _pandas_to_jsonable(obj, where)
    raise Unencodable(f"{where}: {type_name(obj)} has no JSON form")


def _numpy_to_jsonable(obj: Any, where: str) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray) and type(obj) is np.ndarray:
        return {
            TAG: "ndarray",
            "dtype": obj.dtype.str,
            "shape": list(obj.shape),
            "data": _array_data(obj, where),
        }
    if isinstance(obj, np.generic):
        arr = np.asarray(obj)
        data = _array_data(arr.reshape(1), where)
        return {TAG: "npscalar", "dtype": arr.dtype.str, "v": data[0]}
    raise Unencodable(f"{where}: {type_name(obj)} has no JSON form")


def _array_data(arr: Any, where: str) -> list[Any]:
    """A flat list holding the array's values exactly (C order)."""
    import numpy as np

    kind = arr.dtype.kind
    flat = arr.reshape(-1)
    if arr.dtype.fields is not None or arr.dtype.itemsize > 8 and kind == "f":
        raise Unencodable(f"{where}: arrays of dtype {arr.dtype} have no JSON form")
    if kind in "biuf":
        return list(flat.tolist())
    if kind == "c":
        return [[x.real, x.imag] for x in flat.tolist()]
    if kind in "mM":
        ints = flat.view(np.int64)
        nat = np.isnat(flat)
        return [None if n else int(i) for i, n in zip(ints.tolist(), nat.tolist(), strict=True)]
    if kind == "U":
        return list(flat.tolist())
    if kind == "S":
        return [base64.b64encode(x).decode("ascii") for x in flat.tolist()]
    if kind == "O":
        return [to_jsonable(x, f"{where}[{i}]") for i, x in enumerate(flat.tolist())]
    raise Unencodable(f"{where}: arrays of dtype {arr.dtype} have no JSON form")


def _pandas_to_jsonable(obj: Any, where: str) -> Any:
    import pandas as pd

    if type(obj) is pd.DataFrame:
        return {
            TAG: "frame",
            "columns": _index_to_jsonable(obj.columns, f"{where}.columns"),
            "index": _index_to_jsonable(obj.index, f"{where}.index"),
            "data": [
                _values_to_jsonable(obj.iloc[:, i], f"{where}[{c!r}]")
                for i, c in enumerate(obj.columns)
            ],
        }
    if type(obj) is pd.Series:
        return {
            TAG: "series",
            "name": to_jsonable(obj.name, f"{where}.name"),
            "index": _index_to_jsonable(obj.index, f"{where}.index"),
            "values": _values_to_jsonable(obj, where),
        }
    if isinstance(obj, pd.Index):
        return _index_to_jsonable(obj, where)
    if type(obj) is pd.Timestamp:
        return {
            TAG: "timestamp",
            "v": int(obj.value),
            "unit": obj.unit,
            "tz": None if obj.tz is None else str(obj.tz),
        }
    if obj is pd.NaT:
        return {TAG: "nat"}
    raise Unencodable(f"{where}: {type_name(obj)} has no JSON form")


def _index_to_jsonable(index: Any, where: str) -> dict[str, Any]:
    import pandas as pd

    if type(index) is pd.RangeIndex:
        return {
            TAG: "range_index",
            "name": to_jsonable(index.name, where),
            "v": [index.start, index.stop, index.step],
        }
    if type(index) is pd.MultiIndex:
        # each level's values in their own order, and the codes: a level's order (not sorted, as
        # from_arrays would make it) decides how unstack and sort_index order rows and columns
        return {
            TAG: "multi_index",
            "names": [to_jsonable(n, where) for n in index.names],
            "uniques": [
                _values_to_jsonable(index.levels[i], f"{where} level {i}")
                for i in range(index.nlevels)
            ],
            "codes": [[int(c) for c in codes] for codes in index.codes],
        }
    if type(index) in (
        pd.Index,
        pd.DatetimeIndex,
        pd.TimedeltaIndex,
        pd.CategoricalIndex,
    ):
        out = {
            TAG: "index",
            "cls": type(index).__name__,
            "name": to_jsonable(index.name, where),
            "values": _values_to_jsonable(index, where),
        }
        if type(index) is pd.DatetimeIndex and index.freqstr is not None:
            out["freq"] = index.freqstr
        return out
    raise Unencodable(f"{where}: {type_name(index)} has no JSON form")


def _values_to_jsonable(values: Any, where: str) -> dict[str, Any]:
    """One column (a Series or an Index): its dtype and its values, exactly."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    out: dict[str, Any] = {"dtype": str(dtype)}
    if isinstance(dtype, pd.CategoricalDtype):
        cat = pd.Categorical(values)
        out["categories"] = _index_to_jsonable(cat.categories, f"{where} categories")
        out["ordered"] = bool(cat.ordered)
        out["codes"] = cat.codes.tolist()
        return out
    if isinstance(dtype, pd.DatetimeTZDtype) or (
        isinstance(dtype, np.dtype) and dtype.kind in "mM"
    ):
        arr = np.asarray(values.array.asi8 if hasattr(values.array, "asi8") else values)
        mask = np.asarray(pd.isna(values), dtype=bool)
        out["unit"] = str(getattr(dtype, "unit", "ns"))
        out["data"] = [
            None if m else int(i) for i, m in zip(arr.tolist(), mask.tolist(), strict=True)
        ]
        return out
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        out["data"] = values.to_numpy().tolist() if hasattr(values, "to_numpy") else list(values)
        return out
    if isinstance(dtype, np.dtype) and dtype.kind == "O" or isinstance(dtype, pd.StringDtype):
        items = values.tolist()
        nulls: list[bool] = (
            pd.isna(values).tolist() if isinstance(dtype, pd.StringDtype) else [False] * len(items)
        )
        out["data"] = [
            None if m else to_jsonable(x, f"{where}[{i}]")
            for i, (x, m) in enumerate(zip(items, nulls, strict=True))
        ]
        if isinstance(dtype, pd.StringDtype):
            out["na"] = "nan" if dtype.na_value is not pd.NA else "NA"
        return out
    if str(dtype) in _MASKED:  # nullable ints, floats and booleans: values with None for NA
        mask = pd.isna(values).tolist()
        items = values.to_numpy(dtype=object).tolist()
        out["data"] = [
            None if m else (x.item() if hasattr(x, "item") else x)
            for x, m in zip(items, mask, strict=True)
        ]
        return out
    raise Unencodable(f"{where}: columns of dtype {dtype} have no JSON form")


# --- JSON decoding --------------------------------------------------------------------


def from_jsonable(data: Any) -> Any:
    """The value that ``to_jsonable`` encoded."""
    if isinstance(data, list):
        return [from_jsonable(x) for x in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: from_jsonable(v) for k, v in data.items()}
    if tag == "dict":
        return {from_jsonable(k): from_jsonable(v) for k, v in data["items"]}
    if tag == "tuple":
        return tuple(from_jsonable(x) for x in data["items"])
    if tag == "set":
        return {from_jsonable(x) for x in data["items"]}
    if tag == "frozenset":
        return frozenset(from_jsonable(x) for x in data["items"])
    if tag == "bytes":
        return base64.b64decode(data["b64"])
    if tag == "complex":
        return complex(data["re"], data["im"])
    if tag == "decimal":
        return decimal.Decimal(data["v"])
    if tag == "datetime":
        return _dt.datetime.fromisoformat(data["v"])
    if tag == "date":
        return _dt.date.fromisoformat(data["v"])
    if tag == "timedelta":
        return _dt.timedelta(days=data["d"], seconds=data["s"], microseconds=data["us"])
    if tag == "path":
        return getattr(pathlib, data["cls"])(data["v"])
    if tag == "range":
        return range(*data["v"])
    if tag in ("ndarray", "npscalar"):
        return _numpy_from_jsonable(data)
    return _pandas_from_jsonable(data)


def _numpy_from_jsonable(data: dict[str, Any]) -> Any:
    import numpy as np

    dtype = np.dtype(data["dtype"])
    if data[TAG] == "npscalar":
        return _array_from_data([data["v"]], dtype)[0]
    return _array_from_data(data["data"], dtype).reshape(data["shape"])


def _array_from_data(items: list[Any], dtype: Any) -> Any:
    import numpy as np

    kind = dtype.kind
    if kind in "biuf":
        return np.array(items, dtype=dtype) if items else np.empty(0, dtype=dtype)
    if kind == "c":
        return np.array([complex(re, im) for re, im in items], dtype=dtype)
    if kind in "mM":
        ints = np.array([np.iinfo(np.int64).min if x is None else x for x in items], dtype=np.int64)
        return ints.view(dtype)
    if kind == "U":
        return np.array(items, dtype=dtype)
    if kind == "S":
        return np.array([base64.b64decode(x) for x in items], dtype=dtype)
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = from_jsonable(x)
    return out


def _pandas_from_jsonable(data: dict[str, Any]) -> Any:
    import pandas as pd

    tag = data[TAG]
    if tag == "frame":
        columns = _index_from_jsonable(data["columns"])
        index = _index_from_jsonable(data["index"])
        cols = {
            i: pd.Series(_values_from_jsonable(c), index=index, copy=False)
            for i, c in enumerate(data["data"])
        }
        frame = pd.DataFrame(cols, index=index)
        frame.columns = columns
        return frame
    if tag == "series":
        index = _index_from_jsonable(data["index"])
        return pd.Series(
            _values_from_jsonable(data["values"]),
            index=index,
            name=from_jsonable(data["name"]),
        )
    if tag in ("range_index", "multi_index", "index"):
        return _index_from_jsonable(data)
    if tag == "timestamp":
        ts = (
            pd.Timestamp(data["v"], unit="ns").as_unit(data["unit"])
            if data["unit"] != "ns"
            else pd.Timestamp(data["v"])
        )
        return ts.tz_localize("UTC").tz_convert(data["tz"]) if data["tz"] else ts
    if tag == "nat":
        return pd.NaT
    raise ValueError(f"unknown recorded value tag {tag!r}")


def _index_from_jsonable(data: dict[str, Any]) -> Any:
    import pandas as pd

    tag = data[TAG]
    if tag == "range_index":
        return pd.RangeIndex(*data["v"], name=from_jsonable(data["name"]))
    if tag == "multi_index":
        names = [from_jsonable(n) for n in data["names"]]
        if "codes" in data:
            return pd.MultiIndex(
                levels=[_values_from_jsonable(u) for u in data["uniques"]],
                codes=data["codes"],
                names=names,
            )
        arrays = [_values_from_jsonable(level) for level in data["levels"]]  # recorded before levels kept their order
        return pd.MultiIndex.from_arrays(arrays, names=names)
    values = _values_from_jsonable(data["values"])
    name = from_jsonable(data["name"])
    if data["cls"] == "DatetimeIndex":
        try:
            return pd.DatetimeIndex(values, name=name, freq=data.get("freq"))
        except ValueError:  # a daily index converted to a zone with daylight saving keeps its freq in pandas,
            return pd.DatetimeIndex(values, name=name)  # which then refuses it on the local times
    if data["cls"] == "TimedeltaIndex":
        return pd.TimedeltaIndex(values, name=name)
    if data["cls"] == "CategoricalIndex":
        return pd.CategoricalIndex(values, name=name)
    return pd.Index(values, name=name, dtype=values.dtype, tupleize_cols=False)


def _values_from_jsonable(data: dict[str, Any]) -> Any:
    """An array-like (numpy array or pandas extension array) with exactly the recorded
    dtype.
    """
    import numpy as np
    import pandas as pd

    dtype_text = data["dtype"]
    if "codes" in data:
        categories = _index_from_jsonable(data["categories"])
        return pd.Categorical.from_codes(
            data["codes"],
            dtype=pd.CategoricalDtype(categories, ordered=data["ordered"]),
        )
    if "unit" in data:
        dtype = pd.api.types.pandas_dtype(dtype_text)
        ints = np.array(
            [np.iinfo(np.int64).min if x is None else x for x in data["data"]],
            dtype=np.int64,
        )
        if isinstance(dtype, pd.DatetimeTZDtype):
            naive = ints.view(f"datetime64[{data['unit']}]")
            return pd.array(naive).tz_localize("UTC").tz_convert(dtype.tz)
        return pd.array(ints.view(dtype))
    if "na" in data:
        dtype = pd.StringDtype(na_value=np.nan if data["na"] == "nan" else pd.NA)
        return pd.array([x for x in data["data"]], dtype=dtype)
    dtype = pd.api.types.pandas_dtype(dtype_text)
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return np.array(data["data"], dtype=dtype) if data["data"] else np.empty(0, dtype=dtype)
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        out = np.empty(len(data["data"]), dtype=object)
        for i, x in enumerate(data["data"]):
            out[i] = from_jsonable(x)
        return out
    return pd.array(data["data"], dtype=dtype)


# --- storage --------------------------------------------------------------------------


def dumps(obj: Any) -> str:
    """The JSON text stored for ``obj`` (deterministic). Raises ``Unencodable``."""
    return json.dumps(
        {"format": FORMAT_VERSION, "value": to_jsonable(obj)},
        separators=(",", ":"),
        allow_nan=True,
    )


def loads(text: str) -> Any:
    """The value stored by ``dumps``."""
    return from_jsonable(json.loads(text)["value"])


def dumps_pickle(obj: Any) -> str:
    """
    Base64 text of the pickle of ``obj``: the last resort for values JSON cannot hold.
    Raises ``Forbidden`` when the pickle names anything ``SafeUnpickler`` would not load
    (then only its fingerprint is kept): a recorded pickle never carries code.
    """
    raw = pickle.dumps(obj, protocol=4)
    try:
        SafeUnpickler(io.BytesIO(raw)).load()
    except Forbidden:
        raise
    except Exception as exc:  # noqa: BLE001 - what does not load back is not kept
        raise Forbidden(f"its pickle does not load back ({type(exc).__name__}: {exc})") from exc
    return base64.b64encode(raw).decode("ascii")


def loads_pickle(text: str, sha256: str) -> Any:
    """
    Unpickle a value stored by ``dumps_pickle`` after checking the text's sha256, with
    ``SafeUnpickler``. Raises ``ValueError`` (``Forbidden`` for a name it does not allow).
    """
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    if digest != sha256:
        raise ValueError(
            f"recorded pickle changed since recording (sha256 {digest} != {sha256}); "
            "refusing to load it"
        )
    return SafeUnpickler(io.BytesIO(base64.b64decode(text))).load()


class Forbidden(pickle.UnpicklingError, ValueError):
    """A pickle names a function or class that ``SafeUnpickler`` does not load."""


#: Libraries whose data classes a recorded pickle may name, and a few of their unpickling
#: helpers (``_PICKLE_HELPER``): a fitted scikit-learn model, a sparse matrix, a frame with
#: extension dtypes.
_PICKLE_LIBRARIES = {"numpy", "pandas", "scipy", "sklearn"}
#: Parts of a module path that no recorded pickle may use: file and network I/O, test and
#: build helpers, expression evaluation.
_PICKLE_DENIED_PARTS = {
    "io",
    "testing",
    "tests",
    "_testutils",
    "conftest",
    "_datasource",
    "f2py",
    "distutils",
    "_pytesttester",
    "datasets",
    "externals",
    "computation",
    "plotting",
    "ctypeslib",
}
_PICKLE_DENIED_NAMES = {"memmap", "DataSource", "vectorize", "frompyfunc", "LowLevelCallable"}
_PICKLE_HELPER = (
    r"_reconstruct|scalar|_frombuffer|_mareconstruct|newObj|__pyx_unpickle_\w+|_unpickle_\w+"
    r"|\w+_unpickle|_new_\w+|__\w+_ctor"
)
#: Exact names outside those libraries: data types, never a callable with effects.
_PICKLE_SAFE = {
    "builtins": {
        "object",
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "bytearray",
        "bytes",
        "str",
        "int",
        "float",
        "complex",
        "bool",
        "slice",
        "range",
    },
    "collections": {"OrderedDict", "defaultdict", "deque", "Counter"},
    "datetime": {"date", "datetime", "time", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "fractions": {"Fraction"},
    "uuid": {"UUID"},
    "types": {"SimpleNamespace"},
    "copyreg": {"_reconstructor"},
    "zoneinfo": {"ZoneInfo", "ZoneInfo._unpickle"},
}


def _pickle_module_ok(module: str) -> bool:
    parts = module.split(".")
    if parts[0] not in _PICKLE_LIBRARIES:
        return False
    return not any(p in _PICKLE_DENIED_PARTS for p in parts)


def _metric_function(found: Any) -> bool:
    """A plain function of ``sklearn.metrics`` (a score: arrays in, a number out), not of its
    plotting modules."""
    import types

    module = getattr(found, "__module__", None) or ""
    return (
        isinstance(found, types.FunctionType)
        and module.startswith("sklearn.metrics.")
        and "_plot" not in module.split(".")
        and _pickle_module_ok(module)
    )


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that loads only data: the classes of numpy, pandas, scipy and
    scikit-learn (outside their I/O, testing and evaluation modules), their unpickling
    helpers, and plain data types of the standard library. Anything else (``os.system``,
    ``builtins.eval``, ``getattr``, a class defined in the notebook) raises ``Forbidden``
    before it is imported.
    """

    def find_class(self, module: str, name: str) -> Any:
        import re

        safe = name in _PICKLE_SAFE.get(module, ())
        if not safe and not _pickle_module_ok(module):
            raise Forbidden(f"{module}.{name} is not loaded from a recorded pickle")
        found = super().find_class(module, name)
        if safe:
            return found
        own = getattr(found, "__module__", None) or ""
        last = name.rsplit(".", 1)[-1]
        data_class = isinstance(found, type) and _pickle_module_ok(own)
        helper = callable(found) and re.fullmatch(_PICKLE_HELPER, last) is not None
        # a scorer's metric (GridSearchCV(scoring="neg_root_mean_squared_error")): computes only
        helper = helper or _metric_function(found)
        denied = {last, getattr(found, "__name__", "")} & _PICKLE_DENIED_NAMES
        if (data_class or (helper and _pickle_module_ok(own or module))) and not denied:
            return found
        raise Forbidden(f"{module}.{name} is not loaded from a recorded pickle")


# --- global random generators ---------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed ``random`` and, when numpy is installed, numpy's global generator.

    Exactly what a generated package's ``support.seed_everything`` does, so that a seeded
    pipeline reproduces a recording made with the same seed.
    """
    import random

    random.seed(seed)
    try:
        import numpy
    except ImportError:
        return
    numpy.random.seed(seed)


def random_state() -> dict[str, Any]:
    """The state of the global generators as JSON: ``random``'s, and numpy's legacy
    global ``RandomState`` (what ``numpy.random.rand`` and scikit-learn's default draw
    from) when numpy is imported.
    """
    import random

    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "random": {"version": version, "internal": list(internal), "gauss_next": gauss_next}
    }
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        try:
            legacy = numpy.random.get_state(legacy=True)
        except (AttributeError, TypeError, ValueError):
            return state
        if isinstance(legacy, tuple) and len(legacy) == 5:
            kind, key, pos, has_gauss, cached = legacy
            state["numpy"] = {
                "kind": str(kind),
                "key": [int(k) for k in key.tolist()],
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached),
            }
    return state


def set_random_state(state: dict[str, Any]) -> None:
    """Put the global generators back in a state that ``random_state`` returned."""
    import random

    saved = state["random"]
    random.setstate((saved["version"], tuple(saved["internal"]), saved["gauss_next"]))
    if "numpy" in state:
        import numpy

        saved = state["numpy"]
        numpy.random.set_state(
            (
                saved["kind"],
                numpy.array(saved["key"], dtype=numpy.uint32),
                saved["pos"],
                saved["has_gauss"],
                saved["cached_gaussian"],
            )
        )


# --- unserialisable things ------------------------------------------------------------


def describe_unserialisable(obj: Any) -> str | None:
    """
    Why ``obj`` must not be stored at all (a module, generator, open file, connection,
    lambda), or None.
    """
    import inspect
    import io
    import types

    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if inspect.isgenerator(obj) or inspect.iscoroutine(obj) or inspect.isasyncgen(obj):
        return f"{type(obj).__name__} {getattr(obj, '__qualname__', '')}".strip()
    if isinstance(obj, io.IOBase):
        return f"open file {getattr(obj, 'name', '?')!r}"
    if isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
        return "lambda function"
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)):
        return f"{type(obj).__name__} {getattr(obj, '__qualname__', '?')}"
    name = type_name(obj).lower()
    if any(
        word in name
        for word in (
            "connection",
            "cursor",
            "socket",
            "session",
            "engine",
            "thread",
            "lock",
        )
    ):
        return f"{type_name(obj)} (a live resource)"
    return None


# --- fingerprints ---------------------------------------------------------------------


#: Large arrays and columns are hashed and summarised this many elements at a time, never
#: copied whole: what the recorder adds to the notebook's memory stays about this size.
CHUNK = 1 << 21  # 16 MiB of float64


def _numeric(values: Any) -> Any:
    """``values`` as a numpy array of numbers (a view where possible), or None."""
    import numpy as np

    try:
        arr = np.asarray(values)
        if arr.dtype.kind not in "biuf":
            arr = np.asarray(values, dtype=np.float64) if arr.dtype.kind == "O" else arr
            if arr.dtype.kind not in "biuf":
                return None
    except (TypeError, ValueError):
        return None
    return arr


def _stats(values: Any) -> dict[str, Any] | None:
    """
    Order-sensitive summary statistics of a numeric column; None for non-numeric data.
    """
    import numpy as np

    arr = _numeric(values)
    if arr is None:
        return None
    if arr.size > CHUNK:
        return _chunked_stats(arr)
    arr = arr.astype(np.float64).reshape(-1)
    n = int(arr.size)
    finite = np.isfinite(arr)
    good = arr[finite]
    if good.size == 0:
        return {"n": n, "nonfinite": n - int(good.size)}
    positions = np.arange(1, n + 1, dtype=np.float64)[finite]
    return {
        "n": n,
        "nonfinite": n - int(good.size),
        "sum": float(good.sum()),
        "mean": float(good.mean()),
        "std": float(good.std()),
        "min": float(good.min()),
        "max": float(good.max()),
        # the position-weighted mean changes when rows are reordered, unlike the others
        "wmean": float((good * positions).sum() / n),
    }


def _blocks(arr: Any) -> Any:
    """``arr``'s elements in C order as flat contiguous blocks of at most ``CHUNK`` elements:
    views of a contiguous array, small copies of the rows of another."""
    import numpy as np

    if arr.ndim == 0 or arr.flags.c_contiguous:
        flat = arr.reshape(-1)
        for start in range(0, flat.size, CHUNK):
            yield flat[start : start + CHUNK]
        return
    rows = max(1, CHUNK // max(1, arr[0].size))
    for start in range(0, arr.shape[0], rows):
        yield np.ascontiguousarray(arr[start : start + rows]).reshape(-1)


def _chunked_stats(arr: Any) -> dict[str, Any]:
    """``_stats`` of a large array, block by block (two passes: the mean, then the spread)."""
    import numpy as np

    n = int(arr.size)
    count, total, weighted, low, high, at = 0, 0.0, 0.0, np.inf, -np.inf, 0
    for block in _blocks(arr):
        values = block.astype(np.float64)
        finite = np.isfinite(values)
        good = values[finite]
        positions = np.arange(at + 1, at + values.size + 1, dtype=np.float64)[finite]
        at += values.size
        if good.size:
            count += int(good.size)
            total += float(good.sum())
            weighted += float((good * positions).sum())
            low, high = min(low, float(good.min())), max(high, float(good.max()))
    if count == 0:
        return {"n": n, "nonfinite": n}
    mean = total / count
    spread = 0.0
    for block in _blocks(arr):
        values = block.astype(np.float64)
        good = values[np.isfinite(values)]
        spread += float(((good - mean) ** 2).sum())
    return {
        "n": n,
        "nonfinite": n - count,
        "sum": total,
        "mean": mean,
        "std": math.sqrt(spread / count),
        "min": low,
        "max": high,
        "wmean": weighted / n,
    }


def _hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _array_hash(arr: Any) -> str:
    """sha256 of ``arr``'s bytes in C order (what ``tobytes`` gives), block by block."""
    import numpy as np

    digest = hashlib.sha256()
    for block in _blocks(arr):
        digest.update(block.view(np.uint8))
    return digest.hexdigest()


def _series_hash(series: Any) -> str | None:
    """sha256 of pandas' per-row hashes of ``series`` (a Series or an Index), block by block."""
    import pandas as pd

    rows = series if isinstance(series, pd.Index) else series.iloc
    try:
        digest = hashlib.sha256()
        for start in range(0, len(series), CHUNK):
            part = rows[start : start + CHUNK]
            if not isinstance(part, pd.MultiIndex):  # pandas builds no Series from a MultiIndex
                part = pd.Series(part, copy=False)
            hashed = pd.util.hash_pandas_object(part, index=False).to_numpy()
            digest.update(hashed.tobytes())
        return digest.hexdigest()
    except (TypeError, ValueError):
        try:
            return _hash_bytes(repr(series.tolist()).encode("utf-8"))
        # a repr that fails means no hash, not a failed run
        except (TypeError, ValueError, AttributeError, RecursionError):
            return None


def data_bytes(obj: Any, depth: int = 0) -> int:
    """About how many bytes the arrays and frames in ``obj`` hold (not deep into objects):
    what storing it would copy. 0 when it holds none."""
    top = _module_of(obj)
    if top == "numpy" and hasattr(obj, "nbytes"):
        return int(obj.nbytes)
    if top == "pandas" and hasattr(obj, "memory_usage"):
        try:
            usage = obj.memory_usage(index=True, deep=False)
            return int(usage.sum()) if hasattr(usage, "sum") else int(usage)
        except (TypeError, ValueError):
            return 0
    if depth >= 3:
        return 0
    if isinstance(obj, dict):
        items: Any = list(obj.values())[:1000]
    elif isinstance(obj, (list, tuple)):
        items = obj[:1000]
    else:
        items = list(getattr(obj, "__dict__", {}).values())[:1000]
    return sum(data_bytes(item, depth + 1) for item in items)


def fingerprint(obj: Any) -> dict[str, Any]:
    """
    Type, shape, dtypes, columns and per-column hashes and statistics of ``obj`` (JSON-
    safe).
    """
    fp: dict[str, Any] = {"type": type_name(obj)}
    top = _module_of(obj)
    if top == "numpy":
        import numpy as np

        if isinstance(obj, np.ndarray):
            fp.update(shape=list(obj.shape), dtype=obj.dtype.str)
            if obj.dtype.kind != "O":
                fp["hash"] = _array_hash(obj)
            fp["stats"] = _stats(obj)
            return fp
    if top == "pandas":
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            fp.update(
                shape=list(obj.shape),
                columns=[repr(c) for c in obj.columns],
                dtypes=[str(d) for d in obj.dtypes],
                index={
                    "type": type_name(obj.index),
                    "hash": _series_hash(obj.index),
                },
                data=[
                    {
                        "hash": _series_hash(obj.iloc[:, i]),
                        "stats": _stats(obj.iloc[:, i]),
                    }
                    for i in range(obj.shape[1])
                ],
            )
            return fp
        if isinstance(obj, pd.Series):
            fp.update(
                shape=list(obj.shape),
                dtypes=[str(obj.dtype)],
                name=repr(obj.name),
                index={
                    "type": type_name(obj.index),
                    "hash": _series_hash(obj.index),
                },
                data=[{"hash": _series_hash(obj), "stats": _stats(obj)}],
            )
            return fp
    if isinstance(obj, (list, tuple, dict, set, frozenset, str, bytes)):
        fp["shape"] = [len(obj)]
        return fp
    fp.update(model_state(obj) or statsmodels_state(obj))
    return fp



#: Fitted attributes that say how long a fit took (``refit_time_`` of a hyper-parameter search):
#: they differ between two runs of the same code, so the recording zeroes them (see
#: ``without_timings``) and the generated tests leave them out (``_learned.py``).
TIMING_ATTRIBUTES = ("refit_time_",)
#: Keys of a search's ``cv_results_`` that are timings (``mean_fit_time``, ``std_score_time``...).
TIMING_KEY_PREFIXES = ("mean_", "std_")


def is_timing_key(key: object) -> bool:
    """A ``cv_results_`` key that holds fit or score times, not scores."""
    return isinstance(key, str) and key.endswith("_time") and key.startswith(TIMING_KEY_PREFIXES)


def without_timings(obj: Any) -> Any:
    """``obj``, or for a fitted hyper-parameter search (``GridSearchCV``...) a shallow copy whose
    timings are zero (``refit_time_``, the ``*_time`` arrays of ``cv_results_``, shapes kept): two
    runs of the same search then record the same value, and a later step that reads the search
    still finds every key.
    """
    try:
        state = vars(obj)
    except TypeError:
        return obj
    timed = [n for n in TIMING_ATTRIBUTES if isinstance(state.get(n), float)]
    results = state.get("cv_results_")
    keys = [k for k in results if is_timing_key(k)] if isinstance(results, dict) else []
    if not timed and not keys:
        return obj
    import copy

    clone = copy.copy(obj)
    for name in timed:
        setattr(clone, name, 0.0)
    if keys and isinstance(results, dict):
        zeroed = dict(results)
        for key in keys:
            value = results[key]
            zeroed[key] = value * 0 if hasattr(value, "shape") else value
        clone.cv_results_ = zeroed
    return clone

#: Fitted attributes some estimators compute on access (properties), not in ``vars()``.
_LEARNED_PROPERTIES = ("coef_", "intercept_", "feature_importances_", "cluster_centers_")


def model_state(obj: Any) -> dict[str, Any]:
    """A fitted model's parameters and a fingerprint of what it learned, for a review to compare:
    ``{"params": {name: value or repr}, "learned": {attr: number, or array fingerprint}}``. Empty for
    anything that is not a scikit-learn-style estimator (``get_params`` and ``fit``).
    """
    get_params = getattr(type(obj), "get_params", None)
    if not callable(get_params) or not callable(getattr(type(obj), "fit", None)):
        return {}
    try:
        params = obj.get_params(deep=False)
        names = {n for n in vars(obj) if n.endswith("_") and not n.startswith("_")}
    except Exception:  # noqa: BLE001 - a model that cannot say keeps its plain fingerprint
        return {}
    names = {n for n in names if not n.endswith("__")}
    for name in _LEARNED_PROPERTIES:
        try:
            if name not in names and hasattr(obj, name):
                names.add(name)
        except Exception:  # noqa: BLE001 - a property that fails on this model is left out
            continue
    learned = {}
    for name in sorted(names):
        try:
            learned[name] = _learned(getattr(obj, name))
        except Exception:  # noqa: BLE001 - one attribute that cannot be read is left out
            continue
    return {"params": {k: _param(v) for k, v in sorted(params.items())}, "learned": learned}


#: What a statsmodels fit learned (as the generated tests' ``_learned.py`` compares it).
_STATSMODELS_LEARNED = ("params", "bse", "df_model", "df_resid", "nobs")


def statsmodels_state(obj: Any) -> dict[str, Any]:
    """A statsmodels results object's learned state, ``{"learned": {attr: number or fingerprint}}``:
    what a test compares when the object itself cannot be stored (its formula is code that loading it
    would evaluate). Empty for anything else.
    """
    module = type(obj).__module__ or ""
    if not module.startswith("statsmodels.") or not hasattr(obj, "model"):
        return {}
    learned = {}
    for name in _STATSMODELS_LEARNED:
        try:
            learned[name] = _learned(getattr(obj, name))
        except Exception:  # noqa: BLE001 - an attribute this kind of result has not is left out
            continue
    return {"learned": learned} if "params" in learned else {}


def _param(value: Any) -> Any:
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else repr(value)
    # an estimator, a callable, a generator: its repr, without memory addresses (they differ per run)
    text = repr(value)
    while " at 0x" in text:
        start = text.index(" at 0x")
        end = start + 6
        while end < len(text) and text[end] in "0123456789abcdefABCDEF":
            end += 1
        text = text[:start] + text[end:]
    return text[:200]


def _learned(value: Any) -> Any:
    """A fitted attribute: a number as it is, an array by fingerprint, anything else by type and size."""
    if type(value) in (bool, int, str) or value is None:
        return value
    if type(value) is float:
        return value if math.isfinite(value) else repr(value)
    if _module_of(value) == "numpy":
        import numpy as np

        if isinstance(value, np.generic):
            return value.item() if value.dtype.kind in "biuf" else repr(value)
        if isinstance(value, np.ndarray):
            return fingerprint(value)
    if _module_of(value) == "pandas":  # a statsmodels result's params (a Series)
        return fingerprint(value)
    fp: dict[str, Any] = {"type": type_name(value)}
    if isinstance(value, (list, tuple, dict)):
        fp["shape"] = [len(value)]
    return fp


def structure(fp: dict[str, Any]) -> dict[str, Any]:
    """The part of a fingerprint that stays the same between runs of a non-deterministic
    step.
    """
    return {k: fp[k] for k in ("type", "shape", "dtype", "dtypes", "columns") if k in fp}


def is_close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    """``math.isclose`` that also treats two NaNs (and equal infinities) as equal."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b or math.isclose(a, b, rel_tol=rel, abs_tol=abs_)
