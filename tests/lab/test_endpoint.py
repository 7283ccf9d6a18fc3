"""The nbharden server extension, tested against a real Jupyter server (pytest-jupyter's
``jp_fetch``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.web
from jupyter_server.base.handlers import APIHandler

from nbharden.lab import _jupyter_server_extension_points, handlers

Fetch = Callable[..., Awaitable[tornado.httpclient.HTTPResponse]]


async def post(jp_fetch: Fetch, body: Any, *, raw: bool = False) -> tuple[int, dict[str, Any]]:
    """POST /nbharden/convert; returns (status, JSON body) without raising on 4xx/5xx."""
    data = body if raw else json.dumps(body)
    resp = await jp_fetch("nbharden", "convert", method="POST", body=data, raise_error=False)
    return resp.code, json.loads(resp.body or b"{}")


# --- success --------------------------------------------------------------------------------------


async def test_convert_returns_the_change_set_and_writes_nothing(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    code, data = await post(jp_fetch, {"path": notebook})
    assert code == 200, data
    assert data["notebook"] == "work/sales.ipynb"
    assert data["out"] == "work/sales_prod"
    assert data["written"] is None
    paths = {f["path"]: f for f in data["files"]}
    assert ".nbharden.json" in paths
    py_files = [p for p in paths if p.endswith(".py")]
    assert py_files, paths
    assert {f["status"] for f in data["files"]} == {"new"}
    for path in [*py_files, ".nbharden.json"]:
        diff = paths[path]["diff"]
        assert diff.startswith("--- "), path
        assert "\n+" in diff, path
    # The findings carry cell and line, and name the notebook by its path under the root.
    assert data["findings"], "the fixture uses unseeded randomness and print: expected findings"
    for finding in data["findings"]:
        assert finding["path"] == "work/sales.ipynb"
        assert finding["code"].startswith("NBH")
        assert finding["cell"] is None or finding["cell"] >= 1
    assert not (jp_root_dir / "work" / "sales_prod").exists()


async def test_write_creates_the_files_through_the_contents_manager(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    code, data = await post(jp_fetch, {"path": notebook, "write": True})
    assert code == 200, data
    out = jp_root_dir / "work" / "sales_prod"
    assert sorted(data["written"]) == sorted(f["path"] for f in data["files"])
    for f in data["files"]:
        assert (out / f["path"]).is_file(), f["path"]
    manifest = json.loads((out / ".nbharden.json").read_text())
    assert set(manifest["files"]) == {f["path"] for f in data["files"]} - {".nbharden.json"}
    # A second conversion finds every file unchanged (the manifest was written and matches).
    code, again = await post(jp_fetch, {"path": notebook})
    assert code == 200, again
    assert {f["status"] for f in again["files"]} == {"unchanged"}


async def test_write_refuses_a_hand_edited_file_unless_forced(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    code, data = await post(jp_fetch, {"path": notebook, "write": True})
    assert code == 200, data
    out = jp_root_dir / "work" / "sales_prod"
    edited = next(f["path"] for f in data["files"] if f["path"].endswith(".py"))
    (out / edited).write_text("# my own edit\n")
    code, err = await post(jp_fetch, {"path": notebook, "write": True})
    assert code == 409, err
    assert err["kind"] == "edited" and edited in err["paths"]
    assert (out / edited).read_text() == "# my own edit\n"
    code, data = await post(jp_fetch, {"path": notebook, "write": True, "force": True})
    assert code == 200, data
    assert (out / edited).read_text() != "# my own edit\n"


async def test_custom_output_folder_inside_the_root(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    code, data = await post(jp_fetch, {"path": notebook, "out": "packages/sales", "write": True})
    assert code == 200, data
    assert data["out"] == "packages/sales"
    assert (jp_root_dir / "packages" / "sales" / ".nbharden.json").is_file()


async def test_rules_lists_every_rule(jp_fetch: Fetch) -> None:
    from nbharden.rules import RULES

    resp = await jp_fetch("nbharden", "rules", method="GET")
    rules = json.loads(resp.body)["rules"]
    assert [r["code"] for r in rules] == sorted(RULES)
    assert all(r["summary"] and r["severity"] and r["fix"] for r in rules)


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "JSON object"),
        (b'{"write": true}', "path"),
        (b'{"path": 3}', "path"),
        (b'{"path": "a.ipynb", "write": "yes"}', "write"),
        (b'{"path": "a.ipynb", "colour": "red"}', "colour"),
    ],
)
async def test_bad_body_is_a_400_with_a_message(
    jp_fetch: Fetch, notebook: str, body: bytes, needle: str
) -> None:
    code, err = await post(jp_fetch, body, raw=True)
    assert code == 400
    assert needle in err["message"]


async def test_missing_notebook_is_a_404(jp_fetch: Fetch, notebook: str) -> None:
    code, err = await post(jp_fetch, {"path": "work/nope.ipynb"})
    assert code == 404
    assert "work/nope.ipynb" in err["message"]


async def test_not_a_notebook_is_a_400(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    (jp_root_dir / "notes.txt").write_text("hello")
    code, err = await post(jp_fetch, {"path": "notes.txt"})
    assert code == 400
    assert ".ipynb" in err["message"]


async def test_broken_notebook_is_a_400_naming_the_file(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    (jp_root_dir / "broken.ipynb").write_text('{"cells": [')
    code, err = await post(jp_fetch, {"path": "broken.ipynb"})
    assert code == 400, err
    assert err["kind"] == "input"
    # The message names the notebook by its path under the root, never the server's absolute path.
    assert err["message"].startswith("broken.ipynb")
    assert str(jp_root_dir) not in err["message"]


@pytest.mark.parametrize(
    "path", ["../outside.ipynb", "/../outside.ipynb", "work/../../outside.ipynb"]
)
async def test_path_outside_the_root_is_refused(
    jp_fetch: Fetch, jp_root_dir: Path, notebook: str, path: str
) -> None:
    outside = jp_root_dir.parent / "outside.ipynb"
    outside.write_text((jp_root_dir / notebook).read_text())
    code, err = await post(jp_fetch, {"path": path})
    assert code == 403, err
    assert "outside the server root" in err["message"]


async def test_sibling_folder_with_the_root_as_prefix_is_refused(
    jp_fetch: Fetch, jp_root_dir: Path, notebook: str
) -> None:
    # /root/nb vs /root/nb-evil: a startswith() check would let this through (RELIABILITY.md).
    evil = jp_root_dir.parent / (jp_root_dir.name + "-evil")
    evil.mkdir()
    (evil / "x.ipynb").write_text((jp_root_dir / notebook).read_text())
    code, err = await post(jp_fetch, {"path": f"../{evil.name}/x.ipynb"})
    assert code == 403, err


async def test_link_leaving_the_root_is_refused(
    jp_fetch: Fetch, jp_root_dir: Path, notebook: str
) -> None:
    outside = jp_root_dir.parent / "elsewhere"
    outside.mkdir()
    (outside / "x.ipynb").write_text((jp_root_dir / notebook).read_text())
    (jp_root_dir / "link").symlink_to(outside)
    code, err = await post(jp_fetch, {"path": "link/x.ipynb"})
    assert code == 403, err


async def test_output_folder_outside_the_root_is_refused(
    jp_fetch: Fetch, jp_root_dir: Path, notebook: str
) -> None:
    code, err = await post(jp_fetch, {"path": notebook, "out": "../escaped", "write": True})
    assert code == 403, err
    assert not (jp_root_dir.parent / "escaped").exists()


async def test_hidden_notebook_is_refused(
    jp_fetch: Fetch, jp_root_dir: Path, notebook: str
) -> None:
    (jp_root_dir / ".secret").mkdir()
    (jp_root_dir / ".secret" / "x.ipynb").write_text((jp_root_dir / notebook).read_text())
    code, err = await post(jp_fetch, {"path": ".secret/x.ipynb"})
    assert code == 403, err
    assert "hidden" in err["message"]


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "route"), [("POST", "convert"), ("GET", "rules")])
async def test_no_token_is_refused(
    http_server_client: Any, jp_base_url: str, notebook: str, method: str, route: str
) -> None:
    body = json.dumps({"path": notebook, "write": True}) if method == "POST" else None
    resp = await http_server_client.fetch(
        f"{jp_base_url}nbharden/{route}", method=method, body=body, raise_error=False
    )
    assert resp.code == 403
    assert b"sales_prod" not in resp.body


async def test_wrong_token_is_refused(
    http_server_client: Any, jp_base_url: str, notebook: str, jp_root_dir: Path
) -> None:
    resp = await http_server_client.fetch(
        f"{jp_base_url}nbharden/convert",
        method="POST",
        body=json.dumps({"path": notebook, "write": True}),
        headers={"Authorization": "token not-the-token"},
        raise_error=False,
    )
    assert resp.code == 403
    assert not (jp_root_dir / "work" / "sales_prod").exists()


_AUTH_WRAPPER = tornado.web.authenticated(lambda self: None).__code__


def is_authenticated(method: Any) -> bool:
    """Whether ``method`` is wrapped by ``tornado.web.authenticated`` (whose wrapper copies the name
    and module of the original, but not its code)."""
    return getattr(method, "__code__", None) is _AUTH_WRAPPER


#: Verbs inherited from jupyter_server that are deliberately open: the CORS preflight answers
#: headers
#: only, no data, and browsers send it without credentials (jupyter_server marks it
#: @allow_unauthenticated).
_OPEN_BY_DESIGN = {APIHandler.options}


def test_every_verb_of_every_handler_is_authenticated() -> None:
    verbs = ("get", "post", "put", "patch", "delete", "head", "options")
    ours = []
    for _, cls in handlers.ROUTES:
        for name in verbs:
            method = getattr(cls, name)
            if method is getattr(tornado.web.RequestHandler, name):
                continue  # not implemented: tornado answers 405
            if method in _OPEN_BY_DESIGN:
                continue
            ours.append(f"{cls.__name__}.{name}")
            assert is_authenticated(method), (
                f"{cls.__name__}.{name} lacks @tornado.web.authenticated"
            )
    assert ours == ["ConvertHandler.post", "RulesHandler.get"]

    # The check itself tells a bare verb from a decorated one.
    class Bare(tornado.web.RequestHandler):
        async def get(self) -> None: ...

    assert not is_authenticated(Bare.get)


def test_the_extension_is_discoverable() -> None:
    assert _jupyter_server_extension_points() == [{"module": "nbharden.lab"}]
    config = Path(__file__).parents[2] / "jupyter-config" / "server-config" / "nbharden.json"
    assert json.loads(config.read_text()) == {
        "ServerApp": {"jpserver_extensions": {"nbharden.lab": True}}
    }


# --- concurrency ----------------------------------------------------------------------------------


class Spans:
    """Records when each conversion runs (real conversions, slowed down so overlaps would show)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
        self.spans: list[tuple[str, float, float, str]] = []
        self.lock = threading.Lock()
        real = handlers.api.convert

        def slow_convert(path: Path, settings: Any = None, *args: Any) -> Any:
            start = time.monotonic()
            time.sleep(delay)
            result = real(path, settings, *args)
            with self.lock:
                self.spans.append(
                    (Path(path).name, start, time.monotonic(), threading.current_thread().name)
                )
            return result

        monkeypatch.setattr(handlers.api, "convert", slow_convert)

    def overlaps(self, a: str, b: str) -> bool:
        sa = [s for s in self.spans if s[0] == a]
        sb = [s for s in self.spans if s[0] == b]
        return any(x[1] < y[2] and y[1] < x[2] for x in sa for y in sb if x is not y)


