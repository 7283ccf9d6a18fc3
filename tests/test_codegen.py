"""Templates filled with LibCST and imports scheduled with AddImportsVisitor (nbharden.codegen)."""

from __future__ import annotations

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.codemod.visitors import ImportItem as LibCSTImportItem

from nbharden.codegen import ImportItem, add_imports, fill_template, prepend_parameters, string
from nbharden.errors import InternalError

HOLES = ("HELP", "EPILOG", "SECRETS", "GIVEN")


def _filled() -> cst.Module:
    return fill_template(
        "cli_main.py",
        "Command line of the demo pipeline.",
        {
            "HELP": string("Run it."),
            "EPILOG": string('with "quotes" and \\ backslash'),
            "SECRETS": cst.Tuple([cst.Element(string("api_key"))]),
            "GIVEN": cst.Dict([cst.DictElement(string("alpha"), cst.Name("alpha"))]),
        },
    )


def test_a_filled_template_has_its_values_where_the_holes_were_and_no_hole_left() -> None:
    code = _filled().code
    assert code.startswith('"""Command line of the demo pipeline."""\n')
    for hole in HOLES:
        assert hole not in code.replace("Optional", "")  # (no hole is a word of another name)
    assert "help='Run it.'" in code and "epilog='with \"quotes\" and \\\\ backslash'" in code
    assert "name in ('api_key',):" in code and "n not in ('api_key',))" in code
    assert "given: dict[str, Any] = {'alpha': alpha}" in code
    compile(code, "__main__.py", "exec")


def test_a_hole_the_template_does_not_have_is_an_internal_error() -> None:
    with pytest.raises(InternalError, match="NO_SUCH_HOLE"):
        fill_template("cli_main.py", "doc", {"NO_SUCH_HOLE": string("x")})


def test_parameters_go_first_in_the_named_function_only() -> None:
    module = cst.parse_module(
        "def main(b: int = 1) -> None:\n    pass\n\n\ndef other(c):\n    pass\n"
    )
    param = cst.Param(cst.Name("a"), cst.Annotation(cst.Name("str")), default=cst.Name("None"))
    code = prepend_parameters(module, "main", [param]).code
    assert "def main(a: str = None, b: int = 1) -> None:" in code
    assert "def other(c):" in code


def test_scheduled_imports_merge_with_the_modules_own_and_are_never_doubled() -> None:
    module = cst.parse_module('"""Doc."""\nfrom pydantic import Field\n\nx = Field()\n')
    items = [ImportItem("pydantic", "model_validator"), ImportItem("pydantic", "Field")]
    items += [ImportItem("typing", "Any"), ImportItem("typing", "Any")]
    code = add_imports(module, items).code
    assert "from pydantic import model_validator, Field\n" in code  # (the formatter sorts them)
    assert code.count("Any") == 1 and code.count("Field") == 2
    assert add_imports(module, []) is module


def test_a_function_left_out_of_a_template_is_gone_and_the_rest_kept() -> None:
    holes = {"NOTEBOOK_FOLDER": cst.Name("PROJECT_DIR"), "SETTINGS": cst.Name("S")}
    kept = fill_template("config.py", "Config.", holes).code
    left = fill_template("config.py", "Config.", holes, leave_out=("default_output_dir",)).code
    assert "def default_output_dir" in kept and "def default_output_dir" not in left
    assert "def default_data_dir" in left and "NOTEBOOK_DIR = PROJECT_DIR\n" in left
    assert "model_config = S\n" in left and "NOTEBOOK_FOLDER" not in left


