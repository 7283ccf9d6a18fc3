"""Issue 13: a plain ``pip install nbharden`` (no extras) converts a real notebook with recording and
verifies it, and a package whose dependencies are missing is refused with the ``pip install`` line.

The slow test builds nbharden's wheel, installs it into a fresh venv together with the notebook's
own libraries (pandas, scikit-learn, matplotlib) and nothing else, and converts
fixtures/ml/mall_segments there. It uses only the package registries pip is configured with (and
pip's cache): no other network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbharden.dependencies import check_installed, installed_versions, with_lower_bounds
from nbharden.errors import VerificationError

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "ml" / "mall_segments"
NOTEBOOK_LIBRARIES = ("pandas", "scikit-learn", "matplotlib")


def _run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_plain_install_converts_with_recording_and_verifies(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    wheel = next(wheels.glob("nbharden-*.whl"))
    installed = _run(
        [python, "-m", "pip", "install", "-q", str(wheel), *NOTEBOOK_LIBRARIES], tmp_path
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # nothing of the test extra came along by accident
    assert installed_versions(python, ["hypothesis", "mypy"]) == {"hypothesis": None, "mypy": None}
    folder = tmp_path / "nb"
    shutil.copytree(FIXTURE, folder)
    done = _run([str(venv / "bin" / "nbharden"), "convert", "mall_segments.ipynb"], folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout + done.stderr


def test_missing_dependencies_are_named_with_the_pip_install_line(tmp_path: Path) -> None:
    pyproject = (
        "[project]\n"
        'name = "x"\n'
        'dependencies = [\n    "pytest",\n    "nbharden-no-such-distribution",\n]\n'
        "[project.optional-dependencies]\n"
        'test = [\n    "pytest>=8",\n]\n'
    )
    (tmp_path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    with pytest.raises(VerificationError) as raised:
        check_installed(tmp_path, sys.executable)
    message = str(raised.value)
    assert "nbharden-no-such-distribution not installed" in message
    assert f"{sys.executable} -m pip install nbharden-no-such-distribution" in message
    assert "\n" not in message.strip()
    (tmp_path / "pyproject.toml").write_text(
        pyproject.replace('    "nbharden-no-such-distribution",\n', ""), encoding="utf-8"
    )
    check_installed(tmp_path, sys.executable)  # all there: no error


def test_lower_bounds_come_from_the_recorded_versions() -> None:
    text = 'dependencies = [\n    "pandas",\n    "typer",\n    "numpy>=1.20",\n    "odd",\n]\n'
    bounded = with_lower_bounds(text, {"pandas": "2.2.3", "odd": None})
    assert '"pandas>=2.2",' in bounded  # the version the notebook ran with
    assert '"typer>=0.12",' in bounded  # what the generated code needs
    assert '"numpy>=1.20",' in bounded  # the notebook's own pin is kept
    assert '"odd",' in bounded  # nothing known: left as it is
