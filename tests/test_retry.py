"""Timeouts and retries of network calls (NBH301/NBH302, ``nbharden.transform.network``).

Two halves. The codemod: before/after pairs of notebook code through ``NetworkCalls`` (which calls are
network calls, where the timeout goes, what is left alone) and the findings it reports. The generated package:
``fixtures/network/prices.ipynb`` is converted (recording off), the generated package is imported, and its step
functions run against a real HTTP server on 127.0.0.1 that answers each request as a script says (503, a
dropped connection, 500, 429, 404, a stall longer than the timeout, or the data). The server counts what
reaches it; the retries' log lines are read from the ``<package>.support`` logger.
"""

from __future__ import annotations

import http.server
import importlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from textwrap import dedent
from types import ModuleType

import libcst as cst
import pytest

from nbharden import api
from nbharden.analyse import analyse
from nbharden.emit import emit
from nbharden.plan import make_plan
from nbharden.settings import Settings
from nbharden.transform.network import NetworkCalls, scan

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "network" / "prices.ipynb"
PACKAGE = "nbh_retry_prices"

PRICES = {"items": [{"name": "tea", "price": 2.5}, {"name": "cake", "price": 4.0}]}
TABLE = "name,price\nbread,3.0\nmilk,1.5\n"
RATES = {"eur": 0.5}


# --- a scripted HTTP server on 127.0.0.1 -------------------------------------------------------


class ScriptedServer:
    """Answers ``GET /<name>`` with the next action scripted for that path, then with the data.

    Actions: an HTTP status ("503", "500", "429", "404"), "drop" (close the connection without
    answering) or "stall" (wait until the test ends, then close: the client times out). ``hits`` counts
    the requests that reached each path.
    """

    def __init__(self) -> None:
        self.bodies: dict[str, tuple[str, bytes]] = {
            "/prices.json": ("application/json", json.dumps(PRICES).encode()),
            "/table.csv": ("text/csv", TABLE.encode()),
            "/rates.json": ("application/json", json.dumps(RATES).encode()),
        }
        self.script: dict[str, list[str]] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                path = self.path.split("?")[0]
                with server.lock:
                    server.hits[path] = server.hits.get(path, 0) + 1
                    queue = server.script.get(path, [])
                    action = queue.pop(0) if queue else "ok"
                if action == "drop":
                    self.close_connection = True
                    return
                if action == "stall":  # answer nothing until the test ends: the client times out
                    server.release.wait(10)
                    self.close_connection = True
                    return
                if action == "ok" and path in server.bodies:
                    kind, body = server.bodies[path]
                    status = 200
                else:
                    kind, body = "text/plain", b"no"
                    status = int(action) if action.isdigit() else 404
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


# --- the generated package ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generation(tmp_path_factory: pytest.TempPathFactory) -> api.Generated:
    """``fixtures/network/prices.ipynb`` converted (no recording), in memory."""
    out = tmp_path_factory.mktemp("retry") / "out"
    return api.generate(FIXTURE, Settings(out=out, name=PACKAGE, record=False, verify=False))


@pytest.fixture(scope="module")
def generated(generation: api.Generated) -> Iterator[Path]:
    """The conversion written to its temporary folder."""
    out = generation.out
    for rel, text in generation.tree:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    yield out


@pytest.fixture
def package(generated: Path) -> Iterator[dict[str, ModuleType]]:
    """The generated package imported: its ``steps``, ``support``, ``config`` and ``pipeline`` modules.

    The network settings are made small (backoff 0.05 s, timeout 2 s) so that the retries take a moment.
    """
    sys.path.insert(0, str(generated / "src"))
    try:
        modules = {
            name: importlib.import_module(f"{PACKAGE}.{name}")
            for name in ("steps", "support", "config", "pipeline")
        }
        modules["support"].configure_network(attempts=3, backoff=0.05, timeout=2.0)
        yield modules
    finally:
        sys.path.remove(str(generated / "src"))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
