"""``nbharden review``: what a change did to the notebooks' behaviour, for a pull request (``nbharden.prreview``)."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from nbharden.prreview.report import ReviewReport


class Format(enum.StrEnum):
    markdown = "markdown"
    json = "json"
    sarif = "sarif"
    junit = "junit"
    github = "github"


EPILOG = """\
\b
Examples:
  nbharden review                                  # the current tree against the merge base with main
  nbharden review notebooks/ --base origin/main    # only the notebooks under notebooks/
  nbharden review --format github --markdown-file review.md --sarif-file review.sarif
  nbharden review --fail-on-change                 # exit 1 when a result changed beyond tolerance
\b
Exit codes: 0 ok, 1 a package is out of sync with its notebook / its generated tests fail /
(with --fail-on-change) behaviour changed beyond tolerance, 2 usage error (not a git
repository, unknown --base) or bad notebook, 3 a notebook failed when run, 123 internal error.
The worst code of any notebook wins. The checkout is never changed: notebooks run in
temporary git worktrees.
"""

PathsParam = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="PATH",
        help="Notebooks, or folders holding them (or their packages), to review. Default: the current "
        "folder.",
        show_default=False,
    ),
]
BaseParam = Annotated[
    str | None,
    typer.Option(
        "--base",
        metavar="REV",
        help="The revision to compare with (origin/main, a commit). Default: the merge base of HEAD "
        "with the default branch.",
        show_default=False,
    ),
]
FormatParam = Annotated[
    Format,
    typer.Option(
        "--format",
        help="What goes to stdout: markdown (a pull-request comment), json, sarif (findings, SARIF "
        "2.1.0), junit (the generated tests, JUnit XML), github (workflow annotations).",
    ),
]


def _file_option(name: str, what: str) -> Any:
    return typer.Option(
        name, metavar="FILE", help=f"Also write {what} to FILE.", show_default=False
    )


MarkdownFile = Annotated[Path | None, _file_option("--markdown-file", "the Markdown report")]
JsonFile = Annotated[Path | None, _file_option("--json-file", "the JSON report")]
SarifFile = Annotated[Path | None, _file_option("--sarif-file", "the findings as SARIF 2.1.0")]
JunitFile = Annotated[Path | None, _file_option("--junit-file", "the generated tests' JUnit XML")]
StepSummary = Annotated[
    bool,
    typer.Option(
        "--step-summary",
        help="Append the Markdown report to $GITHUB_STEP_SUMMARY (GitHub Actions' job summary).",
    ),
]
FailOnChange = Annotated[
    bool,
    typer.Option(
        "--fail-on-change",
        help="Exit 1 when behaviour changed beyond tolerance ([tool.nbharden.review]).",
    ),
]
NoTests = Annotated[
    bool, typer.Option("--no-tests", help="Do not run the generated tests at head.")
]
SandboxParam = Annotated[
    bool | None,
    typer.Option(
        "--sandbox/--no-sandbox",
        help="Run the notebooks and their tests in a sandbox (docs/sandbox.md).",
        show_default=False,
    ),
]
DebugParam = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]


def review(
    paths: PathsParam = None,
    base: BaseParam = None,
    output_format: FormatParam = Format.markdown,
    markdown_file: MarkdownFile = None,
    json_file: JsonFile = None,
    sarif_file: SarifFile = None,
    junit_file: JunitFile = None,
    step_summary: StepSummary = False,
    fail_on_change: FailOnChange = False,
    no_tests: NoTests = False,
    sandbox: SandboxParam = None,
    debug: DebugParam = False,
) -> None:
    """Review what the current tree changed in the notebooks' behaviour since a base revision.

    For each notebook whose generated package is in the repository: regenerate the package (recorded
    when the base package has a recorded suite) in a temporary git worktree, compare the recorded
    behaviour step by step with the base's, show the package's code diff without the noise and the
    findings new and resolved, and say whether the committed package is in sync and its tests pass.
    """
    from nbharden import api
    from nbharden.cli import output
    from nbharden.cli.guard import Batch

    batch = Batch(debug=debug, err=output.stderr())
    progress = output.Progress(output.stderr(), 1)
    batch.before_output.append(progress.clear)
    overrides = {"sandbox": None if sandbox is None else ("on" if sandbox else "off")}
    report = None
    with batch.interruptible():
        try:
            report = api.review_changes(
                tuple(paths or [Path(".")]),
                base=base,
                overrides={k: v for k, v in overrides.items() if v is not None},
                run_tests=not no_tests,
                fail_on_change=fail_on_change,
                progress=progress,
            )
            _write_outputs(report, markdown_file, json_file, sarif_file, junit_file, step_summary)
        except Exception as exc:  # noqa: BLE001 - reported with its exit code, like every command
            batch.fail(exc, None)
    progress.clear()
    if report is None or batch.exit_code:
        raise typer.Exit(batch.exit_code)
    print(render(report, output_format), end="", file=output.stdout())
    batch.record(report.exit_code)
    raise typer.Exit(batch.exit_code)


def _write_outputs(
    report: ReviewReport,
    markdown: Path | None,
    json_: Path | None,
    sarif: Path | None,
    junit: Path | None,
    step_summary: bool,
) -> None:
    for fmt, target in (
        (Format.markdown, markdown),
        (Format.json, json_),
        (Format.sarif, sarif),
        (Format.junit, junit),
    ):
        if target is not None:
            target.write_text(render(report, fmt), encoding="utf-8")
    if step_summary:
        _append_step_summary(render(report, Format.markdown))


def render(report: ReviewReport, fmt: Format) -> str:
    """The report in format ``fmt``."""
    from nbharden.prreview import formats
    from nbharden.prreview.markdown import render_markdown

    renderers = {
        Format.markdown: render_markdown,
        Format.json: formats.render_json,
        Format.sarif: formats.render_sarif,
        Format.junit: formats.render_junit,
        Format.github: formats.render_github,
    }
    return renderers[fmt](report)


def _append_step_summary(text: str) -> None:
    from nbharden.errors import UsageError

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        raise UsageError(
            "--step-summary: GITHUB_STEP_SUMMARY is not set (it is, in GitHub Actions)"
        )
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
