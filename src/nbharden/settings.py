"""Settings for one run: options from ``[tool.nbharden]`` in the nearest ``pyproject.toml``, overridden by the CLI.

Stages take a ``Settings`` argument and never read the environment or global state themselves.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from nbharden.errors import UsageError
from nbharden.selection import ALL, RuleSelection, parse_selectors

#: Settings that hold rule selectors (lists in pyproject.toml, comma-separated on the command line).
SELECTOR_KEYS = ("select", "extend_select", "ignore")


@dataclass(frozen=True)
class Settings:
    out: Path | None = None  # output folder; default: <notebook stem>_prod next to the notebook
    name: str | None = None  # package name; default: from the notebook's file name
    unsafe_fixes: bool = False
    force: bool = False
    record: bool = True
    verify: bool = True
    line_length: int = 88
    formatter: str = "ruff"  # ruff | black: what formats the generated code (same style; ruff is faster)
    max_bytes: int = 200 * 1024 * 1024  # refuse notebooks larger than this
    max_depth: int = 64  # refuse JSON nested deeper than this
    max_code_cells: int = 2000  # refuse notebooks with more code cells than this
    max_syntax_nodes: int = 50_000  # refuse notebooks whose code has more Python syntax nodes
    cell_timeout: float = 600.0  # seconds per cell when recording
    parameters: tuple[tuple[str, str], ...] = ()  # -p NAME VALUE for recording
    # sandboxed recording (nbharden.record.sandbox, docs/sandbox.md): off | auto | limits | bwrap
    sandbox: str = "off"
    sandbox_memory_mb: int = 2048  # address space per process
    sandbox_processes: int = 128  # processes and threads of the kernel, all together
    sandbox_file_mb: int = 1024  # largest file the notebook may write
    sandbox_wall_time: float = 3600.0  # seconds per recorded run
    sandbox_tmp_mb: int = 256  # size of the sandbox's own /tmp (tier bwrap)
    sandbox_disk_mb: int = 2048  # all that a run may write into the notebook's folder (tier bwrap)
    pass_env: tuple[str, ...] = ()  # environment variables tier bwrap passes to the kernel
    # write a recording whose behaviour differs from the one on disk (convert --accept-changes)
    accept_changes: bool = False
    # [tool.nbharden.review] (nbharden.behaviour.Tolerances): relative tolerance when no pattern matches,
    # (name glob, relative tolerance) pairs, step globs whose outputs are not compared
    review_default_tolerance: float = 1e-9
    review_tolerances: tuple[tuple[str, float], ...] = ()
    review_ignore_steps: tuple[str, ...] = ()
    # rule selection (nbharden.selection): codes or prefixes (NBH6) or ALL; empty select means ALL
    select: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    # what runs the steps besides pipeline.py: "pipeline" (nothing else) or "prefect" (also a Prefect 3 flow
    # module, nbharden.targets)
    target: str = "pipeline"

    @property
    def rules(self) -> RuleSelection:
        """The rule selection these settings make (``select``, ``extend-select``, ``ignore``)."""
        return RuleSelection(self.select or (ALL,), self.extend_select, self.ignore)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: Values of ``target``: what runs the steps besides pipeline.py (nbharden.targets).
TARGETS = ("pipeline", "prefect")

#: ``[tool.nbharden]`` keys. Not ``accept-changes``: accepting a behaviour change is a decision for one run.
_KEYS = {
    f.name.replace("_", "-"): f.name
    for f in fields(Settings)
    if not f.name.startswith("review_") and f.name != "accept_changes"
}
#: Keys of the ``[tool.nbharden.review]`` table.
_REVIEW_KEYS = ("default-tolerance", "tolerances", "ignore-steps")


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start`` that has a ``[tool.nbharden]`` table."""
    start = start.resolve()
    for folder in (
        (start, *start.parents) if start.is_dir() else (start.parent, *start.parent.parents)
    ):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if isinstance(data.get("tool"), dict) and "nbharden" in data["tool"]:
                return candidate
    return None


