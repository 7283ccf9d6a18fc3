"""Emit the output project: notebook code + plan -> ``FileTree`` (path -> text), all in memory.

Step bodies are the notebook's own CST statements, moved and rewritten by the codemods in
``nbharden.transform.codemods``; the surrounding modules (config, pipeline, entry point) are built from small
templates whose holes only ever receive identifiers and ``repr`` literals, then parsed by LibCST to prove they are
valid Python before anything else sees them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

import libcst as cst
from libcst.helpers import parse_template_expression, parse_template_statement

from nbharden import __version__
from nbharden.analyse import (
    BUILTINS,
    FullAnalysis,
    NotebookFacts,
)
from nbharden.codegen import (
    ImportItem,
    add_imports,
    append_to_class,
    docstring,
    fill_template,
    string,
)
from nbharden.constraints import breaking_value
from nbharden.dependencies import with_lower_bounds
from nbharden.env_secrets import EnvSecretRewriter, env_fields, resolve_secrets
from nbharden.errors import InternalError
from nbharden.lift import PassState, with_state_parameters
from nbharden.local_modules import VENDORED
from nbharden.models import (
    ConfigField,
    FileTree,
    Finding,
    Fix,
    LocalModule,
    Plan,
    Severity,
    Shown,
    Span,
    Statement,
    Step,
)
from nbharden.readme import render_readme
from nbharden.secrets import (
    SECRETS_SUPPORT,
    SecretRewriter,
    redact,
    secret_values,
)
from nbharden.selection import RuleGate, RuleSelection, gate
from nbharden.settings import Settings
from nbharden.shape import summary_of
from nbharden.shown import bound_to_name, printed_values, shown_expression, shown_value
from nbharden.strict_types import complete_annotations
from nbharden.templates import template_text
from nbharden.transform.bound import maybe_unbound
from nbharden.transform.codemods import (
    Chain,
    DisplayToLog,
    LiftLiterals,
    PrintToLogging,
    ShowToSave,
    names_in,
)
from nbharden.transform.network import NetworkCalls, pipeline_setup, support_module, uses_network
from nbharden.transform.vendor import RelativeLocalImports, vendored_files

_TYPER_TYPES = {"int", "float", "str", "bool", "Path"}


def _free(name: str, taken: set[str]) -> str:
    """``name`` unless the notebook already uses it; then ``name_``, ``name__``..."""
    while name in taken:
        name += "_"
    return name


def _doc(text: str) -> str:
    return '"""' + text.replace("\\", "\\\\").replace('"""', "'''") + '"""'


class _Names:
    """Module-level names the generated code introduces, chosen so they never collide with the notebook's."""

    def __init__(
        self, facts: NotebookFacts, plan: Plan, local: tuple[LocalModule, ...] = ()
    ) -> None:
        # imports of the modules beside the notebook: relative imports of the package's copies
        self.local = (
            RelativeLocalImports({m.name: m for m in local}, f".{VENDORED}") if local else None
        )
        taken = set(facts.names)
        self.taken = taken
        self.logger = _free("logger", taken)
        self.config = _free("config", taken | {f.name for f in plan.config_fields})
        self.steps = _free("steps", taken)
        self.run_log = _free("run_log", taken)
        self.lifted = dict(plan.lifted)  # functions taking the notebook state they read (nbharden.lift)
        self.settings = _free("apply_settings", taken | {s.name for s in plan.steps})
        self.step_log = _free("step_log", taken)
        # one per notebook: it records what it rewrote; its helpers must not be shadowed by a step
        self.network = NetworkCalls(facts, taken | {s.name for s in plan.steps})
        # hard-coded secrets: each becomes its Config field's value (a step parameter) in the code
        self.secrets = resolve_secrets(facts, plan.secrets)
        self.scrub = secret_values(s for cf in facts.cells.values() for s in cf.secrets)
        # secrets read from the environment by name: each read becomes its Config field's value
        self.env = env_fields(plan.config_fields)
        # which rules are on where (select/ignore, noqa comments): set by emit
        self.gate = RuleGate(RuleSelection(), {})


def _pyplot_aliases(facts: NotebookFacts) -> tuple[set[str], set[str]]:
    aliases = {a for a, q in facts.qualified.items() if q in {"matplotlib.pyplot", "pylab"}}
    direct = {
        a for a, q in facts.qualified.items() if q in {"matplotlib.pyplot.show", "pylab.show"}
    }
    return aliases, direct


def _cell_comment(index: int) -> cst.EmptyLine:
    return cst.EmptyLine(comment=cst.Comment(f"# cell {index}"))


def _with_comment(stmt: cst.BaseStatement, comment: cst.EmptyLine) -> cst.BaseStatement:
    previous: Sequence[cst.EmptyLine] = getattr(stmt, "leading_lines", ())
    lines = [comment, *[ln for ln in previous if ln.comment is not None]]
    return stmt.with_changes(leading_lines=lines)


def _rewrite(
    node: cst.CSTNode,
    names: _Names,
    facts: NotebookFacts,
    lift: dict[str, str] | None,
    counters: dict[str, int],
    cell: int,
) -> tuple[cst.CSTNode, set[str]]:
    """Apply the codemods to one statement of ``cell``, in one traversal, where their rules are on (selection,
    noqa comments); return it and the lifted Config fields it reads."""
    printer = PrintToLogging(names.logger)
    aliases, direct = _pyplot_aliases(facts)
    shower = ShowToSave(aliases, direct)
    lifter = LiftLiterals(lift or {})
    if names.local is not None:
        relative = node.visit(names.local)
        assert isinstance(relative, cst.CSTNode)
        node = relative
    if names.env:  # before the literals: a secret default of a read goes with the read
        read = node.visit(EnvSecretRewriter(names.env, facts.qualified))
        assert isinstance(read, cst.CSTNode)
        node = read
    if names.scrub:
        hidden = node.visit(SecretRewriter(names.secrets, names.scrub))
        if not isinstance(hidden, cst.CSTNode):
            raise InternalError("the secret rewrite removed a whole statement")
        node = hidden
    # print/display the notebook binds itself (from rich import print, def display) do its own work: kept
    codemods: list[cst.CSTTransformer] = [shower, names.network, lifter]
    if names.lifted:
        codemods.append(PassState(names.lifted))
    if "print" not in facts.shadowed:
        codemods.insert(0, printer)
    if "display" not in facts.shadowed:
        codemods.insert(0, DisplayToLog(names.logger))
    new = Chain(*codemods, allows=lambda code: names.gate.allows(code, cell)).rewrite(node)
    if not isinstance(new, cst.CSTNode):
        raise InternalError("a codemod removed a whole statement")
    counters["print"] += printer.count
    counters["show"] += shower.count
    return new, lifter.used


def _annotation(text: str | None) -> cst.Annotation | None:
    if not text:
        return None
    try:
        return cst.Annotation(cst.parse_expression(text))
    except cst.ParserSyntaxError:
        return None


