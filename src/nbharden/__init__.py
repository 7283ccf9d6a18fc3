"""nbharden: turn a proof-of-concept Jupyter notebook into a typed, tested Python package.

The public API lives in ``nbharden.api`` (imported lazily so that ``nbharden --help`` starts fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
# ``load`` and ``write`` are also stage modules (nbharden.load, nbharden.write): importing one would replace a
# package-level function of the same name, so those two are reached as nbharden.api.load / nbharden.api.write.
__all__ = ["__version__", "analyze", "convert", "generate"]

if TYPE_CHECKING:
    from nbharden.api import analyze, convert, generate


def __getattr__(name: str) -> Any:
    if name in {"analyze", "convert", "generate"}:
        from nbharden import api

        return getattr(api, name)
    raise AttributeError(name)
