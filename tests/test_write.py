"""Write stage: real files in tmp_path, refusals, links, atomicity under SIGKILL, disk errors."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbharden.write as write_mod
from nbharden import api
from nbharden.errors import EXIT_BAD_INPUT, EXIT_CHANGES, EditedFileError, InternalError, WriteError
from nbharden.manifest import MANIFEST, read_manifest, sha256_bytes, sha256_text
from nbharden.models import ChangeSet, FileStatus, FileTree
from nbharden.review import JOURNAL, review
from nbharden.settings import Settings
from nbharden.write import TMP_PREFIX, check_out, recover, write_changes

SRC = Path(__file__).resolve().parents[1] / "src"

V1 = {
    "pyproject.toml": '[project]\nname = "churn"\n',
    "src/churn/__init__.py": "",
    "src/churn/steps.py": "def load():\n    return 1\n",
    "src/churn/sub/only.py": "ONLY = 1\n",
}
V2 = {
    "pyproject.toml": '[project]\nname = "churn"\n',
    "src/churn/__init__.py": "",
    "src/churn/steps.py": "def load():\n    return 2\n",
    "src/churn/pipeline.py": "def run():\n    pass\n",
    "tests/test_steps.py": "def test_load():\n    assert True\n",
}


@pytest.fixture
def nb(tmp_path: Path) -> Path:
    path = tmp_path / "analysis.ipynb"
    path.write_text('{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}\n')
    return path


def rev(files: dict[str, str], out: Path, nb: Path) -> ChangeSet:
    return review(FileTree.of(files), out, notebook=nb, findings=(), plan=None, test_results=None)


def files_on_disk(root: Path) -> dict[str, bytes]:
    """Every regular file under root (relative POSIX path -> bytes), links listed as '-> target'."""
    found: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            found[rel] = ("-> " + os.readlink(p)).encode() if p.is_symlink() else p.read_bytes()
    return found


def folders_on_disk(root: Path) -> set[str]:
    return {
        (Path(dirpath) / name).relative_to(root).as_posix()
        for dirpath, dirs, _names in os.walk(root)
        for name in dirs
    }


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Files with content, mtime and mode: proves that nothing at all was written."""
    snap = {}
    for rel, data in files_on_disk(root).items():
        st = os.lstat(root / rel)
        snap[rel] = (data, st.st_mtime_ns, st.st_mode)
    return snap


def generated(out: Path, nb: Path) -> Path:
    """``out`` as nbharden left it after writing V1 (with its manifest): the files a test then
    replaces by links, FIFOs, ... are ones nbharden generated."""
    write_changes(rev(V1, out, nb), force=False)
    return out


