"""Authentication of the nbharden server extension against a real Jupyter server over real HTTP.

* Every verb of every nbharden handler refuses no token, a wrong token (header or query), a forged
  cookie, a login cookie without the XSRF token (for verbs that change state) and a cross-origin
  ``Origin``, under the server's default ``allow_unauthenticated_access=True`` (where only the
  decorator protects a handler) and the strict ``False``. Positive controls show each refusal is
  the one being tested.
* A walk over every handler the running server has registered from nbharden checks each verb is
  ``@tornado.web.authenticated``: a new handler or verb without it fails the suite.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import tornado.routing
import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from labutil import Live, snapshot

from nbharden.lab import (
    _jupyter_labextension_paths,
    _jupyter_server_extension_points,
    handlers,
)

VERBS = ("get", "post", "put", "patch", "delete", "head", "options")

_AUTH_WRAPPER = tornado.web.authenticated(lambda self: None).__code__


def is_authenticated(method: Any) -> bool:
    """Whether ``method`` is wrapped by ``tornado.web.authenticated`` (whose wrapper copies the name
    and module of the original, but not its code)."""
    return getattr(method, "__code__", None) is _AUTH_WRAPPER


#: Verbs inherited from jupyter_server that are deliberately open: the CORS preflight answers
#: headers only, no data, and browsers send it without credentials (jupyter_server marks it
#: @allow_unauthenticated).
_OPEN_BY_DESIGN = {APIHandler.options}


def implemented_verbs(cls: type[tornado.web.RequestHandler]) -> list[str]:
    """The verbs ``cls`` answers other than tornado's 405 and the open-by-design preflight."""
    return [
        name
        for name in VERBS
        if getattr(cls, name) is not getattr(tornado.web.RequestHandler, name)
        and getattr(cls, name) not in _OPEN_BY_DESIGN
    ]


def unauthenticated_verbs(cls: type[tornado.web.RequestHandler]) -> list[str]:
    """The implemented verbs of ``cls`` that are not ``@tornado.web.authenticated``, or that are
    marked ``@allow_unauthenticated`` (jupyter_server's opt-out)."""
    return [
        name
        for name in implemented_verbs(cls)
        if not is_authenticated(getattr(cls, name))
        or getattr(getattr(cls, name), "__allow_unauthenticated", False)
    ]


def registered_handlers(app: tornado.web.Application) -> list[tuple[str, type]]:
    """(URL pattern, handler class) of every rule in the application's routers, walked
    recursively."""
    found: list[tuple[str, type]] = []

    def walk(router: Any) -> None:
        for rule in getattr(router, "rules", []):
            target = rule.target
            if isinstance(target, type) and issubclass(target, tornado.web.RequestHandler):
                matcher = rule.matcher
                pattern = (
                    matcher.regex.pattern
                    if isinstance(matcher, tornado.routing.PathMatches)
                    else repr(matcher)
                )
                found.append((pattern, target))
            else:
                walk(target)

    walk(app.default_router)
    return found


ENDPOINTS = [(route, verb) for route, cls in handlers.ROUTES for verb in implemented_verbs(cls)]


# --- the walk -------------------------------------------------------------------------------------


def test_every_verb_of_every_registered_nbharden_handler_is_authenticated(
    jp_serverapp: Any, jp_base_url: str
) -> None:
    ours = [
        (pattern, cls)
        for pattern, cls in registered_handlers(jp_serverapp.web_app)
        if cls.__module__.split(".")[0] == "nbharden"
    ]
    # Every nbharden handler the server knows is one of ROUTES (so it is in the request matrix
    # below), at the route ROUTES gives it.
    expected = {(url_path_join(jp_base_url, route) + "$", cls) for route, cls in handlers.ROUTES}
    assert set(ours) == expected
    for _, cls in ours:
        assert implemented_verbs(cls), f"{cls.__name__} answers no verb"
        assert unauthenticated_verbs(cls) == [], (
            f"{cls.__name__}: {unauthenticated_verbs(cls)} lack @tornado.web.authenticated"
        )
    assert sorted(ENDPOINTS) == sorted(
        [
            ("nbharden/convert", "post"),
            ("nbharden/rules", "get"),
            ("nbharden/status", "get"),
            ("nbharden/jobs", "post"),
            (f"nbharden/jobs/{JOB_ID}", "get"),
            (f"nbharden/jobs/{JOB_ID}", "delete"),
            (f"nbharden/jobs/{JOB_ID}/write", "post"),
            (f"nbharden/jobs/{JOB_ID}/file", "get"),
        ]
    )


