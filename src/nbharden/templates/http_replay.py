"""The HTTP responses the notebook received when it was recorded, served back to the generated tests
(written by nbharden into ``tests/_http_replay.py``; yours to change).

The tests never go online. A request through requests, httpx or urllib (``urlopen``, and pandas'
``read_*`` on a URL) is answered with the response recorded for the same method and URL, without any
network: the libraries' transports are replaced for the test (``HTTPAdapter.send``,
``HTTPTransport.handle_request``, ``AbstractHTTPHandler.do_open``). Responses to the same request are
served in the order they were recorded (the last one again when a test asks more often); those recorded
in the cells of the step under test come first. A request nothing was recorded for skips the test with
the reason.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import importlib
import importlib.util
import io
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


def _redact(url: str) -> str:
    """``url`` without credentials and query values (they may hold tokens)."""
    url = re.sub(r"//[^/@\s]+@", "//***@", url)
    return re.sub(r"([?&][^=&\s]+)=[^&\s]*", r"\1=***", url)


class Responses:
    """The recorded responses of one test, by method and URL."""

    def __init__(self, entries: list[Mapping[str, Any]], cells: Collection[int]) -> None:
        self.queues: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        # a stable sort: the responses recorded in the step's own cells first
        for entry in sorted(entries, key=lambda e: e.get("cell") not in cells):
            if entry.get("url") and entry.get("file"):
                key = (str(entry["method"]).upper(), str(entry["url"]))
                self.queues.setdefault(key, []).append(entry)
        self.served: dict[tuple[str, str], int] = {}
        self.libraries = {str(e.get("library")) for e in entries}

    def answer(self, method: str, url: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body recorded for ``method url``; skips the test when there is none."""
        key = (method.upper(), url)
        queue = self.queues.get(key)
        if not queue:
            pytest.skip(
                f"reads the network ({method} {_redact(url)}): no response was recorded for it, "
                "and generated tests never go online"
            )
        count = self.served.get(key, 0)
        self.served[key] = count + 1
        entry = queue[min(count, len(queue) - 1)]
        text = (DATA / str(entry["file"])).read_text(encoding="ascii")
        if hashlib.sha256(text.encode("ascii")).hexdigest() != entry["sha256"]:
            raise AssertionError(
                f"recorded response {entry['file']} changed since the notebook was recorded"
            )
        headers = [(str(k), str(v)) for k, v in entry.get("headers") or []]
        return int(entry["status"]), headers, base64.b64decode(text)


def _requests_response(responses: Responses, request: Any) -> Any:
    requests = importlib.import_module("requests")
    structures = importlib.import_module("requests.structures")
    utils = importlib.import_module("requests.utils")
    status, headers, body = responses.answer(str(request.method), str(request.url))
    response = requests.Response()
    response.status_code = status
    response.reason = http.client.responses.get(status, "")
    response.headers = structures.CaseInsensitiveDict(headers)
    response.encoding = utils.get_encoding_from_headers(response.headers)
    response._content = body  # what requests keeps once it read the body
    response._content_consumed = True
    response.raw = io.BytesIO(body)
    response.url = request.url
    response.request = request
    return response


def _httpx_response(responses: Responses, request: Any) -> Any:
    httpx = importlib.import_module("httpx")
    status, headers, body = responses.answer(str(request.method), str(request.url))
    return httpx.Response(status, headers=headers, content=body, request=request)


class _Socket:
    """What ``http.client.HTTPResponse`` reads a response from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, *args: Any, **kwargs: Any) -> io.BytesIO:
        return io.BytesIO(self.data)


def _urllib_response(responses: Responses, req: Any) -> http.client.HTTPResponse:
    status, headers, body = responses.answer(str(req.get_method()), str(req.full_url))
    lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(body)}", "", ""]
    raw = "\r\n".join(lines).encode("iso-8859-1") + body
    response = http.client.HTTPResponse(_Socket(raw), method=str(req.get_method()))  # type: ignore[arg-type]
    response.begin()
    response.url = req.full_url  # as urllib's do_open sets them
    response.msg = response.reason  # type: ignore[assignment]
    return response


def install(
    monkeypatch: pytest.MonkeyPatch, entries: list[Mapping[str, Any]], cells: Collection[int]
) -> Responses:
    """Answer the test's HTTP requests with the recorded responses (see the module docstring)."""
    responses = Responses(entries, cells)
    urllib_request = importlib.import_module("urllib.request")
    monkeypatch.setattr(
        urllib_request.AbstractHTTPHandler,
        "do_open",
        lambda self, http_class, req, **kwargs: _urllib_response(responses, req),
    )
    if "requests" in responses.libraries and importlib.util.find_spec("requests"):
        adapters = importlib.import_module("requests.adapters")
        monkeypatch.setattr(
            adapters.HTTPAdapter,
            "send",
            lambda self, request, *args, **kwargs: _requests_response(responses, request),
        )
    if "httpx" in responses.libraries and importlib.util.find_spec("httpx"):
        httpx = importlib.import_module("httpx")
        monkeypatch.setattr(
            httpx.HTTPTransport,
            "handle_request",
            lambda self, request: _httpx_response(responses, request),
        )
    return responses
