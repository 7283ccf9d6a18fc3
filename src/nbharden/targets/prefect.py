"""``--target prefect``: the plan as a Prefect 3 flow, next to ``pipeline.py``.

``flow.py`` has one task per step (the step function itself, so its parameters and return values are
the step's) and a flow whose parameters are the Config fields. The flow submits every step at once;
Prefect starts a step when the values it takes (its futures) are ready, so steps that do not depend on
each other run at the same time and the flow run's graph is the notebook's data flow. Besides the
values a step takes, it waits for the earlier steps it must follow: a step that changes a value in
place waits for the steps that read the value before it, and steps that share process-wide state
(the global random generators, matplotlib's figures, files, the shell) keep their notebook order.

What the pipeline does around the steps (the working folder, seeding, the figure folder, the network
settings, what it does after the steps and what it returns) is read from the generated ``run`` itself,
so the flow returns what ``pipeline.run`` returns. nbharden imports nothing from Prefect: the flow's
helpers are ``nbharden/templates/prefect_runtime.py``, written into the package as ``orchestration.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import cast

import libcst as cst

from nbharden.analyse import BUILTINS, FullAnalysis
from nbharden.emit import config_argument
from nbharden.errors import InternalError
from nbharden.models import Effect, FileTree, Plan
from nbharden.testgen.generate import comparison_files
from nbharden.transform.codemods import names_in

#: Process-wide state two steps must not use at the same time; steps using one keep their notebook order.
_SHARED = {Effect.RANDOM: "random", Effect.PLOT: "plot", Effect.SHELL: "shell"}
_TYPING = {"Any", "Literal", "Optional", "Union"}


def _template(name: str) -> str:
    return resources.files("nbharden").joinpath("templates", name).read_text(encoding="utf-8")


def step_effects(plan: Plan, analysis: FullAnalysis) -> dict[str, frozenset[Effect]]:
    """The effects of each step's cells (unseeded randomness, NBH401, counts as ``Effect.RANDOM``)."""
    by_cell = {c.index: set(c.effects) for c in analysis.cells}
    for finding in analysis.findings:
        if finding.code == "NBH401" and finding.span is not None:
            by_cell.setdefault(finding.span.cell, set()).add(Effect.RANDOM)
    return {
        step.name: frozenset(e for cell in step.cells for e in by_cell.get(cell, ()))
        for step in plan.steps
    }


def _resources(effects: frozenset[Effect]) -> set[str]:
    """What shared state a step uses: ``files-read``/``files-write`` or one of ``_SHARED``'s values."""
    used = {_SHARED[e] for e in effects if e in _SHARED}
    if Effect.FILE_READ in effects:
        used.add("files-read")
    if Effect.FILE_WRITE in effects:
        used.add("files-write")
    return used


def _conflict(earlier: set[str], later: set[str]) -> bool:
    if "shell" in earlier or "shell" in later:
        return bool(earlier) and bool(later)  # a shell command may change any shared state
    if earlier & later & {"random", "plot", "files-write"}:
        return True
    return ("files-write" in earlier and "files-read" in later) or (
        "files-read" in earlier and "files-write" in later
    )


def waits(plan: Plan, effects: Mapping[str, frozenset[Effect]]) -> dict[str, tuple[str, ...]]:
    """For each step, the earlier steps it must wait for besides those whose values it takes.

    A step that changes a value in place waits for the earlier steps that read the same value (the
    same binding); steps whose effects conflict (``_conflict``) keep their notebook order. A step it
    already follows (through the values it takes or another wait) is left out, so the flow run's graph
    has no redundant edges.
    """
    steps = plan.steps
    used = {s.name: _resources(effects.get(s.name, frozenset())) for s in steps}
    ancestors: dict[str, set[str]] = {}
    result: dict[str, tuple[str, ...]] = {}
    for j, step in enumerate(steps):
        sources = {p.name: p.source for p in step.inputs}
        follows: set[str] = set()
        for source in set(sources.values()) - {"config"}:
            follows |= {source, *ancestors.get(source, ())}
        before: list[str] = []
        for earlier in reversed(steps[:j]):  # the latest first: waiting for it covers its own waits
            if earlier.name in follows:
                continue
            reads_changed = any(
                p.name in step.mutated and p.source == sources.get(p.name) for p in earlier.inputs
            )
            if reads_changed or _conflict(used[earlier.name], used[step.name]):
                before.insert(0, earlier.name)
                follows |= {earlier.name, *ancestors[earlier.name]}
        ancestors[step.name] = follows
        result[step.name] = tuple(before)
    return result


