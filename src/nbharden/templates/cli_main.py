"""The ``__main__.py`` of a generated package: a Typer command line whose options are the Config's fields.

nbharden (``emit``) writes it with its own docstring, each hole below replaced by its value (and the holes'
definitions dropped), and an option per Config field put before ``main``'s own options. Its relative imports
are the generated package's modules.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError
from typer.core import TyperCommand

from .config import Config
from .environment import reproduce
from .pipeline import run
from .support import configure_logging

# Holes: the help text and epilog, the secret fields (never parameters), the options given to main().
HELP = "Run the pipeline."
EPILOG = ""
SECRETS: tuple[str, ...] = ()
GIVEN: dict[str, Any] = {}


class _Command(TyperCommand):
    """Accept papermill's ``-p NAME VALUE`` as well as ``-p NAME=VALUE``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: a click Context
        joined: list[str] = []
        rest = list(args)
        while rest:
            token = rest.pop(0)
            if token == "--":
                joined += [token, *rest]
                break
            if token in ("-p", "--parameter") and len(rest) >= 2 and "=" not in rest[0]:
                joined += [token, rest.pop(0) + "=" + rest.pop(0)]
            else:
                joined.append(token)
        return super().parse_args(ctx, joined)


class LogFormat(str, enum.Enum):
    text = "text"
    json = "json"


class LogLevel(str, enum.Enum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


app = typer.Typer(
    add_completion=False, pretty_exceptions_show_locals=False, help=HELP, epilog=EPILOG
)


def _json(name: str, text: str | None) -> Any:
    """Parse the JSON value given for a structured field (a list, a dict...)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = "--" + name.replace("_", "-")
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=hint) from None


def _parameter(pair: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from ``-p``: the text for str and path fields, JSON when it parses for the others."""
    name, _, text = pair.partition("=")
    field = Config.model_fields.get(name)
    if field is None or name in SECRETS:  # secrets: from the environment only
        known = ", ".join(n for n in Config.model_fields if n not in SECRETS)
        raise typer.BadParameter(f"unknown parameter {name!r}; known: {known}", param_hint="-p")
    if field.annotation in (str, Path):
        return name, text
    try:
        return name, json.loads(text)
    except json.JSONDecodeError:
        return name, text


@app.command(cls=_Command)
def main(
    parameter: Annotated[
        Optional[list[str]],
        typer.Option(
            "--parameter",
            "-p",
            metavar="NAME VALUE",
            help="set a field the way papermill does: -p NAME VALUE (repeatable)",
        ),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option(help="text lines, or json: one JSON object per line")
    ] = LogFormat.text,
    log_level: Annotated[
        LogLevel, typer.Option(case_sensitive=False, help="the lowest level logged")
    ] = LogLevel.INFO,
    deterministic: Annotated[
        bool,
        typer.Option(
            help="run with the thread counts and hash seed of the recorded run (environment.RECORDED), as the tests do"
        ),
    ] = False,
) -> None:
    """Run the pipeline; options override the defaults from Config and the environment."""
    if deterministic:
        reproduce()  # starts this command again when the environment differs
    configure_logging(log_format.value, log_level.value)
    given: dict[str, Any] = GIVEN
    given.update(_parameter(pair) for pair in parameter or [])
    try:
        config = Config(**{key: value for key, value in given.items() if value is not None})
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "config"
            typer.echo(f"error: {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    run(config)


if __name__ == "__main__":
    app()
