"""Hard-coded secrets (NBH201): found per cell, moved to SecretStr Config fields, never written or printed.

The end-to-end tests convert ``fixtures/secrets/planted.ipynb`` (42 FAKE secrets planted the way notebooks
leak them, and decoys that are not secrets; ``planted.json`` is the answer key, written by
``make_planted.py``) with the real command line in subprocesses, recording ON (a real kernel runs the
notebook twice), and check that:

- NBH201 reports at least 95% of the planted secrets at the right cell and line, and no decoy;
- no planted value appears in any byte of any file written (code, recordings - base64 pickles decoded -
  generated tests, manifest), nor in the output of ``convert``, ``convert --diff``, ``convert --format
  json``, ``analyze`` (text, JSON, GitHub), nor in the log of the generated pipeline run with the real values
  in its environment;
- the generated package imports without any secret set, refuses to run without them, and its generated tests
  pass (they set placeholders, never the real values).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import libcst as cst
import nbformat
import pytest

from nbharden import api
from nbharden.analyse import analyse
from nbharden.plan import make_plan, secret_fields
from nbharden.secrets import (
    SecretRewriter,
    is_secret_name,
    plausible_secret,
    redact,
    scan,
    secret_hits,
)
from nbharden.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "secrets"
NOTEBOOK = FIXTURE / "planted.ipynb"
KEY: dict[str, Any] = json.loads((FIXTURE / "planted.json").read_text(encoding="utf-8"))
PLANTED: list[dict[str, Any]] = KEY["planted"]
DECOYS: list[dict[str, Any]] = KEY["decoys"]
FINDING = re.compile(
    r"^(?P<path>.+?):cell (?P<cell>\d+):(?P<line>\d+):(?P<col>\d+): (?P<code>NBH\d{3}) "
)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    # no secret of the fixture's package may come from the caller's environment
    env = {k: v for k, v in env.items() if not k.startswith("PLANTED_")}
    env.update(extra or {})
    return env


def _nbharden(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbharden", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _forms(value: str) -> list[bytes]:
    """The ways a value can sit in a file: as is, and JSON-escaped (a PEM block's newlines)."""
    return sorted({value.encode(), json.dumps(value)[1:-1].encode()})


def leaks(data: bytes, name: str = "") -> list[str]:
    """The planted secrets found in ``data`` (and, for base64 files, in the decoded bytes)."""
    blobs = [data]
    if name.endswith(".b64"):
        blobs.append(base64.b64decode(data))
    return [
        p["name"]
        for p in PLANTED
        if any(form in blob for form in _forms(p["value"]) for blob in blobs)
    ]


def leaks_in_tree(root: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            hits = leaks(path.read_bytes(), path.name)
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


def recall_and_precision(findings: list[tuple[int, int]]) -> tuple[float, float, int, list[Any]]:
    """Recall over the planted secrets, precision over every NBH201 reported, decoys flagged, misses.

    Matched by (cell, line) with multiplicity: two secrets on one line need two findings there.
    """
    expected = Counter((p["cell"], p["line"]) for p in PLANTED)
    got = Counter(findings)
    hit = sum(min(n, got[k]) for k, n in expected.items())
    missed = sorted((expected - got).elements())
    decoy_lines = {(d["cell"], d["line"]) for d in DECOYS}
    decoys_flagged = sum(n for k, n in got.items() if k in decoy_lines)
    precision = hit / sum(got.values()) if got else 0.0
    return hit / len(PLANTED), precision, decoys_flagged, missed


# --- the fixture itself -------------------------------------------------------------------------------------------


def test_fixture_plants_enough_varied_secrets() -> None:
    assert len(PLANTED) >= 30 and len(DECOYS) >= 10
    sources = {i: c.source for i, c in enumerate(nbformat.read(str(NOTEBOOK), as_version=4).cells, 1)}
    for p in PLANTED:  # really in the notebook, in that cell, on that line
        source = sources[p["cell"]]
        assert source[: source.index(p["value"])].count("\n") + 1 == p["line"]
    kinds = " ".join(p["value"][:8] for p in PLANTED)
    for prefix in (
        "AKIA",
        "ghp_",
        "xoxb-",
        "sk_live_",
        "AIza",
        "eyJ",
        "sk-proj-",
        "-----BEG",
        "hf_",
        "SG.",
    ):
        assert prefix in kinds, prefix


# --- detection, per value and per cell ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        (None, "AKIA" + "Q3ZT7XW2MNB5RK4D", "AKIAQ3ZT7XW2MNB5RK4D"),
        (
            None,
            "token ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
            "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        ),
        (None, "postgresql://ana:Tr0ub4dor&3@db:5432/sales", "Tr0ub4dor&3"),
        (None, "Server=x;Uid=sa;Pwd=S3cr3t!Pass;", "S3cr3t!Pass"),
        (None, "https://api.test/v1?q=x&api_key=9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706"),
        (None, "Bearer 4fJ9kQ2mZx8pL0vR7tW3yB6nC1dE5gH2", "4fJ9kQ2mZx8pL0vR7tW3yB6nC1dE5gH2"),
        ("db_password", "hunter22", "hunter22"),
        ("X-Api-Key", "k3y-4bc-9zz-77Q", "k3y-4bc-9zz-77Q"),
        ("OPENAI_API_KEY", "sk-abcdefghijklmnopqrstuvwx123", "sk-abcdefghijklmnopqrstuvwx123"),
    ],
)
def test_secret_found_and_only_its_part(name: str | None, value: str, secret: str) -> None:
    hits = secret_hits(name, value)
    assert [value[h.start : h.end] for h in hits] == [secret]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENWEATHER_API_KEY", "your-api-key-here"),
        ("api_token", "<YOUR_TOKEN>"),
        ("tokenizer", "bert-base-uncased"),
        ("password_hash", "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"),
        ("run_id", "123e4567-e89b-12d3-a456-426614174000"),
        ("private_key_path", "~/.ssh/deploy_key.pem"),
        ("credentials_file", "config/service-account.json"),
        ("secret_name", "prod/analytics/warehouse"),
        ("auth_method", "oauth2"),
        ("token_env_var", "GITHUB_TOKEN"),
        ("sku", "sk-winter-collection-2024-blue"),
        ("aws_example", "AKIAIOSFODNN7EXAMPLE"),
        (None, "postgresql://user:password@localhost:5432/db"),
        (None, "postgresql://{user}:{password}@{host}/db"),
        (None, "Bearer {token}"),
        ("password", "${DB_PASSWORD}"),
        ("password", "changeme"),
        ("api_key", ""),
    ],
)
def test_decoys_are_not_secrets(name: str | None, value: str) -> None:
    assert secret_hits(name, value) == []