@dataclass(frozen=True)
class PipelineRun:
    """What the flow takes from the generated ``pipeline.run``."""

    config: str  # the name of run's Config parameter
    steps_module: str  # the name pipeline.py imports the steps module as
    imports: tuple[cst.BaseStatement, ...]  # pipeline.py's imports (and TYPE_CHECKING blocks)
    defined: frozenset[str]  # names pipeline.py defines besides run (a results class)
    setup: tuple[cst.BaseStatement, ...]  # run's statements before the steps
    contexts: tuple[cst.WithItem, ...]  # what the steps run in (the working folder), not run's log
    after: tuple[cst.BaseStatement, ...]  # run's statements after the steps, before its return
    returned: cst.Return
    returns: cst.Annotation | None


def _is_log(item: cst.WithItem) -> bool:
    call = item.item
    return (
        isinstance(call, cst.Call)
        and isinstance(call.func, cst.Name)
        and call.func.value == "run_pipeline"
    )


def _module_parts(
    module: cst.Module,
) -> tuple[list[cst.BaseStatement], set[str], str, cst.FunctionDef]:
    imports: list[cst.BaseStatement] = []
    defined: set[str] = set()
    steps_module, run = "", None
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine) and isinstance(
            stmt.body[0], cst.Import | cst.ImportFrom
        ):
            node = stmt.body[0]
            if isinstance(node, cst.ImportFrom) and isinstance(node.module, cst.Name):
                if node.module.value == "__future__":
                    continue
            if (
                isinstance(node, cst.ImportFrom)
                and node.module is None
                and not isinstance(node.names, cst.ImportStar)
            ):
                for alias in node.names:
                    if cst.ensure_type(alias.name, cst.Name).value == "steps":
                        steps_module = alias.evaluated_alias or "steps"
            imports.append(stmt.with_changes(leading_lines=[]))
        elif isinstance(stmt, cst.If):  # if TYPE_CHECKING: imports for annotations
            imports.append(stmt.with_changes(leading_lines=[]))
        elif isinstance(stmt, cst.FunctionDef) and stmt.name.value == "run":
            run = stmt
        elif isinstance(stmt, cst.FunctionDef | cst.ClassDef):
            defined.add(stmt.name.value)
    if run is None or not steps_module:
        raise InternalError(
            "internal error (please report): pipeline.py has no run() or no steps import"
        )
    return imports, defined, steps_module, run


def read_run(source: str) -> PipelineRun:
    """Split the generated ``pipeline.py`` into what the flow reuses. Raises ``InternalError`` when
    ``run`` is not the shape ``nbharden.emit`` writes (its steps inside ``with ... run_pipeline(...)``).
    """
    imports, defined, steps_module, run = _module_parts(cst.parse_module(source))
    config = run.params.params[0].name.value
    setup: list[cst.BaseStatement] = []
    after: list[cst.BaseStatement] = []
    contexts: tuple[cst.WithItem, ...] | None = None
    returned: cst.Return | None = None
    body = cast(Sequence[cst.BaseStatement], run.body.body)
    for stmt in body[1:]:  # after the docstring
        if isinstance(stmt, cst.With) and any(_is_log(item) for item in stmt.items):
            contexts = tuple(item for item in stmt.items if not _is_log(item))
            continue
        small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) else None
        if isinstance(small, cst.Return):
            returned = small
        elif isinstance(small, cst.AnnAssign) and small.value is None:
            continue  # "x: Any", for the type checker
        elif isinstance(small, cst.Assign) and names_in(small.targets[0].target) == {config}:
            continue  # config = config if config is not None else Config()
        else:
            (setup if contexts is None else after).append(stmt)
    if contexts is None or returned is None:
        raise InternalError(
            "internal error (please report): pipeline.run has no step block or no return"
        )
    return PipelineRun(
        config,
        steps_module,
        tuple(imports),
        frozenset(defined),
        tuple(setup),
        contexts,
        tuple(after),
        returned,
        run.returns,
    )