def load_settings(start: Path, **overrides: Any) -> Settings:
    """Settings from the nearest ``[tool.nbharden]`` table, then ``overrides`` (``None`` values are ignored).

    Raises ``UsageError`` for an unknown key or a value of the wrong type, naming the file.
    """
    base: dict[str, Any] = {}
    pyproject = find_pyproject(start)
    if pyproject is not None:
        table = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["nbharden"]
        if not isinstance(table, dict):
            raise UsageError("[tool.nbharden] must be a table", path=pyproject)
        for key, value in table.items():
            if key == "review":
                base.update(_review_settings(value, pyproject))
                continue
            attr = _KEYS.get(key) or (key if key in _KEYS.values() else None)
            if attr is None:
                raise UsageError(
                    f"unknown key '{key}' in [tool.nbharden]; known: {', '.join(sorted(_KEYS))}",
                    path=pyproject,
                )
            default = getattr(Settings(), attr)
            if attr == "out":
                value = (pyproject.parent / str(value)).resolve()
            elif attr == "pass_env":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise UsageError(
                        "'pass-env' in [tool.nbharden] must be a list of variable names",
                        path=pyproject,
                    )
                value = tuple(value)
            elif attr == "parameters":
                if not isinstance(value, dict):
                    raise UsageError(
                        "'parameters' in [tool.nbharden] must be a table", path=pyproject
                    )
                value = tuple((str(k), str(v)) for k, v in value.items())
            elif attr in SELECTOR_KEYS:
                if not isinstance(value, list):
                    raise UsageError(f"'{key}' in [tool.nbharden] must be a list of rule codes", path=pyproject)
                try:
                    value = parse_selectors(value, what=key)
                except ValueError as exc:
                    raise UsageError(f"{exc} (in [tool.nbharden])", path=pyproject) from None
            elif default is not None and not isinstance(value, type(default)):
                if not (isinstance(default, float) and isinstance(value, int)):
                    raise UsageError(
                        f"'{key}' in [tool.nbharden] must be {type(default).__name__}, "
                        f"not {type(value).__name__}",
                        path=pyproject,
                    )
            base[attr] = value
    target = overrides.get("target") or base.get("target", "pipeline")
    if target not in TARGETS:
        raise UsageError(
            f"unknown target {target!r}; known: {', '.join(TARGETS)}",
            path=pyproject if "target" in base and not overrides.get("target") else None,
        )
    if overrides.get("sandbox") == "on":  # --sandbox: the configured tier, else auto
        overrides["sandbox"] = base["sandbox"] if base.get("sandbox", "off") != "off" else "auto"
    return Settings(**base).replace(**overrides)


def _review_settings(table: object, pyproject: Path) -> dict[str, Any]:
    """The ``[tool.nbharden.review]`` table as ``Settings`` fields. Raises ``UsageError`` naming the key."""

    def bad(what: str) -> UsageError:
        return UsageError(f"[tool.nbharden.review] {what}", path=pyproject)

    if not isinstance(table, dict):
        raise bad("must be a table")
    unknown = sorted(set(table) - set(_REVIEW_KEYS))
    if unknown:
        raise bad(f"has unknown key '{unknown[0]}'; known: {', '.join(_REVIEW_KEYS)}")
    fields_: dict[str, Any] = {}
    default = table.get("default-tolerance")
    if default is not None:
        if isinstance(default, bool) or not isinstance(default, (int, float)) or default < 0:
            raise bad("'default-tolerance' must be a number >= 0 (a relative tolerance)")
        fields_["review_default_tolerance"] = float(default)
    patterns = table.get("tolerances", {})
    if not isinstance(patterns, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in patterns.values()
    ):
        raise bad("'tolerances' must map name patterns to numbers >= 0: { \"acc*\" = 0.01 }")
    fields_["review_tolerances"] = tuple((str(k), float(v)) for k, v in patterns.items())
    steps = table.get("ignore-steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise bad("'ignore-steps' must be a list of step name patterns")
    fields_["review_ignore_steps"] = tuple(steps)
    return fields_
