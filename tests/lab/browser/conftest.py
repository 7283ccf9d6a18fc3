"""A real ``jupyter lab`` on 127.0.0.1 with a token, and Debian's chromium driven by Playwright.

Never ``playwright install``: it downloads a browser. The browser is the system's
``/usr/bin/chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("NBHARDEN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
DATA = Path(__file__).parents[1] / "data"
REPO = Path(__file__).parents[3]
ARTIFACTS = REPO / "build" / "test-artifacts"
LABEXTENSION = (
    Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "nbharden" / "package.json"
)


@dataclass
class Lab:
    url: str
    token: str
    root: Path

    def open_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """Start ``jupyter lab`` on a fresh root holding ``work/sales.ipynb``; stop it afterwards."""
    if not LABEXTENSION.is_file():
        pytest.fail(
            f"the nbharden front end is not installed ({LABEXTENSION} missing): "
            "`pip install -e .` builds and installs it (needs node)"
        )
    root = tmp_path / "root"
    (root / "work").mkdir(parents=True)
    shutil.copy(DATA / "sales.ipynb", root / "work" / "sales.ipynb")
    (root / "work" / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    # No news or update checks (they would reach the network and pop up a notification).
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8"
    )
    token = os.urandom(16).hex()
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.allow_unauthenticated_access=False",
            "--LabApp.extension_manager=readonly",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited {proc.returncode}:\n{_tail(tmp_path / 'lab.log')}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not start in 90 s:\n{_tail(tmp_path / 'lab.log')}")
            time.sleep(0.3)
        yield Lab(url, token, root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """A Playwright page in a fresh chromium profile. When the test fails, a screenshot and the browser's
    console go to build/test-artifacts/<test>.png and .log."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1500, "height": 950},
        )
        page = context.pages[0] if context.pages else context.new_page()
        console: list[str] = []
        page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
        try:
            yield page
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                name = request.node.name[:80]
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
                (ARTIFACTS / f"{name}.log").write_text("\n".join(console), encoding="utf-8")
            context.close()