def plant_link(path: Path, target: Path | str) -> None:
    """Replace the file or folder at ``path`` by a symbolic link to ``target``."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)


def expected(files: dict[str, str], out: Path) -> dict[str, bytes]:
    return {p: t.encode() for p, t in files.items()} | {MANIFEST: (out / MANIFEST).read_bytes()}


# --- the normal path ------------------------------------------------------------------------------


def test_write_new_tree(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    old_umask = os.umask(0o077)
    try:
        done = write_changes(rev(V1, out, nb), force=False)
    finally:
        os.umask(old_umask)
    assert {c.path: c.status for c in done.changes} == {p: FileStatus.NEW for p in [*V1, MANIFEST]}
    assert files_on_disk(out) == expected(V1, out)
    for rel in [*V1, MANIFEST]:
        assert stat.S_IMODE(os.stat(out / rel).st_mode) == 0o644, rel
    assert read_manifest(out) == {p: sha256_text(t) for p, t in V1.items()}
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["notebook"] == {
        "name": "analysis.ipynb",
        "sha256": sha256_bytes(nb.read_bytes()),
    }


def test_second_write_is_a_no_op_and_review_is_unchanged(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    before = snapshot(out)
    time.sleep(0.01)
    again = rev(V1, out, nb)
    assert {c.status for c in again.changes} == {FileStatus.UNCHANGED}
    write_changes(again, force=False)
    assert snapshot(out) == before  # not even rewritten with the same bytes


def test_update_changes_adds_and_removes(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    (out / "notes.md").write_text("my notes\n")  # a user file: left alone
    done = write_changes(rev(V2, out, nb), force=False)
    status = {c.path: c.status for c in done.changes}
    assert status["src/churn/sub/only.py"] is FileStatus.REMOVED
    assert status["src/churn/steps.py"] is FileStatus.CHANGED
    assert status["tests/test_steps.py"] is FileStatus.NEW
    assert files_on_disk(out) == expected(V2, out) | {"notes.md": b"my notes\n"}
    assert not (out / "src/churn/sub").exists()  # emptied by the removal
    assert {c.status for c in rev(V2, out, nb).changes} == {FileStatus.UNCHANGED}


def test_removal_keeps_folder_with_other_content(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    (out / "src/churn/sub/mine.txt").write_text("mine")
    write_changes(rev(V2, out, nb), force=False)
    assert files_on_disk(out / "src/churn/sub") == {"mine.txt": b"mine"}


def test_api_write_uses_settings_force(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    api.write(rev(V1, out, nb))
    (out / "src/churn/steps.py").write_text("edited\n")
    with pytest.raises(EditedFileError):
        api.write(rev(V2, out, nb))
    api.write(rev(V2, out, nb), Settings(force=True))
    assert files_on_disk(out) == expected(V2, out)


# --- hand edits -----------------------------------------------------------------------------------


def test_hand_edit_is_refused_and_nothing_is_written(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    (out / "src/churn/steps.py").write_text("def load():\n    return 42\n")
    before = snapshot(out)
    with pytest.raises(EditedFileError) as info:
        write_changes(rev(V2, out, nb), force=False)
    assert str(info.value) == (
        "src/churn/steps.py: edited since generation; "
        "use --force or move the edit into the notebook"
    )
    assert info.value.exit_code == EXIT_CHANGES
    assert info.value.diff == (
        "--- a/src/churn/steps.py\n+++ b/src/churn/steps.py\n"
        "@@ -1,2 +1,2 @@\n def load():\n-    return 42\n+    return 2\n"
    )
    assert snapshot(out) == before  # the other changed and new files were not written either


def test_force_overwrites_hand_edit(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    (out / "src/churn/steps.py").write_text("edited\n")
    done = write_changes(rev(V2, out, nb), force=True)
    assert {c.path: c.status for c in done.changes}["src/churn/steps.py"] is FileStatus.EDITED
    assert files_on_disk(out) == expected(V2, out)


def test_several_edits_are_all_named(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    (out / "src/churn/steps.py").write_text("edited\n")
    (out / "pyproject.toml").write_text("edited\n")
    with pytest.raises(EditedFileError) as info:
        write_changes(rev(V2, out, nb), force=False)
    assert str(info.value).startswith("pyproject.toml: edited since generation;")
    assert "1 more edited: src/churn/steps.py" in str(info.value)
    assert "a/pyproject.toml" in info.value.diff and "a/src/churn/steps.py" in info.value.diff


def test_edit_after_review_is_still_refused(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    stale = rev(V2, out, nb)  # says CHANGED ...
    assert {c.path: c.status for c in stale.changes}["src/churn/steps.py"] is FileStatus.CHANGED
    (out / "src/churn/steps.py").write_text("edited in the meantime\n")  # ... then a hand edit
    with pytest.raises(EditedFileError, match="src/churn/steps.py: edited since generation"):
        write_changes(stale, force=False)
    assert (out / "src/churn/steps.py").read_text() == "edited in the meantime\n"


def test_edited_file_that_is_no_longer_generated(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    (out / "src/churn/sub/only.py").write_text("ONLY = 2\n")
    with pytest.raises(EditedFileError, match="no longer generated; use --force to delete it"):
        write_changes(rev(V2, out, nb), force=False)
    assert (out / "src/churn/sub/only.py").read_text() == "ONLY = 2\n"
    write_changes(rev(V2, out, nb), force=True)
    assert not (out / "src/churn/sub").exists()


@pytest.mark.parametrize("force", [False, True])
def test_existing_file_nbharden_did_not_write_is_refused(
    tmp_path: Path, nb: Path, force: bool
) -> None:
    """A file at a generated path that the manifest does not list is the user's: refused even
    with force (exit 2), and not called 'edited since generation'."""
    out = tmp_path / "out"
    write_changes(rev({"src/churn/steps.py": "x\n"}, out, nb), force=False)
    (out / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    before = snapshot(out)
    with pytest.raises(WriteError) as info:
        write_changes(rev(V1, out, nb), force=force)
    assert str(info.value) == (
        "pyproject.toml: a file nbharden did not generate (the manifest does not list it); "
        "refused to write"
    )
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert snapshot(out) == before


def test_folder_holding_files_without_a_manifest_is_refused(tmp_path: Path, nb: Path) -> None:
    """The refused conversion of the issue: ``--out H`` where H holds a user's pyproject.toml
    and an unrelated ``other/x_prod/.../.nbharden-tmp-abc``. Nothing is deleted or created."""
    home = tmp_path / "H"
    stray = home / "other" / "x_prod" / "src" / "x" / f"{TMP_PREFIX}abc"
    stray.parent.mkdir(parents=True)
    stray.write_text("someone else's\n")
    (home / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    before, dirs = snapshot(home), folders_on_disk(home)
    for force in (False, True):
        with pytest.raises(WriteError) as info:
            write_changes(rev(V1, home, nb), force=force)
        assert info.value.message == (
            "the output folder holds files nbharden did not generate (other) and no manifest "
            ".nbharden.json; choose a new or empty folder"
        )
        assert info.value.exit_code == EXIT_BAD_INPUT
        assert (snapshot(home), folders_on_disk(home)) == (before, dirs)
    assert recover(home) is False  # recovery alone does not touch it either
    assert (snapshot(home), folders_on_disk(home)) == (before, dirs)


@pytest.mark.parametrize("manifest", ["not json", '{"files": {}, "manifest_version": 99}'])
def test_unusable_manifest_is_refused(tmp_path: Path, nb: Path, manifest: str) -> None:
    out = generated(tmp_path / "out", nb)
    (out / MANIFEST).write_text(manifest)
    before = snapshot(out)
    with pytest.raises(WriteError, match="manifest .nbharden.json is damaged or from a newer"):
        write_changes(rev(V2, out, nb), force=True)
    assert snapshot(out) == before


def test_root_and_home_are_refused(
    tmp_path: Path, nb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()  # empty: refused for what it is, not for what it holds
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "to_home").symlink_to(home)
    with pytest.raises(WriteError, match="refusing to write into the home folder"):
        write_changes(rev(V1, tmp_path / "to_home", nb), force=True)
    assert list(home.iterdir()) == []
    # / only through the check that runs first (a regression must not write into / as root)
    for out in (Path("/"), tmp_path / "to_home"):
        with pytest.raises(WriteError, match="refusing to write into"):
            check_out(out)
    with pytest.raises(WriteError, match="^/: refusing to write into the file system root"):
        check_out(Path("/"))


def test_incomplete_change_set_is_refused(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    cs = rev(V1, out, nb)
    kept = tuple(c for c in cs.changes if c.path != "src/churn/steps.py")
    with pytest.raises(InternalError, match="lacks generated files: src/churn/steps.py"):
        write_changes(ChangeSet(cs.notebook, cs.out, kept, cs.findings), force=False)
    no_manifest = tuple(c for c in cs.changes if c.path != MANIFEST)
    with pytest.raises(InternalError, match="without a manifest"):
        write_changes(ChangeSet(cs.notebook, cs.out, no_manifest, cs.findings), force=False)
    assert files_on_disk(out) == expected(V1, out)


# --- links ----------------------------------------------------------------------------------------


def test_target_link_leading_out_is_refused_even_with_force(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    secret = tmp_path / "secret.txt"
    secret.write_text("keep\n")
    plant_link(out / "pyproject.toml", secret)
    before = snapshot(out)
    with pytest.raises(WriteError, match="^pyproject.toml: symbolic link leading out") as info:
        write_changes(rev(V2, out, nb), force=True)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert secret.read_text() == "keep\n"
    assert snapshot(out) == before


def test_dangling_link_leading_out_is_refused(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    plant_link(out / "pyproject.toml", tmp_path / "would-be-created.txt")
    with pytest.raises(WriteError, match="leading out of the output folder"):
        write_changes(rev(V1, out, nb), force=True)
    assert not (tmp_path / "would-be-created.txt").exists()


def test_target_link_inside_is_replaced_not_followed(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    (out / "real_steps.py").write_text("user code\n")
    plant_link(out / "src/churn/steps.py", "../../real_steps.py")
    cs = rev(V1, out, nb)
    assert {c.path: c.status for c in cs.changes}["src/churn/steps.py"] is FileStatus.EDITED
    with pytest.raises(EditedFileError):  # a link is never something nbharden wrote
        write_changes(cs, force=False)
    write_changes(cs, force=True)
    steps = out / "src/churn/steps.py"
    assert not steps.is_symlink() and steps.read_text() == V1["src/churn/steps.py"]
    assert (out / "real_steps.py").read_text() == "user code\n"


def test_dangling_link_inside_is_replaced(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    plant_link(out / "pyproject.toml", "missing.toml")
    write_changes(rev(V1, out, nb), force=True)
    assert not (out / "pyproject.toml").is_symlink()
    assert (out / "pyproject.toml").read_text() == V1["pyproject.toml"]
    assert not (out / "missing.toml").exists()


def test_link_equal_to_generated_content_is_left_alone(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    (out / "shared.toml").write_text(V1["pyproject.toml"])
    plant_link(out / "pyproject.toml", "shared.toml")
    done = write_changes(rev(V1, out, nb), force=False)
    assert {c.path: c.status for c in done.changes}["pyproject.toml"] is FileStatus.UNCHANGED
    assert (out / "pyproject.toml").is_symlink()


@pytest.mark.parametrize("inside", [False, True])
def test_linked_parent_folder_is_refused(tmp_path: Path, nb: Path, inside: bool) -> None:
    out = generated(tmp_path / "out", nb)
    elsewhere = (out / "real") if inside else (tmp_path / "outside")
    elsewhere.mkdir()
    plant_link(out / "src", elsewhere)
    before = snapshot(out)
    with pytest.raises(WriteError, match="src is a symbolic link"):
        write_changes(rev(V2, out, nb), force=True)
    assert list(elsewhere.iterdir()) == []
    assert snapshot(out) == before  # refused before anything was written


def test_output_folder_itself_may_be_a_link(tmp_path: Path, nb: Path) -> None:
    real = tmp_path / "real_out"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    write_changes(rev(V1, tmp_path / "out", nb), force=False)
    assert files_on_disk(real) == expected(V1, real)
    assert {c.status for c in rev(V1, tmp_path / "out", nb).changes} == {FileStatus.UNCHANGED}


def test_link_chain_leaving_the_folder_is_refused(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    secret = tmp_path / "secret.txt"
    secret.write_text("keep\n")
    (out / "hop").symlink_to(secret)  # inside -> outside
    plant_link(out / "pyproject.toml", "hop")  # inside -> inside -> outside
    with pytest.raises(WriteError, match="^pyproject.toml: symbolic link leading out"):
        write_changes(rev(V1, out, nb), force=True)
    assert secret.read_text() == "keep\n"
    assert (out / "pyproject.toml").is_symlink() and (out / "hop").is_symlink()


def test_link_out_and_back_in_is_inside(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    (out / "mine.toml").write_text("user\n")
    plant_link(out / "pyproject.toml", "../out/mine.toml")  # leaves by name only
    write_changes(rev(V1, out, nb), force=True)
    assert not (out / "pyproject.toml").is_symlink()
    assert (out / "mine.toml").read_text() == "user\n"


def test_link_to_a_folder_inside_is_replaced_with_force(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    (out / "data").mkdir(parents=True)
    (out / "data" / "keep.txt").write_text("keep\n")
    plant_link(out / "pyproject.toml", "data")
    cs = rev(V1, out, nb)
    assert {c.path: c.status for c in cs.changes}["pyproject.toml"] is FileStatus.EDITED
    with pytest.raises(EditedFileError):
        write_changes(cs, force=False)
    write_changes(cs, force=True)
    assert (out / "pyproject.toml").read_text() == V1["pyproject.toml"]
    assert files_on_disk(out / "data") == {"keep.txt": b"keep\n"}


def test_link_loop_is_replaced_not_followed(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    plant_link(out / "pyproject.toml", "loop")
    (out / "loop").symlink_to("pyproject.toml")
    write_changes(rev(V1, out, nb), force=True)
    assert (out / "pyproject.toml").read_text() == V1["pyproject.toml"]
    assert os.readlink(out / "loop") == "pyproject.toml"


@pytest.mark.parametrize("folder", ["src", "src/churn"])
def test_deeper_linked_folder_leaving_is_refused(tmp_path: Path, nb: Path, folder: str) -> None:
    out = generated(tmp_path / "out", nb)
    outside = tmp_path / "outside"
    outside.mkdir()
    plant_link(out / folder, outside)
    with pytest.raises(WriteError, match=f"{folder} is a symbolic link; nbharden does not write"):
        write_changes(rev(V1, out, nb), force=True)
    assert list(outside.iterdir()) == []


def test_removed_file_now_a_link_leading_out_is_refused(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    secret = tmp_path / "secret.py"
    secret.write_text("ONLY = 1\n")  # even the same bytes as the generated file had
    (out / "src/churn/sub/only.py").unlink()
    (out / "src/churn/sub/only.py").symlink_to(secret)
    before = snapshot(out)
    with pytest.raises(WriteError, match="^src/churn/sub/only.py: symbolic link leading out"):
        write_changes(rev(V2, out, nb), force=True)
    assert secret.read_text() == "ONLY = 1\n"
    assert snapshot(out) == before


def test_hard_link_to_a_file_outside_is_replaced_not_written(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    outside = tmp_path / "outside.py"
    os.link(out / "src/churn/steps.py", outside)  # same inode, outside the folder
    write_changes(rev(V2, out, nb), force=False)  # not an edit: same bytes as generated
    assert (out / "src/churn/steps.py").read_text() == V2["src/churn/steps.py"]
    assert outside.read_text() == V1["src/churn/steps.py"]  # the rename broke the link


def test_dangling_output_folder_link_is_followed(tmp_path: Path, nb: Path) -> None:
    """The output folder is what the user named: a link there is theirs to point anywhere."""
    (tmp_path / "out").symlink_to(tmp_path / "real")
    write_changes(rev(V1, tmp_path / "out", nb), force=False)
    assert files_on_disk(tmp_path / "real") == expected(V1, tmp_path / "real")


def test_fifo_target_is_refused(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    (out / "pyproject.toml").unlink()
    os.mkfifo(out / "pyproject.toml")  # opening it for reading would block
    with pytest.raises(WriteError, match="^pyproject.toml: not a regular file"):
        write_changes(rev(V1, out, nb), force=True)


def test_journal_step_through_a_linked_folder_is_refused(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.py").write_text("keep\n")
    (out / "linked").symlink_to(outside)
    (out / JOURNAL).write_text(
        json.dumps({"version": 1, "steps": [["remove", "linked/victim.py"]]})
    )
    with pytest.raises(WriteError, match="unusable journal"):
        recover(out)
    assert (outside / "victim.py").read_text() == "keep\n"
    (outside / f"{TMP_PREFIX}victim").write_text("keep\n")
    _stage_journal(out, [f"linked/{TMP_PREFIX}victim"], ["linked"])
    with pytest.raises(WriteError, match="unusable journal"):
        recover(out)
    assert (outside / f"{TMP_PREFIX}victim").read_text() == "keep\n"


@pytest.mark.slow
def test_cli_refuses_a_link_leading_out(tmp_path: Path) -> None:
    (tmp_path / "proj.ipynb").write_text(json.dumps(_notebook(["x = 1"])))
    assert _cli("convert", "proj.ipynb", "--no-record", cwd=tmp_path).returncode == 0
    secret = tmp_path / "secret.toml"
    secret.write_text("keep\n")
    plant_link(tmp_path / "proj_prod" / "pyproject.toml", secret)
    before = files_on_disk(tmp_path / "proj_prod")
    (tmp_path / "proj.ipynb").write_text(json.dumps(_notebook(["x = 2"])))
    proc = _cli("convert", "proj.ipynb", "--no-record", "--force", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr == (  # the path as seen from where the command ran
        "proj_prod/pyproject.toml: symbolic link leading out of the output folder; "
        "refused to write\n"
    )
    assert secret.read_text() == "keep\n"
    assert files_on_disk(tmp_path / "proj_prod") == before


# --- the notebook ---------------------------------------------------------------------------------


def test_notebook_is_never_written(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    inside = out / "analysis.ipynb"  # the notebook, kept in its own output folder
    shutil.copy(nb, inside)
    before = inside.read_bytes()
    with pytest.raises(WriteError, match="source notebook"):
        write_changes(rev({"analysis.ipynb": "{}", "x.py": "x\n"}, out, inside), force=True)
    assert inside.read_bytes() == before
    assert not (out / "x.py").exists()


def test_notebook_through_hard_and_soft_links_is_never_written(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.link(nb, out / "hard.py")
    (out / "soft.py").symlink_to(nb)
    (out / "inside.py").symlink_to("hard.py")
    # A manifest (say, crafted) that claims them as generated files.
    listed = {name: "0" * 64 for name in ["hard.py", "soft.py", "inside.py"]}
    (out / MANIFEST).write_text(json.dumps({"manifest_version": 1, "files": listed}))
    before = nb.read_bytes()
    for name in listed:
        with pytest.raises(WriteError, match="source notebook"):
            write_changes(rev({name: "x\n"}, out, nb), force=True)
    assert nb.read_bytes() == before


def test_notebook_is_never_removed(tmp_path: Path, nb: Path) -> None:
    # A manifest (say, crafted) that claims the notebook as a generated file no longer generated.
    (tmp_path / MANIFEST).write_text(
        json.dumps(
            {"manifest_version": 1, "files": {"analysis.ipynb": sha256_bytes(nb.read_bytes())}}
        )
    )
    cs = rev({"x.py": "x\n"}, tmp_path, nb)
    assert "source notebook" in cs.extra["blocked"]["analysis.ipynb"]
    with pytest.raises(WriteError, match="source notebook"):
        write_changes(cs, force=True)
    assert nb.exists()


# --- temp files, journal, lock --------------------------------------------------------------------


def _stage_journal(out: Path, temps: list[str], folders: list[str]) -> None:
    """What a SIGKILL while staging leaves: a stage journal naming the temp files and folders."""
    data = {"version": 2, "phase": "stage", "temps": temps, "folders": folders}
    (out / JOURNAL).write_text(json.dumps(data))


def test_temp_files_no_journal_names_are_left_alone(tmp_path: Path, nb: Path) -> None:
    """A writer cannot prove such a file is its own (another program's, a nested output
    folder's, an older nbharden's): it neither deletes it nor looks for it."""
    out = generated(tmp_path / "out", nb)
    strays = [f"{TMP_PREFIX}abc", f"src/churn/{TMP_PREFIX}def", f"notes/{TMP_PREFIX}x"]
    for rel in strays:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("not provably ours")
    write_changes(rev(V2, out, nb), force=False)
    assert recover(out) is False
    for rel in strays:
        assert (out / rel).read_text() == "not provably ours"


def test_stage_journal_is_rolled_back_exactly(tmp_path: Path, nb: Path) -> None:
    out = generated(tmp_path / "out", nb)
    ours = [f"src/churn/{TMP_PREFIX}t1", f"fresh/dir/{TMP_PREFIX}t2", f"{TMP_PREFIX}never-made"]
    for rel in ours[:2]:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("staged")
    (out / f"src/churn/{TMP_PREFIX}other").write_text("not named")
    (out / "mine").mkdir()  # named as a folder the write made, but not empty: kept
    (out / "mine/keep.txt").write_text("keep")
    _stage_journal(out, ours, ["fresh", "fresh/dir", "mine"])
    assert recover(out) is False  # rolled back, not replayed
    assert files_on_disk(out) == expected(V1, out) | {
        f"src/churn/{TMP_PREFIX}other": b"not named",
        "mine/keep.txt": b"keep",
    }
    assert not (out / "fresh").exists()


def test_recover_without_journal_changes_nothing(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    assert recover(out) is False  # no folder: nothing to do
    write_changes(rev(V1, out, nb), force=False)
    before = snapshot(out)
    assert recover(out) is False
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "journal",
    [
        "not json",
        '{"version": 1, "steps": [["rename", ".nbharden-tmp-a", "../escape.py"]]}',
        '{"version": 1, "steps": [["rename", "pyproject.toml", "src/churn/steps.py"]]}',
        '{"version": 1, "steps": [["rename", "a/.nbharden-tmp-a", "b/x.py"]]}',
        '{"version": 1, "steps": [["remove", "/etc/passwd"]]}',
        '{"version": 1, "steps": [["chmod", "x"]]}',
        '{"version": 2, "steps": []}',
        "[]",
        '{"version": 1, "steps": {"rename": "x"}}',
        '{"version": 1, "steps": [[]]}',
        '{"version": 1, "steps": [["remove", 1]]}',
        '{"version": 2, "phase": "stage", "temps": ["../.nbharden-tmp-x"], "folders": []}',
        '{"version": 2, "phase": "stage", "temps": ["src/churn/steps.py"], "folders": []}',
        '{"version": 2, "phase": "stage", "temps": [], "folders": ["/tmp"]}',
        '{"version": 2, "phase": "stage", "temps": {}, "folders": []}',
        '{"version": 2, "phase": "rollback", "steps": []}',
        '{"version": 2, "steps": []}',
        b"\xff\xfe not utf-8",
        "a folder",
    ],
)
def test_tampered_journal_is_refused(tmp_path: Path, nb: Path, journal: str | bytes) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    if journal == "a folder":
        (out / JOURNAL).mkdir()
    elif isinstance(journal, bytes):
        (out / JOURNAL).write_bytes(journal)
    else:
        (out / JOURNAL).write_text(journal)
    before = snapshot(out)
    with pytest.raises(WriteError, match="unusable journal"):
        write_changes(rev(V2, out, nb), force=False)
    assert snapshot(out) == before


def test_second_writer_waits_then_gives_up(
    tmp_path: Path, nb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(write_mod, "LOCK_TIMEOUT", 0.2)
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what another nbharden process holds while writing
        with pytest.raises(WriteError, match="another nbharden process is writing"):
            write_changes(rev(V1, out, nb), force=False)
    finally:
        os.close(fd)
    write_changes(rev(V1, out, nb), force=False)  # the lock is free again
    assert files_on_disk(out) == expected(V1, out)


# --- disk errors ----------------------------------------------------------------------------------


def test_out_is_a_file(tmp_path: Path, nb: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(WriteError, match="not a folder"):
        write_changes(rev(V1, tmp_path / "out", nb), force=False)


def test_parent_is_a_regular_file(tmp_path: Path, nb: Path) -> None:
    # Fails as root too (permission bits would not).
    out = generated(tmp_path / "out", nb)
    shutil.rmtree(out / "src")
    (out / "src").write_text("a file where a folder should be")
    before = snapshot(out)
    with pytest.raises(WriteError, match="^src/churn/__init__.py: src is in the way"):
        write_changes(rev(V1, out, nb), force=True)
    assert snapshot(out) == before


def test_name_too_long_fails_before_anything_is_written(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    files = {"a.py": "a\n", "z/" + "n" * 300 + ".py": "x\n"}
    with pytest.raises(WriteError, match="file name too long"):
        write_changes(rev(files, out, nb), force=False)
    assert not out.exists()  # not even the output folder


_CHILD_FSIZE = """
import json, resource, signal, sys
from pathlib import Path
from nbharden.errors import WriteError
from nbharden.models import FileTree
from nbharden.review import review
from nbharden.write import write_changes
out, nb, files = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())
cs = review(FileTree.of(files), out, notebook=nb, findings=(), plan=None, test_results=None)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
try:
    write_changes(cs, force=False)
