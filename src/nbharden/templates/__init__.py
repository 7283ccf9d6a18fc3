"""Runtime code of generated packages and helper scripts, as real Python files.

Each module here is linted and type-checked in place; nbharden reads its text with
``importlib.resources`` (``template_text``) and writes it into the generated package or runs it
in another interpreter. Nothing here imports nbharden.
"""

from __future__ import annotations

from importlib import resources


def template_text(name: str) -> str:
    """The source of ``nbharden/templates/<name>`` (e.g. ``"probe_distributions.py"``)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
