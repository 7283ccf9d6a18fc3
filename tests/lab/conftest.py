"""Fixtures for the server-extension tests: a Jupyter server (pytest-jupyter) with nbharden.lab
enabled.

The browser tests live in ``tests/lab/browser`` with their own ``pytest.ini`` (see that folder):
they start a real ``jupyter lab`` and must not run under pytest-jupyter's event-loop fixtures.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

# pytest only allows ``pytest_plugins`` in the top-level conftest; importing the plugin's fixtures
# and hooks
# here scopes them to this folder, so the rest of the suite does not run under its event-loop hooks.
from pytest_jupyter.jupyter_server import *  # noqa: E402, F403

DATA = Path(__file__).parent / "data"


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    # allow_unauthenticated_access False: a handler missing @authenticated then fails loudly (403)
    # in
    # tests too, instead of silently serving anyone (the server's default is True).
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


# The browser tests run in their own pytest process (``pytest -c tests/lab/browser/pytest.ini``):
# under pytest-jupyter's fixtures they pass but error at teardown.
collect_ignore = ["browser"]