def retry_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The messages the generated support module logged (its retries and give-ups)."""
    caplog.set_level(logging.INFO, logger=f"{PACKAGE}.support")

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == f"{PACKAGE}.support"]

    return messages


def _waits(messages: list[str]) -> list[float]:
    """The backoff each retry line announces: '... retrying in 0.05 s' -> 0.05."""
    return [float(m) for line in messages for m in re.findall(r"retrying in ([\d.]+) s", line)]


# --- what the generated code looks like ----------------------------------------------------------


def test_generated_steps_wrap_each_network_call(generated: Path) -> None:
    steps = (generated / "src" / PACKAGE / "steps.py").read_text()
    assert "call_with_retry(requests.get, PRICES_URL, timeout=http_timeout())" in steps
    assert "read_url(pd.read_csv, TABLE_URL)" in steps
    assert "urllib.request.urlopen, RATES_URL, timeout=http_timeout()" in steps
    assert "from .support import call_with_retry, http_timeout, read_url" in steps
    # the retry wraps the call, not the step: the raise_for_status after it is not retried
    assert "    response.raise_for_status()\n" in steps
    assert "nbharden" not in steps.replace("extracted by nbharden", "")
    config = (generated / "src" / PACKAGE / "config.py").read_text()
    for field, default in [("retry_attempts: int", "3"), ("retry_backoff: float", "0.5")]:
        assert re.search(rf"{re.escape(field)} = Field\(\s*default={default},", config)
    assert re.search(r"http_timeout: float = Field\(\s*default=30.0,", config)
    pipeline = (generated / "src" / PACKAGE / "pipeline.py").read_text()
    assert re.search(
        r"configure_network\(\s*attempts=config.retry_attempts,\s*backoff=config.retry_backoff,"
        r"\s*timeout=config.http_timeout,?\s*\)",
        pipeline,
    )
    pyproject = (generated / "pyproject.toml").read_text()
    assert '"tenacity>=8",' in pyproject
    support = (generated / "src" / PACKAGE / "support.py").read_text()
    assert "from tenacity import" in support and "import nbharden" not in support


def test_generated_package_passes_ruff_and_mypy(generated: Path) -> None:
    """ruff always; mypy (default strictness, as on the corpus) with NBHARDEN_LONG=1."""
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=generated,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    if not os.environ.get("NBHARDEN_LONG"):
        return  # mypy over pandas' and tenacity's stubs takes half a minute
    files = [str(generated / "src" / PACKAGE / m) for m in ("support.py", "steps.py")]
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--ignore-missing-imports", *files],
        cwd=generated,
        capture_output=True,
        text=True,
        check=False,
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


# --- the generated steps against a real server ------------------------------------------------------


def test_requests_step_retries_503_and_a_dropped_connection(
    package: dict[str, ModuleType], server: ScriptedServer, retry_log: Callable[[], list[str]]
) -> None:
    server.script["/prices.json"] = ["503", "drop"]
    prices = package["steps"].fetch_prices(PRICES_URL=server.url("/prices.json"))
    assert server.hits["/prices.json"] == 3
    assert prices == PRICES
    lines = retry_log()
    assert len(lines) == 2, lines
    assert "attempt 1 of 3 failed (HTTP 503)" in lines[0]
    assert "attempt 2 of 3 failed (ConnectionError" in lines[1]
    assert _waits(lines) == [0.05, 0.1]  # exponential: backoff, then twice that


def test_pandas_step_retries_500_and_a_dropped_connection(
    package: dict[str, ModuleType], server: ScriptedServer, retry_log: Callable[[], list[str]]
) -> None:
    server.script["/table.csv"] = ["500", "drop"]
    table = package["steps"].read_table(TABLE_URL=server.url("/table.csv"))
    assert server.hits["/table.csv"] == 3
    assert table["price"].tolist() == [3.0, 1.5]
    lines = retry_log()
    assert "attempt 1 of 3 failed (HTTPError: HTTP Error 500" in lines[0]
    assert "attempt 2 of 3 failed (RemoteDisconnected" in lines[1]
    assert _waits(lines) == [0.05, 0.1]


def test_urllib_step_retries_429_and_503(
    package: dict[str, ModuleType], server: ScriptedServer, retry_log: Callable[[], list[str]]
) -> None:
    server.script["/rates.json"] = ["429", "503"]
    rates = package["steps"].read_rates(RATES_URL=server.url("/rates.json"))
    assert server.hits["/rates.json"] == 3 and rates == RATES
    assert _waits(retry_log()) == [0.05, 0.1]


def test_pipeline_takes_attempts_and_backoff_from_config(
    package: dict[str, ModuleType], server: ScriptedServer, retry_log: Callable[[], list[str]]
) -> None:
    server.script = {"/prices.json": ["503"], "/table.csv": ["drop"], "/rates.json": ["500"]}
    config = package["config"].Config(
        PRICES_URL=server.url("/prices.json"),
        TABLE_URL=server.url("/table.csv"),
        RATES_URL=server.url("/rates.json"),
        retry_attempts=2,
        retry_backoff=0.02,
        http_timeout=5,
    )
    results = package["pipeline"].run(config)
    assert results.total == pytest.approx((2.5 + 4.0 + 3.0 + 1.5) * 0.5)
    assert server.hits == {"/prices.json": 2, "/table.csv": 2, "/rates.json": 2}
    lines = retry_log()
    assert sum("attempt 1 of 2 failed" in line for line in lines) == 3
    assert _waits(lines) == [0.02, 0.02, 0.02]
    assert package["support"].http_timeout() == 5


def test_generated_cli_options_and_json_log_lines(generated: Path, server: ScriptedServer) -> None:
    """``python -m <package> --retry-backoff ... --log-format json``: the retries are JSON events."""
    server.script = {"/prices.json": ["503", "drop"], "/rates.json": ["429"]}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            PACKAGE,
            "--PRICES-URL",
            server.url("/prices.json"),
            "--TABLE-URL",
            server.url("/table.csv"),
            "--RATES-URL",
            server.url("/rates.json"),
            "--retry-backoff",
            "0.02",
            "--http-timeout",
            "5",
            "--log-format",
            "json",
        ],
        cwd=generated,
        env={**os.environ, "PYTHONPATH": str(generated / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    retries = [e for e in events if e.get("event") == "network_retry"]
    assert [(e["attempt"], e["attempts"], e["wait_s"]) for e in retries] == [
        (1, 3, 0.02),
        (2, 3, 0.04),
        (1, 3, 0.02),
    ]
    assert retries[0]["error"] == "HTTP 503"  # a requests response
    assert retries[2]["error"] == "HTTPError: HTTP Error 429: Too Many Requests"  # urllib raises
    assert retries[1]["error"].startswith("ConnectionError")
    assert server.hits == {"/prices.json": 3, "/table.csv": 1, "/rates.json": 2}
    assert not any(e.get("event") == "network_give_up" for e in events)


def test_404_is_not_retried_and_behaves_as_in_the_notebook(
    package: dict[str, ModuleType], server: ScriptedServer, retry_log: Callable[[], list[str]]
) -> None:
    requests = pytest.importorskip("requests")
    server.script = {"/prices.json": ["404"], "/table.csv": ["404"], "/rates.json": ["404"]}
    steps = package["steps"]
    # requests returns the 404 response; the notebook's own raise_for_status raises
    with pytest.raises(requests.HTTPError, match="404"):
        steps.fetch_prices(PRICES_URL=server.url("/prices.json"))
    with pytest.raises(urllib.error.HTTPError, match="404"):
        steps.read_table(TABLE_URL=server.url("/table.csv"))
    with pytest.raises(urllib.error.HTTPError, match="404"):
        steps.read_rates(RATES_URL=server.url("/rates.json"))
    assert server.hits == {"/prices.json": 1, "/table.csv": 1, "/rates.json": 1}
    assert retry_log() == []


def test_persistent_5xx_gives_the_last_response_after_all_attempts(
    package: dict[str, ModuleType], server: ScriptedServer, retry_log: Callable[[], list[str]]
) -> None:
    requests = pytest.importorskip("requests")
    server.script["/prices.json"] = ["503", "503", "503", "503"]
    with pytest.raises(
        requests.HTTPError, match="503"
    ):  # raised by the notebook's raise_for_status
        package["steps"].fetch_prices(PRICES_URL=server.url("/prices.json"))
    assert server.hits["/prices.json"] == 3
    lines = retry_log()
    assert "giving up after 3 attempt(s) (HTTP 503)" in lines[-1]


@pytest.mark.parametrize(
    ("step", "path", "error"),
    [
        ("fetch_prices", "/prices.json", "requests.exceptions.ReadTimeout"),
        ("read_table", "/table.csv", "TimeoutError"),
        ("read_rates", "/rates.json", "TimeoutError"),
    ],
)
def test_a_stalled_server_times_out_after_every_attempt(
    package: dict[str, ModuleType],
    server: ScriptedServer,
    retry_log: Callable[[], list[str]],
    step: str,
    path: str,
    error: str,
) -> None:
    package["support"].configure_network(attempts=3, backoff=0.01, timeout=0.3)
    server.script[path] = ["stall"] * 3
    parameter = {"/prices.json": "PRICES_URL", "/table.csv": "TABLE_URL"}.get(path, "RATES_URL")
    with pytest.raises(Exception) as caught:
        getattr(package["steps"], step)(**{parameter: server.url(path)})
    module, _, name = error.rpartition(".")
    expected = getattr(importlib.import_module(module), name) if module else TimeoutError
    assert isinstance(caught.value, expected) or isinstance(
        getattr(caught.value, "reason", None), TimeoutError
    ), repr(caught.value)
    assert server.hits[path] == 3
    lines = retry_log()
    assert "giving up after 3 attempt(s)" in lines[-1]
    assert sum("retrying in" in line for line in lines) == 2


def test_httpx_and_sessions_through_the_generated_helper(
    package: dict[str, ModuleType], server: ScriptedServer, retry_log: Callable[[], list[str]]
) -> None:
    httpx = pytest.importorskip("httpx")
    requests = pytest.importorskip("requests")
    support = package["support"]
    server.script["/prices.json"] = ["503", "drop"]
    response = support.call_with_retry(
        httpx.get, server.url("/prices.json"), timeout=support.http_timeout()
    )
    assert response.json() == PRICES and server.hits["/prices.json"] == 3
    assert "attempt 2 of 3 failed (RemoteProtocolError" in retry_log()[1]
    server.script["/rates.json"] = ["502"]
    with requests.Session() as session:
        response = support.call_with_retry(session.get, server.url("/rates.json"), timeout=2)
    assert response.json() == RATES and server.hits["/rates.json"] == 2


def test_boto3_clients_get_timeouts_and_botocore_retries(
    package: dict[str, ModuleType], server: ScriptedServer
) -> None:
    boto3 = pytest.importorskip("boto3")
    support = package["support"]
    support.configure_network(attempts=3, backoff=0.05, timeout=1.5)
    config = support.aws_config()
    assert (config.connect_timeout, config.read_timeout) == (1.5, 1.5)
    assert config.retries == {"total_max_attempts": 3, "mode": "standard"}
    server.bodies["/"] = (
        "application/xml",
        b'<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets/>'
        b"</ListAllMyBucketsResult>",
    )
    server.script["/"] = ["503", "500"]
    client = boto3.client(
        "s3",
        endpoint_url=server.url(""),
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )
    assert client.list_buckets()["Buckets"] == []
    assert server.hits["/"] == 3


def test_log_lines_hide_credentials_and_query_values(package: dict[str, ModuleType]) -> None:
    redact = package["support"]._redact
    text = redact("GET https://ana:hunter2@api.example.com/v1/prices?token=abc123&day=1 failed")
    assert "hunter2" not in text and "abc123" not in text
    assert "https://***@api.example.com/v1/prices?token=***&day=***" in text


def test_transient_errors_are_the_listed_ones_only(package: dict[str, ModuleType]) -> None:
    requests = pytest.importorskip("requests")
    is_transient = package["support"].is_transient
    assert is_transient(ConnectionResetError())
    assert is_transient(TimeoutError())
    assert is_transient(requests.ConnectionError())
    assert is_transient(requests.Timeout())
    assert is_transient(urllib.error.URLError(ConnectionRefusedError()))
    assert is_transient(urllib.error.HTTPError("u", 503, "x", {}, None))  # type: ignore[arg-type]
    assert is_transient(urllib.error.HTTPError("u", 429, "x", {}, None))  # type: ignore[arg-type]
    assert not is_transient(urllib.error.HTTPError("u", 404, "x", {}, None))  # type: ignore[arg-type]
    assert not is_transient(urllib.error.URLError("unknown url type: htp"))
    assert not is_transient(requests.exceptions.SSLError())
    assert not is_transient(requests.exceptions.InvalidURL())
    assert not is_transient(ValueError())
    assert not is_transient(KeyError())


# --- the codemod ----------------------------------------------------------------------------------


def _rewrite(make_notebook: Callable[..., Path], *cells: str) -> tuple[list[str], NetworkCalls]:
    """Every code cell of a notebook through one ``NetworkCalls``; the rewritten cells' code."""
    nb = api.load(make_notebook([dedent(c) for c in cells]))
    facts = analyse(nb, settings=Settings()).facts
    assert facts is not None
    codemod = NetworkCalls(facts)
    return [facts.cells[i].module.visit(codemod).code for i in sorted(facts.cells)], codemod


