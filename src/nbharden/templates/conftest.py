"""Set-up of the generated tests (written by nbharden; yours to change).

- The environment of the recorded run (thread counts, hash seed) is reproduced before anything
  imports numpy: pytest starts again with it when it differs (``_environment.py``).
- Hermetic: every test runs in a folder of its own under pytest's ``tmp_path``, holding a copy of
  the input files the notebook read (from ``data_dir``, relative paths kept): those Config names,
  and those its cells read by other paths when it was recorded; whatever a step writes lands
  there, so the notebook's folder is never touched. Figures go to ``tmp_path``.
- No network: an HTTP request (requests, httpx, urllib, pandas' ``read_*`` on a URL) gets the
  response recorded for it (``_http_replay.py``); a request nothing was recorded for, and any other
  network connection, skips the test with the reason.
- The input files come from ``data_dir`` (env ``<PKG>_DATA_DIR``, or ``.env`` in the folder pytest
  starts in, which every test's folder gets a copy of). A test that needs one that is
  absent is skipped, naming the file and the setting; tests that only replay recorded values run.
- Secrets get placeholders: the tests never see a real one.
"""

from __future__ import annotations

import hashlib
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
import _http_replay  # noqa: E402

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


#: The folder pytest started in: Config reads ``.env`` from there when the package runs.
START = Path.cwd()


def _dotenv() -> Path | None:
    """The ``.env`` the package would read: in the folder pytest started in, else next to tests/."""
    for folder in (START, HERE.parent):
        if (folder / ".env").is_file():
            return folder / ".env"
    return None


def _dotenv_value(name: str) -> str | None:
    """``name`` as ``.env`` sets it (python-dotenv, which pydantic-settings reads it with)."""
    found = _dotenv()
    if found is None:
        return None
    try:
        dotenv = importlib.import_module("dotenv")
    except ImportError:
        return None
    values: dict[str, str | None] = dotenv.dotenv_values(found)
    return next((v for k, v in values.items() if k.upper() == name.upper()), None)


def _data_dir(config: Any, prefix: str) -> Path:
    """Where the input files are: ``<PKG>_DATA_DIR`` (the environment, else ``.env``; relative to the
    folder of the ``.env``), else the Config's default (not validated).
    """
    given = os.environ.get(f"{prefix}DATA_DIR")
    if given:
        return Path(given)
    written = _dotenv_value(f"{prefix}DATA_DIR")
    dotenv = _dotenv()
    if written and dotenv is not None:
        return dotenv.parent / written
    field = config.model_fields.get("data_dir")
    default = field.get_default(call_default_factory=True) if field is not None else None
    return Path(default) if default is not None else Path.cwd()


def _step_of(test: str) -> dict[str, Any] | None:
    """The recorded step a test calls (``test_<step>``), or None (the pipeline, the config)."""
    step: dict[str, Any] | None = RECORDING.get("steps", {}).get(
        test.removeprefix("test_").split("[")[0]
    )
    return step


def _inputs() -> list[tuple[str | None, dict[str, Any]]]:
    """The files a test's folder gets: per Config field naming an input file, the field and its entry;
    then each other file the notebook's cells read by a relative path (``files_read``: a path built at
    run time), with no field.
    """
    fields = sorted(RECORDING.get("input_files", {}).items())
    read = [(None, entry) for entry in RECORDING.get("files_read", [])]
    return [*fields, *read]


def _needs(test: str, field: str | None, entry: dict[str, Any]) -> bool:
    """Whether ``test`` needs the input file: a step's test, those its step reads (its Config fields,
    the files its cells read); the other tests (pipeline) need them all; a test of a bad Config value
    needs none (it is rejected whether the files exist or not).
    """
    if test.startswith("test_config_rejects") or not entry.get("required", True):
        return False
    step = _step_of(test)
    if step is None:
        return True
    if field is not None:
        return field in {value["name"] for value in step.get("inputs", [])}
    return bool(set(entry.get("cells", [])) & set(step.get("cells", [])))