def test_the_walk_finds_a_handler_without_the_decorator(jp_serverapp: Any) -> None:
    """The check above can fail: a bare verb, and one marked @allow_unauthenticated, are caught."""
    from jupyter_server.auth.decorator import allow_unauthenticated

    class Bare(handlers.ConvertHandler):
        async def get(self) -> None: ...

    class Opened(handlers.RulesHandler):
        @allow_unauthenticated
        @tornado.web.authenticated
        async def get(self) -> None: ...

    Bare.__module__ = Opened.__module__ = "nbharden.lab.extra"
    jp_serverapp.web_app.add_handlers(".*$", [("/nbharden-extra", Bare), ("/opened", Opened)])
    found = {cls for _, cls in registered_handlers(jp_serverapp.web_app)}
    assert {Bare, Opened} <= found
    assert unauthenticated_verbs(Bare) == ["get"]  # post is inherited, decorated
    assert unauthenticated_verbs(Opened) == ["get"]


def test_the_extension_is_discoverable() -> None:
    assert _jupyter_server_extension_points() == [{"module": "nbharden.lab"}]
    assert _jupyter_labextension_paths() == [{"src": "labextension", "dest": "nbharden"}]
    built = Path(handlers.__file__).parent / "labextension" / "package.json"
    assert json.loads(built.read_text())["name"] == "nbharden"
    config = Path(__file__).parents[2] / "jupyter-config" / "server-config" / "nbharden.json"
    assert json.loads(config.read_text()) == {
        "ServerApp": {"jpserver_extensions": {"nbharden.lab": True}}
    }


# --- authentication matrix ------------------------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["server-default", "strict"])
def jp_server_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    # True is jupyter_server's default: then only @tornado.web.authenticated protects a handler.
    return {
        "ServerApp": {
            "jpserver_extensions": {"nbharden.lab": True},
            "allow_unauthenticated_access": request.param,
        }
    }


class Credentials:
    """A login cookie and an XSRF token obtained from the live server, as a browser holds them."""

    def __init__(self, login_cookie: str, xsrf: str) -> None:
        self.login_cookie = login_cookie  # "name=value"
        self.xsrf = xsrf

    def headers(self, *, xsrf: bool, origin: str | None = None) -> dict[str, str]:
        cookies = [self.login_cookie, f"_xsrf={self.xsrf}"]
        headers = {"Cookie": "; ".join(cookies)}
        if xsrf:
            headers["X-XSRFToken"] = self.xsrf
        if origin is not None:
            headers["Origin"] = origin
        return headers


def _cookie(resp: Any, prefix: str) -> str:
    for header in resp.headers.get_list("Set-Cookie"):
        pair = header.split(";", 1)[0]
        if pair.startswith(prefix):
            return pair
    raise AssertionError(f"no {prefix} cookie in {resp.headers.get_list('Set-Cookie')}")


async def credentials(live: Live) -> Credentials:
    # A token request makes the server set its login cookie; the login page sets the XSRF cookie.
    resp = await live.fetch("api/status")
    assert resp.code == 200
    login = _cookie(resp, "username-")
    page = await live.fetch("login", token=False)
    xsrf = _cookie(page, "_xsrf=").split("=", 1)[1]
    return Credentials(login, xsrf)


#: The pattern of a job id in the jobs' routes.
JOB_ID = "([0-9a-f]{32})"


def request_for(route: str, verb: str, notebook: str, job: str) -> tuple[str, str, Any]:
    """(method, URL, body) of a request that would change or reveal something if it got through: a write, a new
    job, a cancel, a file's text. ``job``: the id of a job (a real one for the positive controls)."""
    url = route.replace(JOB_ID, job)
    if route.endswith("/file"):
        url += "?path=.nbharden.json"
    elif route == "nbharden/status":
        url += f"?path={notebook}"
    if verb != "post":
        return verb.upper(), url, None
    if route == "nbharden/jobs":
        return "POST", url, {"path": notebook, "kind": "review"}
    if route.endswith("/write"):
        return "POST", url, {}
    return "POST", url, {"path": notebook, "write": True}