IMPORTS = (
    "import urllib.request\nimport boto3\nimport httpx\nimport pandas as pd\nimport requests\n"
)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("r = requests.get(url)", "r = call_with_retry(requests.get, url, timeout=http_timeout())"),
        (
            "r = requests.post(url, json=body)",
            "r = call_with_retry(requests.post, url, json=body, timeout=http_timeout())",
        ),
        ("r = requests.get(url, timeout=5)", "r = call_with_retry(requests.get, url, timeout=5)"),
        (
            "r = requests.request('GET', url)",
            "r = call_with_retry(requests.request, 'GET', url, timeout=http_timeout())",
        ),
        ("r = requests.get(url, **opts)", "r = call_with_retry(requests.get, url, **opts)"),
        (
            "data = requests.get(url).json()",
            "data = call_with_retry(requests.get, url, timeout=http_timeout()).json()",
        ),
        ("r = httpx.get(url)", "r = call_with_retry(httpx.get, url, timeout=http_timeout())"),
        (
            "r = urllib.request.urlopen(url)",
            "r = call_with_retry(urllib.request.urlopen, url, timeout=http_timeout())",
        ),
        (
            "r = urllib.request.urlopen(url, None, 10)",
            "r = call_with_retry(urllib.request.urlopen, url, None, 10)",
        ),
        (
            "df = pd.read_csv('https://example.com/a.csv', sep=';')",
            "df = read_url(pd.read_csv, 'https://example.com/a.csv', sep=';')",
        ),
        (
            "df = pd.read_json(f'{BASE}/a.json')",
            "df = read_url(pd.read_json, f'{BASE}/a.json')",
        ),
        ("df = pd.read_csv(URLS['a'])", "df = read_url(pd.read_csv, URLS['a'])"),
        (
            "df = pd.read_csv(filepath_or_buffer=BASE + '/a.csv')",
            "df = read_url(pd.read_csv, filepath_or_buffer=BASE + '/a.csv')",
        ),
        ("df = pd.read_csv('data/a.csv')", "df = pd.read_csv('data/a.csv')"),
        ("df = pd.read_csv('s3://bucket/a.csv')", "df = pd.read_csv('s3://bucket/a.csv')"),
        ("df = pd.read_csv(path)", "df = pd.read_csv(path)"),
        ("s3 = boto3.client('s3')", "s3 = boto3.client('s3', config=aws_config())"),
        ("s3 = boto3.resource('s3')", "s3 = boto3.resource('s3', config=aws_config())"),
        ("s3 = boto3.client('s3', config=mine)", "s3 = boto3.client('s3', config=mine)"),
        (
            "s3 = boto3.Session(profile_name='p').client('s3')",
            "s3 = boto3.Session(profile_name='p').client('s3', config=aws_config())",
        ),
        ("r = other.get(url)", "r = other.get(url)"),
        ("d = {}.get(url)", "d = {}.get(url)"),
    ],
)
def test_codemod_before_after(make_notebook: Callable[..., Path], before: str, after: str) -> None:
    params = (
        "url = 'https://example.com/x'\nBASE = 'https://example.com'\nURLS = {'a': BASE + '/a'}\n"
    )
    code, _ = _rewrite(make_notebook, IMPORTS + params, before + "\n")
    assert code[1] == after + "\n"
    compile(code[1], "<after>", "exec")


def test_codemod_sessions_and_clients(make_notebook: Callable[..., Path]) -> None:
    code, codemod = _rewrite(
        make_notebook,
        IMPORTS,
        """\
        s = requests.Session()
        a = s.get(url)
        with requests.Session() as t:
            b = t.post(url, data=x)
        c = requests.Session().get(url)
        client = httpx.Client()
        d = client.get(url)
        slow = httpx.Client(timeout=60)
        e = slow.get(url)
        """,
    )
    assert code[1] == dedent(
        """\
        s = requests.Session()
        a = call_with_retry(s.get, url, timeout=http_timeout())
        with requests.Session() as t:
            b = call_with_retry(t.post, url, data=x, timeout=http_timeout())
        c = call_with_retry(requests.Session().get, url, timeout=http_timeout())
        client = httpx.Client()
        d = call_with_retry(client.get, url, timeout=http_timeout())
        slow = httpx.Client(timeout=60)
        e = call_with_retry(slow.get, url)
        """
    )
    assert [c.timeout for c in codemod.calls] == ["added", "added", "added", "added", "client"]
    assert codemod.import_line() == "from .support import call_with_retry, http_timeout"


def test_codemod_inside_functions_and_imported_names(make_notebook: Callable[..., Path]) -> None:
    code, _ = _rewrite(
        make_notebook,
        "from requests import get\nfrom urllib.request import urlopen as fetch\n",
        """\
        def load(u):
            data = get(u).json()
            return data, fetch(u).read()
        """,
    )
    assert code[1] == dedent(
        """\
        def load(u):
            data = call_with_retry(get, u, timeout=http_timeout()).json()
            return data, call_with_retry(fetch, u, timeout=http_timeout()).read()
        """
    )


