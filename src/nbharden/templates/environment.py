"""The environment the notebook was recorded in: the variables that change numerical results.

Thread counts change what BLAS and OpenMP compute (KMeans, KNN, a matrix product's last digits)
and the hash seed changes the order of sets of strings. They only take effect when a process
starts, so ``reproduce`` starts this very command again with them set when they differ (once:
the restarted process finds them set). Written into the generated package by nbharden
(``environment.py``, and ``tests/_environment.py`` for its conftest); standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

#: The variables and values of the recorded run (filled in when the package is generated).
RECORDED: dict[str, str] = {}


def differs(recorded: Mapping[str, str]) -> list[str]:
    """The recorded variables this process runs without (or with another value)."""
    return sorted(name for name, value in recorded.items() if os.environ.get(name) != value)


def reproduce(recorded: Mapping[str, str] = RECORDED, argv: Sequence[str] | None = None) -> None:
    """Make this process run with ``recorded``: set the variables and, when one differed, run the
    command line ``argv`` (default: this process's own) again in their place. Returns when nothing
    differed, or when the command cannot be started again (then the variables are set for what
    is imported from now on).
    """
    changed = differs(recorded)
    if not changed:
        return
    os.environ.update(recorded)
    command = list(argv if argv is not None else getattr(sys, "orig_argv", []))
    if len(command) < 2 or os.environ.get("NBHARDEN_ENV_RESTARTED") == "1":
        return
    os.environ["NBHARDEN_ENV_RESTARTED"] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *command[1:]])
