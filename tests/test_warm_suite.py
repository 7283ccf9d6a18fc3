"""The verification's pytest started ahead (issue 17, ``nbharden.warm_suite``): it reports what a fresh run
reports, imports ahead only what is safe to, is used only for the run it was started for, and never outlives
the conversion."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import nbformat
import pytest

from nbharden import api
from nbharden.errors import VerificationError
from nbharden.warm_suite import WarmSuite

SUITE = """
import os
import sys

import pytest

AHEAD = "numpy" in sys.modules  # before anything in this suite imports it


def test_passes():
    assert os.environ["PYTHONHASHSEED"] == "0" and sys.flags.hash_randomization == 0


def test_fails():
    assert 1 + 1 == 3


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


def test_ahead():
    assert AHEAD == EXPECT_AHEAD
"""


def _package(folder: Path, *, expect_ahead: bool, extra: str = "") -> Path:
    out = folder / "pkg"
    (out / "tests" / "data").mkdir(parents=True)
    (out / "pyproject.toml").write_text(
        '[project]\nname = "probe"\nversion = "0"\n', encoding="utf-8"
    )
    environment = {
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    (out / "tests" / "data" / "recording.json").write_text(
        json.dumps({"environment": environment}), "utf-8"
    )
    (out / "tests" / "test_probe.py").write_text(
        SUITE.replace("EXPECT_AHEAD", repr(expect_ahead)) + extra, encoding="utf-8"
    )
    return out


def _notebook(folder: Path, *cells: str) -> Path:
    path = folder / "nb.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), str(path)
    )
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def _without_time(result: dict[str, object]) -> dict[str, object]:
    return {**result, "summary": re.sub(r" in [\d.]+s.*", "", str(result["summary"]))}


def test_a_warm_run_reports_what_a_fresh_run_reports(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path, "import numpy as np\nx = np.arange(3)")
    fresh = api.run_tests(_package(tmp_path / "a", expect_ahead=False), check=False)
    out = _package(tmp_path / "b", expect_ahead=True)
    with api.warm_suite(out, notebook) as warm:
        used = api.run_tests(out, check=False, warm=warm)
    assert _without_time(used) == _without_time(fresh)
    assert (used["passed"], used["failed"], used["skipped"], used["returncode"]) == (2, 1, 1, 1), (
        used
    )
    with pytest.raises(VerificationError, match="generated tests failed"):
        with api.warm_suite(out, notebook) as warm:
            api.run_tests(out, warm=warm)


@pytest.mark.parametrize(
    ("cells", "ahead"),
    [
        (["%pip install numpy\nimport numpy as np", "!echo hi"], True),
        (["from numpy.linalg import norm"], True),
        (["import os\nos.environ['OMP_NUM_THREADS'] = '4'", "import numpy as np"], False),
        (["import matplotlib\nmatplotlib.use('Agg')\nimport numpy"], False),
        (["import matplotlib.pyplot as plt\nplt.style.use('ggplot')\nimport numpy"], True),
        (["%env MPLBACKEND=Agg\nimport numpy"], False),
        (["import json"], False),
    ],
)
def test_libraries_are_imported_ahead_only_when_safe(
    tmp_path: Path, cells: list[str], ahead: bool
) -> None:
    """Only the notebook's own libraries of ``PRELOAD``, and none when the notebook configures libraries (an early
    import would not see the configuration)."""
    notebook = _notebook(tmp_path, *cells)
    out = _package(tmp_path, expect_ahead=ahead)
    with api.warm_suite(out, notebook) as warm:
        result = api.run_tests(out, check=False, warm=warm)
    assert (result["passed"], result["failed"]) == (2, 1), result


def test_a_run_it_was_not_started_for_starts_afresh_and_kills_it(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path, "import numpy")
    out = _package(tmp_path, expect_ahead=False)
    (out / "tests" / "data" / "recording.json").write_text(
        json.dumps({"environment": {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "2"}}), "utf-8"
    )
    warm = api.warm_suite(out, notebook)
    proc = warm._proc
    assert proc is not None
    with warm:
        result = api.run_tests(out, check=False, warm=warm)  # another environment: a fresh pytest
        assert (result["passed"], result["failed"]) == (2, 1), result
        assert proc.poll() is None, "unused, it still waits"
    assert not _alive(proc.pid)


def test_a_warm_run_that_takes_too_long_is_killed(tmp_path: Path) -> None:
    out = _package(
        tmp_path,
        expect_ahead=False,
        extra="\n\ndef test_sleeps():\n    import time\n    time.sleep(60)\n",
    )
    with api.warm_suite(out, _notebook(tmp_path, "x = 1")) as warm:
        proc = warm._proc
        assert proc is not None
        started = time.monotonic()
        with pytest.raises(VerificationError, match="did not finish in 2 s"):
            api.run_tests(out, warm=warm, timeout=2)
    assert time.monotonic() - started < 30
    assert not _alive(proc.pid)


def test_a_process_gone_before_its_run_means_a_fresh_run(tmp_path: Path) -> None:
    out = _package(tmp_path, expect_ahead=False)
    warm = WarmSuite("python3", {"PATH": os.environ["PATH"]}, _notebook(tmp_path, "x = 1"))
    assert warm._proc is not None
    os.kill(warm._proc.pid, signal.SIGKILL)
    warm._proc.wait()
    assert not warm.fits("python3", {"PATH": os.environ["PATH"]})
    assert warm.run(["-q"], cwd=out, timeout=10) is None
    warm.close()


@pytest.mark.slow
@pytest.mark.parametrize(("sandbox", "used"), [("off", True), ("limits", False)])
def test_a_recorded_write_verifies_with_the_warm_suite_when_unsandboxed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: str, used: bool
) -> None:
    """The workflow starts it as a recorded, verified write begins, outside any sandbox only (a sandbox tier
    bounds each run of notebook code and sets up its folders per run)."""
    from nbharden import warm_suite
    from nbharden.settings import Settings
    from nbharden.workflow import ConversionRequest, Written, run_conversion

    runs: list[tuple[str, int] | None] = []
    real = warm_suite.WarmSuite.run

    def spy(self: WarmSuite, *args: object, **kwargs: object) -> tuple[str, int] | None:
        ran = real(self, *args, **kwargs)  # type: ignore[arg-type]
        runs.append(ran)
        return ran

    monkeypatch.setattr(warm_suite.WarmSuite, "run", spy)
    notebook = _notebook(
        tmp_path,
        "import numpy as np",
        "# ## Total\nvalues = np.arange(5)\ntotal = int(values.sum())",
    )
    settings = Settings(out=str(tmp_path / "out"), sandbox=sandbox)
    outcome = run_conversion(ConversionRequest(notebook, settings))
    assert isinstance(outcome, Written) and outcome.tests is not None, outcome
    assert outcome.tests.returncode == 0 and outcome.tests.counts.get("passed", 0) >= 2, (
        outcome.tests
    )
    assert [ran is not None and ran[1] == 0 for ran in runs] == ([True] if used else [])


def test_it_runs_the_interpreter_the_notebooks_kernel_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernelspec naming another environment's Python (the benchmark's corpus kernel, a conda env): the suite
    runs there (``run_tests``' ``python``), so that is the interpreter started ahead."""
    import sys

    other = tmp_path / "env" / "bin" / "python"
    other.parent.mkdir(parents=True)
    other.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")  # another path
    other.chmod(0o755)
    spec = tmp_path / "jupyter" / "kernels" / "other-env"
    spec.mkdir(parents=True)
    argv = [str(other), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Other", "language": "python"}), "utf-8"
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = _notebook(tmp_path, "import numpy")
    raw = json.loads(notebook.read_text(encoding="utf-8"))
    raw["metadata"]["kernelspec"] = {
        "name": "other-env",
        "display_name": "Other",
        "language": "python",
    }
    notebook.write_text(json.dumps(raw), encoding="utf-8")
    out = _package(tmp_path, expect_ahead=True)
    with api.warm_suite(out, notebook) as warm:
        assert warm.python == str(other)
        result = api.run_tests(out, python=str(other), check=False, warm=warm)
    assert (result["passed"], result["failed"]) == (2, 1), result


def test_an_interpreter_without_pytest_means_a_fresh_run_with_nbharden_s_own(
    tmp_path: Path,
) -> None:
    """The kernel's interpreter cannot import pytest: the interpreter started ahead says so and ends, and the
    suite runs as it always has there, with nbharden's interpreter (``_test_python``), never as a failure."""
    import sys

    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "pytest.py").write_text("raise ImportError('no pytest in this environment')\n", "utf-8")
    other = tmp_path / "env" / "bin" / "python"
    other.parent.mkdir(parents=True)
    other.write_text(
        f'#!/bin/sh\nPYTHONPATH="{fake}" exec "{sys.executable}" "$@"\n', encoding="utf-8"
    )
    other.chmod(0o755)
    notebook = _notebook(tmp_path, "import numpy")
    out = _package(tmp_path, expect_ahead=False)
    environment = api._recorded_environment(out, None)
    cmd, env = api._pytest_command(out, str(other), cases=False, environment=environment)
    with WarmSuite(str(other), env, notebook) as warm:
        assert warm.run(cmd[3:], cwd=out.resolve(), timeout=60) is None
    with WarmSuite(str(other), env, notebook) as warm:
        result = api.run_tests(out, python=str(other), check=False, warm=warm)
    assert (result["passed"], result["failed"], result["returncode"]) == (2, 1, 1), result