def test_codemod_avoids_the_notebooks_names(make_notebook: Callable[..., Path]) -> None:
    nb = api.load(make_notebook([IMPORTS, "def call_with_retry(): pass\nr = requests.get(u)\n"]))
    facts = analyse(nb, settings=Settings()).facts
    assert facts is not None
    taken = {"call_with_retry"}
    codemod = NetworkCalls(facts, taken)
    code = facts.cells[2].module.visit(codemod).code
    assert "r = call_with_retry_(requests.get, u, timeout=http_timeout())" in code
    assert codemod.import_line() == (
        "from .support import call_with_retry as call_with_retry_, http_timeout"
    )


def test_scan_finds_url_names_through_assignments_and_loops(
    make_notebook: Callable[..., Path],
) -> None:
    nb = api.load(
        make_notebook(
            [
                "BASE = 'https://example.com'\nLOCAL = 'data/x.csv'\n",
                "import pandas as pd\nfull = f'{BASE}/x.csv'\nURLS = [full, BASE + '/y']\n"
                "for u in URLS:\n    pd.read_csv(u)\nother = LOCAL\n",
            ]
        )
    )
    facts = analyse(nb, settings=Settings()).facts
    assert facts is not None
    result = scan(facts)
    assert result.url_names == {"BASE", "full", "URLS", "u"}
    assert result.found


