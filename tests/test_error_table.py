"""The error contract (RELIABILITY.md), row by row, through the real command line.

One fixture per row (fixtures/broken/ for bad input, fixtures/record/failing.ipynb for a notebook
that fails when run, fixtures/cli/clean.ipynb for the hand-edit and internal-error rows), with the
exact exit code and the exact one-line message. Bad input goes through ``nbharden analyze`` and
``nbharden convert`` in process (Typer's CliRunner), all of it once more in a real subprocess; the
failing notebook runs a real kernel.

| input                          | exit | message shape                                            |
| not JSON, BOM, duplicate key   | 2    | nb.ipynb: not valid notebook JSON (line L, col C): reason |
| not UTF-8                      | 2    | nb.ipynb: not UTF-8 (byte 0xE9 at offset N)               |
| too deep or too large          | 2    | nb.ipynb: refused: nesting deeper than N                  |
|   (also code nested too deep for LibCST, more than max-bytes, max-code-cells, max-syntax-nodes) |
| bad or missing nbformat        | 2    | nb.ipynb: unsupported nbformat version ...                |
| schema violation               | 2    | nb.ipynb: invalid notebook at cells[3].outputs: ...       |
| syntax error in a cell         | 2    | nb.ipynb:cell 4:1:7: Missing parentheses in call to ...   |
| non-Python kernel              | 2    | nb.ipynb: kernel language 'R' is not supported            |
| notebook fails when run        | 3    | nb.ipynb:cell 5: NameError: ... (+ hidden-state hint)     |
| generated file edited by hand  | 1    | src/pkg/steps.py: edited since generation; use --force... |
| anything else                  | 123  | internal error (please report): ...                       |
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nbharden.cli.app import app
from nbharden.errors import InputError
from nbharden.load import load
from nbharden.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "fixtures" / "broken"

#: (fixture in fixtures/broken, exact message after "name: " or "name:cell N:L:C: ")
BAD_INPUT: list[tuple[str, str]] = [
    # not JSON, BOM, duplicate key
    (
        "not_json.ipynb",
        "not_json.ipynb: not valid notebook JSON (line 45, col 1): "
        "Expecting property name enclosed in double quotes",
    ),
    (
        "bom.ipynb",
        "bom.ipynb: not valid notebook JSON (line 1, col 1): starts with a byte order mark (BOM); "
        "save the file as UTF-8 without BOM",
    ),
    (
        "duplicate_key.ipynb",
        "duplicate_key.ipynb: not valid notebook JSON (line 14, col 4): duplicate key 'source'",
    ),
    # not UTF-8
    ("not_utf8.ipynb", "not_utf8.ipynb: not UTF-8 (byte 0xE9 at offset 108)"),
    # too deep (too large: test_too_large below)
    ("too_deep.ipynb", "too_deep.ipynb: refused: nesting deeper than 64"),
    (
        "deep_expression.ipynb",
        "deep_expression.ipynb:cell 2: refused: code nested too deeply to compile",
    ),
    (
        "deep_code.ipynb",
        "deep_code.ipynb:cell 1:1:9: refused: code nested deeper than 100 levels "
        "(LibCST would run out of stack); split it into smaller statements",
    ),
    # bad or missing nbformat
    (
        "missing_nbformat.ipynb",
        "missing_nbformat.ipynb: unsupported nbformat version: the 'nbformat' key is missing; "
        "nbharden reads nbformat 3 and 4",
    ),
    (
        "nbformat_99.ipynb",
        "nbformat_99.ipynb: unsupported nbformat version 99; nbharden reads nbformat 3 and 4",
    ),
    (
        "missing_minor.ipynb",
        "missing_minor.ipynb: unsupported nbformat version 4 with nbformat_minor null; "
        "expected a non-negative integer",
    ),
    # schema violation
    (
        "schema_violation.ipynb",
        "schema_violation.ipynb: invalid notebook at cells[3].outputs: 5 is not of type 'array'",
    ),
    (
        "unknown_cell_type.ipynb",
        'unknown_cell_type.ipynb: invalid notebook at cells[2]: unknown cell_type "heading"; '
        "expected one of raw, markdown, code",
    ),
    (
        "top_level_array.ipynb",
        "top_level_array.ipynb: invalid notebook at top level: expected a JSON object, got an array",
    ),
    # syntax error in a cell
    (
        "python2_print.ipynb",
        "python2_print.ipynb:cell 4:1:7: Missing parentheses in call to 'print'. "
        "Did you mean print(...)?",
    ),
    (
        "python2_except.ipynb",
        "python2_except.ipynb:cell 4:3:8: multiple exception types must be parenthesized",
    ),
    (
        "syntax_error.ipynb",
        "syntax_error.ipynb:cell 4:2:3: invalid syntax. Perhaps you forgot a comma?",
    ),
    (
        "nul_in_code.ipynb",
        "nul_in_code.ipynb:cell 4:2:7: source code string cannot contain null bytes",
    ),
    # IPython joins the continued magic line: the error is still reported at the original line 4
    (
        "magic_then_syntax_error.ipynb",
        "magic_then_syntax_error.ipynb:cell 2:4:5: Missing parentheses in call to 'print'. "
        "Did you mean print(...)?",
    ),
    # IPython strips the common indent: the column is still the original one
    ("indented_syntax_error.ipynb", "indented_syntax_error.ipynb:cell 2:2:9: '(' was never closed"),
    # non-Python kernel
    ("r_kernel.ipynb", "r_kernel.ipynb: kernel language 'R' is not supported"),
]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The broken fixtures, copied into the working folder the test runs in."""
    for path in BROKEN.glob("*.ipynb"):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "nbharden", *args],
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_every_broken_fixture_is_a_row() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.ipynb")) == sorted(name for name, _ in BAD_INPUT)


