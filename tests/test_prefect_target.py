"""``--target prefect`` (issue 18): the plan as a Prefect 3 flow next to pipeline.py.

The fast tests check the emitted flow module and the ordering of steps without Prefect. The slow ones
run the generated flows in this process under Prefect's test harness (a temporary local server whose
database lives in a temporary PREFECT_HOME: no Prefect Cloud, nothing written to ~/.prefect); they
skip, naming the extra, where prefect is not installed (``pip install -e '.[orchestrators]'``).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_golden import SECRET_ENV, SERVED, _serve, copy_fixture, settings_for

from nbharden import api
from nbharden.errors import UsageError
from nbharden.models import Effect, Param, Plan, Step
from nbharden.plan import make_plan
from nbharden.settings import Settings, load_settings
from nbharden.targets.prefect import waits

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "fixtures" / "golden"
FIXTURES = ROOT / "fixtures" / "prefect"
DEMO = ROOT / "notebooks" / "churn_analysis.ipynb"
PYTHON = sys.executable


def _steps(notebook: Path) -> int:
    from nbharden.analyse import analyse

    settings = Settings(record=False)
    return len(
        make_plan(analyse(api.load(notebook, settings), settings=settings), settings=settings).steps
    )


#: every golden with more than one step: there is something to orchestrate
MULTI_STEP = sorted(p.stem for p in GOLDEN.glob("*.ipynb") if _steps(p) > 1)


def _convert(notebook: Path, out: Path, **changes: Any) -> Path:
    """Convert ``notebook`` with --target prefect (no recording) into ``out``; return ``out``."""
    settings = Settings(out=out, record=False, target="prefect").replace(**changes)
    api.write(api.convert(notebook, settings), settings)
    return out


# --- without Prefect ----------------------------------------------------------------------------


def test_flow_module_has_a_task_per_step_and_submits_independent_steps_at_once(
    tmp_path: Path,
) -> None:
    out = _convert(copy_fixture("plotting", tmp_path / "nb"), tmp_path / "out")
    flow = (out / "src" / "plotting" / "flow.py").read_text()
    module = cst.parse_module(flow)
    task = 'plot_squares_task = task(\n    name="plot_squares", cache_policy=NO_CACHE, persist_result=False\n)'
    assert task + '(saving_figures(steps.plot_squares, show_figures, "plot_squares"))' in flow
    # plot_squares and prepare_peak both take values of prepare_xs (one of its two: an Output) and
    # nothing of each other: neither waits for the other
    assert (
        "plot_squares_task.with_options(**options).submit(\n"
        "            xs=Output(prepare_xs_run, 0), ys=Output(prepare_xs_run, 1)\n        )" in flow
    )
    assert "wait_for" not in flow
    assert module.code == flow
    assert 'prefect = [\n    "prefect>=3,<4",\n]' in (out / "pyproject.toml").read_text()
    readme = (out / "README.md").read_text()
    assert "python -m plotting --engine prefect" in readme and "PLOTTING_TASK_RUNNER=dask" in readme
    assert (out / "tests" / "test_flow.py").is_file()
    main = (out / "src" / "plotting" / "__main__.py").read_text()
    assert "if engine is Engine.prefect:" in main


def _step_calls(module: cst.Module, suffix: str) -> dict[str, dict[str, str]]:
    """Step name -> keyword -> argument code, for each call ``<x>.<step>(...)`` in pipeline.py
    (``suffix`` "") or ``<step>_task.with_options(...).submit(...)`` in flow.py ("_task")."""
    calls: dict[str, dict[str, str]] = {}

    class Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if not isinstance(func, cst.Attribute):
                return
            if suffix:
                inner = func.value
                if func.attr.value != "submit" or not isinstance(inner, cst.Call):
                    return
                options = inner.func
                if not (isinstance(options, cst.Attribute) and isinstance(options.value, cst.Name)):
                    return
                name = options.value.value.removesuffix(suffix)
            elif isinstance(func.value, cst.Name) and func.value.value == "steps":
                name = func.attr.value
            else:
                return
            calls[name] = {
                a.keyword.value: module.code_for_node(a.value) for a in node.args if a.keyword
            }

    module.visit(Calls())
    return calls


@pytest.mark.parametrize("notebook", ["secrets", "churn_analysis", "titanic_logreg"])
def test_the_flow_passes_each_step_the_config_values_run_passes(
    notebook: str, tmp_path: Path
) -> None:
    """A secret's value, a file the notebook writes under output_dir (the flow passed the bare
    path: the model was written where the flow ran, not under output_dir)."""
    if notebook == "churn_analysis":
        source = DEMO
    elif notebook == "titanic_logreg":
        source = ROOT / "fixtures" / "ml" / notebook / f"{notebook}.ipynb"
    else:
        source = copy_fixture(notebook, tmp_path / "nb")
    out = _convert(source, tmp_path / "out")
    package = next(p.name for p in (out / "src").iterdir() if (p / "flow.py").is_file())
    pipeline = _step_calls(cst.parse_module((out / "src" / package / "pipeline.py").read_text()), "")
    flow = _step_calls(cst.parse_module((out / "src" / package / "flow.py").read_text()), "_task")
    assert pipeline and sorted(flow) == sorted(pipeline)
    from_config = {
        (step, key): code
        for step, args in pipeline.items()
        for key, code in args.items()
        if "config." in code
    }
    assert from_config
    assert {k: flow[k[0]].get(k[1]) for k in from_config} == from_config
    if notebook == "titanic_logreg":
        assert any(code.startswith("output_file(") for code in from_config.values())


def test_the_default_target_adds_nothing(tmp_path: Path) -> None:
    notebook = copy_fixture("plotting", tmp_path / "nb")
    files = {
        c.path for c in api.convert(notebook, Settings(out=tmp_path / "out", record=False)).changes
    }
    assert (
        not {"src/plotting/flow.py", "src/plotting/orchestration.py", "tests/test_flow.py"} & files
    )


def test_nbharden_imports_nothing_from_prefect(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom nbharden import api\nfrom nbharden.settings import Settings\n"
        f"api.convert(Path({str(DEMO)!r}), Settings(out=Path({str(tmp_path / 'out')!r}), record=False, "
        "target='prefect'))\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('prefect', 'prefect_dask')], 'imported'\n"
    )
    subprocess.run([PYTHON, "-c", code], check=True, timeout=300)


def test_target_comes_from_pyproject_and_is_checked(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.nbharden]\ntarget = "prefect"\n')
    assert load_settings(tmp_path).target == "prefect"
    assert load_settings(tmp_path, target="pipeline").target == "pipeline"
    (tmp_path / "pyproject.toml").write_text('[tool.nbharden]\ntarget = "airflow"\n')
    with pytest.raises(UsageError, match="unknown target 'airflow'; known: pipeline, prefect"):
        load_settings(tmp_path)


def test_cli_refuses_an_unknown_target(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            PYTHON,
            "-m",
            "nbharden",
            "convert",
            str(DEMO),
            "--target",
            "airflow",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "airflow" in proc.stderr


_EFFECTS = st.sampled_from(
    [
        Effect.RANDOM,
        Effect.PLOT,
        Effect.SHELL,
        Effect.FILE_READ,
        Effect.FILE_WRITE,
        Effect.PRINT,
        Effect.NETWORK,
    ]
)


@st.composite
def _plans(draw: st.DrawFn) -> tuple[Plan, dict[str, frozenset[Effect]]]:
    """Plans of up to 7 steps: each takes some values made by earlier steps (the latest binding of a
    name), may change some of them in place, and has random effects."""
    steps: list[Step] = []
    made: dict[str, str] = {}  # value name -> the step that made it last
    effects: dict[str, frozenset[Effect]] = {}
    for i in range(draw(st.integers(1, 7))):
        name = f"s{i}"
        takes = draw(st.lists(st.sampled_from(sorted(made)), unique=True)) if made else []
        changed = tuple(draw(st.lists(st.sampled_from(takes), unique=True))) if takes else ()
        outputs = [
            f"v{i}",
            *changed,
        ]  # a value changed in place is the step's output (the planner's rule)
        steps.append(
            Step(
                name,
                name,
                (i,),
                tuple(Param(n, None, made[n]) for n in takes),
                tuple(Param(n, None, name) for n in outputs),
                mutated=changed,
            )
        )
        made.update({n: name for n in outputs})
        effects[name] = frozenset(draw(st.sets(_EFFECTS, max_size=3)))
    return Plan("p", tuple(steps), (), (), (), (), False), effects


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo += sorted(edges.get(node, ()))
    return False


@given(_plans())
@settings(max_examples=int(os.environ.get("NBHARDEN_FUZZ_EXAMPLES", "200")), deadline=None)
def test_steps_that_must_keep_their_order_do_and_the_others_do_not_wait(
    case: tuple[Plan, dict[str, frozenset[Effect]]],
) -> None:
    """In the flow's graph (values taken and waits), a step comes after every earlier step that reads a
    value it changes in place or that shares process-wide state with it; it waits for nothing else.
    """
    plan, effects = case
    after = waits(plan, effects)
    edges: dict[str, set[str]] = {s.name: set() for s in plan.steps}  # earlier -> later
    for step in plan.steps:
        for p in step.inputs:
            edges[p.source].add(step.name)
        for earlier in after[step.name]:
            edges[earlier].add(step.name)
    shared = {Effect.RANDOM, Effect.PLOT, Effect.FILE_WRITE}
    stateful = shared | {Effect.SHELL, Effect.FILE_READ}
    for j, step in enumerate(plan.steps):
        for earlier in plan.steps[:j]:
            a, b = effects[earlier.name], effects[step.name]
            must = (
                bool(a & b & shared)
                or (Effect.SHELL in a and bool(b & stateful))
                or (Effect.SHELL in b and bool(a & stateful))
                or (Effect.FILE_WRITE in a and Effect.FILE_READ in b)
                or (Effect.FILE_READ in a and Effect.FILE_WRITE in b)
                or any(
                    p.name in step.mutated and Param(p.name, None, p.source) in step.inputs
                    for p in earlier.inputs
                )
            )
            if must:
                assert _reaches(edges, earlier.name, step.name), (earlier.name, step.name)
            elif earlier.name in after[step.name]:
                raise AssertionError(f"{step.name} waits for {earlier.name} for no reason")


# --- with Prefect -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A temporary Prefect API (Prefect's test harness) with PREFECT_HOME in a temporary folder; yields
    a sync client of it."""
    pytest.importorskip(
        "prefect", reason="prefect is not installed: pip install -e '.[orchestrators]'"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
        patch.delenv("PREFECT_API_URL", raising=False)
        patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        patch.setenv("MPLBACKEND", "Agg")
        from prefect.client.orchestration import get_client
        from prefect.testing.utilities import prefect_test_harness

        with (
            prefect_test_harness(server_startup_timeout=600),
            get_client(sync_client=True) as client,
        ):
            yield client


def _load(out: Path, package: str) -> tuple[Any, Any, Any]:
    """(config module, pipeline module, flow module) of the package generated into ``out``."""
    for folder in (out / "src", out / "tests"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    return tuple(importlib.import_module(f"{package}.{m}") for m in ("config", "pipeline", "flow"))  # type: ignore[return-value]


def _flow_of(flow_module: Any) -> Any:
    return getattr(flow_module, f"{flow_module.__name__.split('.')[0]}_flow")


def _serve_when_free(port: int) -> Any:
    """The golden's HTTP server on its fixed port, which test_golden may be using right now (or another
    checkout's suite on this machine): wait for it, then skip."""
    for _ in range(60):
        try:
            return _serve(GOLDEN / "data" / "http", port)
        except OSError:
            time.sleep(1)
    pytest.skip(f"port {port}, where the notebook reads from, stayed in use for 60 s")


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "returned", call()
    except (
        Exception
    ) as exc:  # the pipeline's own failure (no server to read from...): the flow's must match
        return "raised", type(exc)


@pytest.mark.slow
@pytest.mark.parametrize("stem", [*MULTI_STEP, "churn_analysis"])
def test_flow_returns_what_the_pipeline_returns(
    stem: str, prefect_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each golden with more than one step, and the demo: the flow, run by Prefect in this process, ends
    like ``pipeline.run`` with the same Config (same values, or the same exception)."""
    if stem == "churn_analysis":
        shutil.copytree(DEMO.parent, tmp_path / "nb")
        notebook = tmp_path / "nb" / DEMO.name
    else:
        notebook = copy_fixture(stem, tmp_path / "nb")
    if stem in SERVED:
        server = _serve_when_free(SERVED[stem])
    for key, value in SECRET_ENV.get(stem, {}).items():
        monkeypatch.setenv(key, value)
    out = _convert(notebook, tmp_path / "out", unsafe_fixes=settings_for(notebook).unsafe_fixes)
    package = api.convert(notebook, Settings(out=out, record=False)).plan.package  # type: ignore[union-attr]
    config_module, pipeline, flow_module = _load(out, package)
    fields = config_module.Config.model_fields
    config = config_module.Config(
        **({"output_dir": tmp_path / "figures"} if "output_dir" in fields else {})
    )
    try:
        expected = _outcome(lambda: pipeline.run(config))
        parameters = {n: getattr(config, n) for n in flow_module.PARAMETERS if hasattr(config, n)}
        actual = _outcome(lambda: _flow_of(flow_module)(**parameters))
    finally:
        if stem in SERVED:
            server.shutdown()
            server.server_close()
    assert actual[0] == expected[0], (actual, expected)
    if expected[0] == "raised":
        assert actual[1] is expected[1]
        return
    from _compare import Uncomparable, assert_same
    from test_flow import values_of  # the generated test's own helper

    values, wanted = values_of(actual[1]), values_of(expected[1])
    assert sorted(values) == sorted(wanted)
    for name, value in wanted.items():
        try:
            assert_same(values[name], value, f"{stem}: {name}")
        except Uncomparable:  # a figure: no value equality
            assert type(values[name]) is type(value), name


def _task_runs(client: Any, flow_run_id: Any, count: int) -> dict[str, Any]:
    """The flow run's ``count`` task runs by task name, once the API has all of them in a final state
    (task runs report their states in the background: the API may lag the flow's return by a moment).
    """
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 120
    while True:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        if len(final) == count or time.monotonic() > deadline:
            return {run.name.rsplit("-", 1)[0]: run for run in runs}
        time.sleep(0.5)


@pytest.mark.slow
def test_a_step_that_fails_twice_is_retried_by_prefect(prefect_api: Any, tmp_path: Path) -> None:
    """The step raises on its first two attempts (it counts them in a file); with task_retries=2 Prefect
    runs it a third time and the flow completes; with task_retries=1 the flow fails with its error.
    """
    out = _convert(FIXTURES / "flaky.ipynb", tmp_path / "out")
    _, _, flow_module = _load(out, "flaky")
    flow = _flow_of(flow_module)
    (tmp_path / "ok").mkdir()
    state = flow(
        data_dir=tmp_path / "ok",
        attempts_file=str(tmp_path / "ok" / "attempts.txt"),
        fail_times=2,
        task_retries=2,
        task_retry_delay=0,
        return_state=True,
    )
    assert state.is_completed()
    assert vars(state.result()) == {"summary": {"total": 6, "attempts": 3}}  # the Results dataclass
    runs = _task_runs(prefect_api, state.state_details.flow_run_id, 3)
    assert runs["flaky"].run_count == 3 and runs["flaky"].state.is_completed()
    assert runs["load"].run_count == 1 and runs["report"].run_count == 1

    (tmp_path / "fails").mkdir()
    state = flow(
        data_dir=tmp_path / "fails",
        attempts_file=str(tmp_path / "fails" / "attempts.txt"),
        fail_times=2,
        task_retries=1,
        task_retry_delay=0,
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(RuntimeError, match="attempt 2 fails on purpose"):
        state.result()
    runs = _task_runs(prefect_api, state.state_details.flow_run_id, 2)
    assert runs["flaky"].run_count == 2 and runs["flaky"].state.is_failed()
    assert not runs["report"].state.is_completed()  # it never ran: its input failed


@pytest.mark.slow
def test_independent_steps_run_at_the_same_time(prefect_api: Any, tmp_path: Path) -> None:
    """left and right take nothing from each other: both start before either finishes (the task runs'
    times, as the Prefect API recorded them); join starts after both."""
    out = _convert(FIXTURES / "parallel.ipynb", tmp_path / "out")
    _, _, flow_module = _load(out, "parallel")
    state = _flow_of(flow_module)(seconds=2.0, return_state=True)
    assert vars(state.result()) == {"both": 3}  # the Results dataclass
    runs = _task_runs(prefect_api, state.state_details.flow_run_id, 3)
    left, right, join = runs["left"], runs["right"], runs["join"]
    assert left.start_time < right.end_time and right.start_time < left.end_time
    assert join.start_time >= max(left.end_time, right.end_time)
    assert {r.id for r in join.task_inputs["left"]} == {left.id}


@pytest.mark.slow
def test_a_secret_comes_from_a_prefect_secret_block(
    prefect_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret the environment does not set is read from the Secret block <package>-<field>; one it
    sets, or ``.env`` sets, wins over the block (the block is Config's last source: it was passed
    as an argument to Config, which beat ``.env``)."""
    from prefect.blocks.system import Secret

    notebook = copy_fixture("secrets", tmp_path / "nb")
    out = _convert(notebook, tmp_path / "out")
    _, _, flow_module = _load(out, "secrets_pipeline")
    flow = _flow_of(flow_module)
    Secret(value="from-the-block").save("secrets-pipeline-api-key", overwrite=True)
    monkeypatch.setenv("SECRETS_PIPELINE_DB_URL", "postgresql://user:placeholder@db.invalid/sales")
    monkeypatch.delenv("SECRETS_PIPELINE_API_KEY", raising=False)
    assert flow().headers == {"Authorization": "Bearer from-the-block"}
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("SECRETS_PIPELINE_API_KEY=from-dotenv\n")
    assert flow().headers == {"Authorization": "Bearer from-dotenv"}
    monkeypatch.setenv("SECRETS_PIPELINE_API_KEY", "from-the-environment")
    assert flow().headers == {"Authorization": "Bearer from-the-environment"}


@pytest.mark.slow
def test_python_m_package_engine_prefect_runs_the_demo_as_a_flow(tmp_path: Path) -> None:
    """``python -m churn_analysis --engine prefect``: Prefect's temporary local server, the flow run's
    state and the results printed; exit 0."""
    pytest.importorskip(
        "prefect", reason="prefect is not installed: pip install -e '.[orchestrators]'"
    )
    shutil.copytree(DEMO.parent, tmp_path / "nb")
    out = _convert(tmp_path / "nb" / DEMO.name, tmp_path / "out")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONPATH=str(out / "src"),
        MPLBACKEND="Agg",
        CHURN_ANALYSIS_OUTPUT_DIR=str(tmp_path / "figures"),
    )
    proc = subprocess.run(
        [PYTHON, "-m", "churn_analysis", "--engine", "prefect", "--n-estimators", "20"],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("flow run ") and lines[0].endswith(
        ": COMPLETED (Completed)"
    ), proc.stdout
    assert any(line.startswith("  acc = 0.") for line in lines), proc.stdout
    assert any(line.startswith("  model = RandomForestClassifier") for line in lines), proc.stdout
    assert (
        tmp_path / "prefect-home"
    ).is_dir()  # Prefect's files went to PREFECT_HOME, not ~/.prefect


@pytest.mark.slow
def test_a_recorded_conversion_gains_a_flow_test_that_skips_without_prefect(tmp_path: Path) -> None:
    """The characterization tests of a recorded conversion gain tests/test_flow.py: the flow, run by
    Prefect with the recorded parameters, ends with the notebook's values (it passes); where prefect
    cannot be imported it skips, saying how to install it."""
    pytest.importorskip(
        "prefect", reason="prefect is not installed: pip install -e '.[orchestrators]'"
    )
    shutil.copy2(FIXTURES / "parallel.ipynb", tmp_path / "parallel.ipynb")
    settings = Settings(out=tmp_path / "out", target="prefect")
    api.write(api.convert(tmp_path / "parallel.ipynb", settings), settings)
    out = tmp_path / "out"
    assert (
        "check_results(parallel_flow(**parameters), config)"
        in (out / "tests" / "test_flow.py").read_text()
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PYTHONPATH=str(out / "src"),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        MPLBACKEND="Agg",
    )
    command = [PYTHON, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_flow.py"]
    proc = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:]
    # an interpreter without prefect: a package of that name that cannot be imported shadows it
    (tmp_path / "without" / "prefect").mkdir(parents=True)
    (tmp_path / "without" / "prefect" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'prefect'\", name='prefect')\n"
    )
    env["PYTHONPATH"] = f"{tmp_path / 'without'}{os.pathsep}{out / 'src'}"
    proc = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True, timeout=900)
    # 5: pytest collected nothing, the module itself being skipped
    assert proc.returncode == 5 and "1 skipped" in proc.stdout, proc.stdout[-3000:]
    assert "prefect is not installed: pip install '.[prefect]'" in proc.stdout


@pytest.mark.slow
def test_the_dask_task_runner_is_a_setting(tmp_path: Path) -> None:
    """``<PKG>_TASK_RUNNER=dask``: the same package runs its flow with prefect-dask's DaskTaskRunner on
    a new local Dask cluster (worker processes), no code changed."""
    pytest.importorskip(
        "prefect_dask", reason="prefect-dask is not installed: pip install -e '.[orchestrators]'"
    )
    out = _convert(FIXTURES / "parallel.ipynb", tmp_path / "out")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONPATH=str(out / "src"),
        PARALLEL_TASK_RUNNER="dask",
    )
    proc = subprocess.run(
        [PYTHON, "-m", "parallel", "--engine", "prefect", "--seconds", "1"],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[1:] == ["  both = 3"], proc.stdout
    assert "Creating a new Dask cluster with `distributed.deploy.local.LocalCluster`" in proc.stderr