def _free(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _stmt(code: str) -> cst.BaseStatement:
    return cst.parse_statement(code + "\n")


def _doc(text: str) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(
        [cst.Expr(cst.SimpleString('"""' + text.replace('"""', "'''") + '"""'))]
    )


@dataclass(frozen=True)
class _Names:
    """Names the flow module introduces, free of the package's own (steps, Config fields, outputs)."""

    flow: str
    flow_config: str
    given: str
    options: str
    retries: str
    delay: str
    timeout: str
    tasks: dict[str, str]  # step -> its task's name in flow.py
    runs: dict[str, str]  # step -> its future's name in the flow


def _choose_names(plan: Plan, run: PipelineRun) -> _Names:
    taken = {s.name for s in plan.steps} | {f.name for f in plan.config_fields}
    taken |= {o.name for s in plan.steps for o in s.outputs} | set(run.defined)
    taken |= {run.config, run.steps_module, "flow", "task", "wait", "Config", "NO_CACHE", "Field"}
    taken |= {"Output", "finish", "run_and_report", "saving_figures", "SecretBlocks"}
    taken |= {"task_options", "task_runner", "show_figures", "run_flow", "PARAMETERS", "Any"}
    fields = {f.name for f in plan.config_fields}
    return _Names(
        flow=_free(f"{plan.package}_flow", taken),
        flow_config=_free("FlowConfig", taken),
        given=_free("given", taken),
        options=_free("options", taken),
        retries=_free("task_retries", taken | fields),
        delay=_free("task_retry_delay", taken | fields),
        timeout=_free("task_timeout", taken | fields),
        tasks={s.name: _free(f"{s.name}_task", taken) for s in plan.steps},
        runs={s.name: _free(f"{s.name}_run", taken) for s in plan.steps},
    )


def _task_definitions(plan: Plan, run: PipelineRun, names: _Names) -> list[cst.BaseStatement]:
    """``<step>_task = task(name=...)(steps.<step>)``: the step function itself, so the task's parameters
    and return values are the step's. No cache (inputs are frames and models) and no persisted results.
    """
    out: list[cst.BaseStatement] = []
    for step in plan.steps:
        function = f"{run.steps_module}.{step.name}"
        if plan.uses_plots:  # the pipeline saves the figures a step leaves open after each step
            function = f"saving_figures({function}, show_figures, {step.name!r})"
        out.append(
            _stmt(
                f"{names.tasks[step.name]} = task(name={step.name!r}, cache_policy=NO_CACHE, "
                f"persist_result=False)({function})"
            )
        )
    return out


def _submissions(
    plan: Plan, run: PipelineRun, names: _Names, after: Mapping[str, tuple[str, ...]]
) -> tuple[list[cst.BaseStatement], dict[str, str]]:
    """One ``.submit()`` per step, in notebook order; and what each name is bound to at the end (a
    future, or ``Output(future, i)`` for the i-th value of a step that returns several)."""
    bound: dict[str, tuple[str, str]] = (
        {}
    )  # name -> (the future of the step that made it, its expression)
    lines: list[cst.BaseStatement] = []
    stateful: str | None = None  # the last step that touched module state (Plan.module_state)
    for step in plan.steps:
        args, takes = [], set()
        # module state is a global of the steps module, not an argument: the steps that touch it keep
        # their notebook order, after the step that bound it
        state_waits = {
            names.runs[p.source]
            for p in step.inputs
            if p.name in step.state and p.source in names.runs
        }
        if step.state and stateful is not None:
            state_waits.add(stateful)
        for p in step.inputs:
            if p.name in step.state:
                continue
            if p.source == "config":
                value = config_argument(plan, p.name, run.config)
            elif p.name in bound:
                takes.add(bound[p.name][0])
                value = bound[p.name][1]
            else:
                raise InternalError(
                    f"internal error (please report): step {step.name} takes {p.name}, made by no step"
                )
            args.append(f"{p.name}={value}")
        waiting = [names.runs[s] for s in after.get(step.name, ()) if names.runs[s] not in takes]
        waiting += sorted(state_waits - takes - set(waiting))
        if step.state:
            stateful = names.runs[step.name]
        if waiting:
            args.append(f"wait_for=[{', '.join(waiting)}]")
        future = names.runs[step.name]
        task = f"{names.tasks[step.name]}.with_options(**{names.options})"
        lines.append(_stmt(f"{future} = {task}.submit({', '.join(args)})"))
        outputs = [o.name for o in step.outputs]
        for i, name in enumerate(outputs):
            bound[name] = (future, future if len(outputs) == 1 else f"Output({future}, {i})")
    return lines, {name: expr for name, (_, expr) in bound.items()}


def _annotation_imports(
    annotations: Iterable[str], config_names: set[str]
) -> list[cst.BaseStatement]:
    """Imports of the names the flow's parameter annotations use (Prefect evaluates them to validate
    the parameters): ``Path`` from pathlib, typing's names, anything else from ``.config``."""
    used: set[str] = set()
    for text in annotations:
        used |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)) - BUILTINS - {"None"}
    lines = []
    if "Path" in used:
        lines.append(_stmt("from pathlib import Path"))
    typing = (used & _TYPING) | {"Any"}  # Any: the flow's mapping of parameters
    lines.append(_stmt(f"from typing import {', '.join(sorted(typing))}"))
    rest = sorted(used - _TYPING - {"Path"} - config_names)
    if rest:
        lines.append(_stmt(f"from .config import {', '.join(rest)}"))
    return lines


