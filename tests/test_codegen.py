"""Templates filled with LibCST and imports scheduled with AddImportsVisitor (nbharden.codegen)."""

from __future__ import annotations

import libcst as cst
import pytest

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
