"""The review as GitHub-flavoured Markdown: for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Headline first (what the change did to the results), then one table row per notebook, then a collapsible
section per notebook: the behaviour step by step, the package's code diff without the noise, findings new and
resolved, and the state (in sync, tests). Stays under GitHub's comment limit by shortening diffs.
"""

from __future__ import annotations

from nbharden.behaviour import StepChange, ValueChange
from nbharden.models import Finding
from nbharden.prreview.report import CodeDiff, NotebookReview, ReviewReport

#: First line of every report: how the comment poster finds its comment again to update it.
MARKER = "<!-- nbharden-review -->"
#: GitHub refuses comments over 65,536 characters; diffs are cut to keep the report below this.
MAX_CHARS = 60_000
MAX_DIFF_LINES = 120


def render_markdown(report: ReviewReport) -> str:
    """The report as Markdown, starting with ``MARKER`` and the headline."""
    head = [
        MARKER,
        f"### nbharden review: {_inline(report.headline())}",
        "",
        f"Base {_code(report.base)} ({_code(report.base_sha[:10])}) -> the current tree "
        f"(HEAD {_code(report.head_sha[:10])}).",
        "",
    ]
    if report.notebooks:
        head += _summary_table(report.notebooks) + [""]
    sections = [_section(n) for n in report.notebooks]
    budget = MAX_CHARS - sum(len(line) + 1 for line in head)
    text = "\n".join(head) + "\n"
    for i, section in enumerate(sections):
        share = budget // (len(sections) - i)
        if len(section) > share:
            section = _without_diffs(report.notebooks[i], share)
        budget -= len(section)
        text += section
    return text


def _summary_table(notebooks: tuple[NotebookReview, ...]) -> list[str]:
    rows = [
        "| notebook | behaviour | package | generated tests | findings |",
        "|---|---|---|---|---|",
    ]
    for nb in notebooks:
        rows.append(
            "| "
            + " | ".join(
                [
                    _code(nb.notebook),
                    _cell(_behaviour_cell(nb)),
                    _state_cell(nb),
                    _tests_cell(nb),
                    f"{len(nb.new_findings)} new, {len(nb.resolved_findings)} resolved",
                ]
            )
            + " |"
        )
    return rows


def _behaviour_cell(nb: NotebookReview) -> str:
    if nb.error:
        return "review failed"
    if nb.behaviour is None:
        return "new package" if nb.new_package else "not recorded"
    if not nb.behaviour.changed:
        return "no behaviour change"
    results, values = len(nb.behaviour.results), len(nb.behaviour.values)
    parts = []
    if results:
        parts.append(f"{results} result{'s' if results > 1 else ''} changed")
    if values:
        parts.append(f"{values} value{'s' if values > 1 else ''} changed")
    return ", ".join(parts) or "step outputs changed"


def _state_cell(nb: NotebookReview) -> str:
    if nb.in_sync is None:
        return "?"
    if nb.in_sync:
        return "in sync"
    return f"**out of sync** ({len(nb.out_of_sync)} file{'s' if len(nb.out_of_sync) != 1 else ''})"


def _tests_cell(nb: NotebookReview) -> str:
    if nb.tests is None:
        return "not run"
    counts = ", ".join(f"{n} {k}" for k, n in nb.tests.counts.items())
    return counts if nb.tests.passed else f"**failed** ({counts or 'see the log'})"


def _section(nb: NotebookReview, *, diffs: bool = True, limit: int = MAX_DIFF_LINES) -> str:
    lines = [
        "<details>",
        f"<summary><b>{_html(nb.notebook)}</b>: {_html(nb.headline())}</summary>",
        "",
    ]
    if nb.error:
        lines += [f"The review of this notebook failed: {_inline(nb.error)}", ""]
    if nb.behaviour is not None:
        lines += _behaviour(nb.behaviour.steps, nb.behaviour.results, nb.behaviour.values)
    lines += _code_diff(nb.code, nb.package, diffs=diffs, limit=limit)
    lines += _findings(nb)
    lines += _state(nb)
    lines += ["</details>", "", ""]
    return "\n".join(lines)


def _without_diffs(nb: NotebookReview, budget: int) -> str:
    """The section with shorter diffs, or none, to fit ``budget`` characters."""
    for limit in (40, 10):
        section = _section(nb, limit=limit)
        if len(section) <= budget:
            return section
    return _section(nb, diffs=False)


