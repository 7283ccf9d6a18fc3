"""The first two recording runs at once (issue 17): only for notebooks where neither run can affect the other,
and the recording is the one the runs one after the other make."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from nbharden.analyse import FullAnalysis, analyse
from nbharden.load import load
from nbharden.models import Notebook, Plan
from nbharden.plan import make_plan
from nbharden.record import record
from nbharden.record.run import _may_run_together
from nbharden.record.sandbox import SandboxReport
from nbharden.record.watch import CellProgress, RunWatch
from nbharden.settings import Settings

COMPUTE = [
    "import random\nimport time\nimport numpy as np",
    "# ## Seeded\nrng = np.random.default_rng(42)\nnoise = rng.normal(size=4)",
    "# ## Unseeded\nunseeded = np.random.rand(3)",
    "# ## Clock\nstamp = time.time()",
    "# ## Total\ntotal = float(noise.sum()) + len(unseeded)",
]


def _notebook(folder: Path, cells: list[str]) -> tuple[Notebook, FullAnalysis, Plan]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "nb.ipynb"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    settings = Settings(record=False)
    loaded = load(path, settings=settings)
    analysis = analyse(loaded, settings=settings)
    return loaded, analysis, make_plan(analysis, settings=settings)


OFF = SandboxReport("off", "off")


@pytest.mark.parametrize(
    "cell",
    [
        "df.to_csv('out.csv')",
        "open('out.txt', 'w').write('x')",
        "%%writefile helper.py\nX = 1",
        "!touch made.txt",
    ],
)
def test_a_notebook_that_writes_files_or_runs_commands_runs_one_run_after_the_other(
    tmp_path: Path, cell: str
) -> None:
    nb, analysis, _ = _notebook(tmp_path, ["import pandas as pd\ndf = pd.DataFrame({'a': [1]})", cell])
    assert not _may_run_together(nb, analysis, OFF)


@pytest.mark.parametrize(
    ("cell", "together"),
    [
        # commands and magics that change what the other run sees: two `pip install` into one environment
        # at once (the demo's `%pip install scikit-learn`), a file, the profile's store
        ("%pip install nbharden-no-such-distribution --quiet", False),
        ("!pip install -q nbharden-no-such-distribution", False),
        ("files = !ls", False),
        ("x = %sx ls", False),
        ("%conda install numpy", False),
        ("%%bash\necho hi", False),
        ("%store value", False),
        ("%run helper.py", False),
        ("%%time\n!touch x", False),
        ("    %pip install x", False),
        # magics that stay in the kernel's own process
        ("%matplotlib inline", True),
        ("%time total = 1 + 1", True),
        ("%%time\ntotal = 1 + 1", True),
        ("%load_ext autoreload\n%autoreload 2", True),
        ("%config InlineBackend.figure_format = 'retina'", True),
        # `pip install` of what the kernel's environment has already changes nothing
        ("%pip install numpy --quiet", True),
        ("!pip install -q numpy 'pytest>=7'", True),
        ("!python -m pip install numpy", False),  # the analysis takes it for a command (Effect.SHELL)
        ("get_ipython().run_line_magic('store', 'total')", False),
        ("%pip install nbharden-no-such-distribution", False),
        ("%pip install 'numpy<1'", False),
        ("%pip install -U numpy", False),
        ("%pip install numpy[dev]", False),
        ("%pip install -r requirements.txt", False),
        ("!pip install git+https://example.org/x.git", False),
        ("!pip install {package}", False),
        ("%%pip\nnumpy", False),
    ],
)
def test_a_notebook_that_runs_commands_through_magics_runs_one_run_after_the_other(
    tmp_path: Path, cell: str, together: bool
) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the runs never overlap")
    nb, analysis, _ = _notebook(tmp_path, ["total = 0", cell])
    assert _may_run_together(nb, analysis, OFF, sys.executable) is together
    if "pip" in cell:  # without the kernel's interpreter nothing tells what is installed
        assert not _may_run_together(nb, analysis, OFF)


def test_runs_overlap_only_with_the_analysis_two_cores_and_no_bwrap(tmp_path: Path) -> None:
    nb, analysis, _ = _notebook(tmp_path, COMPUTE)
    assert not _may_run_together(nb, None, OFF), "no analysis: nothing known of what it does"
    assert not _may_run_together(nb, analysis, SandboxReport("bwrap", "bwrap"))
    assert _may_run_together(nb, analysis, OFF) == ((os.cpu_count() or 1) >= 2)


@pytest.mark.slow
def test_runs_at_once_record_what_runs_one_after_the_other_record(tmp_path: Path) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the runs never overlap")
    nb, analysis, plan = _notebook(tmp_path / "nb", COMPUTE)
    overlapping: list[bool] = []
    runs: list[int] = []

    def on_cell(progress: CellProgress) -> None:
        runs.append(progress.run)
        if progress.run == 1:  # the thread that makes run 2 lives while run 1 runs
            overlapping.append(any(t.name.startswith("nbharden-run") for t in threading.enumerate()))

    settings = Settings()
    together = record(
        nb, plan, settings=settings, workdir=tmp_path / "a", analysis=analysis, watch=RunWatch(on_cell=on_cell)
    )
    assert overlapping and all(overlapping), "run 2 was made while run 1 ran"
    # the watch hears one run after the other, as when they do not overlap
    assert runs == [1] * len(COMPUTE) + [2] * len(COMPUTE) + [3] * len(COMPUTE)
    apart = record(nb, plan, settings=settings, workdir=tmp_path / "b")  # no analysis: one after the other
    # unseeded and clock values differ between the runs: a third, confirming run with the first seed
    assert together.seeds == apart.seeds == (0, 1, 0)
    assert len(together.seconds) == 3
    assert not (tmp_path / "a" / ".run2").exists() and not (tmp_path / "a" / ".run3").exists()

    def values(rec: object) -> list[tuple[object, ...]]:
        return [
            (s.step, v.name, v.kind, v.type, v.sha256, v.volatile, v.seed_dependent, v.fingerprint)
            for s in rec.steps  # type: ignore[attr-defined]
            for v in (*s.inputs, *s.outputs)
        ]

    assert values(together) == values(apart)
    kinds = {v[1]: (v[2], v[5], v[6]) for v in values(together)}
    assert kinds["noise"] == ("value", False, False)
    assert kinds["unseeded"] == ("value", True, True)  # follows the seed: kept
    assert kinds["stamp"][1:] == (True, False)  # a clock: only its type kept


def test_runs_at_once_leave_the_working_folder_as_it_was(tmp_path: Path) -> None:
    """papermill's cwd= changes the process's folder for a run and back at its end; two runs at once end in
    the other order (run 2 entered while run 1 was in its folder), which left the process in run 1's folder
    (make demo then wrote NOTEBOOK_DIR = ../../notebooks/notebooks). ``_at_once`` puts the folder back."""
    from papermill.utils import chdir

    from nbharden.record.run import _at_once

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    def run_1() -> str:
        with chdir(str(tmp_path / "a")):
            first_in.set()
            second_in.wait(10)
        first_out.set()
        return "1"

    def run_2() -> str:
        first_in.wait(10)
        with chdir(str(tmp_path / "b")):  # remembers run 1's folder as the one to go back to
            second_in.set()
            first_out.wait(10)
        return "2"

    here = os.getcwd()
    assert _at_once(run_1, run_2) == ("1", "2")
    assert os.getcwd() == here


@pytest.mark.slow
def test_runs_are_made_at_once_with_relative_paths_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line names a notebook from the current folder (``nbharden convert nb.ipynb``): its runs are
    made at once as well (issue 17: they were one after the other, which doubled the recording of the demo), and
    the relative paths lead where they did in the caller's folder although papermill moved the process's folder
    into the notebook's for a run."""
    import nbharden.record.run as run_module

    (tmp_path / "nbs").mkdir()
    path = tmp_path / "nbs" / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in COMPUTE]), str(path))
    monkeypatch.chdir(tmp_path)
    seen: list[bool] = []
    real = run_module._Runs

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("order") is not None)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "_Runs", spy)
    settings = Settings(record=True)
    nb = load(Path("nbs/nb.ipynb"), settings=settings)
    analysis = analyse(nb, settings=settings)
    assert isinstance(analysis, FullAnalysis)
    plan = make_plan(analysis, settings=settings)
    made = record(
        nb, plan, settings=settings, workdir=Path("rec"), executed=Path("out/run.ipynb"), analysis=analysis
    )
    assert seen == [(os.cpu_count() or 1) >= 2]
    assert made.runs == 3, "unseeded and clock values differ between runs 1 and 2: a third run confirms"
    assert os.getcwd() == str(tmp_path)
    assert (tmp_path / "rec" / "recording.json").is_file()
    assert (tmp_path / "out" / "run.ipynb").is_file()
    assert not (tmp_path / "nbs" / "rec").exists() and not (tmp_path / "nbs" / "out").exists()
    assert sorted(p.name for p in (tmp_path / "nbs").iterdir()) == ["nb.ipynb"]