def _step_doc(step: Step, notebook: str, outputs: list[str]) -> str:
    """The step's docstring: its heading (or the author's explanation, or what it does), the markdown above it,
    then where it comes from and what it returns."""
    cells = ", ".join(str(c) for c in step.cells)
    source = f"cell{'s' if len(step.cells) > 1 else ''} {cells} of {notebook}"
    prose = step.doc.strip()
    summary = summary_of(step.title, prose, step.name)
    detail = f"From {source}." if summary else ""
    summary = summary or f"{source[0].upper()}{source[1:]}."  # cell_N: where it comes from
    if not step.title and prose.startswith(summary):
        prose = prose[len(summary) :].strip()  # the summary was its first sentence
    if outputs:
        detail += f" Returns {', '.join(outputs)}."
    if step.mutated:
        detail += f" Changes {', '.join(step.mutated)} in place."
    paragraphs = [p for p in (*prose.split("\n\n"), detail.strip()) if p.strip()]
    if not paragraphs:
        return summary
    body = "\n\n".join(textwrap.fill(p, width=80, break_on_hyphens=False) for p in paragraphs)
    return summary + "\n\n" + textwrap.indent(body, "    ") + "\n    "


def _shown_statements(
    stmt: cst.BaseStatement, shown: tuple[Shown, ...]
) -> tuple[list[cst.BaseStatement], int]:
    """A shown value as the pipeline keeps it: bound to its name (unless it is a name), then logged; a
    print that prints results: each value that is no name bound to its result's name first, the print
    printing those names, then each result logged. With how many of the statements are the notebook's code.
    """
    logs: list[cst.BaseStatement] = [
        cst.parse_statement(f"log_result({s.name!r}, {s.name})\n") for s in shown
    ]
    if shown[0].how == "print":
        return _printed_statements(stmt, shown, logs)
    log = logs[0]
    value = shown_value(stmt, shown[0])
    if value is None:
        return [log.with_changes(leading_lines=getattr(stmt, "leading_lines", ()))], 1
    assert isinstance(stmt, cst.SimpleStatementLine)
    target = cst.AssignTarget(cst.Name(shown[0].name))
    return [stmt.with_changes(body=[cst.Assign([target], value)]), log], 1


def _printed_statements(
    stmt: cst.BaseStatement, shown: tuple[Shown, ...], logs: list[cst.BaseStatement]
) -> tuple[list[cst.BaseStatement], int]:
    """``accuracy = accuracy_score(y, p)``, ``print("accuracy:", accuracy)``, then the log lines."""
    values = printed_values(stmt)
    bound = [(s.name, values[s.display]) for s in shown if bound_to_name(s)]
    if not bound:
        return [stmt, *logs], 1
    assert isinstance(stmt, cst.SimpleStatementLine)
    leading = stmt.leading_lines
    binds: list[cst.BaseStatement] = [
        cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], value)])
        for name, value in bound
    ]
    binds[0] = binds[0].with_changes(leading_lines=leading)
    printed = stmt.visit(_ByIdentity({id(value): cst.Name(name) for name, value in bound}))
    assert isinstance(printed, cst.SimpleStatementLine)
    return [*binds, printed.with_changes(leading_lines=()), *logs], len(binds) + 1


class _ByIdentity(cst.CSTTransformer):
    """Replaces the nodes of a tree given by identity (``id``) with others."""

    def __init__(self, new: dict[int, cst.BaseExpression]) -> None:
        super().__init__()
        self.new = new

    def on_leave(  # type: ignore[override]  # as libcst's own deep_replace: any node for any node
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> cst.CSTNode:
        return self.new.get(id(original_node), updated_node)


def _code_runs(plan: Plan) -> dict[int, list[Statement]]:
    """Per cell, the statements the plan keeps as code that run in it, in the plan's order (made once for all
    steps: a walk of every statement per step grew with steps x statements)."""
    runs: dict[int, list[Statement]] = {}
    for statement in plan.statements:
        if statement.role == "code":
            runs.setdefault(statement.runs_in, []).append(statement)
    return runs


def _step_body(
    step: Step,
    runs: Mapping[int, Sequence[Statement]],
    analysis: FullAnalysis,
    names: _Names,
    counters: dict[str, int],
    lift: dict[str, str],
) -> tuple[list[cst.BaseStatement], list[set[str]]]:
    """The step's statements (those of its cells the plan keeps as code, ``runs``, in the plan's order), and
    per statement the names it may change (``Statement.changes``; a shown value's log line changes nothing)."""
    facts = analysis.facts
    assert facts is not None
    body: list[cst.BaseStatement] = []
    changes: list[set[str]] = []
    shown: dict[tuple[int, int], tuple[Shown, ...]] = {}
    for s in step.shown:
        shown[(s.cell, s.statement)] = (*shown.get((s.cell, s.statement), ()), s)
    for index in step.cells:
        first = True
        for statement in runs.get(index, ()):
            src_cell, i = statement.cell, statement.index
            stmt = facts.cells[src_cell].module.body[i]
            kept, own = (
                _shown_statements(stmt, shown[(src_cell, i)])
                if (src_cell, i) in shown
                else ([stmt], 1)
            )
            for n, part in enumerate(kept):
                new, _used = (
                    _rewrite(part, names, facts, lift, counters, src_cell)
                    if n < own
                    else (part, set())
                )
                assert isinstance(new, cst.BaseStatement)
                if first:
                    new = _with_comment(new, _cell_comment(index))
                    first = False
                body.append(new)
                changes.append(set(statement.changes) if n == own - 1 else set())
    return body, changes


def _with_contracts(step: Step, body: list[cst.BaseStatement], changes: list[set[str]]) -> None:
    """Insert the data contract checks: a frame the step takes in before its first statement, a frame it reads
    right after the last statement that binds or changes it (not at the end, after the model fits).
    """
    for contract in reversed(step.contracts):
        columns = "{" + ", ".join(f"{label}: {dtype!r}" for label, dtype in contract.columns) + "}"
        check = cst.parse_statement(
            f"require_columns({contract.name}, {contract.name!r}, {step.name!r}, {columns})\n"
        )
        if contract.at == "entry":
            body.insert(0, check)
            changes.insert(0, set())
            continue
        last = max((n for n, names in enumerate(changes) if contract.name in names), default=None)
        where = len(body) if last is None else last + 1
        body.insert(where, check)
        changes.insert(where, set())


def _step_function(
    step: Step,
    plan: Plan,
    analysis: FullAnalysis,
    names: _Names,
    counters: dict[str, int],
    lift: dict[str, str],
    runs: Mapping[int, Sequence[Statement]],
) -> cst.FunctionDef:
    body, changes = _step_body(step, runs, analysis, names, counters, lift)
    _with_contracts(step, body, changes)
    outputs = [o.name for o in step.outputs]
    if outputs:
        body.append(_return(step, body, outputs, plan.module_state))
    doc = _step_doc(step, analysis.notebook.path.name, outputs)
    # module state the step touches: the steps module's globals, as they were the notebook's
    touched = set().union(*(names_in(n) for n in body)) if body and plan.module_state else set()
    shared = sorted(set(plan.module_state) & touched)
    if shared:
        body.insert(
            0, cst.SimpleStatementLine([cst.Global([cst.NameItem(cst.Name(n)) for n in shared])])
        )
    body.insert(0, cst.SimpleStatementLine([cst.Expr(cst.SimpleString(_doc(doc)))]))
    params = [
        cst.Param(cst.Name(p.name), _annotation(p.annotation))
        for p in step.inputs
        if p.name not in step.state
    ]
    returns = None
    types = [o.annotation for o in step.outputs]
    if not outputs:
        returns = cst.Annotation(cst.Name("None"))
    elif len(types) > 1:  # what the run did not tell is Any (strict_types fills a single one)
        returns = _annotation(f"tuple[{', '.join(t or 'Any' for t in types)}]")
    else:
        returns = _annotation(types[0])
    return cst.FunctionDef(
        name=cst.Name(step.name),
        params=cst.Parameters(params=params),
        body=cst.IndentedBlock(body),
        returns=returns,
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
    )


def _return(
    step: Step, body: list[cst.BaseStatement], outputs: list[str], module_state: tuple[str, ...]
) -> cst.SimpleStatementLine:
    """``return a, b``. A result the notebook binds on some paths only (``if flag: m = 1``, a loop that may not
    run, ``except E as m``) is ``locals().get("m")``: None when that path did not run, where ``return m`` would
    raise UnboundLocalError though the notebook ran on (its later reads did not run either)."""
    params = [p.name for p in step.inputs if p.name not in step.state]
    unsure = set(maybe_unbound(body, outputs, params)) - set(module_state)
    items = [
        cst.parse_expression(f"locals().get({o!r})") if o in unsure else cst.Name(o)
        for o in outputs
    ]
    value = items[0] if len(items) == 1 else cst.Tuple([cst.Element(i) for i in items], lpar=[], rpar=[])
    comment = []
    if unsure:
        listed = ", ".join(sorted(unsure))
        comment = [
            cst.EmptyLine(
                comment=cst.Comment(f"# the notebook binds {listed} on some paths only: None when it did not")
            )
        ]
    return cst.SimpleStatementLine([cst.Return(value)], leading_lines=comment)


def _lifted_types(
    plan: Plan, facts: NotebookFacts, name: str, state: tuple[str, ...]
) -> dict[str, str | None]:
    """Annotations for a lifted function: its state parameters as the recorded run had them, its own
    parameters from the literals every call passes (``Plan.lifted_types``), its return from the results it
    shows."""
    outputs = [o for step in plan.steps for o in step.outputs]
    types: dict[str, str | None] = {
        s: next((o.annotation for o in outputs if o.name == s and o.annotation), None) for s in state
    }
    types.update(dict(plan.lifted_types).get(name, ()))  # its parameters every call passes a literal to
    shown = {s.name for step in plan.steps for s in step.shown if _calls(facts, s, name)}
    returned = {o.annotation for o in outputs if o.name in shown}
    if len(returned) == 1 and None not in returned:
        types["return"] = returned.pop()
    return types


def _calls(facts: NotebookFacts, shown: Shown, name: str) -> bool:
    """Whether a shown value is a direct call of ``name``."""
    stmt = facts.cells[shown.cell].module.body[shown.statement]
    small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) else None
    value = small.value if isinstance(small, cst.Expr) else None
    if shown.how == "display" and isinstance(value, cst.Call) and value.args:
        value = value.args[0].value
    return isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == name


