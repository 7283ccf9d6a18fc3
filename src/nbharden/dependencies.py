"""What a generated package needs installed, and whether the interpreter that runs it has it.

- ``RUNTIME``: the distributions the generated code imports besides the notebook's own libraries
  (config, command line, retries). They are dependencies of nbharden too, so a plain
  ``pip install nbharden`` can verify what it generates.
- ``installed_versions``: the versions of distributions in another interpreter (the notebook's
  kernel), read by a small standard-library script run there.
- ``with_lower_bounds``: the generated ``pyproject.toml`` with ``name>=X.Y`` from those versions.
- ``check_installed``: before the generated tests run, every dependency of the package (and pytest)
  must be installed; else ``VerificationError`` with the missing distributions and the exact
  ``pip install`` line.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from nbharden.errors import VerificationError
from nbharden.templates import template_text

#: Distributions generated code imports besides the notebook's libraries, with the lowest version
#: its code works with: config.py, __main__.py, retries of network calls.
RUNTIME = {"pydantic": "2.5", "pydantic-settings": "2", "typer": "0.12", "tenacity": "8"}
# (pytest, which runs a package's tests, is a dependency of nbharden too: it verifies what it writes)
#: The ``test`` extra of a generated package.
TEST = {"pytest": "8"}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def distribution(requirement: str) -> str:
    """The distribution name of a requirement (``pandas>=2`` -> ``pandas``)."""
    found = _NAME.match(requirement.strip())
    return found.group(0) if found else requirement.strip()


def installed_versions(python: str | None, names: Iterable[str]) -> dict[str, str | None]:
    """The installed version of each distribution in ``python`` (default: this interpreter), None
    when it is missing. Any failure to ask (no such interpreter, a timeout) gives all None.
    """
    wanted = sorted({distribution(n) for n in names})
    if not wanted:
        return {}
    with tempfile.TemporaryDirectory(prefix="nbharden-probe-") as tmp:
        script = Path(tmp) / "probe_distributions.py"
        script.write_text(template_text("probe_distributions.py"), encoding="utf-8")
        try:
            proc = subprocess.run(
                [python or sys.executable, "-I", str(script), *wanted],
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            found = json.loads(proc.stdout) if proc.returncode == 0 else {}
        except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
            found = {}
    return {name: found.get(name) if isinstance(found, dict) else None for name in wanted}


def lower_bound(version: str) -> str | None:
    """``2.2.3`` -> ``2.2``; None for a version that is not plain numbers (``1.0.dev0+local`` -> ``1.0``)."""
    parts = re.match(r"(\d+)(?:\.(\d+))?", version)
    if parts is None:
        return None
    return parts.group(1) + (f".{parts.group(2)}" if parts.group(2) is not None else "")


def with_lower_bounds(pyproject: str, versions: Mapping[str, str | None]) -> str:
    """``pyproject`` (as nbharden renders it: one quoted requirement per line) with ``>=X.Y`` added to
    every requirement that has no version specifier, from ``versions`` (the recorded run's) or, for
    nbharden's own runtime and test dependencies, from ``RUNTIME``/``TEST``.
    """
    floor = {**RUNTIME, **TEST}
    lowered = {k.lower(): v for k, v in versions.items()}

    def bound(match: re.Match[str]) -> str:
        requirement = match.group(2)
        name = distribution(requirement)
        if name != requirement:  # has a specifier or extras already: the user's choice
            return match.group(0)
        seen = lowered.get(name.lower())
        least = lower_bound(seen) if seen else floor.get(name)
        return f'{match.group(1)}"{name}>={least}",' if least else match.group(0)

    return re.sub(r'^(\s+)"([^"]+)",$', bound, pyproject, flags=re.MULTILINE)


def requirements(out: Path) -> list[str]:
    """The dependencies and the ``test`` extra of the generated package in ``out``."""
    try:
        project = tomllib.loads((out / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        return []
    listed = list(project.get("dependencies", []))
    listed += project.get("optional-dependencies", {}).get("test", ["pytest"])
    return listed


def check_installed(out: Path, python: str | None) -> None:
    """Raise ``VerificationError`` unless every requirement of the package in ``out`` is installed in
    ``python`` (the interpreter that will run its tests; default: this one). The message names the
    missing distributions and the ``pip install`` line that installs them.
    """
    wanted = requirements(out)
    versions = installed_versions(python, wanted)
    missing = [r for r in wanted if versions.get(distribution(r)) is None]
    if not missing:
        return
    names = ", ".join(distribution(r) for r in missing)
    line = " ".join(
        [shlex.quote(python or sys.executable), "-m", "pip", "install", *map(shlex.quote, missing)]
    )
    raise VerificationError(
        f"cannot run the generated tests: {names} not installed; install with: {line}", path=out
    )