def _parameters(plan: Plan, names: _Names) -> tuple[list[cst.Param], list[str]]:
    """The flow's parameters: every Config field but the secrets, then the task settings; all default to
    None, which leaves the value to Config (its default, ``<PKG>_<FIELD>`` in the environment, .env).
    """
    fields = [(f.name, f.annotation) for f in plan.config_fields if not f.secret]
    fields += [(names.retries, "int"), (names.delay, "float"), (names.timeout, "float")]
    params = []
    for name, annotation in fields:
        params.append(
            cst.Param(
                cst.Name(name),
                cst.Annotation(cst.parse_expression(f"{annotation} | None")),
                default=cst.Name("None"),
            )
        )
    return params, [name for name, _ in fields]


def _secrets(plan: Plan) -> tuple[str, ...]:
    return tuple(f.name for f in plan.config_fields if f.secret)


def _secret_sources(plan: Plan) -> list[cst.BaseStatement]:
    """Config's sources, then the Prefect Secret blocks of the secret fields (``SecretBlocks``):
    a secret set in the environment, ``.env`` or the secrets folder wins over its block."""
    secrets = _secrets(plan)
    if not secrets:
        return []
    block = plan.package.replace("_", "-")
    method = cst.parse_statement(
        "def settings_customise_sources(\n"
        "    cls, settings_cls: Any, init_settings: Any, env_settings: Any, dotenv_settings: Any,\n"
        "    file_secret_settings: Any,\n"
        ") -> tuple[Any, ...]:\n"
        "    sources = (init_settings, env_settings, dotenv_settings, file_secret_settings)\n"
        f"    return (*sources, SecretBlocks(settings_cls, {block!r}, {secrets!r}))\n"
    )
    assert isinstance(method, cst.FunctionDef)
    decorated = method.with_changes(
        decorators=[cst.Decorator(cst.Name("classmethod"))],
        leading_lines=[cst.EmptyLine()],
    )
    return [decorated]


