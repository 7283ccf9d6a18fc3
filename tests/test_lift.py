"""Functions that close over notebook state (a fitted model, a frame) move to module level and take that state
as keyword-only parameters; every call passes it (nbharden.lift, NBH610)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import libcst as cst
import pytest

from nbharden import api
from nbharden.analyse import FullAnalysis
from nbharden.lift import PassState, with_state_parameters
from nbharden.models import Plan
from nbharden.plan import make_plan
from nbharden.settings import Settings

PlanFor = Callable[..., Plan]

MODEL = (
    "import numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
    "X = np.array([[1.0], [2.0], [3.0]])\ny = np.array([2.0, 4.0, 6.0])\n"
    "model = LinearRegression()\nmodel.fit(X, y)\nscale = 10"
)
PREDICT = "def predict(value):\n    return float(model.predict([[value]])[0]) * scale"


@pytest.fixture
def plan_for(make_notebook: Callable[..., Path]) -> PlanFor:
    def run(cells: Sequence[str | tuple[str, Sequence[str]]]) -> Plan:
        settings = Settings(record=False)
        analysis = api.analyze(make_notebook(cells), settings)
        assert isinstance(analysis, FullAnalysis)
        return make_plan(analysis, settings=settings)

    return run


def test_a_closure_over_a_fitted_model_is_lifted(plan_for: PlanFor) -> None:
    plan = plan_for([MODEL, PREDICT, ("guess = predict(4.0)", ["step:use"])])
    assert dict(plan.lifted) == {"predict": ("model", "scale")}
    assert "predict" in plan.hoisted
    use = next(s for s in plan.steps if s.name == "use")
    assert [p.name for p in use.inputs] == ["model", "scale"]  # the state, not the function
    assert [(f.code, f.span.cell if f.span else 0) for f in plan.findings if f.code in {"NBH606", "NBH610"}] == [
        ("NBH610", 2)
    ]


@pytest.mark.parametrize(
    "use",
    [
        "predictions = list(map(predict, [1.0, 2.0]))",  # passed as a value
        "def twice(v):\n    return 2 * predict(v)\n\nout = twice(1.0)",  # called from another function
        "out = [predict(v) for model in [None] for v in [1.0]]",  # a comprehension rebinding 'model'
        "out = predict(1.0, model=None)",  # passes the state itself
        "predict = None",  # rebound
    ],
)
def test_a_closure_used_otherwise_than_by_direct_calls_stays(plan_for: PlanFor, use: str) -> None:
    plan = plan_for([MODEL, PREDICT, use])
    assert plan.lifted == ()
    assert any(f.code == "NBH606" and "'predict'" in f.message for f in plan.findings)


@pytest.mark.parametrize(
    "definition",
    [
        "def predict(value, m=model):\n    return m.predict([[value]])[0]",  # state in a default
        "import functools\n\n@functools.cache\ndef predict(value):\n    return model.predict([[value]])[0]",
        "def predict(value):\n    return predict(value - 1) if value > 0 else model.coef_[0]",  # recursive
        "def predict(value):\n    global scale\n    scale = 2\n    return model.predict([[value]])[0]",
    ],
)
def test_closures_that_cannot_move_stay(plan_for: PlanFor, definition: str) -> None:
    plan = plan_for([MODEL, definition, "guess = predict(4.0)"])
    assert plan.lifted == ()


def test_pass_state_adds_the_keywords_to_every_call() -> None:
    module = cst.parse_module("a = f(1, b=2)\nc = [f(x) for x in y]\ng(f)\n")
    out = module.visit(PassState({"f": ("model", "X")})).code
    assert out == "a = f(1, b=2, model=model, X=X)\nc = [f(x, model=model, X=X) for x in y]\ng(f)\n"


def test_state_parameters_are_keyword_only_and_typed() -> None:
    fn = cst.parse_statement("def f(a, *args, k=1):\n    return a\n")
    assert isinstance(fn, cst.FunctionDef)
    new = with_state_parameters(fn, ("model",), {"model": "LinearRegression", "a": "int", "return": "float"})
    assert cst.Module([new]).code.splitlines()[0] == (
        "def f(a: int, *args, k=1, model: LinearRegression) -> float:"
    )
    plain = cst.parse_statement("def g(a):\n    return a\n")
    assert isinstance(plain, cst.FunctionDef)
    assert cst.Module([with_state_parameters(plain, ("m",), {})]).code.startswith("def g(a, *, m):")


@pytest.mark.slow
def test_lifted_function_is_importable_and_gives_the_notebooks_values(
    tmp_path: Path, make_notebook: Callable[..., Path]
) -> None:
    nb = make_notebook(
        [
            MODEL,
            "md:## Predict",
            PREDICT,
            "first = predict(4.0)",
            "md:## Change the scale",
            "scale = 100",
            "predict(5.0)",
        ]
    )
    out = tmp_path / "out"
    api.write(api.convert(nb, Settings(out=out)))
    steps = (out / "src/nb/steps.py").read_text()
    tree = ast.parse(steps)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "predict")
    # scale, bound again by a later cell, is a global of the steps module (module state): read as it is;
    # the fitted model is a parameter
    assert ast.unparse(fn.args) == "value: float, *, model: LinearRegression", steps
    assert ast.unparse(fn.returns) == "float" if fn.returns else False
    code = (
        "from nb import steps\nfrom nb.pipeline import run\nr = run()\n"
        "print(steps.predict(4.0, model=r.model), r.first, r.predict_result)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=out, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(out / "src"), "PATH": "/usr/bin:/bin"}, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    # the lifted function gives the notebook's value; the later call sees the later scale
    assert [float(v) for v in run.stdout.split()] == pytest.approx([800.0, 80.0, 1000.0])
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=out,
        capture_output=True, text=True, timeout=600, env={"PYTHONPATH": str(out / "src"), "PATH": "/usr/bin:/bin"},
        check=False,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout
