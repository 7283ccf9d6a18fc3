"""What a rule is: a class whose docstring is its documentation and whose attributes declare it once.

A rule class (``class NBH604(Rule)``) declares its ``code``, ``name``, ``severity`` and ``fix`` grade as class
attributes, whether ignoring it leaves the notebook's code as it is (``fix_can_be_disabled``) and where its
detection is (``detector``, a dotted path). Its docstring is its documentation, in ruff's sections::

    ## What it does        one paragraph: the rule's summary (tables, the Lab, SARIF)
    ## Why it matters      one paragraph
    ## Example             a ```python block marking the offending line, then optionally
                           "Use instead:" (no fix) or "What nbharden generates:" (a fix) and a second block
    ## Fix safety          one paragraph, starting "No automatic fix", "Safe" or "Unsafe"

Paragraphs are wrapped freely in the docstring and read back as one line; code blocks are kept as written.
Every finding is built through its rule (``NBH604.finding(message, span, applied=True)``), so its severity and
fix grade come from here.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import ClassVar

from nbharden.models import Finding, Fix, Severity, Span

#: Rule families by code prefix.
CATEGORIES: dict[str, str] = {
    "NBH1": "hidden state",
    "NBH2": "configuration and secrets",
    "NBH3": "network",
    "NBH4": "reproducibility",
    "NBH5": "IPython syntax",
    "NBH6": "code quality",
}

#: The line before the second example block, by fix grade: with a fix it shows the generated code.
AFTER_LEADS: dict[Fix, str] = {
    Fix.NONE: "Use instead:",
    Fix.SAFE: "What nbharden generates:",
    Fix.UNSAFE: "What nbharden generates:",
}

_FIX_TEXT = {
    Fix.NONE: "none (reported only)",
    Fix.SAFE: "safe (applied by default)",
    Fix.UNSAFE: "unsafe (applied only with --unsafe-fixes)",
}

_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
_CODE_BLOCK = re.compile(r"^```python\n(.*?)\n```$", re.MULTILINE | re.DOTALL)


def fix_text(fix: Fix) -> str:
    """A short description of a fix grade, as shown in ``nbharden rules`` and the docs."""
    return _FIX_TEXT[fix]


@dataclass(frozen=True)
class Documentation:
    """A rule's docstring, read into its sections (empty where a section is missing)."""

    summary: str = ""
    why: str = ""
    example: str = ""
    after_lead: str = ""
    after: str = ""
    fix_note: str = ""
    sections: tuple[str, ...] = ()  # the headings, in their order


def _paragraph(text: str) -> str:
    return " ".join(text.split())


def parse_docstring(doc: str) -> Documentation:
    """Read a rule docstring's sections (see the module docstring); a missing section stays empty."""
    parts = _HEADING.split(inspect.cleandoc(doc))
    sections = dict(zip(parts[1::2], (p.strip("\n") for p in parts[2::2]), strict=True))
    # before, first block, between (the lead of the second), second block, after
    example = _CODE_BLOCK.split(sections.get("Example", ""))
    blocks = example[1::2]
    lead = example[2].strip() if len(blocks) > 1 else ""
    return Documentation(
        summary=_paragraph(sections.get("What it does", "")),
        why=_paragraph(sections.get("Why it matters", "")),
        example=blocks[0] if blocks else "",
        after_lead=lead,
        after=blocks[1] if len(blocks) > 1 else "",
        fix_note=_paragraph(sections.get("Fix safety", "")),
        sections=tuple(parts[1::2]),
    )


class Rule:
    """One finding code. Subclasses declare the class attributes below and document themselves in their docstring.

    The registry (``nbharden.rules.RULES``) holds one instance of each; the instances carry no state of their
    own, and ``finding`` is a class method, so ``NBH604.finding(...)`` and ``RULES["NBH604"].finding(...)`` are
    the same call.
    """

    __slots__ = ()

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    fix: ClassVar[Fix]
    #: Where the rule is detected: the dotted path of a function, method or class.
    detector: ClassVar[str]
    #: Whether the package still works with the rule's fix left out, so that ignoring the rule (``--ignore``,
    #: ``# nbharden: noqa``) also leaves the notebook's code as it is (``--ignore NBH604`` keeps ``print``).
    #: Other rules' changes are needed for a package that runs: ignoring them only hides their findings.
    fix_can_be_disabled: ClassVar[bool] = False
    #: The severity of a finding whose fix was applied, where it differs from ``severity``.
    applied_severity: ClassVar[Severity | None] = None
    docs: ClassVar[Documentation] = Documentation()

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.docs = parse_docstring(cls.__doc__ or "")

    def __repr__(self) -> str:
        return f"<rule {self.code} {self.name}>"

    @classmethod
    def finding(
        cls, message: str, span: Span | None, *, applied: bool = False, fixable: bool = True
    ) -> Finding:
        """A finding of this rule. ``applied``: the generated code carries the fix. ``fixable=False``: the
        rule's fix does not apply to this occurrence (an unseeded generator the seed fix cannot reach).
        """
        severity = cls.applied_severity if applied and cls.applied_severity else cls.severity
        return Finding(cls.code, message, span, severity, cls.fix if fixable else Fix.NONE, applied)

    @property
    def category(self) -> str:
        """The rule family, from the hundreds digit of the code."""
        return CATEGORIES.get(self.code[:4], "other")

    @property
    def summary(self) -> str:
        """One line: what it does."""
        return self.docs.summary

    @property
    def why(self) -> str:
        """Why it matters, one paragraph."""
        return self.docs.why

    @property
    def example(self) -> str:
        """Notebook code that triggers the rule."""
        return self.docs.example

    @property
    def after(self) -> str:
        """What nbharden generates for the example (a fix) or what to write instead (none); may be empty."""
        return self.docs.after

    @property
    def fix_note(self) -> str:
        """The fix safety paragraph."""
        return self.docs.fix_note
