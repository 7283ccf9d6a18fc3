"""The command line: options, output formats, exit codes and messages.

Most tests go through Typer's CliRunner (same process, separate stdout/stderr); a few run the real
``python -m nbharden`` in a subprocess (entry point, signals, import weight). Fixture notebooks are
in
fixtures/cli/ and are copied to a temporary folder before converting, so nothing is written next to
them.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from typer.testing import CliRunner

from nbharden import __version__
from nbharden.cli import guard, output
from nbharden.cli.app import app
from nbharden.cli.convert import join_parameter_pairs
from nbharden.errors import (
    EditedFileError,
    ExecutionError,
    InputError,
    InternalError,
    UsageError,
    VerificationError,
)
from nbharden.models import ChangeSet, FileChange, FileStatus, Finding, Fix, Severity, Span
from nbharden.rules import RULES

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "cli"
ANSI = re.compile(r"\x1b\[")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def nbs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working folder holding copies of the fixture notebooks; the test runs inside
    it."""
    for path in FIXTURES.glob("*.ipynb"):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "nbharden", *args],
        cwd=cwd,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NO_COLOR", None)
    env.update(extra or {})
    return env


# --- top level ---


def test_version(runner: CliRunner) -> None:
    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0
        assert result.stdout == f"nbharden {__version__}\n"


