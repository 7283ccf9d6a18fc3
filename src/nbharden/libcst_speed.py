"""Make LibCST's visits cheap, for analysing hundreds of small cell modules. Two replacements, each giving what
LibCST's own code gives (tests/test_libcst_speed.py compares them):

``BatchableCSTVisitor.get_visitors`` calls ``inspect.getmembers`` on every provider instance, for every resolve:
measured at 10-50 ms per cell, which was 80% of the analysis of a 180-cell notebook. The visitor methods are a
property of the class, so they are looked up once per class here and bound to the instance, which returns the same
mapping the original does.

``CSTNode.visit`` with a read-only ``CSTVisitor`` rebuilds every node it passes (``_visit_and_replace_children``
constructs and validates a copy) and then returns the original: about half the time of a visit, and LibCST's
scope analysis, every read-only visitor of nbharden and the batched metadata visitors are such visits. ``visit``
here walks the same children in the same order, calling ``on_visit`` and ``on_leave`` (and, for a visitor
with per-attribute hooks such as LibCST's ``ScopeVisitor``, ``on_visit_attribute`` and ``on_leave_attribute``)
as LibCST does, and returns the node; a transformer gets LibCST's own visit.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Mapping
from typing import Any

from libcst import CSTNode, CSTVisitor
from libcst._batched_visitor import BatchableCSTVisitor, _BatchedCSTVisitor

_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
#: per class, the fields LibCST visits by name -> whether with a sequence helper (``visit_sequence``...)
_NAMED_FIELDS: dict[type, dict[str, bool]] = {}
_SOURCE_MISSING: set[type] = set()


class SubclassOf(dict[type, bool]):
    """``isinstance(value, classes)`` as ``test[type(value)]``, remembered per type. LibCST's node classes are
    ABCs: ``isinstance`` with one of them runs ``ABCMeta.__instancecheck__``, Python code, on every call (about
    150 ns, 7x a dictionary lookup); the walks below make millions of such tests on a large notebook."""

    def __init__(self, classes: type | tuple[type, ...]) -> None:
        super().__init__()
        self.classes = classes

    def __missing__(self, cls: type) -> bool:
        found = self[cls] = issubclass(cls, self.classes)
        return found


#: ``IS_NODE[type(value)]``: whether ``value`` is a LibCST node
IS_NODE = SubclassOf(CSTNode)
_SEQUENCE_HELPERS = frozenset(
    {"visit_sequence", "visit_iterable", "visit_body_sequence", "visit_body_iterable"}
)


def child_fields(cls: type) -> tuple[str, ...]:
    """The fields of a LibCST node class in the order LibCST visits them (source order), read once per class
    from its ``_visit_and_replace_children``, which visits each field by name (``visit_required(self, "name",
    ...)``) in that order. Any field it does not name comes after, so no child is ever missed; a non-node has
    none."""
    names = _CHILD_FIELDS.get(cls)
    if names is None:
        named: dict[str, bool] = {}
        if not dataclasses.is_dataclass(cls):
            names = ()
        else:
            fields = [f.name for f in dataclasses.fields(cls)]
            try:
                source = inspect.getsource(cls._visit_and_replace_children)  # type: ignore[attr-defined]
            except (AttributeError, OSError, TypeError):  # no source shipped: dataclass order
                source = ""
                _SOURCE_MISSING.add(cls)  # and no per-attribute hooks known: LibCST's visit serves those
            visits = re.findall(r"(visit_\w+)\(\s*self,\s*\"(\w+)\"", source)
            for helper, field in visits:
                if field in fields:
                    named.setdefault(field, helper in _SEQUENCE_HELPERS)
            names = (*named, *(n for n in fields if n not in named))
        _CHILD_FIELDS[cls] = names
        _NAMED_FIELDS[cls] = named
    return names


#: ``visit_<Node>_<field>`` / ``leave_<Node>_<field>``: hooks LibCST calls around one field of a node
_ATTRIBUTE_HOOK = re.compile(r"(visit|leave)_[A-Z][A-Za-z0-9]*_\w+")
_PLAIN: dict[type, bool] = {}


def _plain(visitor: CSTVisitor) -> bool:
    """Whether LibCST's visit calls nothing of ``visitor`` but ``on_visit`` and ``on_leave`` (no per-attribute
    hook): then the walk need not call ``on_visit_attribute`` and ``on_leave_attribute`` around each field."""
    if type(visitor) is _BatchedCSTVisitor:  # the metadata providers' batch: its hooks by name
        return not any(_ATTRIBUTE_HOOK.fullmatch(n) for n in visitor.visitor_methods)
    cls = type(visitor)
    plain = _PLAIN.get(cls)
    if plain is None:
        plain = _PLAIN[cls] = (
            cls.on_visit_attribute is CSTVisitor.on_visit_attribute
            and cls.on_leave_attribute is CSTVisitor.on_leave_attribute
            and not any(  # LibCST's own are no-ops, marked as such
                _ATTRIBUTE_HOOK.fullmatch(n) and not getattr(getattr(cls, n), "_is_no_op", False)
                for n in dir(cls)
            )
        )
    return plain


def _walk(node: CSTNode, visitor: CSTVisitor) -> None:
    if visitor.on_visit(node):
        for name in child_fields(type(node)):
            value = getattr(node, name)
            if IS_NODE[type(value)]:
                _walk(value, visitor)
            elif type(value) is tuple or type(value) is list:
                for item in value:
                    if IS_NODE[type(item)]:
                        _walk(item, visitor)
    visitor.on_leave(node)


def _walk_hooked(node: CSTNode, visitor: CSTVisitor) -> None:
    """``_walk`` with the per-attribute hooks (a second function rather than a flag: ``_walk`` serves almost
    every visit and stays free of the per-field test). LibCST calls the hooks around every field it visits by
    name, whatever its value (None, an empty sequence included), except an optional sequence that is None
    (``format_spec``), which it cannot hand to a sequence helper and so does not visit."""
    if visitor.on_visit(node):
        cls = type(node)
        fields = child_fields(cls)
        named = _NAMED_FIELDS[cls]
        for name in fields:
            value = getattr(node, name)
            sequence = named.get(name)
            hooked = sequence is not None and not (sequence and value is None)
            if hooked:
                visitor.on_visit_attribute(node, name)
            if IS_NODE[type(value)]:
                _walk_hooked(value, visitor)
            elif type(value) is tuple or type(value) is list:
                for item in value:
                    if IS_NODE[type(item)]:
                        _walk_hooked(item, visitor)
            if hooked:
                visitor.on_leave_attribute(node, name)
    visitor.on_leave(node)


# LibCST's own (also when this module is imported again after ``install``: the replacement keeps it)
_LIBCST_VISIT = getattr(CSTNode.visit, "libcst_visit", CSTNode.visit)


def _visit(self: CSTNode, visitor: Any) -> Any:
    if isinstance(visitor, CSTVisitor):
        plain = _plain(visitor)
        if plain or not _SOURCE_MISSING:
            (_walk if plain else _walk_hooked)(self, visitor)
            return self  # what LibCST returns for a CSTVisitor: the node itself, not the rebuilt copy
    return _LIBCST_VISIT(self, visitor)


_visit.libcst_visit = _LIBCST_VISIT  # type: ignore[attr-defined]

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
    """Replace ``BatchableCSTVisitor.get_visitors`` with the cached version and ``CSTNode.visit`` with the walk
    for read-only visitors (idempotent)."""
    BatchableCSTVisitor.get_visitors = _get_visitors  # type: ignore[method-assign]
    CSTNode.visit = _visit  # type: ignore[method-assign]
