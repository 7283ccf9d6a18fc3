"""Types and data contracts from a recorded run (nbharden.recorded_types): a real kernel records the
validation fixture, the generated steps get the recorded types and check their frames, and a contract
violation names the step, the frame and the column.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbharden import api
from nbharden.recorded_types import spell
from nbharden.settings import Settings

#: Tier: kernels, papermill or generated packages in subprocesses (make test-fast skips these).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "golden"
_VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable

NAMES = {"pandas": "pd", "numpy": "np", "sklearn.linear_model.LinearRegression": "LinearRegression"}


@pytest.mark.parametrize(
    ("recorded", "spelled"),
    [
        ("pandas.DataFrame", "pd.DataFrame"),
        ("numpy.ndarray", "np.ndarray"),
        ("list[str]", "list[str]"),
        ("dict[str, list[pandas.Series]]", "dict[str, list[pd.Series]]"),
        ("sklearn.linear_model.LinearRegression", "LinearRegression"),
        ("tuple[int, float] | None", "tuple[int, float] | None"),
    ],
)
def test_recorded_types_are_spelled_with_the_notebooks_imports(recorded: str, spelled: str) -> None:
    assert spell(recorded, NAMES) == spelled


@pytest.mark.parametrize(
    "recorded",
    [
        "scipy.sparse.csr_matrix",
        "__main__.Model",
        "list[torch.Tensor]",
        "",
        "1 +",
        "tuple[str, numpy._ArrayFunctionDispatcher]",  # private: not an attribute at run time
        "dict[str, " * 10 + "int" + "]" * 10,  # too long to help a reader
    ],
)
def test_a_type_the_steps_cannot_name_is_left_to_the_static_guess(recorded: str) -> None:
    assert spell(recorded, NAMES) is None


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("recorded")
    (work / "validation.ipynb").write_bytes((GOLDEN / "validation.ipynb").read_bytes())
    (work / "data").mkdir()
    (work / "data" / "sales.csv").write_bytes((GOLDEN / "data" / "sales.csv").read_bytes())
    changes = api.convert(work / "validation.ipynb", Settings(out=work / "out", record=True))
    assert [f.code for f in changes.findings].count("NBH206") == 2, changes.findings
    api.write(changes)
    return work / "out"


def test_signatures_carry_the_recorded_types(recorded: Path) -> None:
    steps = (recorded / "src/validation/steps.py").read_text()
    assert "def load(min_rows: int, sales_path: Path) -> pd.DataFrame:" in steps
    assert ") -> tuple[pd.DataFrame, int]:" in steps  # sample returns part, holdout
    assert "def summarise(n_trees: int, part: pd.DataFrame, label: str)" in steps


def _call_load(out: Path, csv: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "from validation import steps\n"
        f"print(steps.load(min_rows=1, sales_path={str(csv)!r}).shape)\n"
    )
    return subprocess.run(
        [PYTHON, "-c", code],
        cwd=out,
        env={**os.environ, "PYTHONPATH": str(out / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_step_that_reads_a_file_checks_its_contract(recorded: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("region,amount,extra\nnorth,1.5,x\n")  # extra columns are allowed
    proc = _call_load(recorded, good)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(1, 3)"

    renamed = tmp_path / "renamed.csv"
    renamed.write_text("region,total\nnorth,1.5\n")
    proc = _call_load(recorded, renamed)
    assert proc.returncode != 0
    assert "DataContractError: step load: frame 'sales' lacks column(s) ['amount']" in proc.stderr

    as_text = tmp_path / "text.csv"
    as_text.write_text("region,amount\nnorth,lots\n")
    proc = _call_load(recorded, as_text)
    assert proc.returncode != 0
    assert "step load: frame 'sales': column 'amount' is" in proc.stderr
    assert "expected float64" in proc.stderr


def test_a_step_checks_the_frame_it_takes_in(recorded: Path) -> None:
    code = (
        "import pandas as pd\n"
        "from validation import steps\n"
        "frame = pd.DataFrame({'region': ['n'], 'amount': [1]})\n"  # int64, not float64
        "steps.summarise(n_trees=1, part=frame, label='amount')\n"
    )
    proc = subprocess.run(
        [PYTHON, "-c", code],
        cwd=recorded,
        env={**os.environ, "PYTHONPATH": str(recorded / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "step summarise: frame 'part': column 'amount' is int64, expected float64" in proc.stderr
