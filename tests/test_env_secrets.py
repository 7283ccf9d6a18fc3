"""Secrets the notebook reads from the environment by name become ``SecretStr`` Config fields (issue 10).

``os.environ["GITHUB_TOKEN"]``, ``os.environ.get(...)``, ``os.getenv(...)`` (through any import, after
``load_dotenv()`` or not) of a variable whose name says it is a credential: the generated Config has a
``SecretStr`` field that pydantic-settings fills from ``<PREFIX><FIELD>`` or from the variable the notebook
read; required when the notebook gave no default (or a default that is itself a secret, which is written
nowhere); the step gets ``config.<field>.get_secret_value()``. Other variables (``HOME``, ``DATA_DIR``) stay
environment reads.

The fast tests convert small notebooks for real (``api.generate``, recording off) and load the generated
``config.py`` to check which variables set each field; the slow one converts ``fixtures/secrets/env_reads.ipynb``
with recording and verification on (a real kernel) and runs the generated package with only the variable the
notebook read.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError

from nbharden import api
from nbharden.analyse import analyse
from nbharden.plan import make_plan
from nbharden.secret_shapes import is_secret_name
from nbharden.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "secrets"
KEY: dict[str, Any] = json.loads((FIXTURE / "env_reads.json").read_text(encoding="utf-8"))

#: (imports, the read with ``{v}`` for the variable's name, the notebook's default or None)
FORMS: list[tuple[str, str, str | None]] = [
    ("import os", "os.environ[{v!r}]", None),
    ("import os", "os.environ.get({v!r})", None),
    ("import os", "os.environ.get({v!r}, 'plain-default')", "plain-default"),
    ("import os", "os.getenv({v!r})", None),
    ("import os", "os.getenv({v!r}, None)", None),
    ("import os", "os.getenv({v!r}, default='plain-default')", "plain-default"),
    ("from os import getenv", "getenv({v!r})", None),
    ("from os import environ", "environ[{v!r}].strip()", None),
    ("import os as system", "system.environ.get({v!r}, '')", ""),
    ("import os\nfrom dotenv import load_dotenv\n\nload_dotenv()", "os.environ[{v!r}]", None),
    ("import os\nimport dotenv\n\ndotenv.load_dotenv('.env')", "os.getenv({v!r}, 'x')", "x"),
]


def _generate(path: Path) -> dict[str, str]:
    return api.generate(path, Settings(out=path.parent / "out", record=False)).tree.as_dict()


def _notebook(make_notebook: Callable[..., Path], imports: str, read: str) -> Path:
    return make_notebook(
        [imports, f"value = {read}\nlength = len(value or '')", "print(length)"], "envnb.ipynb"
    )


def _field_call(config: str, name: str) -> ast.Call | None:
    """The ``Field(...)`` of the Config field ``name`` whose annotation is ``SecretStr``, or None."""
    cls = next(
        n for n in ast.walk(ast.parse(config)) if isinstance(n, ast.ClassDef) and n.name == "Config"
    )
    for node in cls.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
        ):
            assert ast.unparse(node.annotation) == "SecretStr", ast.unparse(node)
            assert isinstance(node.value, ast.Call)
            return node.value
    return None


def _keywords(call: ast.Call) -> dict[str, str]:
    return {k.arg: ast.unparse(k.value) for k in call.keywords if k.arg}


@pytest.fixture
def load_config() -> Iterator[Callable[[str], ModuleType]]:
    """Import a generated ``config.py`` (it needs only pydantic) from its text, as a module of its own."""
    folder = tempfile.TemporaryDirectory()

    def load(text: str) -> ModuleType:
        path = Path(folder.name) / f"config_{len(list(Path(folder.name).iterdir()))}.py"
        path.write_text(text, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    yield load
    folder.cleanup()


@pytest.mark.parametrize(("imports", "read", "default"), FORMS)
def test_each_read_form_becomes_a_secret_field_the_variable_still_sets(
    make_notebook: Callable[..., Path],
    load_config: Callable[[str], ModuleType],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    imports: str,
    read: str,
    default: str | None,
) -> None:
    tree = _generate(_notebook(make_notebook, imports, read.format(v="GITHUB_TOKEN")))
    config, steps = tree["src/envnb/config.py"], tree["src/envnb/steps.py"]
    call = _field_call(config, "github_token")
    assert call is not None, config
    keywords = _keywords(call)
    assert keywords["validation_alias"] == "AliasChoices('ENVNB_GITHUB_TOKEN', 'GITHUB_TOKEN')"
    assert keywords.get("default") == (None if default is None else f"SecretStr({default!r})")
    # the step reads its parameter, which run() fills from the Config
    assert "GITHUB_TOKEN" not in steps and "github_token" in steps
    assert "github_token=config.github_token.get_secret_value()" in tree["src/envnb/pipeline.py"]
    for path, text in tree.items():
        if path.endswith(".py"):
            compile(text, path, "exec")
    # pydantic-settings: the notebook's variable, the prefixed one (which wins), or the default
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("GITHUB_TOKEN", "ENVNB_GITHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    module = load_config(config)
    if default is None:
        with pytest.raises(ValidationError, match="ENVNB_GITHUB_TOKEN"):
            module.Config()
    else:
        assert module.Config().github_token.get_secret_value() == default
    monkeypatch.setenv("GITHUB_TOKEN", "from-the-notebooks-variable")
    assert module.Config().github_token.get_secret_value() == "from-the-notebooks-variable"
    monkeypatch.setenv("ENVNB_GITHUB_TOKEN", "prefixed")
    assert module.Config().github_token.get_secret_value() == "prefixed"
    assert module.Config(github_token="given").github_token.get_secret_value() == "given"


@pytest.mark.parametrize(
    "variable", ["HOME", "DATA_DIR", "MODE", "TOKENIZER_NAME", "PASSWORD_HASH", "TOKEN_URL"]
)
def test_other_variables_stay_environment_reads(
    make_notebook: Callable[..., Path], variable: str
) -> None:
    tree = _generate(_notebook(make_notebook, "import os", f"os.environ.get({variable!r})"))
    assert "SecretStr = Field(" not in tree["src/envnb/config.py"]
    assert "AliasChoices" not in tree["src/envnb/config.py"]
    assert f"os.environ.get({variable!r})".replace("'", '"') in tree["src/envnb/steps.py"]


def test_a_secret_default_is_written_nowhere_and_the_field_is_required(
    make_notebook: Callable[..., Path],
) -> None:
    fake = "ghp_" + "Fk3e" * 9  # FAKE, GitHub-shaped
    path = _notebook(make_notebook, "import os", f"os.getenv('GITHUB_TOKEN', {fake!r})")
    generated = api.generate(path, Settings(out=path.parent / "out", record=False))
    tree = generated.tree.as_dict()
    assert not [p for p, text in tree.items() if fake in text]
    config = tree["src/envnb/config.py"]
    call = _field_call(config, "github_token")
    assert call is not None and "default" not in _keywords(call)
    assert "'GITHUB_TOKEN')" in _keywords(call)["validation_alias"]
    assert "GITHUB_TOKEN" not in tree["src/envnb/steps.py"]  # the step reads the field
    assert config.count("SecretStr = Field(") == 1  # the literal has no field of its own
    assert [f.code for f in generated.findings if f.code == "NBH201"] == ["NBH201"]


def test_a_field_never_takes_a_name_the_notebook_uses(make_notebook: Callable[..., Path]) -> None:
    """``github_token = os.environ["GITHUB_TOKEN"]``: the field is ``env_github_token``; a function that
    reads a secret stays in its step and reads the step's parameter."""
    path = make_notebook(
        [
            "import os",
            "github_token = os.environ['GITHUB_TOKEN']\n"
            "def fetch():\n    return os.getenv('SERVICE_TOKEN', '')\n",
            "print(len(github_token), len(fetch()))",
        ],
        "envnb.ipynb",
    )
    tree = _generate(path)
    config, steps = tree["src/envnb/config.py"], tree["src/envnb/steps.py"]
    assert _field_call(config, "env_github_token") is not None
    assert _field_call(config, "service_token") is not None
    assert "github_token = env_github_token" in steps
    assert "return service_token" in steps
    for path_, text in tree.items():
        if path_.endswith(".py"):
            compile(text, path_, "exec")


