"""Recording a large value costs little memory (issue 10): arrays and frames are hashed and summarised
block by block, and a value over the recording cap is never encoded or pickled whole.

The peak resident memory of each run is measured from outside, by a small parent process that waits for
the run and reads ``RUSAGE_CHILDREN``: the largest resident set of any process of the run (here, the
kernel).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbharden.record import _values as V

HOSTILE = Path(__file__).parent.parent / "fixtures" / "hostile"

#: Runs a command, waits for it, prints its exit status and the peak RSS (KiB) of its processes.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def peak_rss(*cmd: str, cwd: Path) -> int:
    """Peak resident memory (KiB) of the processes of ``cmd``, which must succeed."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )
    code, peak = proc.stdout.split()
    assert code == "0", proc.stderr[-3000:]
    return int(peak)


@pytest.mark.slow
def test_a_500_mib_array_records_in_less_than_twice_the_notebooks_own_memory(
    tmp_path: Path,
) -> None:
    notebook = Path(shutil.copy(HOSTILE / "big_array.ipynb", tmp_path / "big_array.ipynb"))
    own = peak_rss(
        sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3",
        str(notebook), str(tmp_path / "plain.ipynb"), cwd=tmp_path,
    )  # fmt: skip
    recorded = peak_rss(
        sys.executable, "-m", "nbharden", "record", str(notebook), "--format", "json",
        cwd=tmp_path,
    )  # fmt: skip
    assert own > 500 * 1024  # the array itself is in the kernel
    assert recorded < 2 * own, f"recording peaked at {recorded} KiB, the notebook alone at {own} KiB"


def test_block_by_block_fingerprints_equal_the_whole_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """With tiny blocks, hashes are those of the whole bytes and statistics agree to 1e-9."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=5003)
    values[[3, 900]] = [np.nan, np.inf]
    arrays = [values, np.arange(12000).reshape(100, 120)[:, ::3], np.arange(7, dtype="i1")]
    frame = pd.DataFrame({"x": values, "s": ["a", "b", "c"] * 1667 + ["a", "b"]})
    whole = [V.fingerprint(a) for a in arrays] + [V.fingerprint(frame)]
    monkeypatch.setattr(V, "CHUNK", 1000)
    blocks = [V.fingerprint(a) for a in arrays] + [V.fingerprint(frame)]
    for a in arrays:
        assert V._array_hash(a) == hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
    for w, b in zip(whole, blocks, strict=True):
        assert json.dumps(V.structure(w)) == json.dumps(V.structure(b))
        assert w.get("hash") == b.get("hash") and w.get("index") == b.get("index")
        for ws, bs in zip(
            [w.get("stats")] + [d["stats"] for d in w.get("data", [])],
            [b.get("stats")] + [d["stats"] for d in b.get("data", [])],
            strict=True,
        ):
            if ws is None:
                assert bs is None
                continue
            assert ws.keys() == bs.keys()
            for key in ws:
                assert V.is_close(float(ws[key]), float(bs[key]), 1e-9, 1e-12), key


def test_data_bytes_counts_arrays_frames_and_what_holds_them() -> None:
    arr = np.zeros(1000)
    assert V.data_bytes(arr) == 8000
    assert V.data_bytes(pd.DataFrame({"a": arr})) >= 8000
    assert V.data_bytes({"model": type("M", (), {})()}) == 0
    holder = type("Model", (), {})()
    holder.coef_ = arr
    assert V.data_bytes([holder]) == 8000
