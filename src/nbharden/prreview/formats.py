"""The review for machines: SARIF 2.1.0 (findings, for code scanning), JUnit XML (the generated tests),
GitHub workflow annotations, and JSON."""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from nbharden import __version__
from nbharden.models import Finding, Severity
from nbharden.prreview.report import NotebookReview, ReviewReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render_json(report: ReviewReport) -> str:
    return json.dumps(report.to_json(), indent=2, default=str) + "\n"


# --- SARIF --------------------------------------------------------------------------------------------------


def render_sarif(report: ReviewReport) -> str:
    """The findings at head as one SARIF 2.1.0 run; each result says whether the change introduced it
    (``baselineState`` "new") or it was there at base ("unchanged"). Resolved findings are listed in the run's
    properties, not as results (code scanning would open alerts for them)."""
    from nbharden.rules import RULES

    codes = sorted({f.code for nb in report.notebooks for f in nb.findings})
    rules = [_sarif_rule(code, RULES.get(code)) for code in codes]
    results = [
        _sarif_result(f, nb, codes.index(f.code), new=any(f is n for n in nb.new_findings))
        for nb in report.notebooks
        for f in nb.findings
    ]
    resolved = [f.to_json(nb.notebook) for nb in report.notebooks for f in nb.resolved_findings]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "nbharden", "version": __version__, "rules": rules}},
        "results": results,
        "properties": {"base": report.base_sha, "head": report.head_sha, "resolved": resolved},
    }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


def _sarif_rule(code: str, rule: Any) -> dict[str, Any]:
    if rule is None:
        return {"id": code}
    return {
        "id": code,
        "name": "".join(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", rule.name) if w),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.why},
        "help": {"text": f"{rule.summary}\n\n{rule.why}\n\nnbharden rules {code}"},
        "defaultConfiguration": {"level": _LEVEL.get(rule.severity, "warning")},
        "properties": {"category": rule.category, "fix": rule.fix.value},
    }


def _sarif_result(finding: Finding, nb: NotebookReview, index: int, *, new: bool) -> dict[str, Any]:
    span = finding.span
    line = nb.cell_line(span.cell, span.line) if span else 1
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": nb.notebook, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": line},
        }
    }
    if span:
        location["logicalLocations"] = [{"name": f"cell {span.cell}", "kind": "module"}]
    key = f"{nb.notebook}\0{finding.code}\0{finding.message}".encode()
    return {
        "ruleId": finding.code,
        "ruleIndex": index,
        "level": _LEVEL.get(finding.severity, "warning"),
        "message": {"text": finding.message},
        "locations": [location],
        "baselineState": "new" if new else "unchanged",
        "partialFingerprints": {"nbhardenFinding/v1": hashlib.sha256(key).hexdigest()[:32]},
        "properties": {
            "cell": span.cell if span else None,
            "cellLine": span.line if span else None,
            "cellColumn": span.col if span else None,
            "fix": finding.fix.value,
            "applied": finding.applied,
        },
    }


# --- JUnit XML ----------------------------------------------------------------------------------------------


def render_junit(report: ReviewReport) -> str:
    """One ``<testsuites>``: a suite ``nbharden review`` (per notebook: the review ran, the package is in
    sync, the generated tests pass), then each notebook's generated tests as pytest reported them.
    """
    root = ET.Element("testsuites", name="nbharden review")
    own = ET.SubElement(root, "testsuite", name="nbharden review")
    cases = 0
    failures = 0
    for nb in report.notebooks:
        for name, problem in _checks(nb):
            cases += 1
            case = ET.SubElement(own, "testcase", classname=nb.notebook, name=name)
            if problem:
                failures += 1
                ET.SubElement(case, "failure", message=problem).text = problem
    own.set("tests", str(cases))
    own.set("failures", str(failures))
    own.set("errors", "0")
    own.set("skipped", "0")
    for nb in report.notebooks:
        for suite in _suites(nb):
            suite.set("name", f"{nb.notebook}: generated tests")
            root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _checks(nb: NotebookReview) -> list[tuple[str, str]]:
    if nb.error:
        return [("review", nb.error)]
    checks = [("review", "")]
    if nb.in_sync is not None:
        stale = ", ".join(nb.out_of_sync)
        checks.append(
            ("package in sync", "" if nb.in_sync else f"out of sync with the notebook: {stale}")
        )
    if nb.tests is not None:
        checks.append(("generated tests pass", "" if nb.tests.passed else nb.tests.summary))
    return checks


def _suites(nb: NotebookReview) -> list[ET.Element]:
    if nb.tests is None or not nb.tests.junit:
        return []
    try:
        root = ET.fromstring(nb.tests.junit)
    except ET.ParseError:
        return []
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


# --- GitHub workflow annotations ---------------------------------------------------------------------------


def render_github(report: ReviewReport) -> str:
    """Workflow commands: one per new finding at its notebook line, one per notebook's behaviour and state."""
    lines = []
    for nb in report.notebooks:
        if nb.error:
            lines.append(_command("error", f"nbharden review: {nb.error}", file=nb.notebook))
            continue
        if nb.in_sync is False:
            text = f"the package {nb.package} is out of sync with the notebook; run nbharden convert {nb.notebook}"
            lines.append(_command("error", text, file=nb.notebook, title="nbharden: out of sync"))
        if nb.tests is not None and not nb.tests.passed:
            lines.append(
                _command(
                    "error", nb.tests.summary, file=nb.notebook, title="nbharden: generated tests"
                )
            )
        kind = "warning" if nb.behaviour_changed else "notice"
        lines.append(_command(kind, nb.headline(), file=nb.notebook, title="nbharden: behaviour"))
        for finding in nb.new_findings:
            span = finding.span
            line = nb.cell_line(span.cell, span.line) if span else 1
            level = {"error": "error", "warning": "warning"}.get(finding.severity.value, "notice")
            where = f" (cell {span.cell}:{span.line}:{span.col})" if span else ""
            lines.append(
                _command(
                    level, finding.message + where, file=nb.notebook, line=line, title=finding.code
                )
            )
    return "".join(line + "\n" for line in lines)


def _command(kind: str, message: str, **properties: object) -> str:
    props = ",".join(f"{k}={_escape(str(v), prop=True)}" for k, v in properties.items())
    return f"::{kind} {props}::{_escape(message)}" if props else f"::{kind}::{_escape(message)}"


def _escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text
