"""What a recording holds: per step, the values it read and wrote in the notebook's run
(``Recording``).

The index is JSON (``recording.json`` in ``Recording.root``); each stored value is a
text file under ``root/values/`` named by its content hash: JSON written by
``_values.dumps`` or, as a last resort, a base64 pickle whose sha256 is checked before
loading.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

#: A JSON value (what ``json.loads`` returns).
JSON = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None

#: How a value was recorded.
#: value       - exact JSON text in ``file`` (loads back equal, dtypes and index included)
#: pickle      - base64 pickle in ``file``: JSON could not hold it; check ``sha256`` before loading
#: fingerprint - only ``fingerprint`` (over the cap, or neither JSON nor pickle can hold it)
#: described   - cannot be stored at all (module, generator, open file, connection,
#:               lambda): ``note`` says what
#: redacted    - a secret: never stored
#: missing     - the name was not defined at that point of the run
KINDS = ("value", "pickle", "fingerprint", "described", "redacted", "missing")

RECORDING_FORMAT = 2
#: The seed of the first recording run (and of the confirming run): what
#: ``support.seed_everything`` gets from a generated ``Config`` whose seed is left at 0.
RECORDING_SEED = 0


@dataclass(frozen=True)
class Column:
    """One column of a recorded frame: its label and dtype as in the notebook's run."""

    label: str  # repr of the column label: "'age'", "0", "('a', 'b')"
    dtype: str  # pandas' dtype text: "int64", "float64", "object", "category", "datetime64[ns]"

    @property
    def name(self) -> object:
        """The label itself when its repr is a Python literal (``'age'`` -> ``"age"``, ``0``
        -> ``0``), else the repr text.
        """
        try:
            return ast.literal_eval(self.label)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return self.label


