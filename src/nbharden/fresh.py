"""The no-change re-run: when nothing a conversion reads has changed, its output is what is on disk already.

A conversion is a function of the notebook's bytes, the settings, nbharden itself and a few files beside the
notebook: the local modules it imports (copied into the package), the files its Config fields name (whether
they exist decides validation; a recorded suite carries their hashes). The manifest keeps all of that in its
``generation`` entry: a key over the notebook, its name, where the output folder is relative to it, the
settings and nbharden (version and a digest of its own files), the hashes of those input files, the module
names that were looked for beside the notebook and not found, and the findings the conversion reported.

:func:`fresh_changes` checks that entry against the notebook, settings and files as they are now, and every
generated file against its hash; when all match it returns the ``ChangeSet`` a full conversion would have
returned (every file unchanged, the same findings) without loading, analysing, generating or formatting
anything: the pre-commit hook, ``convert --check`` and the Lab's Refresh of an unchanged notebook.

What it does not see, and a full conversion would: an upgrade of ruff or black that formats differently (pass
``--force`` to regenerate), and for a recorded suite a change in the environment or in data the notebook
reads through a path that is not a Config field. A recorded conversion that writes always runs the notebook
again (that is how a suite is re-recorded); only its ``--check`` takes this path. The module imports nothing
heavy: it runs before anything else is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nbharden.manifest import MANIFEST, files_digest, manifest_files, parse_manifest, sha256_bytes
from nbharden.models import (
    ChangeSet,
    FileChange,
    FileStatus,
    Finding,
    Fix,
    Notebook,
    Plan,
    Severity,
    Span,
)
from nbharden.settings import Settings

#: The manifest's entry for the no-change re-run.
GENERATION = "generation"
#: Settings that decide what is done with the output, not what it is.
_NOT_IN_KEY = frozenset({"out", "force", "accept_changes", "verify"})


@functools.cache
def tool_digest() -> str:
    """nbharden's version and a digest of every file of the installed package (a source checkout changes
    without a new version)."""
    from nbharden import __version__

    root = Path(__file__).resolve().parent
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def generation_key(notebook: Path, notebook_sha256: str, out: Path, settings: Settings) -> str:
    """The key of everything but the input files that decides a conversion's output."""
    # The notebook's folder as seen from OUT, as the generated files name it (config's NOTEBOOK_DIR, the
    # README's command): two sibling folders with different names get the same output and the same key.
    where = os.path.relpath(
        os.path.realpath(notebook.absolute().parent), os.path.realpath(out.absolute())
    )
    values = {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(settings)
        if f.name not in _NOT_IN_KEY
    }
    data = {
        "tool": tool_digest(),
        "notebook": [notebook.name, notebook_sha256],
        "out": Path(where).as_posix(),
        "settings": values,
    }
    return sha256_bytes(json.dumps(data, sort_keys=True, default=str).encode())


def _file_digest(path: Path) -> str | None:
    try:
        return sha256_bytes(path.read_bytes())
    except OSError:
        return None


def _module_digest(folder: Path, name: str) -> str | None:
    """A digest of local module ``name``'s files beside the notebook as discovery reads them (their paths and
    text), None when there is none."""
    from nbharden.local_modules import module_files

    files = module_files(folder, name)
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = "\0unreadable"
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def _module_names(nb: Notebook) -> list[str]:
    """Every module name that local-module discovery looked for beside the notebook."""
    from nbharden.local_modules import imported_names, written_files

    sources = [c.code for c in nb.code_cells if "import" in c.code]
    sources += [text for module in nb.local_modules for _, text in module.files]
    written = {w.removesuffix(".py") for w in written_files(c.source for c in nb.code_cells)}
    return sorted({n for s in sources for n in imported_names(s)} - written)


def _input_paths(plan: Plan) -> list[str]:
    return sorted(
        {
            f.literal
            for f in plan.config_fields
            if f.literal and not f.secret and "://" not in f.literal
        }
    )


