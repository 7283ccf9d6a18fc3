"""The plan stage: what moves to module level, the Config fields, the step boundaries and each
step's inputs and outputs, dependencies and names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from nbharden import api
from nbharden.analyse import FullAnalysis
from nbharden.models import ConfigField, Plan, Step
from nbharden.plan import make_plan, package_name, snake
from nbharden.settings import Settings

MakeNotebook = Callable[..., Path]
PlanFor = Callable[..., Plan]


@pytest.fixture
def plan_for(make_notebook: MakeNotebook) -> PlanFor:
    def run(
        cells: Sequence[str | tuple[str, Sequence[str]]],
        name: str = "nb.ipynb",
        settings: Settings | None = None,
    ) -> Plan:
        settings = settings or Settings(record=False)
        analysis = api.analyze(make_notebook(cells, name=name), settings)
        assert isinstance(analysis, FullAnalysis)
        return make_plan(analysis, settings=settings)

    return run


def field(plan: Plan, name: str) -> ConfigField:
    return next(f for f in plan.config_fields if f.name == name)


def step(plan: Plan, name: str) -> Step:
    return next(s for s in plan.steps if s.name == name)


def io(s: Step) -> tuple[list[tuple[str, str]], list[str]]:
    """(inputs as (name, source), output names)."""
    return [(p.name, p.source) for p in s.inputs], [p.name for p in s.outputs]


# --- hoisting -------------------------------------------------------------------------------------


def test_pure_functions_and_imports_move_to_module_level(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "import math\nimport numpy as np",
            "def area(r):\n    return math.pi * r ** 2",
            # uses another hoisted function: a fixpoint
            "def ring(r1, r2):\n    return area(r2) - area(r1)",
            "class Point:\n    def norm(self):\n        return np.hypot(self.x, self.y)",
            "limit = 3",
            "def over(xs):\n    return [x for x in xs if x > limit]",  # reads notebook state
        ]
    )
    assert plan.hoisted_imports == ("math", "np")
    assert plan.hoisted == ("Point", "area", "ring")
    assert [(f.code, f.span.cell) for f in plan.findings if f.code == "NBH606" and f.span] == [
        ("NBH606", 6)
    ]


def test_a_function_using_a_kept_function_stays_too(plan_for: PlanFor) -> None:
    plan = plan_for(
        ["k = 2", "def scale(x):\n    return x * k", "def twice(x):\n    return scale(scale(x))"]
    )
    assert plan.hoisted == ()


def test_redefined_function_is_not_hoisted(plan_for: PlanFor) -> None:
    plan = plan_for(["def f(x):\n    return x", "a = f(1)", "def f(x):\n    return -x", "b = f(1)"])
    assert "f" not in plan.hoisted


def test_function_next_to_global_statement_is_not_hoisted(plan_for: PlanFor) -> None:
    plan = plan_for(["n = 0", "def bump():\n    global n\n    n += 1"])
    assert "bump" not in plan.hoisted


def test_conflicting_and_rebound_imports_stay_in_their_steps(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "from math import sqrt\nimport json",
            "a = sqrt(4.0)",
            "from numpy import sqrt",
            "b = sqrt(9.0)",
            "json = {'not': 'the module'}",
        ]
    )
    assert "sqrt" not in plan.hoisted_imports
    assert "json" not in plan.hoisted_imports


def test_conditional_import_is_not_hoisted(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "try:\n    import ujson as js\nexcept ImportError:\n    import json as js",
            "s = js.dumps([])",
        ]
    )
    assert "js" not in plan.hoisted_imports


# --- config ---------------------------------------------------------------------------------------


PARAMETERS = (
    "alpha = 0.5\nn = 3\nlabel = 'run'\nverbose = True\ncols = ['a', 'b']\n"
    "data_path = 'data/x.csv'\nnothing = None"
)


def test_parameters_cell_becomes_config(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            (PARAMETERS, ["parameters"]),
            "out = [alpha * n, label, verbose, cols, data_path, nothing]",
        ]
    )
    fields = {f.name: (f.annotation, f.default, f.kind, f.cell, f.line) for f in plan.config_fields}
    assert fields["alpha"] == ("float", "0.5", "parameter", 1, 1)
    assert fields["n"] == ("int", "3", "parameter", 1, 2)
    assert fields["label"] == ("str", "'run'", "parameter", 1, 3)
    assert fields["verbose"] == ("bool", "True", "parameter", 1, 4)
    assert fields["cols"] == ("list[str]", "['a', 'b']", "parameter", 1, 5)
    # a relative data path stays relative: it resolves from data_dir (the notebook's folder by
    # default), the working folder of a run, as it did in Jupyter; a moved package needs only data_dir
    assert fields["data_path"] == ("str", "'data/x.csv'", "parameter", 1, 6)
    assert fields["nothing"][0] == "object | None"
    # the order of the cell, then the generated working-folder field
    assert [f.name for f in plan.config_fields] == [
        "alpha",
        "n",
        "label",
        "verbose",
        "cols",
        "data_path",
        "nothing",
        "data_dir",
    ]
    # the parameters cell is consumed: no step for it, the next step reads everything from the
    # config
    assert [s.cells for s in plan.steps] == [(2,)]
    inputs, _ = io(plan.steps[0])
    assert inputs == [
        (name, "config")
        for name in ["alpha", "n", "label", "verbose", "cols", "data_path", "nothing"]
    ]


def test_parameters_cell_secret_is_a_secret_field(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            ("api_token = 'sk-abcdefghijklmnopqrstuvwx123'\nrate = 2", ["parameters"]),
            "x = (api_token, rate)",
        ]
    )
    token = field(plan, "api_token")
    assert (token.annotation, token.secret, token.kind) == ("SecretStr", True, "secret")
    assert "sk-" not in token.default and "sk-" not in token.description


def test_constants_paths_and_urls_outside_the_parameters_cell(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "import pandas as pd\nimport requests",
            "SOURCE = 'data/in.csv'\nAPI = 'https://example.com/api'\nOUT = '/srv/out.parquet'",
            "df = pd.read_csv(SOURCE)\nr = requests.get(API, timeout=5)",
            "df.to_parquet(OUT)",
        ]
    )
    assert (field(plan, "SOURCE").kind, field(plan, "SOURCE").default) == (
        "constant",
        "'data/in.csv'",
    )
    assert (field(plan, "API").kind, field(plan, "API").default) == (
        "constant",
        "'https://example.com/api'",
    )
    assert (
        field(plan, "OUT").default == "'/srv/out.parquet'"
    )  # absolute: kept as it is (and NBH202)
    assert [f.code for f in plan.findings if f.code == "NBH204"] == ["NBH204"]


def test_literals_passed_to_io_calls_are_lifted(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "import pandas as pd",
            "df = pd.read_csv('data/sales.csv')\nsales = df",
            ("again = pd.read_csv('data/sales.csv')", ["step:again"]),
        ]
    )
    lifted = field(plan, "sales_path")  # named after the file; 'sales' is taken by the notebook
    assert (lifted.kind, lifted.annotation, lifted.default, lifted.literal) == (
        "lifted",
        "Path",
        "Path('data/sales.csv')",
        "data/sales.csv",
    )
    assert [f.name for f in plan.config_fields if f.kind == "lifted"] == [
        "sales_path"
    ]  # once per literal
    assert [
        (f.code, f.span.cell, f.span.line) for f in plan.findings if f.code == "NBH203" and f.span
    ] == [("NBH203", 2, 1)]
    assert io(plan.steps[0])[0] == [("sales_path", "config")]
    assert ("sales_path", "config") in io(plan.steps[1])[0]


def test_a_variable_assigned_twice_is_not_config(plan_for: PlanFor) -> None:
    plan = plan_for(["path = 'data/a.csv'", "path = 'data/b.csv'", "p = path"])
    assert [f.name for f in plan.config_fields] == ["data_dir"]


def test_plots_add_an_output_dir(plan_for: PlanFor) -> None:
    plan = plan_for(["import matplotlib.pyplot as plt", "plt.plot([1, 2])\nplt.show()"])
    assert plan.uses_plots
    assert field(plan, "output_dir").kind == "output"
    assert not plan_for(["x = 1"]).uses_plots


# --- steps ----------------------------------------------------------------------------------------


def test_markdown_headings_make_the_steps(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "import csv",
            "md:# Load the data!",
            "rows = [1, 2, 3]",
            "md:Some text, no heading",
            "extra = 4",
            "md:## Clean-up & filter",
            "kept = [r for r in rows if r > 1]",
            "md:## Report",
            "md:## Empty section",
            "total = sum(kept) + extra",
        ]
    )
    assert [(s.name, s.title, s.cells) for s in plan.steps] == [
        ("load_data", "Load the data!", (3, 5)),
        ("clean_up_filter", "Clean-up & filter", (7,)),
        ("empty_section", "Empty section", (10,)),
    ]
    assert io(step(plan, "load_data")) == ([], ["rows", "extra"])
    assert io(step(plan, "clean_up_filter")) == ([("rows", "load_data")], ["kept"])
    assert io(step(plan, "empty_section")) == (
        [("kept", "clean_up_filter"), ("extra", "load_data")],
        ["total"],
    )
    assert step(plan, "empty_section").results == ("total",)


def test_step_tags_make_the_steps(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            ("raw = [3, 1, 2]", ["step:load"]),
            ("ordered = sorted(raw)", ["step:transform", "other-tag"]),
            "smallest = ordered[0]",
            ("result = (smallest, ordered[-1])", ["step:summarise"]),
        ]
    )
    assert [(s.name, s.cells) for s in plan.steps] == [
        ("load", (1,)),
        ("transform", (2, 3)),
        ("summarise", (4,)),
    ]
    assert io(step(plan, "summarise"))[0] == [("smallest", "transform"), ("ordered", "transform")]


def test_without_headings_cells_join_the_step_whose_data_flow_they_continue(
    plan_for: PlanFor,
) -> None:
    plan = plan_for(["a = 1", "b = a + 1", "", "c = a + b", "other = [1]", "more = other * 2"])
    assert [(s.name, s.cells) for s in plan.steps] == [
        ("prepare_a", (1, 2, 4)),
        ("prepare_other", (5, 6)),
    ]
    assert plan.steps[0].results == ("c",)


def test_inputs_come_from_the_latest_definition(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            ("x = 1", ["step:one"]),
            ("y = x * 10", ["step:two"]),
            ("x = 'text'", ["step:three"]),
            ("z = (x, y)", ["step:four"]),
        ]
    )
    assert io(step(plan, "two")) == ([("x", "one")], ["y"])
    assert io(step(plan, "four"))[0] == [("x", "three"), ("y", "two")]
    # the first x is read by step two only; the second x is read by step four
    assert io(step(plan, "one"))[1] == ["x"]
    assert io(step(plan, "three"))[1] == ["x"]


def test_mutated_inputs_flow_on(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "train = [1]\ntest = [2]",
            ("for d in [train, test]:\n    d.append(0)", ["step:mutate"]),
            ("sizes = (len(train), len(test))", ["step:sizes"]),
        ]
    )
    mutate = step(plan, "mutate")
    assert mutate.mutated == ("train", "test")
    assert io(mutate)[1] == ["train", "test"]
    assert io(step(plan, "sizes"))[0] == [("train", "mutate"), ("test", "mutate")]


def test_display_only_cells_make_no_step(plan_for: PlanFor) -> None:
    plan = plan_for(["data = {'a': 1}", "data", "len(data)", "count = len(data)"])
    assert [s.cells for s in plan.steps] == [(1, 4)]


def test_typed_inputs_and_outputs(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "import pandas as pd",
            "df = pd.DataFrame({'a': [1]})\nn = 3\nnames = ['a']",
            ("m = (df, n, names)", ["step:use"]),
        ]
    )
    types = {p.name: p.annotation for p in plan.steps[0].outputs}
    assert types == {"df": "pd.DataFrame", "n": "int", "names": "list[str]"}


# --- names and dependencies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Load the data!", "load_the_data"),
        ("Feature Engineering (v2)", "feature_engineering_v2"),
        ("camelCaseTitle", "camel_case_title"),
        ("2nd pass", "step_2nd_pass"),
        ("class", "class_"),
        ("list", "list_"),
        ("!!!", "step"),
        ("one two three four five six seven", "one_two_three_four_five_six"),
    ],
)
def test_snake(text: str, expected: str) -> None:
    assert snake(text) == expected


@pytest.mark.parametrize(
    ("stem", "imported", "expected"),
    [
        ("Churn Analysis", set(), "churn_analysis"),
        ("json", set(), "json_pipeline"),  # never shadow the standard library
        ("pandas", {"pandas"}, "pandas_pipeline"),  # nor a module the notebook imports
        ("tests", set(), "tests_pipeline"),
        ("01-sales", set(), "nb_01_sales"),
    ],
)
def test_package_name(stem: str, imported: set[str], expected: str) -> None:
    assert package_name(stem, imported) == expected


@pytest.mark.parametrize(
    ("stem", "folder", "expected"),
    [
        ("index", "ames", "ames_index"),  # issue 13: a top-level "index" would shadow
        ("Untitled1", "house-prices", "house_prices_untitled1"),
        ("main", "Credit Risk", "credit_risk_main"),
        ("test", "notebooks", "test_pipeline"),  # the folder is common too
        ("json", "anything", "json_pipeline"),  # the standard library: as before
        ("churn", "anything", "churn"),  # a distinctive name is kept as it is
    ],
)
def test_package_name_never_shadows_common_names(stem: str, folder: str, expected: str) -> None:
    assert package_name(stem, set(), folder) == expected


def test_package_name_from_settings(plan_for: PlanFor) -> None:
    assert plan_for(["x = 1"], settings=Settings(name="My Pipeline")).package == "my_pipeline"
    assert plan_for(["import json\nx = 1"], name="json.ipynb").package == "json_pipeline"
    # a common name takes the folder's name in front (pytest's tmp_path here)
    common = plan_for(["x = 1"], name="index.ipynb").package
    assert common.endswith("_index") and common.startswith("test_package_name_from")


def test_dependencies(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "import os\nimport numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
            "import yaml\nfrom PIL import Image\nimport IPython",
            "!pip install tabulate==0.9.0",
        ]
    )
    assert plan.dependencies == ("numpy", "pillow", "pyyaml", "scikit-learn", "tabulate==0.9.0")


def test_plan_is_json_serialisable_and_deterministic(plan_for: PlanFor) -> None:
    cells = [
        (PARAMETERS, ["parameters"]),
        "md:# Use",
        "import math\nout = [math.sqrt(alpha), n, cols]",
    ]
    first = json.dumps(plan_for(cells).to_json(), sort_keys=True)
    second = json.dumps(plan_for(cells, name="nb2.ipynb").to_json(), sort_keys=True)
    assert first == second.replace("nb2", "nb")


def test_a_name_deleted_in_its_step_is_not_returned(plan_for: PlanFor) -> None:
    """``del label`` after ``label = 'x'``: the step cannot return label (the generated code raised
    UnboundLocalError); a name bound again after its ``del`` is returned."""
    plan = plan_for(["label = 'x'\nkept = 1\ntemp = 2\nagain = 3\ndel label\ndel temp, again\nagain = 4"])
    (only,) = plan.steps
    assert [p.name for p in only.outputs] == ["kept", "again"]
    assert only.results == ("kept", "again")


# --- state across steps (issue 11) ----------------------------------------------------------------


def test_an_augmented_assignment_reads_its_target(plan_for: PlanFor) -> None:
    plan = plan_for(
        ["y = 1", "md:## Add", "y += 1", "md:## Loop", "for i in range(3):\n    y += i", "md:## Use", "z = y"]
    )
    readers = [s for s in plan.steps if "y" in [p.name for p in s.inputs]]
    assert len(readers) == 3, [io(s) for s in plan.steps]


def test_a_global_a_function_rebinds_is_module_state(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "TOKENS = []\ndef peek():\n    return TOKENS[0]",
            "def tokenize(s):\n    global TOKENS\n    TOKENS = s.split()",
            "tokenize('a b')\nfirst = peek()\nn = len(TOKENS)",
        ]
    )
    assert plan.module_state == ("TOKENS",)
    last = plan.steps[-1]
    assert "TOKENS" in last.state and "TOKENS" in [p.name for p in last.inputs]
    assert all("TOKENS" not in [p.name for p in s.outputs] for s in plan.steps)
    assert "peek" not in plan.hoisted  # module state is bound by a step, after import


def test_a_name_rebound_after_a_closure_reads_it_is_module_state(plan_for: PlanFor) -> None:
    plan = plan_for(["x = 1\ndef f():\n    return x", "x = 2", "y = f()"])
    assert plan.module_state == ("x",)
    # bound once, after the function: the function moves after it instead (NBH105), no state
    plan = plan_for(["def f():\n    return x", "x = 2", "y = f()"])
    assert plan.module_state == ()


def test_a_walrus_in_a_comprehension_binds_in_the_cell(plan_for: PlanFor) -> None:
    plan = plan_for(["ys = [(last := v) for v in range(3)]", "md:## Use", "z = last"])
    assert ("last", plan.steps[0].name) in io(plan.steps[-1])[0]


def test_a_comprehension_reads_where_it_stands(plan_for: PlanFor) -> None:
    plan = plan_for(
        ["def f(a):\n    return a", "md:## Use", "d = [f(i) for i in range(2)]\ndef f(a):\n    return -a"]
    )
    assert "f" in [p.name for p in plan.steps[-1].inputs]


def test_a_result_deleted_or_rebound_later_is_final_where_it_ends(plan_for: PlanFor) -> None:
    plan = plan_for(["a = 0\nb = 1", "md:## Later", "del a\nif b:\n    b = 2"])
    assert [s.results for s in plan.steps] == [(), ("b",)]


def test_an_except_as_name_is_never_a_result(plan_for: PlanFor) -> None:
    """``except E as e`` ends with an implicit ``del e`` when its handler runs (handson-ml2 tools_numpy:
    ``e`` was an array, and a later cell printed an error ``except ValueError as e``; the step returned
    ``e`` and raised UnboundLocalError). No step returns such a name, whether an earlier step, the
    same cell or the handler's body bound it, nor does a step whose try binds it too."""
    plan = plan_for(
        [
            "e = [1, 2]\nk = 0",
            "md:## Fails",
            "try:\n    int('x')\nexcept ValueError as e:\n    print(e)\n    e = 3",
            "md:## Same cell",
            "z = [1]\ntry:\n    z = int('x')\nexcept ValueError as z:\n    pass",
            "md:## Later",
            "m = 1",
        ]
    )
    for s in plan.steps:
        assert {"e", "z"}.isdisjoint(p.name for p in s.outputs), io(s)
    assert [s.results for s in plan.steps] == [("k",), (), (), ("m",)]


