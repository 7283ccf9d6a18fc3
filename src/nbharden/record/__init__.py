"""Recording: run the notebook with papermill and an in-kernel recorder, keep what every
step read and wrote.

>>> recording = record(nb, plan, settings=settings, workdir=Path(tmp)) >>>
recording.step("load_data").outputs[0].kind 'value'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbharden.record.models import JSON, KINDS, RecordedValue, Recording, StepRecording

if TYPE_CHECKING:
    from nbharden.record.run import DEFAULT_CAP_BYTES, KERNEL_ENV, parse_parameter, record

#: Imported when first used: ``nbharden.record.run`` loads LibCST (0.3 s), and the workflow needs only
#: ``nbharden.record.watch`` of this package to start (a no-change re-run never runs a notebook).
_FROM_RUN = ("DEFAULT_CAP_BYTES", "KERNEL_ENV", "parse_parameter", "record")


def __getattr__(name: str) -> Any:
    if name in _FROM_RUN:
        from nbharden.record import run

        return getattr(run, name)
    raise AttributeError(f"module 'nbharden.record' has no attribute {name!r}")


__all__ = [
    "DEFAULT_CAP_BYTES",
    "JSON",
    "KERNEL_ENV",
    "KINDS",
    "RecordedValue",
    "Recording",
    "StepRecording",
    "parse_parameter",
    "record",
]
