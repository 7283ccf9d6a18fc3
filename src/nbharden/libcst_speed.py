"""Make LibCST's metadata resolution cheap to start, for analysing hundreds of small cell modules.

``BatchableCSTVisitor.get_visitors`` calls ``inspect.getmembers`` on every provider instance, for every resolve:
measured at 10-50 ms per cell, which was 80% of the analysis of a 180-cell notebook. The visitor methods are a
property of the class, so they are looked up once per class here and bound to the instance, which returns the same
mapping the original does. The same holds for the matcher-decorated methods of ``MatcherDecoratable*`` classes
(``install_matchers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libcst._batched_visitor import BatchableCSTVisitor

_NAMES: dict[type, tuple[str, ...]] = {}


def _visitor_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        found = []
        for name in dir(cls):
            if not (name.startswith("visit_") or name.startswith("leave_")):
                continue
            attr = getattr(cls, name, None)
            if (
                callable(attr)
                and not isinstance(attr, staticmethod | classmethod | type)
                and not getattr(attr, "_is_no_op", False)
            ):
                found.append(name)
        names = _NAMES[cls] = tuple(found)
    return names


def _get_visitors(self: BatchableCSTVisitor) -> Mapping[str, Any]:
    return {name: getattr(self, name) for name in _visitor_names(type(self))}


def install() -> None:
    """Replace ``BatchableCSTVisitor.get_visitors`` with the cached version (idempotent)."""
    BatchableCSTVisitor.get_visitors = _get_visitors  # type: ignore[method-assign]
    install_matchers()


# ``MatcherDecoratableTransformer.__init__`` (which ``AddImportsVisitor`` and its import gatherer inherit) walks
# ``dir(self)`` twice for methods decorated with matchers: about 15 ms per instance, two instances per
# ``add_imports``, which was a third of emitting a small notebook. Which methods carry matchers is a property of
# the class too; the first instance of each class finds their names the way LibCST does, later ones bind them.
_MATCHER_NAMES: dict[tuple[type, str], tuple[str, ...]] = {}


def _cached_gather(original: Any, attr: str) -> Any:
    from inspect import ismethod

    from libcst.matchers._visitors import is_property

    def gather(obj: object) -> Any:
        key = (type(obj), attr)
        names = _MATCHER_NAMES.get(key)
        if names is None:  # LibCST's own walk the first time: its checks of decorated methods run once
            found = original(obj)
            _MATCHER_NAMES[key] = tuple(
                name
                for name in dir(obj)
                if not is_property(obj, name)
                and ismethod(method := getattr(obj, name))
                and getattr(method, attr, [])
            )
            return found
        constructed: dict[Any, tuple[Any, ...]] = {}
        for name in names:  # dir() order, as LibCST's walk
            method = getattr(obj, name)
            for matcher in getattr(method, attr, []):
                constructed[matcher] = (*constructed.get(matcher, ()), method)
        return constructed

    gather.__wrapped__ = original  # type: ignore[attr-defined]
    return gather


def install_matchers() -> None:
    """Cache the matcher-decorated methods of ``MatcherDecoratable*`` classes per class (idempotent)."""
    from libcst.matchers import _decorators, _visitors

    for function, attr in (
        ("_gather_constructed_visit_funcs", _decorators.CONSTRUCTED_VISIT_MATCHER_ATTR),
        ("_gather_constructed_leave_funcs", _decorators.CONSTRUCTED_LEAVE_MATCHER_ATTR),
    ):
        current = getattr(_visitors, function)
        if not hasattr(current, "__wrapped__"):
            setattr(_visitors, function, _cached_gather(current, attr))
