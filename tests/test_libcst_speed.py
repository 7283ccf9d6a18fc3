"""LibCST's per-instance set-up cached per class (nbharden.libcst_speed): the same visitors as LibCST finds."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.matchers import _visitors

from nbharden import libcst_speed


class _Counting(m.MatcherDecoratableTransformer):
    def __init__(self) -> None:
        self.own = m.Name("x")  # an instance attribute set before LibCST's set-up
        super().__init__()
        self.seen: list[str] = []

    @m.visit(m.Name("a") | m.Name("b"))
    def names(self, node: cst.Name) -> None:
        self.seen.append(node.value)

    @m.leave(m.Integer())
    @m.leave(m.Float())
    def numbers(
        self, original_node: cst.BaseExpression, updated_node: cst.BaseExpression
    ) -> cst.BaseExpression:
        return cst.Integer("0")

    @property
    def prop(self) -> int:
        return 1


def test_cached_matcher_methods_are_libcsts_for_every_instance() -> None:
    libcst_speed.install()
    for function in ("_gather_constructed_visit_funcs", "_gather_constructed_leave_funcs"):
        cached = getattr(_visitors, function)
        original = cached.__wrapped__
        for _ in range(3):  # the first instance fills the cache, the later ones read it
            visitor = _Counting()
            assert cached(visitor) == original(visitor)
    visitor = _Counting()
    out = cst.parse_module("a = b + 1.5 + c\n").visit(visitor)
    assert visitor.seen == ["a", "b"] and out.code == "a = b + 0 + c\n"


def test_install_is_idempotent() -> None:
    libcst_speed.install()
    first = _visitors._gather_constructed_visit_funcs
    libcst_speed.install()
    assert _visitors._gather_constructed_visit_funcs is first
