"""The no-change re-run (``nbharden.fresh``): the manifest's ``generation`` entry lets a conversion of an unchanged
notebook return what is on disk without converting, and anything a conversion reads that changed converts again.

Each case compares the shortcut with a full conversion of the same request (``force`` skips the shortcut and
changes nothing else in a review): same files, same statuses, same findings.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from nbharden.manifest import MANIFEST, sha256_text
from nbharden.models import ChangeSet, FileStatus
from nbharden.settings import Settings
from nbharden.workflow import ConversionRequest, Mode, Reviewed, Written, fresh_for, run_conversion

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"


def _review(nb: Path, settings: Settings, mode: Mode = Mode.CHECK) -> ChangeSet:
    outcome = run_conversion(ConversionRequest(nb, settings, mode))
    assert isinstance(outcome, Reviewed)
    return outcome.changes


def _same(fast: ChangeSet, full: ChangeSet) -> None:
    assert [(c.path, c.status, c.new_text) for c in fast.changes] == [
        (c.path, c.status, c.new_text) for c in full.changes
    ]
    assert fast.findings == full.findings


@pytest.fixture
def converted(tmp_path: Path) -> tuple[Path, Settings]:
    """relative_csv (a Config field naming a data file) converted statically into ``out``."""
    folder = tmp_path / "nb"
    folder.mkdir()
    shutil.copy(GOLDEN / "relative_csv.ipynb", folder)
    shutil.copytree(GOLDEN / "data", folder / "data")
    nb = folder / "relative_csv.ipynb"
    settings = Settings(out=tmp_path / "out", record=False)
    assert isinstance(run_conversion(ConversionRequest(nb, settings)), Written)
    return nb, settings


def test_unchanged_notebook_is_not_converted_again(converted: tuple[Path, Settings]) -> None:
    nb, settings = converted
    for mode in (Mode.CHECK, Mode.DIFF):
        fast = _review(nb, settings, mode)
        assert fast.extra.get("fresh") is True
        assert not fast.has_changes
        full = _review(nb, dataclasses.replace(settings, force=True), mode)
        assert "fresh" not in full.extra
        _same(fast, full)
    written = run_conversion(ConversionRequest(nb, settings))
    assert isinstance(written, Written) and written.paths == ()
    entry = json.loads((settings.out / MANIFEST).read_text())["generation"]  # type: ignore[operator]
    assert set(entry["inputs"]) == {"data/sales.csv"}
    assert entry["findings"]


def _edit_notebook(nb: Path, settings: Settings) -> Settings:
    data = json.loads(nb.read_text())
    data["cells"][-1]["source"] = ["total = 1 + 1\n"]
    nb.write_text(json.dumps(data))
    return settings


def _edit_generated(nb: Path, settings: Settings) -> Settings:
    assert settings.out is not None
    config = next(settings.out.glob("src/*/config.py"))
    config.write_text(config.read_text() + "# hand edit\n")
    return settings


def _edit_data(nb: Path, settings: Settings) -> Settings:
    (nb.parent / "data" / "sales.csv").unlink()  # a file the notebook reads is gone: no must-exist check
    return settings


def _add_local_module(nb: Path, settings: Settings) -> Settings:
    (nb.parent / "pandas.py").write_text("X = 1\n")  # now the notebook's `import pandas` finds this file
    return settings


def _other_settings(nb: Path, settings: Settings) -> Settings:
    return dataclasses.replace(settings, ignore=("NBH604",))


def _recorded(nb: Path, settings: Settings) -> Settings:
    return dataclasses.replace(settings, record=True)


def _moved_out(nb: Path, settings: Settings) -> Settings:
    assert settings.out is not None
    moved = settings.out.parent / "elsewhere" / "out"
    moved.parent.mkdir()
    settings.out.rename(moved)
    return dataclasses.replace(settings, out=moved)


def _nbharden_changed(nb: Path, settings: Settings) -> Settings:
    from nbharden import fresh

    fresh.tool_digest.cache_clear()
    digest = fresh.tool_digest()
    fresh.tool_digest.cache_clear()
    fresh.tool_digest = lambda: digest + "0"  # type: ignore[assignment]
    return settings


@pytest.mark.parametrize(
    "change",
    [
        _edit_notebook,
        _edit_generated,
        _edit_data,
        _add_local_module,
        _other_settings,
        _recorded,
        _moved_out,
        _nbharden_changed,
    ],
)
def test_a_change_converts_again(
    converted: tuple[Path, Settings], change: Callable[[Path, Settings], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbharden import fresh

    monkeypatch.setattr(fresh, "tool_digest", fresh.tool_digest)  # restored after _nbharden_changed
    nb, settings = converted
    settings = change(nb, settings)
    assert fresh_for(ConversionRequest(nb, settings, Mode.CHECK), settings.out or Path()) is None


def test_recorded_requests_only_check_from_the_manifest(converted: tuple[Path, Settings]) -> None:
    """A recorded conversion that writes records again (and a recorded review finds the kernel's interpreter):
    only ``--check`` of a recorded request may use the manifest."""
    nb, settings = converted
    recorded = dataclasses.replace(settings, record=True)
    assert fresh_for(ConversionRequest(nb, recorded, Mode.WRITE), settings.out or Path()) is None
    assert fresh_for(ConversionRequest(nb, recorded, Mode.DIFF), settings.out or Path()) is None


def test_a_manifest_listing_other_files_is_not_the_record_of_a_conversion(
    converted: tuple[Path, Settings],
) -> None:
    nb, settings = converted
    assert settings.out is not None
    path = settings.out / MANIFEST
    data = json.loads(path.read_text())
    (settings.out / "tests" / "extra.py").write_text("X = 1\n")  # on disk as the manifest says
    data["files"]["tests/extra.py"] = sha256_text("X = 1\n")
    path.write_text(json.dumps(data))
    assert fresh_for(ConversionRequest(nb, settings, Mode.CHECK), settings.out) is None


def test_an_edited_file_is_reported_as_edited(converted: tuple[Path, Settings]) -> None:
    nb, settings = converted
    _edit_generated(nb, settings)
    changes = _review(nb, settings)
    assert "fresh" not in changes.extra
    assert [c.status for c in changes.changes if c.path.endswith("config.py")] == [FileStatus.EDITED]
