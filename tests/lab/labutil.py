"""Helpers of the server-extension tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import tornado.httpclient

DATA = Path(__file__).parent / "data"

Fetch = Callable[..., Awaitable[tornado.httpclient.HTTPResponse]]


async def post(jp_fetch: Fetch, body: Any, *, raw: bool = False) -> tuple[int, dict[str, Any]]:
    """POST /nbharden/convert; returns (status, JSON body) without raising on 4xx/5xx."""
    data = body if raw else json.dumps(body)
    resp = await jp_fetch("nbharden", "convert", method="POST", body=data, raise_error=False)
    return resp.code, json.loads(resp.body or b"{}")


class Live:
    """The test server over real TCP on 127.0.0.1, with a client that opens up to 64 connections
    at once (pytest-jupyter's ``jp_fetch`` client queues all but 10).
    """

    def __init__(self, port: int, base_url: str, token: str) -> None:
        self.origin = f"http://127.0.0.1:{port}"
        self.base = f"{self.origin}{base_url}"
        self.token = token
        self.client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=64)

    async def fetch(
        self,
        path: str,
        *,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: bool = True,
    ) -> tornado.httpclient.HTTPResponse:
        """``path`` under the base URL; with the token header unless ``token=False``."""
        all_headers = {"Authorization": f"token {self.token}"} if token else {}
        all_headers.update(headers or {})
        data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
        return await self.client.fetch(
            self.base + path,
            method=method,
            body=data,
            headers=all_headers,
            raise_error=False,
            request_timeout=120,
            follow_redirects=False,
            allow_nonstandard_methods=True,
        )

    async def convert(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        resp = await self.fetch("nbharden/convert", method="POST", body=body)
        return resp.code, json.loads(resp.body or b"{}")


class FileGuard:
    """Records every file-system audit event (open, rename, remove, mkdir, listdir, ...) that names
    a path inside the watched folders, from any thread of this process (the server runs
    in-process), while it is active.

    ``sys.addaudithook`` cannot be undone: one hook is installed once and does nothing while no
    guard is active.
    """

    EVENTS: ClassVar[frozenset[str]] = frozenset(
        {
            "open",
            "os.rename",
            "os.remove",
            "os.rmdir",
            "os.mkdir",
            "os.listdir",
            "os.scandir",
            "os.truncate",
            "os.chmod",
            "os.chown",
            "os.utime",
            "os.link",
            "os.symlink",
            "shutil.copyfile",
            "shutil.rmtree",
        }
    )
    _active: ClassVar[list[FileGuard]] = []
    _installed: ClassVar[bool] = False
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *watched: Path) -> None:
        self.watched = sorted(
            {str(p.absolute()) for p in watched} | {str(p.resolve()) for p in watched}
        )
        self.hits: list[tuple[str, str]] = []

    def covers(self, path: str) -> bool:
        return any(path == w or path.startswith(w + os.sep) for w in self.watched)

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if not cls._active or event not in cls.EVENTS:
            return
        try:
            for arg in args:
                if isinstance(arg, (str, bytes, os.PathLike)):
                    path = os.path.abspath(os.fsdecode(arg))
                    for guard in list(cls._active):
                        if guard.covers(path):
                            guard.hits.append((event, path))
        except Exception:  # noqa: BLE001 - an audit hook must never break the audited call
            pass

    def __enter__(self) -> FileGuard:
        with FileGuard._lock:
            if not FileGuard._installed:
                sys.addaudithook(FileGuard._hook)
                FileGuard._installed = True
        FileGuard._active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        FileGuard._active.remove(self)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder`` (without following links): file bytes, link targets, folders."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[rel] = "link -> " + os.readlink(path)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = path.read_bytes()
    return found
