"""``nbharden analyze``: report findings without generating anything (like ``ruff check``)."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nbharden.cli.selectors import ExtendSelect, Ignore, Select, selector_overrides

if TYPE_CHECKING:
    from nbharden.models import Finding


class Format(enum.StrEnum):
    text = "text"
    json = "json"
    github = "github"


EPILOG = """\
\b
Examples:
  nbharden analyze analysis.ipynb
  nbharden analyze notebooks/*.ipynb --format github   # annotations in GitHub Actions
  nbharden analyze analysis.ipynb --format json | jq '.[].findings[].code'

\b
Exit codes: 0 no findings of severity error or warning (info findings are fine),
1 at least one error or warning finding, 2 usage error or bad notebook,
123 internal error, 130 interrupted. Explain a code with: nbharden rules NBH201
"""


def analyze(
    notebooks: Annotated[
        list[Path],
        typer.Argument(
            metavar="NOTEBOOK", help="Notebooks (.ipynb) to analyse.", show_default=False
        ),
    ],
    output_format: Annotated[
        Format,
        typer.Option(
            "--format",
            help="text: one line per finding (path:cell N:line:col: CODE message); "
            "json: a list with one object per notebook on stdout; "
            "github: GitHub Actions annotations.",
        ),
    ] = Format.text,
    select: Select = None,
    extend_select: ExtendSelect = None,
    ignore: Ignore = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """Report hidden state, hard-coded secrets and paths, risky calls and more. Writes nothing.

    Exits 1 when any finding has severity error or warning (like ruff check), so it can gate CI.
    """
    from nbharden.cli import output
    from nbharden.cli.guard import Batch, real_path

    batch = Batch(debug=debug, err=output.stderr())
    rules = selector_overrides(batch, select=select, extend_select=extend_select, ignore=ignore)
    if rules is None:
        raise typer.Exit(batch.exit_code)
    out = output.stdout()
    results: list[dict[str, Any]] = []
    everything: list[Finding] = []
    seen: set[Path] = set()
    analysed = 0

    with batch.interruptible():
        for notebook in notebooks:
            if real_path(notebook) in seen:
                continue
            seen.add(real_path(notebook))
            shown = str(notebook)
            findings: list[Finding] | None = None
            with batch.item(shown):
                findings = output.sort_findings(_analyze_one(notebook, rules))
            if findings is None:
                results.append(
                    {"notebook": shown, "findings": [], "error": batch.failures[shown].to_json()}
                )
                continue
            analysed += 1
            everything.extend(findings)
            if any(f.severity.value in ("error", "warning") for f in findings):
                batch.record(1)
            if output_format is Format.json:
                results.append(
                    {
                        "notebook": shown,
                        "findings": [_finding_json(f, shown) for f in findings],
                        "error": None,
                    }
                )
            elif output_format is Format.github:
                for f in findings:
                    print(output.github_annotation(f, shown), file=out)
            else:
                for f in findings:
                    print(output.finding_line(f, shown), file=out)
        if output_format is Format.json:
            print(json.dumps(results, indent=2), file=out)
        elif output_format is Format.text and analysed:
            print(output.severity_footer(everything), file=out)
    raise typer.Exit(batch.exit_code)


def _analyze_one(notebook: Path, rules: dict[str, Any]) -> tuple[Finding, ...]:
    from nbharden.cli.guard import check_notebook
    from nbharden.settings import load_settings

    check_notebook(notebook)
    settings = load_settings(start=notebook.parent, **rules)

    from nbharden import api

    return api.analyze(notebook, settings).findings


def _finding_json(finding: Finding, path: str) -> dict[str, Any]:
    from nbharden.rules import RULES

    data = finding.to_json(path)
    rule = RULES.get(finding.code)
    data["name"] = rule.name if rule else None
    return data
