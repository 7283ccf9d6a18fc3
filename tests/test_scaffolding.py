"""The production scaffolding of generated packages, exercised for real: the generated command line runs in a
subprocess, its JSON log lines are parsed, bad values are rejected by the generated Config, and the seed fix makes
two runs agree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbharden import api
from nbharden.settings import Settings

#: Tier: kernels, papermill or generated packages in subprocesses (make test-fast skips these).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "golden"
_VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable


def _convert(stem: str, dest: Path, **settings: object) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{stem}.ipynb").write_bytes((GOLDEN / f"{stem}.ipynb").read_bytes())
    shutil.copytree(GOLDEN / "data", dest / "data")
    out = dest / "out"
    changes = api.convert(
        dest / f"{stem}.ipynb",
        Settings(out=out, record=False, **settings),  # type: ignore[arg-type]
    )
    api.write(changes)
    return out


def _run(out: Path, package: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(out / "src"), "COLUMNS": "200"}
    return subprocess.run(
        [PYTHON, "-m", package, *args],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def validation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _convert("validation", tmp_path_factory.mktemp("validation"))


def _json_lines(stderr: str) -> list[dict[str, object]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no log output"
    records = []
    for line in lines:
        if not line.startswith("{"):
            break  # the traceback of a failed run follows the log lines
        records.append(json.loads(line))
    return records


def test_json_log_lines_carry_steps_durations_shapes_and_a_summary(validation: Path) -> None:
    proc = _run(validation, "validation", "--log-format", "json")
    assert proc.returncode == 0, proc.stderr
    records = _json_lines(proc.stderr)
    assert len(records) == len(proc.stderr.strip().splitlines()), "every line is one JSON object"
    events = [r.get("event") for r in records if r.get("event")]
    assert events[0] == "pipeline_start" and events[-1] == "pipeline_end"
    ends = {r["step"]: r for r in records if r.get("event") == "step_end"}
    assert list(ends) == ["load", "sample", "summarise"]
    for record in ends.values():
        assert isinstance(record["duration_s"], float) and record["duration_s"] >= 0
        assert {"time", "level", "logger", "message"} <= set(record)
    assert ends["load"]["outputs"] == {"sales": {"type": "DataFrame", "shape": [4, 2]}}
    assert ends["summarise"]["outputs"] == {"totals": {"type": "list", "len": 5}}
    summary = records[-1]
    assert summary["steps"] == {name: ends[name]["duration_s"] for name in ends}
    printed = [r for r in records if r["logger"] == "validation.steps"]
    assert [r["message"] for r in printed] == ["2 1"], "print() became a log call"


def test_text_logs_are_the_default(validation: Path) -> None:
    proc = _run(validation, "validation")
    assert proc.returncode == 0, proc.stderr
    assert re.search(
        r"INFO validation\.support: step load: done in \d+\.\d{3} s -> sales=DataFrame\(4, 2\)",
        proc.stderr,
    )
    assert re.search(r"pipeline validation: 3 step\(s\) done in", proc.stderr)
    assert not proc.stderr.lstrip().startswith("{")


def test_a_failing_step_is_named_in_the_log_and_the_traceback(validation: Path) -> None:
    proc = _run(validation, "validation", "-p", "label", "no_such_column", "--log-format", "json")
    assert proc.returncode != 0
    records = _json_lines(proc.stderr)
    failed = [r for r in records if r.get("event") == "step_failed"]
    assert [(r["step"], r["error"]) for r in failed] == [("summarise", "KeyError")]
    assert records[-1]["event"] == "pipeline_failed"
    assert "in step 'summarise' of the validation pipeline" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--test-size", "1.5"], "error: test_size: Input should be less than or equal to 1"),
        (["-p", "n_trees", "0"], "error: n_trees: Input should be greater than 0"),
        (["-p", "seed", "-1"], "error: seed: Input should be greater than or equal to 0"),
        (["--sales-path", "no/such.csv"], "sales_path: no such file"),
        (["-p", "min_rows", "many"], "error: min_rows: Input should be a valid integer"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(
    validation: Path, args: list[str], message: str
) -> None:
    proc = _run(validation, "validation", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "step load: start" not in proc.stderr, "rejected before any step ran"


def test_papermill_style_parameters_and_options_override_config(validation: Path) -> None:
    proc = _run(
        validation,
        "validation",
        "-p",
        "n_trees",
        "2",
        "--sample-frac",
        "1.0",
        "-p",
        "test_size",
        "0.5",
    )
    assert proc.returncode == 0, proc.stderr
    assert "totals=list[2]" in proc.stderr
    assert "validation.steps: 4 2" in proc.stderr  # len(part) with frac=1.0, int(4 * 0.5)


def test_unknown_parameter_is_a_usage_error(validation: Path) -> None:
    proc = _run(validation, "validation", "-p", "nope", "1")
    assert proc.returncode == 2
    assert "unknown parameter 'nope'" in proc.stderr


def test_every_config_field_is_an_option(validation: Path) -> None:
    proc = _run(validation, "validation", "--help")
    assert proc.returncode == 0, proc.stderr
    for option in ("--test-size", "--n-trees", "--min-rows", "--seed", "--sample-frac", "--label",
                   "--sales-path", "--data-dir", "--parameter", "--log-format", "--log-level"):  # fmt: skip
        assert option in proc.stdout, option


def test_environment_sets_fields_with_the_package_prefix(validation: Path) -> None:
    env_proc = subprocess.run(
        [PYTHON, "-m", "validation"],
        cwd=validation,
        env={**os.environ, "PYTHONPATH": str(validation / "src"), "VALIDATION_N_TREES": "4"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert env_proc.returncode == 0, env_proc.stderr
    assert "totals=list[4]" in env_proc.stderr


def _summary(out: Path, package: str) -> str:
    code = f"from {package}.pipeline import run; print(run().summary)"
    proc = subprocess.run(
        [PYTHON, "-c", code],
        cwd=out,
        env={**os.environ, "PYTHONPATH": str(out / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_seed_fix_only_with_unsafe_fixes_and_then_runs_agree(tmp_path: Path) -> None:
    safe = _convert("unsafe_seeding", tmp_path / "safe")
    unsafe = _convert("unsafe_seeding", tmp_path / "unsafe", unsafe_fixes=True)
    assert "seed: int" not in (safe / "src/unsafe_seeding/config.py").read_text()
    assert "seed: int = Field(" in (unsafe / "src/unsafe_seeding/config.py").read_text()
    assert "seed_everything(config.seed)" in (unsafe / "src/unsafe_seeding/pipeline.py").read_text()
    seeded = {_summary(unsafe, "unsafe_seeding") for _ in range(3)}
    assert len(seeded) == 1, seeded
    unseeded = {_summary(safe, "unsafe_seeding") for _ in range(3)}
    assert len(unseeded) > 1, "without the seed the draws differ between runs"
    analysis = api.convert(tmp_path / "unsafe" / "unsafe_seeding.ipynb",
                           Settings(out=unsafe, record=False, unsafe_fixes=True))  # fmt: skip
    assert [f.applied for f in analysis.findings if f.code == "NBH401"] == [True, True]