def _flow_config(plan: Plan, names: _Names) -> cst.ClassDef:
    """``FlowConfig(Config)``: the Config with the settings of the tasks (retries, their delay, a time
    limit per step), read like every other field (``<PKG>_TASK_RETRIES`` in the environment...)."""
    prefix = plan.package.upper() + "_"
    body = [
        _doc(
            f"Config and the settings of the flow's tasks (also from the environment: {prefix}<FIELD>)."
        ),
        _stmt(
            f"{names.retries}: int = Field(default=0, ge=0, "
            "description='attempts more of a step after it fails (Prefect task retries)')"
        ),
        _stmt(
            f"{names.delay}: float = Field(default=10.0, ge=0, "
            "description='seconds before the first retry of a step; each next one waits twice as long')"
        ),
        _stmt(
            f"{names.timeout}: float | None = Field(default=None, gt=0, "
            "description='seconds one attempt of a step may run (none: no limit)')"
        ),
        *_secret_sources(plan),
    ]
    return cst.ClassDef(
        name=cst.Name(names.flow_config),
        bases=[cst.Arg(cst.Name("Config"))],
        body=cst.IndentedBlock(cast(Sequence[cst.BaseStatement], body)),
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
    )


def _flow_body(
    plan: Plan,
    run: PipelineRun,
    names: _Names,
    params: list[str],
    after: Mapping[str, tuple[str, ...]],
) -> list[cst.BaseStatement]:
    """Config from the parameters, then what run does before the steps, every step submitted, all
    awaited (the first failure in notebook order is raised), then what run does after them."""
    cfg = run.config
    given = ", ".join(f"{p!r}: {p}" for p in params)
    chosen = f"**{{key: value for key, value in {names.given}.items() if value is not None}}"
    body = [
        _stmt(f"{names.given}: dict[str, Any] = {{{given}}}"),
        _stmt(f"{cfg} = {names.flow_config}({chosen})"),
        _stmt(
            f"{names.options} = task_options({cfg}.{names.retries}, {cfg}.{names.delay}, {cfg}.{names.timeout})"
        ),
        *run.setup,
    ]
    submitted, bound = _submissions(plan, run, names, after)
    needed = set().union(*(names_in(s) for s in (*run.after, run.returned))) & set(bound)
    inner = [
        *submitted,
        _stmt(f"finish([{', '.join(names.runs[s.name] for s in plan.steps)}])"),
        *(_stmt(f"{name} = {bound[name]}.result()") for name in sorted(needed)),
    ]
    if run.contexts:
        last = run.contexts[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        body.append(cst.With(items=[*run.contexts[:-1], last], body=cst.IndentedBlock(inner)))
    else:
        body += inner
    return [*body, *run.after, cst.SimpleStatementLine([run.returned])]


def _flow_function(
    plan: Plan, run: PipelineRun, names: _Names, after: Mapping[str, tuple[str, ...]]
) -> cst.FunctionDef:
    params, param_names = _parameters(plan, names)
    prefix = plan.package.upper() + "_"
    doc = _doc(
        f"The {plan.package} pipeline as a Prefect flow: one task per step, each started as soon as the\n"
        "    values it takes are ready; returns what ``pipeline.run`` returns.\n\n"
        "    Parameters are Config's fields (validated by Config); one left None takes Config's default or\n"
        f"    {prefix}<FIELD> from the environment. Secrets come from the environment"
        + (" or Prefect Secret blocks" if any(f.secret for f in plan.config_fields) else "")
        + ".\n    "
    )
    decorator = cst.Decorator(
        cst.parse_expression(
            f"flow(name={plan.package.replace('_', '-')!r}, task_runner=task_runner({prefix!r}))"
        )
    )
    return cst.FunctionDef(
        name=cst.Name(names.flow),
        params=cst.Parameters(params=params),
        body=cst.IndentedBlock([doc, *_flow_body(plan, run, names, param_names, after)]),
        decorators=[decorator],
        returns=run.returns,
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
    )


def _run_flow(plan: Plan, names: _Names, param_names: list[str]) -> list[cst.BaseStatement]:
    """``PARAMETERS`` and ``run_flow(config)``, what ``python -m <pkg> --engine prefect`` calls."""
    function = cst.FunctionDef(
        name=cst.Name("run_flow"),
        params=cst.Parameters(
            [
                cst.Param(
                    cst.Name("config"),
                    cst.Annotation(cst.parse_expression("Config | None")),
                    default=cst.Name("None"),
                )
            ]
        ),
        body=cst.IndentedBlock(
            [
                _doc(
                    "Run the flow here with ``config``'s values (default: ``Config()``) as its parameters; print\n"
                    "    the flow run's state and results. Returns 0 when the run completed, else 1.\n    "
                ),
                _stmt("config = config if config is not None else Config()"),
                _stmt(
                    "parameters = {name: getattr(config, name) for name in PARAMETERS if hasattr(config, name)}"
                ),
                _stmt(f"return run_and_report({names.flow}, parameters)"),
            ]
        ),
        returns=cst.Annotation(cst.Name("int")),
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
    )
    constant = _stmt(f"PARAMETERS = {tuple(param_names)!r}").with_changes(
        leading_lines=[cst.EmptyLine()]
    )
    return [constant, function]


def flow_module(plan: Plan, pipeline_source: str, effects: Mapping[str, frozenset[Effect]]) -> str:
    """The text of ``flow.py`` for ``plan``, whose ``pipeline.py`` is ``pipeline_source``."""
    run = read_run(pipeline_source)
    names = _choose_names(plan, run)
    after = waits(plan, effects)
    flow = _flow_function(plan, run, names, after)
    config_names = {"Config"}
    _, param_names = _parameters(plan, names)
    header = _doc(
        f"The {plan.package} pipeline as a Prefect 3 flow (generated by nbharden next to pipeline.py).\n\n"
        "Run it with ``python -m "
        + plan.package
        + " --engine prefect`` or ``run_flow(config)``; serve or\n"
        "deploy ``" + names.flow + "`` like any flow. Needs the ``prefect`` extra (README.md).\n"
    )
    used = names_in(flow) | {n for s in run.after for n in names_in(s)}
    body: list[cst.BaseStatement] = [
        header,
        _stmt("from __future__ import annotations"),
        *_annotation_imports(
            [f.annotation for f in plan.config_fields if not f.secret], config_names
        ),
        _stmt("from prefect import flow, task"),
        _stmt("from prefect.cache_policies import NO_CACHE"),
        _stmt("from pydantic import Field"),
        *run.imports,
        _stmt(
            "from .orchestration import Output, finish, run_and_report, saving_figures, "
            + ("SecretBlocks, " if _secrets(plan) else "")
            + "task_options, task_runner"
        ),
    ]
    defined = sorted(run.defined & used)
    if defined:
        body.append(_stmt(f"from .pipeline import {', '.join(defined)}"))
    if plan.uses_plots and "show_figures" not in set().union(*(names_in(i) for i in run.imports)):
        body.append(_stmt("from .support import show_figures"))
    body += _run_flow(plan, names, param_names)[:1]
    body.append(_flow_config(plan, names))
    tasks = _task_definitions(plan, run, names)
    if tasks:
        body.append(tasks[0].with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()]))
        body += tasks[1:]
    body += [flow, *_run_flow(plan, names, param_names)[1:]]
    return cst.Module(
        body=cast(Sequence[cst.SimpleStatementLine | cst.BaseCompoundStatement], body)
    ).code


