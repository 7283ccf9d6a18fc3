"""Review stage and manifest: real files in tmp_path, every status, diffs that apply, no writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nbharden import __version__
from nbharden.errors import InternalError
from nbharden.manifest import (
    MANIFEST,
    build_manifest,
    is_safe_relpath,
    read_manifest,
    sha256_bytes,
    sha256_text,
)
from nbharden.models import ChangeSet, FileStatus, FileTree
from nbharden.review import JOURNAL, review, unified_diff
from nbharden.write import write_changes

V1 = {
    "pyproject.toml": '[project]\nname = "churn"\n',
    "src/churn/__init__.py": "",
    "src/churn/steps.py": "def load():\n    return 1\n",
    "src/churn/old.py": "OLD = 1\n",
}
V2 = {
    "pyproject.toml": '[project]\nname = "churn"\n',
    "src/churn/__init__.py": "",
    "src/churn/steps.py": "def load():\n    return 2\n",
    "src/churn/pipeline.py": "def run():\n    pass\n",
}


@pytest.fixture
def nb(tmp_path: Path) -> Path:
    path = tmp_path / "analysis.ipynb"
    path.write_text('{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}\n')
    return path


def rev(files: dict[str, str], out: Path, nb: Path) -> ChangeSet:
    return review(FileTree.of(files), out, notebook=nb, findings=(), plan=None, test_results=None)


def statuses(cs: ChangeSet) -> dict[str, FileStatus]:
    return {c.path: c.status for c in cs.changes}


def snapshot(root: Path) -> dict[str, tuple[bytes | str, int]]:
    """Every entry under root: content (or link target) and mtime_ns, without following links."""
    snap: dict[str, tuple[bytes | str, int]] = {}
    for dirpath, dirs, names in os.walk(root):
        for name in dirs + names:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if p.is_symlink():
                snap[str(p.relative_to(root))] = (os.readlink(p), st.st_mtime_ns)
            elif p.is_file():
                snap[str(p.relative_to(root))] = (p.read_bytes(), st.st_mtime_ns)
            else:
                snap[str(p.relative_to(root))] = ("dir", st.st_mtime_ns)
    return snap


def written(out: Path, nb: Path, files: dict[str, str]) -> None:
    write_changes(rev(files, out, nb), force=False)


# --- statuses -----------------------------------------------------------------------------------


def test_all_new_when_out_missing(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    cs = rev(V1, out, nb)
    assert statuses(cs) == {p: FileStatus.NEW for p in [*V1, MANIFEST]}
    assert [c.path for c in cs.changes] == sorted([*V1, MANIFEST])
    steps = next(c for c in cs.changes if c.path == "src/churn/steps.py")
    assert steps.diff.startswith("--- a/src/churn/steps.py\n+++ b/src/churn/steps.py\n")
    assert "+def load():\n+    return 1\n" in steps.diff
    assert steps.new_text == V1["src/churn/steps.py"]
    assert cs.has_changes and not out.exists()
    assert cs.out == out and cs.notebook == nb


def test_unchanged_after_write_is_idempotent(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    cs = rev(V1, out, nb)
    assert set(statuses(cs).values()) == {FileStatus.UNCHANGED}
    assert all(c.diff == "" for c in cs.changes)
    assert not cs.has_changes
    assert cs.extra == {}


def test_changed_removed_and_new(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    cs = rev(V2, out, nb)
    assert statuses(cs) == {
        MANIFEST: FileStatus.CHANGED,
        "pyproject.toml": FileStatus.UNCHANGED,
        "src/churn/__init__.py": FileStatus.UNCHANGED,
        "src/churn/old.py": FileStatus.REMOVED,
        "src/churn/pipeline.py": FileStatus.NEW,
        "src/churn/steps.py": FileStatus.CHANGED,
    }
    by = {c.path: c for c in cs.changes}
    assert by["src/churn/steps.py"].diff == (
        "--- a/src/churn/steps.py\n+++ b/src/churn/steps.py\n"
        "@@ -1,2 +1,2 @@\n def load():\n-    return 1\n+    return 2\n"
    )
    assert by["src/churn/old.py"].new_text is None
    assert by["src/churn/old.py"].diff == (
        "--- a/src/churn/old.py\n+++ b/src/churn/old.py\n@@ -1 +0,0 @@\n-OLD = 1\n"
    )


def test_hand_edit_is_edited_with_diff_from_disk(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    (out / "src/churn/steps.py").write_text("def load():\n    return 42  # mine\n")
    cs = rev(V2, out, nb)
    change = next(c for c in cs.changes if c.path == "src/churn/steps.py")
    assert change.status is FileStatus.EDITED
    assert "-    return 42  # mine\n+    return 2\n" in change.diff
    assert cs.edited == (change,)
    assert "blocked" not in cs.extra  # a plain edit is not a safety problem


def test_file_in_no_manifest_is_edited(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    (out / "src/churn").mkdir(parents=True)
    (out / "src/churn/steps.py").write_text("mine = True\n")
    (out / "src/churn/__init__.py").write_text("")  # same bytes as generated
    cs = rev(V1, out, nb)
    st = statuses(cs)
    assert st["src/churn/steps.py"] is FileStatus.EDITED
    assert st["src/churn/__init__.py"] is FileStatus.UNCHANGED
    assert st["pyproject.toml"] is FileStatus.NEW


def test_removed_but_edited_is_edited_without_new_text(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    (out / "src/churn/old.py").write_text("OLD = 2  # kept on purpose\n")
    change = next(c for c in rev(V2, out, nb).changes if c.path == "src/churn/old.py")
    assert change.status is FileStatus.EDITED
    assert change.new_text is None
    assert "-OLD = 2  # kept on purpose\n" in change.diff


def test_removed_and_already_deleted_is_not_listed(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    (out / "src/churn/old.py").unlink()
    assert "src/churn/old.py" not in statuses(rev(V2, out, nb))


def test_user_files_are_not_listed(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    (out / "notes.md").write_text("mine\n")
    (out / "src/churn/extra.py").write_text("x = 1\n")
    assert set(statuses(rev(V1, out, nb))) == {*V1, MANIFEST}


def test_deleted_generated_file_is_new_again(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    (out / "src/churn/steps.py").unlink()
    assert statuses(rev(V1, out, nb))["src/churn/steps.py"] is FileStatus.NEW


def test_corrupt_manifest_makes_differing_files_edited(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    (out / MANIFEST).write_text("{not json")
    st = statuses(rev(V2, out, nb))
    assert st["src/churn/steps.py"] is FileStatus.EDITED  # no proof nbharden wrote it
    assert st[MANIFEST] is FileStatus.CHANGED  # the manifest itself is always ours
    assert "src/churn/old.py" not in st  # no manifest: nothing known to remove
    assert st["pyproject.toml"] is FileStatus.UNCHANGED


def test_review_never_writes(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    (out / "src/churn/steps.py").write_text("edited\n")
    (out / "src/churn/.nbharden-tmp-stale").write_text("stale")
    before = snapshot(tmp_path)
    rev(V2, out, nb)
    rev({"a/b/c.py": "x\n"}, tmp_path / "elsewhere", nb)
    assert snapshot(tmp_path) == before


def test_unsafe_tree_path_is_an_internal_error(tmp_path: Path, nb: Path) -> None:
    for bad in ["../escape.py", "/abs.py", "a//b.py", "a/./b.py", "a\\b.py", ""]:
        with pytest.raises(InternalError, match="unsafe path"):
            rev({bad: "x"}, tmp_path / "out", nb)


def test_interrupted_write_is_reported(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    written(out, nb, V1)
    (out / JOURNAL).write_text("{}")
    assert rev(V1, out, nb).extra["interrupted_write"] is True


# --- blocked paths ------------------------------------------------------------------------------


def test_link_out_of_folder_is_blocked(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    (out / "pyproject.toml").symlink_to(secret)
    cs = rev(V1, out, nb)
    change = next(c for c in cs.changes if c.path == "pyproject.toml")
    assert change.status is FileStatus.EDITED
    assert "leading out of the output folder" in cs.extra["blocked"]["pyproject.toml"]
    assert "top secret" not in change.diff  # never read through a link leaving the folder


def test_linked_parent_folder_is_blocked(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "real").mkdir()
    (out / "src").symlink_to(out / "real")
    cs = rev(V1, out, nb)
    assert "src is a symbolic link" in cs.extra["blocked"]["src/churn/steps.py"]


def test_fifo_and_folder_in_the_way_are_blocked_without_hanging(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    (out / "src/churn/steps.py").mkdir(parents=True)
    os.mkfifo(out / "pyproject.toml")
    cs = rev(V1, out, nb)
    assert cs.extra["blocked"]["pyproject.toml"] == "not a regular file"
    assert cs.extra["blocked"]["src/churn/steps.py"] == "a folder is in the way"


def test_notebook_inside_tree_is_blocked(tmp_path: Path, nb: Path) -> None:
    cs = rev({"analysis.ipynb": "{}", "x.py": ""}, tmp_path, nb)
    assert "source notebook" in cs.extra["blocked"]["analysis.ipynb"]


def test_name_too_long_is_blocked(tmp_path: Path, nb: Path) -> None:
    cs = rev({"src/" + "n" * 300 + ".py": ""}, tmp_path / "out", nb)
    assert cs.extra["blocked"]["src/" + "n" * 300 + ".py"] == "file name too long"


# --- diffs --------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to apply the diffs")
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("a\nb\nc\n", "a\nB\nc\n"),
        ("a\nb", "a\nb\nc\n"),  # old lacks the final newline
        ("a\nb\n", "a\nb"),  # new lacks it
        ("x = '\x0c'\r\ny = 1\n", "x = '\x0c'\r\ny = 2\n"),  # \r and form feed are not line ends
        ("", "new file\n"),
        ("gone\n", ""),
    ],
)
def test_diff_applies_with_git(tmp_path: Path, old: str, new: str) -> None:
    target = tmp_path / "f.py"
    target.write_bytes(old.encode())
    patch = tmp_path / "change.patch"
    patch.write_bytes(unified_diff("f.py", old, new).encode())
    subprocess.run(
        ["git", "apply", "--unsafe-paths", "--directory", "", str(patch)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    assert target.read_bytes() == new.encode()


def test_diff_of_equal_texts_is_empty() -> None:
    assert unified_diff("f.py", "same\n", "same\n") == ""


def test_diff_of_undecodable_disk_bytes(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "pyproject.toml").write_bytes(b"\xff\xfe binary\n")
    change = next(c for c in rev(V1, out, nb).changes if c.path == "pyproject.toml")
    assert change.status is FileStatus.EDITED
    assert "-\ufffd\ufffd binary\n" in change.diff


# --- manifest -----------------------------------------------------------------------------------


def test_build_manifest_is_deterministic_and_clean() -> None:
    files = {"b.py": "b\n", "a/x.py": "x\n", MANIFEST: "ignored"}
    text = build_manifest(
        files, notebook_sha256="ab" * 32, notebook_name="/home/u/analysis.ipynb", tool_version="9.9"
    )
    again = build_manifest(
        dict(reversed(list(files.items()))),
        notebook_sha256="ab" * 32,
        notebook_name="/home/u/analysis.ipynb",
        tool_version="9.9",
    )
    assert text == again and text.endswith("}\n")
    data = json.loads(text)
    assert data == {
        "files": {"a/x.py": sha256_text("x\n"), "b.py": sha256_text("b\n")},
        "manifest_version": 1,
        "notebook": {"name": "analysis.ipynb", "sha256": "ab" * 32},
        "tool": {"name": "nbharden", "version": "9.9"},
    }
    assert text == json.dumps(data, sort_keys=True, indent=2) + "\n"
    assert "/home" not in text


def test_review_rebuilds_manifest_from_final_tree(tmp_path: Path, nb: Path) -> None:
    # An emit-stage manifest whose hashes predate formatting: review must hash the final texts.
    stale = build_manifest(
        {"a.py": "x=1"}, notebook_sha256="cd" * 32, notebook_name="nb.ipynb", tool_version="0.0.1"
    )
    cs = rev({"a.py": "x = 1\n", MANIFEST: stale}, tmp_path / "out", nb)
    manifest = json.loads(next(c.new_text for c in cs.changes if c.path == MANIFEST) or "")
    assert manifest["files"] == {"a.py": sha256_text("x = 1\n")}
    assert manifest["notebook"] == {"name": "nb.ipynb", "sha256": "cd" * 32}
    assert manifest["tool"]["version"] == "0.0.1"


def test_review_adds_manifest_when_tree_has_none(tmp_path: Path, nb: Path) -> None:
    cs = rev({"a.py": "x\n"}, tmp_path / "out", nb)
    manifest = json.loads(next(c.new_text for c in cs.changes if c.path == MANIFEST) or "")
    assert manifest["notebook"] == {
        "name": "analysis.ipynb",
        "sha256": sha256_bytes(nb.read_bytes()),
    }
    assert manifest["tool"]["version"] == __version__
    assert str(tmp_path) not in json.dumps(manifest)


def test_read_manifest(tmp_path: Path, nb: Path) -> None:
    out = tmp_path / "out"
    assert read_manifest(out) is None
    written(out, nb, V1)
    assert read_manifest(out) == {p: sha256_text(t) for p, t in V1.items()}
    good = (out / MANIFEST).read_text()
    for bad in ["", "[]", "{}", '{"files": [], "manifest_version": 1}', "\xff", "{" * 100_000]:
        (out / MANIFEST).write_text(bad)
        assert read_manifest(out) is None, bad
    data = json.loads(good)
    data["manifest_version"] = 99
    (out / MANIFEST).write_text(json.dumps(data))
    assert read_manifest(out) is None
    # A manifest that is a link is not trusted.
    (tmp_path / "elsewhere.json").write_text(good)
    (out / MANIFEST).unlink()
    (out / MANIFEST).symlink_to(tmp_path / "elsewhere.json")
    assert read_manifest(out) is None


def test_read_manifest_drops_unsafe_entries(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text(
        json.dumps(
            {
                "manifest_version": 1,
                "files": {
                    "ok.py": "0" * 64,
                    "../../etc/passwd": "0" * 64,
                    "/abs": "0" * 64,
                    "short.py": "abc",
                    "upper.py": "A" * 64,
                    MANIFEST: "0" * 64,
                },
            }
        )
    )
    assert read_manifest(tmp_path) == {"ok.py": "0" * 64}


def test_is_safe_relpath() -> None:
    assert is_safe_relpath("src/pkg/a.py") and is_safe_relpath(".nbharden.json")
    for bad in ["", "/a", "a/../b", "..", "a/", "./a", "a\\b", "a\x00b"]:
        assert not is_safe_relpath(bad), bad


def test_the_manifest_names_the_notebook_version_the_files_came_from(
    make_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """A save that lands while the notebook converts (JupyterLab saving during a Lab conversion):
    the manifest names the bytes the files were generated from, not the newer file. It used to read
    the notebook again at review, so it named the new version over the old files."""
    from nbharden import api
    from nbharden.settings import Settings

    nb = make_notebook([("rate = 0.2", ["parameters"]), "total = rate * 2"])
    converted = sha256_bytes(nb.read_bytes())
    saved_meanwhile = nb.read_text().replace("rate = 0.2", "rate = 0.5")

    def progress(stage: str, path: Path) -> None:
        if stage == "review":  # generated from the first version; now the user saves
            nb.write_text(saved_meanwhile)

    changes = api.convert(nb, Settings(out=tmp_path / "out", record=False), progress)
    files = {c.path: c.new_text for c in changes.changes}
    manifest = json.loads(files[MANIFEST] or "{}")
    (config,) = [text for path, text in files.items() if path.endswith("/config.py")]
    assert "default=0.2" in (config or "")
    assert manifest["notebook"]["sha256"] == converted != sha256_bytes(nb.read_bytes())