except WriteError as exc:
    print(json.dumps({"message": str(exc), "path": str(exc.path)}))
"""


def test_disk_refusing_a_write_leaves_target_untouched(tmp_path: Path, nb: Path) -> None:
    # A real OSError from the kernel, as root too: a file size limit (EFBIG), like a full disk.
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    before = snapshot(out)
    big = V2 | {"src/churn/steps.py": "x = 1\n" * 20_000, "newdir/deep/a.py": "a\n"}
    tree = tmp_path / "tree.json"
    tree.write_text(json.dumps(big))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD_FSIZE, str(out), str(nb), str(tree)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    err = json.loads(proc.stdout)
    assert err["path"] == "src/churn/steps.py"
    assert err["message"].startswith("src/churn/steps.py: cannot write: File too large")
    assert snapshot(out) == before  # no temp file left, nothing replaced
    assert not (out / "newdir").exists()  # folders it created are gone too


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits; see the EFBIG test")
def test_read_only_folder(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    write_changes(rev(V1, out, nb), force=False)
    before = snapshot(out)
    os.chmod(out / "src/churn", 0o555)
    try:
        with pytest.raises(WriteError, match="cannot write: Permission denied"):
            write_changes(rev(V2, out, nb), force=False)
    finally:
        os.chmod(out / "src/churn", 0o755)
    assert snapshot(out) == before


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[None]:
    """A real small file system at ``path`` (tmpfs); skips the test where mounting is not allowed.

    Needs root (CAP_SYS_ADMIN): the test machine and CI run as root. Permission bits would not do:
    root ignores them.
    """
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8); the CI runs this as root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "nbharden-test", str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Use up every free byte of ``disk``; returns the filler file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        chunk = b"\0" * 65536
        while chunk:
            try:
                fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                chunk = chunk[: len(chunk) // 2]
    return filler


@pytest.mark.slow
def test_disk_full_exit_2_and_target_untouched(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with _tmpfs(disk, "2m"):
        nb = tmp_path / "proj.ipynb"
        nb.write_text(json.dumps(_notebook(["x = 1\ny = x * 2"])))
        out = disk / "out"
        first = _cli("convert", "proj.ipynb", "--no-record", "-o", str(out), cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        before = snapshot(out)
        filler = _fill(disk)
        nb.write_text(json.dumps(_notebook(["x = 2\ny = x * 3", "z = y + 1"])))
        full = _cli("convert", "proj.ipynb", "--no-record", "-o", str(out), cwd=tmp_path)
        assert full.returncode == EXIT_BAD_INPUT, full.stderr
        assert re.fullmatch(
            re.escape(str(out)) + r"/\S+: no space left on device; "
            r"the output folder was left as it was\n",
            full.stderr,
        ), full.stderr
        assert snapshot(out) == before  # not a byte, not a temp file, not a folder
        assert folders_on_disk(out) == {"src", "src/proj", "tests"}
        # With space again, the same command goes through.
        filler.unlink()
        again = _cli("convert", "proj.ipynb", "--no-record", "-o", str(out), cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert b"z = y + 1" in (out / "src/proj/steps.py").read_bytes()


def test_disk_full_while_creating_the_output_folder(tmp_path: Path, nb: Path) -> None:
    disk = tmp_path / "disk"
    with _tmpfs(disk, "1m"):
        _fill(disk)
        with pytest.raises(WriteError) as info:
            write_changes(rev(V1, disk / "out", nb), force=False)
        assert info.value.exit_code == EXIT_BAD_INPUT
        assert info.value.message == "no space left on device; the output folder was left as it was"
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no "out" either


@pytest.mark.slow
def test_read_only_file_system_exit_2_and_target_untouched(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with _tmpfs(disk, "2m"):
        nb = tmp_path / "proj.ipynb"
        nb.write_text(json.dumps(_notebook(["x = 1\ny = x * 2"])))
        out = disk / "out"
        assert (
            _cli("convert", "proj.ipynb", "--no-record", "-o", str(out), cwd=tmp_path).returncode
            == 0
        )
        before = snapshot(out)
        remount = subprocess.run(
            ["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True
        )
        assert remount.returncode == 0, remount.stderr
        # Up to date: nothing to write, so a read-only target is fine.
        same = _cli("convert", "proj.ipynb", "--no-record", "-o", str(out), cwd=tmp_path)
        assert same.returncode == 0, same.stderr
        nb.write_text(json.dumps(_notebook(["x = 2\ny = x * 3"])))
        ro = _cli("convert", "proj.ipynb", "--no-record", "-o", str(out), cwd=tmp_path)
        assert ro.returncode == EXIT_BAD_INPUT, ro.stderr
        assert re.fullmatch(
            re.escape(str(out)) + r"/\S+: read-only file system; "
            r"the output folder was left as it was\n",
            ro.stderr,
        ), ro.stderr
        assert snapshot(out) == before
        check = _cli(
            "convert", "proj.ipynb", "--no-record", "-o", str(out), "--check", cwd=tmp_path
        )
        assert check.returncode == EXIT_CHANGES and "would change" in check.stdout


def _pending_journal(out: Path, target: str, text: str) -> None:
    """The state a SIGKILL right after the commit point leaves: a durable temp file and a
    journal naming it (the format ``write_changes`` writes)."""
    tmp = f"{TMP_PREFIX}pending"
    (out / tmp).write_text(text)
    steps = [["rename", tmp, target]]
    (out / JOURNAL).write_text(json.dumps({"steps": steps, "version": 1}))


def test_journal_that_does_not_fit_leaves_the_folder_as_it_was(tmp_path: Path, nb: Path) -> None:
    """Room for the staged files, not for the journal: everything staged is removed again,
    including the folders made for new files."""
    disk = tmp_path / "disk"
    with _tmpfs(disk, "1m"):
        out = disk / "out"
        write_changes(rev(V1, out, nb), force=False)
        before = snapshot(out)
        cs = rev(V2, out, nb)
        staged = [c for c in cs.changes if c.status in (FileStatus.NEW, FileStatus.CHANGED)]
        filler = _fill(disk)
        page = os.statvfs(disk).f_bsize
        # tmpfs gives each small file one page: free exactly one per staged file and one for the
        # stage journal; the commit journal is written next to it before it replaces it.
        size = filler.stat().st_size
        os.truncate(filler, size - size % page - page * (len(staged) + 1))
        assert os.statvfs(disk).f_bavail == len(staged) + 1
        with pytest.raises(WriteError) as info:
            write_changes(cs, force=False)
        assert str(info.value) == (
            f"{JOURNAL}: no space left on device; the output folder was left as it was"
        )
        assert snapshot(out) == before
        assert not (out / "tests").exists()  # made for tests/test_steps.py, removed again


def test_read_only_file_system_in_process(tmp_path: Path, nb: Path) -> None:
    """Every way a read-only disk can refuse: a write, a new output folder, a pending journal,
    an interrupted write's temp file. Each is exit 2 naming the path; nothing changes."""
    disk = tmp_path / "disk"
    with _tmpfs(disk, "1m"):
        out, journaled, stale = disk / "out", disk / "journaled", disk / "stale"
        for folder in (out, journaled, stale):
            write_changes(rev(V1, folder, nb), force=False)
        _pending_journal(journaled, "pyproject.toml", "[project]\n")
        (stale / "src" / f"{TMP_PREFIX}old").write_text("stale")
        _stage_journal(stale, [f"src/{TMP_PREFIX}old"], [])
        before = {folder: snapshot(folder) for folder in (out, journaled, stale)}
        ro = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True)
        assert ro.returncode == 0, ro.stderr
        with pytest.raises(WriteError) as info:
            write_changes(rev(V2, out, nb), force=False)
        assert info.value.exit_code == EXIT_BAD_INPUT
        assert info.value.message == "read-only file system; the output folder was left as it was"
        with pytest.raises(WriteError) as info:
            write_changes(rev(V1, disk / "new", nb), force=False)
        assert info.value.message == "cannot create the output folder: read-only file system"
        with pytest.raises(WriteError) as info:
            recover(journaled)
        assert info.value.message == (
            "write interrupted: Read-only file system; run the conversion again to finish it"
        )
        with pytest.raises(WriteError) as info:
            write_changes(rev(V1, stale, nb), force=False)
        assert str(info.value) == (
            f"{stale}/src/{TMP_PREFIX}old: cannot delete a temp file of an interrupted write: "
            "Read-only file system"
        )
        assert {folder: snapshot(folder) for folder in (out, journaled, stale)} == before
        # Writable again, the pending write is finished by the next write.
        rw = subprocess.run(["mount", "-o", "remount,rw", str(disk)], capture_output=True)
        assert rw.returncode == 0, rw.stderr
        assert recover(journaled) is True
        assert (journaled / "pyproject.toml").read_text() == "[project]\n"


