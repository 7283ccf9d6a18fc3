"""The HTTP responses of a recorded run, kept for the generated tests to serve back (issue 13).

Loaded into the kernel by the recorder (``_recorder.py``), never imported by nbharden; standard library
only. ``watch(record)`` hooks the three ways a notebook reads a URL, each when its library is imported
(a finder on ``sys.meta_path``: an import in the same cell as the call is seen):

- requests: ``HTTPAdapter.send`` (not for ``stream=True``: its body belongs to the caller's reads);
- httpx: ``Client.send`` (not for ``stream=True``);
- urllib: ``AbstractHTTPHandler.do_open``, which ``urlopen`` and pandas' ``read_*`` on a URL go through.

Each response is handed to ``record(library, method, url, status, headers, body)`` and reaches the notebook
unchanged (a urllib response is read whole and given a buffer holding the same bytes). The generated tests'
``_http_replay.py`` answers the same method and URL at the same place of each library.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import io
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

#: (library, method, url, status, headers, body) of one response.
Record = Callable[[str, str, str, int, list[tuple[str, str]], bytes], None]

#: The headers kept: those that tell the client how to read the body or where to go next (not the
#: date, cookies or credentials, which would make two recordings differ or leak).
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "content-encoding",
        "content-language",
        "content-disposition",
        "location",
        "link",
    }
)
#: Bodies longer than this (by Content-Length) are not read for the recording.
MAX_BODY = 64 * 1024 * 1024
_MARK = "_nbharden_http"


def headers(items: Any, decoded: bool) -> list[tuple[str, str]]:
    """The headers worth keeping; ``decoded``: the body kept is the decoded one (no Content-Encoding)."""
    kept = KEPT_HEADERS - ({"content-encoding"} if decoded else frozenset())
    return [(str(k), str(v)) for k, v in items if str(k).lower() in kept]


def _too_long(found: Any) -> bool:
    try:
        return int(found.get("content-length") or 0) > MAX_BODY
    except (TypeError, ValueError):
        return False


def _hook_requests(module: ModuleType, record: Record) -> None:
    adapter = module.HTTPAdapter
    original = adapter.send
    if getattr(original, _MARK, False):
        return

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, request, *args, **kwargs)
        stream = kwargs.get("stream", args[0] if args else False)
        if not stream and not _too_long(response.headers):
            found = headers(response.headers.items(), decoded=True)
            record(
                "requests",
                request.method,
                request.url,
                response.status_code,
                found,
                response.content,
            )
        return response

    setattr(send, _MARK, True)
    adapter.send = send


def _hook_httpx(module: ModuleType, record: Record) -> None:
    client = module.Client
    original = client.send
    if getattr(original, _MARK, False):
        return

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, request, *args, **kwargs)
        if not kwargs.get("stream", False):
            found = headers(response.headers.multi_items(), decoded=True)
            url = str(request.url)
            record("httpx", request.method, url, response.status_code, found, response.content)
        return response

    setattr(send, _MARK, True)
    client.send = send


def _hook_urllib(module: ModuleType, record: Record) -> None:
    handler = module.AbstractHTTPHandler
    original = handler.do_open
    if getattr(original, _MARK, False):
        return

    def do_open(self: Any, http_class: Any, req: Any, **kwargs: Any) -> Any:
        response = original(self, http_class, req, **kwargs)
        if _too_long(response.headers) or not hasattr(response, "fp"):
            return response
        body = response.read()
        # the same bytes for the notebook's own reads: http.client reads fp up to length
        response.fp, response.length, response.chunked = io.BytesIO(body), len(body), False
        found = headers(response.headers.items(), decoded=False)
        record("urllib", req.get_method(), req.full_url, response.status, found, body)
        return response

    setattr(do_open, _MARK, True)
    handler.do_open = do_open


#: Module -> the hook that patches it once it is imported.
HOOKS: dict[str, Callable[[ModuleType, Record], None]] = {
    "requests.adapters": _hook_requests,
    "httpx._client": _hook_httpx,
    "urllib.request": _hook_urllib,
}


class _Loader(importlib.abc.Loader):
    """A module's own loader, then the hook."""

    def __init__(self, loader: Any, hook: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._hook = hook

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        created: ModuleType | None = self._loader.create_module(spec)
        return created

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._hook(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of a hooked module that the other finders find."""

    def __init__(self, hooks: dict[str, Callable[[ModuleType], None]]) -> None:
        self.hooks = hooks

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        hook = self.hooks.get(fullname)
        if hook is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, hook)
                return spec
        return None


def watch(record: Record, on_error: Callable[[BaseException], None]) -> None:
    """Hand every HTTP response of the notebook to ``record`` (see the module docstring). A failure of
    ``record`` or of a hook goes to ``on_error``, never to the notebook."""

    def guarded(*args: Any) -> None:
        try:
            record(*args)
        except Exception as exc:  # noqa: BLE001 - recording must never break the notebook
            on_error(exc)

    def hooked(hook: Callable[[ModuleType, Record], None]) -> Callable[[ModuleType], None]:
        def run(module: ModuleType) -> None:
            try:
                hook(module, guarded)
            except Exception as exc:  # noqa: BLE001
                on_error(exc)

        return run

    hooks = {name: hooked(hook) for name, hook in HOOKS.items()}
    for name, run in hooks.items():
        if name in sys.modules:
            run(sys.modules[name])
    sys.meta_path.insert(0, _Finder(hooks))