def test_an_except_as_handler_that_did_not_run_leaves_the_earlier_value(plan_for: PlanFor) -> None:
    """After ``except E as e`` (the handler did not run) ``e`` still holds the earlier cell's value: a
    read after the try, in its cell or a later step, takes it from the step that bound it; the handler's
    own ``print(e)`` reads no earlier value."""
    plan = plan_for(
        [
            "e = [1, 2]",
            "md:## Try",
            "try:\n    n = 1\nexcept ValueError as e:\n    print(e)\nm = len(e)",
            "md:## Handler only",
            "try:\n    n = 2\nexcept ValueError as e:\n    print(e)",
            "md:## Use",
            "k = len(e) + n",
        ]
    )
    first, tried, handler, use = plan.steps
    assert io(first)[1] == ["e"]
    assert ("e", first.name) in io(tried)[0]
    assert "e" not in [p.name for p in handler.inputs]
    assert ("e", first.name) in io(use)[0]


@pytest.mark.parametrize("attribute", ["best_estimator_", "estimator_", "final_estimator_"])
def test_the_estimator_a_search_chose_is_a_model_the_pipeline_returns(
    plan_for: PlanFor, attribute: str
) -> None:
    """credit_risk: ``best = grid.best_estimator_`` is the model the notebook then evaluates and saves;
    run() returned the search but not ``best``, the model a user wants from it."""
    plan = plan_for(
        [
            "from sklearn.linear_model import LogisticRegression\n"
            "from sklearn.model_selection import GridSearchCV",
            "md:## Search",
            "grid = GridSearchCV(LogisticRegression(), {'C': [0.1, 1.0]}, cv=2)\n"
            "grid.fit([[0], [1], [2], [3]], [0, 1, 0, 1])\n"
            f"best = grid.{attribute}",
            "md:## Save",
            "import joblib\njoblib.dump(best, 'best.joblib')",
        ]
    )
    search = next(s for s in plan.steps if s.name == "search")
    assert "best" in search.models and "best" in search.results, search
