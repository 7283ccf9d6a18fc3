"""Which of the distributions named on the command line are installed, with their versions.

Run by nbharden in the interpreter that will run a generated package's tests
(``python probe_distributions.py pandas scikit-learn ...``); prints one JSON object
``{"name": "version" or null}``. Standard library only: it runs in any Python >= 3.11.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys


def versions(names: list[str]) -> dict[str, str | None]:
    """The installed version of each distribution name, None when it is not installed."""
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


if __name__ == "__main__":
    print(json.dumps(versions(sys.argv[1:])))
