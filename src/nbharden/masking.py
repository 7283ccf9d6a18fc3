"""Mask IPython syntax (``%magic``, ``%%cell``, ``!shell``, ``x?``) into plain Python with IPython's own transformer."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _manager() -> Any:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()  # type: ignore[no-untyped-call]


def mask_ipython(source: str) -> str:
    """Return ``source`` with IPython-only syntax turned into ``get_ipython()`` calls; plain Python is unchanged.

    Lines keep their numbers for line magics and shell lines, so positions in the result point at the source.
    """
    if not any(ch in source for ch in "%!?"):
        return source
    try:
        masked: str = _manager().transform_cell(source)
    except (SyntaxError, ValueError, IndexError, TypeError):
        return source  # let the syntax check report it against the original text
    if source.endswith("\n") or not masked.endswith("\n"):
        return masked
    return masked[:-1]
