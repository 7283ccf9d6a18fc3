"""``strict_types._with_header_lines`` (issue 17): the mypy note added to a module's header in its generated
text, which must be what generating the module again with the longer header gives, for any module."""

from __future__ import annotations

import libcst as cst
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fixture_cells import fixture_cells

from nbharden.strict_types import (
    ANY_RETURN_NOTE,
    _comment_lines,
    _with_header_lines,
    complete_annotations,
)

_LINES = st.lists(
    st.builds(
        cst.EmptyLine,
        indent=st.booleans(),
        whitespace=st.sampled_from([cst.SimpleWhitespace(""), cst.SimpleWhitespace("  ")]),
        comment=st.one_of(
            st.none(),
            st.sampled_from(["#", "# a note", "#!python", "# -*- coding: utf-8 -*-"]).map(
                cst.Comment
            ),
        ),
    ),
    max_size=4,
)
_BODIES = st.sampled_from(
    ["", "x = 1\n", '"""Doc."""\n\nimport os\n', "def f():\n    return 1\n", "# only\n"]
)


@settings(max_examples=300, deadline=None)
@given(header=_LINES, body=_BODIES, newline=st.sampled_from(["\n", "\r\n"]), added=_LINES)
def test_header_lines_go_in_as_generating_again_puts_them(
    header: list[cst.EmptyLine], body: str, newline: str, added: list[cst.EmptyLine]
) -> None:
    module = cst.parse_module(body.replace("\n", newline)).with_changes(header=header)
    expected = module.with_changes(header=[*module.header, *added]).code
    assert _with_header_lines(module, module.code, added) == expected


def test_on_every_fixture_cell_too() -> None:
    note = _comment_lines(ANY_RETURN_NOTE)
    for _, _, module in fixture_cells():
        expected = module.with_changes(header=[*module.header, *note]).code
        assert _with_header_lines(module, module.code, note) == expected


def test_the_note_is_added_once() -> None:
    code = "import pandas as pd\n\n\ndef f() -> pd.DataFrame:\n    return pd.DataFrame()\n"
    once = complete_annotations(cst.parse_module(code))
    assert once.count("disable-error-code") == 1 and once.startswith("# Values of libraries")
    assert complete_annotations(once) == once