def generation_entry(
    nb: Notebook,
    plan: Plan,
    findings: Iterable[Finding],
    *,
    out: Path,
    settings: Settings,
) -> dict[str, Any]:
    """The manifest's ``generation`` entry for a conversion of ``nb`` (see the module docstring)."""
    folder = nb.path.parent
    return {
        "key": generation_key(nb.path, nb.sha256, out, settings),
        "modules": {name: _module_digest(folder, name) for name in _module_names(nb)},
        "inputs": {
            p: _file_digest(Path(p) if Path(p).is_absolute() else folder / p)
            for p in _input_paths(plan)
        },
        "findings": [_finding_json(f) for f in findings],
    }


def _finding_json(f: Finding) -> dict[str, Any]:
    span = [f.span.cell, f.span.line, f.span.col] if f.span else None
    return {
        "code": f.code,
        "message": f.message,
        "span": span,
        "severity": f.severity.value,
        "fix": f.fix.value,
        "applied": f.applied,
    }


def _finding(data: Any) -> Finding:
    span = data["span"]
    return Finding(
        str(data["code"]),
        str(data["message"]),
        Span(*map(int, span)) if span else None,
        Severity(data["severity"]),
        Fix(data["fix"]),
        bool(data["applied"]),
    )


def _inputs_unchanged(entry: dict[str, Any], folder: Path) -> bool:
    modules, files = entry.get("modules"), entry.get("inputs")
    if not isinstance(modules, dict) or not isinstance(files, dict):
        return False
    if any(_module_digest(folder, name) != digest for name, digest in modules.items()):
        return False
    return all(
        _file_digest(Path(p) if Path(p).is_absolute() else folder / p) == d
        for p, d in files.items()
    )


def _unchanged_file(
    root: Path, rel: str, digest: str | None, nb: Path, nb_st: os.stat_result | None
) -> FileChange | None:
    """``rel`` as an unchanged file when it is on disk as nbharden wrote it (``digest``; None: any content),
    reached without a link and readable as UTF-8; else None."""
    from nbharden.review import inspect_target

    state = inspect_target(root, rel, notebook=nb, notebook_st=nb_st)
    if not state.exists or state.is_link or state.problem is not None or state.data is None:
        return None
    if digest is not None and sha256_bytes(state.data) != digest:
        return None
    try:
        return FileChange(rel, FileStatus.UNCHANGED, "", state.data.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def fresh_changes(notebook: Path, out: Path, settings: Settings) -> ChangeSet | None:
    """The ``ChangeSet`` a conversion of ``notebook`` into ``out`` with ``settings`` would return, when the
    manifest there shows that nothing it reads has changed and no generated file was edited; else None (convert).

    Never raises for what it finds on disk: anything unexpected means None. ``settings.force`` always converts.
    """
    from nbharden.review import JOURNAL, notebook_stat, resolve_out

    if settings.force:
        return None
    notebook = Path(notebook)
    try:
        if notebook.stat().st_size > settings.max_bytes:
            return None
        nb_sha = sha256_bytes(notebook.read_bytes())
        root = resolve_out(out)
    except (OSError, ValueError):
        return None
    nb_st = notebook_stat(notebook)
    manifest = _unchanged_file(root, MANIFEST, None, notebook, nb_st)
    data = parse_manifest(manifest.new_text or "") if manifest is not None else None
    entry = data.get(GENERATION) if data is not None else None
    if (
        manifest is None
        or data is None
        or not isinstance(entry, dict)
        or os.path.lexists(root / JOURNAL)
    ):
        return None
    if entry.get("key") != generation_key(notebook, nb_sha, out, settings):
        return None
    if entry.get("outputs") != files_digest(data["files"]):
        return None
    if not _inputs_unchanged(entry, notebook.parent):
        return None
    changes = [manifest]
    for rel, digest in manifest_files(data).items():
        change = _unchanged_file(root, rel, digest, notebook, nb_st)
        if change is None:
            return None
        changes.append(change)
    try:
        findings = tuple(_finding(f) for f in entry.get("findings") or ())
    except (KeyError, TypeError, ValueError):
        return None
    tests: dict[str, Any] | None = None
    if settings.record:
        tier = (
            (data.get("recording") or {}).get("sandbox")
            if isinstance(data.get("recording"), dict)
            else None
        )
        tests = {
            "recorded": True,
            **({"sandbox": {"tier": tier}} if isinstance(tier, str) else {}),
        }
    changes.sort(key=lambda c: c.path)
    return ChangeSet(notebook, Path(out), tuple(changes), findings, None, tests, {"fresh": True})