_WORDS = ["GITHUB", "DB", "STRIPE", "SERVICE", "OPENAI", "AWS", "MY", "CACHE", "USER", "APP"]
_HEADS = ["TOKEN", "PASSWORD", "API_KEY", "SECRET", "ACCESS_KEY", "PASS", "NAME", "DIR", "URL", "KEY"]
_TAILS = ["", "_PROD", "_HASH", "_V2", "_FILE"]


@hsettings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(_WORDS), min_size=0, max_size=2),
    st.sampled_from(_HEADS),
    st.sampled_from(_TAILS),
    st.sampled_from(FORMS),
)
def test_a_field_exactly_for_each_secret_named_read(
    words: list[str], head: str, tail: str, form: tuple[str, str, str | None]
) -> None:
    """Generated names and read forms: a field exactly when the project's classifier says the name is a
    credential, holding that variable, with the notebook's default."""
    variable = "_".join([*words, head]) + tail
    imports, read, default = form
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "nb.ipynb"
        import nbformat
        from nbformat.v4 import new_code_cell, new_notebook

        source = f"value = {read.format(v=variable)}\nprint(len(value or ''))"
        nbformat.write(new_notebook(cells=[new_code_cell(imports), new_code_cell(source)]), path)
        settings = Settings(out=Path(folder) / "out", record=False)
        plan = make_plan(analyse(api.load(path, settings), settings=settings), settings=settings)
    fields = [f for f in plan.config_fields if f.env_var]
    if not is_secret_name(variable):
        assert fields == []
        return
    assert [(f.env_var, f.annotation, f.secret) for f in fields] == [(variable, "SecretStr", True)]
    assert fields[0].default == ("" if default is None else f"SecretStr({default!r})")
    assert any(p.name == fields[0].name for s in plan.steps for p in s.inputs)


