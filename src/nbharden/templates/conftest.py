"""Set-up of the generated tests (written by nbharden; yours to change).

- The environment of the recorded run (thread counts, hash seed) is reproduced before anything
  imports numpy: pytest starts again with it when it differs (``_environment.py``).
- Hermetic: every test runs in a folder of its own under pytest's ``tmp_path``, holding a copy of
  the input files the notebook read (from ``data_dir``, relative paths kept); whatever a step
  writes lands there, so the notebook's folder is never touched. Figures go to ``tmp_path``.
- No network: a test that opens a network connection is skipped with the reason.
- The input files come from ``data_dir`` (env ``<PKG>_DATA_DIR``). A test that needs one that is
  absent is skipped, naming the file and the setting; tests that only replay recorded values run.
- Secrets get placeholders: the tests never see a real one.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import _environment  # noqa: E402 - the helpers next to this file import once HERE is on sys.path

#: The recording's index; a suite generated without one (``--no-record``) has only ``setup.json``:
#: the environment, the input files and the secrets' names.
_INDEX = HERE / "data" / "recording.json"
RECORDING: dict[str, Any] = json.loads(
    (_INDEX if _INDEX.is_file() else HERE / "setup.json").read_text(encoding="utf-8")
)

#: The package under test (filled in when the tests are generated).
PACKAGE = "example"
#: Input files bigger than this are linked into a test's folder, not copied.
COPY_LIMIT = 32 * 1024 * 1024


def pytest_configure(config: pytest.Config) -> None:
    """Reproduce the recorded environment before any test module imports numpy: when it differs,
    pytest starts again with it (with its own output streams, not pytest's capture files).
    """
    recorded = RECORDING.get("environment", {})
    if not _environment.differs(recorded):
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker: its controller restarted already
        os.environ.update(recorded)
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    _environment.reproduce(recorded)
    if capture is not None:
        capture.resume_global_capture()


def _config_class() -> Any:
    return importlib.import_module(f"{PACKAGE}.config").Config


def _data_dir(config: Any, prefix: str) -> Path:
    """Where the input files are: ``<PKG>_DATA_DIR``, else the Config's default (not validated)."""
    given = os.environ.get(f"{prefix}DATA_DIR")
    if given:
        return Path(given)
    field = config.model_fields.get("data_dir")
    default = field.get_default(call_default_factory=True) if field is not None else None
    return Path(default) if default is not None else Path.cwd()


def _needed_inputs(test: str) -> list[str]:
    """The Config fields naming input files that ``test`` needs: a step's test needs those the step
    reads; the other tests (pipeline, config) need them all.
    """
    inputs = RECORDING.get("input_files", {})
    if test.startswith("test_config_rejects"):  # a bad value is rejected whether the files exist or not
        return []
    step = RECORDING.get("steps", {}).get(test.removeprefix("test_").split("[")[0])
    if step is None:
        return sorted(inputs)
    read = {entry["name"] for entry in step.get("inputs", [])}
    return sorted(name for name in inputs if name in read)


def _mirror(data_dir: Path, work: Path, needed: list[str], prefix: str) -> None:
    """Copy the input files into ``work`` at their relative paths; skip the test when one is absent."""
    for name, entry in sorted(RECORDING.get("input_files", {}).items()):
        relative = Path(entry["path"])
        source = relative if relative.is_absolute() else data_dir / relative
        if not source.is_file():
            if name in needed and entry.get("required", True):
                pytest.skip(
                    f"input file {entry['path']} ({name}) not found in {data_dir}: "
                    f"set {prefix}DATA_DIR to the folder that holds the notebook's data"
                )
            continue
        if relative.is_absolute():
            continue
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.stat().st_size > COPY_LIMIT:
            target.symlink_to(source.resolve())
        else:
            shutil.copyfile(source, target)


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A network connection (this machine's included) skips the test: generated tests never go
    online, and a service the notebook read is not there when the tests run.
    """
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            pytest.skip(f"reads the network ({host}); generated tests never go online")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _hermetic(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    config = _config_class()
    prefix = str(config.model_config.get("env_prefix", ""))
    for name in RECORDING.get("secrets", []):  # a placeholder, never the real secret
        monkeypatch.setenv(f"{prefix}{name}".upper(), f"test-placeholder-{name}")
    work = tmp_path / "work"
    work.mkdir()
    _mirror(_data_dir(config, prefix), work, _needed_inputs(request.node.name), prefix)
    monkeypatch.setenv(f"{prefix}DATA_DIR", str(work))
    monkeypatch.setenv(f"{prefix}OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.chdir(work)
    _offline(monkeypatch)
    yield
