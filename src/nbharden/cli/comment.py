"""``nbharden comment``: post the review report on a pull or merge request, or update the one posted before."""

from __future__ import annotations

import enum
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer


class Forge(enum.StrEnum):
    github = "github"
    gitlab = "gitlab"


EPILOG = """\
\b
Examples (in CI, after nbharden review --markdown-file review.md):
  nbharden comment github --body-file review.md   # GITHUB_TOKEN, GITHUB_REPOSITORY, the event
  nbharden comment gitlab --body-file review.md   # NBHARDEN_GITLAB_TOKEN, CI_* variables
\b
Outside a pull or merge request it says so and exits 0. Exit codes: 0 posted, updated or
nothing to do, 1 the forge refused or could not be reached, 2 missing variable or file.
"""


def comment(
    forge: Annotated[Forge, typer.Argument(help="github or gitlab.", show_default=False)],
    body_file: Annotated[
        Path,
        typer.Option(
            "--body-file",
            metavar="FILE",
            help="The Markdown to post (nbharden review's).",
            show_default=False,
        ),
    ],
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """Post the review as one comment on the pull (merge) request, or update the one posted before."""
    from nbharden.cli import output
    from nbharden.cli.guard import Batch
    from nbharden.prreview import comment as forge_comment

    batch = Batch(debug=debug, err=output.stderr())
    with batch.interruptible():
        try:
            body = body_file.read_text(encoding="utf-8")
            env = dict(os.environ)
            if forge is Forge.github:
                event_path = env.get("GITHUB_EVENT_PATH")
                event = json.loads(Path(event_path).read_text()) if event_path else {}
                target = forge_comment.github_target(env, event)
            else:
                target = forge_comment.gitlab_target(env)
            if target is None:
                print(
                    f"nbharden comment: not a {forge.value} pull/merge request run; nothing posted",
                    file=sys.stderr,
                )
            else:
                done = forge_comment.post_or_update(target, body)
                print(f"nbharden comment: review comment {done}", file=sys.stderr)
        except OSError as exc:
            from nbharden.errors import UsageError

            batch.fail(UsageError(f"cannot read {exc.filename}: {exc.strerror}"), None)
        except Exception as exc:  # noqa: BLE001 - reported with its exit code, like every command
            batch.fail(exc, None)
    raise typer.Exit(batch.exit_code)
