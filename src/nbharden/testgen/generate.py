"""Generate the characterization tests of a converted package from a Plan and a Recording.

The tests are built as LibCST templates (one per step), the recorded values are copied
as text into ``tests/data/``, and the comparison helpers (``_values.py``,
``_compare.py``) are written next to them so that the generated project never imports
nbharden.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import posixpath
import re
import textwrap
from collections.abc import Collection, Mapping
from pathlib import Path

import libcst as cst
from libcst.helpers import parse_template_statement

from nbharden.constraints import breaking_value
from nbharden.errors import InternalError
from nbharden.models import ConfigField, Plan, Step
from nbharden.record.models import JSON, RecordedValue, Recording
from nbharden.templates import template_text

_HERE = Path(__file__).parent
_VALUES_SOURCE = _HERE.parent / "record" / "_values.py"
_COMPARE_SOURCE = _HERE / "_compare.py"
_FIGURES_SOURCE = _HERE.parent / "record" / "_figures.py"
#: The recorded suite's index: an output folder whose manifest lists it holds a recorded suite.
RECORDING_INDEX = "tests/data/recording.json"

#: A value the generated Config must reject, by field annotation (after dropping ``| None``).
_BAD_VALUES: dict[str, str] = {
    "int": '"not a number"',
    "float": '"not a number"',
    "bool": '"not a boolean"',
    "str": '["not", "a", "string"]',
    "Path": "12345",
    "pathlib.Path": "12345",
    "list": '"not a list"',
    "tuple": '"not a tuple"',
    "dict": '"not a mapping"',
}

_STEP_TEST = """
def {test}() -> None:
    {doc}
    inputs = load_inputs({label})
    result = {module}.{function}(**inputs)
    check_outputs({label}, result)
"""

_RANDOM_STEP_TEST = """
def {test}() -> None:
    {doc}
    inputs = load_inputs({label})
    restore_random_state({label})
    result = {module}.{function}(**inputs)
    check_outputs({label}, result)
"""

_CONTRACT_TEST = """
def {test}() -> None:
    {doc}
    inputs = load_inputs({label})
    inputs[{frame}] = inputs[{frame}].drop(columns=[{column}])
    with pytest.raises(DataContractError, match={pattern}):
        {module}.{function}(**inputs)
"""

_PIPELINE_TEST = """
def test_pipeline_reproduces_the_notebook() -> None:
    {doc}
    config = config_for_run(Config)
    seed_as_recorded(config)
    results = run(config)
    check_results(results, config)
"""

_CONFIG_DEFAULTS_TEST = """
def test_config_defaults_are_valid() -> None:
    {doc}
    Config()
"""

_CONFIG_REJECTS_TEST = """
@pytest.mark.parametrize(("field", "bad"), {cases})
def test_config_rejects_bad_value(field: str, bad: object) -> None:
    {doc}
    with pytest.raises(ValidationError, match=field):
        Config(**{field: bad})
"""



def _identifier(name: str, what: str) -> str:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise InternalError(f"{what} {name!r} is not a Python identifier")
    return name


def _string(text: str) -> cst.SimpleString:
    return cst.SimpleString(json.dumps(text, ensure_ascii=False))


def _docstring(text: str, indent: int = 4) -> cst.SimpleString:
    """A docstring that fits in 88 columns at ``indent`` (black does not wrap docstrings)."""
    text = text.replace("\\", "\\\\").replace('"""', "'''")
    if len(text) + indent + 6 <= 88:
        return cst.SimpleString(f'"""{text}"""')
    pad = " " * indent
    paragraphs = [textwrap.fill(p, 88 - indent) for p in text.split("\n\n")]
    body = "\n\n".join(paragraphs).replace("\n", "\n" + pad).replace("\n" + pad + "\n", "\n\n")
    return cst.SimpleString(f'"""{body}\n{pad}"""')


