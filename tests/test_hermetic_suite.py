"""Issue 13: the generated suite is hermetic and pinned to its inputs. The tests of a notebook that
reads over HTTP replay the recorded responses (requests, httpx, urllib and pandas on a URL) instead of
skipping or going online; data_dir comes from ``.env`` as the package reads it; a test whose input
file changed since the recording fails.

Each test converts a notebook with recording (``nbharden convert`` in a subprocess), then runs the
generated suite with pytest in a subprocess. The HTTP notebook reads a local server (127.0.0.1, an
ephemeral port) that is stopped before the generated suite runs: a test that still went online would
find nothing there.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CSV = "x,y\n" + "".join(f"{i},{(i * 7) % 11}\n" for i in range(40))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    def handler(*args: object, **kwargs: object) -> _Quiet:
        return _Quiet(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OMP_NUM_THREADS")}
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    return env


def _convert(notebook: Path, *args: str) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "nbharden", "convert", notebook.name, *args],
        cwd=notebook.parent,
        env={**_env(), "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return notebook.parent / f"{notebook.stem}_prod"


def _pytest(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", str(out)],
        cwd=out,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_http_reads_are_replayed_offline_and_a_changed_step_fails(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    data = tmp_path / "server"
    data.mkdir()
    (data / "points.csv").write_text(CSV, encoding="utf-8")
    (data / "meta.json").write_text('{"scale": 3}', encoding="utf-8")
    with serve(data) as base:
        notebook = make_notebook(
            [
                (f'BASE = "{base}"', ["parameters"]),
                "import io, json, urllib.request\nimport httpx\nimport pandas as pd\nimport requests",
                "md:## Read",
                'text = requests.get(BASE + "/points.csv", timeout=10).text\n'
                "points = pd.read_csv(io.StringIO(text))",
                "md:## Meta",
                'with urllib.request.urlopen(BASE + "/meta.json") as fh:\n'
                '    scale = json.load(fh)["scale"]\n'
                'again = httpx.get(BASE + "/meta.json").json()["scale"]',
                "md:## Frame",
                'direct = pd.read_csv(BASE + "/points.csv")',
                "md:## Total",
                'total = float((points["y"] * scale * again).sum() + direct["x"].sum())',
            ],
            name="remote.ipynb",
        )
        out = _convert(notebook)
    suite = _pytest(out)
    assert suite.returncode == 0, suite.stdout[-4000:]
    assert "skipped" not in suite.stdout.splitlines()[-1], suite.stdout[-4000:]
    for step in ("read", "meta", "frame", "total"):
        assert f"PASSED tests/test_steps.py::test_{step}" in suite.stdout, suite.stdout[-4000:]
    steps = next(out.glob("src/*/steps.py"))
    original = steps.read_text(encoding="utf-8")
    assert original.count('json.load(fh)["scale"]') == 1, original
    steps.write_text(original.replace('json.load(fh)["scale"]', 'json.load(fh)["scale"] + 1'))
    mutant = _pytest(out)
    assert mutant.returncode == 1 and "FAILED tests/test_steps.py::test_meta" in mutant.stdout, (
        mutant.stdout[-4000:]
    )


def test_a_moved_package_reads_data_dir_from_dotenv_and_a_changed_input_file_fails(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "points.csv").write_text(CSV, encoding="utf-8")
    notebook = make_notebook(
        [
            "import pandas as pd",
            "md:## Load",
            'points = pd.read_csv("points.csv")',
            "md:## Total",
            'total = int(points["y"].sum())',
        ],
        name="local.ipynb",
    )
    out = shutil.copytree(_convert(notebook), tmp_path / "elsewhere" / "moved")
    prefix = next(out.glob("src/*/__init__.py")).parent.name.upper() + "_"
    alone = _pytest(out)
    assert alone.returncode == 0, alone.stdout[-4000:]
    assert "SKIPPED" in alone.stdout and f"{prefix}DATA_DIR" in alone.stdout, alone.stdout[-4000:]
    # .env in the folder pytest starts in, as the package reads it (relative to that folder)
    (out / ".env").write_text(f"{prefix}DATA_DIR=../..\n", encoding="utf-8")
    suite = _pytest(out)
    assert suite.returncode == 0 and "SKIPPED" not in suite.stdout, suite.stdout[-4000:]
    assert "PASSED tests/test_steps.py::test_load" in suite.stdout, suite.stdout[-4000:]
    # the same number of rows and columns, one value changed: the recorded values no longer follow
    (tmp_path / "points.csv").write_text(CSV.replace("\n3,10\n", "\n3,9\n"), encoding="utf-8")
    suite = _pytest(out)
    assert suite.returncode == 1, suite.stdout[-4000:]
    assert "changed since the notebook was recorded" in suite.stdout, suite.stdout[-4000:]
    assert "FAILED tests/test_steps.py::test_load" in suite.stdout, suite.stdout[-4000:]
    assert "PASSED tests/test_steps.py::test_total" in suite.stdout, suite.stdout[-4000:]


def test_files_read_by_paths_made_at_run_time_are_copied_into_each_tests_folder(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """A file read by a path nbharden did not lift into Config (built by os.path.join from a folder one
    level up, a name without an extension, an f-string, ../<its own folder>/) is copied into each
    test's folder, at the relative path the code named, as the recorded run read it; one changed since
    then fails the test of the step that reads it (papermill's pm_example and pandas cookbook ch8 failed
    with FileNotFoundError before)."""
    project = tmp_path / "project"
    (project / "shared").mkdir(parents=True)
    (project / "shared" / "table.csv").write_text(CSV, encoding="utf-8")
    here = project / "analysis"
    (here / "data").mkdir(parents=True)
    (here / "data" / "popcon").write_text("1 2 a\n3 4 b\n5 6 c\n", encoding="utf-8")
    (here / "names.txt").write_text("ada grace edsger\n", encoding="utf-8")
    made = make_notebook(
        [
            "import os\nimport pandas as pd\nBASE = '..'",
            "md:## Shared table",
            "table = pd.read_csv(os.path.join(BASE, 'shared', 'table.csv'))",
            "md:## Popularity",
            "popcon = pd.read_csv('./data/popcon', sep=' ', header=None)",
            "md:## Words",
            # its own folder by name, as papermill's pm_example reads ../cli-simple/ in cli-simple/
            "stem = 'names'\nwith open(os.path.join(BASE, 'analysis', f'{stem}.txt')) as fh:\n"
            "    words = fh.read().split()",
            "md:## Total",
            "total = int(table['y'].sum()) + int(popcon[0].sum()) + len(words)\n"
            "with open(stem + '_report.txt', 'w') as fh:\n    fh.write(str(len(words)))",
        ],
        name="reads.ipynb",
    )
    notebook = made.rename(here / made.name)
    out = _convert(notebook)
    suite = _pytest(out)
    assert suite.returncode == 0 and "SKIPPED" not in suite.stdout, suite.stdout[-4000:]
    tests = [line for line in suite.stdout.splitlines() if line.startswith("PASSED tests/test_steps")]
    assert len(tests) >= 4, suite.stdout[-4000:]
    assert "test_pipeline" in suite.stdout, suite.stdout[-4000:]
    (project / "shared" / "table.csv").write_text(CSV.replace("\n3,10\n", "\n3,9\n"), encoding="utf-8")
    changed = _pytest(out)
    assert changed.returncode == 1, changed.stdout[-4000:]
    assert "changed since the notebook was recorded" in changed.stdout, changed.stdout[-4000:]
    failed = [line for line in changed.stdout.splitlines() if line.startswith("FAILED tests/test_steps")]
    assert len(failed) == 1 and "shared" in failed[0], changed.stdout[-4000:]


def test_a_step_that_no_longer_writes_its_file_or_logs_its_result_fails(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """The files the notebook wrote and the results it showed are checked, not only the values the
    steps return: a step that stops writing its file (a model, a report) fails its test, and a pipeline
    whose metrics.json lacks a shown result fails test_pipeline, and a step whose data contract check
    is gone fails the test that gives it a frame without a column (mutants the ML fixtures' suites
    missed: a dropped joblib.dump / pickle.dump, log_result, require_columns)."""
    (tmp_path / "points.csv").write_text(CSV, encoding="utf-8")
    notebook = make_notebook(
        [
            "import pickle\nimport pandas as pd",
            "md:## Load",
            'points = pd.read_csv("points.csv")',
            "md:## Scale",
            "scaled = points * 2",
            "md:## Fit",
            'slope = float(scaled["y"].sum() / scaled["x"].sum())\n'
            "pickle.dump(slope, open('slope.pkl', 'wb'))",
            "md:## Score",
            "def percent(value):\n    return round(value * 100, 3)",
            "score = percent(slope)\nscore",
        ],
        name="writes.ipynb",
    )
    out = _convert(notebook)
    steps = next(out.glob("src/*/steps.py"))
    original = steps.read_text(encoding="utf-8")
    suite = _pytest(out)
    assert suite.returncode == 0 and "SKIPPED" not in suite.stdout, suite.stdout[-4000:]
    # the path is a Config field the recorded run wrote: not copied into the tests' folders
    dump = next(line for line in original.splitlines() if "pickle.dump(" in line)
    steps.write_text(original.replace(dump, dump.split("pickle.dump(")[0] + "pass"))
    no_model = _pytest(out)
    assert no_model.returncode == 1, no_model.stdout[-4000:]
    assert "the notebook wrote slope.pkl" in no_model.stdout, no_model.stdout[-4000:]
    assert "FAILED tests/test_steps.py::test_fit" in no_model.stdout, no_model.stdout[-4000:]
    logged = next(line for line in original.splitlines() if "log_result(" in line)
    steps.write_text(original.replace(logged, logged.split("log_result(")[0] + "pass"))
    unlogged = _pytest(out)
    assert unlogged.returncode == 1, unlogged.stdout[-4000:]
    assert "lacks the result(s) the notebook showed: score" in unlogged.stdout, unlogged.stdout[-4000:]
    # the data contract of the frame fit takes in: a test gives it the frame without a column
    assert "test_fit_checks_the_columns_of_scaled PASSED" in _verbose(suite), suite.stdout[-4000:]
    check = next(line for line in original.splitlines() if "require_columns(scaled" in line)
    steps.write_text(original.replace(check, check.split("require_columns(")[0] + "pass"))
    unchecked = _pytest(out)
    assert unchecked.returncode == 1, unchecked.stdout[-4000:]
    assert "FAILED tests/test_steps.py::test_fit_checks_the_columns_of_scaled" in unchecked.stdout, (
        unchecked.stdout[-4000:]
    )


def _verbose(done: subprocess.CompletedProcess[str]) -> str:
    """pytest -rA's summary as "<test> PASSED" lines."""
    lines = [line.split(" ", 1) for line in done.stdout.splitlines() if " tests/" in line]
    return "\n".join(f"{name.split('::')[-1]} {status}" for status, name in lines)
