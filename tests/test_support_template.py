"""The runtime helpers every generated package gets (templates/support.py, templates/secrets_support.py), in process.

The goldens pin the text written into packages; these tests pin what that text does.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from nbharden import emit, secrets
from nbharden.templates import secrets_support, support, template_text


def test_the_templates_are_what_emit_writes() -> None:
    assert emit.SUPPORT == template_text("support.py")
    assert template_text("secrets_support.py").endswith(secrets.SECRETS_SUPPORT)
    # only what follows the marker is appended: support.py has the imports
    assert secrets.SECRETS_SUPPORT.startswith("\n# logging's record factory")
    assert "\nimport " not in secrets.SECRETS_SUPPORT


def test_json_formatter_keeps_the_extra_fields() -> None:
    record = logging.makeLogRecord({"msg": "step %s: start", "args": ("load",), "event": "step_start"})
    entry = json.loads(support.JsonFormatter().format(record))
    assert entry["message"] == "step load: start" and entry["event"] == "step_start"


def test_a_failing_step_is_named_in_the_error_and_not_counted() -> None:
    with pytest.raises(KeyError) as raised, support.run_pipeline("demo") as log:
        with log.step("load") as step:
            step.produced(frame=pd.DataFrame({"a": [1, 2]}))
        with log.step("train"):
            raise KeyError("label")
    assert raised.value.__notes__ == ["in step 'train' of the demo pipeline"]
    assert [s.name for s in log.steps] == ["load"] and log.steps[0].outputs["frame"]["shape"] == [2, 1]


def test_require_columns_names_what_differs() -> None:
    frame = pd.DataFrame({"age": [1, 2], "name": ["a", "b"]})
    support.require_columns(frame, "df", "load", {"age": "int64"})
    with pytest.raises(support.DataContractError, match=r"step load: frame 'df' lacks column\(s\) \['income'\]"):
        support.require_columns(frame, "df", "load", {"income": "float64"})
    with pytest.raises(support.DataContractError, match="column 'age' is int64, expected float64"):
        support.require_columns(frame, "df", "load", {"age": "float64"})


class _Config(BaseModel):
    password: SecretStr
    user: str = "ann"


@contextlib.contextmanager
def _restored_record_factory() -> Iterator[None]:
    original = logging.getLogRecordFactory()
    try:
        yield
    finally:
        logging.setLogRecordFactory(original)


@given(secret=st.text(st.characters(codec="ascii", exclude_categories=["Cc"], exclude_characters="*"), min_size=4))
def test_hide_secrets_masks_every_log_message(secret: str) -> None:
    with _restored_record_factory():
        secrets_support.hide_secrets(_Config(password=SecretStr(secret)))
        factory = logging.getLogRecordFactory()
        record = factory("x", logging.INFO, __file__, 1, "dsn=%s", (f"db://{secret}@h",), None)
    assert secret not in record.getMessage() and "**********" in record.getMessage()
    assert record.args == ()
    plain = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "dsn=%s", (secret,), None)
    assert plain.getMessage() == f"dsn={secret}"