def _settings_function(name: str, body: list[cst.BaseStatement]) -> cst.FunctionDef:
    """``apply_settings()``: the notebook's process-wide settings, run once at the pipeline's start."""
    doc = _doc(
        "Process-wide settings the notebook made (warnings filters, display options, plot style).\n\n"
        "    They change the whole process, so the pipeline's entry point applies them once, before the "
        "steps;\n    a step function never does.\n    "
    )
    return cst.FunctionDef(
        name=cst.Name(name),
        params=cst.Parameters(),
        body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Expr(cst.SimpleString(doc))]), *body]),
        returns=cst.Annotation(cst.Name("None")),
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
    )


def _module_level(
    analysis: FullAnalysis,
    plan: Plan,
    names: _Names,
    counters: dict[str, int],
) -> tuple[list[cst.BaseStatement], set[str], list[cst.BaseStatement], list[cst.BaseStatement], set[str]]:
    """What goes to the top of steps.py: (imports, their code, functions and classes, process-wide settings,
    stdlib helpers the magics need)."""
    facts = analysis.facts
    assert facts is not None
    imports: list[cst.BaseStatement] = []
    seen_imports: set[str] = set()
    defs: list[cst.BaseStatement] = []
    settings: list[cst.BaseStatement] = []
    needs: set[str] = set()
    for cf in facts.cells.values():
        needs |= cf.needs
    # in the notebook's order: moved definitions are defined at module level, where they were written
    for statement in sorted(plan.statements, key=lambda s: (s.cell, s.index)):
        index, role = statement.cell, statement.role
        stmt = facts.cells[index].module.body[statement.index]
        if role == "setting":
            settings.append(_with_comment(stmt, _cell_comment(index)))
        elif role == "import":
            if names.local is not None:
                stmt = cast(cst.SimpleStatementLine, stmt.visit(names.local))
            code = cst.Module([]).code_for_node(stmt.with_changes(leading_lines=[])).strip()
            if code not in seen_imports:  # the same import in two cells is moved up once
                seen_imports.add(code)
                imports.append(cst.parse_statement(code + "\n"))
        elif role == "def":
            new, _ = _rewrite(stmt, names, facts, None, counters, index)
            assert isinstance(new, cst.BaseStatement)
            if isinstance(new, cst.FunctionDef) and new.name.value in names.lifted:
                state = names.lifted[new.name.value]
                types = _lifted_types(plan, facts, new.name.value, state)
                new = with_state_parameters(new, state, types)
            defs.append(
                _with_comment(new, _cell_comment(index)).with_changes(
                    leading_lines=[cst.EmptyLine(), cst.EmptyLine(), _cell_comment(index)]
                )
            )
    return imports, seen_imports, defs, settings, needs


