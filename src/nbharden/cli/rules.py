"""``nbharden rules [CODE]``: the table of rules, or the full explanation of one."""

from __future__ import annotations

import enum
import json
from typing import Annotated

import typer


class Format(enum.StrEnum):
    text = "text"
    json = "json"


EPILOG = """\
\b
Examples:
  nbharden rules                 # all rules: code, name, fix safety, summary
  nbharden rules NBH201          # what NBH201 does, why, an example, fix safety
  nbharden rules hardcoded-secret
  nbharden rules --format json   # the registry, for tools

\b
Exit codes: 0 ok, 2 unknown rule code.
"""


def rules(
    code: Annotated[
        str | None,
        typer.Argument(
            metavar="CODE",
            help="A rule code (NBH201) or name (hardcoded-secret). Without it, list all rules.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        Format, typer.Option("--format", help="text: a table or a page; json: the rule data.")
    ] = Format.text,
) -> None:
    """List the rules nbharden reports, or explain one.

    Fix safety: 'safe' fixes are applied by default and do not change results; 'unsafe' ones only
    with
    --unsafe-fixes; 'none' means reported only.
    """
    from nbharden.cli import output
    from nbharden.cli.guard import Batch
    from nbharden.errors import UsageError
    from nbharden.rules import RULES, Rule, get, render_markdown

    def as_json(rule: Rule) -> dict[str, str]:
        return {
            "code": rule.code,
            "name": rule.name,
            "summary": rule.summary,
            "why": rule.why,
            "example": rule.example,
            "after": rule.after,
            "fix": rule.fix.value,
            "fix_note": rule.fix_note,
            "severity": rule.severity.value,
            "category": rule.category,
        }

    out = output.stdout()
    if code is None:
        if output_format is Format.json:
            print(json.dumps([as_json(r) for r in RULES.values()], indent=2), file=out)
        else:
            out.write(output.rules_table(RULES.values()))
        raise typer.Exit(0)
    batch = Batch(err=output.stderr())
    try:
        rule = get(code)
    except UsageError as exc:
        batch.fail(exc, None)
    else:
        if output_format is Format.json:
            print(json.dumps(as_json(rule), indent=2), file=out)
        else:
            out.write(render_markdown(rule))
    raise typer.Exit(batch.exit_code)