def _behaviour(
    steps: tuple[StepChange, ...], results: tuple[ValueChange, ...], values: tuple[ValueChange, ...]
) -> list[str]:
    lines = ["#### Behaviour, step by step", ""]
    moved = [s for s in steps if s.status not in ("unchanged", "ignored")]
    if moved:
        lines += ["| step | what changed |", "|---|---|"]
        for step in moved:
            lines.append(f"| {_code(step.step)}{_renamed(step)} | {_cell(_step_text(step))} |")
        lines.append("")
    same = [s.step for s in steps if s.status == "unchanged"]
    if same:
        lines += ["Unchanged: " + ", ".join(_code(s) for s in same) + ".", ""]
    ignored = [s.step for s in steps if s.status == "ignored"]
    if ignored:
        lines += [
            "Not compared ([tool.nbharden.review] ignore-steps): "
            + ", ".join(_code(s) for s in ignored)
            + ".",
            "",
        ]
    finals = [v for v in (*results, *values) if not any(v in s.outputs for s in steps)]
    if finals:
        lines += ["Final values: " + "; ".join(_inline(_value_text(v)) for v in finals) + ".", ""]
    return lines


def _renamed(step: StepChange) -> str:
    return f" (was {_code(step.renamed_from)})" if step.renamed_from else ""


def _step_text(step: StepChange) -> str:
    if step.status in ("added", "removed"):
        return f"step {step.status}"
    parts = [_value_text(v) for v in step.outputs]
    if step.inputs:
        parts.append("inputs changed: " + ", ".join(v.name for v in step.inputs))
    return "; ".join(parts) or step.status


def _value_text(value: ValueChange) -> str:
    if value.is_number or not value.details:
        return value.summary()
    return f"{value.name}: " + ", ".join(value.details)


def _code_diff(code: CodeDiff, package: str, *, diffs: bool, limit: int) -> list[str]:
    lines = ["#### Generated code", ""]
    if code.empty:
        return lines + ["No change in the generated package.", ""]
    noise = []
    if code.data:
        noise.append("recorded data: " + ", ".join(_data_counts(code.data)))
    if code.manifest_changed:
        noise.append("manifest hashes updated")
    if code.files:
        listed = ", ".join(_code(f.path) for f in code.files)
        lines.append(
            f"{len(code.files)} file{'s' if len(code.files) > 1 else ''} in {_code(package)}: {listed}."
        )
    if noise:
        lines.append("Not shown: " + "; ".join(noise) + ".")
    lines.append("")
    for diff in code.files if diffs else ():
        body = diff.diff.splitlines()
        cut = len(body) - limit
        shown = "\n".join(body[:limit]) + (f"\n... {cut} more lines" if cut > 0 else "")
        fence = "````" if "```" in shown else "```"
        lines += [
            f"<details><summary>{_html(diff.path)} ({diff.status})</summary>",
            "",
            f"{fence}diff",
            shown,
            fence,
            "",
            "</details>",
            "",
        ]
    return lines


def _data_counts(data: dict[str, int]) -> list[str]:
    words = {
        "added": "value files added",
        "removed": "removed",
        "changed": "changed",
        "index": "index updated",
    }
    return [f"{n} {words[k]}" if k != "index" else words[k] for k, n in data.items()]


def _findings(nb: NotebookReview) -> list[str]:
    if not nb.new_findings and not nb.resolved_findings:
        return ["#### Findings", "", f"No new findings ({len(nb.findings)} at head).", ""]
    lines = ["#### Findings", ""]
    for title, findings in (("New", nb.new_findings), ("Resolved", nb.resolved_findings)):
        if findings:
            lines += [f"{title}:", ""] + [f"- {_finding(f, nb.notebook)}" for f in findings] + [""]
    return lines


def _finding(finding: Finding, notebook: str) -> str:
    where = (
        f"cell {finding.span.cell}:{finding.span.line}:{finding.span.col}"
        if finding.span
        else notebook
    )
    return f"{_code(finding.code)} {where}: {_inline(finding.message)}"


def _state(nb: NotebookReview) -> list[str]:
    lines = ["#### State", ""]
    if nb.in_sync is not None:
        verdict = (
            "yes" if nb.in_sync else "**no**: " + ", ".join(_code(p) for p in nb.out_of_sync[:10])
        )
        lines.append(f"- Package in sync with the notebook (`nbharden convert --check`): {verdict}")
        if not nb.in_sync:
            accept = " --accept-changes" if nb.behaviour_changed else ""
            lines.append(
                f"  Run `nbharden convert {nb.notebook}{accept}` and commit {_code(nb.package)}."
            )
    if nb.tests is not None:
        lines.append(f"- Generated tests at head: {_inline(nb.tests.summary or _tests_cell(nb))}")
    return lines + [""]


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _inline(text: str) -> str:
    return text.replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;").replace("-&gt;", "->")


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
