"""Fixtures for the server-extension tests: a Jupyter server (pytest-jupyter) with nbharden.lab
enabled, a real HTTP client for it, and a guard that sees every file the process touches.

The browser tests live in ``tests/lab/browser`` with their own ``pytest.ini`` (see that folder):
they start a real ``jupyter lab`` and must not run under pytest-jupyter's event-loop fixtures.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labutil import DATA, Live

# pytest only allows ``pytest_plugins`` in the top-level conftest; importing the plugin's fixtures
# and hooks here scopes them to this folder, so the rest of the suite does not run under its
# event-loop hooks.
from pytest_jupyter.jupyter_server import *  # noqa: E402, F403


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    # The server's default is allow_unauthenticated_access=True (only the handlers' decorators
    # protect them); tests/lab/test_security.py runs its checks under both values.
    return {
        "ServerApp": {
            "jpserver_extensions": {"nbharden.lab": True},
            "allow_unauthenticated_access": False,
        }
    }


@pytest.fixture
def notebook(jp_root_dir: Path) -> str:
    """A small convertible notebook copied into the server root; returns its contents path."""
    (jp_root_dir / "work").mkdir()
    shutil.copy(DATA / "sales.ipynb", jp_root_dir / "work" / "sales.ipynb")
    return "work/sales.ipynb"


@pytest.fixture
def live(
    jp_serverapp: Any, http_server: Any, jp_http_port: int, jp_base_url: str
) -> Iterator[Live]:
    """The test server (``http_server`` listens on ``jp_http_port``) and a real HTTP client."""
    client = Live(jp_http_port, jp_base_url, jp_serverapp.identity_provider.token)
    yield client
    client.client.close()


# The browser tests run in their own pytest process (``pytest -c tests/lab/browser/pytest.ini``):
# under pytest-jupyter's fixtures they pass but error at teardown.
collect_ignore = ["browser"]
