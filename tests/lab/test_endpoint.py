"""The nbharden server extension, tested against a real Jupyter server (pytest-jupyter's
``jp_fetch``): answers, writes and refusals. Authentication is in test_auth.py, paths leaving the
root in test_paths.py, concurrent requests in test_concurrency.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from labutil import Fetch, post

# --- success --------------------------------------------------------------------------------------


async def test_convert_returns_the_change_set_and_writes_nothing(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    code, data = await post(jp_fetch, {"path": notebook})
    assert code == 200, data
    assert data["notebook"] == "work/sales.ipynb"
    assert data["out"] == "work/sales_prod"
    assert data["written"] is None
    paths = {f["path"]: f for f in data["files"]}
    assert ".nbharden.json" in paths
    py_files = [p for p in paths if p.endswith(".py")]
    assert py_files, paths
    assert {f["status"] for f in data["files"]} == {"new"}
    for path in [*py_files, ".nbharden.json"]:
        diff = paths[path]["diff"]
        assert diff.startswith("--- "), path
        assert "\n+" in diff, path
    # The findings carry cell and line, and name the notebook by its path under the root.
    assert data["findings"], "the fixture uses unseeded randomness and print: expected findings"
    for finding in data["findings"]:
        assert finding["path"] == "work/sales.ipynb"
        assert finding["code"].startswith("NBH")
        assert finding["cell"] is None or finding["cell"] >= 1
    assert not (jp_root_dir / "work" / "sales_prod").exists()


async def test_write_creates_the_files_and_the_manifest(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    code, data = await post(jp_fetch, {"path": notebook, "write": True})
    assert code == 200, data
    out = jp_root_dir / "work" / "sales_prod"
    assert sorted(data["written"]) == sorted(f["path"] for f in data["files"])
    for f in data["files"]:
        assert (out / f["path"]).is_file(), f["path"]
    manifest = json.loads((out / ".nbharden.json").read_text())
    assert set(manifest["files"]) == {f["path"] for f in data["files"]} - {".nbharden.json"}
    # A second conversion finds every file unchanged (the manifest was written and matches).
    code, again = await post(jp_fetch, {"path": notebook})
    assert code == 200, again
    assert {f["status"] for f in again["files"]} == {"unchanged"}


async def test_write_refuses_a_hand_edited_file_unless_forced(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    code, data = await post(jp_fetch, {"path": notebook, "write": True})
    assert code == 200, data
    out = jp_root_dir / "work" / "sales_prod"
    edited = next(f["path"] for f in data["files"] if f["path"].endswith(".py"))
    (out / edited).write_text("# my own edit\n")
    code, err = await post(jp_fetch, {"path": notebook, "write": True})
    assert code == 409, err
    assert err["kind"] == "edited" and edited in err["paths"]
    assert (out / edited).read_text() == "# my own edit\n"
    code, data = await post(jp_fetch, {"path": notebook, "write": True, "force": True})
    assert code == 200, data
    assert (out / edited).read_text() != "# my own edit\n"


async def test_custom_output_folder_inside_the_root(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    code, data = await post(jp_fetch, {"path": notebook, "out": "packages/sales", "write": True})
    assert code == 200, data
    assert data["out"] == "packages/sales"
    assert (jp_root_dir / "packages" / "sales" / ".nbharden.json").is_file()


async def test_rules_lists_every_rule(jp_fetch: Fetch) -> None:
    from nbharden.rules import RULES

    resp = await jp_fetch("nbharden", "rules", method="GET")
    rules = json.loads(resp.body)["rules"]
    assert [r["code"] for r in rules] == sorted(RULES)
    assert all(r["summary"] and r["severity"] and r["fix"] for r in rules)


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "JSON object"),
        (b'{"write": true}', "path"),
        (b'{"path": 3}', "path"),
        (b'{"path": "a.ipynb", "write": "yes"}', "write"),
        (b'{"path": "a.ipynb", "colour": "red"}', "colour"),
    ],
)
async def test_bad_body_is_a_400_with_a_message(
    jp_fetch: Fetch, notebook: str, body: bytes, needle: str
) -> None:
    code, err = await post(jp_fetch, body, raw=True)
    assert code == 400
    assert needle in err["message"]


async def test_missing_notebook_is_a_404(jp_fetch: Fetch, notebook: str) -> None:
    code, err = await post(jp_fetch, {"path": "work/nope.ipynb"})
    assert code == 404
    assert "work/nope.ipynb" in err["message"]


async def test_not_a_notebook_is_a_400(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    (jp_root_dir / "notes.txt").write_text("hello")
    code, err = await post(jp_fetch, {"path": "notes.txt"})
    assert code == 400
    assert ".ipynb" in err["message"]


async def test_broken_notebook_is_a_400_naming_the_file(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    (jp_root_dir / "broken.ipynb").write_text('{"cells": [')
    code, err = await post(jp_fetch, {"path": "broken.ipynb"})
    assert code == 400, err
    assert err["kind"] == "input"
    # The message names the notebook by its path under the root, never the server's absolute path.
    assert err["message"].startswith("broken.ipynb")
    assert str(jp_root_dir) not in err["message"]


async def test_hidden_notebook_is_refused(
    jp_fetch: Fetch, jp_root_dir: Path, notebook: str
) -> None:
    (jp_root_dir / ".secret").mkdir()
    (jp_root_dir / ".secret" / "x.ipynb").write_text((jp_root_dir / notebook).read_text())
    code, err = await post(jp_fetch, {"path": ".secret/x.ipynb"})
    assert code == 403, err
    assert "hidden" in err["message"]


async def test_a_static_write_into_a_recorded_folder_is_a_409_naming_what_would_be_lost(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    from nbharden.manifest import MANIFEST, sha256_text
    from nbharden.testgen.generate import RECORDING_INDEX

    code, data = await post(jp_fetch, {"path": notebook, "write": True})
    assert code == 200, data
    out = jp_root_dir / "work" / "sales_prod"
    manifest = json.loads((out / MANIFEST).read_text())
    (out / RECORDING_INDEX).parent.mkdir(parents=True)
    (out / RECORDING_INDEX).write_text("{}\n")
    manifest["files"][RECORDING_INDEX] = sha256_text("{}\n")
    (out / MANIFEST).write_text(json.dumps(manifest))
    code, err = await post(jp_fetch, {"path": notebook, "write": True})
    assert code == 409, err
    assert err["kind"] == "recording" and err["paths"] == [RECORDING_INDEX]
    assert err["message"].startswith("work/sales_prod: holds a test suite recorded")
    assert (out / RECORDING_INDEX).is_file()
    code, data = await post(jp_fetch, {"path": notebook, "write": True, "replace_recording": True})
    assert code == 200, data
    assert RECORDING_INDEX in data["written"] and not (out / RECORDING_INDEX).exists()