def test_secret_names_need_the_secret_word_as_their_head() -> None:
    yes = [
        "db_password",
        "OPENAI_API_KEY",
        "apiKey",
        "X-Api-Key",
        "Authorization",
        "client_secret",
        "HF_TOKEN",
    ]
    no = [
        "password_hash",
        "token_url",
        "secret_name",
        "tokenizer",
        "author",
        "max_tokens",
        "key",
        "api_key_header",
    ]
    assert [n for n in yes if not is_secret_name(n)] == []
    assert [n for n in no if is_secret_name(n)] == []
    assert not plausible_secret("read-only") and plausible_secret("Tr0ub4dor&3")


def _sites(code: str) -> list[tuple[int, str | None, str]]:
    return [(s.line, s.context, s.secret) for s in scan(cst.parse_module(code), 1)]


def test_scan_names_each_binding() -> None:
    code = (
        'user, pw = "reports", "Sup3r-S3cret!"\n'
        'conn = connect(host="db", password="Tr0ub4dor&3")\n'
        'headers = {"Authorization": "Bearer 4fJ9kQ2mZx8pL0vR7tW3yB6nC1dE5gH2"}\n'
        'os.environ["HF_TOKEN"] = "Zq8x7W6v5U4t3S2r1Q0p"\n'
        'token = os.environ.get("GITHUB_TOKEN", "Zx9y8W7v6U5t4S3r2Q1p")\n'
        'auth = ("svc", "N0t-A-Us3rname")\n'
        'ok = creds["password"] == "L3tMe-In-9"\n'
        'mailer.login("me@x.test", "Sm7p-Pa55w0rd")\n'
        "def fetch(day, api_key='9f8e7d6c5b4a39281706'):\n"
        "    return day\n"
        "class Client:\n"
        "    client_secret = 'c0ffee-B4BE-1234'\n"
        "# old: sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc\n"
    )
    assert _sites(code) == [
        (1, "pw", "Sup3r-S3cret!"),
        (2, "password", "Tr0ub4dor&3"),
        (3, "Authorization", "4fJ9kQ2mZx8pL0vR7tW3yB6nC1dE5gH2"),
        (4, "HF_TOKEN", "Zq8x7W6v5U4t3S2r1Q0p"),
        (5, "GITHUB_TOKEN", "Zx9y8W7v6U5t4S3r2Q1p"),
        (6, "auth", "N0t-A-Us3rname"),
        (7, "password", "L3tMe-In-9"),
        (8, "password", "Sm7p-Pa55w0rd"),
        (9, "api_key", "9f8e7d6c5b4a39281706"),
        (12, "client_secret", "c0ffee-B4BE-1234"),
        (13, None, "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ]
    assert "svc" not in [s for _, _, s in _sites(code)]  # the user name of a pair is not the secret


def test_multiline_private_key_is_reported_on_its_own_line() -> None:
    key = (
        "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----"
    )
    sites = scan(cst.parse_module(f'x = 1\nKEY = """\n{key}"""\n'), 3)
    assert [(s.cell, s.line, s.kind) for s in sites] == [(3, 3, "private-key")]


# --- rewriting the generated code ----------------------------------------------------------------------------------


def _rewrite(code: str, fields: dict[str, str], scrub: tuple[str, ...] = ()) -> str:
    return cst.parse_module(code).visit(SecretRewriter(fields, scrub)).code


def test_rewriter_reads_the_field_where_the_secret_was() -> None:
    fields = {"Tr0ub4dor&3": "db_password", "4fJ9kQ2mZx8pL0vR7tW3": "api_token"}
    code = (
        'conn = connect(password="Tr0ub4dor&3")\n'
        'url = "postgresql://ana:Tr0ub4dor&3@db/{x}"\n'
        'h = f"Bearer 4fJ9kQ2mZx8pL0vR7tW3 for {user}"\n'
        'k = b"4fJ9kQ2mZx8pL0vR7tW3"\n'
        'c = "Tr0ub4dor&3" "!"\n'
        "# was Tr0ub4dor&3, and 0ld-S3cret-Only-Here\n"
    )
    out = _rewrite(code, fields, ("0ld-S3cret-Only-Here",))
    assert out == (
        "conn = connect(password=db_password)\n"
        "url = f'postgresql://ana:{db_password}@db/{{x}}'\n"
        'h = f"Bearer {api_token} for {user}"\n'
        "k = api_token.encode()\n"
        "c = f'{db_password}' \"!\"\n"
        "# was <redacted>, and <redacted>\n"
    )
    namespace: dict[str, Any] = {
        "db_password": "pw",
        "api_token": "tok",
        "user": "u",
        "connect": dict,
    }
    exec(compile(out, "<rewritten>", "exec"), namespace)
    assert namespace["url"] == "postgresql://ana:pw@db/{x}" and namespace["h"] == "Bearer tok for u"
    assert namespace["k"] == b"tok" and namespace["c"] == "pw!"


def test_redact_covers_json_escaped_values() -> None:
    secret = "line one of a key\nline two of a key"
    text = json.dumps({"v": secret}) + " and " + secret
    assert redact(text, [secret]) == '{"v": "<redacted>"} and <redacted>'


# --- the whole conversion, in subprocesses -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``nbharden convert`` with recording ON (a real kernel), and the other commands' output."""
    work = tmp_path_factory.mktemp("secrets")
    out = work / "out"
    runs = {
        "convert": _nbharden("convert", str(NOTEBOOK), "--out", str(out), cwd=work, timeout=900),
        "diff": _nbharden(
            "convert", str(NOTEBOOK), "--out", str(work / "d"), "--no-record", "--diff", cwd=work
        ),
        "json": _nbharden(
            "convert",
            str(NOTEBOOK),
            "--out",
            str(work / "j"),
            "--no-record",
            "--format",
            "json",
            cwd=work,
        ),
        "analyze": _nbharden("analyze", str(NOTEBOOK), cwd=work),
        "analyze-json": _nbharden("analyze", str(NOTEBOOK), "--format", "json", cwd=work),
        "analyze-github": _nbharden("analyze", str(NOTEBOOK), "--format", "github", cwd=work),
    }
    return {"work": work, "out": out, "runs": runs}


@pytest.mark.slow
def test_convert_succeeds_and_generated_tests_pass(converted: dict[str, Any]) -> None:
    run = converted["runs"]["convert"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"generated tests: \d+ passed", run.stdout), run.stdout[-2000:]
    assert (
        converted["out"] / "tests" / "data" / "recording.json"
    ).exists()  # the recording is covered
    assert converted["runs"]["diff"].returncode == 0 and converted["runs"]["json"].returncode == 0


@pytest.mark.slow
def test_recall_and_precision_of_nbh201(converted: dict[str, Any], record_property: Any) -> None:
    stdout = converted["runs"]["convert"].stdout
    findings = [
        (int(m["cell"]), int(m["line"]))
        for m in map(FINDING.match, stdout.splitlines())
        if m and m["code"] == "NBH201"
    ]
    recall, precision, decoys, missed = recall_and_precision(findings)
    record_property("recall", recall)
    record_property("precision", precision)
    summary = (
        f"recall {recall:.1%}, precision {precision:.1%}, decoys flagged {decoys}, missed {missed}"
    )
    assert recall >= 0.95, summary
    assert decoys == 0, summary
    assert precision >= 0.95, summary
    # the JSON findings say the same
    data = json.loads(converted["runs"]["json"].stdout)
    items = data if isinstance(data, list) else [data]
    json_findings = [
        (f["cell"], f["line"]) for item in items for f in item["findings"] if f["code"] == "NBH201"
    ]
    assert Counter(json_findings) == Counter(findings)


@pytest.mark.slow
def test_no_secret_in_any_file_written(converted: dict[str, Any]) -> None:
    out: Path = converted["out"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(
        p.name.endswith(".pkl.b64") or p.suffix == ".json"
        for p in (out / "tests" / "data").rglob("*")
    )
    assert len(files) > 20
    assert leaks_in_tree(out) == {}
    assert leaks_in_tree(converted["work"] / "j") == {}  # written by convert --format json
    assert not (converted["work"] / "d").exists()  # --diff writes nothing


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", ["convert", "diff", "json", "analyze", "analyze-json", "analyze-github"]
)
def test_no_secret_in_any_output(converted: dict[str, Any], command: str) -> None:
    run = converted["runs"][command]
    assert run.stdout.strip(), command
    assert "NBH201" in run.stdout + run.stderr
    assert leaks(run.stdout.encode()) == [] and leaks(run.stderr.encode()) == []


@pytest.mark.slow
def test_generated_code_reads_secrets_from_the_config(converted: dict[str, Any]) -> None:
    pkg = converted["out"] / "src" / "planted"
    config = (pkg / "config.py").read_text(encoding="utf-8")
    # a secret read from the environment (GITHUB_TOKEN, its default hard-coded) is set by that variable too
    required = re.findall(
        r"^    (\w+): SecretStr = Field\(\s*(?:validation_alias=AliasChoices\([^)]*\),\s*)?description=",
        config,
        re.M,
    )
    assert 'validation_alias=AliasChoices("PLANTED_ENV_GITHUB_TOKEN", "GITHUB_TOKEN")' in config
    unused = re.findall(r"^    (\w+): SecretStr \| None = Field\(\s*default=None,", config, re.M)
    assert len(required) >= 30 and len(required) + len(unused) >= 40
    pipeline = (pkg / "pipeline.py").read_text(encoding="utf-8")
    assert set(re.findall(r"config\.(\w+)\.get_secret_value\(\)", pipeline)) == set(required)
    assert "hide_secrets(config)" in pipeline
    steps = (pkg / "steps.py").read_text(encoding="utf-8")
    assert 'f"mysql+pymysql://etl:{mysql_password}@mysql.internal:3306/warehouse"' in steps
    assert "# old key, revoked in January: <redacted>" in steps  # a comment, scrubbed


@pytest.mark.slow
def test_package_imports_without_secrets_and_refuses_to_run(converted: dict[str, Any]) -> None:
    out: Path = converted["out"]
    env = _env({"PYTHONPATH": str(out / "src")})
    imported = subprocess.run(
        [sys.executable, "-c", "import planted, planted.steps, planted.pipeline"],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    run = subprocess.run(
        [sys.executable, "-m", "planted"],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Field required" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_pipeline_log_never_shows_a_secret(converted: dict[str, Any]) -> None:
    """Run with the real (fake) values in the environment, as production would: the log hides them."""
    out: Path = converted["out"]
    settings = Settings()
    analysis = analyse(api.load(NOTEBOOK, settings), settings=settings)
    assert analysis.facts is not None
    plan = make_plan(analysis, settings=settings)
    fields = secret_fields(analysis.facts, plan.config_fields)
    for p in (
        PLANTED
    ):  # each planted value is a field's value, or part of one (a URL assigned to a name)
        assert p["name"] == "comment_stripe" or any(p["value"] in v for v in fields), p["name"]
    env = _env({f"PLANTED_{name.upper()}": value for value, name in fields.items()})
    env["PYTHONPATH"] = str(out / "src")
    for fmt in ("text", "json"):
        run = subprocess.run(
            [sys.executable, "-m", "planted", "--log-format", fmt],
            cwd=out,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        log = run.stdout + run.stderr
        assert "synced emea with token **********" in log  # the notebook printed its token
        assert leaks(log.encode()) == []


# --- secrets made at run time: found by value -----------------------------------------------------------------

RUNTIME: dict[str, Any] = json.loads((FIXTURE / "runtime.json").read_text(encoding="utf-8"))


def runtime_leaks(data: bytes, name: str = "") -> list[str]:
    """The run-time secrets of ``runtime.json`` found in ``data`` (as is, JSON-escaped, base64 of a
    pickle or of bytes decoded)."""
    blobs = [data]
    if name.endswith(".b64"):
        blobs.append(base64.b64decode(data))
    blobs += [base64.b64decode(m) for m in re.findall(rb'"b64": ?"([A-Za-z0-9+/=]+)"', data)]
    return [
        p["name"]
        for p in RUNTIME["planted"]
        if any(form in blob for form in _forms(p["value"]) for blob in blobs)
    ]


def runtime_leaks_in_tree(root: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != ".env":
            hits = runtime_leaks(path.read_bytes(), path.name)
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


@pytest.fixture(scope="module")
def runtime_converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``runtime.ipynb`` converted (recording and verification on) and recorded, and
    ``runtime_fails.ipynb`` converted, with the FAKE secrets in the environment and ``.env``."""
    work = tmp_path_factory.mktemp("runtime")
    for name in ("runtime.ipynb", "runtime_fails.ipynb"):
        (work / name).write_bytes((FIXTURE / name).read_bytes())
    (work / ".env").write_bytes((FIXTURE / "runtime.env").read_bytes())
    env = _env(RUNTIME["environment"])

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nbharden", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    runs = {
        "convert": run("convert", "runtime.ipynb", "--format", "json"),
        "record": run("record", "runtime.ipynb", "--output", "executed.ipynb", "--format", "json"),
        "fails": run("convert", "runtime_fails.ipynb"),
    }
    return {"work": work, "runs": runs}


@pytest.mark.slow
def test_secrets_made_at_run_time_are_never_written_or_printed(
    runtime_converted: dict[str, Any],
) -> None:
    work: Path = runtime_converted["work"]
    runs = runtime_converted["runs"]
    convert = runs["convert"]
    assert convert.returncode == 0, convert.stdout[-3000:] + convert.stderr[-3000:]
    assert runs["record"].returncode == 0, runs["record"].stderr[-3000:]
    for name, run in runs.items():
        assert runtime_leaks((run.stdout + run.stderr).encode()) == [], name
    assert runtime_leaks_in_tree(work / "runtime_prod") == {}
    # the executed copy of the recorded run: printed text and errors are scrubbed in the kernel
    assert runtime_leaks((work / "executed.ipynb").read_bytes()) == []
    assert "token: <redacted>" in (work / "executed.ipynb").read_text(encoding="utf-8")


@pytest.mark.slow
def test_each_kind_of_run_time_secret_is_redacted_and_the_rest_recorded(
    runtime_converted: dict[str, Any],
) -> None:
    """Environment (by name, by shape, by look), .env (a key, a URL's password), joined from pieces,
    decoded from base64, in an exception message, nested in containers and a frame's object column."""
    index = json.loads(
        (runtime_converted["work"] / "runtime_prod/tests/data/recording.json").read_text("utf-8")
    )
    kinds = {
        v["name"]: v["kind"]
        for step in index["steps"].values()
        for v in (*step["inputs"], *step["outputs"])
    }
    secret = ["token", "db_pass", "conf", "stripe", "mongo_uri", "hf", "openai", "message"]
    secret += ["headers", "frame", "pairs", "url"]
    assert {name: kinds.get(name) for name in secret} == dict.fromkeys(secret, "redacted")
    assert kinds["summary"] == "value"  # made from secrets, holds none: recorded


@pytest.mark.slow
def test_an_error_quoting_a_secret_is_reported_without_it(runtime_converted: dict[str, Any]) -> None:
    run = runtime_converted["runs"]["fails"]
    assert run.returncode == 3, run.stderr
    assert "RuntimeError: cannot connect as analyst:<redacted> with <redacted>" in run.stderr
    assert runtime_leaks((run.stdout + run.stderr).encode()) == []


def test_run_time_shapes_are_found_anywhere_in_a_recorded_value() -> None:
    """A credential-shaped string anywhere in a recorded value (nested, among many numbers, in a
    frame's object column, in bytes) makes it unstorable; ``scrub`` removes it from text."""
    import pandas as pd
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from nbharden import secret_shapes
    from nbharden.record import _runtime_secrets, _values

    plain = ("env_db_pass", "env_plain", "dotenv_mongo_password")  # secret by where they come from
    tokens = [p["value"] for p in RUNTIME["planted"] if p["name"] not in plain]
    password = next(p["value"] for p in RUNTIME["planted"] if p["name"] == plain[2])
    tokens.append(f"mongodb://analyst:{password}@db/sales")
    known = _runtime_secrets.RuntimeSecrets(secret_shapes)

    @settings(max_examples=60, deadline=None)
    @given(
        st.sampled_from(tokens),
        st.text(alphabet="abc XYZ,.:;-", max_size=40),
        st.integers(0, 3000),
        st.sampled_from(["list", "dict", "frame", "bytes"]),
    )
    def check(token: str, words: str, numbers: int, where: str) -> None:
        text = f"{words} {token} {words}"
        filler = list(range(numbers))
        value = {
            "list": [filler, [text]],
            "dict": {"n": filler, "deep": {"k": (text,)}},
            "frame": pd.DataFrame({"n": [1, 2], "o": ["plain", text]}),
            "bytes": [filler, text.encode()],
        }[where]
        assert known.holds(_values.dumps(value)) is not None
        assert token not in known.scrub(f"error: {text}")

    check()
    assert known.holds(_values.dumps({"numbers": list(range(5000)), "words": "plain text"})) is None


@pytest.mark.slow
def test_generated_package_with_secrets_is_mypy_strict_clean(converted: dict[str, Any]) -> None:
    """Required SecretStr fields come from the environment: ``Config()`` without arguments is
    right, and mypy says so through pydantic's plugin, which the generated pyproject enables. The
    support code that hides secrets in log lines is typed too, and a step returning a function
    the notebook defined is not annotated ``types.FunctionType`` (mypy's type of a def is a
    Callable)."""
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir=/dev/null"]
        + ["src"],
        cwd=converted["out"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert mypy.returncode == 0, mypy.stdout[-3000:]