# --- findings and the conversion ------------------------------------------------------------------


def test_conversion_reports_each_call_applied_with_its_cell_and_line(
    generation: api.Generated,
) -> None:
    network = [f for f in generation.findings if f.code in {"NBH301", "NBH302"}]
    where = sorted({(f.code, f.span.cell, f.span.line) for f in network if f.span is not None})
    assert where == [
        ("NBH301", 5, 1),
        ("NBH301", 7, 1),
        ("NBH301", 9, 1),
        ("NBH302", 5, 1),
        ("NBH302", 7, 1),
        ("NBH302", 9, 1),
    ]
    assert all(f.applied for f in network)
    assert len(network) == 6  # the analysis' unapplied NBH301/NBH302 were replaced, not duplicated


def test_notebook_without_network_calls_gets_no_retry_machinery(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_notebook(["import pandas as pd\n", "df = pd.read_csv('data/a.csv')\n"])
    settings = Settings(record=False, verify=False, out=tmp_path / "out")
    analysis = analyse(api.load(path, settings), settings=settings)
    plan = make_plan(analysis, settings=settings)
    tree, findings = emit(analysis, plan, out=tmp_path / "out", settings=settings)
    files = tree.as_dict()
    support = next(t for p, t in files.items() if p.endswith("/support.py"))
    assert "tenacity" not in support and "call_with_retry" not in support
    assert "tenacity" not in files["pyproject.toml"]
    assert not any(f.kind == "network" for f in plan.config_fields)
    assert not any(f.applied for f in findings if f.code in {"NBH301", "NBH302"})


@pytest.mark.parametrize("copied_first", [False, True])
def test_findings_point_at_each_call_even_after_another_codemod_copied_the_code(
    make_notebook: Callable[..., Path], copied_first: bool
) -> None:
    """A codemod that runs before this one (the secrets rewrite) hands over copies of the nodes."""
    cells = [
        "import requests\n",
        "a = requests.get(u)\nb = 1\nc = requests.get(u)\n",
        "x = 2\n\nd = requests.post(u, headers={'k': 'v'})\n",
    ]
    nb = api.load(make_notebook(cells))
    analysis = analyse(nb, settings=Settings())
    facts = analysis.facts
    assert facts is not None
    codemod = NetworkCalls(facts)
    for index in sorted(facts.cells):
        module = facts.cells[index].module
        if copied_first:
            module = module.visit(cst.CSTTransformer())
            assert module is not facts.cells[index].module
        if index == 3 and copied_first:  # the copy also changed the call (a secret became a name)
            module = cst.parse_module(module.code.replace("{'k': 'v'}", "headers_"))
        module.visit(codemod)
    found = [f for f in codemod.findings(analysis.findings) if f.code in {"NBH301", "NBH302"}]
    assert sorted((f.code, f.span.cell, f.span.line, f.span.col) for f in found if f.span) == [
        ("NBH301", 2, 1, 5),
        ("NBH301", 2, 3, 5),
        ("NBH301", 3, 3, 5),
        ("NBH302", 2, 1, 5),
        ("NBH302", 2, 3, 5),
        ("NBH302", 3, 3, 5),
    ]
    assert all(f.applied for f in found)


def test_kwargs_call_keeps_nbh301_unapplied(make_notebook: Callable[..., Path]) -> None:
    nb = api.load(make_notebook(["import requests\n", "r = requests.get(u, **opts)\n"]))
    analysis = analyse(nb, settings=Settings())
    assert analysis.facts is not None
    codemod = NetworkCalls(analysis.facts)
    analysis.facts.cells[2].module.visit(codemod)
    found = {(f.code, f.applied) for f in codemod.findings(analysis.findings) if f.span}
    assert ("NBH301", False) in found and ("NBH302", True) in found
    assert ("NBH301", True) not in found
