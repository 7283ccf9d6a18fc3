"""Containment of every run of notebook code (issue 10): the generated tests that ``convert`` runs to
verify a package run the notebook's code too, so they run in the recording's sandbox, with its limits;
the output folder is read-only to the notebook; recorded values never carry code.

Each hostile fixture (``fixtures/hostile/``) hides what it does in ``try/except``, so that the sandboxed
recording stays quiet and only an unsandboxed run of the same code would show it. The conversions run
with verification ON (the default), through the real command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from nbharden.record import sandbox as sb

HOSTILE = Path(__file__).parent.parent / "fixtures" / "hostile"


def _bwrap() -> list[pytest.MarkDecorator]:
    problem = sb.bwrap_problem()
    return [pytest.mark.skip(reason=f"tier bwrap cannot run here: {problem}")] if problem else []


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake home folder with a planted SSH key, as ``HOME``."""
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True)
    key = f"-----BEGIN OPENSSH PRIVATE KEY-----\nplanted-{uuid.uuid4().hex}\n"
    (folder / ".ssh" / "id_rsa").write_text(key, encoding="utf-8")
    monkeypatch.setenv("HOME", str(folder))
    return folder


def copy_fixture(name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(HOSTILE / f"{name}.ipynb", folder / f"{name}.ipynb"))


def nbharden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbharden", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


def convert_json(notebook: Path, *args: str) -> dict[str, object]:
    """``nbharden convert NOTEBOOK ARGS --format json`` with verification on; its one result."""
    proc = nbharden("convert", str(notebook), *args, "--format", "json", cwd=notebook.parent)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)[0]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("tier", [pytest.param("bwrap", marks=_bwrap())])
def test_verification_cannot_read_the_home_folder(tier: str, tmp_path: Path, home: Path) -> None:
    notebook = copy_fixture("steal_key", tmp_path / "nb")
    (notebook.parent / "pyproject.toml").write_text(
        f'[tool.nbharden]\nsandbox = "{tier}"\n', encoding="utf-8"
    )
    loot = tmp_path / "loot.txt"

    result = convert_json(notebook, "--sandbox", "-p", "loot", str(loot))

    tests = result["tests"]
    assert isinstance(tests, dict)
    assert tests["verify_sandbox"] == "bwrap" and tests.get("passed", 0) >= 2, tests
    assert not loot.exists(), "the generated tests copied the SSH key out of the home folder"


@pytest.mark.slow
@pytest.mark.parametrize("tier", [pytest.param("bwrap", marks=_bwrap())])
def test_notebook_cannot_plant_a_conftest_in_its_output_folder(
    tier: str, tmp_path: Path, home: Path
) -> None:
    notebook = copy_fixture("plant_conftest", tmp_path / "nb")
    (notebook.parent / "pyproject.toml").write_text(
        f'[tool.nbharden]\nsandbox = "{tier}"\n', encoding="utf-8"
    )
    loot = tmp_path / "loot.txt"
    out = notebook.parent / "plant_conftest_prod"

    # an absolute path: the generated tests run each step in a folder of their own
    result = convert_json(notebook, "--sandbox", "-p", "loot", str(loot), "-p", "target", str(out))

    assert (out / ".nbharden.json").is_file()
    assert not (out / "conftest.py").exists(), "the notebook wrote into the output folder"
    assert not loot.exists(), "a planted conftest.py ran"
    tests = result["tests"]
    assert isinstance(tests, dict) and tests["verify_sandbox"] == "bwrap"
    # what the notebook saw in the sandbox: the output folder is read-only
    recorded = "".join(p.read_text(encoding="utf-8") for p in (out / "tests").rglob("*.json"))
    assert "blocked: OSError" in recorded


@pytest.mark.slow
@pytest.mark.parametrize(
    "sandbox", [pytest.param("--sandbox", marks=_bwrap()), pytest.param("--no-sandbox")]
)
def test_a_pickle_payload_never_runs(sandbox: str, tmp_path: Path, home: Path) -> None:
    notebook = copy_fixture("pickle_payload", tmp_path / "nb")
    loot = tmp_path / "loot.txt"

    convert_json(notebook, sandbox, "-p", "loot", str(loot))
    assert not loot.exists(), "the payload ran during verification"

    out = notebook.parent / "pickle_payload_prod"
    index = json.loads((out / "tests" / "data" / "recording.json").read_text(encoding="utf-8"))
    bomb = index["finals"].get("bomb") or next(
        v for s in index["steps"].values() for v in s["outputs"] if v["name"] == "bomb"
    )
    assert bomb["kind"] != "pickle" and not bomb.get("file"), bomb
    # a later pytest in the output folder, with no sandbox at all
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not loot.exists(), "the payload ran in a later pytest"