async def finished_job(live: Live, notebook: str) -> str:
    """The id of a static review job of ``notebook``, once it is done."""
    resp = await live.fetch("nbharden/jobs", method="POST", body={"path": notebook})
    assert resp.code == 202, resp.body
    job = json.loads(resp.body)["id"]
    for _ in range(600):
        state = json.loads((await live.fetch(f"nbharden/jobs/{job}")).body)["state"]
        if state != "running":
            assert state == "done"
            return str(job)
        await asyncio.sleep(0.1)
    raise AssertionError("the review job did not finish in 60 s")


def effects(root: Path) -> dict[str, bytes | str]:
    return snapshot(root)


@pytest.mark.parametrize(("route", "verb"), ENDPOINTS)
async def test_every_endpoint_refuses_requests_without_valid_credentials(
    live: Live, jp_root_dir: Path, notebook: str, route: str, verb: str
) -> None:
    method, url, body = request_for(route, verb, notebook, "0" * 32)
    creds = await credentials(live)
    before = effects(jp_root_dir)
    refused: dict[str, dict[str, Any]] = {
        "no token": {"token": False},
        "wrong token": {"token": False, "headers": {"Authorization": "token not-the-token"}},
        "wrong token in the query": {"token": False, "query": "token=not-the-token"},
        "empty token": {"token": False, "headers": {"Authorization": "token "}},
        "forged login cookie": {
            "token": False,
            "headers": {"Cookie": creds.login_cookie.split("=", 1)[0] + "=2|1:0|forged"},
        },
        "cross-origin Origin with cookie and XSRF": {
            "token": False,
            "headers": creds.headers(xsrf=True, origin="http://evil.example"),
        },
        "cross-origin Origin, other port": {
            "token": False,
            "headers": creds.headers(xsrf=True, origin="http://127.0.0.1:1"),
        },
    }
    if method not in ("GET", "HEAD"):
        # XSRF protects the verbs that change state; GET answers read-only data.
        refused["login cookie without XSRF token"] = {
            "token": False,
            "headers": creds.headers(xsrf=False),
        }
        refused["login cookie with a mismatched XSRF token"] = {
            "token": False,
            "headers": {**creds.headers(xsrf=False), "X-XSRFToken": "2|00|00|1"},
        }
    problems = []
    for case, how in refused.items():
        path = url + (("&" if "?" in url else "?") + how["query"] if "query" in how else "")
        resp = await live.fetch(
            path, method=method, body=body, headers=how.get("headers"), token=how["token"]
        )
        # jupyter_server answers 403 for bad credentials and 404 for a refused cross-origin
        # request (so as not to reveal the endpoint).
        if resp.code not in (403, 404):
            problems.append(f"{case}: {resp.code} {resp.body[:200]!r}")
        if b"NBH" in (resp.body or b"") or b"sales_prod" in (resp.body or b""):
            problems.append(f"{case}: the answer leaks data: {resp.body[:200]!r}")
        if effects(jp_root_dir) != before:
            problems.append(f"{case}: the server root changed")
    assert not problems, "\n".join(problems)

    # Positive controls: the same credentials do work, so the refusals above are the checks under
    # test, not a broken cookie or a wrong URL.
    if JOB_ID in route:
        method, url, body = request_for(route, verb, notebook, await finished_job(live, notebook))
    ok = (202,) if route == "nbharden/jobs" else (200,)
    same_origin = live.origin
    resp = await live.fetch(
        url,
        method=method,
        body=body,
        headers=creds.headers(xsrf=True, origin=same_origin),
        token=False,
    )
    assert resp.code in ok, resp.body
    if method == "GET":
        resp = await live.fetch(url, headers=creds.headers(xsrf=False), token=False)
        assert resp.code == 200, "a GET with the login cookie needs no XSRF token"
    resp = await live.fetch(url, method=method, body=body)
    assert resp.code in ok, resp.body


@pytest.mark.parametrize(("route", "verb"), ENDPOINTS)
async def test_a_cross_origin_preflight_is_not_granted(
    live: Live, route: str, verb: str, notebook: str
) -> None:
    resp = await live.fetch(
        request_for(route, verb, notebook, "0" * 32)[1],
        method="OPTIONS",
        token=False,
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": verb.upper(),
            "Access-Control-Request-Headers": "authorization, content-type, x-xsrftoken",
        },
    )
    assert resp.code in (200, 204, 403, 404)
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Credentials" not in resp.headers
    assert not resp.body
