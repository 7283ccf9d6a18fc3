"""One-off conversion (issue 12): the old ``src/nbharden/rules.py`` registry -> one rule class per code.

Reads the ``Rule`` values of an old ``rules.py`` (by importing it from its path) and prints, or writes, the rule
classes whose docstring carries the texts in ruff's sections (``nbharden.rules.base``). Nothing is retyped: the
texts are wrapped with textwrap and read back by ``parse_docstring``; the script fails unless every field reads
back equal to the old one.

    python tools/rules_to_modules.py OLD_RULES_PY --write src/nbharden/rules   # every concern module
    python tools/rules_to_modules.py OLD_RULES_PY NBH607 NBH609                # print these classes only

(A branch that added rules to the old rules.py converts them with the second form and pastes them into
the concern module of their family.)
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nbharden.rules.base import AFTER_LEADS, parse_docstring  # noqa: E402

MODULES = {
    "NBH1": (
        "hidden_state",
        "Hidden state: what a notebook's execution order and history hide (NBH1xx).",
    ),
    "NBH2": (
        "configuration",
        "Configuration and secrets: what moves out of the code into Config (NBH2xx).",
    ),
    "NBH3": ("network", "Network: calls that can hang or fail on a transient error (NBH3xx)."),
    "NBH4": ("reproducibility", "Reproducibility: randomness that differs between runs (NBH4xx)."),
    "NBH5": ("ipython", "IPython syntax: magics and shell lines, translated or removed (NBH5xx)."),
    "NBH6": ("quality", "Code quality: what a package does differently from a notebook (NBH6xx)."),
}

DETECTORS = {
    "NBH101": "nbharden.analyse._read_findings",
    "NBH102": "nbharden.analyse._execution_order_findings",
    "NBH103": "nbharden.analyse._execution_order_findings",
    "NBH104": "nbharden.analyse._CellVisitor.visit_Global",
    "NBH105": "nbharden.plan._late_reader_findings",
    "NBH106": "nbharden.analyse._read_findings",
    "NBH201": "nbharden.analyse._secret_finding",
    "NBH202": "nbharden.analyse._absolute_path_findings",
    "NBH203": "nbharden.plan._lift",
    "NBH204": "nbharden.plan._lift",
    "NBH205": "nbharden.constraints.infer_constraints",
    "NBH206": "nbharden.recorded_types.refine",
    "NBH301": "nbharden.analyse._CellVisitor._network_call",
    "NBH302": "nbharden.analyse._CellVisitor._network_call",
    "NBH401": "nbharden.analyse._CellVisitor._random_call",
    "NBH501": "nbharden.transform.magics._Translator",
    "NBH502": "nbharden.transform.magics._Translator",
    "NBH503": "nbharden.transform.magics._Translator",
    "NBH504": "nbharden.transform.magics._Translator",
    "NBH601": "nbharden.analyse._CellVisitor.visit_ImportFrom",
    "NBH602": "nbharden.analyse._CellVisitor.visit_ExceptHandler",
    "NBH603": "nbharden.emit.emit",
    "NBH604": "nbharden.transform.codemods.PrintToLogging",
    "NBH605": "nbharden.transform.codemods.ShowToSave",
    "NBH606": "nbharden.plan._def_findings",
    "NBH607": "nbharden.plan._kept_results",
    "NBH608": "nbharden.plan._raw_steps",
    "NBH609": "nbharden.plan._settings_findings",
    "NBH610": "nbharden.plan._def_findings",
}
# selection.py and plan.py: ignoring these keeps the notebook's code as it is
DISABLEABLE = {"NBH603", "NBH604", "NBH605", "NBH607", "NBH609", "NBH610"}
# transform/network.py: an applied timeout is reported as info
APPLIED_SEVERITY = {"NBH301": "INFO"}

WIDTH = 100
INDENT = "    "


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=INDENT,
        subsequent_indent=INDENT,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _block(code: str) -> list[str]:
    return [
        INDENT + "```python",
        *[(INDENT + line).rstrip() for line in code.split("\n")],
        INDENT + "```",
    ]


def docstring(rule: Any) -> str:
    lines = [
        "## What it does",
        "",
        *_wrap(rule.summary),
        "",
        INDENT + "## Why it matters",
        "",
        *_wrap(rule.why),
    ]
    lines += ["", INDENT + "## Example", "", *_block(rule.example)]
    if rule.after:
        lines += ["", INDENT + AFTER_LEADS[rule.fix], "", *_block(rule.after)]
    lines += ["", INDENT + "## Fix safety", "", *_wrap(rule.fix_note), INDENT]
    body = "\n".join(lines)
    prefix = "r" if "\\" in body else ""
    assert '"""' not in body and not body.endswith("\\"), rule.code
    return f'{prefix}"""{body}"""'


def rule_class(rule: Any) -> str:
    doc = docstring(rule)
    lines = [f"class {rule.code}(Rule):", INDENT + doc, ""]
    lines += [
        f'{INDENT}code = "{rule.code}"',
        f'{INDENT}name = "{rule.name}"',
        f"{INDENT}severity = Severity.{rule.severity.name}",
        f"{INDENT}fix = Fix.{rule.fix.name}",
        f'{INDENT}detector = "{DETECTORS.get(rule.code, "")}"',
    ]
    if rule.code in DISABLEABLE:
        lines.append(f"{INDENT}fix_can_be_disabled = True")
    if rule.code in APPLIED_SEVERITY:
        lines.append(f"{INDENT}applied_severity = Severity.{APPLIED_SEVERITY[rule.code]}")
    source = "\n".join(lines) + "\n"
    _check(rule, eval(doc), source)
    return source


def _check(rule: Any, doc: str, source: str) -> None:
    """The class's docstring reads back as the old rule's texts, field by field."""
    parsed = parse_docstring(doc)
    for field in ("summary", "why", "example", "after", "fix_note"):
        assert getattr(parsed, field) == getattr(rule, field), (
            rule.code,
            field,
            getattr(parsed, field),
        )
    assert parsed.after_lead == (AFTER_LEADS[rule.fix] if rule.after else ""), rule.code
    too_long = [line for line in source.splitlines() if len(line) > 120]
    assert not too_long, (rule.code, too_long)


def module_source(prefix: str, rules: list[Any]) -> str:
    _, summary = MODULES[prefix]
    head = [f'"""{summary}"""', "", "from __future__ import annotations", ""]
    head += [
        "from nbharden.models import Fix, Severity",
        "from nbharden.rules.base import Rule",
        "",
        "",
        "",
    ]
    return "\n".join(head) + "\n\n".join(rule_class(r) for r in rules)


def load_old(path: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("_old_rules", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks its module up
    spec.loader.exec_module(module)
    rules: dict[str, Any] = module.RULES
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("old", type=Path)
    parser.add_argument("codes", nargs="*")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    old = load_old(args.old)
    if args.codes:
        print("\n\n".join(rule_class(old[c]) for c in args.codes))
        return
    for prefix, (module, _) in MODULES.items():
        rules = [r for code, r in old.items() if code.startswith(prefix)]
        text = module_source(prefix, rules)
        if args.write:
            (args.write / f"{module}.py").write_text(text, encoding="utf-8")
        else:
            print(text)


if __name__ == "__main__":
    main()
