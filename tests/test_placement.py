"""Statements in their right place: process-wide settings run once at the pipeline's start (never inside a step),
and a data contract checks a frame right after the last statement that binds or changes it."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from pathlib import Path

from nbharden import api
from nbharden.analyse import FullAnalysis
from nbharden.emit import emit
from nbharden.models import Contract
from nbharden.plan import make_plan
from nbharden.settings import Settings

SETTINGS_CELL = (
    "import warnings\nimport numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
    "warnings.filterwarnings('ignore')\n"
    "pd.set_option('display.max_columns', None)\n"
    "pd.options.display.float_format = '{:.2f}'.format\n"
    "pd.set_option('mode.copy_on_write', True)\n"  # changes results: stays where it is
    "np.set_printoptions(precision=3)\n"
    "plt.rcParams['figure.figsize'] = (8, 4)\n"
    "plt.style.use('ggplot')"
)
SETTING_CALLS = {"filterwarnings", "set_printoptions", "use"}


def _functions(source: str) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}


def test_process_wide_settings_move_to_the_pipeline_start(
    tmp_path: Path, make_notebook: Callable[..., Path]
) -> None:
    nb = make_notebook([SETTINGS_CELL, "df = pd.DataFrame({'a': [1.0, 2.0]})\ntotal = float(df['a'].sum())"])
    generated = api.generate(nb, Settings(record=False, out=tmp_path / "out"))
    files = generated.tree.as_dict()
    functions = _functions(files["src/nb/steps.py"])
    settings = ast.unparse(functions.pop("apply_settings"))
    for line in ("warnings.filterwarnings('ignore')", "pd.set_option('display.max_columns', None)",
                 "np.set_printoptions(precision=3)", "plt.rcParams['figure.figsize'] = (8, 4)",
                 "plt.style.use('ggplot')", "pd.options.display.float_format = '{:.2f}'.format"):  # fmt: skip
        assert line in settings
    steps = "\n".join(ast.unparse(f) for f in functions.values())
    assert not any(
        isinstance(n, ast.Attribute) and n.attr in SETTING_CALLS | {"rcParams", "options"}
        for f in functions.values()
        for n in ast.walk(f)
    ), steps
    assert "pd.set_option('mode.copy_on_write', True)" in steps  # a setting that changes results stays
    run = files["src/nb/pipeline.py"]
    assert run.index("steps.apply_settings()") < run.index("with working_directory")
    moved = [f for f in generated.findings if f.code == "NBH609"]
    assert [f.span.line for f in moved if f.span] == [5, 6, 7, 9, 10, 11]


def test_a_setting_that_reads_notebook_state_stays(tmp_path: Path, make_notebook: Callable[..., Path]) -> None:
    nb = make_notebook(["import warnings\nlevel = 'ignore'\nwarnings.filterwarnings(level)\nx = [level]"])
    files = api.generate(nb, Settings(record=False, out=tmp_path / "out")).tree.as_dict()
    assert "apply_settings" not in files["src/nb/steps.py"]
    assert "warnings.filterwarnings(level)" in files["src/nb/steps.py"]


def test_settings_after_a_read_of_them_stay_in_their_step(
    tmp_path: Path, make_notebook: Callable[..., Path]
) -> None:
    """pydata's chapters save a display option, then change it: moved to the start, the change would come
    before the read (the saved value was 20, not the default, and the step's test failed)."""
    nb = make_notebook(
        [
            "import warnings\nimport pandas as pd\nwarnings.filterwarnings('ignore')\n"
            "PREVIOUS_MAX_ROWS = pd.options.display.max_rows\npd.options.display.max_rows = 20",
            "n = PREVIOUS_MAX_ROWS + 1",
        ]
    )
    generated = api.generate(nb, Settings(record=False, out=tmp_path / "out"))
    functions = _functions(generated.tree.as_dict()["src/nb/steps.py"])
    assert "warnings.filterwarnings('ignore')" in ast.unparse(functions.pop("apply_settings"))
    steps = "\n".join(ast.unparse(f) for f in functions.values())
    assert steps.index("PREVIOUS_MAX_ROWS = pd.options.display.max_rows") < steps.index(
        "pd.options.display.max_rows = 20"
    )
    assert [f.span.line for f in generated.findings if f.code == "NBH609" and f.span] == [3]


def test_a_read_frame_is_checked_right_after_its_last_change_not_at_the_step_end(
    tmp_path: Path, make_notebook: Callable[..., Path]
) -> None:
    nb = make_notebook(
        [
            "import pandas as pd\nfrom sklearn.linear_model import LinearRegression",
            "md:## Everything",
            "df = pd.read_csv('data.csv')\ndf = df.dropna()\ndf['b'] = df['a'] * 2\n"
            "model = LinearRegression()\nmodel.fit(df[['a']], df['b'])\n"
            "other = LinearRegression()\nother.fit(df[['b']], df['a'])",
        ]
    )
    settings = Settings(record=False, out=tmp_path / "out")
    analysis = api.analyze(nb, settings)
    assert isinstance(analysis, FullAnalysis)
    plan = make_plan(analysis, settings=settings)
    (step,) = plan.steps
    contract = Contract("df", (("'a'", "float64"), ("'b'", "float64")), at="exit")
    plan = dataclasses.replace(plan, steps=(dataclasses.replace(step, contracts=(contract,)),))
    tree, _ = emit(analysis, plan, out=tmp_path / "out", settings=settings)
    body = [ast.unparse(s) for s in _functions(tree.as_dict()["src/nb/steps.py"])["everything"].body]
    check = next(i for i, s in enumerate(body) if s.startswith("require_columns(df"))
    assert body[check - 1] == "df['b'] = df['a'] * 2"
    assert body[check + 1] == "model = LinearRegression()"