def test_signals_are_held_until_the_block_ends() -> None:
    """Real signals to this process inside the held block: nothing happens until it ends, then
    each is delivered once to the handler that was there before."""
    got: list[int] = []

    def handler(signum: int, frame: object) -> None:
        got.append(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with write_mod._signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert got == []
            assert signal.getsignal(signal.SIGINT) is not handler
        assert got == [signal.SIGINT, signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def test_write_from_another_thread(tmp_path: Path, nb: Path) -> None:
    """Like the Jupyter server's executor: no signal juggling there (Python only allows it in
    the main thread), and the write works."""
    import threading

    errors: list[BaseException] = []

    def work() -> None:
        try:
            write_changes(rev(V1, tmp_path / "out", nb), force=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert errors == []
    assert files_on_disk(tmp_path / "out") == expected(V1, tmp_path / "out")


# --- SIGKILL at any moment: old set or new set ----------------------------------------------------

#: Random kills per run of the suite; NBHARDEN_LONG=1 runs ten times more.
LONG = os.environ.get("NBHARDEN_LONG") == "1"
KILL_TRIALS = int(os.environ.get("NBHARDEN_KILL_TRIALS", 1000 if LONG else 100))
SIGNAL_TRIALS = 200 if LONG else 20

# A process that has imported nbharden and forks one child per trial: each child reviews the new
# tree against its folder, says "go", then writes. The test kills the child whenever it likes; the
# zygote reaps it only when asked, so the pid cannot be reused by another process in between.
_ZYGOTE = r"""
import json, os, signal, sys
from pathlib import Path
from nbharden.models import FileTree
from nbharden.review import review
from nbharden.write import write_changes

class Stop(BaseException):
    pass

def stop(signum, frame):
    raise Stop()

nb = Path(sys.argv[1])
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid:
        assert sys.stdin.readline() == "reap\n"
        status = os.waitpid(pid, 0)[1]
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)
        continue
    code = 1
    try:
        # Python's own dispositions, whatever the environment (a coverage tool) installed.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if req["sigterm"] == "raise":  # like the command line: SIGTERM raises, as Ctrl-C does
            signal.signal(signal.SIGTERM, stop)
        files = json.loads(Path(req["tree"]).read_text())
        cs = review(
            FileTree.of(files), Path(req["out"]), notebook=nb, findings=(), plan=None,
            test_results=None,
        )
        hook, k = req["hook"], req["k"]
        if hook:
            real, calls = getattr(os, hook), [0]
            def hooked(*args, **kwargs):
                if calls[0] == k:
                    # a real signal (SIGKILL unless asked), right before call k
                    os.kill(os.getpid(), req.get("hooksig", signal.SIGKILL))
                calls[0] += 1
                return real(*args, **kwargs)
            setattr(os, hook, hooked)
        print(json.dumps({"go": os.getpid()}), flush=True)
        write_changes(cs, force=False)
        code = 0
    except KeyboardInterrupt:
        code = 130
    except Stop:
        code = 143
    except BaseException as exc:
        print(json.dumps({"error": repr(exc)}), flush=True)
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        os._exit(code)
"""


class _Zygote:
    def __init__(self, nb: Path) -> None:
        # Without a coverage tool's subprocess hooks: they change signal handlers and os._exit.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE", "COVERAGE"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, str(nb)],
            env={**env, "PYTHONPATH": str(SRC)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _line(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the zygote died: {self.proc.wait()}"
        data: dict[str, object] = json.loads(line)
        assert "error" not in data, data["error"]
        return data

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def start(
        self,
        out: Path,
        tree: Path,
        hook: str = "",
        k: int = 0,
        sigterm: str = "default",
        hooksig: int = signal.SIGKILL,
    ) -> int:
        """Fork a writer; returns its pid once it is about to call write_changes. With ``hook``,
        the writer sends itself ``hooksig`` right before its call ``k`` of ``os.<hook>``."""
        request = {
            "out": str(out),
            "tree": str(tree),
            "hook": hook,
            "k": k,
            "sigterm": sigterm,
            "hooksig": int(hooksig),
        }
        self._send(json.dumps(request) + "\n")
        pid = self._line()["go"]
        assert isinstance(pid, int)
        return pid

    def reap(self) -> int:
        """Wait for the writer; its exit code (negative: killed by that signal)."""
        self._send("reap\n")
        code = self._line()["exit"]
        assert isinstance(code, int)
        return code

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _big_trees() -> tuple[dict[str, str], dict[str, str]]:
    old = {f"src/pkg/m{i:02d}.py": f"X = {i}\n" * 2000 for i in range(16)}
    old |= {f"old/gone{i}.py": "gone\n" * 500 for i in range(2)}
    new = {f"src/pkg/m{i:02d}.py": f"X = {i}  # v2\n" * 2000 for i in range(0, 16, 2)}
    new |= {f"src/pkg/m{i:02d}.py": old[f"src/pkg/m{i:02d}.py"] for i in range(1, 16, 2)}
    new |= {f"fresh/dir/n{i}.py": "new\n" * 800 for i in range(3)}
    return old, new


class _Crash:
    """A template folder holding the old set and the reference bytes of the old and the new set."""

    def __init__(self, tmp_path: Path, nb: Path, old: dict[str, str], new: dict[str, str]) -> None:
        self.tmp, self.nb, self.new = tmp_path, nb, new
        self.tree = tmp_path / "tree.json"
        self.tree.write_text(json.dumps(new))
        self.template = tmp_path / "template"
        write_changes(rev(old, self.template, nb), force=False)
        self.old_state = files_on_disk(self.template)
        ref = tmp_path / "ref"
        shutil.copytree(self.template, ref, symlinks=True)
        write_changes(rev(new, ref, nb), force=False)
        self.new_state = files_on_disk(ref)
        self.old_dirs = folders_on_disk(self.template)
        self.new_dirs = folders_on_disk(ref)
        assert self.old_state != self.new_state
        self.trial = 0
        self.zygote = _Zygote(nb)

    def fresh(self) -> Path:
        self.trial += 1
        out = self.tmp / f"trial{self.trial}"
        shutil.copytree(self.template, out, symlinks=True)
        return out

    def state(self, out: Path) -> str:
        """``old``, ``new`` or ``mixed`` (temp files, a journal, some files of each)."""
        files = files_on_disk(out)
        # A kill between creating a new folder and putting a temp file in it leaves that empty
        # folder (nothing records it); it is no file of either set.
        if files == self.old_state and folders_on_disk(out) - self.old_dirs <= self.new_dirs:
            return "old"
        if files == self.new_state and folders_on_disk(out) == self.new_dirs:
            return "new"
        return "mixed"

    def check(self, out: Path) -> str:
        """Recover like the next run does; the folder must then hold exactly the old or new set."""
        recover(out)
        state = self.state(out)
        assert state != "mixed", sorted(
            p
            for p in set(files_on_disk(out)) | set(self.new_state)
            if files_on_disk(out).get(p) != self.new_state.get(p)
        )
        return state

    def measure(self) -> float:
        """How long an uninterrupted write takes (the median of three)."""
        times = []
        for _ in range(3):
            out = self.fresh()
            self.zygote.start(out, self.tree)
            t0 = time.monotonic()
            assert self.zygote.reap() == 0
            times.append(time.monotonic() - t0)
            assert self.state(out) == "new"
        return sorted(times)[1]


@pytest.fixture
def crash_big(tmp_path: Path, nb: Path) -> Iterator[_Crash]:
    crash = _Crash(tmp_path, nb, *_big_trees())
    yield crash
    crash.zygote.close()


def test_sigkill_at_every_step_gives_old_or_new(tmp_path: Path, nb: Path) -> None:
    old = {"a.py": "a1\n", "b.py": "b\n", "gone/x.py": "x\n"}
    new = {"a.py": "a2\n", "b.py": "b\n", "made/y.py": "y\n"}
    crash = _Crash(tmp_path, nb, old, new)
    seen: dict[str, set[str]] = {}
    try:
        for hook in ["fsync", "replace", "unlink", "rmdir"]:
            for k in range(40):
                out = crash.fresh()
                crash.zygote.start(out, crash.tree, hook, k)
                code = crash.zygote.reap()
                assert code in (0, -signal.SIGKILL)
                seen.setdefault(hook, set()).add(crash.check(out))
                if code == 0:  # k went past the last call of this kind
                    break
            else:
                pytest.fail(f"more than 40 calls to os.{hook}?")
    finally:
        crash.zygote.close()
    # Kills before the commit point give the old set, kills after it the new set.
    assert seen["fsync"] == {"old", "new"} and seen["replace"] == {"old", "new"}


def test_sigkill_at_random_moments_gives_old_or_new(crash_big: _Crash, nb: Path) -> None:
    """KILL_TRIALS real SIGKILLs at random moments of a 21-file write (seeded: the moments are
    the same each run, what they hit varies with the machine's speed)."""
    crash = crash_big
    duration = crash.measure()
    rng = random.Random(20240601)
    outcomes: dict[str, int] = {"old": 0, "new": 0}
    mixed_before_recovery = 0
    for trial in range(KILL_TRIALS):
        out = crash.fresh()
        pid = crash.zygote.start(out, crash.tree)
        time.sleep(rng.uniform(0, duration * 1.2))
        os.kill(pid, signal.SIGKILL)
        assert crash.zygote.reap() in (0, -signal.SIGKILL)
        if crash.state(out) == "mixed":
            mixed_before_recovery += 1
        if trial % 10 == 0:
            # The next run itself: recovers, then writes the new set; no temp file is left.
            write_changes(rev(crash.new, out, nb), force=False)
            assert crash.state(out) == "new"
            outcomes["new"] += 1
        else:
            outcomes[crash.check(out)] += 1
        assert not any(TMP_PREFIX in p or p == JOURNAL for p in files_on_disk(out))
    assert sum(outcomes.values()) == KILL_TRIALS
    # The kills did land in the middle of writes: some left temp files or a journal behind.
    assert mixed_before_recovery > 0, outcomes
    assert outcomes["old"] > 0 and outcomes["new"] > 0, outcomes


@pytest.mark.parametrize(
    "sig, disposition, code",
    [
        (signal.SIGINT, "default", 130),  # Python's KeyboardInterrupt
        (signal.SIGTERM, "raise", 143),  # a handler that raises, like the command line's
        (signal.SIGTERM, "default", -signal.SIGTERM),  # no handler: the process just dies
    ],
)
@pytest.mark.slow
def test_sigint_and_sigterm_never_leave_a_mix(
    crash_big: _Crash, sig: signal.Signals, disposition: str, code: int
) -> None:
    """A catchable signal during a write is held until the write is complete: without any
    recovery the folder holds the old or the new set, no temp file, no journal."""
    crash = crash_big
    # In the middle of the write, for sure: the writer signals itself right before its k-th fsync
    # or rename. The write is finished, then the signal takes effect.
    for hook in ("fsync", "replace"):
        for k in (0, 3, 6):
            out = crash.fresh()
            crash.zygote.start(out, crash.tree, hook, k, sigterm=disposition, hooksig=sig)
            assert (crash.zygote.reap(), crash.state(out)) == (code, "new"), (hook, k)
    # And at random moments (seeded), before, during or after the write: never a mix. Whether
    # some land during the write depends on the machine's speed, so that is not asserted here.
    duration = crash.measure()
    rng = random.Random(int(sig) * 7 + len(disposition))
    for _ in range(SIGNAL_TRIALS):
        out = crash.fresh()
        pid = crash.zygote.start(out, crash.tree, sigterm=disposition)
        time.sleep(rng.uniform(0, duration))
        os.kill(pid, sig)
        exit_code = crash.zygote.reap()
        assert exit_code in (0, code)
        state = crash.state(out)  # no recover() here
        assert state != "mixed", files_on_disk(out).keys() - crash.new_state.keys()
        assert (exit_code, state) != (0, "old")  # a write that ended normally wrote the new set


def _notebook(cells: list[str]) -> dict[str, object]:
    return {
        "cells": [
            {
                "cell_type": "code",
                "id": f"c{i}",
                "metadata": {},
                "execution_count": i + 1,
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbharden", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_next_run_cleans_up_after_interrupted_writes(tmp_path: Path) -> None:
    """Left by real SIGKILLs: a commit journal and temp files (killed during the commit) in
    build/a, a stage journal and temp files (killed while staging) in build/b. The next
    ``nbharden convert`` finishes or drops them, then writes the new sets."""
    for name in ("a", "b"):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(_notebook(["x = 1\ny = x * 2"])))
    first = _cli("convert", "a.ipynb", "b.ipynb", "--no-record", "-o", "build", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    zygote = _Zygote(tmp_path / "a.ipynb")
    try:
        for name, hook, k in [("a", "replace", 2), ("b", "fsync", 3)]:
            out = tmp_path / "build" / name
            tree = {p: (out / p).read_text() + "# v2\n" for p in read_manifest(out)}
            (tmp_path / "tree.json").write_text(json.dumps(tree))
            zygote.start(out, tmp_path / "tree.json", hook, k)
            assert zygote.reap() == -signal.SIGKILL
            assert any(TMP_PREFIX in p for p in files_on_disk(out))
    finally:
        zygote.close()
    # a: killed after the commit point; b: killed while staging
    assert json.loads((tmp_path / "build/a" / JOURNAL).read_text())["phase"] == "commit"
    assert json.loads((tmp_path / "build/b" / JOURNAL).read_text())["phase"] == "stage"
    for name in ("a", "b"):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(_notebook(["x = 2\ny = x * 2"])))
    second = _cli("convert", "a.ipynb", "b.ipynb", "--no-record", "-o", "build", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    for name in ("a", "b"):
        out = tmp_path / "build" / name
        on_disk = files_on_disk(out)
        assert not any(TMP_PREFIX in p or p == JOURNAL for p in on_disk)
        assert set(on_disk) == {*read_manifest(out), MANIFEST}
        assert b"x = 2" in on_disk[f"src/{name}/steps.py"]
        again = api.convert(tmp_path / f"{name}.ipynb", Settings(record=False, out=out))
        assert {c.status for c in again.changes} == {FileStatus.UNCHANGED}


# --- the output folder replaced while the notebook runs ------------------------------------------


def _planting_notebook(out_name: str, elsewhere: Path) -> dict[str, object]:
    """A notebook whose code replaces its own output folder with a link to ``elsewhere`` (it runs
    twice when recorded: the second run finds the link in place)."""
    return _notebook(
        [
            "import os\nimport shutil\n"
            f"if not os.path.islink({out_name!r}):\n"
            f"    shutil.rmtree({out_name!r}, ignore_errors=True)\n"
            "    try:\n"
            f"        os.symlink({str(elsewhere)!r}, {out_name!r})\n"
            "    except OSError:\n"
            "        pass\n",
            "x = 1\ny = x * 2",
        ]
    )


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", ["--no-sandbox", "--sandbox"])
def test_cli_refuses_an_output_folder_the_recording_replaced_with_a_link(
    tmp_path: Path, sandbox: str
) -> None:
    """A real kernel runs a cell that replaces plant_prod (written by an earlier conversion) with
    a link to a folder elsewhere: the write is refused (exit 2, one line) and nothing is written
    there. Before, the package (with the notebook's code) went through the link, sandboxed or
    not."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "plant.ipynb").write_text(json.dumps(_planting_notebook("plant_prod", elsewhere)))
    first = _cli("convert", "plant.ipynb", "--no-record", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    proc = _cli("convert", "plant.ipynb", "--no-verify", sandbox, cwd=tmp_path)
    assert list(elsewhere.iterdir()) == []
    if sandbox == "--sandbox" and not (tmp_path / "plant_prod").is_symlink():
        # A sandbox that keeps the output folder out of the notebook's reach is fine too.
        assert proc.returncode == 0, proc.stderr
        return
    assert (tmp_path / "plant_prod").is_symlink(), "the notebook did not plant its link"
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"plant_prod: the output folder now leads to {elsewhere}: it was replaced (by a link) "
        "while the notebook ran; refused to write"
    )
    assert "Traceback" not in proc.stderr
    assert list(elsewhere.iterdir()) == []
