"""Recording: run the notebook with papermill and an in-kernel recorder, keep what every
step read and wrote.

>>> recording = record(nb, plan, settings=settings, workdir=Path(tmp)) >>>
recording.step("load_data").outputs[0].kind 'value'
"""

from __future__ import annotations

from nbharden.record.models import JSON, KINDS, RecordedValue, Recording, StepRecording
from nbharden.record.run import DEFAULT_CAP_BYTES, KERNEL_ENV, parse_parameter, record

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