def _steps_module(
    analysis: FullAnalysis, plan: Plan, names: _Names, counters: dict[str, int]
) -> cst.Module:
    facts = analysis.facts
    assert facts is not None
    lift = {f.literal: f.name for f in plan.config_fields if f.kind == "lifted" and f.literal}
    imports, seen_imports, defs, settings, needs = _module_level(analysis, plan, names, counters)
    hoisted_imports = frozenset(plan.hoisted_imports)
    runs = _code_runs(plan)
    functions = [
        _step_function(s, plan, analysis, names, counters, lift, runs) for s in plan.steps
    ]
    if settings:
        defs.append(_settings_function(names.settings, settings))
    extra: list[str] = []
    body_names = set()
    for node in [*defs, *functions]:
        body_names |= names_in(node)
    if "subprocess" in needs:
        extra.append("import subprocess")
    if "os" in needs:
        extra.append("import os")
    if "path" in needs or "Path" in body_names and "Path" not in hoisted_imports:
        extra.append("from pathlib import Path")
    if names.logger in body_names:
        extra.append("import logging")
    support = sorted({"require_columns", "show_figures"} & body_names)
    if support:
        extra.append(f"from .support import {', '.join(support)}")
    if any(step.shown for step in plan.steps):
        extra.append("from .results import log_result")
    if names.network.import_line():
        extra.append(str(names.network.import_line()))
    header = _doc(
        f"Steps of the {plan.package} pipeline, extracted by nbharden {__version__} from "
        f"{analysis.notebook.path.name}.\n\nEach step function is one section of the notebook; "
        "its parameters and return values follow the notebook's data flow.\n"
    )
    lines = [cst.parse_statement(f"{e}\n") for e in extra if e.strip() not in seen_imports]
    module_body: list[cst.BaseStatement] = [
        cst.SimpleStatementLine([cst.Expr(cst.SimpleString(header))])
    ]
    module_body += lines + imports
    if names.logger in body_names:
        module_body.append(
            cst.parse_statement(f"{names.logger} = logging.getLogger(__name__)\n").with_changes(
                leading_lines=[cst.EmptyLine()]
            )
        )
    module_body += defs
    module_body += functions
    return cst.Module(
        body=cast(Sequence[cst.SimpleStatementLine | cst.BaseCompoundStatement], module_body)
    )


def _from_out(path: Path, out: Path) -> str | None:
    """``path`` relative to OUT (POSIX), or None when it is far from it (more than two folders up) or on
    another drive: then the generated files name it absolutely."""
    try:
        rel = os.path.relpath(path, out.resolve()).replace(os.sep, "/")
    except ValueError:  # another drive on Windows
        return None
    return None if rel.split("/").count("..") > 2 else rel


def _notebook_from(analysis: FullAnalysis, out: Path) -> str:
    """The notebook's path as the README's regenerate command names it from OUT (``../analysis.ipynb``)."""
    path = analysis.notebook.path.resolve()
    return _from_out(path, out) or path.as_posix()


def _notebook_dir(analysis: FullAnalysis, out: Path) -> cst.BaseExpression:
    """NOTEBOOK_DIR in config.py: relative to the package when OUT sits in or next to the notebook's folder,
    else the notebook's folder as an absolute path.
    """
    folder = analysis.notebook.path.resolve().parent
    rel = _from_out(folder, out)
    if rel is None:
        return cst.Call(cst.Name("Path"), [cst.Arg(string(folder.as_posix()))])
    if rel == ".":
        return cst.Name("PROJECT_DIR")
    return parse_template_expression("(PROJECT_DIR / {rel}).resolve()", rel=string(rel))


def _config_module(plan: Plan, analysis: FullAnalysis, out: Path) -> str:
    """The generated ``config.py``: the template ``templates/config.py`` with the plan's Config fields."""
    prefix = plan.package.upper() + "_"
    # a field set by either name: Config(field=...) too
    aliases = any(f.env_var for f in plan.config_fields)
    settings = "SettingsConfigDict(env_prefix={prefix}, env_file='.env', extra='ignore'{more})"
    settings = settings.format(prefix="{prefix}", more=", populate_by_name=True" if aliases else "")
    used = any(f.default == "default_output_dir()" for f in plan.config_fields)
    holes = {
        "NOTEBOOK_FOLDER": _notebook_dir(analysis, out),
        "SETTINGS": parse_template_expression(settings, prefix=string(prefix)),
    }
    module = fill_template(
        "config.py", _config_doc(plan), holes, () if used else ("default_output_dir",)
    )
    validator = _inputs_validator(plan, prefix)
    members = [*map(_config_field(plan), plan.config_fields), *validator]
    comment = cst.Comment("# the notebook has no parameters cell and no hard-coded paths")
    footer = [] if plan.config_fields else [cst.EmptyLine(), cst.EmptyLine(comment=comment)]
    module = append_to_class(module, "Config", members, footer)
    words = {w for f in plan.config_fields for w in _words(f.annotation)}
    imports = [ImportItem("pydantic", "Field")] if plan.config_fields else []
    imports += [ImportItem("pydantic", "SecretStr")] if "SecretStr" in words else []
    imports += [ImportItem("pydantic", "AliasChoices")] if aliases else []
    if validator:  # the validator returns Config, named in its own class
        imports += [
            ImportItem("pydantic", "model_validator"),
            ImportItem("__future__", "annotations"),
        ]
    return add_imports(module, imports).code


def _config_doc(plan: Plan) -> str:
    """The docstring of the generated ``config.py``."""
    prefix = plan.package.upper() + "_"
    outputs = any(f.output_file for f in plan.config_fields)
    return (
        f"Configuration of the {plan.package} pipeline: the notebook's parameters and hard-coded paths.\n\n"
        f"Every field can be set in the environment as {prefix}<FIELD> or in a .env file. Relative\n"
        f"paths resolve from data_dir ({prefix}DATA_DIR), the folder of the notebook's data"
        + (
            f";\nthe files the notebook writes resolve from output_dir ({prefix}OUTPUT_DIR).\n"
            if outputs
            else ".\n"
        )
    )


def _config_field(plan: Plan) -> Callable[[ConfigField], cst.SimpleStatementLine]:
    """The statement declaring a field of Config (after a blank line)."""
    prefix = plan.package.upper() + "_"
    read = {p.name for step in plan.steps for p in step.inputs}

    def field(f: ConfigField) -> cst.SimpleStatementLine:
        # a secret has no default: it comes from the environment, or Config() refuses to start;
        # one that no step reads is optional (the notebook assigned it and never used it)
        annotation = f.annotation
        default: list[cst.Arg] = []
        if f.default:  # (a secret's is empty)
            default = [cst.Arg(cst.parse_expression(f.default), keyword=cst.Name("default"))]
        args: list[cst.Arg] = [] if f.secret else default
        if f.secret and f.name not in read:
            annotation = f"{f.annotation} | None"
            args = [cst.Arg(cst.Name("None"), keyword=cst.Name("default"))]
        elif f.env_var:  # the variable the notebook read sets it too; its default, if it had one
            names = [cst.Arg(string(prefix + f.name.upper())), cst.Arg(string(f.env_var))]
            alias = cst.Call(cst.Name("AliasChoices"), names)
            args = [*default, cst.Arg(alias, keyword=cst.Name("validation_alias"))]
        elif f.default in ("default_data_dir()", "default_output_dir()"):
            args = [cst.Arg(cst.Name(f.default[:-2]), keyword=cst.Name("default_factory"))]
        args.append(cst.Arg(string(f.description), keyword=cst.Name("description")))
        if f.constraints:
            constraints = cst.parse_expression(f"Field({f.constraints})")
            assert isinstance(constraints, cst.Call)
            args += constraints.args
        value = cst.Call(cst.Name("Field"), args)
        kind = cst.Annotation(cst.parse_expression(annotation))
        target = cst.AnnAssign(cst.Name(f.name), kind, value)
        return cst.SimpleStatementLine([target], leading_lines=[cst.EmptyLine()])

    return field