# add_imports does what AddImportsVisitor does without importing libcst.codemod, and fill_template visits only
# the statements that read a hole or define a function given parameters (both for speed, issue 17). Each must
# give exactly what LibCST gives on the whole module, whatever the module: drawn from pieces that move the split
# point, merge into the module's imports (plain, aliased, starred, dotted, relative) or are already there.
_HEADS = ['"""Doc."""\n', "__strict__ = True\n", "'not a docstring' + 'x'\n", "", "# comment\n"]
_LINES = [
    "from __future__ import annotations\n",
    "import os\n",
    "import os.path as osp\n",
    "from pydantic import Field\n",
    "from typing import *\n",
    "from . import steps\n",
    "from .config import Config\n",
    "import json; import re\n",
    "x = Field()\n",
    "# a comment line\nclass A:\n    from typing import Any\n    y: Any = 1\n",
    "def f():\n    import os\n    return os\n",
    "if True:\n    import sys\n",
    "\n\n",
    '"""Late string."""\n',
    "from pydantic import Field as F, SecretStr\n",
    "from typing import (\n    Any,\n    TYPE_CHECKING,\n)\n",
    "from os.path import join\n",
    "import numpy as np, os\n",
    "from __future__ import division\n",
    "from collections import *\n",
    "from collections import OrderedDict\n",
    "from .pydantic import Field\n",
]
_ITEMS = [
    ImportItem("__future__", "annotations"),
    ImportItem("os"),
    ImportItem("os.path", alias="osp"),
    ImportItem("pydantic", "Field"),
    ImportItem("pydantic", "SecretStr"),
    ImportItem("typing", "Any"),
    ImportItem("typing", "TYPE_CHECKING"),
    ImportItem("numpy", alias="np"),
    ImportItem("collections", "OrderedDict", "OD"),
    ImportItem("", "steps", "the_steps", relative=1),
    ImportItem("config", "Config", relative=1),
    ImportItem("support", "step_log", relative=1),
    ImportItem("pydantic", "Field", "F"),
    ImportItem("pydantic", "SecretStr", "S"),
    ImportItem("os.path", "join"),
    ImportItem("collections", "OrderedDict"),
    ImportItem("numpy"),
    ImportItem("pkg", alias="p", relative=2),
    ImportItem("helpers", relative=1),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    head=st.sampled_from(_HEADS),
    lines=st.lists(st.sampled_from(_LINES), max_size=8),
    items=st.lists(st.sampled_from(_ITEMS), max_size=6),
)
def test_add_imports_equals_libcst_on_the_whole_module(
    head: str, lines: list[str], items: list[ImportItem]
) -> None:
    module = cst.parse_module(head + "".join(lines))
    theirs = [LibCSTImportItem(i.module_name, i.obj_name, i.alias, i.relative) for i in items]
    ours = add_imports(module, items).code
    try:
        whole = AddImportsVisitor(CodemodContext(), theirs).transform_module(module).code
    except TypeError:  # LibCST cannot sort a name imported both with and without ``as``; nbharden can
        compile(ours, "<drawn>", "exec")
        return
    assert ours == (whole if items else module.code)


class _WholeFill(cst.CSTTransformer):
    def __init__(self, values: dict[str, cst.BaseExpression]) -> None:
        self.values = values

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        value = self.values.get(updated_node.value)
        return updated_node if value is None else value.deep_clone()


_TEMPLATES = {
    "cli_main.py": {
        "HELP": string("Run it."),
        "EPILOG": string("e"),
        "SECRETS": cst.Tuple([cst.Element(string("api_key"))]),
        "GIVEN": cst.Dict([cst.DictElement(string("alpha"), cst.Name("alpha"))]),
    },
    "config.py": {"NOTEBOOK_FOLDER": cst.Name("PROJECT_DIR"), "SETTINGS": cst.Name("S")},
}


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(_TEMPLATES)),
    holes=st.data(),
    leave_out=st.sets(st.sampled_from(["default_output_dir", "main", "_Command", "nothing"])),
    params=st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3),
)
def test_fill_template_equals_filling_the_whole_module(
    name: str, holes: st.DataObject, leave_out: set[str], params: list[str]
) -> None:
    from nbharden.templates import template_text

    values = _TEMPLATES[name]
    chosen = holes.draw(st.sets(st.sampled_from(sorted(values))))
    given_holes = {h: values[h] for h in sorted(chosen)}
    new = [cst.Param(cst.Name(p), default=cst.Integer("1")) for p in params]
    got = fill_template(name, "Doc.", given_holes, tuple(leave_out), prepend={"main": new}).code

    module = cst.parse_module(template_text(name))
    body = [
        cst.parse_statement('"""Doc."""\n'),
        *(
            s
            for s in module.body[1:]
            if _hole_name(s) not in given_holes
            and not (isinstance(s, cst.FunctionDef | cst.ClassDef) and s.name.value in leave_out)
        ),
    ]
    whole = module.with_changes(body=body).visit(_WholeFill(given_holes))
    assert isinstance(whole, cst.Module)
    assert got == prepend_parameters(whole, "main", new).code


def _hole_name(statement: cst.BaseStatement) -> str | None:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    target = (
        small.target
        if isinstance(small, cst.AnnAssign)
        else small.targets[0].target if isinstance(small, cst.Assign) else None
    )
    return target.value if isinstance(target, cst.Name) else None
