"""Same input, same bytes: two conversions in two processes with different hash seeds and time zones
give identical trees; converting and writing never touches the notebook; formatting the formatted
tree changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbharden import api
from nbharden.fmt import format_tree
from nbharden.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "golden"
_VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable
# Rich fixtures: magics, config fields, sections, plots, mutation.
FIXTURES = [
    "magics",
    "markdown_sections",
    "parameters_cell",
    "plotting",
    "mutation_aliasing",
    "late_globals",
]

_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from nbharden import api
from nbharden.settings import Settings
for arg in sys.argv[1:]:
    nb = Path(arg)
    # convert, not generate: the change set also carries the manifest (.nbharden.json)
    changes = api.convert(nb, Settings(out=nb.parent / "out", record=False))
    files = {c.path: hashlib.sha256(c.new_text.encode()).hexdigest()
             for c in changes.changes if c.new_text}
    findings = [f.to_json(nb.name) for f in changes.findings]
    print(json.dumps({"stem": nb.stem, "files": files, "findings": findings,
                      "plan": changes.plan.to_json()}, sort_keys=True))
"""


def _copy(stem: str, dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copy2(GOLDEN / f"{stem}.ipynb", dest / f"{stem}.ipynb")
    shutil.copytree(GOLDEN / "data", dest / "data")
    return dest / f"{stem}.ipynb"


@pytest.mark.slow
def test_two_processes_with_different_hash_seeds_and_time_zones_agree(tmp_path: Path) -> None:
    # the same path in both runs: only the process environment differs
    notebooks = [str(_copy(stem, tmp_path / stem)) for stem in FIXTURES]
    procs = []
    for seed, tz in (("1", "UTC"), ("4242", "Pacific/Kiritimati")):
        env = dict(os.environ, PYTHONHASHSEED=seed, TZ=tz)
        procs.append(
            subprocess.Popen(
                [PYTHON, "-c", _SCRIPT, *notebooks],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        outputs.append(stdout)
    first, second = outputs
    assert len(first.splitlines()) == len(FIXTURES)
    for a, b in zip(first.splitlines(), second.splitlines(), strict=True):
        left, right = json.loads(a), json.loads(b)
        assert ".nbharden.json" in left["files"]
        assert left["files"] == right["files"], f"{left['stem']}: trees differ between processes"
        assert left == right


def test_convert_and_write_leave_the_notebook_alone(tmp_path: Path) -> None:
    notebook = _copy("parameters_cell", tmp_path / "nb")
    before_bytes = notebook.read_bytes()
    os.utime(
        notebook, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000)
    )  # a distinctive mtime
    before_stat = notebook.stat()
    data_before = {p.name: p.read_bytes() for p in (notebook.parent / "data").iterdir() if p.is_file()}
    settings = Settings(out=notebook.parent / "out", record=False)
    api.write(api.convert(notebook, settings), settings)
    # a second convert over the written output: nothing to change
    again = api.convert(notebook, settings)
    assert not again.has_changes
    after_stat = notebook.stat()
    assert notebook.read_bytes() == before_bytes
    assert after_stat.st_mtime_ns == before_stat.st_mtime_ns
    assert after_stat.st_size == before_stat.st_size
    assert {p.name: p.read_bytes() for p in (notebook.parent / "data").iterdir() if p.is_file()} == data_before
    # nothing was written next to the notebook but the output folder
    assert sorted(p.name for p in notebook.parent.iterdir()) == [
        "data",
        "out",
        "parameters_cell.ipynb",
    ]
    assert (
        hashlib.sha256(notebook.read_bytes()).hexdigest()
        == hashlib.sha256(before_bytes).hexdigest()
    )


@pytest.mark.parametrize("stem", ["magics", "markdown_sections", "conflicting_imports"])
def test_formatting_is_idempotent(stem: str, tmp_path: Path) -> None:
    notebook = _copy(stem, tmp_path / "nb")
    settings = Settings(out=notebook.parent / "out", record=False)
    tree = api.generate(notebook, settings).tree
    assert format_tree(tree, settings=settings) == tree


@pytest.mark.parametrize("stem", ["markdown_sections", "relative_csv"])
def test_the_output_folders_name_is_not_in_the_output(stem: str, tmp_path: Path) -> None:
    """Two sibling output folders with different names get the same bytes, manifest included (the corpus
    funnel converts into NB_prod and NB_prod2 and compares): nothing generated names its own folder."""
    nb = _copy(stem, tmp_path / "nb")
    trees = []
    for name in ("out", "elsewhere_prod2"):
        changes = api.convert(nb, Settings(out=nb.parent / name, record=False))
        trees.append({c.path: c.new_text for c in changes.changes if c.new_text})
    assert trees[0].keys() == trees[1].keys()
    differ = [path for path in trees[0] if trees[0][path] != trees[1][path]]
    assert not differ, differ
    assert ".nbharden.json" in trees[0] and "README.md" in trees[0]