def _inputs_validator(plan: Plan, prefix: str) -> list[cst.BaseStatement]:
    """The model validator that checks the input files exist under data_dir (one line per missing file,
    naming the setting to change)."""
    inputs = [f.name for f in plan.config_fields if f.must_exist]
    if not inputs or not any(f.name == "data_dir" for f in plan.config_fields):
        return []
    message = cst.FormattedString(
        [
            cst.FormattedStringExpression(cst.Name("name")),
            cst.FormattedStringText(": no such file: "),
            cst.FormattedStringExpression(cst.Name("path")),
            cst.FormattedStringText(
                f"; set {prefix}DATA_DIR (or --data-dir) to the folder that holds it, or set "
            ),
            cst.FormattedStringExpression(cst.Name("name")),
        ]
    )
    names = cst.Tuple([cst.Element(string(name)) for name in inputs])
    validator = parse_template_statement(_VALIDATOR, inputs=names, message=message)
    return [validator.with_changes(leading_lines=[cst.EmptyLine()])]


#: Config's check that the files the notebook reads exist (``{inputs}``: their fields).
_VALIDATOR = """@model_validator(mode='after')
def _inputs_exist(self) -> Config:
    \"\"\"The files the notebook reads must exist (relative paths resolve from data_dir).\"\"\"
    for name in {inputs}:
        path = self.data_dir / str(getattr(self, name))
        if not path.exists():
            raise ValueError({message})
    return self
"""


def config_argument(plan: Plan, name: str, config: str) -> str:
    """How ``run`` (and an orchestrator's flow) passes the Config field ``name`` to a step: a
    secret's value, a file the notebook writes under ``output_dir``."""
    field = next(f for f in plan.config_fields if f.name == name)
    value = f"{config}.{name}"
    if field.secret:
        value += ".get_secret_value()"
    if field.output_file:  # a file the notebook writes: under output_dir
        value = f"output_file({config}.output_dir, {value})"
    return value


def _call_args(step: Step, plan: Plan, names: _Names) -> list[cst.Arg]:
    """The arguments of a step's call in ``run``: its inputs by name, from Config or from earlier steps."""
    args = []
    for p in step.inputs:
        if p.name in step.state:
            continue  # module state: a global of the steps module, not an argument
        value: cst.BaseExpression = cst.Name(p.name)
        if p.source == "config":  # (the Prefect flow passes the same: one expression for both)
            value = cst.parse_expression(config_argument(plan, p.name, names.config))
        args.append(cst.Arg(value, keyword=cst.Name(p.name)))
    return args


def _pipeline_module(plan: Plan, analysis: FullAnalysis, names: _Names) -> str:
    """The generated ``pipeline.py``: ``Results`` and ``run()``, which calls the steps in order."""
    results_cls = _free("Results", names.taken)
    doc = docstring(
        f"The {plan.package} pipeline: the notebook's steps in order, each logged with its duration "
        "and the shapes of what it produced."  # no newline: the formatter's one-line docstring, AST kept
    )
    results, type_imports = _results_class(plan, analysis, results_cls)
    module = cst.Module([doc, *type_imports, results, _run_function(plan, names, results_cls)])
    helpers = _pipeline_helpers(plan)
    shown = any(step.shown for step in plan.steps)
    steps_alias = names.steps if names.steps != "steps" else None
    imports = [
        ImportItem("__future__", "annotations"),
        ImportItem("dataclasses", "dataclass"),
        ImportItem("", "steps", steps_alias, relative=1),
        ImportItem("config", "Config", relative=1),
        *(ImportItem("results", n, relative=1) for n in _RESULTS_HELPERS if shown),
        *(ImportItem("support", helper, relative=1) for helper in helpers),
    ]
    code = module.code
    imports += [
        ImportItem("typing", n) for n in ("TYPE_CHECKING", "Any") if re.search(rf"\b{n}\b", code)
    ]
    return add_imports(module, imports).code


#: What ``run`` uses of the generated ``results.py`` when a step keeps a shown result.
_RESULTS_HELPERS = ("collected_results", "start_results", "write_metrics")


def _pipeline_helpers(plan: Plan) -> list[str]:
    """What ``run`` imports from the generated ``support.py``."""
    helpers = ["run_pipeline", "working_directory"]
    if plan.uses_plots:
        helpers += ["show_figures", "use_output_dir"]
    if any(f.output_file for f in plan.config_fields):
        helpers.append("output_file")
    if any(f.kind == "seed" for f in plan.config_fields):
        helpers.append("seed_everything")
    network_helper, _ = pipeline_setup(plan.config_fields, "config")
    helpers += [network_helper] if network_helper else []
    if any(f.secret for f in plan.config_fields):
        helpers.append("hide_secrets")
    return sorted(helpers)


def _run_function(plan: Plan, names: _Names, results_cls: str) -> cst.FunctionDef:
    """``run(config)``: the set-up, each step timed and logged, the results."""
    cfg, steps_mod = cst.Name(names.config), cst.Name(names.steps)
    seed = next((f.name for f in plan.config_fields if f.kind == "seed"), None)
    shown = any(step.shown for step in plan.steps)
    parts = {"cfg": cfg, "cls": cst.Name(results_cls)}
    function = parse_template_statement(
        "def run({cfg}: Config | None = None) -> {cls}:\n    pass\n", **parts  # type: ignore[arg-type]
    )
    assert isinstance(function, cst.FunctionDef)
    body: list[cst.BaseStatement] = [
        docstring(
            f"Run every step with ``{names.config}`` (default: ``Config()``); return the fitted models, the "
            "results the notebook showed and its final values."
        ),
        parse_template_statement("{cfg} = {cfg} if {cfg} is not None else Config()", cfg=cfg),
    ]
    if shown:
        body.append(cst.parse_statement("start_results()"))
    if plan.settings:
        call = parse_template_statement(
            "{steps}.{name}()", steps=steps_mod, name=cst.Name(names.settings)
        )
        body.append(_trailing_comment(call, "# process-wide settings, once"))
    if plan.uses_plots:
        body.append(parse_template_statement("use_output_dir({cfg}.output_dir)", cfg=cfg))
    if seed:
        body.append(
            parse_template_statement("seed_everything({cfg}.{seed})", cfg=cfg, seed=cst.Name(seed))
        )
    _, network_lines = pipeline_setup(plan.config_fields, names.config)
    body += [cst.parse_statement(line.strip()) for line in network_lines]
    if any(f.secret for f in plan.config_fields):
        hide = parse_template_statement("hide_secrets({cfg})", cfg=cfg)
        body.append(_trailing_comment(hide, "# no log line shows a secret's value"))
    body += _rebound_names(plan)
    body.append(_steps_block(plan, names))
    if shown:
        body.append(
            parse_template_statement(
                "write_metrics({cfg}.output_dir, collected_results())", cfg=cfg
            )
        )
    fields = [cst.Arg(cst.Name(r), keyword=cst.Name(r)) for r in results_fields(plan)]
    body.append(cst.SimpleStatementLine([cst.Return(cst.Call(cst.Name(results_cls), fields))]))
    return function.with_changes(
        body=function.body.with_changes(body=body), leading_lines=[cst.EmptyLine(), cst.EmptyLine()]
    )


