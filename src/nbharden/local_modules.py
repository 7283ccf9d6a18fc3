"""Modules beside the notebook that it imports, and their copy inside the generated package.

Jupyter runs a notebook with its own folder as the working folder, which is on ``sys.path``: ``from
helper import norm`` finds ``helper.py`` next to the notebook. The generated package runs from
anywhere, so it carries a copy of every such module (or package) under ``<pkg>/vendored/``, and every
import of one, in the steps and inside the copied modules, becomes a relative import. They are never
dependencies to install from PyPI.

``discover`` reads them (load time: the one stage that reads the notebook's folder);
``nbharden.transform.vendor`` rewrites the imports and lays out the copies.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from nbharden.models import LocalModule

#: The subpackage of the generated package that holds the copies.
VENDORED = "vendored"
#: Limits on what is copied: a folder beside the notebook is not meant to be a whole project.
MAX_FILES = 200
MAX_BYTES = 5 * 1024 * 1024


def imported_names(source: str) -> list[str]:
    """Top-level names of the absolute imports in ``source`` (``import a.b``, ``from a.b import c`` -> a),
    including imports inside functions and branches. Unparsable code gives none."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
    return list(dict.fromkeys(names))


def module_files(folder: Path, name: str) -> list[Path]:
    """The files of module ``name`` in ``folder``: ``name.py``, or every .py file of package ``name/``."""
    single = folder / f"{name}.py"
    if single.is_file():
        return [single]
    package = folder / name
    if not package.is_dir() or not name.isidentifier():
        return []
    files = sorted(
        p
        for p in package.rglob("*.py")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    return files[:MAX_FILES]


def exports(source: str) -> tuple[str, ...]:
    """What ``from module import *`` binds: ``__all__`` when it is a literal list or tuple, else the
    top-level names that do not start with an underscore."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError):
                value = None
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return tuple(value)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    names.append(alias.asname or alias.name.split(".")[0])
    return tuple(n for n in dict.fromkeys(names) if not n.startswith("_"))


_WRITEFILE = re.compile(r"^%%writefile\s+(-a\s+|--append\s+)?(\S+)", re.M)  # (append flag, file)


def written_files(sources: Iterable[str]) -> set[str]:
    """The files cells write with ``%%writefile`` (as written: relative to the notebook's folder)."""
    return {m.group(2).strip("'\"") for s in sources for m in _WRITEFILE.finditer(s)}


def written_modules(sources: Iterable[str]) -> dict[str, str]:
    """Modules a cell writes whole, once, beside the notebook (``%%writefile helper.py`` then its code):
    file name -> the code. The cell's body is what the file holds whenever the notebook imports it, so the
    package carries it as a copy like any local module. Appended, rewritten or nested files are left out."""
    seen: dict[str, list[str]] = {}
    for source in sources:
        first, _, body = source.partition("\n")
        match = _WRITEFILE.match(first)
        if match is None:
            continue
        appends, name = match.group(1) is not None, match.group(2).strip("'\"")
        seen.setdefault(name, []).append("" if appends else body)
    return {
        name: bodies[0]
        for name, bodies in seen.items()
        if len(bodies) == 1
        and bodies[0]
        and name.endswith(".py")
        and "/" not in name
        and name[:-3].isidentifier()
    }


def discover(
    folder: Path,
    sources: Iterable[str],
    written: Iterable[str] = (),
    writes: dict[str, str] | None = None,
) -> tuple[LocalModule, ...]:
    """The modules and packages in ``folder`` that ``sources`` import, and those they import in turn.

    A name that is both a local file and an installed module is the local file, as in Jupyter (the
    working folder comes first on ``sys.path``). Unreadable files are left out. A module the notebook
    writes itself is copied from the cell that writes it (``writes``, from ``written_modules``), not from
    the disk; one it writes in another way (``written``: appended, several times) is left out, since a
    copy would be a snapshot of a file the run makes anew.
    """
    writes = writes or {}
    skip = {PurePosixPath(w).with_suffix("").as_posix() for w in written if w.endswith(".py")}
    skip -= {name[:-3] for name in writes}
    queue = [n for s in sources for n in imported_names(s) if n not in skip]
    found: dict[str, LocalModule] = {}
    seen: set[str] = set()
    budget = MAX_BYTES
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        files: list[tuple[str, str]] = []
        if f"{name}.py" in writes:
            files.append((f"{name}.py", writes[f"{name}.py"]))
        for path in [] if files else module_files(folder, name):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            budget -= len(text)
            if budget < 0:
                break
            files.append((path.relative_to(folder).as_posix(), text))
        if not files:
            continue
        found[name] = LocalModule(name, tuple(files))
        queue += [n for _, text in files for n in imported_names(text)]
    return tuple(found[n] for n in sorted(found))


def module_exports(modules: Iterable[LocalModule]) -> dict[str, tuple[str, ...]]:
    """Dotted module name (``helpers``, ``tools``, ``tools.sub``) -> the names ``import *`` binds."""
    out: dict[str, tuple[str, ...]] = {}
    for module in modules:
        for rel, text in module.files:
            parts = list(PurePosixPath(rel).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = exports(text)
    return out
