"""The typed values that flow between the stages.

Every stage is a plain function from one of these to the next (see docs/architecture.md). They are frozen
dataclasses so that a stage cannot change its input behind the next stage's back, and they serialise to JSON
(``to_json``) for ``--format json``, the Jupyter endpoint and the manifest.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class Fix(str, enum.Enum):
    """Safety grade of what nbharden does about a finding (ruff's model)."""

    NONE = "none"  # reported only
    SAFE = "safe"  # applied by default; does not change results
    UNSAFE = "unsafe"  # applied only with --unsafe-fixes; may change results


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Span:
    """Where something is: cell index counted from 1 (as Jupyter shows), line and column counted from 1."""

    cell: int
    line: int = 1
    col: int = 1


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    span: Span | None
    severity: Severity = Severity.WARNING
    fix: Fix = Fix.NONE
    applied: bool = False  # whether the generated code carries the fix

    def location(self, path: str) -> str:
        if self.span is None:
            return path
        return f"{path}:cell {self.span.cell}:{self.span.line}:{self.span.col}"

    def to_json(self, path: str) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "path": path,
            "cell": self.span.cell if self.span else None,
            "line": self.span.line if self.span else None,
            "col": self.span.col if self.span else None,
            "severity": self.severity.value,
            "fix": self.fix.value,
            "applied": self.applied,
        }


@dataclass(frozen=True)
class Cell:
    """One notebook cell as loaded.

    ``source`` is the text as written; ``code`` is the same text with IPython syntax masked into plain Python
    (``%time x`` -> ``get_ipython().run_line_magic('time', 'x')``) so that it parses. ``index`` counts from 1.
    """

    index: int
    cell_type: str  # "code" | "markdown" | "raw"
    source: str
    code: str
    cell_id: str
    tags: tuple[str, ...] = ()
    execution_count: int | None = None


@dataclass(frozen=True)
class LocalModule:
    """A module or package beside the notebook that the notebook imports (Jupyter's working folder is on
    ``sys.path``), read at load time so that the generated package can carry a copy of it.

    ``files`` are (path relative to the notebook's folder, POSIX; source text).
    """

    name: str
    files: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Notebook:
    path: Path
    cells: tuple[Cell, ...]
    sha256: str
    kernel_name: str
    language: str
    nbformat_version: tuple[int, int]
    local_modules: tuple[LocalModule, ...] = ()  # modules next to the notebook that it imports

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.cell_type == "code")

    @property
    def stem(self) -> str:
        return self.path.stem


# --- analysis ---------------------------------------------------------------------------------------------------


class Effect(str, enum.Enum):
    FILE_READ = "file-read"
    FILE_WRITE = "file-write"
    NETWORK = "network"
    RANDOM = "random"
    PLOT = "plot"
    DISPLAY = "display"
    PRINT = "print"
    SHELL = "shell"
    CLOCK = "clock"


@dataclass(frozen=True)
class CellAnalysis:
    """What one code cell reads, writes and does, at its top level (nested scopes folded in)."""

    index: int
    reads: tuple[str, ...]  # names read before any write in this cell, in first-use order
    writes: tuple[str, ...]  # names bound at the cell's top level, in order
    mutates: tuple[str, ...]  # names whose object is changed in place (incl. through aliases)
    imports: tuple[str, ...]  # names bound by import statements
    defines: tuple[str, ...]  # names bound by def / class
    effects: tuple[Effect, ...]


@dataclass(frozen=True)
class Analysis:
    notebook: Notebook
    cells: tuple[CellAnalysis, ...]
    findings: tuple[Finding, ...]


# --- plan ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigField:
    name: str
    annotation: str  # source text, e.g. "float", "Path", "list[str]"
    default: str  # source text of the default value expression
    description: str
    cell: int
    line: int
    secret: bool = False
    literal: str | None = None  # for lifted literals: the literal's value in the notebook
    # parameter | constant (a path/URL assigned once) | lifted (a literal) | secret | output | seed
    kind: str = "parameter"
    constraints: str = ""  # extra ``Field(...)`` arguments inferred from the notebook, e.g. "gt=0, le=1"
    must_exist: bool = False  # a path the notebook reads: validated to exist (relative to data_dir)
    env_var: str = ""  # a secret the notebook read from this environment variable: it still sets the field
    # a path the notebook only writes (a saved model, an exported table): relative to output_dir, not data_dir
    output_file: bool = False


@dataclass(frozen=True)
class Param:
    name: str
    annotation: str | None
    source: str  # "config" or the name of the step that produced it


@dataclass(frozen=True)
class Contract:
    """A data contract: the columns and dtypes a frame had in the recorded run, checked by its step.

    ``at`` is "entry" for a frame the step takes in (checked before its first statement) or "exit" for a frame
    the step read from outside, a file or the network (checked before it returns).
    """

    name: str
    columns: tuple[tuple[str, str], ...]  # (repr of the column label, dtype text) in the frame's order
    at: str = "entry"