class _EngineOption(cst.CSTTransformer):
    """``__main__``: an ``--engine`` option (pipeline or prefect) and, with prefect, ``run_flow(config)``
    in place of ``run(config)``."""

    def __init__(self, option: str) -> None:
        self.option = option
        self.done = {"class": False, "param": False, "call": False}

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        body = list(updated.body)
        for i, stmt in enumerate(body):
            small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) else None
            if isinstance(small, cst.Assign) and names_in(small.targets[0].target) == {"app"}:
                engine = cst.ClassDef(
                    name=cst.Name("Engine"),
                    bases=[cst.Arg(cst.Name("str")), cst.Arg(cst.parse_expression("enum.Enum"))],
                    body=cst.IndentedBlock(
                        [_stmt("pipeline = 'pipeline'"), _stmt("prefect = 'prefect'")]
                    ),
                    leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
                )
                body.insert(i, engine)
                self.done["class"] = True
                break
        return updated.with_changes(body=body)

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        if updated.name.value != "main":
            return updated
        option = cst.Param(
            cst.Name(self.option),
            cst.Annotation(
                cst.parse_expression(
                    "Annotated[Engine, typer.Option(help='what runs the steps: pipeline.run, or the Prefect "
                    "flow of flow.py (needs the prefect extra; prints the flow run state and results)')]"
                )
            ),
            default=cst.parse_expression("Engine.pipeline"),
        )
        self.done["param"] = True
        return updated.with_changes(
            params=updated.params.with_changes(params=[*updated.params.params, option])
        )

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        small = updated.body[0]
        if not (
            isinstance(small, cst.Expr)
            and isinstance(small.value, cst.Call)
            and isinstance(small.value.func, cst.Name)
            and small.value.func.value == "run"
        ):
            return updated
        self.done["call"] = True
        config = cst.Module([]).code_for_node(small.value.args[0].value)
        branch = cst.If(
            test=cst.parse_expression(f"{self.option} is Engine.prefect"),
            body=cst.IndentedBlock(
                [
                    _stmt("from .flow import run_flow"),
                    _stmt(f"raise typer.Exit(run_flow({config}))"),
                ]
            ),
        )
        return cst.FlattenSentinel([branch, updated])