def _folder(tmp_path: Path) -> Path:
    """The test's working folder: ``tmp_path/work``, one level deeper per ``..`` the path of a file the
    notebook read or wrote starts with, so that ``../shared/input.csv`` stays inside ``tmp_path`` too.
    """
    paths = [entry["path"] for _, entry in _inputs()]
    paths += [entry["path"] for entry in RECORDING.get("files_written", [])]
    up = max((Path(path).parts.count("..") for path in paths), default=0)
    return tmp_path.joinpath(*["up"] * up, "work")


def _mirror(data_dir: Path, work: Path, test: str, prefix: str) -> list[str]:
    """Copy the input files into ``work`` at their relative paths; skip the test when one it needs is
    absent. Returns why the test must fail: the input files that differ from those the notebook read
    when it was recorded.
    """
    changed: list[str] = []
    for field, entry in _inputs():
        relative = Path(entry["path"])
        source = relative if relative.is_absolute() else data_dir / relative
        needed = _needs(test, field, entry)
        if not source.is_file():
            if needed:
                named = f" ({field})" if field else ""
                pytest.skip(
                    f"input file {entry['path']}{named} not found in {data_dir}: "
                    f"set {prefix}DATA_DIR to the folder that holds the notebook's data"
                )
            continue
        if needed:
            changed += _changed_since_recording(source, field, entry, prefix)
        if relative.is_absolute():
            continue
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.stat().st_size > COPY_LIMIT:
            target.symlink_to(source.resolve())
        else:
            shutil.copyfile(source, target)
    return changed


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _changed_since_recording(
    source: Path, field: str | None, entry: dict[str, Any], prefix: str
) -> list[str]:
    """Why the input file is not the one the values were recorded from (by sha256; nothing when it
    is): the recorded values would not follow from it. Suites without a recording compare nothing.
    """
    recorded = entry.get("sha256")
    if not recorded or not _INDEX.is_file():
        return []
    stat = source.stat()
    key = (str(source.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with source.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    if _DIGESTS[key] == recorded:
        return []
    named, setting = (f" ({field})", f" (or {field})") if field else ("", "")
    return [
        f"input file {source}{named} changed since the notebook was recorded "
        f"(sha256 {_DIGESTS[key][:12]}..., recorded {recorded[:12]}...): set {prefix}DATA_DIR"
        f"{setting} to the data the notebook was recorded with, or record it again "
        "with nbharden convert"
    ]


#: Why a test fails before it starts (an input file changed); its call phase reports it.
_CHANGED = pytest.StashKey[list[str]]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """A test whose input files changed since the recording fails (not an error of its set-up)."""
    changed = item.stash.get(_CHANGED, [])
    if changed:
        pytest.fail("\n".join(changed), pytrace=False)


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
    work = _folder(tmp_path)
    work.mkdir(parents=True)
    dotenv = _dotenv()
    if dotenv is not None:  # the other settings it holds; DATA_DIR and OUTPUT_DIR are set below
        shutil.copyfile(dotenv, work / ".env")
    changed = _mirror(_data_dir(config, prefix), work, request.node.name, prefix)
    request.node.stash[_CHANGED] = changed
    monkeypatch.setenv(f"{prefix}DATA_DIR", str(work))
    monkeypatch.setenv(f"{prefix}OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.chdir(work)
    _offline(monkeypatch)
    # HTTP requests get the responses of the recorded run, those of the step's own cells first
    step = _step_of(request.node.name)
    _http_replay.install(monkeypatch, RECORDING.get("http", []), step["cells"] if step else ())
    globals_before = _package_globals()
    yield
    _restore_globals(globals_before)


def _package_globals() -> dict[str, dict[str, Any]]:
    """The globals of the package's modules imported so far, by module."""
    return {
        name: dict(vars(module))
        for name, module in list(sys.modules.items())
        if name == PACKAGE or name.startswith(f"{PACKAGE}.")
    }


def _restore_globals(before: dict[str, dict[str, Any]]) -> None:
    """Put the package's module globals back as they were before the test: a step that rebinds one
    (``global Fraction`` in a later step) must not change what the next test's steps see.
    """
    for name, values in before.items():
        module = sys.modules.get(name)
        if module is None:
            continue
        now = vars(module)
        for key in [k for k in now if k not in values]:
            del now[key]
        now.update(values)
