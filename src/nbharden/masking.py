"""Mask IPython syntax (``%magic``, ``%%cell``, ``!shell``, ``x?``) into plain Python with IPython's own transformer.

Used by the load stage for every code cell and by the magic translation for code carried inside a magic
(``%%time`` bodies, ``%timeit`` arguments), so both see exactly the same masking.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=1)
def _transformer() -> Callable[[str], str]:
    # imported here, once: IPython costs 0.1-0.4 s to import and plain-Python cells never need it
    from IPython.core.inputtransformer2 import TransformerManager

    transform: Callable[[str], str] = TransformerManager().transform_cell  # type: ignore[no-untyped-call]
    return transform


#: Everything IPython's transformer acts on: %magics, !shell, help?, autocall escapes (/f x, ,f a,
#: ;f a) at a line start, and >>> / ... / In [1]: prompts. A leading indent is checked separately.
_MAYBE_IPYTHON = re.compile(r"[%!?]|^[ \t]*[,;/]|^[ \t]*(?:>>>|\.\.\.|In \[)", re.MULTILINE)
_LEADING_INDENT = re.compile(r"(?:[ \t]*(?:\r\n|\r|\n))*[ \t]+\S")


def mask_ipython(source: str) -> str:
    """``source`` with IPython syntax turned into ``get_ipython()`` calls by IPython itself.

    Plain Python is returned unchanged. Lines keep their numbers for line magics and shell lines, so positions in
    the result point at the source.
    """
    if not _MAYBE_IPYTHON.search(source) and not _LEADING_INDENT.match(source):
        # nothing for IPython to do; its pure-Python tokenizer (~10 us a token) would spend
        # seconds on a big or pathological cell (a 100,000-term sum) before compile() refuses it
        return source
    try:
        with warnings.catch_warnings():
            # IPython splits lines with str.splitlines() and warns (on stderr, through the CLI's
            # one-line message) about a line that "ends" in U+2028 or another Unicode break
            warnings.simplefilter("ignore")
            code = _transformer()(source)
    except Exception:  # noqa: BLE001 - a transformer failure: let compile() report the source
        return source
    # IPython appends a newline; keep the source's own ending so positions and round trips match
    if code.endswith("\n") and not source.endswith("\n"):
        code = code[:-1]
    return code
