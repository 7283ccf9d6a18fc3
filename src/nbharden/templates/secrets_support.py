"""Secret masking for the generated ``support.py``, appended to it when the Config has secrets. Yours to change.

nbharden writes only the part below the marker (``nbharden.secrets.SECRETS_SUPPORT``); the imports above it are
those ``support.py`` already has, here so that this file is linted and type-checked on its own.
"""

# The generated code keeps the factory as Any (list[Any]), so mypy --strict sees hide's record as Any; changing that
# would change every generated package with secrets, so the check is relaxed here, above the marker.
# mypy: disable-error-code="no-any-return"

from __future__ import annotations

import logging
from typing import Any

# --- appended to support.py from here:

# logging's record factory before hide_secrets replaced it
_plain_records: list[Any] = []


def hide_secrets(config: Any) -> None:
    """From now on, every log message shows ``**********`` instead of a secret of ``config``.

    A step may log a secret by accident (a print of a connection URL, an error message
    quoting it): the record is rewritten before any handler sees it.
    """
    from pydantic import SecretStr

    fields = type(config).model_fields
    # a field left at the notebook's plain default ("", "none") holds no secret: masking it garbles logs
    values = sorted(
        {
            value.get_secret_value()
            for name, value in ((name, getattr(config, name)) for name in fields)
            if isinstance(value, SecretStr)
            and value.get_secret_value()
            and value != fields[name].default
        },
        key=len,
        reverse=True,
    )
    if not values:
        return
    if not _plain_records:
        _plain_records.append(logging.getLogRecordFactory())
    previous = _plain_records[0]

    def hide(text: str) -> str:
        for value in values:
            text = text.replace(value, "**********")
        return text

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        record.msg, record.args = hide(record.getMessage()), ()
        if record.exc_info:
            record.exc_text = hide(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