def _function(
    template: str, **parts: cst.CSTNode
) -> cst.SimpleStatementLine | cst.BaseCompoundStatement:
    node = parse_template_statement(template, **parts)  # type: ignore[arg-type]
    assert isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
    return node.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])


def _module(
    doc: str, imports: list[str], body: list[cst.SimpleStatementLine | cst.BaseCompoundStatement]
) -> str:
    header = [cst.SimpleStatementLine([cst.Expr(_docstring(doc, indent=0))])]
    stmts: list[cst.SimpleStatementLine | cst.BaseCompoundStatement] = []
    blank = True  # a blank line after the docstring and wherever ``imports`` has ""
    for line in imports:
        if not line:
            blank = True
            continue
        stmt = cst.parse_statement(line + "\n")
        assert isinstance(stmt, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
        if blank:
            stmt = stmt.with_changes(leading_lines=[cst.EmptyLine()])
        stmts.append(stmt)
        blank = False
    return cst.Module(body=[*header, *stmts, *body]).code


def _cells(cells: tuple[int, ...]) -> str:
    if not cells:
        return "no cells"
    if len(cells) == 1:
        return f"cell {cells[0]}"
    if list(cells) == list(range(cells[0], cells[-1] + 1)):
        return f"cells {cells[0]}-{cells[-1]}"
    return "cells " + ", ".join(map(str, cells))


def _base_annotation(annotation: str) -> str:
    parts = [p.strip() for p in annotation.split("|") if p.strip() not in ("None", "")]
    text = parts[0] if len(parts) == 1 else ""
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional[") : -1]
    return re.split(r"\[", text, maxsplit=1)[0].strip()


def _bad_value_cases(fields: tuple[ConfigField, ...]) -> list[tuple[str, str]]:
    cases = []
    for field in fields:
        bad = _BAD_VALUES.get(_base_annotation(field.annotation))
        if bad is not None and not field.secret:
            cases.append((_identifier(field.name, "config field"), bad))
        # a value of the right type that breaks the constraint the notebook showed (NBH205)
        broken = breaking_value(field)
        if broken is not None and not field.secret:
            cases.append((_identifier(field.name, "config field"), broken))
    return cases


def _entry(value: RecordedValue, files: dict[str, str]) -> dict[str, JSON]:
    """The index entry of one value for the generated tests, its file renamed into
    ``data/values/``.
    """
    data = value.to_json()
    if value.file is not None:
        data["file"] = "values/" + Path(value.file).name
        files[data["file"]] = value.file  # type: ignore[index]
    data.pop("bytes", None)
    return data


def generate_tests(
    plan: Plan,
    recording: Recording,
    *,
    package: str,
    step_modules: Mapping[str, str] | None = None,
    config_module: str = "config",
    pipeline_module: str = "pipeline",
) -> dict[str, str]:
    """The generated test suite: POSIX paths relative to the output folder -> text.

    ``step_modules`` maps a step name to the module (under ``package``) defining it;
    default ``steps``.
    Files: ``tests/conftest.py``, ``tests/_values.py``, ``tests/_compare.py``,
    ``tests/test_steps.py``,
    ``tests/test_pipeline.py``, ``tests/test_config.py``, ``tests/data/recording.json`` and
    ``tests/data/values/*`` (text: JSON, or base64 pickles checked by sha256).
    Raises ``InternalError`` when a name is not an identifier or a recorded file is missing.
    """
    package = ".".join(_identifier(p, "package") for p in package.split("."))
    modules = dict(step_modules or {})
    notebook = recording.notebook.name
    secret_names = {f.name for f in plan.config_fields if f.secret}
    files: dict[str, str] = {}
    sources: dict[str, str] = {}  # data/values/x -> recording-relative path

    steps_index, tested = _steps_index(plan, recording, modules, secret_names, sources)
    index = _recording_index(plan, recording, package, modules, steps_index, sources)
    files[RECORDING_INDEX] = json.dumps(index, indent=1, allow_nan=True, sort_keys=True) + "\n"
    for target, source in sorted(sources.items()):
        path = recording.root / source
        try:
            files[f"tests/data/{target}"] = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InternalError(f"recorded value file missing: {path}: {exc}") from exc

    files.update(_support_files(package))
    drawing = [n for n, e in steps_index.items() if isinstance(e, dict) and "figures" in e]
    files["tests/test_steps.py"] = _steps_module(tested, package, notebook, drawing)
    files["tests/test_pipeline.py"] = _module(
        f"End-to-end test of {package}: the pipeline ends with the values {notebook} ended with "
        "(generated by nbharden).",
        [
            "from _compare import check_results, config_for_run, seed_as_recorded",
            "",
            f"from {package}.{_identifier(config_module, 'module')} import Config",
            f"from {package}.{_identifier(pipeline_module, 'module')} import run",
        ],
        [
            _function(
                _PIPELINE_TEST,
                doc=_docstring(
                    "pipeline.run with the recorded parameters matches the notebook's final values."
                ),
            )
        ],
    )
    files["tests/test_config.py"] = _config_module(plan, package, config_module)
    return files


def _recording_index(
    plan: Plan,
    recording: Recording,
    package: str,
    modules: Mapping[str, str],
    steps_index: dict[str, JSON],
    sources: dict[str, str],
) -> dict[str, JSON]:
    """``tests/data/recording.json``: what the generated conftest and helpers read. Values to copy go
    into ``sources``.
    """
    config_names = {f.name for f in plan.config_fields}
    secret_names = {f.name for f in plan.config_fields if f.secret}
    finals = {name: _entry(v, sources) for name, v in recording.final_values().items()}
    index: dict[str, JSON] = {
        "notebook": recording.notebook.name,
        "notebook_sha256": recording.notebook_sha256,
        "parameters": {
            k: v for k, v in recording.parameters if k in config_names and k not in secret_names
        },
        "secrets": [f.name for f in sorted(plan.config_fields, key=lambda f: f.name) if f.secret],
        # the notebook ran with the global generators seeded like seed_everything(seed);
        # a Config field of kind "seed" seeds the pipeline the same way
        "seed": recording.seed,
        "seed_field": next((f.name for f in plan.config_fields if f.kind == "seed"), None),
        "steps": steps_index,
        # the pipeline's order and where each step lives: a test makes an input that was too big
        # to store by running the steps before it (_replay.py)
        "order": [s.name for s in plan.steps if s.name in steps_index],
        "package": package,
        "modules": {name: module for name, module in modules.items() if name in steps_index},
        "finals": finals,  # type: ignore[dict-item]
        "secret_derived": _secret_derived(plan, secret_names),
        # what the recorder set in the kernel's environment: the tests' conftest sets it too
        "environment": dict(recording.environment),
        # the files the notebook read, relative to data_dir: the tests copy them into their folder
        "input_files": _input_files(
            plan,
            recording.notebook.parent,
            # a file the run wrote before reading it (a saved model) is no input: its test must write it
            {posixpath.normpath(w.path) for w in recording.files_written},
        ),
        # the other files its cells read by relative paths (built at run time, or literals not lifted)
        "files_read": _files_read(plan, recording),
        # the files its cells wrote (and that are there now): the tests check the steps write them
        "files_written": _files_written(recording),
        # the values the notebook showed, kept as results (nbharden.shown): what a review reports first
        "results": list(dict.fromkeys(s.name for step in plan.steps for s in step.shown)),
        # the HTTP responses of the run: the tests serve them back (_http_replay.py)
        "http": _http_entries(recording, sources),
    }
    return index


def _steps_index(
    plan: Plan,
    recording: Recording,
    modules: Mapping[str, str],
    secret_names: set[str],
    sources: dict[str, str],
) -> tuple[dict[str, JSON], list[tuple[Step, str, tuple[int, ...], bool]]]:
    """Per recorded step that ran: its index entry (cells, inputs, outputs, randomness), and what
    ``_steps_module`` writes a test from. Values to copy go into ``sources``.
    """
    steps_index: dict[str, JSON] = {}
    tested: list[tuple[Step, str, tuple[int, ...], bool]] = []
    recorded = {s.step: s for s in recording.steps}
    for step in plan.steps:
        rec = recorded.get(step.name)
        if rec is None or not rec.executed:
            continue
        _identifier(step.name, "step")
        state: str | None = None
        if rec.random_state is not None:
            state = "values/" + Path(rec.random_state).name
            sources[state] = rec.random_state
        entry: dict[str, JSON] = {
            "cells": list(rec.cells),
            "inputs": [_entry(v, sources) for v in rec.inputs],
            "outputs": [_entry(v, sources) for v in rec.outputs],
            "draws_random": rec.draws_random,
            "random_state": state,
            # the tests give a secret a placeholder: what the step computes from it may differ
            "uses_secrets": any(p.name in secret_names for p in step.inputs),
            # inputs that are globals of the steps module (Step.state): set there, not passed
            "state": list(step.state),
        }
        if rec.figures:  # the figures its cells showed: its test compares those the step shows
            entry["figures"] = list(rec.figures)
        steps_index[step.name] = entry
        tested.append(
            (
                step,
                _identifier(modules.get(step.name, "steps"), "module"),
                rec.cells,
                rec.random_state is not None,
            )
        )
    return steps_index, tested


def comparison_files() -> dict[str, str]:
    """The comparison ladder next to the generated tests (``_compare.py`` and every module it
    imports), for the characterization tests and for a target's tests that compare values."""
    return {
        "tests/_values.py": _VALUES_SOURCE.read_text(encoding="utf-8"),
        "tests/_compare.py": _COMPARE_SOURCE.read_text(encoding="utf-8"),
        "tests/_learned.py": (_HERE / "_learned.py").read_text(encoding="utf-8"),
        "tests/_replay.py": (_HERE / "_replay.py").read_text(encoding="utf-8"),
        "tests/_figures.py": _FIGURES_SOURCE.read_text(encoding="utf-8"),
    }


def _support_files(package: str) -> dict[str, str]:
    """The helpers next to the generated tests: set-up, environment, HTTP replay, comparison."""
    return {
        "tests/conftest.py": _template("conftest.py", {"PACKAGE": repr(package)}),
        "tests/_environment.py": template_text("environment.py"),
        "tests/_http_replay.py": template_text("http_replay.py"),
        **comparison_files(),
    }


def hermetic_files(
    plan: Plan, package: str, folder: Path, environment: Mapping[str, str]
) -> dict[str, str]:
    """The set-up that makes a generated suite hermetic without a recording (``--no-record``):
    ``tests/conftest.py``, ``tests/_environment.py`` and ``tests/setup.json`` holding only
    what the conftest needs (the environment, the input files, the secrets' names).
    """
    index: dict[str, JSON] = {
        "recorded": False,
        "environment": dict(environment),
        "input_files": _input_files(plan, folder),
        "secrets": [f.name for f in sorted(plan.config_fields, key=lambda f: f.name) if f.secret],
        "steps": {},
    }
    return {
        "tests/conftest.py": _template("conftest.py", {"PACKAGE": repr(package)}),
        "tests/_environment.py": template_text("environment.py"),
        "tests/_http_replay.py": template_text("http_replay.py"),
        # not tests/data/recording.json: that names a recorded suite (workflow.recorded_suite_loss)
        "tests/setup.json": json.dumps(index, indent=1, sort_keys=True) + "\n",
    }


def _template(name: str, constants: Mapping[str, str]) -> str:
    """The template ``name`` with each ``NAME = ...`` line of ``constants`` set to ``NAME = value``."""
    text = template_text(name)
    for constant, value in constants.items():
        text, count = re.subn(
            rf"^{constant} = .*$", f"{constant} = {value}", text, count=1, flags=re.MULTILINE
        )
        if count != 1:
            raise InternalError(f"template {name} has no {constant} = line")
    return text


def _input_files(plan: Plan, folder: Path, written: Collection[str] = ()) -> dict[str, JSON]:
    """Per Config field naming a file: its path (as the notebook wrote it), the sha256 of the file when
    the tests were generated, and whether the tests require it (a file the notebook reads, NBH205).
    Fields whose file exists then but that the notebook may write are copied when present, never
    required; not those the recorded run wrote (``written``: the tests check the steps write them).
    """
    found: dict[str, JSON] = {}
    for field in plan.config_fields:
        if not field.literal or field.secret or "://" in field.literal:
            continue
        if not field.must_exist and posixpath.normpath(field.literal) in written:
            continue
        try:
            digest: str | None = hashlib.sha256((folder / field.literal).read_bytes()).hexdigest()
        except OSError:
            digest = None
        if digest is None and not field.must_exist:
            continue
        found[field.name] = {"path": field.literal, "sha256": digest, "required": field.must_exist}
    return found


def _files_read(plan: Plan, recording: Recording) -> list[JSON]:
    """The files the recorded run read that no Config field names, each with its sha256 and the cells
    that read it; those gone since the recording are left out (a test would fail on them either way).
    """
    lifted = {posixpath.normpath(f.literal) for f in plan.config_fields if f.literal}
    found: list[JSON] = []
    for read in recording.files_read:
        if posixpath.normpath(read.path) in lifted:
            continue
        try:
            with (recording.notebook.parent / read.path).open("rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError:
            continue
        found.append({"path": read.path, "sha256": digest, "cells": list(read.cells)})
    return found


def _files_written(recording: Recording) -> list[JSON]:
    """The files the recorded run wrote that are there now, with the cells that wrote each and whether
    it was empty: the tests check the steps write them (not empty when the notebook's was not). Not
    their size, which need not be the same twice (an executed notebook holds its timings).
    """
    found: list[JSON] = []
    for written in recording.files_written:
        path = recording.notebook.parent / written.path
        if path.is_file():
            empty = path.stat().st_size == 0
            found.append({"path": written.path, "cells": list(written.cells), "empty": empty})
    return found


def _http_entries(recording: Recording, sources: dict[str, str]) -> list[JSON]:
    """The index entries of the recorded HTTP responses, their bodies renamed into ``data/values/``."""
    entries: list[JSON] = []
    for response in recording.http:
        data = response.to_json()
        if response.file is not None:
            data["file"] = "values/" + Path(response.file).name
            sources[str(data["file"])] = response.file
        entries.append(data)
    return entries


def _secret_derived(plan: Plan, secrets: set[str]) -> list[JSON]:
    """The step outputs that may be computed from a secret (the pipeline's tests run with
    placeholders): what a step reading a secret, or reading such an output, produces.
    """
    derived: set[str] = set()
    for step in plan.steps:
        if any(p.name in secrets or p.name in derived for p in step.inputs):
            derived.update(o.name for o in step.outputs)
    return [*sorted(derived)]


_CALL = "    result = {module}.{function}(**inputs)\n    check_outputs({label}, result)\n"
#: The call of a step whose cells showed figures: the figures it shows are compared too.
_CALL_FIGURES = (
    "    with shown_figures({module}) as shown:\n"
    "        result = {module}.{function}(**inputs)\n"
    "    check_outputs({label}, result)\n"
    "    check_figures({label}, shown)\n"
)


def _steps_module(
    tested: list[tuple[Step, str, tuple[int, ...], bool]],
    package: str,
    notebook: str,
    drawing: Collection[str] = (),
) -> str:
    """``tests/test_steps.py``; ``drawing``: the steps whose figures are compared."""
    body = []
    for step, module, cells, restores in tested:
        title = step.title or step.name
        template = _RANDOM_STEP_TEST if restores else _STEP_TEST
        if step.name in drawing:
            template = template.replace(_CALL, _CALL_FIGURES)
        if step.state:  # module state the step reads: set on its module, as the notebook had it
            template = template.replace(
                "inputs = load_inputs({label})\n",
                "inputs = load_inputs({label})\n    set_module_state({module}, {label}, inputs)\n",
            )
        body.append(
            _function(
                template,
                test=cst.Name(f"test_{step.name}"),
                doc=_docstring(
                    f"{title} ({_cells(cells)}): the same outputs as the notebook from its inputs."
                ),
                label=_string(step.name),
                module=cst.Name(module),
                function=cst.Name(step.name),
            )
        )
    contracts = [_contract_test(step, module) for step, module, _, _ in tested]
    body += [test for test in contracts if test is not None]
    helpers = ["check_outputs", "load_inputs"]
    if drawing:
        helpers += ["check_figures", "shown_figures"]
    if any(restores for *_, restores in tested):
        helpers.append("restore_random_state")
    if any(step.state for step, *_ in tested):
        helpers.append("set_module_state")
    imports = [f"from _compare import {', '.join(sorted(helpers))}", ""]
    imports += [f"from {package} import {m}" for m in sorted({m for _, m, _, _ in tested})]
    if any(contracts):
        imports = ["import pytest", "", *imports, f"from {package}.support import DataContractError"]
    return _module(
        f"Characterization tests of {package}'s steps, recorded from {notebook} "
        "(generated by nbharden).\n\n"
        "Each test gives a step the values it read in the notebook's run and compares "
        "what it returns with what the notebook produced"
        + (
            "; a test ..._checks_the_columns_of_<frame> gives it the frame without a column "
            "its data contract requires."
            if any(contracts)
            else "."
        ),
        imports if tested else [],
        body,
    )


def _contract_test(
    step: Step, module: str
) -> cst.SimpleStatementLine | cst.BaseCompoundStatement | None:
    """A test that the step's data contract rejects the first frame it takes in (a parameter)
    without its first column, or None when the step checks no frame it takes in."""
    parameters = {p.name for p in step.inputs}
    contract = next((c for c in step.contracts if c.at == "entry" and c.name in parameters), None)
    if contract is None or not contract.columns:
        return None
    label = contract.columns[0][0]
    return _function(
        _CONTRACT_TEST,
        test=cst.Name(f"test_{step.name}_checks_the_columns_of_{contract.name}"),
        doc=_docstring(
            f"{step.title or step.name}: {contract.name} without its column {label} is "
            "rejected by the step's data contract, before the step computes anything."
        ),
        label=_string(step.name),
        frame=_string(contract.name),
        column=cst.parse_expression(label),
        pattern=_string(re.escape(f"lacks column(s) [{label}]").replace("\\ ", " ")),
        module=cst.Name(module),
        function=cst.Name(step.name),
    )


def _config_module(plan: Plan, package: str, config_module: str) -> str:
    body: list[cst.SimpleStatementLine | cst.BaseCompoundStatement] = []
    cases = _bad_value_cases(plan.config_fields)
    if not any(f.secret for f in plan.config_fields):
        body.append(
            _function(_CONFIG_DEFAULTS_TEST, doc=_docstring("The default configuration is valid."))
        )
    if cases:
        rendered = "[" + ", ".join(f"({json.dumps(name)}, {bad})" for name, bad in cases) + "]"
        body.append(
            _function(
                _CONFIG_REJECTS_TEST,
                cases=cst.parse_expression(rendered),
                doc=_docstring(
                    "A bad value (of the wrong type, or breaking a constraint the notebook shows)"
                    " is rejected with an error naming the field."
                ),
            )
        )
    imports = []
    if cases:
        imports += ["import pytest", "from pydantic import ValidationError", ""]
    imports.append(f"from {package}.{_identifier(config_module, 'module')} import Config")
    return _module(f"Tests of {package}'s configuration (generated by nbharden).", imports, body)
