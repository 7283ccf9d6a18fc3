"""Test generation: pytest characterization tests of a converted package.

Built from its Plan and a Recording of the notebook's run.
"""

from __future__ import annotations

from nbharden.testgen.generate import generate_tests

__all__ = ["generate_tests"]