# --- with a real kernel: recorded, verified, and run with the notebook's own variable -----------------------------


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVR_", "ENV_READS_"))}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _leaks(data: bytes) -> list[str]:
    return [
        p["name"]
        for p in KEY["planted"]
        if p["value"].encode() in data or json.dumps(p["value"])[1:-1].encode() in data
    ]


@pytest.fixture(scope="module")
def env_converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("envreads")
    (work / "env_reads.ipynb").write_bytes((FIXTURE / "env_reads.ipynb").read_bytes())
    (work / ".env").write_bytes((FIXTURE / "env_reads.env").read_bytes())
    run = subprocess.run(
        [sys.executable, "-m", "nbharden", "convert", "env_reads.ipynb"],
        cwd=work,
        env=_env(KEY["environment"]),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return {"work": work, "out": work / "env_reads_prod", "convert": run}


def _run_package(out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from env_reads import run; print('digest=' + run().digest)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=out.parent,  # the notebook's folder, with its .env
        env=_env({**env, "PYTHONPATH": str(out / "src")}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_recorded_conversion_makes_fields_the_notebooks_variables_set(
    env_converted: dict[str, Any],
) -> None:
    convert, out = env_converted["convert"], env_converted["out"]
    assert convert.returncode == 0, convert.stdout[-3000:] + convert.stderr[-3000:]
    assert re.search(r"generated tests: [1-9]\d* passed", convert.stdout), convert.stdout[-2000:]
    assert _leaks((convert.stdout + convert.stderr).encode()) == []
    written = {
        str(p.relative_to(out)): _leaks(p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }
    assert {k: v for k, v in written.items() if v} == {}
    config = (out / "src/env_reads/config.py").read_text(encoding="utf-8")
    for field, variable in [
        ("envr_github_token", "ENVR_GITHUB_TOKEN"),
        ("envr_db_password", "ENVR_DB_PASSWORD"),
        ("envr_service_api_key", "ENVR_SERVICE_API_KEY"),
    ]:
        call = _field_call(config, field)
        assert call is not None, field
        prefixed = "ENV_READS_" + field.upper()
        assert _keywords(call)["validation_alias"] == f"AliasChoices({prefixed!r}, {variable!r})"
    assert _field_call(config, "envr_region") is None  # no secret: still read from the environment
    steps = (out / "src/env_reads/steps.py").read_text(encoding="utf-8")
    assert "token = envr_github_token" in steps and 'os.environ.get("ENVR_REGION", "north")' in steps

    # the package, run as the user ran the notebook: the variable it read, the .env next to it
    token, password = (p["value"] for p in KEY["planted"])
    expected = hashlib.sha256(f"{token}|{password}|{KEY['default']}".encode()).hexdigest()
    ran = _run_package(out, KEY["environment"])
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert f"digest={expected}" in ran.stdout
    assert _leaks((ran.stdout + ran.stderr).encode()) == []
    # without the token: refused, naming the setting, showing no secret
    refused = subprocess.run(
        [sys.executable, "-m", "env_reads"],
        cwd=out.parent,
        env=_env({"PYTHONPATH": str(out / "src")}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "ENV_READS_ENVR_GITHUB_TOKEN: Field required" in refused.stderr
    assert "Traceback" not in refused.stderr and _leaks(refused.stderr.encode()) == []


def test_logs_mask_a_secrets_value_but_not_the_notebooks_plain_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``hide_secrets`` (the generated support.py): a field left at the notebook's default ``x`` is no
    secret, and masking it would garble every log line holding an ``x``."""
    import logging

    from pydantic import Field, SecretStr
    from pydantic_settings import BaseSettings

    from nbharden.templates import secrets_support

    class Config(BaseSettings):
        api_token: SecretStr = Field(default=SecretStr("x"))
        github_token: SecretStr

    factory = logging.getLogRecordFactory()
    try:
        secrets_support.hide_secrets(Config(github_token=SecretStr("s3cr3t-Value-9")))
        with caplog.at_level(logging.INFO):
            logging.getLogger("envnb").info("x marks s3cr3t-Value-9")
    finally:
        logging.setLogRecordFactory(factory)
        secrets_support._plain_records.clear()
    assert [r.getMessage() for r in caplog.records] == ["x marks **********"]


@pytest.mark.parametrize(
    "setter",
    [
        "os.environ['GITHUB_TOKEN'] = 'set-by-the-notebook'",
        "%env GITHUB_TOKEN=set-by-the-notebook",
        "os.environ.setdefault('GITHUB_TOKEN', 'set-by-the-notebook')",
        "os.environ.update({'GITHUB_TOKEN': 'set-by-the-notebook'})",
        "os.environ.update(GITHUB_TOKEN='set-by-the-notebook')",
    ],
)
def test_a_variable_the_notebook_sets_itself_stays_an_environment_read(
    make_notebook: Callable[..., Path], setter: str
) -> None:
    """The read gets what the notebook set, not what the user sets: no field for it."""
    path = make_notebook(
        ["import os", setter, "value = os.environ.get('GITHUB_TOKEN')\nprint(len(value))"], "envnb.ipynb"
    )
    tree = _generate(path)
    assert "AliasChoices" not in tree["src/envnb/config.py"]
    assert 'os.environ.get("GITHUB_TOKEN")' in tree["src/envnb/steps.py"]