@pytest.mark.parametrize(("name", "line"), BAD_INPUT, ids=[name for name, _ in BAD_INPUT])
@pytest.mark.parametrize("command", ["analyze", "convert"])
def test_bad_input_exit_2_one_exact_line(
    runner: CliRunner, broken: Path, command: str, name: str, line: str
) -> None:
    args = [command, name] + (
        ["--no-record", "--no-verify", "-o", "out"] if command == "convert" else []
    )
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stderr) == (2, line + "\n")
    assert result.stdout == ""
    assert not (broken / "out").exists()
    # the library says the same, with the location in the exception's fields
    with pytest.raises(InputError) as info:
        load(Path(name), settings=Settings())
    assert str(info.value) == line


def test_bad_input_through_the_real_entry_point(broken: Path) -> None:
    """All bad notebooks in one real process: one exact line each, in order, and exit 2."""
    proc = run_cli("analyze", *(name for name, _ in BAD_INPUT), cwd=broken)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [line for _, line in BAD_INPUT]
    assert "Traceback" not in proc.stdout + proc.stderr


def _code_size(path: Path) -> tuple[int, int]:
    """Code cells and syntax nodes (what max-code-cells and max-syntax-nodes count)."""
    nb = load(path, settings=Settings())
    nodes = sum(sum(1 for _ in ast.walk(ast.parse(c.code))) for c in nb.code_cells)
    return len(nb.code_cells), nodes


