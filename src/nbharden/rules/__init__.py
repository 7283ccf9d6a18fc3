"""The rule registry: every finding code nbharden emits, one class per rule, grouped by concern (ruff style).

A rule is a class in the module of its family (``hidden_state``, ``configuration``, ``network``,
``reproducibility``, ``ipython``, ``quality``): its attributes declare its code, name, severity, fix grade and
where it is detected, its docstring is its documentation (``nbharden.rules.base``). ``RULES`` maps each code
(``"NBH201"``) to its rule; every finding is built through its rule (``NBH604.finding(...)`` or
``finding("NBH604", ...)``), so severity and fix grade come from one place. ``nbharden rules [CODE]``, the Lab's
``GET /nbharden/rules`` and ``docs/rules/<CODE>.md`` are rendered from the docstrings (``render_markdown``), and a
test keeps the committed pages equal to the rendering.

Regenerate the pages after editing a docstring: ``python -m nbharden.rules docs/rules``.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from nbharden.errors import UsageError
from nbharden.models import Finding, Span
from nbharden.rules import (
    configuration,
    hidden_state,
    ipython,
    network,
    quality,
    reproducibility,
)
from nbharden.rules.base import CATEGORIES, Rule, fix_text

__all__ = [
    "CATEGORIES",
    "MODULES",
    "RULES",
    "Rule",
    "finding",
    "fix_text",
    "get",
    "render_index",
    "render_markdown",
    "rendered_docs",
    "write_docs",
]

#: The concern modules, in code order.
MODULES: tuple[ModuleType, ...] = (
    hidden_state,
    configuration,
    network,
    reproducibility,
    ipython,
    quality,
)


def _collect(modules: tuple[ModuleType, ...]) -> dict[str, Rule]:
    """One instance of every rule class the modules define, by code, in code order."""
    found = [
        value()
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Rule)
        and value.__module__ == module.__name__
    ]
    return {rule.code: rule for rule in sorted(found, key=lambda rule: rule.code)}


#: Every rule, by code, in code order.
RULES: dict[str, Rule] = _collect(MODULES)


def get(code: str) -> Rule:
    """The rule for ``code`` (``"NBH201"``, ``"nbh201"`` or its name ``"hardcoded-secret"``).

    Raises ``UsageError`` for an unknown code, listing where to look.
    """
    key = code.strip()
    rule = RULES.get(key.upper())
    if rule is not None:
        return rule
    for candidate in RULES.values():
        if candidate.name == key.lower():
            return candidate
    raise UsageError(f"unknown rule code '{code}'; run 'nbharden rules' for the list")


def finding(
    code: str, message: str, span: Span | None, *, applied: bool = False, fixable: bool = True
) -> Finding:
    """A finding of the rule ``code`` (a registered code: ``KeyError`` otherwise), graded by the registry."""
    return RULES[code].finding(message, span, applied=applied, fixable=fixable)


def render_markdown(rule: Rule) -> str:
    """The documentation page of ``rule`` (``docs/rules/<CODE>.md``), also shown by ``nbharden rules CODE``."""
    parts = [
        f"# {rule.code} {rule.name}",
        "",
        f"Category: {rule.category}. Severity: {rule.severity.value}. Fix: {fix_text(rule.fix)}.",
        "",
        "## What it does",
        "",
        rule.summary,
        "",
        "## Why it matters",
        "",
        rule.why,
        "",
        "## Example",
        "",
        "```python",
        rule.example,
        "```",
        "",
    ]
    if rule.after:
        parts += [rule.docs.after_lead, "", "```python", rule.after, "```", ""]
    parts += ["## Fix safety", "", rule.fix_note or f"Fix: {fix_text(rule.fix)}.", ""]
    return "\n".join(parts)


def render_index() -> str:
    """The rules overview page (``docs/rules/index.md``): one table row per rule."""
    lines = [
        "# Rules",
        "",
        "Every finding nbharden reports has a code. `nbharden rules` prints this table, "
        "`nbharden rules CODE` one page.",
        "",
        "| code | name | severity | fix | summary |",
        "|---|---|---|---|---|",
    ]
    for rule in RULES.values():
        summary = rule.summary.replace("|", "\\|")
        lines.append(
            f"| [{rule.code}]({rule.code}.md) | {rule.name} | {rule.severity.value} "
            f"| {rule.fix.value} | {summary} |"
        )
    return "\n".join(lines) + "\n"


def rendered_docs() -> dict[str, str]:
    """File name -> text of every page under ``docs/rules/``."""
    pages = {f"{rule.code}.md": render_markdown(rule) for rule in RULES.values()}
    pages["index.md"] = render_index()
    return pages


def write_docs(folder: Path) -> None:
    """Write the rendered pages into ``folder`` (``python -m nbharden.rules docs/rules``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in rendered_docs().items():
        (folder / name).write_text(text, encoding="utf-8")
