"""Secrets the notebook's run produces, found by value: the recorder never stores, logs or shows them.

Loaded into the notebook's kernel by the recorder (by path, like ``_values.py``; standard library only).
A secret is:

- a hard-coded one the analysis found (its value handed over by nbharden);
- the value of an environment variable that the notebook's own code read (``os.environ[...]``,
  ``os.getenv``, ``os.environ.get``: a read from a frame whose globals are the notebook's), or an entry
  of a ``.env`` file parsed by python-dotenv (``load_dotenv``, ``dotenv_values``, pydantic-settings),
  when the name says it is a credential or the value looks like one (``secret_shapes``);
- any text that has the shape of a credential (a token, a key, the password of a URL) where it is
  met: a recorded value, an error message, printed output.

``holds`` tells whether a recorded value's text holds one; ``scrub`` replaces them in text that
leaves the kernel (errors, printed output, displayed values) by ``<redacted>``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from types import FrameType, ModuleType
from typing import Any

REDACTED = "<redacted>"
#: How far up the stack a read of the environment is looked at for the notebook's own frame
#: (``os.getenv`` -> ``Mapping.get`` -> ``__getitem__``).
_DEPTH = 6
#: Texts are searched for shapes in windows (``secret_hits`` ignores longer texts).
_WINDOW = 100_000
_OVERLAP = 2_000
#: ``"name": "value"`` inside JSON text: a value under a secret-looking key.
_JSON_PAIR = re.compile(r'"([^"\\]{1,64})":\s?"((?:[^"\\]|\\.){4,512})"')
_B64 = re.compile(r'"b64": ?"([A-Za-z0-9+/=]*)"')


class RuntimeSecrets:
    """The secret values known so far in this kernel, and where they came from (never the value)."""

    def __init__(self, shapes: ModuleType, literal: Iterable[str] = ()) -> None:
        self.shapes = shapes
        self.values: dict[str, str] = {}  # value -> source ("hard-coded", "environment variable X")
        self.forms: list[str] = []  # the values and their JSON-escaped forms, longest first
        for value in literal:
            self._add(value, "a hard-coded secret")

    # --- what is secret -------------------------------------------------------------------------
    def _add(self, value: str, source: str) -> None:
        if len(value) < 4 or value in self.values:
            return
        self.values[value] = source
        forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
        self.forms = sorted({*self.forms, *forms}, key=len, reverse=True)

    def remember(self, name: str, value: object, source: str) -> None:
        """``value``, bound to ``name`` (an environment variable, a ``.env`` key), if it is a
        credential: by its name, its look, or a credential inside it (a URL's password)."""
        if not isinstance(value, str) or len(value) < 4:
            return
        shapes = self.shapes
        for hit in shapes.secret_hits(name, value):
            self._add(value[hit.start : hit.end], source)
        if shapes.is_secret_name(name) or shapes.plausible_secret(value):
            self._add(value, source)

    # --- finding them ---------------------------------------------------------------------------
    def _shape(self, text: str) -> str | None:
        """The kind of the first credential-shaped part of ``text``, or None."""
        for start, end in _windows(text):
            hits = self.shapes.secret_hits(None, text[start:end])
            if hits:
                return str(hits[0].kind)
        for m in _JSON_PAIR.finditer(text):
            try:
                value = json.loads(f'"{m.group(2)}"')
            except ValueError:
                continue
            if self.shapes.is_secret_name(m.group(1)) and self.shapes.plausible_secret(value):
                return "named"
        return None

    def holds(self, text: str, name: str | None = None) -> str | None:
        """Why ``text`` (a recorded value as JSON, bound to ``name``) must not be stored, or None."""
        for form in self.forms:
            if form in text:
                return self.values.get(form) or "a secret"
        for m in _B64.finditer(text):  # bytes inside the JSON: look at the bytes themselves
            raw = base64.b64decode(m.group(1)).decode("latin-1")
            if any(v in raw for v in self.values) or self._shape(raw):
                return "a secret in bytes"
        kind = self._shape(text)
        if kind is None and name is not None and len(text) < 10_000:
            value = _plain_string(text)
            if value is not None and self.shapes.secret_hits(name, value):
                kind = "named"
        return None if kind is None else f"text of the shape of a credential ({kind})"

    def holds_bytes(self, raw: bytes) -> str | None:
        """Why ``raw`` (a pickle) must not be stored, or None."""
        text = raw.decode("latin-1")
        if any(v.encode("utf-8").decode("latin-1") in text for v in self.values):
            return "a secret"
        kind = self._shape(text)
        return None if kind is None else f"text of the shape of a credential ({kind})"

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and every credential-shaped part replaced."""
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        if len(text) > 4 * _WINDOW:
            return text
        for hit in reversed(self.shapes.secret_hits(None, text)):
            text = text[: hit.start] + REDACTED + text[hit.end :]
        return text

    # --- watching the run -----------------------------------------------------------------------
    def watch_environ(self, own: Callable[[FrameType], bool]) -> None:
        """Remember every environment variable a frame of the notebook (``own``) reads."""
        environ = os.environ
        cls = type(environ)
        original = cls.__getitem__
        secrets = self

        def getitem(self: Any, key: str) -> str:
            value: str = original(self, key)
            if self is environ:
                frame = sys._getframe(1)
                for _ in range(_DEPTH):
                    if frame is None:
                        break
                    if own(frame):
                        secrets.remember(str(key), value, f"the environment variable {key}")
                        break
                    frame = frame.f_back  # type: ignore[assignment]
            return value

        cls.__getitem__ = getitem  # type: ignore[method-assign]

    def watch_dotenv(self) -> None:
        """Remember the entries of every ``.env`` file python-dotenv parses, if it is installed."""
        import importlib.util

        if importlib.util.find_spec("dotenv") is None:
            return
        import dotenv.main

        original = dotenv.main.DotEnv.dict
        secrets = self

        def entries(self: Any) -> Any:
            found = original(self)
            for key, value in dict(found).items():
                secrets.remember(str(key), value, f"the .env entry {key}")
            return found

        dotenv.main.DotEnv.dict = entries  # type: ignore[method-assign]

    def guard_outputs(self, shell: Any) -> None:
        """Scrub what leaves the kernel: error messages and tracebacks, printed text, displayed
        values (the executed notebook, the error nbharden reports)."""
        show = shell._showtraceback

        def showtraceback(etype: Any, evalue: Any, stb: list[str]) -> Any:
            return show(etype, self.scrub(str(evalue)), [self.scrub(line) for line in stb])

        shell._showtraceback = showtraceback
        for stream in (sys.stdout, sys.stderr):
            write = getattr(stream, "write", None)
            if write is not None:
                stream.write = _scrubbing(write, self.scrub)  # type: ignore[method-assign]
        hook = getattr(shell.displayhook, "write_format_data", None)
        if hook is not None:

            def write_format_data(data: dict[str, Any], md: Any = None) -> Any:
                return hook(_scrub_mime(data, self.scrub), md)

            shell.displayhook.write_format_data = write_format_data
        publish = shell.display_pub.publish

        def published(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            return publish(_scrub_mime(data, self.scrub), *args, **kwargs)

        shell.display_pub.publish = published


#: Every credential shape starts with, or sits next to, one of these: the text around them is
#: searched (a frame of numbers holds none, and is not searched at all).
_ANCHORS = (
    *("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "ghp_", "gho_", "ghu_"),
    *("ghs_", "ghr_", "github_pat_", "glpat-", "hooks.slack.com", "xox", "k_live_", "k_test_"),
    *("AIza", "SG.", "hf_", "sk-", "eyJ", "-----BEGIN", "://", "Bearer", "Basic", "Token"),
    *("token", "Digest", "Bot", "AccountKey=", "="),
)
#: More anchors than this: the whole text is searched.
_MAX_ANCHORS = 5_000


def _windows(text: str) -> list[tuple[int, int]]:
    """The parts of ``text`` (start, end) around the anchors of credential shapes, merged."""
    spans: list[tuple[int, int]] = []
    for anchor in _ANCHORS:
        at = text.find(anchor)
        while at >= 0:
            spans.append((max(0, at - _OVERLAP), at + _OVERLAP))
            if len(spans) > _MAX_ANCHORS:
                return [(i, i + _WINDOW) for i in range(0, len(text), _WINDOW - _OVERLAP)]
            at = text.find(anchor, at + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] and end - merged[-1][0] <= _WINDOW:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _scrubbing(write: Callable[[str], Any], scrub: Callable[[str], str]) -> Callable[[str], Any]:
    def scrubbed(text: str) -> Any:
        return write(scrub(text) if isinstance(text, str) else text)

    return scrubbed


def _scrub_mime(data: dict[str, Any], scrub: Callable[[str], str]) -> dict[str, Any]:
    return {k: scrub(v) if isinstance(v, str) else v for k, v in data.items()}


def _plain_string(text: str) -> str | None:
    """The value of a recorded value's JSON text when it is a plain string."""
    try:
        value = json.loads(text).get("value")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
