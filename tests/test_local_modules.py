"""Modules beside the notebook (issue 11, repro 3): found at load, copied into the generated package
under ``vendored/`` with their imports made relative, never listed as PyPI dependencies."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libcst as cst
import pytest

from nbharden import api
from nbharden.local_modules import discover, exports, written_files, written_modules
from nbharden.settings import Settings
from nbharden.transform.vendor import RelativeLocalImports, vendored_files


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "helper.py").write_text("import utils\n\n\ndef norm(v):\n    return utils.sq(v) ** 0.5\n")
    (tmp_path / "utils.py").write_text("__all__ = ['sq']\n\n\ndef sq(v):\n    return v * v\n\n\ndef _x():\n    pass\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "__init__.py").write_text("from tools.sub import double\n")
    (tmp_path / "tools" / "sub.py").write_text("from . import deep\n\n\ndef double(v):\n    return 2 * v\n")
    (tmp_path / "tools" / "deep.py").write_text("X = 1\n")
    (tmp_path / "unused.py").write_text("raise SystemExit\n")
    return tmp_path


def test_discover_finds_what_the_notebook_imports_and_what_that_imports(tmp_path: Path) -> None:
    found = discover(_folder(tmp_path), ["import numpy as np\nfrom helper import norm", "import tools.sub"])
    assert [m.name for m in found] == ["helper", "tools", "utils"]  # numpy: not a local file
    tools = next(m for m in found if m.name == "tools")
    assert [rel for rel, _ in tools.files] == ["tools/__init__.py", "tools/deep.py", "tools/sub.py"]


def test_a_module_the_notebook_writes_once_is_copied_from_its_cell(tmp_path: Path) -> None:
    folder = _folder(tmp_path)  # helper.py on disk: an older run's file, not what the notebook writes now
    cells = ["%%writefile helper.py\nimport utils\ndef norm(v):\n    return v\n", "import helper"]
    assert written_files(cells) == {"helper.py"}
    writes = written_modules(cells)
    assert writes == {"helper.py": "import utils\ndef norm(v):\n    return v\n"}
    found = discover(folder, ["import helper"], written_files(cells), writes)
    assert [m.name for m in found] == ["helper", "utils"]  # and what the written module imports
    assert found[0].files == (("helper.py", writes["helper.py"]),)


@pytest.mark.parametrize(
    "cells",
    [
        ["%%writefile -a helper.py\ndef extra(): pass\n"],  # appended: the file is more than one cell
        ["%%writefile helper.py\nA = 1\n", "%%writefile helper.py\nA = 2\n"],  # rewritten
        ["%%writefile --append helper.py\nA = 1\n", "%%writefile helper.py\nA = 2\n"],
    ],
)
def test_a_module_the_notebook_writes_in_parts_is_not_copied(tmp_path: Path, cells: list[str]) -> None:
    folder = _folder(tmp_path)
    writes = written_modules(cells)
    assert writes == {}
    assert discover(folder, ["import helper"], written_files(cells), writes) == ()


def test_a_written_module_imported_later_runs_in_the_package(make_notebook: Any, tmp_path: Path) -> None:
    nb = make_notebook(
        [
            "%%writefile shapes.py\ndef area(w, h):\n    return w * h\n",
            "import shapes\nresult = shapes.area(3, 4)",
            "print(result)",
        ]
    )
    out = tmp_path / "out"
    changes = api.convert(nb, Settings(out=out, record=False))
    api.write(changes)
    assert (out / "src" / "nb" / "vendored" / "shapes.py").read_text() == "def area(w, h):\n    return w * h\n"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", "from nb.pipeline import run; print(run().result)"],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(out / "src"), "NB_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "12"


def test_exports_follow_all_else_public_names() -> None:
    assert exports("__all__ = ['a']\na = b = 1\n") == ("a",)
    assert exports("import os\nfrom x import y as z\na, _b = 1, 2\ndef f(): pass\nclass C: pass\n") == (
        "os",
        "z",
        "a",
        "f",
        "C",
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("import helper", "from .vendored import helper"),
        ("import helper as h", "from .vendored import helper as h"),
        ("from helper import norm, sq as s", "from .vendored.helper import norm, sq as s"),
        ("from utils import *", "from .vendored.utils import sq"),
        ("import tools.sub as ts", "from .vendored.tools import sub as ts"),
        (
            "import tools.sub",
            "from .vendored import tools; from .vendored.tools import sub as _tools_sub  # noqa: F401",
        ),
        ("import os, helper", "import os; from .vendored import helper"),
        ("import numpy as np", "import numpy as np"),
        ("from . import x", "from . import x"),
    ],
)
def test_imports_of_local_modules_become_relative(tmp_path: Path, before: str, after: str) -> None:
    modules = {m.name: m for m in discover(_folder(tmp_path), ["import helper, tools, utils"])}
    rewritten = cst.parse_module(before + "\n").visit(RelativeLocalImports(modules, ".vendored"))
    assert rewritten.code.strip() == after


def test_the_copies_import_each_other_relatively(tmp_path: Path) -> None:
    files = vendored_files(discover(_folder(tmp_path), ["import helper, tools"]), "pkg")
    assert sorted(files) == [
        "src/pkg/vendored/__init__.py",
        "src/pkg/vendored/helper.py",
        "src/pkg/vendored/tools/__init__.py",
        "src/pkg/vendored/tools/deep.py",
        "src/pkg/vendored/tools/sub.py",
        "src/pkg/vendored/utils.py",
    ]
    assert files["src/pkg/vendored/helper.py"].startswith("from . import utils\n")
    assert files["src/pkg/vendored/tools/__init__.py"] == "from ..tools.sub import double\n"
    assert files["src/pkg/vendored/tools/sub.py"].startswith("from . import deep\n")  # already relative


def test_convert_vendors_and_never_lists_a_local_module_as_a_dependency(
    make_notebook: Callable[..., Path],
) -> None:
    nb = make_notebook(["import numpy as np\nfrom helper import norm", "n = norm(np.float64(3))"])
    _folder(nb.parent)
    generated = api.generate(nb, Settings(record=False, verify=False, out=nb.parent / "out"))
    files = generated.tree.as_dict()
    package = generated.plan.package
    assert "helper" not in generated.plan.dependencies and "utils" not in generated.plan.dependencies
    assert "numpy" in generated.plan.dependencies
    assert "from .vendored.helper import norm" in files[f"src/{package}/steps.py"]
    # copied as written (not formatted: it is the notebook author's code), imports made relative
    assert files[f"src/{package}/vendored/utils.py"] == (nb.parent / "utils.py").read_text()
    assert f'extend-exclude = ["src/{package}/vendored"]' in files["pyproject.toml"]
