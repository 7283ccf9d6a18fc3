"""The manifest (``OUT/.nbharden.json``): what nbharden generated last time, so that hand edits can
be told apart.

It records the source notebook's sha256, the tool version and the sha256 of every generated file (of
its UTF-8 bytes, exactly as written). It is deterministic: sorted keys, no timestamps, no absolute
paths, so that two conversions of the same notebook give the same bytes. The manifest does not list
itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

#: File name of the manifest inside the output folder.
MANIFEST = ".nbharden.json"

#: Bumped when the manifest's layout changes incompatibly.
MANIFEST_VERSION = 1

#: Refuse to read a manifest larger than this: it only holds hashes.
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8: the bytes nbharden writes for it."""
    return sha256_bytes(text.encode("utf-8"))


def is_safe_relpath(path: str) -> bool:
    """Whether ``path`` is a clean relative POSIX path that stays inside its folder.

    Refuses absolute paths, ``..``, ``.``, empty segments, backslashes and NUL: a generated tree or
    a manifest on disk with such a path could otherwise point the writer outside the output folder.
    """
    if not path or "\x00" in path or "\\" in path or path.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def build_manifest(
    files: dict[str, str],
    *,
    notebook_sha256: str,
    notebook_name: str,
    tool_version: str,
    recording: dict[str, Any] | None = None,
    generation: dict[str, Any] | None = None,
) -> str:
    """The manifest's JSON text for the generated ``files`` (relative POSIX path -> text).

    ``generation``: what the conversion read, for the no-change re-run (``nbharden.fresh``).

    Returns sorted-key JSON with a trailing newline. A ``MANIFEST`` entry in ``files`` is ignored
    (the manifest does not list itself); an absolute ``notebook_name`` is reduced to its file name
    so no absolute path leaks in.
    """
    name = (
        PurePosixPath(notebook_name.replace("\\", "/")).name
        if _looks_absolute(notebook_name)
        else notebook_name
    )
    data: dict[str, Any] = {
        "files": {
            path: sha256_text(text) for path, text in sorted(files.items()) if path != MANIFEST
        },
        "manifest_version": MANIFEST_VERSION,
        "notebook": {"name": name, "sha256": notebook_sha256},
        "tool": {"name": "nbharden", "version": tool_version},
    }
    if recording:  # how the notebook was run, e.g. {"sandbox": "bwrap"}; absent when unsandboxed
        data["recording"] = recording
    if generation:
        # with a digest of the files it lists: a manifest whose list was changed afterwards is not taken as
        # the record of a conversion (nbharden.fresh)
        data["generation"] = {**generation, "outputs": files_digest(data["files"])}
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def files_digest(files: dict[str, Any]) -> str:
    """A digest of a manifest's ``files`` entry (path -> sha256)."""
    return sha256_text(json.dumps(files, sort_keys=True))


def _looks_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":")


def parse_manifest(text: str) -> dict[str, Any] | None:
    """The manifest's JSON object, or ``None`` if ``text`` is not a manifest nbharden can use."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return None
    version = data.get("manifest_version")
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        return None
    return data


def manifest_files(data: dict[str, Any]) -> dict[str, str]:
    """The ``path -> sha256`` entries of a parsed manifest that are well-formed.

    Entries with an unsafe path or a malformed hash are dropped: a file they name is then treated as
    one nbharden did not write, which is the conservative reading (it is never overwritten or
    removed without force).
    """
    files: dict[str, str] = {}
    raw = data.get("files")
    if not isinstance(raw, dict):
        return files
    for path, digest in raw.items():
        if (
            isinstance(path, str)
            and path != MANIFEST
            and is_safe_relpath(path)
            and isinstance(digest, str)
            and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)
        ):
            files[path] = digest
    return files


def read_manifest(out: Path) -> dict[str, str] | None:
    """The file hashes recorded in ``out``'s manifest, or ``None`` when there is no usable manifest.

    A manifest that is missing, unreadable, not JSON, of an unknown layout, not a regular file, or a
    symbolic link is treated as absent. Never raises for a bad manifest: it only makes more files
    count as hand-edited.
    """
    path = Path(out) / MANIFEST
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_MANIFEST_BYTES:
            return None
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    data = parse_manifest(text)
    if data is None:
        return None
    return manifest_files(data)
