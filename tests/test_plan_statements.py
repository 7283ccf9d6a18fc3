"""The plan carries every per-statement decision (``Plan.statements``, ``Plan.secrets``, ``Plan.lifted_types``)
and emit only renders it: no renderer imports ``nbharden.plan``, the plan shown (``Plan.to_json``) names every
decision, and changing a decision in the plan changes the output.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbharden import api
from nbharden.analyse import FullAnalysis
from nbharden.emit import emit
from nbharden.env_secrets import resolve_secrets
from nbharden.models import Plan, SecretUse, Statement
from nbharden.plan import make_plan, secret_fields
from nbharden.settings import Settings

SRC = Path(__file__).resolve().parents[1] / "src" / "nbharden"
#: The stages that render a plan: they read its decisions and never make them again.
RENDERERS = ("emit.py", "readme.py", "testgen", "targets", "templates", "transform")

Analysed = Callable[..., tuple[FullAnalysis, Plan]]


@pytest.fixture
def planned(make_notebook: Callable[..., Path]) -> Analysed:
    def run(
        cells: Sequence[str | tuple[str, Sequence[str]]], name: str = "nb.ipynb"
    ) -> tuple[FullAnalysis, Plan]:
        config = Settings(record=False)
        analysis = api.analyze(make_notebook(cells, name=name), config)
        assert isinstance(analysis, FullAnalysis)
        return analysis, make_plan(analysis, settings=config)

    return run


def _imports_plan(path: Path) -> bool:
    """Whether the module imports ``nbharden.plan`` (or names from it), at any depth, lazily or not."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(
            a.name == "nbharden.plan" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom):
            if node.module == "nbharden.plan" or (
                node.module == "nbharden" and any(a.name == "plan" for a in node.names)
            ):
                return True
            if (
                node.level and (node.module or "").split(".")[-1] == "plan"
            ):  # from .plan import / from ..plan import
                return True
    return False


def test_no_renderer_imports_the_plan_stage() -> None:
    walked = [
        p
        for name in RENDERERS
        for p in ((SRC / name).rglob("*.py") if (SRC / name).is_dir() else [SRC / name])
    ]
    assert SRC / "emit.py" in walked and SRC / "readme.py" in walked
    assert any(p.parent.name == "testgen" for p in walked) and any(
        p.parent.name == "targets" for p in walked
    )
    assert all(p.is_file() for p in walked), "a renderer listed here no longer exists"
    assert [p.relative_to(SRC).as_posix() for p in walked if _imports_plan(p)] == []


def test_the_import_check_sees_every_spelling(tmp_path: Path) -> None:
    for source in [
        "from nbharden.plan import statement_role",
        "import nbharden.plan",
        "from nbharden import plan",
        "def f():\n    from .plan import make_plan\n",
    ]:
        module = tmp_path / "m.py"
        module.write_text(source)
        assert _imports_plan(module), source
    module.write_text(
        "from nbharden.planner import x\nfrom nbharden.models import Plan\n"
    )
    assert not _imports_plan(module)


NOTEBOOK = [
    ("alpha = 0.5", ["parameters"]),
    "import warnings\nimport pandas as pd",
    'warnings.filterwarnings("ignore")',
    "def double(x):\n    return 2 * x",
    'df = pd.DataFrame({"a": [1.0, None]})\ndf["b"] = double(df["a"]) * alpha\ndf.head()',
    "df.dropna(inplace=True)\nprint(df)",
]


def test_each_statement_has_its_role_and_the_names_it_changes(
    planned: Analysed,
) -> None:
    _, plan = planned(NOTEBOOK)
    assert [
        (s.cell, s.index, s.role, s.runs_in, s.changes) for s in plan.statements
    ] == [
        (1, 0, "config", 1, ()),  # the parameters cell's literal: Config.alpha
        (2, 0, "import", 2, ()),
        (2, 1, "import", 2, ()),
        (3, 0, "setting", 3, ()),  # runs once at the pipeline's start
        (4, 0, "def", 4, ()),  # moved to module level
        (5, 0, "code", 5, ("df",)),
        (5, 1, "code", 5, ("df",)),  # df["b"] = ...: changed in place
        (5, 2, "display", 5, ()),  # a preview: dropped
        (6, 0, "code", 6, ("df",)),  # inplace=True
        (6, 1, "code", 6, ()),
    ]
    shown = json.loads(json.dumps(plan.to_json()))["statements"]
    assert shown[7] == {
        "cell": 5,
        "index": 2,
        "role": "display",
        "runs_in": 5,
        "changes": [],
    }


def test_a_definition_moved_after_a_later_cell_runs_there(planned: Analysed) -> None:
    _, plan = planned(
        [
            "def total():\n    return alpha + beta + gamma + delta(epsilon)",
            "alpha, beta, gamma = 1, 2, 3\nepsilon = 4\n\n\ndef delta(x):\n    return x * alpha",
            "result = total()\nprint(result)",
        ]
    )
    assert plan.moved == ((1, 0, 2, 2),)
    order = [(s.cell, s.index, s.runs_in) for s in plan.statements]
    # defined in the step of cell 2, right after delta: the statement it was moved after
    assert order[:4] == [(2, 0, 2), (2, 1, 2), (2, 2, 2), (1, 0, 2)]