def _trailing_comment(statement: cst.BaseStatement, comment: str) -> cst.BaseStatement:
    """A one-line statement with ``comment`` at the end of its line."""
    assert isinstance(statement, cst.SimpleStatementLine)
    return statement.with_changes(
        trailing_whitespace=cst.TrailingWhitespace(cst.SimpleWhitespace("  "), cst.Comment(comment))
    )


def _rebound_names(plan: Plan) -> list[cst.BaseStatement]:
    """A name bound by several steps with different types: declared Any once, so mypy accepts the rebinding."""
    seen_types: dict[str, set[str]] = {}
    for step in plan.steps:
        for o in step.outputs:
            seen_types.setdefault(o.name, set()).add(o.annotation or "")
    return [
        cst.SimpleStatementLine([cst.AnnAssign(cst.Name(name), cst.Annotation(cst.Name("Any")))])
        for name, kinds in seen_types.items()
        if len(kinds - {""}) > 1
    ]


def _steps_block(plan: Plan, names: _Names) -> cst.BaseStatement:
    """``with working_directory(...), run_pipeline(...) as run_log:`` and in it each step's call, timed and logged."""
    run_log, step_log = cst.Name(names.run_log), cst.Name(names.step_log)
    calls: list[cst.BaseStatement] = []
    for step in plan.steps:
        outputs = [cst.Name(o.name) for o in step.outputs]
        call = cst.Call(
            cst.Attribute(cst.Name(names.steps), cst.Name(step.name)), _call_args(step, plan, names)
        )
        inner: list[cst.BaseStatement] = [cst.SimpleStatementLine([cst.Expr(call)])]
        if outputs:
            targets = cst.Tuple([cst.Element(o) for o in outputs], lpar=[], rpar=[])
            assign = cst.Assign(
                [cst.AssignTarget(targets if len(outputs) > 1 else outputs[0])], call
            )
            produced = cst.Call(
                cst.Attribute(step_log, cst.Name("produced")),
                [cst.Arg(o, keyword=cst.Name(o.value)) for o in outputs],
            )
            inner = [
                cst.SimpleStatementLine([assign]),
                cst.SimpleStatementLine([cst.Expr(produced)]),
            ]
        calls.append(
            parse_template_statement(
                "with {log}.step({name}) as {slog}:\n    pass\n",
                log=run_log,
                name=string(step.name),
                slog=step_log,
            ).with_changes(body=cst.IndentedBlock(inner))
        )
        if plan.uses_plots:
            calls.append(parse_template_statement("show_figures({name})", name=string(step.name)))
    block = parse_template_statement(
        "with working_directory({cfg}.data_dir), run_pipeline({pkg}) as {log}:\n    pass\n",
        cfg=cst.Name(names.config),
        pkg=string(plan.package),
        log=run_log,
    )
    assert isinstance(block, cst.With)
    return block.with_changes(
        body=cst.IndentedBlock(calls or [cst.SimpleStatementLine([cst.Pass()])])
    )


def results_fields(plan: Plan) -> dict[str, str | None]:
    """The fields of the pipeline's ``Results``: every step's results (fitted models, shown values, final
    values), with the annotation of the last step that returns each."""
    fields: dict[str, str | None] = {}
    for step in plan.steps:
        types = {o.name: o.annotation for o in step.outputs}
        for name in step.results:
            fields[name] = types.get(name) or fields.get(name)
    return fields


def _results_class(
    plan: Plan, analysis: FullAnalysis, cls: str
) -> tuple[cst.ClassDef, list[cst.If]]:
    """The ``Results`` dataclass, and the ``if TYPE_CHECKING:`` block importing what its annotations name (for
    type checkers only: ``from __future__ import annotations`` keeps them unevaluated)."""
    fields = results_fields(plan)
    imports, known = _annotation_imports(analysis, [t for t in fields.values() if t])
    hoisted = sorted({n for t in fields.values() if t for n in _words(t)} & set(plan.hoisted))
    if hoisted:
        aliases = [cst.ImportAlias(cst.Name(n)) for n in hoisted]
        imports.append(cst.ImportFrom(cst.Name("steps"), aliases, relative=[cst.Dot()]))
    known |= set(hoisted) | BUILTINS
    for name, annotation in fields.items():
        if annotation and not _words(annotation) <= known:
            fields[name] = None  # a type only the notebook had (or a local class): Any
    block: list[cst.If] = []
    if imports:
        lines = [cst.SimpleStatementLine([i]) for i in imports]
        block = [
            cst.If(
                cst.Name("TYPE_CHECKING"), cst.IndentedBlock(lines), leading_lines=[cst.EmptyLine()]
            )
        ]
    doc = docstring(
        "What a run produced: the fitted models, the results the notebook showed and its final "
        "values (not the intermediate values that only feed later steps)."
    )
    members = [
        cst.SimpleStatementLine(
            [
                cst.AnnAssign(
                    cst.Name(name), cst.Annotation(cst.parse_expression(annotation or "Any"))
                )
            ],
            leading_lines=[cst.EmptyLine()] if i == 0 else [],
        )
        for i, (name, annotation) in enumerate(fields.items())
    ]
    decorator = cst.Decorator(parse_template_expression("dataclass(frozen=True)"))
    return (
        cst.ClassDef(
            cst.Name(cls),
            cst.IndentedBlock([doc, *members]),
            decorators=[decorator],
            leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
        ),
        block,
    )


def _words(annotation: str) -> set[str]:
    return set(re.findall(r"(?<![\w.])[A-Za-z_]\w*", annotation))


def _annotation_imports(
    analysis: FullAnalysis, annotations: list[str]
) -> tuple[list[cst.Import | cst.ImportFrom], set[str]]:
    """The imports of the imported names the annotations use (``pd`` -> ``import pandas as pd``), sorted by their
    text, and those names."""
    facts = analysis.facts
    assert facts is not None
    used = {n for text in annotations for n in _words(text)}
    found: dict[str, cst.Import | cst.ImportFrom] = {}
    for cf in facts.cells.values():
        for st in cf.statements:
            if st.kind != "import" or st.star_import is not None:
                continue
            for bound, qualified in st.import_names:
                if bound not in used or bound in facts.conflicting_imports:
                    continue
                found[bound] = _import_of(bound, qualified)
    unique = {cst.Module([]).code_for_node(node): node for node in found.values()}
    return [unique[text] for text in sorted(unique)], set(found)