def with_engine_option(main_source: str, fields: set[str]) -> str:
    """``__main__.py`` with ``--engine pipeline|prefect``. Raises ``InternalError`` when the module is not
    the shape ``nbharden.emit`` writes (a typer ``app`` and ``main`` that calls ``run(config)``)."""
    option = _free(
        "engine", set(fields) | {"parameter", "log_format", "log_level", "given", "config"}
    )
    transformer = _EngineOption(option)
    code = cst.parse_module(main_source).visit(transformer).code
    if not all(transformer.done.values()):
        raise InternalError(
            f"internal error (please report): __main__.py has no {transformer.done}"
        )
    return code


def with_prefect_extra(pyproject: str) -> str:
    """The generated ``pyproject.toml`` with an optional extra ``prefect`` (and ``prefect-dask`` for the
    Dask task runner in an extra ``dask``); nothing else changes."""
    extra = 'prefect = [\n    "prefect>=3,<4",\n]\ndask = [\n    "prefect>=3,<4",\n    "prefect-dask",\n]\n'
    header = "[project.optional-dependencies]\n"
    if header in pyproject:
        return pyproject.replace(header, header + extra, 1)
    anchor = "[project.scripts]\n"
    if anchor not in pyproject:
        raise InternalError(
            "internal error (please report): pyproject.toml has no [project.scripts]"
        )
    return pyproject.replace(anchor, header + extra + "\n" + anchor, 1)


