"""translate_magics: one before/after pair per row of the table in nbharden.transform.magics, the
rule each reports and what it needs (subprocess, os, pathlib, dependencies); pip_requirements()
parsing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import libcst as cst
import pytest

from nbharden.masking import mask_ipython
from nbharden.transform.magics import (
    MagicResult,
    UserMagic,
    pip_requirements,
    translate_magics,
    user_magics,
)


def translate(source: str, cell: int = 3) -> MagicResult:
    """Mask the cell as ``load`` does, then translate."""
    return translate_magics(cst.parse_module(mask_ipython(source)), cell)


def codes(result: MagicResult) -> list[tuple[str, int, int]]:
    return [(f.code, f.span.cell, f.span.line) for f in result.findings if f.span is not None]


# (notebook source, generated code, [(rule, line)], needs) - the table rows first, then the
# neighbours.
CASES = [
    pytest.param(
        "%matplotlib inline\nx = 1\n", "x = 1\n", [("NBH503", 1)], "", id="matplotlib-inline"
    ),
    pytest.param("%timeit -n 3 f(x)\n", "f(x)\n", [("NBH503", 1)], "", id="timeit-line"),
    pytest.param(
        "%%time\ny = f(2)\nprint(y)\n", "y = f(2)\nprint(y)\n", [("NBH503", 1)], "", id="time-cell"
    ),
    pytest.param("!pip install x\n", "\n", [("NBH501", 1)], "", id="bang-pip-install"),
    pytest.param(
        "!ls data\n",
        "subprocess.run('ls data', shell=True, check=False)\n",
        [("NBH504", 1)],
        "subprocess",
        id="bang-shell",
    ),
    pytest.param(
        "files = !ls\n",
        "files = subprocess.run('ls', shell=True, capture_output=True, text=True, check=False)"
        ".stdout.splitlines()\n",
        [("NBH504", 1)],
        "subprocess",
        id="captured-shell",
    ),
    pytest.param(
        "%%writefile f.py\nprint('hi')\n",
        "Path('f.py').write_text(\"print('hi')\\n\", encoding='utf-8')\n",
        [("NBH503", 1)],
        "path",
        id="writefile",
    ),
    # the docstring's table says NBH502 for %load_ext; the rule registry and the code say NBH503
    # (session-only)
    pytest.param("%load_ext foo\n", "\n", [("NBH503", 1)], "", id="load-ext"),
    pytest.param("%env A=1\n", "os.environ['A'] = '1'\n", [("NBH503", 1)], "os", id="env-set"),
    pytest.param("%env\n", "\n", [("NBH503", 1)], "", id="env-show"),
    pytest.param("%pip install x==1.0 -q\n", "\n", [("NBH501", 1)], "", id="percent-pip"),
    pytest.param(
        "!echo hi\n",
        "subprocess.run('echo hi', shell=True, check=False)\n",
        [("NBH504", 1)],
        "subprocess",
        id="bang-echo",
    ),
    pytest.param(
        "%sx ls\n",
        "subprocess.run('ls', shell=True, check=False)\n",
        [("NBH504", 1)],
        "subprocess",
        id="sx",
    ),
    pytest.param(
        "%%bash\necho hi\nls\n",
        "subprocess.run('echo hi\\nls\\n', shell=True, check=False)\n",
        [("NBH504", 1)],
        "subprocess",
        id="bash-cell",
    ),
    pytest.param("%%html\n<b>x</b>\n", "\n", [("NBH503", 1)], "", id="html-cell"),
    pytest.param("%store x\n", "\n", [("NBH502", 1)], "", id="unknown-line-magic"),
    pytest.param("!echo {x}\n", "\n", [("NBH502", 1)], "", id="shell-interpolation"),
    pytest.param("t = %timeit -o f()\n", "t = f()\n", [("NBH503", 1)], "", id="timeit-as-value"),
    pytest.param("%time x = f()\n", "x = f()\n", [("NBH503", 1)], "", id="time-statement"),
    pytest.param("x = 1\n%time\n", "x = 1\n", [("NBH503", 2)], "", id="empty-time-line-2"),
    pytest.param(
        "%%timeit -n 2 setup()\nf()\n",
        "setup()\nf()\n",
        [("NBH503", 1)],
        "",
        id="timeit-cell-setup",
    ),
    pytest.param("%%capture out\nf()\n", "f()\n", [("NBH503", 1)], "", id="capture-cell"),
    pytest.param(
        "%%writefile -a log.txt\nline\n",
        "with open('log.txt', 'a', encoding='utf-8') as _fh:\n    _fh.write('line\\n')\n",
        [("NBH503", 1)],
        "path",
        id="writefile-append",
    ),
    pytest.param(
        "for i in range(2):\n    !echo hi\n",
        "for i in range(2):\n    subprocess.run('echo hi', shell=True, check=False)\n",
        [("NBH504", 2)],
        "subprocess",
        id="shell-in-loop",
    ),
    pytest.param(
        "if True:\n    %matplotlib inline\n",
        "if True:\n    pass\n",
        [("NBH503", 2)],
        "",
        id="emptied-block-gets-pass",
    ),
    pytest.param(
        "%%time\n!echo hi\n",
        "subprocess.run('echo hi', shell=True, check=False)\n",
        [("NBH503", 1), ("NBH504", 1)],
        "subprocess",
        id="magic-inside-time-cell",
    ),
    pytest.param("x?\n", "\n", [("NBH503", 1)], "", id="help-question-mark"),
    pytest.param("y = 2\n", "y = 2\n", [], "", id="plain-python-untouched"),
]


@pytest.mark.parametrize(("source", "expected", "rules", "needs"), CASES)
def test_translate_magics(
    source: str, expected: str, rules: list[tuple[str, int]], needs: str
) -> None:
    result = translate(source, cell=3)
    assert result.module.code == expected
    assert codes(result) == [(code, 3, line) for code, line in rules]
    assert (result.needs_subprocess, result.needs_os, result.needs_path) == (
        needs == "subprocess",
        needs == "os",
        needs == "path",
    )
    assert "get_ipython" not in result.module.code
    compile(result.module.code, "<translated>", "exec")


def test_pip_install_becomes_a_dependency_and_nothing_else() -> None:
    result = translate(
        "!pip install tabulate==0.9.0 'requests[socks]>=2'\n%pip install -q seaborn\n"
    )
    assert result.dependencies == ["tabulate==0.9.0", "requests[socks]>=2", "seaborn"]
    assert codes(result) == [("NBH501", 3, 1), ("NBH501", 3, 2)]
    assert result.module.code.strip() == ""


def test_removed_magics_are_never_silent() -> None:
    """Every magic that disappears leaves a finding (the tool says what it did)."""
    source = "%matplotlib inline\n%store x\n!pip install a\n%load_ext foo\n!echo {x}\n"
    result = translate(source)
    assert result.module.code.strip() == ""
    assert codes(result) == [
        ("NBH503", 3, 1),
        ("NBH502", 3, 2),
        ("NBH501", 3, 3),
        ("NBH503", 3, 4),
        ("NBH502", 3, 5),
    ]


def test_translated_shell_commands_really_run(tmp_path: Path) -> None:
    """The subprocess calls made for ``!cmd`` and ``x = !cmd`` run and give what IPython gave."""
    (tmp_path / "a.txt").write_text("1")
    (tmp_path / "b.txt").write_text("2")
    result = translate("files = !ls\n!echo hi > out.txt\n")
    code = "import subprocess\n" + result.module.code
    script = tmp_path / "script.py"
    script.write_text(code + "print(files)\n")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == "['a.txt', 'b.txt', 'script.py']"
    assert (tmp_path / "out.txt").read_text() == "hi\n"


def test_env_magic_sets_the_environment() -> None:
    result = translate("%env MODE=prod\n")
    fake_os = SimpleNamespace(environ={})  # the real environment stays untouched
    exec(result.module.code, {"os": fake_os})
    assert fake_os.environ == {"MODE": "prod"}


def test_timeit_flag_without_value_keeps_the_statement() -> None:
    assert translate("%timeit -q x + 1\n").module.code == "x + 1\n"


# --- pip_requirements -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("pip install x", ["x"]),
        ("install -q pandas==2.0 'numpy>=1'", ["pandas==2.0", "numpy>=1"]),
        ("pip3 install a b", ["a", "b"]),
        ("pip install -U --quiet seaborn scikit-learn", ["seaborn", "scikit-learn"]),
        ("pip install 'requests[socks]>=2'", ["requests[socks]>=2"]),
        ("pip install --index-url https://example.org/simple y", ["y"]),
        ("pip install -t /tmp/t x", ["x"]),
        ("conda install -c conda-forge x", ["x"]),
        ("mamba install z", ["z"]),
        # not a requirement we can name: files, local folders, VCS links, variables
        ("pip install -r requirements.txt", []),
        ("pip install .", []),
        ("pip install -e ./local", []),
        ("pip install git+https://github.com/a/b", []),
        ("pip install $PKG", []),
        ("pip install {pkg}", []),
        # not an install
        ("pip uninstall x", []),
        ("pip list", []),
        ("", []),
    ],
)
def test_pip_requirements(args: str, expected: list[str]) -> None:
    assert pip_requirements(args) == expected


def test_pip_requirements_never_keeps_quotes() -> None:
    assert all('"' not in r and "'" not in r for r in pip_requirements('pip install "x'))


def test_user_magics_are_found_by_their_decorators() -> None:
    source = (
        "from IPython.core import magic\n"
        "@register_line_magic\ndef hello(line): ...\n"
        '@register_cell_magic("table")\ndef parse(line, cell): ...\n'
        "@magic.register_line_cell_magic\ndef both(line, cell=None): ...\n"
        "@register_cell_magic(NAME)\ndef computed(line, cell): ...\n"
        "def plain(line): ...\n"
    )
    assert user_magics(mask_ipython(source)) == {
        "hello": UserMagic("hello", "line"),
        "table": UserMagic("parse", "cell"),
        "both": UserMagic("both", "line_cell"),
    }
    assert user_magics("def (:\n") == {}


def test_a_magic_the_notebook_defines_becomes_a_call_of_its_function() -> None:
    """IPython calls the registered function with the line (and the cell body): so does the
    generated code, and the value a cell magic shows is kept."""
    magics = {
        "hello": UserMagic("hello", "line"),
        "table": UserMagic("parse", "cell"),
        "both": UserMagic("both", "line_cell"),
    }
    source = "%hello french\nx = %both a b\n%hello\n"
    result = translate_magics(cst.parse_module(mask_ipython(source)), 4, magics)
    assert result.module.code == "hello('french')\nx = both('a b')\nhello('')\n"
    assert codes(result) == [("NBH503", 4, 1), ("NBH503", 4, 2), ("NBH503", 4, 3)]
    cell = translate_magics(cst.parse_module(mask_ipython("%%table b\na,b\n1,2\n")), 5, magics)
    assert cell.module.code == "parse('b', 'a,b\\n1,2\\n')\n"
    assert [f.message for f in cell.findings] == ["'%%table' calls the notebook's own parse()"]


def test_a_magic_used_as_the_wrong_kind_is_not_called() -> None:
    """``%%hello`` for a line magic (IPython's UsageError): removed with a warning, not called."""
    magics = {"hello": UserMagic("hello", "line")}
    result = translate_magics(cst.parse_module(mask_ipython("%%hello\nbody\n")), 2, magics)
    assert "hello(" not in result.module.code
    assert codes(result) == [("NBH502", 2, 1)]
