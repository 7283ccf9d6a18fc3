"""Results the notebook shows: which displayed values are kept (bound, logged, returned, in metrics.json), under
which names, and what the generated code and recording do with them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbharden import api
from nbharden.analyse import FullAnalysis
from nbharden.models import Plan, Shown
from nbharden.plan import make_plan
from nbharden.settings import Settings
from nbharden.shown import _fresh, compose_name

PlanFor = Callable[..., Plan]

IMPORTS = (
    "import pandas as pd\nimport matplotlib.pyplot as plt\n"
    "from sklearn.linear_model import LinearRegression, LogisticRegression\n"
    "from sklearn.metrics import accuracy_score, f1_score\n"
    "from sklearn.model_selection import GridSearchCV, cross_val_score"
)
SETUP = (
    "X = pd.DataFrame({'a': [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})\ny = pd.Series([0, 0, 0, 1, 1, 1])\n"
    "clf = LogisticRegression()\nclf.fit(X, y)\nreg = LinearRegression()\nreg.fit(X, y)\n"
    "pred = clf.predict(X)"
)

SEARCH = "search = GridSearchCV(LogisticRegression(), {'C': [0.5, 1.0]}, cv=2)\nsearch.fit(X, y)"


@pytest.fixture
def plan_for(make_notebook: Callable[..., Path]) -> PlanFor:
    def run(cells: Sequence[str | tuple[str, Sequence[str]]]) -> Plan:
        settings = Settings(record=False)
        analysis = api.analyze(make_notebook(cells), settings)
        assert isinstance(analysis, FullAnalysis)
        return make_plan(analysis, settings=settings)

    return run


def shown(plan: Plan) -> list[tuple[str, str]]:
    return [(s.name, s.how) for step in plan.steps for s in step.shown]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("clf.score(X, y)", [("accuracy", "bind")]),
        ("reg.score(X, y)", [("r2", "bind")]),
        ("f1_score(y, pred)", [("f1", "bind")]),
        ("cross_val_score(reg, X, y, cv=2)", [("cv_scores", "bind")]),
        ("cross_val_score(reg, X, y, cv=2).mean()", [("cv_scores_mean", "bind")]),
        ("acc = accuracy_score(y, pred)\nacc", [("acc", "name")]),
        ("scores = cross_val_score(reg, X, y, cv=2)\nscores.mean()", [("scores_mean", "bind")]),
        ("clf.coef_", [("coef", "bind")]),
        ("clf.predict(X)", [("predictions", "bind")]),
        ("display(clf.score(X, y))", [("accuracy", "display")]),
        # a dict of metrics, written out or filled in a loop, is a result; a dict of settings is not
        (
            "metrics = {'accuracy': accuracy_score(y, pred), 'f1': f1_score(y, pred)}\nmetrics",
            [("metrics", "name")],
        ),
        (
            "scores = {}\nfor name, m in {'clf': clf}.items():\n"
            "    scores[name] = cross_val_score(m, X, y, cv=2).mean()\nscores",
            [("scores", "name")],
        ),
        ("{name: m.score(X, y) for name, m in {'clf': clf, 'reg': reg}.items()}", [("result", "bind")]),
        ("params = {'C': 1.0}\nparams['max_iter'] = 100\nparams", []),
        # a fit's printed report is a display of the fit, which is compared itself; its numbers are results
        ("import statsmodels.api as sm\nols = sm.OLS(y, X).fit()\nols.summary()", []),
        ("import statsmodels.api as sm\nols = sm.OLS(y, X).fit()\nprint(ols.summary().tables[1])", []),
        ("import statsmodels.api as sm\nols = sm.OLS(y, X).fit()\nols.params", [("ols_params", "bind")]),
        # names an engineer gives library results whose function keeps its own name
        ("from sklearn.metrics import classification_report\nclassification_report(y, pred)", [("report", "bind")]),
        ("from sklearn import metrics\nmetrics.confusion_matrix(y, pred)", [("confusion", "bind")]),
        ("from sklearn.metrics import mean_squared_error\nmean_squared_error(y, pred)", [("mse", "bind")]),
        ("from collections import Counter\nCounter(pred).most_common(1)", [("counter_most_common", "bind")]),
        ("acc = accuracy_score(y, pred)\ndisplay(acc)\nprint(acc)", [("acc", "name")]),
        # previews of data, actions and hidden values are not results
        ("X.head()", []),
        ("X.describe()", []),
        ("X", []),
        ("y.value_counts()", []),
        ("X.shape", []),
        ("clf.fit(X, y)", []),
        ("plt.plot(X['a'])", []),
        ("clf.score(X, y);", []),
        ("clf.score(X, y)\nn = 1", []),
        ("X.sort_values('a')", []),
        ("X.dropna(inplace=True)", []),
        # a table made from a result, sorted or cut, is a result (a grid search's comparison table)
        (
            f"{SEARCH}\nresults = pd.DataFrame(search.cv_results_)[['params', 'rank_test_score']]\n"
            "results.sort_values('rank_test_score')",
            [("results_sorted", "bind")],
        ),
        (
            f"{SEARCH}\npd.DataFrame(search.cv_results_).sort_values('rank_test_score')[['params']]",
            [("cv_results", "bind")],
        ),
        # a summary of the data by group is a result; a count by group is a preview, as value_counts
        ("d = X.assign(k=y)\nd.groupby('k').mean()", [("mean_by_k", "bind")]),
        ("d = X.assign(k=y)\nd.groupby('k')['a'].mean()", [("a_mean_by_k", "bind")]),
        ("d = X.assign(k=y)\nd.groupby('k')[['a']].agg(['mean', 'max']).round(1)", [("summary_by_k", "bind")]),
        ("d = X.assign(k=y)\nsummary = d.groupby('k').median()\nsummary['n'] = 1\nsummary", [("summary", "name")]),
        ("d = X.assign(k=y)\nd.pivot_table(index='k', values='a')", [("d_pivot_table", "bind")]),
        ("d = X.assign(k=y)\nd.groupby('k').size()", []),
        ("d = X.assign(k=y)\nd.groupby('k')['a'].agg('count')", []),
    ],
)
def test_which_shown_values_are_results(plan_for: PlanFor, cell: str, expected: list[tuple[str, str]]) -> None:
    assert shown(plan_for([IMPORTS, SETUP, cell])) == expected


def test_notebook_functions_count_when_they_return_a_value(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            IMPORTS,
            SETUP,
            "def leaderboard(models):\n    return pd.DataFrame({'name': list(models)})",
            "def report(models):\n    print(models)",
            "leaderboard({'clf': clf})",
            "report({'clf': clf})",
            "def get_total(values):\n    return sum(values)",
            "get_total([1, 2])",
        ]
    )
    assert shown(plan) == [("leaderboard_result", "bind"), ("total", "bind")]


def test_result_names_never_shadow_notebook_names(plan_for: PlanFor) -> None:
    plan = plan_for([IMPORTS, SETUP, "accuracy = 1", "clf.score(X, y)", "clf.score(X[:3], y[:3])"])
    assert shown(plan) == [("accuracy_2", "bind"), ("accuracy_3", "bind")]


def test_shown_values_and_fitted_models_are_step_results(plan_for: PlanFor) -> None:
    plan = plan_for(
        [
            IMPORTS,
            "md:## Train",
            SETUP,
            "md:## Evaluate",
            "clf.score(X, y)",
            "reg.score(X, y)",
        ]
    )
    train, evaluate = plan.steps
    assert train.models == ("clf", "reg")
    assert set(train.results) >= {"clf", "reg"}  # read by the next step, still results
    assert evaluate.results == ("accuracy", "r2")
    assert [f.code for f in plan.findings if f.code == "NBH607"] == ["NBH607", "NBH607"]
    assert any(f.name == "output_dir" for f in plan.config_fields)


def test_generated_code_binds_logs_and_returns_results(tmp_path: Path, make_notebook: Callable[..., Path]) -> None:
    nb = make_notebook([IMPORTS, SETUP, "clf.score(X, y)", "X.head()", "display(pd.DataFrame({'k': [1]}))"])
    files = api.generate(nb, Settings(record=False, out=tmp_path / "out")).tree.as_dict()
    steps = files["src/nb/steps.py"]
    assert 'accuracy = clf.score(X, y)\n    log_result("accuracy", accuracy)' in steps
    assert "X.head()" not in steps
    assert 'table = pd.DataFrame({"k": [1]})\n    log_result("table", table)' in steps
    pipeline = files["src/nb/pipeline.py"]
    assert "class Results:" in pipeline and "accuracy: Any" in pipeline
    assert "clf: LogisticRegression" in pipeline  # typed; the imports for type checkers only
    assert "write_metrics(config.output_dir, collected_results())" in pipeline
    assert "src/nb/results.py" in files


def test_a_dropped_display_is_reported_at_its_line(make_notebook: Callable[..., Path], tmp_path: Path) -> None:
    """A shown value that is no result is never dropped silently: NBH603 names the cell and line (issue 14)."""
    nb = make_notebook([IMPORTS, SETUP, "X.head()\nclf.fit(X, y)", "n = len(X)\nX.describe()", "X.shape"])
    findings = api.generate(nb, Settings(record=False, out=tmp_path / "out")).findings
    nbh603 = sorted((f.span.cell, f.span.line, f.message) for f in findings if f.code == "NBH603" and f.span)
    assert nbh603 == [
        (3, 1, "'X.head()' shows nothing (not the cell's last expression): dropped"),
        (4, 2, "'X.describe()' shows a preview of data, not a result: dropped"),
        (5, 1, "cell only displays values; dropped from the package"),
    ]


def test_without_results_no_results_module(tmp_path: Path, make_notebook: Callable[..., Path]) -> None:
    nb = make_notebook(["x = [1, 2]", "x"])
    files = api.generate(nb, Settings(record=False, out=tmp_path / "out")).tree.as_dict()
    assert "src/nb/results.py" not in files and "log_result" not in files["src/nb/steps.py"]
    assert "class Results:\n" in files["src/nb/pipeline.py"]


# --- the runtime helpers (templates/results.py), in process ------------------------------------------


def test_log_result_logs_a_structured_event_and_metrics_keep_small_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np
    import pandas as pd

    from nbharden.templates import results

    results.start_results()
    with caplog.at_level("INFO"):
        results.log_result("accuracy", np.float64(0.75))
        results.log_result("table", pd.DataFrame({"model": ["a", "b"], "score": [0.5, 0.25]}))
        results.log_result("big", np.zeros(1000))
        results.log_result("nan", float("nan"))
    record = caplog.records[0]
    assert record.getMessage() == "result name=accuracy value=0.75"
    assert (record.event, record.result, record.value) == ("result", "accuracy", 0.75)  # type: ignore[attr-defined]
    assert "big value=ndarray(1000,)" in caplog.records[2].getMessage()
    path = results.write_metrics(tmp_path / "out", results.collected_results())
    assert json.loads(path.read_text()) == {
        "accuracy": 0.75,
        "table": [{"model": "a", "score": 0.5}, {"model": "b", "score": 0.25}],
    }


# --- recorded and run for real --------------------------------------------------------------------

ML_NOTEBOOK = [
    IMPORTS,
    "md:## Train",
    SETUP,
    "md:## Evaluate",
    "clf.score(X, y)",
    "display(pd.DataFrame({'model': ['clf'], 'score': [clf.score(X, y)]}))",
    "reg.score(X, y)",
]


@pytest.mark.slow
def test_recorded_results_are_pinned_logged_and_saved(tmp_path: Path, make_notebook: Callable[..., Path]) -> None:
    nb = make_notebook(ML_NOTEBOOK)
    out = tmp_path / "out"
    changes = api.convert(nb, Settings(out=out))
    api.write(changes)
    recording = json.loads((out / "tests/data/recording.json").read_text())
    outputs = {e["name"]: e for e in recording["steps"]["evaluate"]["outputs"]}
    assert set(outputs) == {"accuracy", "table", "r2"}
    assert all(e["kind"] in {"value", "pickle"} for e in outputs.values()), outputs
    env = dict(os.environ, PYTHONPATH=str(out / "src"))
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=out, env=env,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    run = subprocess.run(
        [sys.executable, "-m", "nb", "--log-format", "json", "--output-dir", str(tmp_path / "o")],
        cwd=out, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    logged = {e["result"]: e["value"] for e in events if e.get("event") == "result"}
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert logged["accuracy"] == metrics["accuracy"] == 1.0
    assert metrics["table"] == [{"model": "clf", "score": 1.0}]
    assert metrics["r2"] == logged["r2"] and 0 < metrics["r2"] < 1
    # evaluating on fewer rows changes the result: a generated test fails
    steps = out / "src/nb/steps.py"
    code = steps.read_text()
    assert "r2 = reg.score(X, y)\n" in code
    steps.write_text(code.replace("r2 = reg.score(X, y)\n", "r2 = reg.score(X[:5], y[:5])\n"))
    broken = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=out, env=env,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert broken.returncode == 1 and "r2" in broken.stdout, broken.stdout


def test_shown_model_is_frozen() -> None:
    value = Shown("accuracy", 3, 0, "bind")
    with pytest.raises(AttributeError):
        value.name = "other"  # type: ignore[misc]


def test_ignoring_nbh607_keeps_the_shown_expression(plan_for: PlanFor, make_notebook: Callable[..., Path]) -> None:
    cells = [IMPORTS, SETUP, "clf.score(X, y)", "reg.score(X, y)  # nbharden: noqa[NBH607]"]
    assert shown(plan_for(cells)) == [("accuracy", "bind")]
    settings = Settings(record=False, ignore=("NBH607",))
    analysis = api.analyze(make_notebook(cells, name="other.ipynb"), settings)
    assert isinstance(analysis, FullAnalysis)
    assert shown(make_plan(analysis, settings=settings)) == []


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        # in IPython a magic statement's Out is None: %timeit shows a timing, %%writefile a line, !cmd its output
        ("%timeit clf.score(X, y)", []),
        ("%%timeit\nclf.score(X, y)", []),
        ("%%writefile notes.txt\nsome text", []),
        ("!echo hi", []),
        ("%prun clf.score(X, y)", []),
        # %time shows the value of its statement
        ("%time clf.score(X, y)", [("accuracy", "bind")]),
    ],
)
def test_a_magic_that_shows_no_value_keeps_no_result(
    plan_for: PlanFor, cell: str, expected: list[tuple[str, str]]
) -> None:
    assert shown(plan_for([IMPORTS, SETUP, cell])) == expected


@pytest.mark.parametrize("shown_class", ["numpy.ndarray", "numpy.float64", "pandas.DataFrame", "builtins.dict"])
def test_a_shown_class_is_logged_and_left_out_of_metrics(shown_class: str) -> None:
    """``type(np.zeros(3))`` is a value notebooks show: a class's to_dict/tolist are unbound methods, so the
    generated results.py must not call them (it raised TypeError in the generated tests of a corpus notebook)."""
    import importlib

    from nbharden.templates import results

    module, _, name = shown_class.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert results.jsonable(cls) is None
    assert results.jsonable({"kind": cls}) is None
    assert name in results.describe(cls)
    results.log_result("type_result", cls)


def test_a_frame_whose_index_repeats_is_logged_and_left_out_of_metrics() -> None:
    """pandas has no dict by index for a frame whose index repeats (pydata ch08's joins): the generated
    results.py raised ValueError there and stopped the pipeline; logging a result never fails."""
    import pandas as pd

    from nbharden.templates import results

    frame = pd.DataFrame({"a": [1, 2]}, index=["x", "x"])
    assert results.jsonable(frame) is None
    assert results.jsonable(pd.DataFrame({"a": [1, 2]}, index=["x", "y"])) == {"x": {"a": 1}, "y": {"a": 2}}
    results.log_result("joined", frame)


WORDS = st.from_regex(r"[a-z][a-z0-9]{0,9}|[0-9]{1,4}", fullmatch=True)
PARTS = st.lists(st.lists(WORDS, min_size=1, max_size=5).map("_".join), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(parts=PARTS)
def test_a_composed_name_reads_like_an_engineers(parts: list[str]) -> None:
    """Every result name: a valid identifier, no word twice, only whole words of its parts, about 30
    characters at most (a single longer word stays whole), no number first."""
    name = compose_name(parts)
    words = name.split("_")
    given_words = {w for p in parts for w in p.split("_")}
    assert name.isidentifier() and not name[0].isdigit(), name
    assert len(words) == len(set(words)), name
    assert set(words) <= given_words | {"result"}, (name, parts)
    assert len(name) <= 30 or len(words) == 1 or (len(words) == 2 and words[0] == "result"), name


@settings(max_examples=200, deadline=None)
@given(bases=st.lists(PARTS.map("_".join), min_size=1, max_size=8))
def test_fresh_names_are_unique_and_never_repeat_a_word(bases: list[str]) -> None:
    taken = {"df", "model", "accuracy", "price_2"}
    names = [_fresh(base, taken) for base in bases]
    assert len(set(names)) == len(names) and not set(names) & {"df", "model", "accuracy", "price_2"}
    for name in names:
        words = name.split("_")
        assert name.isidentifier() and len(words) == len(set(words)), name


def test_tuple_results_repeat_no_word(plan_for: PlanFor) -> None:
    """spam_filter and advertising_ols (issue 14): is_spam_result_is_spam_result, model_rsquared_rsquared_adj."""
    plan = plan_for(
        [
            IMPORTS + "\nimport statsmodels.api as sm",
            SETUP,
            "def is_spam(text):\n    return len(text) > 3",
            "is_spam('free money'), is_spam('hello')",
            "ols = sm.OLS(y, X).fit()\nols.rsquared, ols.rsquared_adj",
            "clf.coef_, clf.intercept_",
        ]
    )
    assert shown(plan) == [("is_spam_result", "bind"), ("rsquared_adj", "bind"), ("coef_intercept", "bind")]


# --- printed results: a computed name a print prints is a result, as a shown one ----------------------

PRINTED = (
    "acc = accuracy_score(y, pred)\nf1 = f1_score(y, pred)\nscores = cross_val_score(reg, X, y, cv=2)\n"
    "n = 3\nlabel = 'run'\nframe = X"
)
COMPUTED = {"acc", "f1", "scores"}  # n, label and frame: a constant, a string and a frame, previews


def _print_of(names: list[str], form: str) -> str:
    """One print statement printing ``names`` in the given form."""
    listed = ", ".join(names)
    if form == "args":
        return f"print({listed})"
    if form == "labelled":
        return "print(" + ", ".join(f"'{n}:', {n}" for n in names) + ")"
    if form == "sep":
        return f"print({listed}, sep=', ', end='\\n')"
    if form == "fstring":
        return 'print(f"' + " ".join(f"{n}={{{n}!r}}" for n in names) + '")'
    if form == "percent":
        return f"print('{' '.join(['%s'] * len(names))}' % ({listed},))"
    return f"print('{' '.join(['{}'] * len(names))}'.format({listed}))"


FORMS = st.sampled_from(["args", "labelled", "sep", "fstring", "percent", "format"])
PRINTS = st.lists(
    st.tuples(st.lists(st.sampled_from(sorted(COMPUTED | {"n", "label", "frame"})), min_size=1, max_size=4), FORMS),
    min_size=1,
    max_size=3,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prints=PRINTS, same_cell=st.booleans())
def test_a_printed_computed_name_is_a_result_once(
    plan_for: PlanFor, prints: list[tuple[list[str], str]], same_cell: bool
) -> None:
    """Each computed name printed (arguments, f-string fields, % and .format operands, several per print) is
    a result, once, in the order first printed; constants, strings and frames printed are not."""
    lines = [_print_of(names, form) for names, form in prints]
    cells = [PRINTED + "\n" + "\n".join(lines)] if same_cell else [PRINTED, *lines]
    expected = list(dict.fromkeys(n for names, _ in prints for n in names if n in COMPUTED))
    assert shown(plan_for([IMPORTS, SETUP, *cells])) == [(n, "print") for n in expected]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        # shown and printed: kept once, where it is shown
        (["acc = accuracy_score(y, pred)\nprint(acc)", "acc"], [("acc", "name")]),
        (["acc = accuracy_score(y, pred)\nprint('acc', acc)\ndisplay(acc)"], [("acc", "name")]),
        # bound again between two prints: two values, each kept
        (
            ["acc = accuracy_score(y, pred)\nprint(acc)", "acc = accuracy_score(y[:3], pred[:3])\nprint(acc)"],
            [("acc", "print"), ("acc", "print")],
        ),
        # a print to a file writes output; a print the notebook binds itself does its own work
        (["import sys\nacc = accuracy_score(y, pred)\nprint(acc, file=sys.stderr)"], []),
        (["from rich import print\nacc = accuracy_score(y, pred)\nprint(acc)\nn = 1"], []),
        # only top-level prints: one in a loop would log a value per iteration under one name
        (["acc = accuracy_score(y, pred)\nfor i in range(2):\n    print(acc)"], []),
    ],
)
def test_printed_and_shown_names_count_once(
    plan_for: PlanFor, cells: list[str], expected: list[tuple[str, str]]
) -> None:
    assert shown(plan_for([IMPORTS, SETUP, *cells])) == expected


def test_generated_code_logs_a_printed_result_after_its_log_line(
    tmp_path: Path, make_notebook: Callable[..., Path]
) -> None:
    printed = 'print(f"accuracy: {acc:.3f}", "F1 %.2f" % f1)'
    nb = make_notebook([IMPORTS, SETUP, "acc = accuracy_score(y, pred)\nf1 = f1_score(y, pred)", printed])
    files = api.generate(nb, Settings(record=False, out=tmp_path / "out")).tree.as_dict()
    steps = files["src/nb/steps.py"]
    logged = 'logger.info("%s %s", f"accuracy: {acc:.3f}", "F1 %.2f" % f1)\n    log_result("acc", acc)\n'
    assert logged + '    log_result("f1", f1)\n' in steps
    assert "write_metrics(config.output_dir, collected_results())" in files["src/nb/pipeline.py"]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        # a computed call, attribute or item printed is bound to a result's name, as shown.py names it
        (["print('accuracy:', accuracy_score(y, pred))"], [("accuracy", "print")]),
        (["print(f'{f1_score(y, pred):.2f} and %s' % clf.score(X, y))"], [("f1", "print"), ("accuracy", "print")]),
        (["print('{} {}'.format(clf.coef_, reg.score(X, y)))"], [("coef", "print"), ("r2", "print")]),
        ([f"{SEARCH}\nprint(search.best_params_)", "search.best_params_"], [("best_params", "bind")]),
        ([f"{SEARCH}\nprint(search.best_params_)\nprint(search.best_params_)"], [("best_params", "print")]),
        (
            [f"{SEARCH}\nprint(search.best_params_)\nsearch.fit(X[:4], y[:4])\nprint(search.best_params_)"],
            [("best_params", "print"), ("best_params_2", "print")],
        ),
        # a value formatted for printing is the name it formats; a size is no result
        (["acc = accuracy_score(y, pred)\nprint(round(acc, 3), str(acc))"], [("acc", "print")]),
        (["print('trees:', len(clf.coef_), X.shape, len(X))"], []),
    ],
)
def test_a_printed_computed_value_is_a_result(
    plan_for: PlanFor, cells: list[str], expected: list[tuple[str, str]]
) -> None:
    assert shown(plan_for([IMPORTS, SETUP, *cells])) == expected


def test_generated_code_binds_a_printed_value_and_prints_its_name(
    tmp_path: Path, make_notebook: Callable[..., Path]
) -> None:
    printed = "print('accuracy:', accuracy_score(y, pred), f'F1 {f1_score(y, pred):.2f}', X.shape)"
    nb = make_notebook([IMPORTS, SETUP, "acc = accuracy_score(y, pred)\nprint(acc)", printed])
    generated = api.generate(nb, Settings(record=False, out=tmp_path / "out"))
    steps = generated.tree.as_dict()["src/nb/steps.py"]
    kept = sorted(f.message.split(" is kept")[0] for f in generated.findings if f.code == "NBH607")
    assert kept == ["the printed name", "the printed value", "the printed value"]
    assert (
        "    # cell 4\n    accuracy = accuracy_score(y, pred)\n    f1 = f1_score(y, pred)\n"
        '    logger.info("%s %s %s %s", "accuracy:", accuracy, f"F1 {f1:.2f}", X.shape)\n'
        '    log_result("accuracy", accuracy)\n    log_result("f1", f1)\n'
    ) in steps


@pytest.mark.slow
def test_recorded_printed_results_are_pinned_and_saved(tmp_path: Path, make_notebook: Callable[..., Path]) -> None:
    """The values a print evaluates are recorded where it evaluates them: the generated tests compare them."""
    nb = make_notebook(
        [
            IMPORTS,
            "md:## Train",
            SETUP,
            "md:## Evaluate",
            "acc = accuracy_score(y, pred)\nprint(f'accuracy: {acc:.3f}')",
            "print('R2', reg.score(X, y), 'F1 %.2f' % f1_score(y, pred))",
        ]
    )
    out = tmp_path / "out"
    api.write(api.convert(nb, Settings(out=out)))
    recording = json.loads((out / "tests/data/recording.json").read_text())
    outputs = {e["name"]: e for e in recording["steps"]["evaluate"]["outputs"]}
    assert {"acc", "r2", "f1"} <= set(outputs)
    assert all(outputs[n]["kind"] == "value" for n in ("acc", "r2", "f1")), outputs
    env = dict(os.environ, PYTHONPATH=str(out / "src"))
    run = subprocess.run(
        [sys.executable, "-m", "nb", "--output-dir", str(tmp_path / "o")],
        cwd=out, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["acc"] == metrics["f1"] == 1.0 and 0 < metrics["r2"] < 1
    # scoring on fewer rows changes the printed R2: a generated test fails
    steps = out / "src/nb/steps.py"
    code = steps.read_text()
    assert "r2 = reg.score(X, y)\n" in code
    steps.write_text(code.replace("r2 = reg.score(X, y)\n", "r2 = reg.score(X[:5], y[:5])\n"))
    broken = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=out, env=env,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert broken.returncode == 1 and "r2" in broken.stdout, broken.stdout
