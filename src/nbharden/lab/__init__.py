"""nbharden inside JupyterLab: a Jupyter Server extension plus a prebuilt JupyterLab 4 front end.

The server extension adds ``POST /nbharden/convert`` and ``GET /nbharden/rules`` (see
``nbharden.lab.handlers`` and docs/lab.md). It is enabled on install by
``jupyter_server_config.d/nbharden.json``; the front end is installed to
``share/jupyter/labextensions/nbharden``. This package needs ``jupyter_server`` (the ``lab``
extra); the rest of nbharden does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

#: npm name of the front end; also its folder under share/jupyter/labextensions.
LABEXTENSION_NAME = "nbharden"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the built front end is (for ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": LABEXTENSION_NAME}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension entry point (jupyter_server's discovery protocol)."""
    return [{"module": "nbharden.lab"}]


def _load_jupyter_server_extension(server_app: ServerApp) -> None:
    """Register the nbharden handlers on the running server."""
    from nbharden.lab.handlers import setup_handlers

    setup_handlers(server_app.web_app)
    server_app.log.info("nbharden: server extension loaded (/nbharden/convert, /nbharden/rules)")