async def test_concurrent_writes_on_one_notebook_wait_for_each_other(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = Spans(monkeypatch, delay=0.2)
    results = await asyncio.gather(
        *(post(jp_fetch, {"path": notebook, "write": True}) for _ in range(3))
    )
    assert [code for code, _ in results] == [200] * 3, results
    assert len(spans.spans) == 3
    ordered = sorted(spans.spans, key=lambda s: s[1])
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert after[1] >= before[2], "two conversions of one notebook overlapped"
    # Exactly one request wrote new files; the later ones found them unchanged, nothing is edited.
    written = sorted(len(data["written"]) for _, data in results)
    assert written[:2] == [0, 0] and written[2] > 0
    code, final = await post(jp_fetch, {"path": notebook})
    assert {f["status"] for f in final["files"]} == {"unchanged"}


async def test_different_notebooks_convert_in_parallel_off_the_event_loop(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (jp_root_dir / "work" / "other.ipynb").write_text((jp_root_dir / notebook).read_text())
    spans = Spans(monkeypatch, delay=1.0)
    started = time.monotonic()
    both = asyncio.gather(
        post(jp_fetch, {"path": notebook}), post(jp_fetch, {"path": "work/other.ipynb"})
    )
    await asyncio.sleep(0.3)
    # The event loop still answers while both conversions run in worker threads.
    t0 = time.monotonic()
    resp = await jp_fetch("nbharden", "rules", method="GET")
    assert resp.code == 200
    assert time.monotonic() - t0 < 0.5
    results = await both
    assert [code for code, _ in results] == [200, 200], results
    assert spans.overlaps("sales.ipynb", "other.ipynb")
    assert all(s[3] != threading.main_thread().name for s in spans.spans)
    assert time.monotonic() - started < 1.9 + 2 * 5  # parallel, not 2 x delay + work in sequence
