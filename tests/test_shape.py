"""Step shaping: headings of every kind, names cut at word boundaries, names from what a step does, cells grouped
by data flow, giant sections split at a read, a fit or an evaluation, the markdown above a step as its docstring.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbharden import api
from nbharden.analyse import FullAnalysis
from nbharden.models import Cell, Plan
from nbharden.plan import make_plan
from nbharden.settings import Settings
from nbharden.shape import NAME_LIMIT, comment_title, heading_of, prose_of, short_name

PlanFor = Callable[..., Plan]


@pytest.fixture
def plan_for(make_notebook: Callable[..., Path]) -> PlanFor:
    def run(cells: Sequence[str | tuple[str, Sequence[str]]]) -> Plan:
        settings = Settings(record=False)
        analysis = api.analyze(make_notebook(cells), settings)
        assert isinstance(analysis, FullAnalysis)
        return make_plan(analysis, settings=settings)

    return run


def md(text: str) -> Cell:
    return Cell(1, "markdown", text, text, "c1")


def code(text: str) -> Cell:
    return Cell(1, "code", text, text, "c1")


# --- headings and prose ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("## Outlier removal", "Outlier removal"),
        ("# Title\n\nSome text\n\n### 2.1 Load the data ###", "2.1 Load the data"),
        ("<h2>Outlier removal</h2>", "Outlier removal"),
        ("<h3 style='color:red'>Feature <i>engineering</i></h3>", "Feature engineering"),
        ("**Outlier removal**\n\nRows above 3 sigma go.", "Outlier removal"),
        ("__Split the data:__", "Split the data"),
        ("Model comparison\n================\n\ntext", "Model comparison"),
        ("Plain explanatory text, no heading.", None),
        ("Some **bold** inside a sentence.", None),
        ("#hashtag is not a heading", None),
    ],
)
def test_heading_of(source: str, expected: str | None) -> None:
    assert heading_of(md(source)) == expected


def test_prose_is_the_first_paragraph_without_markup() -> None:
    text = (
        "## Clean\n\nWe drop the rows **without** a [price](http://x.org) because <i>they</i> "
        "cannot be used.\n\nA second paragraph."
    )
    assert prose_of(md(text)) == "We drop the rows without a price because they cannot be used."
    assert prose_of(md("![img](a.png)")) == ""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("# Train the model\nmodel.fit(X, y)", "Train the model"),
        ("# Imports\nimport os", "Imports"),
        ("# df = df.dropna()\nx = 1", None),  # commented-out code
        ("#!/usr/bin/env python\nx = 1", None),
        ("# noqa\nx = 1", None),
        ("x = 1  # not first", None),
    ],
)
def test_comment_title(source: str, expected: str | None) -> None:
    assert comment_title(code(source)) == expected


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Create an evaluate function to give the score of each model", "create_evaluate_function_give"),
        ("Figure out which data category we should drop", "figure_out_data_category_drop"),
        ("1. Load the data", "load_data"),
        ("Step 3: Train", "train"),
        ("Clean-up & filter", "clean_up_filter"),
        ("The", "the"),
        ("2021 results", "step_2021_results"),
        ("XGBClassifier tuning", "xgb_classifier_tuning"),
        ("class", "class_"),
    ],
)
def test_short_name(text: str, expected: str) -> None:
    assert short_name(text) == expected


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=120))
def test_short_names_are_identifiers_of_whole_words(text: str) -> None:
    name = short_name(text)
    assert name.isidentifier() and not keyword.iskeyword(name)
    parts = [p for p in name.split("_") if p]
    if len([p for p in parts if p != "step"]) > 1:  # one long word (behind "step_") stays whole
        assert len(name) <= NAME_LIMIT
    # every part is a whole word of the text (words split at camelCase humps too), never a piece of one
    plain = text.replace("'", "")  # "let's" is one word
    split = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", plain))
    words = set(re.findall(r"[a-z0-9]+", split.lower()))
    assert all(p in words or p == "step" for p in parts)


# --- steps ----------------------------------------------------------------------------------------

ML = [
    "import pandas as pd\nfrom sklearn.linear_model import LinearRegression\n"
    "from sklearn.model_selection import train_test_split\nimport matplotlib.pyplot as plt",
    "df = pd.read_csv('data/house_prices.csv')",
    "md:Rows without a price cannot be used for training, so they go.",
    "df = df.dropna()\ndf['rooms'] = df['bedrooms'] + 1",
    "plt.hist(df['price'])\nplt.title('Price distribution')\nplt.show()",
    "X = df[['rooms']]\ny = df['price']\nX_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "lr = LinearRegression()\nlr.fit(X_train, y_train)",
    "score = lr.score(X_test, y_test)",
    "import joblib\njoblib.dump(lr, 'model.joblib')",
]


def test_without_headings_steps_are_named_by_what_they_do(plan_for: PlanFor) -> None:
    plan = plan_for(ML)
    assert [(s.name, s.cells) for s in plan.steps] == [
        ("load_house_prices", (2, 4)),
        ("plot_price_distribution", (5,)),
        ("train_linear_regression", (6, 7)),
        ("evaluate", (8,)),
        ("save_lr", (9,)),
    ]
    assert not [f for f in plan.findings if f.code == "NBH608"]


def test_a_single_h1_over_everything_is_split_at_read_fit_and_evaluation(plan_for: PlanFor) -> None:
    plan = plan_for(["md:# House prices\nWe predict the price of a house from its rooms.", *ML])
    names = [s.name for s in plan.steps]
    assert names == [
        "load_house_prices",
        "plot_price_distribution",
        "train_linear_regression",
        "evaluate",
        "save_lr",
    ]
    # the explanation above a later cell of the step is kept too, as a paragraph of its own
    assert plan.steps[0].doc == (
        "We predict the price of a house from its rooms.\n\n"
        "Rows without a price cannot be used for training, so they go."
    )


def test_a_small_headed_section_keeps_its_heading(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "from sklearn.linear_model import LinearRegression",
            "md:<h2>Model and score</h2>\nFit, then score on the same data.",
            "lr = LinearRegression()\nlr.fit([[1], [2]], [1, 2])",
            "score = lr.score([[1], [2]], [1, 2])",
        ]
    )
    (only,) = plan.steps
    assert (only.name, only.title, only.doc) == (
        "model_score",
        "Model and score",
        "Fit, then score on the same data.",
    )


def test_comment_lines_and_prose_name_steps_without_headings(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            "# Build the lookup table\ntable = {'a': 1}",
            "md:Here we count how many keys the table has.",
            "other = [3, 4]",
        ]
    )
    assert [(s.name, s.doc) for s in plan.steps] == [
        ("build_lookup_table", ""),
        ("count_many_keys_table_has", "Here we count how many keys the table has."),
    ]


def test_cell_n_only_when_nothing_names_a_step_and_then_with_a_finding(plan_for: PlanFor) -> None:
    plan = plan_for(["items = [1]", "items.append(2)"])
    assert [s.name for s in plan.steps] == ["prepare_items"]
    plan = plan_for(["import os", "os.getcwd()\n"])
    assert [s.name for s in plan.steps] == ["cell_2"]
    assert [(f.code, f.span.cell if f.span else 0) for f in plan.findings if f.code == "NBH608"] == [
        ("NBH608", 2)
    ]
