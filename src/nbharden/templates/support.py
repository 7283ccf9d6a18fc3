"""Runtime helpers of the generated pipeline: logging, step timing, figure saving. Yours to change."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
_state: dict[str, object] = {"output_dir": None, "count": 0, "started_in": None}
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Configure the root logger once: text lines, or one JSON object per line (``log_format="json"``)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def shape_of(value: object) -> dict[str, Any]:
    """Type and shape (or length) of a value, for the logs; never the value itself."""
    described: dict[str, Any] = {"type": type(value).__name__}
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        described["shape"] = list(shape)
    elif isinstance(value, (list, tuple, dict, set, frozenset)):
        described["len"] = len(value)
    return described


def _shape_text(described: dict[str, Any]) -> str:
    if "shape" in described:
        return f"{described['type']}{tuple(described['shape'])}"
    if "len" in described:
        return f"{described['type']}[{described['len']}]"
    return str(described["type"])


class StepLog:
    """What one step produced, for its log line."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.outputs: dict[str, dict[str, Any]] = {}
        self.seconds = 0.0

    def produced(self, **values: object) -> None:
        self.outputs.update((key, shape_of(value)) for key, value in values.items())


class PipelineLog:
    """Logs every step (start, end, duration, the shapes it produced) and a summary at the end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps: list[StepLog] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[StepLog]:
        """Time one step; on failure log which step failed and re-raise with a note naming it."""
        log = StepLog(name)
        logger.info("step %s: start", name, extra={"event": "step_start", "step": name})
        started = time.perf_counter()
        try:
            yield log
        except Exception as exc:
            log.seconds = time.perf_counter() - started
            logger.error(
                "step %s: failed after %.3f s: %s: %s",
                name,
                log.seconds,
                type(exc).__name__,
                exc,
                extra={
                    "event": "step_failed",
                    "step": name,
                    "duration_s": round(log.seconds, 6),
                    "error": type(exc).__name__,
                },
            )
            exc.add_note(f"in step {name!r} of the {self.name} pipeline")
            raise
        log.seconds = time.perf_counter() - started
        self.steps.append(log)
        shapes = ", ".join(f"{k}={_shape_text(v)}" for k, v in log.outputs.items())
        logger.info(
            "step %s: done in %.3f s%s",
            name,
            log.seconds,
            f" -> {shapes}" if shapes else "",
            extra={
                "event": "step_end",
                "step": name,
                "duration_s": round(log.seconds, 6),
                "outputs": log.outputs,
            },
        )


@contextlib.contextmanager
def run_pipeline(name: str) -> Iterator[PipelineLog]:
    """Log the start of a run and, at the end, a summary: steps run, total and slowest durations."""
    log = PipelineLog(name)
    logger.info("pipeline %s: start", name, extra={"event": "pipeline_start", "pipeline": name})
    started = time.perf_counter()
    try:
        yield log
    except Exception:
        logger.error(
            "pipeline %s: failed after %d step(s) in %.3f s",
            name,
            len(log.steps),
            time.perf_counter() - started,
            extra={"event": "pipeline_failed", "pipeline": name},
        )
        raise
    seconds = time.perf_counter() - started
    slowest = max(log.steps, key=lambda s: s.seconds, default=None)
    logger.info(
        "pipeline %s: %d step(s) done in %.3f s%s",
        name,
        len(log.steps),
        seconds,
        f"; slowest {slowest.name} ({slowest.seconds:.3f} s)" if slowest else "",
        extra={
            "event": "pipeline_end",
            "pipeline": name,
            "duration_s": round(seconds, 6),
            "steps": {s.name: round(s.seconds, 6) for s in log.steps},
        },
    )


class DataContractError(ValueError):
    """A frame lacks a column, or a column's dtype differs from the notebook's recorded run."""


def require_columns(frame: Any, name: str, step: str, columns: dict[Any, str]) -> None:
    """Check the data contract of ``frame``: the columns (label -> dtype) the recorded run had.

    Extra columns are allowed. Raises ``DataContractError`` naming the step, the frame and what differs.
    """
    present = list(getattr(frame, "columns", []))
    missing = [label for label in columns if label not in present]
    if missing:
        raise DataContractError(
            f"step {step}: frame {name!r} lacks column(s) {missing}; it has {present}"
        )
    wrong = []
    for label, expected in columns.items():
        dtype = frame.dtypes[label]
        found = str(dtype.iloc[0] if hasattr(dtype, "iloc") else dtype)
        if found != expected:
            wrong.append(f"column {label!r} is {found}, expected {expected}")
    if wrong:
        raise DataContractError(f"step {step}: frame {name!r}: " + "; ".join(wrong))


def seed_everything(seed: int) -> None:
    """Seed ``random`` and, when installed, numpy's global generator (scikit-learn's default too)."""
    random.seed(seed)
    try:
        import numpy
    except ImportError:
        return
    numpy.random.seed(seed)


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run with ``path`` as the working folder (the notebook's own, where its relative paths resolve)."""
    previous = Path.cwd()
    _state["started_in"] = previous
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
        _state["started_in"] = None


def use_output_dir(path: Path | None) -> None:
    """Save figures shown from now on into ``path`` (None: close them without saving).

    A relative ``path`` is relative to the current folder, the one the run starts in
    (not data_dir, where it works)."""
    _state["output_dir"] = path.absolute() if path is not None else None
    _state["count"] = 0


def output_file(output_dir: Path, path: Path) -> Path:
    """Where the pipeline writes a file the notebook wrote (a saved model, a table).

    ``path`` under ``output_dir``, never in the data folder; a relative ``output_dir``
    is relative to the folder the run started in. The file's folder is created."""
    started_in = _state.get("started_in")
    if not output_dir.is_absolute() and isinstance(started_in, Path):
        output_dir = started_in / output_dir
    target = output_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def show_figures(prefix: str = "figure") -> list[Path]:
    """Save every open matplotlib figure to the output folder and close it (what ``plt.show()`` did)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    saved: list[Path] = []
    folder = _state["output_dir"]
    for number in pyplot.get_fignums():
        figure = pyplot.figure(number)
        if isinstance(folder, Path):
            folder.mkdir(parents=True, exist_ok=True)
            count = int(str(_state["count"])) + 1
            _state["count"] = count
            path = folder / f"{prefix}_{count:03d}.png"
            figure.savefig(path)
            saved.append(path)
        pyplot.close(figure)
    return saved
