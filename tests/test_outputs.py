"""Files the notebook writes (a saved model, an exported table) are outputs: their Config field is relative to
``output_dir``, so running the package never writes into the data folder (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbharden import api
from nbharden.analyse import FullAnalysis
from nbharden.models import Plan
from nbharden.plan import make_plan
from nbharden.settings import Settings

IMPORTS = "import json, pickle\nimport joblib\nimport numpy as np\nimport pandas as pd\nimport torch"
SETUP = "df = pd.DataFrame({'a': [1.0, 2.0]})\nmodel = object()"
#: How notebooks save a model or a table, with the file's extension: {path} is the literal.
WRITERS = {
    "joblib.dump": ("joblib.dump(model, {path})", "joblib"),
    "pickle.dump": ("with open({path}, 'wb') as f:\n    pickle.dump(model, f)", "pkl"),
    "pickle.dump(open)": ("pickle.dump(model, open({path}, 'wb'))", "pickle"),
    "torch.save": ("torch.save(model, {path})", "pt"),
    "model.save": ("model.save({path})", "keras"),
    "to_csv": ("df.to_csv({path}, index=False)", "csv"),
    "np.save": ("np.save({path}, df.values)", "npy"),
    "json.dump": ("with open({path}, 'w') as f:\n    json.dump({{'a': 1}}, f)", "json"),
}
STEMS = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(lambda s: s not in {"df", "model"})


def _plan(make_notebook: Callable[..., Path], cells: list[str]) -> Plan:
    settings = Settings(record=False)
    analysis = api.analyze(make_notebook(cells), settings)
    assert isinstance(analysis, FullAnalysis)
    return make_plan(analysis, settings=settings)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writer=st.sampled_from(sorted(WRITERS)), stem=STEMS, folder=st.sampled_from(["", "models/"]))
def test_a_file_the_notebook_only_writes_is_an_output(
    make_notebook: Callable[..., Path], writer: str, stem: str, folder: str
) -> None:
    code, ext = WRITERS[writer]
    path = f"{folder}{stem}.{ext}"
    plan = _plan(make_notebook, [IMPORTS, SETUP, code.format(path=repr(path))])
    (field,) = [f for f in plan.config_fields if f.literal == path]
    assert field.output_file and not field.must_exist, field
    assert field.description.endswith("relative to output_dir"), field.description
    assert any(f.name == "output_dir" for f in plan.config_fields)


def test_a_file_read_again_or_read_first_stays_under_data_dir(make_notebook: Callable[..., Path]) -> None:
    plan = _plan(
        make_notebook,
        [
            IMPORTS,
            SETUP,
            "df.to_csv('clean.csv')\nagain = pd.read_csv('clean.csv')",
            "raw = pd.read_csv('raw.csv')\nraw.to_csv('raw.csv')",
            "joblib.dump(model, 'model.joblib')",
        ],
    )
    fields = {f.literal: f for f in plan.config_fields if f.literal}
    assert not fields["clean.csv"].output_file and not fields["raw.csv"].output_file
    assert fields["clean.csv"].description.endswith("relative to data_dir")
    assert fields["model.joblib"].output_file


def test_the_pipeline_passes_an_output_file_under_output_dir(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    nb = make_notebook([IMPORTS, SETUP, "joblib.dump(model, 'model.joblib')"])
    files = api.generate(nb, Settings(record=False, out=tmp_path / "out")).tree.as_dict()
    pipeline = files["src/nb/pipeline.py"]
    assert "model_path=output_file(config.output_dir, config.model_path)" in pipeline
    assert 'default=Path("model.joblib"),' in files["src/nb/config.py"]


@pytest.mark.slow
def test_running_the_package_writes_nothing_into_the_data_folder(
    make_notebook: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A relative --output-dir is relative to the folder the run starts in, for the saved model, the exported
    table and the figures alike; the data folder is left as it was."""
    nb = make_notebook(
        [
            "import joblib\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
            "from sklearn.linear_model import LinearRegression",
            "df = pd.read_csv('data.csv')\nmodel = LinearRegression().fit(df[['x']], df['y'])",
            "df.plot(x='x', y='y')\nplt.show()",
            "df.assign(pred=model.predict(df[['x']])).to_csv('exports/predictions.csv')\n"
            "joblib.dump(model, 'model.joblib')",
        ]
    )
    data = nb.parent
    (data / "data.csv").write_text("x,y\n1,2\n2,4\n3,6\n", encoding="utf-8")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    out = elsewhere / "pkg"
    api.write(api.convert(nb, Settings(record=False, verify=False, out=out)))
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    start = elsewhere / "start"
    start.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "nb", "--data-dir", str(data), "--output-dir", "results"],
        cwd=start,
        env=dict(os.environ, PYTHONPATH=str(out / "src"), MPLBACKEND="Agg"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    after = sorted(p.relative_to(data) for p in data.rglob("*"))
    assert after == before
    written = sorted(str(p.relative_to(start)) for p in start.rglob("*") if p.is_file())
    assert "results/model.joblib" in written and "results/exports/predictions.csv" in written, written
    assert any(w.endswith(".png") for w in written), written
