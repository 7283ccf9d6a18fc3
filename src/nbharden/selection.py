"""Which rules are on, as in ruff: ``select`` / ``extend-select`` / ``ignore``, and ``# nbharden: noqa`` comments.

Selectors are rule codes or prefixes of them (``NBH604``, ``NBH6``, ``NBH``) or ``ALL``. A rule is on when some
``select`` or ``extend-select`` selector matches it and no ``ignore`` selector matches it *more specifically*:
``select = ["NBH6"]`` with ``ignore = ["NBH604"]`` turns off NBH604 only, and ``ignore = ["NBH6"]`` with
``extend-select = ["NBH604"]`` keeps NBH604 on. On a tie the ``ignore`` wins.

A rule that is off reports nothing and, where its fix can be left out without breaking the package
(``Rule.fix_can_be_disabled``), does not change the code either: ``--ignore NBH604`` keeps ``print``.

Suppression comments in the notebook's cells:

- ``# nbharden: noqa[NBH604]`` (or ``# nbharden: noqa: NBH604``) at the end of a line turns the listed rules off
  for that line (for a compound statement, its header line; for a statement, every line it spans);
- the same comment on a line of its own before the first line of code of a cell turns them off for the cell;
- without codes (``# nbharden: noqa``) it turns every rule off there.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field

from nbharden.models import Finding, Notebook

#: Everything: a selector that matches every code.
ALL = "ALL"

_NOQA = re.compile(
    r"#\s*nbharden:\s*noqa(?:\s*\[(?P<brackets>[^\]]*)\]|\s*:\s*(?P<colon>[A-Za-z0-9_, ]+))?",
    re.IGNORECASE,
)
_SELECTOR = re.compile(r"^(ALL|NBH\d{0,3})$")


def parse_selectors(values: Iterable[str], *, what: str) -> tuple[str, ...]:
    """Selectors from settings or the command line (``"NBH6, NBH201"`` and lists both work).

    Raises ``ValueError`` naming ``what`` for a selector that is not ``ALL`` or a prefix of an ``NBH`` code.
    """
    out: list[str] = []
    for value in values:
        for part in str(value).replace(",", " ").split():
            selector = part.strip().upper()
            if not _SELECTOR.match(selector):
                raise ValueError(f"{what}: {part!r} is not a rule code, a prefix of one (NBH6) or ALL")
            out.append(selector)
    return tuple(out)


def _specificity(code: str, selectors: Iterable[str]) -> int:
    """Length of the longest selector matching ``code`` (``ALL`` counts 0); -1 when none matches."""
    best = -1
    for selector in selectors:
        if selector == ALL:
            best = max(best, 0)
        elif code.startswith(selector):
            best = max(best, len(selector))
    return best


@dataclass(frozen=True)
class RuleSelection:
    """``select`` (default: every rule), ``extend_select`` and ``ignore`` selectors."""

    select: tuple[str, ...] = (ALL,)
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def enabled(self, code: str) -> bool:
        chosen = _specificity(code, (*(self.select or (ALL,)), *self.extend_select))
        return chosen >= 0 and chosen > _specificity(code, self.ignore)


def noqa_in(comment: str) -> frozenset[str] | None:
    """The codes a comment suppresses: empty when it is not a noqa comment, ``None`` for every rule."""
    match = _NOQA.search(comment)
    return frozenset() if match is None else _codes(match)


def _codes(match: re.Match[str]) -> frozenset[str] | None:
    """The codes a noqa comment lists; ``None`` for all."""
    listed = match.group("brackets") or match.group("colon")
    if not listed or not listed.strip():
        return None
    return frozenset(p.strip().upper() for p in listed.replace(",", " ").split() if p.strip())


@dataclass(frozen=True)
class CellSuppressions:
    """The noqa comments of one cell: for the whole cell, and per line (1-based, as in the cell's source)."""

    cell: frozenset[str] | None = frozenset()  # None: every rule
    lines: dict[int, frozenset[str] | None] = field(default_factory=dict)

    def suppresses(self, code: str, line: int | None = None) -> bool:
        if self.cell is None or code in self.cell:
            return True
        if line is None or line not in self.lines:
            return False
        listed = self.lines[line]
        return listed is None or code in listed


def cell_suppressions(source: str) -> CellSuppressions:
    """Read the noqa comments of a cell's (masked, valid Python) code. Code that does not tokenize has none."""
    cell: set[str] | None = set()
    lines: dict[int, frozenset[str] | None] = {}
    seen_code = False
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return CellSuppressions()
    code_lines = {t.start[0] for t in tokens if t.type not in _NOT_CODE}
    for token in tokens:
        if token.type != tokenize.COMMENT:
            seen_code = seen_code or token.type not in _NOT_CODE
            continue
        match = _NOQA.search(token.string)
        if match is None:
            continue
        codes = _codes(match)
        line = token.start[0]
        if line in code_lines:
            lines[line] = codes
        elif not seen_code and cell is not None:
            cell = None if codes is None else cell | codes
    return CellSuppressions(None if cell is None else frozenset(cell), lines)


_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


@dataclass(frozen=True)
class RuleGate:
    """The rules that are on for one notebook: the selection plus the notebook's noqa comments."""

    selection: RuleSelection
    cells: dict[int, CellSuppressions]

    def enabled(self, code: str) -> bool:
        """Whether ``code`` is selected at all (a noqa comment can still turn it off somewhere)."""
        return self.selection.enabled(code)

    def allows(self, code: str, cell: int | None = None, line: int | None = None) -> bool:
        """Whether ``code`` is on at ``cell``/``line`` (cells and lines counted from 1, as in findings)."""
        if not self.selection.enabled(code):
            return False
        if cell is None or cell not in self.cells:
            return True
        return not self.cells[cell].suppresses(code, line)

    def keep(self, findings: Iterable[Finding]) -> tuple[Finding, ...]:
        """The findings whose rule is on where they point."""
        return tuple(
            f
            for f in findings
            if self.allows(f.code, *((f.span.cell, f.span.line) if f.span else (None, None)))
        )


def gate(notebook: Notebook, selection: RuleSelection) -> RuleGate:
    """The ``RuleGate`` of ``notebook`` under ``selection``."""
    cells = {
        c.index: cell_suppressions(c.code)
        for c in notebook.cells
        if c.cell_type == "code" and "noqa" in c.code
    }
    return RuleGate(selection, cells)