def test_help_lists_commands_and_examples(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("convert", "analyze", "rules"):
        assert re.search(rf"^\s+{command}\s+\S", result.stdout, re.M), command
    assert "nbharden convert analysis.ipynb" in result.stdout


@pytest.mark.parametrize("command", ["convert", "analyze", "rules"])
def test_command_help_explains_every_option_and_has_examples(
    runner: CliRunner, command: str
) -> None:
    from typer.main import get_command

    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and f"nbharden {command}" in result.stdout
    assert "Exit codes:" in result.stdout
    click_command = get_command(app).commands[command]  # type: ignore[attr-defined]
    for param in click_command.params:
        if param.param_type_name == "option":
            assert param.help, f"{command} {param.opts} has no help text"
            for opt in param.opts:
                assert opt in result.stdout


def test_docs_cli_mentions_every_option_and_exit_code() -> None:
    from typer.main import get_command

    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, command in get_command(app).commands.items():  # type: ignore[attr-defined]
        assert f"## `nbharden {name}`" in doc
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"`{opt}" in doc or f"{opt} " in doc, f"docs/cli.md lacks {name} {opt}"
    table = doc[doc.index("## Exit codes") :]
    for code in (0, 1, 2, 3, 123, 130, 143):
        assert f"| {code} |" in table


def test_no_arguments_shows_help_as_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "Usage:" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "args, text",
    [
        (["frobnicate"], "No such command"),
        (["convert", "--bogus", "x.ipynb"], "No such option"),
        (["convert"], "Usage:"),
        (["convert", "x.ipynb", "--format", "yaml"], "yaml"),
        (["analyze", "x.ipynb", "--format", "sarif"], "sarif"),
        (["rules", "--format", "xml"], "xml"),
        (["convert", "x.ipynb", "--out"], "requires an argument"),
    ],
)
def test_usage_errors_exit_2(runner: CliRunner, args: list[str], text: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert text in result.output


# --- errors that never reach the core ---


@pytest.mark.parametrize("command", ["convert", "analyze"])
def test_missing_file_exit_2_one_line(runner: CliRunner, nbs: Path, command: str) -> None:
    result = runner.invoke(app, [command, "nb.ipynb"])
    assert result.exit_code == 2
    assert result.stderr == "nb.ipynb: no such file\n"
    assert "Traceback" not in result.output


def test_missing_files_are_all_reported(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(app, ["convert", "a.ipynb", "b.ipynb"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["a.ipynb: no such file", "b.ipynb: no such file"]


def test_folder_is_refused(runner: CliRunner, nbs: Path) -> None:
    (nbs / "sub").mkdir()
    result = runner.invoke(app, ["convert", "sub"])
    assert result.exit_code == 2
    assert result.stderr.startswith("sub: is a folder, not a notebook")


@pytest.mark.parametrize("name", ["class", "my-pkg", "1pkg", ""])
def test_bad_package_name(runner: CliRunner, nbs: Path, name: str) -> None:
    result = runner.invoke(app, ["convert", "clean.ipynb", "--name", name])
    assert result.exit_code == 2
    assert "is not a valid Python package name" in result.stderr
    assert not (nbs / "clean_prod").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["-p", "rate"], "-p rate: missing VALUE; use -p NAME VALUE"),
        (["-p", "1rate", "0.2"], "-p 1rate: not a parameter name"),
        (["--parameter", "a-b=3"], "-p a-b: not a parameter name"),
    ],
)
def test_bad_parameter(runner: CliRunner, nbs: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["convert", "clean.ipynb", *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_same_stem_with_out_is_refused(runner: CliRunner, nbs: Path) -> None:
    (nbs / "other").mkdir()
    shutil.copy(nbs / "clean.ipynb", nbs / "other" / "clean.ipynb")
    result = runner.invoke(app, ["convert", "clean.ipynb", "other/clean.ipynb", "--out", "build"])
    assert result.exit_code == 2
    assert "would both be written to build/clean" in result.stderr
    assert not (nbs / "build").exists()


def test_bad_pyproject_setting_names_the_file(runner: CliRunner, nbs: Path) -> None:
    (nbs / "pyproject.toml").write_text("[tool.nbharden]\nbogus = 1\n", encoding="utf-8")
    result = runner.invoke(app, ["analyze", "clean.ipynb"])
    assert result.exit_code == 2
    assert "pyproject.toml: unknown key 'bogus' in [tool.nbharden]" in result.stderr


def test_join_parameter_pairs() -> None:
    assert join_parameter_pairs(["a.ipynb", "-p", "rate", "0.2", "--parameter", "n", "3"]) == [
        "a.ipynb",
        "-p",
        "rate=0.2",
        "--parameter",
        "n=3",
    ]
    assert join_parameter_pairs(["-p", "rate=0.2", "x.ipynb"]) == ["-p", "rate=0.2", "x.ipynb"]
    assert join_parameter_pairs(["-p", "url", "a=b"]) == ["-p", "url=a=b"]  # VALUE may contain '='
    assert join_parameter_pairs(["x", "--", "-p", "a", "b"]) == ["x", "--", "-p", "a", "b"]
    assert join_parameter_pairs(["x", "-p", "rate"]) == ["x", "-p", "rate"]


# --- rules ---


def test_rules_table(runner: CliRunner) -> None:
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["code", "name", "fix", "summary"]
    assert len(lines) == 1 + len(RULES)
    for line, rule in zip(lines[1:], RULES.values(), strict=True):
        assert line.split()[:3] == [rule.code, rule.name, rule.fix.value]
        assert line.endswith(rule.summary)


@pytest.mark.parametrize("code", ["NBH201", "nbh201", "hardcoded-secret"])
def test_rules_one_code(runner: CliRunner, code: str) -> None:
    result = runner.invoke(app, ["rules", code])
    assert result.exit_code == 0
    assert result.stdout.startswith("# NBH201 hardcoded-secret\n")
    assert "## Why it matters" in result.stdout and "## Fix safety" in result.stdout


def test_rules_unknown_code(runner: CliRunner) -> None:
    result = runner.invoke(app, ["rules", "NBH999"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "unknown rule code 'NBH999'; run 'nbharden rules' for the list\n"


def test_rules_json(runner: CliRunner) -> None:
    everything = json.loads(runner.invoke(app, ["rules", "--format", "json"]).stdout)
    assert [r["code"] for r in everything] == list(RULES)
    one = json.loads(runner.invoke(app, ["rules", "NBH401", "--format", "json"]).stdout)
    assert one["fix"] == "unsafe" and one["name"] == "unseeded-random" and one["why"]


# --- analyze ---


def test_analyze_clean_notebook_exit_0(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(app, ["analyze", "clean.ipynb"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "No findings.\n"
    assert result.stderr == ""


def test_analyze_findings_exit_1_ruff_style(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(app, ["analyze", "findings.ipynb"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == "Found 3 findings (1 error, 2 warnings)."
    pattern = re.compile(r"^findings\.ipynb:cell (\d+):(\d+):(\d+): (NBH\d{3}) \S")
    parsed = [pattern.match(line) for line in lines[:-1]]
    assert all(parsed), lines
    codes = [m.group(4) for m in parsed if m]
    assert codes == ["NBH201", "NBH102", "NBH602"]  # notebook order: cell, line, col
    assert lines[0].startswith(
        "findings.ipynb:cell 1:1:13: NBH201 hard-coded secret in 'API_TOKEN'"
    )


def test_analyze_info_only_findings_exit_0(runner: CliRunner, nbs: Path) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("x = 1", execution_count=1),
            new_code_cell("y = 2", execution_count=None),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    nbformat.write(nb, str(nbs / "info.ipynb"))
    result = runner.invoke(app, ["analyze", "info.ipynb"])
    assert "NBH103" in result.stdout  # the never-run cell: severity info
    assert result.exit_code == 0


def test_analyze_github_annotations(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(app, ["analyze", "findings.ipynb", "--format", "github"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("::error file=findings.ipynb,title=NBH201 (cell 1)::findings.ipynb")
    assert lines[2].startswith("::warning file=findings.ipynb,title=NBH602 (cell 2)::")
    assert "%3A" not in lines[0].split("::")[2]  # colons are only escaped in properties


def test_analyze_json(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(app, ["analyze", "findings.ipynb", "missing.ipynb", "--format", "json"])
    assert result.exit_code == 2  # the worst of 1 (findings) and 2 (missing file)
    data = json.loads(result.stdout)
    assert [d["notebook"] for d in data] == ["findings.ipynb", "missing.ipynb"]
    assert data[0]["error"] is None
    assert [f["code"] for f in data[0]["findings"]] == ["NBH201", "NBH102", "NBH602"]
    assert data[0]["findings"][0]["name"] == "hardcoded-secret"
    assert data[0]["findings"][0]["cell"] == 1 and data[0]["findings"][0]["severity"] == "error"
    assert data[1]["error"] == {
        "path": "missing.ipynb",
        "cell": None,
        "line": None,
        "col": None,
        "message": "no such file",
        "exit_code": 2,
    }
    assert result.stderr == "missing.ipynb: no such file\n"


def test_analyze_bad_notebooks_each_reported(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(app, ["analyze", "not_json.ipynb", "syntax.ipynb", "clean.ipynb"])
    assert result.exit_code == 2
    err = result.stderr.splitlines()
    assert err[0].startswith("not_json.ipynb: not valid notebook JSON (line 1, col ")
    assert err[1].startswith("syntax.ipynb:cell 2:1:1: Missing parentheses in call to 'print'")
    assert len(err) == 2 and "Traceback" not in result.output
    assert result.stdout == "No findings.\n"  # clean.ipynb was still analysed


def test_analyze_debug_shows_traceback(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(app, ["analyze", "not_json.ipynb", "--debug"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert (
        result.stderr.rstrip()
        .splitlines()[-1]
        .startswith("not_json.ipynb: not valid notebook JSON")
    )


# --- convert (needs the whole core pipeline) ---


def test_convert_writes_package_and_summary(runner: CliRunner, nbs: Path) -> None:
    before = (nbs / "clean.ipynb").read_bytes()
    result = runner.invoke(app, ["convert", "clean.ipynb", "--out", "out", "--no-record"])
    assert result.exit_code == 0, result.output
    summary = re.compile(
        r"^clean\.ipynb -> out/ \((\d+) files: (\d+) new; (no findings|\d+ findings?)\)$"
    )
    match = next(filter(None, (summary.match(line) for line in result.stdout.splitlines())), None)
    assert match, result.stdout
    assert match.group(1) == match.group(2)  # a fresh folder: every file is new
    written = [p for p in (nbs / "out").rglob("*") if p.is_file()]
    assert len(written) == int(match.group(1))
    assert (nbs / "clean.ipynb").read_bytes() == before  # never touches the notebook
    assert result.stderr == ""


def test_convert_check_and_diff_write_nothing(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(
        app, ["convert", "clean.ipynb", "--out", "out", "--no-record", "--check"]
    )
    assert result.exit_code == 1, result.output
    assert re.search(r"^clean\.ipynb -> out/: would change \d+ files?$", result.stdout, re.M)
    assert re.search(r"^  new       \S+", result.stdout, re.M)
    assert not (nbs / "out").exists()

    result = runner.invoke(app, ["convert", "clean.ipynb", "--out", "out", "--no-record", "--diff"])
    assert result.exit_code == 0, result.output
    assert "+++ " in result.stdout and "@@ " in result.stdout
    assert not ANSI.search(result.stdout), "no colour when stdout is not a terminal"
    assert "(not written)" not in result.stdout and "not written" in result.stderr
    assert not (nbs / "out").exists()


def test_convert_up_to_date_then_hand_edited_then_force(runner: CliRunner, nbs: Path) -> None:
    assert runner.invoke(app, ["convert", "clean.ipynb", "-o", "out", "--no-record"]).exit_code == 0
    result = runner.invoke(app, ["convert", "clean.ipynb", "-o", "out", "--no-record", "--check"])
    assert result.exit_code == 0, result.output
    assert "clean.ipynb -> out/: up to date" in result.stdout

    victim = sorted((nbs / "out").rglob("*.py"))[0]
    victim.write_text(victim.read_text(encoding="utf-8") + "\n# my edit\n", encoding="utf-8")

    result = runner.invoke(app, ["convert", "clean.ipynb", "-o", "out", "--no-record"])
    assert result.exit_code == 1, result.output
    assert ": edited since generation" in result.stderr
    assert re.search(r"^[-+]# my edit$", result.stderr, re.M), "the diff of the hand edit is shown"
    assert "# my edit" in victim.read_text(encoding="utf-8"), "the hand edit is kept"

    result = runner.invoke(app, ["convert", "clean.ipynb", "-o", "out", "--no-record", "--force"])
    assert result.exit_code == 0, result.output
    assert "# my edit" not in victim.read_text(encoding="utf-8")


def test_convert_json(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(
        app,
        [
            "convert",
            "findings.ipynb",
            "not_json.ipynb",
            "-o",
            "out",
            "--no-record",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 2, result.output
    data = json.loads(result.stdout)  # stdout is JSON and nothing else
    assert [d["notebook"] for d in data] == ["findings.ipynb", "not_json.ipynb"]
    ok, bad = data
    assert ok["error"] is None and ok["written"] is True
    assert {f["status"] for f in ok["files"]} == {"new"}
    assert "NBH201" in {f["code"] for f in ok["findings"]}
    assert bad["error"]["exit_code"] == 2 and bad["error"]["path"] == "not_json.ipynb"
    assert bad["error"]["message"].startswith("not valid notebook JSON")
    assert (nbs / "out" / "findings").is_dir() and not (nbs / "out" / "not_json").exists()


def test_convert_batch_continues_past_a_bad_notebook(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(
        app,
        ["convert", "clean.ipynb", "syntax.ipynb", "findings.ipynb", "-o", "build", "--no-record"],
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("syntax.ipynb:cell 2:1:1: ")
    assert "clean.ipynb -> build/clean/" in result.stdout
    assert "findings.ipynb -> build/findings/" in result.stdout
    assert re.search(r"^findings\.ipynb:cell 1:1:13: NBH201 ", result.stdout, re.M)
    assert (nbs / "build" / "clean").is_dir() and (nbs / "build" / "findings").is_dir()


def test_convert_default_out_next_to_notebook(runner: CliRunner, nbs: Path) -> None:
    result = runner.invoke(app, ["convert", "clean.ipynb", "--no-record", "--name", "totals"])
    assert result.exit_code == 0, result.output
    assert (nbs / "clean_prod").is_dir()
    assert (nbs / "clean_prod" / "src" / "totals").is_dir()


# --- the error mapping (one place: nbharden.cli.guard) ---


@pytest.mark.parametrize(
    "exc, code, line",
    [
        (InputError("bad", path="nb.ipynb", cell=4, line=1, col=7), 2, "nb.ipynb:cell 4:1:7: bad"),
        (UsageError("bad option"), 2, "nb.ipynb: bad option"),
        (VerificationError("not idempotent", path="out/x.py"), 1, "out/x.py: not idempotent"),
        (
            EditedFileError("edited since generation", path="src/p/s.py"),
            1,
            "src/p/s.py: edited since generation",
        ),
        (
            ExecutionError("NameError: x", path="nb.ipynb", cell=5),
            3,
            "nb.ipynb:cell 5: NameError: x",
        ),
        (
            InternalError("boom", path="nb.ipynb"),
            123,
            "nb.ipynb: internal error (please report): boom",
        ),
        (
            InternalError("internal error (please report): KeyError: 'x'", path="nb.ipynb"),
            123,
            "nb.ipynb: internal error (please report): KeyError: 'x'",
        ),
        (KeyError("x"), 123, "nb.ipynb: internal error (please report): KeyError: 'x'"),
        (RecursionError(), 2, "nb.ipynb: refused: input nested too deeply to process"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (guard.Terminated(), 143, "terminated"),
    ],
)
def test_describe_maps_every_error(exc: BaseException, code: int, line: str) -> None:
    failure = guard.describe(exc, path="nb.ipynb")
    assert failure.exit_code == code
    assert failure.line == line


def test_batch_keeps_the_worst_code_and_hints_debug_for_internal_errors() -> None:
    err = io.StringIO()
    batch = guard.Batch(err=err)
    with batch.item("a.ipynb"):
        raise InputError("bad", path="a.ipynb")
    with batch.item("b.ipynb"):
        raise ValueError("oops")
    with batch.item("c.ipynb"):
        raise VerificationError("drift", path="c.ipynb")
    assert batch.exit_code == 123
    assert err.getvalue().splitlines() == [
        "a.ipynb: bad",
        "b.ipynb: internal error (please report): ValueError: oops"
        " (run again with --debug for the traceback)",
        "c.ipynb: drift",
    ]


def test_edited_file_error_prints_its_diff() -> None:
    err = io.StringIO()
    batch = guard.Batch(err=err)
    with batch.item("nb.ipynb"):
        raise EditedFileError("edited since generation; use --force", path="s.py", diff="-a\n+b\n")
    assert batch.exit_code == 1
    assert err.getvalue() == "s.py: edited since generation; use --force\n-a\n+b\n"
    assert batch.failures["nb.ipynb"].to_json()["diff"] == "-a\n+b\n"


@pytest.mark.parametrize(
    "written, writing, note",
    [
        ([], None, "interrupted; no files were changed"),
        (
            ["out/a"],
            None,
            "interrupted; written before the interrupt: out/a; nothing else was changed",
        ),
        (
            [],
            "out/b holds either its old or its new files (writes are atomic)",
            "interrupted; stopped while writing: out/b holds either its old or its new files",
        ),
    ],
)
def test_interrupt_message_says_what_was_written(
    written: list[str], writing: str | None, note: str
) -> None:
    err = io.StringIO()
    batch = guard.Batch(err=err, written=list(written), writing=writing)
    with batch.interruptible():
        raise KeyboardInterrupt
    assert batch.exit_code == 130
    assert err.getvalue().startswith(note)


# --- rendering ---


def _changes(statuses: list[FileStatus], findings: int) -> ChangeSet:
    return ChangeSet(
        notebook=Path("analysis.ipynb"),
        out=Path("analysis_prod"),
        changes=tuple(FileChange(f"f{i}.py", s, "", "") for i, s in enumerate(statuses)),
        findings=tuple(Finding("NBH203", "x", Span(1)) for _ in range(findings)),
    )


def test_summary_line_matches_the_documented_shape() -> None:
    changes = _changes([FileStatus.NEW] * 3 + [FileStatus.CHANGED] * 2, 4)
    assert output.summary_line(changes, "analysis.ipynb") == (
        "analysis.ipynb -> analysis_prod/ (5 files: 3 new, 2 changed; 4 findings)"
    )
    one = _changes([FileStatus.UNCHANGED], 1)
    assert (
        output.summary_line(one, "analysis.ipynb")
        == "analysis.ipynb -> analysis_prod/ (1 file: 1 unchanged; 1 finding)"
    )


def test_finding_line_and_footer() -> None:
    applied = Finding(
        "NBH201", "hard-coded secret", Span(3, 1, 5), Severity.ERROR, Fix.SAFE, applied=True
    )
    unsafe = Finding("NBH401", "unseeded", Span(2, 4, 1), Severity.WARNING, Fix.UNSAFE)
    assert (
        output.finding_line(applied, "nb.ipynb")
        == "nb.ipynb:cell 3:1:5: NBH201 [*] hard-coded secret"
    )
    assert output.finding_line(unsafe, "nb.ipynb") == "nb.ipynb:cell 2:4:1: NBH401 unseeded"
    assert output.sort_findings([applied, unsafe]) == [unsafe, applied]
    assert (
        output.fixes_footer([applied, unsafe])
        == "Found 2 findings (1 fixed, 1 more fixable with --unsafe-fixes)."
    )
    assert output.fixes_footer([]) is None
    assert output.severity_footer([applied, unsafe]) == "Found 2 findings (1 error, 1 warning)."


def test_github_annotation_escapes() -> None:
    f = Finding("NBH202", "path 'a,b:c'\nnext 100%", Span(2, 3, 4), Severity.INFO)
    line = output.github_annotation(f, "dir,x/nb:1.ipynb")
    assert line.startswith("::notice file=dir%2Cx/nb%3A1.ipynb,title=NBH202 (cell 2)::")
    assert "\n" not in line and "%0A" in line and "100%25" in line


def _tty() -> tuple[io.TextIOWrapper, int]:
    """A real terminal: the slave side of a pseudo-terminal, and the master fd to read what was
    written."""
    master, slave = os.openpty()
    return io.TextIOWrapper(io.FileIO(slave, "w"), encoding="utf-8"), master


def _read_all(master: int) -> str:
    """Everything written to the terminal so far."""
    import select

    chunks = []
    while select.select([master], [], [], 0.2)[0]:
        chunks.append(os.read(master, 4096))
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_without_no_color() -> None:
    stream, master = _tty()
    try:
        assert output.color_enabled(stream, {})
        assert output.color_enabled(stream, {"NO_COLOR": ""})
        assert not output.color_enabled(stream, {"NO_COLOR": "1"})
        assert not output.color_enabled(io.StringIO(), {})
    finally:
        stream.close()
        os.close(master)
    diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n same\n"
    assert output.colorize_diff(diff, False) == diff
    coloured = output.colorize_diff(diff, True)
    assert "\x1b[31m-old\x1b[0m\n" in coloured and "\x1b[32m+new\x1b[0m\n" in coloured
    assert ANSI.sub("", coloured).replace("[0m", "").replace("[1m", "") != ""
    assert re.sub(r"\x1b\[\d+m", "", coloured) == diff


def test_progress_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    progress = output.Progress(quiet, total=3)
    progress.start(1, "a.ipynb")
    progress("analyse", Path("a.ipynb"))
    assert quiet.getvalue() == ""

    stream, master = _tty()
    try:
        progress = output.Progress(stream, total=2, env={"NO_COLOR": "1"})
        progress.start(2, "b.ipynb")
        progress("analyse", Path("b.ipynb"))
        progress.clear()
        stream.flush()
        text = _read_all(master)
        assert "[2/2] b.ipynb: analyse" in text
        assert text.endswith("\r\x1b[K")
    finally:
        stream.close()
        os.close(master)


def test_progress_for_one_notebook_waits_for_the_delay() -> None:
    now = [0.0]
    stream, master = _tty()
    try:
        progress = output.Progress(
            stream, total=1, delay=0.5, clock=lambda: now[0], env={"NO_COLOR": "1"}
        )
        progress.start(1, "a.ipynb")
        progress("load", Path("a.ipynb"))
        assert not progress.shown
        now[0] = 2.0
        progress("analyse", Path("a.ipynb"))
        assert progress.shown
        stream.flush()
        assert "[1/1] a.ipynb: analyse" in _read_all(master)
    finally:
        stream.close()
        os.close(master)


# --- the real entry point ---


@pytest.mark.slow
def test_python_m_nbharden(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"nbharden {__version__}\n")
    result = run_cli("convert", "nb.ipynb", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", "nb.ipynb: no such file\n")
    result = run_cli("rules", "NBH000", cwd=tmp_path)
    assert result.returncode == 2 and "unknown rule code 'NBH000'" in result.stderr
    result = run_cli(
        "analyze", str(FIXTURES / "findings.ipynb"), "--format", "github", cwd=tmp_path
    )
    assert result.returncode == 1 and result.stdout.startswith("::error ")


def test_cli_import_is_light(tmp_path: Path) -> None:
    """--help must stay fast: importing the CLI must not import the library's heavy modules."""
    code = (
        "import sys, nbharden.cli.app\n"
        "heavy = {'libcst', 'black', 'nbformat', 'pandas', 'papermill', 'IPython', 'rich',"
        " 'pydantic'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m == 'nbharden.api'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _big_notebook(path: Path, cells: int) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell(f"v{i} = {i} * 2\nw{i} = v{i} + 1", execution_count=i + 1)
            for i in range(cells)
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    nbformat.write(nb, str(path))


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    "sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
@pytest.mark.slow
def test_signal_stops_cleanly(tmp_path: Path, sig: signal.Signals, code: int, word: str) -> None:
    """A real signal while a long analysis runs: exit 130/143, one message, no traceback, nothing
    written."""
    _big_notebook(tmp_path / "big.ipynb", 2000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbharden", "convert", "big.ipynb", "--no-record"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background (`make test &`) ignores SIGINT, and
        # Python keeps an inherited SIG_IGN, so the signal would never arrive
        preexec_fn=_sigint_default,
    )
    time.sleep(2.0)
    assert proc.poll() is None, (
        "the conversion finished before the signal; make the notebook bigger"
    )
    proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert stderr == f"{word}; no files were changed\n"
    assert stdout == ""
    assert not (tmp_path / "big_prod").exists()
