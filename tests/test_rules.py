"""The rule registry: its contents, lookup, the docstrings it renders, the committed docs pages, and agreement
with what analysis emits."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from nbharden import api, rules
from nbharden.errors import EXIT_BAD_INPUT, UsageError
from nbharden.models import Finding, Fix, Severity, Span
from nbharden.rules import RULES, Rule, get, render_markdown, rendered_docs
from nbharden.rules.base import parse_docstring
from nbharden.rules.reproducibility import NBH401
from nbharden.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "rules"
FIXTURES = ROOT / "fixtures" / "cli"

# The codes and names the analysis stage emits (their meanings are fixed by the design).
EXPECTED = {
    "NBH101": "use-before-definition",
    "NBH102": "execution-order",
    "NBH103": "unexecuted-cell",
    "NBH104": "global-in-function",
    "NBH105": "stale-global",
    "NBH106": "output-history",
    "NBH201": "hardcoded-secret",
    "NBH202": "absolute-path",
    "NBH203": "path-lifted",
    "NBH204": "url-lifted",
    "NBH205": "config-constraint",
    "NBH206": "data-contract",
    "NBH301": "network-no-timeout",
    "NBH302": "network-no-retry",
    "NBH401": "unseeded-random",
    "NBH501": "pip-install",
    "NBH502": "magic-removed",
    "NBH503": "magic-translated",
    "NBH504": "shell-command",
    "NBH601": "star-import",
    "NBH602": "bare-except",
    "NBH603": "no-effect-cell",
    "NBH604": "print-to-logging",
    "NBH605": "plot-saved",
    "NBH606": "function-not-hoisted",
    "NBH607": "result-kept",
    "NBH608": "unnamed-step",
    "NBH609": "process-setting-moved",
    "NBH610": "closure-lifted",
}


def test_registry_has_exactly_the_expected_codes_and_names() -> None:
    assert {code: rule.name for code, rule in RULES.items()} == EXPECTED
    assert list(RULES) == sorted(RULES), "RULES is in code order (the table and docs rely on it)"


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_every_rule_is_documented(rule: Rule) -> None:
    assert re.fullmatch(r"NBH[1-6]\d\d", rule.code)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
    assert "\n" not in rule.summary and rule.summary.endswith(".")
    assert len(rule.why.split()) >= 30, "why: explain why it matters, ruff style"
    assert rule.code in rule.example or "NBH" in rule.example, (
        "the example marks the offending line"
    )
    assert rule.example.strip() and rule.example == rule.example.strip("\n")
    assert rule.fix_note, "fix safety is explained"
    assert isinstance(rule.fix, Fix) and isinstance(rule.severity, Severity)
    assert rule.category != "other"


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_every_docstring_has_ruffs_sections_in_order(rule: Rule) -> None:
    """The class docstring is the documentation: the four sections, in order, and the line before the second
    example block says what it shows (what nbharden generates for a fix, what to write instead without one)."""
    assert rule.docs.sections == ("What it does", "Why it matters", "Example", "Fix safety"), rule.code
    if rule.after:
        expected = "Use instead:" if rule.fix is Fix.NONE else "What nbharden generates:"
        assert rule.docs.after_lead == expected, rule.code
    else:
        assert rule.docs.after_lead == ""
    assert type(rule).__doc__ and rule.summary in " ".join(type(rule).__doc__.split())


def test_a_docstring_reads_back_into_its_sections() -> None:
    doc = parse_docstring(
        """## What it does

        Something is
        wrong.

        ## Why it matters

        Because   it is.

        ## Example

        ```python
        if x:
            y = 1   # NBH999

        z = 2
        ```

        Use instead:

        ```python
        y = 1
        ```

        ## Fix safety

        No automatic fix.
        """
    )
    assert (doc.summary, doc.why, doc.fix_note) == ("Something is wrong.", "Because it is.", "No automatic fix.")
    assert doc.example == "if x:\n    y = 1   # NBH999\n\nz = 2"
    assert (doc.after_lead, doc.after) == ("Use instead:", "y = 1")
    assert parse_docstring("## What it does\n\nOnly this.").example == ""


def test_findings_take_severity_and_grade_from_their_rule() -> None:
    span = Span(2, 3, 4)
    made = rules.finding("NBH401", "unseeded", span)
    assert made == Finding("NBH401", "unseeded", span, Severity.WARNING, Fix.UNSAFE, False)
    assert NBH401.finding("unseeded", span) == made and RULES["NBH401"].finding("unseeded", span) == made
    assert rules.finding("NBH401", "generator", span, fixable=False).fix is Fix.NONE
    # an applied timeout is information; an unapplied one (a call with **kwargs) stays a warning
    assert rules.finding("NBH301", "fixed", span, applied=True).severity is Severity.INFO
    assert rules.finding("NBH301", "open", span).severity is Severity.WARNING
    assert rules.finding("NBH604", "logged", None, applied=True).applied
    with pytest.raises(KeyError):
        rules.finding("NBH999", "unknown", None)


def test_fix_notes_agree_with_the_grade() -> None:
    for rule in RULES.values():
        first = rule.fix_note.split(":")[0].split(".")[0].lower()
        if rule.fix is Fix.NONE:
            assert first.startswith("no automatic fix"), rule.code
        elif rule.fix is Fix.SAFE:
            assert first.startswith("safe"), rule.code
        else:
            assert first.startswith("unsafe"), rule.code
            assert "--unsafe-fixes" in rule.fix_note, rule.code


def test_get_by_code_any_case_and_by_name() -> None:
    assert get("NBH201") is RULES["NBH201"]
    assert get("nbh201") is RULES["NBH201"]
    assert get(" NBH201 ") is RULES["NBH201"]
    assert get("hardcoded-secret") is RULES["NBH201"]
    assert get("Bare-Except") is RULES["NBH602"]


@pytest.mark.parametrize("code", ["NBH999", "", "F401", "hardcoded_secret"])
def test_get_unknown_code_is_a_usage_error(code: str) -> None:
    with pytest.raises(UsageError) as info:
        get(code)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert f"unknown rule code '{code}'" in info.value.format()
    assert "nbharden rules" in info.value.format()


def test_markdown_page_has_the_ruff_sections() -> None:
    page = render_markdown(RULES["NBH401"])
    assert page.startswith("# NBH401 unseeded-random\n")
    for heading in ("## What it does", "## Why it matters", "## Example", "## Fix safety"):
        assert heading in page
    assert "Fix: unsafe (applied only with --unsafe-fixes)" in page
    assert "```python\n" in page and page.endswith("\n")
    # a rule without a fix shows what to write instead; one with a fix what nbharden generates
    assert "Use instead:" in render_markdown(RULES["NBH602"])
    assert "What nbharden generates:" in render_markdown(RULES["NBH203"])


def test_committed_docs_equal_the_registry() -> None:
    """docs/rules/ is generated from the rules' docstrings: `python -m nbharden.rules docs/rules` after
    editing one."""
    expected = rendered_docs()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("*.md")}
    assert sorted(on_disk) == sorted(expected), "a page is missing or left over"
    stale = [name for name, text in expected.items() if on_disk[name] != text]
    assert not stale, f"stale pages {stale}: run `python -m nbharden.rules docs/rules`"


def test_index_links_every_rule() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for code in RULES:
        assert f"[{code}]({code}.md)" in index


def test_findings_from_analysis_use_the_registry_grades() -> None:
    """Every finding the analysis emits has a registered code, and its severity and fix grade are
    the registry's
    (so `nbharden rules` and the docs describe what really happens)."""
    seen: set[str] = set()
    for name in ("many.ipynb", "findings.ipynb", "clean.ipynb"):
        for finding in api.analyze(FIXTURES / name).findings:
            assert finding.code in RULES, f"unregistered code {finding.code}"
            rule = RULES[finding.code]
            assert finding.severity is rule.severity, (
                finding.code,
                finding.severity,
                rule.severity,
            )
            assert finding.fix is rule.fix, (finding.code, finding.fix, rule.fix)
            seen.add(finding.code)
    # the fixture really exercises the analysis rules (so this test can fail)
    assert {"NBH101", "NBH102", "NBH103", "NBH104", "NBH106", "NBH201", "NBH202"} <= seen
    assert {"NBH301", "NBH302", "NBH401", "NBH601", "NBH602"} <= seen


def test_findings_from_conversion_use_the_registry_grades(tmp_path: Path) -> None:
    """The transform stage's findings (magics, dropped cells, print, plots) match the registry."""
    settings = Settings(record=False, out=tmp_path / "out")
    changes = api.convert(
        FIXTURES / "magics.ipynb", settings
    )  # computes everything, writes nothing
    seen = set()
    for finding in changes.findings:
        assert finding.code in RULES, f"unregistered code {finding.code}"
        rule = RULES[finding.code]
        assert (finding.severity, finding.fix) == (rule.severity, rule.fix), finding
        seen.add(finding.code)
    assert {"NBH501", "NBH502", "NBH503", "NBH504", "NBH603", "NBH604", "NBH605"} <= seen
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("code", sorted(RULES))
def test_a_rules_detector_names_code_that_exists(code: str) -> None:
    """``detector`` is a dotted path into nbharden: a module, then attributes (a split function moves it)."""
    parts = RULES[code].detector.split(".")
    assert parts[0] == "nbharden", RULES[code].detector
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            assert hasattr(target, attr), f"{code}: {RULES[code].detector} has no {attr}"
            target = getattr(target, attr)
        assert callable(target), RULES[code].detector
        return
    pytest.fail(f"{code}: no module in {RULES[code].detector}")