@pytest.mark.slow
@pytest.mark.parametrize("tier", [pytest.param("bwrap", marks=_bwrap()), pytest.param("limits")])
def test_verification_runs_under_the_recording_limits(
    tier: str, tmp_path: Path, home: Path
) -> None:
    """The fixture records its own address-space limit and whether it sees the home folder: the
    generated tests pass only when they see the same."""
    notebook = copy_fixture("limits_probe", tmp_path / "nb")
    (notebook.parent / "pyproject.toml").write_text(
        f'[tool.nbharden]\nsandbox = "{tier}"\nsandbox-memory-mb = 3000\n', encoding="utf-8"
    )

    result = convert_json(notebook, "--sandbox")

    tests = result["tests"]
    assert isinstance(tests, dict)
    assert tests["verify_sandbox"] == tier and tests.get("passed", 0) >= 2, tests
    out = notebook.parent / "limits_probe_prod"
    recorded = "".join(p.read_text(encoding="utf-8") for p in (out / "tests").rglob("*.json"))
    assert str(3000 * 1024 * 1024) in recorded  # the probe ran under the limit, and was recorded


# --- no code in test data: the restricted unpickler -------------------------------------------


def _library_values() -> dict[str, object]:
    """Values JSON cannot hold that a notebook often ends with: they are stored as pickles."""
    import numpy as np
    import pandas as pd
    import scipy.sparse
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.RandomState(0)
    x = rng.rand(40, 3)
    y = (x[:, 0] > 0.5).astype(int)
    frame = pd.DataFrame({"n": [1.0, 2, 3, 4], "c": list("abab")})
    return {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        "boosting": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "neighbors": KNeighborsClassifier().fit(x, y),
        "columns": ColumnTransformer(
            [("s", StandardScaler(), ["n"]), ("o", OneHotEncoder(), ["c"])]
        ).fit(frame),
        "sparse": scipy.sparse.csr_matrix(np.eye(3)),
        "structured": np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]),
        "masked": np.ma.masked_array([1, 2], [0, 1]),
        "generator": np.random.default_rng(0),
        "intervals": pd.interval_range(0, 3).to_series(),
        "periods": pd.period_range("2020", periods=3, freq="M").to_series(),
    }


@pytest.mark.parametrize("name", sorted(_library_values()))
def test_library_values_load_through_the_restricted_unpickler(name: str) -> None:
    from nbharden.record import _values as V

    value = _library_values()[name]
    text = V.dumps_pickle(value)
    loaded = V.loads_pickle(text, __import__("hashlib").sha256(text.encode()).hexdigest())
    assert type(loaded) is type(value)


class _Payload:
    """A value whose pickle calls ``call(*args)`` when it is loaded."""

    def __init__(self, call: object, args: tuple[object, ...]) -> None:
        self.call, self.args = call, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (self.call, self.args)


def _payloads(marker: str) -> list[_Payload]:
    """Calls that would create ``marker`` (or hand out a way to run code) if they ran."""
    import numpy as np
    import pandas as pd

    return [
        _Payload(os.system, (f"touch {marker}",)),
        _Payload(eval, (f"open({marker!r}, 'w')",)),
        _Payload(exec, (f"open({marker!r}, 'w')",)),
        _Payload(getattr, (str, "format")),
        _Payload(__import__, ("os",)),
        _Payload(subprocess.Popen, (["touch", marker],)),
        _Payload(np.memmap, (marker, "float32", "w+", 0, (4,))),
        _Payload(np.save, (marker, np.zeros(1))),
        _Payload(pd.DataFrame.to_csv, (pd.DataFrame({"a": [1]}), marker)),
        _Payload(pd.eval, ("1 + 1",)),
        _Payload(_Payload, (os.system, ())),  # a class only the notebook (here: a test) has
    ]


@pytest.fixture(scope="module")
def payload_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("payloads")


def test_a_recorded_pickle_never_runs_code(payload_dir: Path) -> None:
    """Every payload, alone or nested in containers, a frame's object column, an object's state
    or a scikit-learn estimator's parameters: refused when recorded (``dumps_pickle``) and when
    loaded (``loads_pickle``, a pickle written by hand), and the marker is never created."""
    import hashlib
    import pickle
    import types

    import pandas as pd
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from sklearn.preprocessing import FunctionTransformer

    from nbharden.record import _values as V

    marker = payload_dir / "ran"
    payloads = _payloads(str(marker))
    wrappers = [
        lambda p: p,
        lambda p: [1, p],
        lambda p: {"k": (p,)},
        lambda p: types.SimpleNamespace(model=p),
        lambda p: pd.DataFrame({"o": [p, 1]}),
        lambda p: FunctionTransformer(func=p),
    ]

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.sampled_from(range(len(payloads))),
        st.lists(st.sampled_from(range(len(wrappers))), max_size=3),
    )
    def check(which: int, nesting: list[int]) -> None:
        value: object = payloads[which]
        for w in nesting:
            value = wrappers[w](value)
        with pytest.raises(V.Forbidden):
            V.dumps_pickle(value)
        text = __import__("base64").b64encode(pickle.dumps(value, protocol=4)).decode()
        with pytest.raises(V.Forbidden):
            V.loads_pickle(text, hashlib.sha256(text.encode()).hexdigest())
        assert not marker.exists()

    check()