def _import_of(bound: str, qualified: str) -> cst.Import | cst.ImportFrom:
    """The import that binds ``bound`` to ``qualified`` (``pd``, ``pandas`` -> ``import pandas as pd``)."""
    module, _, name = qualified.lstrip(".").rpartition(".")
    alias = None if name == bound else cst.AsName(cst.Name(bound))
    if module and not qualified.startswith("."):
        dotted = cst.parse_expression(module)
        assert isinstance(dotted, cst.Name | cst.Attribute)
        return cst.ImportFrom(dotted, [cst.ImportAlias(cst.Name(name), asname=alias)])
    target = cst.parse_expression(qualified)
    assert isinstance(target, cst.Name | cst.Attribute)
    alias = None if qualified == bound else cst.AsName(cst.Name(bound))
    return cst.Import([cst.ImportAlias(target, asname=alias)])


_CLI_RESERVED = {
    "parameter",
    "log_format",
    "log_level",
    "deterministic",
    "main",
    "app",
    "run",
    "Config",
    "reproduce",
}


def _main_module(plan: Plan, analysis: FullAnalysis) -> str:
    """The generated ``__main__.py``: the template ``templates/cli_main.py``, a Typer command line, with an option
    per Config field (secrets excepted) before its own (``-p``, logging options, ``--deterministic``).
    """
    secrets = [f.name for f in plan.config_fields if f.secret]
    fields = [f for f in plan.config_fields if not f.secret and f.name not in _CLI_RESERVED]
    module = fill_template(
        "cli_main.py",
        f"Command line of the {plan.package} pipeline: ``python -m {plan.package} --help``.",
        {
            "HELP": string(f"Run the {plan.package} pipeline."),
            "EPILOG": string(_cli_epilog(plan, secrets)),
            "SECRETS": cst.Tuple([cst.Element(string(name)) for name in sorted(secrets)]),
            "GIVEN": cst.Dict([cst.DictElement(string(f.name), _cli_given(f)) for f in fields]),
        },
        prepend={"main": [_cli_option(f) for f in fields]},
    )
    return module.code


def _cli_epilog(plan: Plan, secrets: list[str]) -> str:
    """The help text's last paragraph: where options and secrets can be set besides the command line."""
    prefix = plan.package.upper() + "_"
    epilog = f"Every option can also be set in the environment as {prefix}<NAME> or in a .env file."
    if secrets:
        read = env_fields(plan.config_fields)  # a secret the notebook read: its variable works too
        also = {name: f" (or {var})" for var, name in read.items()}
        epilog += (
            " Secrets are read from the environment only: "
            + ", ".join(prefix + s.upper() + also.get(s, "") for s in secrets)
            + "."
        )
    return epilog


def _cli_option(f: ConfigField) -> cst.Param:
    """The option of ``main`` that sets the field ``f``: typed for the types Typer parses, else JSON text."""
    if f.annotation in _TYPER_TYPES:
        kind, help_text, option = cst.Name(f.annotation), f.description, "typer.Option(help={help})"
    else:
        kind, help_text = cst.Name("str"), f"{f.description} (JSON, {f.annotation})"
        option = "typer.Option(help={help}, metavar='JSON')"
    annotation = parse_template_expression(
        f"Annotated[Optional[{{kind}}], {option}]", kind=kind, help=string(help_text)
    )
    return cst.Param(cst.Name(f.name), cst.Annotation(annotation), default=cst.Name("None"))


def _cli_given(f: ConfigField) -> cst.BaseExpression:
    """What ``main`` passes on for the field ``f``: the option's value, parsed when it is JSON text."""
    if f.annotation in _TYPER_TYPES:
        return cst.Name(f.name)
    return cst.Call(cst.Name("_json"), [cst.Arg(string(f.name)), cst.Arg(cst.Name(f.name))])


#: The generated ``support.py``: a real module (nbharden/templates/support.py).
SUPPORT = template_text("support.py")


def _pyproject(plan: Plan, analysis: FullAnalysis) -> str:
    deps = sorted({*plan.dependencies, "pydantic-settings", "typer"}, key=str.lower)
    dist = plan.package.replace("_", "-")
    dep_lines = "".join(f'    "{d}",\n' for d in deps)
    return (
        "[build-system]\n"
        'requires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n\n'
        "[project]\n"
        f'name = "{dist}"\n'
        'version = "0.1.0"\n'
        f'description = "Pipeline extracted by nbharden from {analysis.notebook.path.name}"\n'
        'readme = "README.md"\n'
        'requires-python = ">=3.11"\n'
        f"dependencies = [\n{dep_lines}]\n\n"
        "[project.optional-dependencies]\n"
        'test = [\n    "pytest",\n]\n\n'
        "[project.scripts]\n"
        f'{dist} = "{plan.package}.__main__:app"\n\n'
        "[tool.hatch.build.targets.wheel]\n"
        f'packages = ["src/{plan.package}"]\n\n'
        "[tool.pytest.ini_options]\n"
        'pythonpath = ["src"]\n'
        'testpaths = ["tests"]\n\n'
        "[tool.ruff]\n"
        "line-length = 88\n"
        'target-version = "py311"\n'
        # the modules copied from the notebook's folder are the notebook author's code, kept as written
        + (
            f'extend-exclude = ["src/{plan.package}/{VENDORED}"]\n'
            if analysis.notebook.local_modules
            else ""
        )
        + "\n"
        "[tool.ruff.lint]\n"
        'select = ["E4", "E7", "E9", "F", "I"]\n\n'
        "[tool.mypy]\n"
        'mypy_path = "src"\n'
        "ignore_missing_imports = true\n"
        # Settings fields are read from the environment: Config() is a complete call, which
        # mypy knows only through pydantic's plugin (a required SecretStr is otherwise a
        # missing argument)
        'plugins = ["pydantic.mypy"]\n'
    )


def environment_module() -> str:
    """``environment.py`` of a generated package: the template with RECORDED set to the variables the
    recorder sets (``record.KERNEL_ENV``), which ``--deterministic`` and the tests reproduce.
    """
    from nbharden.record.run import KERNEL_ENV

    text = template_text("environment.py")
    line = "RECORDED: dict[str, str] = {}"
    if line not in text:
        raise InternalError("templates/environment.py has no RECORDED line")
    return text.replace(line, f"RECORDED: dict[str, str] = {dict(sorted(KERNEL_ENV.items()))!r}", 1)