@pytest.mark.parametrize("key", ["max-bytes", "max-code-cells", "max-syntax-nodes"])
def test_too_large(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """The size limits from [tool.nbharden] (defaults: 200 MB, 2000 code cells, 50000 syntax
    nodes): one over is refused, exactly at the limit is fine."""
    source = ROOT / "fixtures" / "cli" / "clean.ipynb"
    shutil.copy(source, tmp_path / "big.ipynb")
    cells, nodes = _code_size(source)
    size = {"max-bytes": source.stat().st_size, "max-code-cells": cells, "max-syntax-nodes": nodes}
    limit = size[key] - 1
    last_code_cell = load(source, settings=Settings()).code_cells[-1].index
    expected = {
        "max-bytes": f"big.ipynb: refused: file larger than {limit} bytes",
        "max-code-cells": f"big.ipynb: refused: {cells} code cells, more than the {limit} "
        "nbharden converts (max-code-cells in [tool.nbharden])",
        "max-syntax-nodes": f"big.ipynb:cell {last_code_cell}: refused: the code up to this cell "
        f"has more than {limit} syntax nodes, the most nbharden converts (max-syntax-nodes in "
        "[tool.nbharden])",
    }[key]
    (tmp_path / "pyproject.toml").write_text(f"[tool.nbharden]\n{key} = {limit}\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["analyze", "big.ipynb"])
    assert (result.exit_code, result.stderr) == (2, expected + "\n")
    (tmp_path / "pyproject.toml").write_text(f"[tool.nbharden]\n{key} = {limit + 1}\n")
    assert runner.invoke(app, ["analyze", "big.ipynb"]).exit_code == 0


@pytest.mark.slow
def test_notebook_fails_when_run_exit_3(tmp_path: Path) -> None:
    """A real kernel runs the notebook: the failing cell, and the hidden-state hint (cell 3 ran
    before cell 2 in the saved notebook)."""
    shutil.copy(ROOT / "fixtures" / "record" / "failing.ipynb", tmp_path / "failing.ipynb")
    proc = run_cli("convert", "failing.ipynb", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.splitlines() == [
        "failing.ipynb:cell 4: NameError: name 'undefined_name' is not defined "
        "(hint: the saved notebook ran cell 3 before cell 2: it may have depended on hidden state; "
        "restart the kernel and run all cells to reproduce)"
    ]
    assert proc.stdout == ""
    assert not (tmp_path / "out").exists()


def test_generated_file_edited_by_hand_exit_1(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(ROOT / "fixtures" / "cli" / "clean.ipynb", tmp_path / "clean.ipynb")
    monkeypatch.chdir(tmp_path)
    args = ["convert", "clean.ipynb", "-o", "out", "--no-record", "--no-verify"]
    assert runner.invoke(app, args).exit_code == 0
    steps = tmp_path / "out" / "src" / "clean" / "steps.py"
    edited = steps.read_text(encoding="utf-8") + "# my edit\n"
    steps.write_text(edited, encoding="utf-8")

    result = runner.invoke(app, args)
    assert result.exit_code == 1
    first, *diff = result.stderr.splitlines()
    assert first == (
        "out/src/clean/steps.py: edited since generation; use --force or move the edit into the "
        "notebook"
    )
    assert "-# my edit" in diff  # the diff from the edited file to what would be written
    assert steps.read_text(encoding="utf-8") == edited  # the edit is kept


def test_anything_else_exit_123(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a stage (no real input reaches one: the fuzzer in test_fuzz.py checks that) is
    reported as internal, with the notebook, and the batch goes on."""
    for name in ("clean.ipynb", "other.ipynb"):
        shutil.copy(ROOT / "fixtures" / "cli" / "clean.ipynb", tmp_path / name)
    monkeypatch.chdir(tmp_path)
    import nbharden.analyse

    real = nbharden.analyse.analyse

    def analyse(nb, *, settings):  # type: ignore[no-untyped-def]
        if nb.path.name == "clean.ipynb":
            return {}["no such key"]
        return real(nb, settings=settings)

    monkeypatch.setattr(nbharden.analyse, "analyse", analyse)
    result = runner.invoke(app, ["analyze", "clean.ipynb", "other.ipynb"])
    assert result.exit_code == 123
    assert result.stderr.splitlines() == [
        "clean.ipynb: internal error (please report): KeyError: 'no such key' "
        "(run again with --debug for the traceback)"
    ]
    assert result.stdout == "No findings.\n"  # other.ipynb was still analysed


# --- output folders, links, what the CLI echoes ---------------------------------------------------


def _loop(folder: Path, *names: str) -> None:
    """``ln -s b a; ln -s a b``: two links pointing at each other."""
    first, second = names
    (folder / first).symlink_to(second)
    (folder / second).symlink_to(first)


def _foreign_folder(folder: Path) -> None:
    """The issue's ``H``: a user's pyproject.toml and someone else's temp file deep inside."""
    stray = folder / "H" / "other" / "x_prod" / "src" / "x" / ".nbharden-tmp-abc"
    stray.parent.mkdir(parents=True)
    stray.write_text("not nbharden's\n")
    (folder / "H" / "pyproject.toml").write_text("[project]\nname = 'mine'\n")


def _unlisted_pyproject(folder: Path) -> None:
    """A generated folder whose manifest does not list pyproject.toml: the user's file."""
    import json

    from nbharden.manifest import MANIFEST

    proc = run_cli("convert", "clean.ipynb", "--no-record", "-o", "out", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((folder / "out" / MANIFEST).read_text())
    del manifest["files"]["pyproject.toml"]
    (folder / "out" / MANIFEST).write_text(json.dumps(manifest))
    (folder / "out" / "pyproject.toml").write_text("[project]\nname = 'mine'\n")


LOOP_LINE = "symbolic link loop (too many levels of symbolic links)"

#: (id, setup of the working folder, arguments, exact stderr line): each exit 2, nothing written.
OUTPUT_ROWS: list[tuple[str, Any, list[str], str]] = [
    ("notebook_loop_convert", lambda f: _loop(f, "a", "b"), ["convert", "a"], f"a: {LOOP_LINE}"),
    ("notebook_loop_analyze", lambda f: _loop(f, "a", "b"), ["analyze", "a"], f"a: {LOOP_LINE}"),
    ("notebook_loop_record", lambda f: _loop(f, "a", "b"), ["record", "a"], f"a: {LOOP_LINE}"),
    (
        "out_loop",
        lambda f: _loop(f, "a", "b"),
        ["convert", "clean.ipynb", "--no-record", "-o", "a"],
        f"a: {LOOP_LINE} in the output folder's path",
    ),
    (
        "out_loop_check",
        lambda f: _loop(f, "a", "b"),
        ["convert", "clean.ipynb", "--check", "-o", "a/x"],
        f"a/x: {LOOP_LINE} in the output folder's path",
    ),
    (
        "out_below_a_file",  # the path was doubled: clean.ipynb/x/clean.ipynb/x
        lambda f: None,
        ["convert", "clean.ipynb", "--no-record", "-o", "clean.ipynb/x"],
        "clean.ipynb/x: cannot create the output folder: clean.ipynb is not a folder",
    ),
    (
        "out_home",  # HOME is set to the folder "home" for these runs
        lambda f: (f / "home").mkdir(),
        ["convert", "clean.ipynb", "--no-record", "-o", "home"],
        "home: refusing to write into the home folder; choose a folder of its own",
    ),
    (
        "out_holds_files_but_no_manifest",
        _foreign_folder,
        ["convert", "clean.ipynb", "--no-record", "--force", "-o", "H"],
        "H: the output folder holds files nbharden did not generate (other) and no manifest "
        ".nbharden.json; choose a new or empty folder",
    ),
    (
        "file_the_manifest_does_not_list",  # was "edited since generation", and --force took it
        _unlisted_pyproject,
        ["convert", "clean.ipynb", "--no-record", "--force", "-o", "out"],
        "out/pyproject.toml: a file nbharden did not generate (the manifest does not list it); "
        "refused to write",
    ),
    (
        "rules_escape_sequence",
        lambda f: None,
        ["rules", "\x1b[31mred"],
        "unknown rule code '\\x1b[31mred'; run 'nbharden rules' for the list",
    ),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(ROOT / "fixtures" / "cli" / "clean.ipynb", tmp_path / "clean.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder`` without following links: what must not change."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = path.read_bytes()
    return found


@pytest.mark.parametrize(
    ("setup", "args", "line"),
    [row[1:] for row in OUTPUT_ROWS],
    ids=[row[0] for row in OUTPUT_ROWS],
)
def test_output_folder_and_link_errors_exit_2_one_exact_line(
    runner: CliRunner, workdir: Path, setup: Any, args: list[str], line: str
) -> None:
    setup(workdir)
    before = _tree(workdir)
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stderr, result.stdout) == (2, line + "\n", "")
    assert _tree(workdir) == before  # nothing written, created or deleted


def test_output_folder_and_link_errors_through_the_real_entry_point(
    tmp_path: Path,
) -> None:
    """Every row once more in a fresh interpreter: exit 2, the one line, no traceback."""
    for name, setup, args, line in OUTPUT_ROWS:
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(ROOT / "fixtures" / "cli" / "clean.ipynb", folder / "clean.ipynb")
        setup(folder)
        proc = subprocess.run(
            [sys.executable, "-m", "nbharden", *args],
            cwd=folder,
            env={**os.environ, "NO_COLOR": "1", "HOME": str(folder / "home")},
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert (proc.returncode, proc.stderr, proc.stdout) == (2, line + "\n", ""), name


def test_rules_output_has_no_escape_sequences_off_a_terminal(runner: CliRunner) -> None:
    """Colours only on a terminal: the table and a rule's page print no escape character when
    the output is not one."""
    for args in (["rules"], ["rules", "NBH201"], ["rules", "--format", "json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
        assert "\x1b" not in result.stdout + result.stderr, args


def test_a_file_name_with_an_escape_sequence_is_shown_escaped(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "e\x1b[2Jvil.ipynb"
    shutil.copy(ROOT / "notebooks" / "churn_analysis.ipynb", tmp_path / name)  # has findings
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["analyze", name, "missing\x1b[0m.ipynb"])
    assert "\x1b" not in result.stdout + result.stderr
    assert "e\\x1b[2Jvil.ipynb" in result.stdout
    assert result.stderr == "missing\\x1b[0m.ipynb: no such file\n"
