"""``--select``, ``--extend-select`` and ``--ignore``: the rule selection options that convert and analyze share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from nbharden.cli.guard import Batch

_HELP = "Comma-separated rule codes or prefixes (NBH6) or ALL; repeatable. Overrides [tool.nbharden] {key}."

Select = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        metavar="CODES",
        help="Only these rules report and fix. " + _HELP.format(key="select"),
        show_default=False,
    ),
]
ExtendSelect = Annotated[
    list[str] | None,
    typer.Option(
        "--extend-select",
        metavar="CODES",
        help="These rules too, on top of select. " + _HELP.format(key="extend-select"),
        show_default=False,
    ),
]
Ignore = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore",
        metavar="CODES",
        help="Turn these rules off: no finding and, where the package still works without it, no fix "
        "(--ignore NBH604 keeps print). " + _HELP.format(key="ignore"),
        show_default=False,
    ),
]


def selector_overrides(
    batch: Batch, *, select: list[str] | None, extend_select: list[str] | None, ignore: list[str] | None
) -> dict[str, Any] | None:
    """Settings overrides for the given options (absent ones are left to pyproject.toml); ``None`` after a
    usage error reported on ``batch``."""
    from nbharden.errors import UsageError
    from nbharden.selection import parse_selectors

    overrides: dict[str, Any] = {}
    for key, option, values in (
        ("select", "--select", select),
        ("extend_select", "--extend-select", extend_select),
        ("ignore", "--ignore", ignore),
    ):
        if values is None:
            continue
        try:
            overrides[key] = parse_selectors(values, what=option)
        except ValueError as exc:
            batch.fail(UsageError(str(exc)), None)
            return None
    return overrides