def _smoke_tests(plan: Plan, folder: Path) -> dict[str, str]:
    code = (
        _doc(f"Smoke tests of the {plan.package} package (a recorded run adds value-level tests).")
        + "\n\n"
        "from dataclasses import fields\n\n"
        "import pytest\n\n"
        f"from {plan.package}.config import Config\n"
        f"from {plan.package}.pipeline import run\n\n\n"
        "def test_config_defaults_validate() -> None:\n"
        "    config = Config()\n"
        "    assert Config(**config.model_dump()) == config\n\n\n"
        "def test_pipeline_runs_with_default_config(tmp_path, monkeypatch) -> None:\n"
        + (
            "    config = Config(output_dir=tmp_path)\n"
            if any(f.name == "output_dir" for f in plan.config_fields)
            else "    config = Config()\n"
        )
        + "    results = run(config)\n"
        f"    assert [f.name for f in fields(results)] == {list(results_fields(plan))!r}\n"
    )
    for f in plan.config_fields:
        value = breaking_value(f)
        if value is None:
            continue
        code += (
            f"\n\ndef test_config_rejects_a_bad_{f.name}() -> None:\n"
            f"    with pytest.raises(ValidationError, match={f.name!r}):\n"
            f"        Config({f.name}={value})\n"
        )
        if "from pydantic import ValidationError" not in code:
            code = code.replace(
                "import pytest\n", "import pytest\nfrom pydantic import ValidationError\n", 1
            )
    if any(f.annotation in {"int", "float"} for f in plan.config_fields):
        f = next(f for f in plan.config_fields if f.annotation in {"int", "float"})
        code += (
            "\n\ndef test_config_rejects_a_bad_value() -> None:\n"
            "    with pytest.raises(ValueError):\n"
            f"        Config({f.name}='not a number')\n"
        )
    files = {"tests/test_smoke.py": code}
    # hermetic like the recorded suites: a folder of its own per test, copies of the inputs, no
    # network, the recorded environment (the secrets get placeholders there too)
    from nbharden.record.run import KERNEL_ENV
    from nbharden.testgen.generate import hermetic_files

    files.update(hermetic_files(plan, plan.package, folder, KERNEL_ENV))
    return files


def emit(
    analysis: FullAnalysis, plan: Plan, *, out: Path, settings: Settings
) -> tuple[FileTree, tuple[Finding, ...]]:
    """Build the output project in memory. Returns the tree and every finding (analysis, plan, transform)."""
    facts = analysis.facts
    if facts is None:
        raise InternalError("emit needs a full analysis", path=analysis.notebook.path)
    if not plan.statements and any(cf.statements for cf in facts.cells.values()):
        # a plan not made by make_plan (or made from other facts): emit would drop every statement silently
        raise InternalError("the plan carries no statement decisions", path=analysis.notebook.path)
    names = _Names(facts, plan, analysis.notebook.local_modules)
    names.gate = gate(analysis.notebook, settings.rules)
    counters = {"print": 0, "show": 0}
    pkg = plan.package
    files = {
        f"src/{pkg}/__init__.py": _doc(
            f"{pkg}: pipeline extracted by nbharden from {analysis.notebook.path.name}."
        )
        + '\n\n__all__ = ["Config", "run"]\n\nfrom .config import Config\nfrom .pipeline import run\n',
        f"src/{pkg}/steps.py": complete_annotations(_steps_module(analysis, plan, names, counters)),
        f"src/{pkg}/config.py": _config_module(plan, analysis, out),
        f"src/{pkg}/pipeline.py": complete_annotations(_pipeline_module(plan, analysis, names)),
        f"src/{pkg}/__main__.py": _main_module(plan, analysis),
        f"src/{pkg}/support.py": (
            support_module(SUPPORT) if uses_network(plan.config_fields) else SUPPORT
        )
        + (SECRETS_SUPPORT if any(f.secret for f in plan.config_fields) else ""),
        f"src/{pkg}/environment.py": environment_module(),
        "README.md": render_readme(plan, analysis.notebook.path.name, _notebook_from(analysis, out)),
        f"src/{pkg}/py.typed": "",
        **(
            {f"src/{pkg}/results.py": template_text("results.py")}
            if any(step.shown for step in plan.steps)
            else {}
        ),
        "pyproject.toml": with_lower_bounds(_pyproject(plan, analysis), {}),
        **_smoke_tests(plan, analysis.notebook.path.resolve().parent),
        **vendored_files(analysis.notebook.local_modules, pkg),
    }
    findings = names.network.findings([*analysis.findings, *plan.findings])
    if any(f.kind == "seed" for f in plan.config_fields):
        findings = [
            dataclasses.replace(f, applied=True) if f.code == "NBH401" and f.fix is Fix.UNSAFE else f for f in findings
        ]
    if counters["print"]:
        findings.append(
            Finding(
                "NBH604",
                f"{counters['print']} print() call(s) became logging calls",
                None,
                Severity.INFO,
                Fix.SAFE,
                applied=True,
            )
        )
    if counters["show"]:
        findings.append(
            Finding(
                "NBH605",
                f"{counters['show']} plt.show() call(s) save figures to Config.output_dir",
                None,
                Severity.INFO,
                Fix.SAFE,
                applied=True,
            )
        )
    findings.extend(_display_findings(analysis, plan))
    findings = [dataclasses.replace(f, message=redact(f.message, names.scrub)) for f in findings]
    return FileTree.of(files), tuple(sorted(findings, key=finding_key))


def _display_findings(analysis: FullAnalysis, plan: Plan) -> list[Finding]:
    """NBH603 for each cell dropped as display-only, and for each display-only statement dropped from a kept
    cell: a value the cell shows that is a preview of data (``df.head()``, a bare frame), not a result
    (``nbharden.shown`` keeps those), or a display that is not the cell's last expression, which shows nothing.
    """
    facts = analysis.facts
    assert facts is not None
    dropped = _display_cells(analysis, plan)
    out = [
        Finding(
            "NBH603",
            "cell only displays values; dropped from the package",
            Span(i, 1, 1),
            Severity.INFO,
            Fix.SAFE,
            applied=True,
        )
        for i in dropped
    ]
    display = {(s.cell, s.index) for s in plan.statements if s.role == "display"}
    for c in analysis.cells:
        cf = facts.cells[c.index]
        if c.index in dropped:
            continue
        for i, st in enumerate(cf.statements):
            if (c.index, i) not in display:
                continue
            text = " ".join(cst.Module([]).code_for_node(cf.module.body[i]).split())
            text = text if len(text) <= 60 else text[:57] + "..."
            if shown_expression(cf.module.body[i], i == len(cf.statements) - 1, facts.shadowed):
                why = "shows a preview of data, not a result"
            else:
                why = "shows nothing (not the cell's last expression)"
            out.append(
                Finding(
                    "NBH603",
                    f"'{text}' {why}: dropped",
                    Span(c.index, st.line, 1),
                    Severity.INFO,
                    Fix.SAFE,
                    applied=True,
                )
            )
    return out


def _display_cells(analysis: FullAnalysis, plan: Plan) -> list[int]:
    in_steps = {c for s in plan.steps for c in s.cells}
    roles: dict[int, list[str]] = {}
    for statement in plan.statements:
        roles.setdefault(statement.cell, []).append(statement.role)
    return [
        c.index
        for c in analysis.cells
        if c.index not in in_steps
        and roles.get(c.index)
        and all(role == "display" for role in roles[c.index])
    ]


def finding_key(f: Finding) -> tuple[int, int, int, str, str]:
    if f.span is None:
        return (10**9, 0, 0, f.code, f.message)
    return (f.span.cell, f.span.line, f.span.col, f.code, f.message)