def test_a_lifted_function_s_parameters_are_typed_from_the_literals_its_calls_pass(
    planned: Analysed,
) -> None:
    model = (
        "import numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
        "X = np.array([[1.0], [2.0], [3.0]])\ny = np.array([2.0, 4.0, 6.0])\n"
        "model = LinearRegression()\nmodel.fit(X, y)\nscale = 10"
    )
    predict = "def predict(value, k, label):\n    return float(model.predict([[value]])[0]) * scale * k"
    analysis, plan = planned(
        [model, predict, "a = predict(4.0, 2, 'x')\nb = predict(1.5, k=3, label=None)"]
    )
    assert plan.lifted == (("predict", ("model", "scale")),)
    # label: a str once, None once: no annotation from the calls
    assert plan.lifted_types == (("predict", (("value", "float"), ("k", "int"))),)
    tree, _ = emit(
        analysis,
        plan,
        out=analysis.notebook.path.parent / "out",
        settings=Settings(record=False),
    )
    steps = next(text for path, text in tree if path.endswith("/steps.py"))
    assert "def predict(value: float, k: int, label: Any, *, model" in steps


TOKEN = "ghp_" + "Fk3e" * 9  # FAKE, GitHub-shaped


def test_secrets_are_planned_by_where_they_are_never_by_value(
    planned: Analysed,
) -> None:
    analysis, plan = planned(
        [
            f'import requests\nTOKEN = "{TOKEN}"\n'
            'r = requests.get("https://api.github.com", headers={"Authorization": TOKEN})',
            f'headers = {{"X-Api-Key": "{TOKEN[::-1]}"}}',
            'import os\npassword = os.getenv("DB_PASSWORD", "Tr0ub4dor-and-3")',  # a secret default, not token-shaped
        ]
    )
    facts = analysis.facts
    assert facts is not None
    sources = {u.source for u in plan.secrets}
    assert sources == {"assignment", "site"}, plan.secrets
    assert SecretUse("TOKEN", 1, 2, "assignment", 1) in plan.secrets
    assert resolve_secrets(facts, plan.secrets) == secret_fields(
        facts, plan.config_fields
    )
    # a default of an environment read that no site holds is found by its read
    by_read = SecretUse("db_password", 3, 2, "env-default", env_var="DB_PASSWORD")
    assert resolve_secrets(facts, [by_read]) == {"Tr0ub4dor-and-3": "db_password"}
    shown = json.dumps(plan.to_json())
    assert (
        "secrets" in plan.to_json()
        and TOKEN not in shown
        and TOKEN[::-1] not in shown
        and "Tr0ub4dor" not in shown
    )


def test_emit_renders_the_plan_s_decisions(planned: Analysed) -> None:
    """Flipping a decision in the plan flips the output: emit does not decide again."""
    analysis, plan = planned(NOTEBOOK)
    out = analysis.notebook.path.parent / "out"

    def steps(p: Plan) -> str:
        tree, _ = emit(analysis, p, out=out, settings=Settings(record=False))
        return next(text for path, text in tree if path.endswith("/steps.py"))

    before = steps(plan)
    assert "df.dropna(inplace=True)" in before and "df.head()" not in before
    flipped = tuple(
        dataclasses.replace(s, role="display") if (s.cell, s.index) == (6, 0) else s
        for s in plan.statements
    )
    assert "df.dropna(inplace=True)" not in steps(
        dataclasses.replace(plan, statements=flipped)
    )


# --- any notebook: the statements are complete and in run order ------------------------------------------------

_CELLS = [
    "import math",
    "import pandas as pd",
    "x = 1",
    "x = x + 1",
    "y = [x, 2]\ny.append(3)",
    "def f(a):\n    return a * x",
    "def g():\n    return z",
    "z = f(2)",
    "y",
    "print(x)\nx",
    "frame = pd.DataFrame({'a': [1]})\nframe['b'] = frame['a'] * 2\nframe.head()",
    "total = math.sqrt(x) + g()",
    "class Box:\n    size = 2",
    "for i in range(2):\n    y.append(i)",
]


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cells=st.lists(st.sampled_from(_CELLS), min_size=1, max_size=5))
def test_every_statement_is_planned_once_in_run_order(
    planned: Analysed, cells: list[str]
) -> None:
    analysis, plan = planned(cells, name="any.ipynb")
    facts = analysis.facts
    assert facts is not None
    every = sorted(
        (c, i) for c, cf in facts.cells.items() for i in range(len(cf.statements))
    )
    assert sorted((s.cell, s.index) for s in plan.statements) == every
    assert [s.runs_in for s in plan.statements] == sorted(
        s.runs_in for s in plan.statements
    )
    assert all(s.runs_in >= s.cell for s in plan.statements)
    assert {s.role for s in plan.statements} <= {
        "config",
        "import",
        "def",
        "setting",
        "display",
        "code",
    }
    in_steps = {c for step in plan.steps for c in step.cells}
    assert all(s.runs_in in in_steps for s in plan.statements if s.role == "code")
    assert all(
        set(s.changes) >= set(facts.cells[s.cell].statements[s.index].binds)
        for s in plan.statements
        if s.role == "code"
    )
    assert all(isinstance(s, Statement) for s in plan.statements)


def test_emit_refuses_a_plan_without_its_statement_decisions(planned: Analysed) -> None:
    from nbharden.errors import InternalError

    analysis, plan = planned(NOTEBOOK)
    with pytest.raises(InternalError, match="no statement decisions"):
        emit(
            analysis,
            dataclasses.replace(plan, statements=()),
            out=analysis.notebook.path.parent / "out",
            settings=Settings(record=False),
        )
