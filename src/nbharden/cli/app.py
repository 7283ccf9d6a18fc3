"""The ``nbharden`` Typer application and its entry point ``main()``.

Keep this import-light: ``nbharden --help`` and ``--version`` must not import the library's heavy
modules
(libcst, black, nbformat...). Commands import what they need inside their function bodies.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Annotated

import typer

from nbharden import __version__
from nbharden.cli import analyze as _analyze
from nbharden.cli import comment as _comment
from nbharden.cli import convert as _convert
from nbharden.cli import guard
from nbharden.cli import record as _record
from nbharden.cli import review as _review
from nbharden.cli import rules as _rules
from nbharden.cli.guard import Terminated
from nbharden.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

HELP = """\
Turn a proof-of-concept Jupyter notebook into a typed, tested Python package.

\b
  nbharden convert analysis.ipynb      # writes analysis_prod/: package, Config, tests
  nbharden analyze analysis.ipynb      # findings only (hidden state, secrets, paths...)
  nbharden record analysis.ipynb       # run it, report what every step reads and writes
  nbharden review --base origin/main   # what a change did to the results (pull requests)
  nbharden rules NBH201                # explain a finding code

Run 'nbharden COMMAND --help' for the options of a command. Settings can also live in
[tool.nbharden] in the nearest pyproject.toml.
"""

app = typer.Typer(
    name="nbharden",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    # Plain click help: rich's renderer doubles the start-up time of --help.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        print(f"nbharden {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Turn a proof-of-concept Jupyter notebook into a typed, tested Python package."""


app.command("convert", cls=_convert.Command, epilog=_convert.EPILOG, no_args_is_help=True)(
    _convert.convert
)
app.command("analyze", epilog=_analyze.EPILOG, no_args_is_help=True)(_analyze.analyze)
app.command("record", cls=_record.Command, epilog=_record.EPILOG, no_args_is_help=True)(
    _record.record
)
app.command("review", epilog=_review.EPILOG)(_review.review)
app.command("comment", epilog=_comment.EPILOG, no_args_is_help=True)(_comment.comment)
app.command("rules", epilog=_rules.EPILOG)(_rules.rules)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _interrupted() -> None:
    if not guard.interrupt_reported:
        # Typer turns a Ctrl-C during option parsing into a silent exit 130; say what happened.
        print("interrupted; no files were changed", file=sys.stderr)
    # CPython remembers a KeyboardInterrupt that escaped an exec() call (dataclasses use exec, so an
    # import hit by Ctrl-C does that) and then kills the process with SIGINT at exit, whatever code
    # we exit with. A successful exec() clears that flag, so the exit code really is 130.
    exec("pass")


def main() -> None:
    """Entry point of ``nbharden`` and ``python -m nbharden``; exits with the command's code."""
    # SIGTERM (a CI timeout, `kill`) stops the batch like Ctrl-C, with exit code 143 and a message.
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (embedded use): keep the default behaviour
        pass
    try:
        app(prog_name="nbharden")
    except KeyboardInterrupt:
        # Ctrl-C before a command started (while importing): nothing can have been written.
        _interrupted()
        sys.exit(EXIT_INTERRUPTED)
    except Terminated:
        print("terminated; no files were changed", file=sys.stderr)
        sys.exit(EXIT_TERMINATED)
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:
            _interrupted()
        raise
    except BrokenPipeError:
        # The reader went away (`nbharden rules | head`): stop quietly, as if killed by SIGPIPE.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)
