"""Maintainer helper: ``python -m nbharden.rules docs/rules`` writes the rule pages from the docstrings."""

from __future__ import annotations

import sys
from pathlib import Path

from nbharden.rules import write_docs

write_docs(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/rules"))
