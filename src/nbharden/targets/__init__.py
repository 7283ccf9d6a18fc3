"""Targets: what runs the generated steps besides ``pipeline.py`` (setting ``target``).

A target is a stage after ``emit``: it takes the emitted tree and the plan and adds its own files (a flow
module, its runtime helpers, a test, an extra in ``pyproject.toml``, a section of the README). nbharden
imports nothing from an orchestrator: the target's runtime code lives in ``nbharden/templates``.
"""

from __future__ import annotations

from nbharden.analyse import FullAnalysis
from nbharden.models import FileTree, Plan
from nbharden.settings import Settings


def apply_target(
    tree: FileTree, plan: Plan, analysis: FullAnalysis, *, settings: Settings
) -> FileTree:
    """``tree`` with the files of ``settings.target`` added (unchanged for the default, ``pipeline``)."""
    if settings.target == "prefect":
        from nbharden.targets.prefect import add_prefect_flow, step_effects

        return add_prefect_flow(tree, plan, step_effects(plan, analysis))
    return tree