@dataclass(frozen=True)
class RecordedValue:
    """One variable at one step boundary."""

    name: str
    kind: str  # one of KINDS
    type: str = (
        ""  # public dotted type name from the run: "pandas.DataFrame", "float", "__main__.Model"
    )
    annotation: str = (
        ""  # annotation text from the run: "list[str]", "dict[str, float]", "pandas.DataFrame"
    )
    file: str | None = None  # path relative to Recording.root, POSIX; for kinds value and pickle
    sha256: str | None = None  # of the file's text
    bytes: int = 0
    fingerprint: dict[str, JSON] = field(
        default_factory=dict
    )  # type, shape, dtype(s), columns, hashes, stats
    volatile: bool = False  # differed between the two runs: compare by type and shape only
    # volatile because it follows the random seed: a run with the same seed gave the same
    # value, so it is stored and a step test that restores the generators' state checks it
    seed_dependent: bool = False
    note: str = ""  # why it was not stored exactly
    alias_of: str | None = None  # an earlier input of the same step that is the very same object

    @property
    def type_name(self) -> str:
        """An importable dotted name of the value's type in the run (``pandas.DataFrame``,
        ``numpy.ndarray``, ``float``, ``list``, ``sklearn.linear_model.LinearRegression``):
        the class itself, else (a private or local class) its nearest importable base or
        ``collections.abc.Callable``; classes defined in the notebook are ``__main__.Name``.
        ``""`` when the type changed between runs. ``type`` is the exact class name, which
        may not be importable (``numpy._ArrayFunctionDispatcher``); ``annotation`` the full
        annotation (``list[str]``).
        """
        if self.annotation:
            return self.annotation.split("[", 1)[0]
        return self.type

    @property
    def columns(self) -> tuple[Column, ...] | None:
        """A frame's columns with their dtypes, in order; None for anything else."""
        labels = self.fingerprint.get("columns")
        dtypes = self.fingerprint.get("dtypes")
        if not isinstance(labels, list) or not isinstance(dtypes, list):
            return None
        if len(labels) != len(dtypes):
            return None
        return tuple(Column(str(c), str(d)) for c, d in zip(labels, dtypes, strict=True))

    @property
    def dtype(self) -> str | None:
        """An array's dtype (numpy's ``dtype.str``: ``"<f8"``) or a series' (pandas' text:
        ``"float64"``); None for anything else.
        """
        if isinstance(self.fingerprint.get("dtype"), str):
            return str(self.fingerprint["dtype"])
        dtypes = self.fingerprint.get("dtypes")
        if "columns" not in self.fingerprint and isinstance(dtypes, list) and len(dtypes) == 1:
            return str(dtypes[0])
        return None

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The shape (arrays, frames, series) or length (sequences, mappings, strings), or None."""
        shape = self.fingerprint.get("shape")
        if not isinstance(shape, list):
            return None
        return tuple(int(n) for n in shape if isinstance(n, int))

    @property
    def comparable(self) -> bool:
        """Whether a test can check this value (exactly, by fingerprint, or by structure
        when volatile).
        """
        return self.kind in ("value", "pickle", "fingerprint")

    @property
    def loadable(self) -> bool:
        """Whether the value itself is stored (a test can pass it to a step)."""
        return self.kind in ("value", "pickle") and self.file is not None

    def to_json(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "annotation": self.annotation,
            "file": self.file,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "fingerprint": self.fingerprint,
            "volatile": self.volatile,
            "seed_dependent": self.seed_dependent,
            "note": self.note,
            "alias_of": self.alias_of,
        }

    @classmethod
    def from_json(cls, data: dict[str, JSON]) -> RecordedValue:
        fp = data.get("fingerprint")
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            type=str(data.get("type") or ""),
            annotation=str(data.get("annotation") or ""),
            file=None if data.get("file") is None else str(data["file"]),
            sha256=None if data.get("sha256") is None else str(data["sha256"]),
            bytes=int(data.get("bytes") or 0),  # type: ignore[arg-type]
            fingerprint=fp if isinstance(fp, dict) else {},
            volatile=bool(data.get("volatile")),
            seed_dependent=bool(data.get("seed_dependent")),
            note=str(data.get("note") or ""),
            alias_of=None if data.get("alias_of") is None else str(data["alias_of"]),
        )


@dataclass(frozen=True)
class StepRecording:
    """
    The values one step read before its first cell and wrote after its last cell, in the
    Plan's order.
    """

    step: str
    cells: tuple[
        int, ...
    ]  # nbharden cell indices (1-based over all cells) of the step's code cells that ran
    inputs: tuple[RecordedValue, ...]
    outputs: tuple[RecordedValue, ...]
    executed: bool  # False when the step has no code to run (then inputs and outputs are empty)
    # the step drew from the global generators (``random``, numpy's legacy global state)
    draws_random: bool = False
    # their state as the step started (JSON file relative to Recording.root), when the
    # same seed reproduced it; a test restores it before calling the step
    random_state: str | None = None
    random_state_sha256: str | None = None
    # the fingerprints of the figures its cells showed (``_figures.py``), in order; None when they
    # are not compared (not watched, or the package cannot show the same ones: see record.run)
    figures: tuple[dict[str, JSON], ...] | None = None

    def input(self, name: str) -> RecordedValue:
        """The recorded input ``name``. Raises ``KeyError``."""
        for value in self.inputs:
            if value.name == name:
                return value
        raise KeyError(name)

    def output(self, name: str) -> RecordedValue:
        """The recorded output ``name``. Raises ``KeyError``."""
        for value in self.outputs:
            if value.name == name:
                return value
        raise KeyError(name)

    def to_json(self) -> dict[str, JSON]:
        return {
            "step": self.step,
            "cells": list(self.cells),
            "inputs": [v.to_json() for v in self.inputs],
            "outputs": [v.to_json() for v in self.outputs],
            "executed": self.executed,
            "draws_random": self.draws_random,
            "random_state": self.random_state,
            "random_state_sha256": self.random_state_sha256,
            **({} if self.figures is None else {"figures": list(self.figures)}),
        }

    @classmethod
    def from_json(cls, data: dict[str, JSON]) -> StepRecording:
        def values(key: str) -> tuple[RecordedValue, ...]:
            items = data.get(key)
            assert isinstance(items, list)
            return tuple(RecordedValue.from_json(v) for v in items if isinstance(v, dict))

        cells = data.get("cells")
        return cls(
            step=str(data["step"]),
            cells=(
                tuple(int(c) for c in cells if isinstance(c, int))
                if isinstance(cells, list)
                else ()
            ),
            inputs=values("inputs"),
            outputs=values("outputs"),
            executed=bool(data.get("executed")),
            draws_random=bool(data.get("draws_random")),
            random_state=(None if data.get("random_state") is None else str(data["random_state"])),
            random_state_sha256=(
                None
                if data.get("random_state_sha256") is None
                else str(data["random_state_sha256"])
            ),
            figures=_figures(data.get("figures")),
        )


def _figures(data: JSON) -> tuple[dict[str, JSON], ...] | None:
    """The figures' fingerprints of a step's JSON, or None when it has none."""
    if not isinstance(data, list):
        return None
    return tuple(f for f in data if isinstance(f, dict))


@dataclass(frozen=True)
class HttpResponse:
    """A response the notebook received over HTTP (requests, httpx, urllib and pandas' ``read_*`` on a
    URL), kept so that the generated tests serve it back instead of going online (``_http.py``).
    ``file``: the body, base64, relative to ``Recording.root``; None when it was not kept (``note``
    says why: it held a secret, or it was over the cap).
    """

    cell: int | None  # the cell that made the request
    library: str  # requests | httpx | urllib
    method: str
    url: str | None  # None when not kept
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    file: str | None = None
    sha256: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, JSON]:
        return {
            "cell": self.cell,
            "library": self.library,
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "headers": [[k, v] for k, v in self.headers],
            "file": self.file,
            "sha256": self.sha256,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, JSON]) -> HttpResponse:
        """Read one entry of ``to_json`` (or one ``http`` event of the recorder). Raises
        ``KeyError``, ``TypeError``, ``ValueError``."""
        cell, url, file = data.get("cell"), data.get("url"), data.get("file")
        sha = data.get("sha256")
        headers = data.get("headers") or []
        assert isinstance(headers, list)
        return cls(
            cell=int(cell) if isinstance(cell, int) else None,
            library=str(data["library"]),
            method=str(data["method"]),
            url=str(url) if isinstance(url, str) else None,
            status=int(data["status"]),  # type: ignore[arg-type]
            headers=tuple(
                (str(h[0]), str(h[1])) for h in headers if isinstance(h, list) and len(h) == 2
            ),
            file=str(file) if isinstance(file, str) else None,
            sha256=str(sha) if isinstance(sha, str) else None,
            note=str(data.get("note") or ""),
        )


@dataclass(frozen=True)
class FileUse:
    """A file the notebook's cells read or wrote by a relative path (``_files.py``). The generated tests
    copy a file read into their folders, so that a path built at run time finds it there as it did in
    the notebook's folder, and check that the steps write each file written."""

    path: str  # relative to the notebook's folder, with ``/``
    cells: tuple[int, ...]  # the cells that read (or wrote) it

    def to_json(self) -> dict[str, JSON]:
        return {"path": self.path, "cells": list(self.cells)}

    @classmethod
    def from_json(cls, data: dict[str, JSON]) -> FileUse:
        """Read one entry of ``to_json``. Raises ``KeyError``, ``TypeError``, ``ValueError``."""
        cells = data.get("cells") or []
        assert isinstance(cells, list)
        return cls(path=str(data["path"]), cells=tuple(int(c) for c in cells))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Recording:
    """A recorded run of a notebook: per step, what it read and wrote. Files live under ``root``.

    ``parameters`` are the papermill parameters as the notebook received them (typed like
    papermill's CLI does:
    ``"0.5"`` -> ``0.5``). Each run starts with the global generators seeded like
    ``seed_everything(seeds[i])``; ``volatile`` marks values that differed between the runs
    with different seeds. A last run with the first seed, made only when something
    differed, tells the values that follow the seed (``seed_dependent``, kept) from those
    that change anyway (a clock: only their type and shape are kept).
    """

    notebook: Path
    notebook_sha256: str
    root: Path  # folder holding recording.json, values/ and executed.ipynb
    kernel: str
    parameters: tuple[tuple[str, JSON], ...]
    runs: int
    steps: tuple[StepRecording, ...]
    cap_bytes: int
    stored_bytes: int
    capped: bool  # some values were kept as fingerprints only because of the cap
    seconds: tuple[float, ...]  # wall time of each run
    executed_notebook: Path | None = None  # the executed copy of run 1 (papermill's output)
    seeds: tuple[int, ...] = ()  # the seed each run started with
    # after the last cell: each name a step produced (not plain immutable values, which
    # cannot have changed since their step)
    finals: tuple[RecordedValue, ...] = ()
    # the sandbox the runs were made in (``SandboxReport.to_json``); None: not sandboxed
    sandbox: dict[str, JSON] | None = None
    # the variables the recorder set in the kernel's environment (thread counts, hash seed): the
    # generated tests run with the same
    environment: tuple[tuple[str, str], ...] = ()
    # the HTTP responses of the first run, in order: the generated tests serve them back
    http: tuple[HttpResponse, ...] = ()
    # the files the first run's cells read by relative paths (the generated tests copy them), and those
    # they wrote (the tests check the steps write them)
    files_read: tuple[FileUse, ...] = ()
    files_written: tuple[FileUse, ...] = ()

    @property
    def seed(self) -> int:
        """The seed of the recorded values (the first run's)."""
        return self.seeds[0] if self.seeds else RECORDING_SEED

    def step(self, name: str) -> StepRecording:
        """The recording of step ``name``. Raises ``KeyError``."""
        for step in self.steps:
            if step.step == name:
                return step
        raise KeyError(name)

    def path(self, value: RecordedValue) -> Path:
        """Where ``value``'s file is. Raises ``ValueError`` when it has none."""
        if value.file is None:
            raise ValueError(f"{value.name} ({value.kind}) has no stored file")
        return self.root / value.file

    def final_values(self) -> dict[str, RecordedValue]:
        """
        Each name's last recorded output: what the notebook ended with (``pipeline.run``
        returns these).
        """
        finals: dict[str, RecordedValue] = {}
        for step in self.steps:
            for value in step.outputs:
                finals[value.name] = value
        for value in self.finals:  # the state at the end of the run, when recorded
            finals[value.name] = value
        return finals

    def to_json(self) -> dict[str, JSON]:
        return {
            "format": RECORDING_FORMAT,
            "notebook": str(self.notebook),
            "notebook_sha256": self.notebook_sha256,
            "kernel": self.kernel,
            "parameters": [[k, v] for k, v in self.parameters],
            "runs": self.runs,
            "steps": [s.to_json() for s in self.steps],
            "cap_bytes": self.cap_bytes,
            "stored_bytes": self.stored_bytes,
            "capped": self.capped,
            "seconds": list(self.seconds),
            "executed_notebook": (
                None if self.executed_notebook is None else str(self.executed_notebook)
            ),
            "seeds": list(self.seeds),
            "finals": [v.to_json() for v in self.finals],
            "sandbox": self.sandbox,
            "environment": dict(self.environment),
            "http": [r.to_json() for r in self.http],
            "files_read": [f.to_json() for f in self.files_read],
            "files_written": [f.to_json() for f in self.files_written],
        }

    def save(self) -> Path:
        """Write ``root/recording.json``; returns its path."""
        path = self.root / "recording.json"
        path.write_text(
            json.dumps(self.to_json(), indent=1, allow_nan=True) + "\n", encoding="utf-8"
        )
        return path

    @classmethod
    def load(cls, root: Path) -> Recording:
        """Read ``root/recording.json``. Raises ``OSError``, ``ValueError`` (bad JSON or
        format).
        """
        data = json.loads((root / "recording.json").read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != RECORDING_FORMAT:
            raise ValueError(
                f"{root / 'recording.json'}: not a recording of format {RECORDING_FORMAT}"
            )
        executed = data.get("executed_notebook")
        return cls(
            notebook=Path(data["notebook"]),
            notebook_sha256=str(data["notebook_sha256"]),
            root=root,
            kernel=str(data["kernel"]),
            parameters=tuple((str(k), v) for k, v in data["parameters"]),
            runs=int(data["runs"]),
            steps=tuple(StepRecording.from_json(s) for s in data["steps"]),
            cap_bytes=int(data["cap_bytes"]),
            stored_bytes=int(data["stored_bytes"]),
            capped=bool(data["capped"]),
            seconds=tuple(float(s) for s in data["seconds"]),
            executed_notebook=None if executed is None else Path(executed),
            seeds=tuple(int(s) for s in data.get("seeds") or ()),
            environment=tuple(
                (str(k), str(v)) for k, v in dict(data.get("environment") or {}).items()
            ),
            finals=tuple(
                RecordedValue.from_json(v) for v in data.get("finals") or () if isinstance(v, dict)
            ),
            sandbox=data["sandbox"] if isinstance(data.get("sandbox"), dict) else None,
            http=tuple(
                HttpResponse.from_json(r) for r in data.get("http") or () if isinstance(r, dict)
            ),
            files_read=tuple(
                FileUse.from_json(f) for f in data.get("files_read") or () if isinstance(f, dict)
            ),
            files_written=tuple(
                FileUse.from_json(f) for f in data.get("files_written") or () if isinstance(f, dict)
            ),
        )