def readme_section(plan: Plan, flow: str) -> str:
    """The README's section on the flow: run it here, serve or deploy it, secrets, Dask."""
    pkg, prefix = plan.package, plan.package.upper() + "_"
    name = pkg.replace("_", "-")
    secrets = [f.name for f in plan.config_fields if f.secret]
    secret_text = ""
    if secrets:
        first = secrets[0]
        secret_text = (
            "\n### Secrets\n\n"
            "Secrets are never flow parameters (parameters are visible in Prefect's UI). The flow reads each\n"
            f"from the environment ({', '.join(f'`{prefix}{s.upper()}`' for s in secrets)}), else from the\n"
            f"Prefect Secret block named `{name}-<field>` (underscores as dashes), e.g.:\n\n"
            "```\n"
            'python -c "from prefect.blocks.system import Secret; '
            f"Secret(value='...').save('{name}-{first.replace('_', '-')}')\"\n"
            "```\n"
        )
    return f"""## Run as a Prefect flow

`src/{pkg}/flow.py` is the same pipeline as a Prefect 3 flow, `{flow}`: one task per step (named after
the step), started as soon as the values it takes are ready, so steps that do not depend on each other
run at the same time and the flow run's graph is the notebook's data flow. It returns what
`pipeline.run` returns.

```
pip install '.[prefect]'
python -m {pkg} --engine prefect        # runs the flow here; prints the flow run's state and results
```

Without `PREFECT_API_URL`, Prefect starts a temporary local server for the run. To keep the runs and
see them in Prefect's UI, start a server (`prefect server start`) and
`prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`.

The flow's parameters are the Config fields (secrets excluded) and three task settings; each left
unset takes Config's value (its default, `{prefix}<FIELD>` in the environment, `.env`), and Config
validates them all:

| parameter | meaning |
| --- | --- |
| `task_retries` | attempts more of a step after it fails (default 0) |
| `task_retry_delay` | seconds before the first retry; each next one waits twice as long (default 10) |
| `task_timeout` | seconds one attempt of a step may run (default: no limit) |

### Serve or deploy

```
python -c "from {pkg}.flow import {flow}; {flow}.serve(name='{name}')"    # runs on this machine
prefect deployment run '{name}/{name}' -p task_retries=2                   # from another terminal
prefect deploy src/{pkg}/flow.py:{flow} -n {name} -p <your work pool>       # on a work pool
```
{secret_text}
### On a Dask cluster

The task runner is a setting, not code: with `{prefix}TASK_RUNNER=dask` the flow runs its tasks with
prefect-dask's `DaskTaskRunner`, on the scheduler at `{prefix}DASK_ADDRESS`, else on a new local cluster.

```
pip install '.[dask]'
{prefix}TASK_RUNNER=dask python -m {pkg} --engine prefect
{prefix}TASK_RUNNER=dask {prefix}DASK_ADDRESS=tcp://scheduler:8786 python -m {pkg} --engine prefect
```

Dask workers run the steps in processes of their own: install this package on them, and give path
fields as absolute paths the workers can read. The working folder, seeding and figure saving the flow
sets up apply in the flow's own process, where the default task runner runs the steps.
"""


def add_prefect_flow(
    tree: FileTree, plan: Plan, effects: Mapping[str, frozenset[Effect]]
) -> FileTree:
    """``tree`` (the emitted package, with its tests) plus the Prefect flow: ``flow.py``, its helpers
    (``orchestration.py``), ``--engine`` in ``__main__``, the ``prefect`` extra, a README section and
    ``tests/test_flow.py``. Raises ``InternalError`` when the emitted files are not the shape expected.
    """
    files = tree.as_dict()
    pkg = plan.package
    source = files.get(f"src/{pkg}/pipeline.py")
    if source is None:
        raise InternalError(
            f"internal error (please report): no src/{pkg}/pipeline.py to make a flow of"
        )
    flow = flow_module(plan, source, effects)
    flow_name = _choose_names(plan, read_run(source)).flow
    files[f"src/{pkg}/flow.py"] = flow
    files[f"src/{pkg}/orchestration.py"] = _template("prefect_runtime.py")
    files[f"src/{pkg}/__main__.py"] = with_engine_option(
        files[f"src/{pkg}/__main__.py"], {f.name for f in plan.config_fields}
    )
    files["pyproject.toml"] = with_prefect_extra(files["pyproject.toml"])
    section = readme_section(plan, flow_name)
    readme = files.get("README.md")
    files["README.md"] = f"{readme.rstrip()}\n\n{section}" if readme else f"# {pkg}\n\n{section}"
    recorded = "tests/_compare.py" in files
    test = _template("prefect_test_recorded.py" if recorded else "prefect_test_smoke.py")
    test = re.sub(r"\bgenerated_package\b", pkg, test)
    files["tests/test_flow.py"] = re.sub(r"\bpipeline_flow\b", flow_name, test)
    if not recorded:  # the comparison ladder of the characterization tests, for assert_same
        files.update(comparison_files())
    return FileTree.of(files)