@dataclass(frozen=True)
class Shown:
    """A value a cell shows that the pipeline keeps as a result (``nbharden.shown``).

    ``how``: "bind" (the cell's last expression, bound to ``name``), "display" (``display(expr)``, bound to
    ``name``), "name" (a shown name: ``name`` itself) or "print" (a computed name a top-level ``print(...)``
    prints: ``name`` itself, logged after the print; one print may print several) or a computed value it
    prints (``accuracy_score(y, p)``: bound to ``name`` before the print, which prints ``name``). ``display``:
    which top-level ``display()`` of the cell (counted from 0) when ``how`` is "display", of ``displays`` in
    all; which of the print's values (``shown.printed_values``) when ``how`` is "print" and the value is no
    name (-1 for a name).
    """

    name: str
    cell: int
    statement: int
    how: str
    display: int = -1
    displays: int = 0
    source: str = ""  # "print", not a name: the printed expression's code (the recorder finds it)


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    cells: tuple[int, ...]
    inputs: tuple[Param, ...]
    outputs: tuple[Param, ...]
    mutated: tuple[
        str, ...
    ] = ()  # inputs changed in place (also listed in outputs when read later)
    results: tuple[str, ...] = ()  # outputs nobody reads later: the notebook's final values
    contracts: tuple[Contract, ...] = ()  # from a recorded run (nbharden.recorded_types)
    doc: str = ""  # first paragraph of the markdown above the step: its docstring
    # inputs that are module state (Plan.module_state): globals of the steps module, not parameters
    state: tuple[str, ...] = ()
    shown: tuple[Shown, ...] = ()  # values the step's cells show, kept as results (logged, returned)
    models: tuple[str, ...] = ()  # objects the step fits (``model.fit(...)``): kept as results


@dataclass(frozen=True)
class Statement:
    """What the package does with one top-level statement of a code cell: decided by the plan, rendered by emit.

    ``role``: "config" (an assignment that became a Config field), "import" or "def" (moved to module level),
    "setting" (a process-wide setting, run once at the pipeline's start), "display" (only shows a value: dropped)
    or "code" (kept in a step). ``runs_in``: the cell whose step runs it, its own unless the plan moved it after
    a statement of a later cell (``Plan.moved``). ``changes``: the names it may bind or change in place (its
    bindings, ``df["c"] = ...``, ``df.pop("a")``, ``inplace=True``, arguments of the notebook's own functions),
    so that a data contract is checked right after the last statement that changes its frame.
    """

    cell: int
    index: int  # among the cell's top-level statements, from 0
    role: str
    runs_in: int
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretUse:
    """A hard-coded secret the generated code reads from a Config field instead, named by where the notebook
    wrote it, never by its value (the plan is shown and serialised).

    ``source``: "assignment" (the string literal that top-level statement ``n`` of the cell assigns, a
    statement that became the field), "site" (the value of the cell's secret site ``n``, counted from 0 in
    ``CellFacts.secrets``) or "env-default" (the secret-looking default of the read of ``env_var`` on ``line``).
    """

    field: str
    cell: int
    line: int
    source: str
    n: int = -1
    env_var: str = ""


@dataclass(frozen=True)
class Plan:
    package: str
    steps: tuple[Step, ...]
    config_fields: tuple[ConfigField, ...]
    hoisted: tuple[str, ...]  # functions and classes moved to module level
    hoisted_imports: tuple[str, ...]  # names bound by imports moved to module level
    dependencies: tuple[str, ...]  # distribution names for the generated pyproject
    uses_plots: bool
    findings: tuple[Finding, ...] = ()
    moved: tuple[
        tuple[int, int, int, int], ...
    ] = ()  # (cell, statement) moved to after (cell, statement)
    # names that live as globals of the steps module, as they did in the notebook: a function rebinds
    # them with ``global``, so every step and function must see the one binding
    module_state: tuple[str, ...] = ()
    # (cell, statement) of process-wide settings (warnings filters, display options, plot style): they run once
    # at the pipeline's start (``apply_settings``), not inside a step
    settings: tuple[tuple[int, int], ...] = ()
    # functions that move to module level with the notebook state they read as keyword-only parameters
    # (nbharden.lift): (name, the state names)
    lifted: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # every top-level statement of the code cells, in the order the package runs them (steps in cell order)
    statements: tuple[Statement, ...] = ()
    # the hard-coded secrets the generated code reads from Config fields (by location, never by value)
    secrets: tuple[SecretUse, ...] = ()
    # parameters of the lifted functions typed from the literals every call passes: (function, ((param, type)))
    lifted_types: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [f.to_json("") for f in self.findings]
        return data


# --- output -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileTree:
    """The output project in memory: POSIX relative path -> text. Sorted by path for deterministic output."""

    files: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, mapping: dict[str, str]) -> FileTree:
        return cls(tuple(sorted(mapping.items())))

    def as_dict(self) -> dict[str, str]:
        return dict(self.files)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.files)


class FileStatus(str, enum.Enum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    EDITED = "edited"  # on disk differs from what was generated last time: a hand edit
    REMOVED = "removed"  # generated last time, no longer generated


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the output folder, POSIX
    status: FileStatus
    diff: str  # unified diff, "" when unchanged
    new_text: str | None  # None for removed files


@dataclass(frozen=True)
class ChangeSet:
    notebook: Path
    out: Path
    changes: tuple[FileChange, ...]
    findings: tuple[Finding, ...]
    plan: Plan | None = None
    test_results: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return any(c.status is not FileStatus.UNCHANGED for c in self.changes)

    @property
    def edited(self) -> tuple[FileChange, ...]:
        return tuple(c for c in self.changes if c.status is FileStatus.EDITED)

    def to_json(self) -> dict[str, Any]:
        nb = str(self.notebook)
        return {
            "notebook": nb,
            "out": str(self.out),
            "files": [
                {"path": c.path, "status": c.status.value, "diff": c.diff} for c in self.changes
            ],
            "findings": [f.to_json(nb) for f in self.findings],
            "plan": self.plan.to_json() if self.plan else None,
            "tests": self.test_results,
        }
