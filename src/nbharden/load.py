"""The load stage: notebook file -> ``Notebook``.

Reads the bytes, refuses what is unsafe or not a notebook, validates against the nbformat schema
itself (nbformat only *logs* schema errors), upgrades nbformat 3 to 4 with nbformat's converter,
derives cell ids deterministically (nbformat invents random ones), masks IPython syntax with
IPython's own transformer and checks every code cell with CPython's ``compile()`` before anything
hands it to LibCST (which crashes the process on some inputs).

Every refusal is an ``InputError`` whose message follows the error contract in RELIABILITY.md;
nothing else escapes ``load()``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import json
import os
import re
import stat
import time
import tokenize
import warnings
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from nbharden.errors import InputError
from nbharden.local_modules import discover, written_files, written_modules
from nbharden.masking import mask_ipython
from nbharden.models import Cell, Notebook
from nbharden.settings import Settings

__all__ = ["MAX_CODE_DEPTH", "load", "refuse_top_level_await", "too_deep"]

#: Versions whose schema nbformat ships; 3 is upgraded to 4 on load.
_SUPPORTED_MAJOR = (3, 4)
#: nbformat 4.5's cell-id rule; ids that break it are replaced like missing ones.
_CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
#: Languages that mean "a Python notebook" (kernelspec.language / language_info.name, lower-cased).
_PYTHON_LANGUAGE = re.compile(r"i?python[23]?")
#: CPython splits source lines on these only (str.splitlines() also splits on \f, \u2028, ...).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # notebooks may ``await`` at the top level
#: Deepest syntax tree (``ast`` levels) a code cell may have. LibCST's visitors recurse about three
#: Python frames a level and run out of stack near 320 levels at the top of a shallow stack (fewer
#: under a deep caller; a list or call takes two LibCST levels), where CPython compiles up to ~3x
#: deeper: a 150-deep list or a 330-term sum compiled, then crashed the analysis (exit 123).
#: Real cells stay under 40; 100 leaves room for every stage after this one.
MAX_CODE_DEPTH = 100
#: How long a read that found a half-saved notebook waits for the save to end (seconds). Jupyter's
#: contents manager saves in place: it copies the old file to ``.~<name>``, truncates and rewrites
#: the notebook, then removes the copy; a reader in between sees an empty or cut file. Real saves
#: take milliseconds; a stale ``.~`` copy left by a crash costs one wait, then the error.
SAVE_WAIT = 3.0


class _DuplicateKeyError(Exception):
    """Raised from the JSON object hook; located afterwards (the hook does not know positions)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def load(path: Path, *, settings: Settings) -> Notebook:
    """Read, validate, upgrade and mask the notebook at ``path``.

    Returns the ``Notebook`` with cells counted from 1 over all cells; ``Cell.code`` is the masked
    Python of code cells ("" for markdown and raw cells). Raises ``InputError`` (and only
    ``InputError``) for anything that cannot be loaded, with a message shaped ``path: reason`` or
    ``path:cell N:line:col: reason``.
    """
    try:
        with warnings.catch_warnings():
            # compile() warns about valid code ("1if x", "x is 1") straight onto stderr
            warnings.simplefilter("ignore", SyntaxWarning)
            return _load(path, settings)
    except InputError:
        raise
    except RecursionError as exc:
        raise InputError(
            "refused: notebook structure too deeply nested to process", path=path
        ) from exc
    except MemoryError as exc:
        raise InputError("refused: out of memory while loading the notebook", path=path) from exc
    except Exception as exc:  # noqa: BLE001 - the contract: load() only ever raises InputError
        raise InputError(
            f"cannot load notebook: unexpected {type(exc).__name__}: {_shorten(str(exc), 200)} "
            "(please report this with the notebook)",
            path=path,
        ) from exc


def _load(path: Path, settings: Settings) -> Notebook:
    data, raw = _read_json(path, settings)
    if not isinstance(raw, dict):
        raise InputError(
            f"invalid notebook at top level: expected a JSON object, got {_json_type(raw)}",
            path=path,
        )
    major, minor = _version(path, raw)
    _validate(path, raw, major, minor, upgraded=False)
    original_ids = _original_ids(raw) if major == 4 else []
    language = _language(path, raw, major)
    nb = _upgrade(path, raw, major)
    cells_json = nb["cells"]
    code_cells = sum(1 for c in cells_json if isinstance(c, dict) and c.get("cell_type") == "code")
    if code_cells > settings.max_code_cells:
        raise InputError(
            f"refused: {code_cells} code cells, more than the {settings.max_code_cells} nbharden "
            "converts (max-code-cells in [tool.nbharden])",
            path=path,
        )
    ids = _derive_ids(original_ids, len(cells_json))
    budget = _Budget(settings.max_syntax_nodes)
    cells = tuple(
        _cell(path, index, cell, cell_id, budget)
        for index, (cell, cell_id) in enumerate(zip(cells_json, ids, strict=True), 1)
    )
    metadata = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    kernelspec = metadata.get("kernelspec")
    kernel_name = kernelspec.get("name") if isinstance(kernelspec, dict) else None
    return Notebook(
        path=path,
        cells=cells,
        sha256=hashlib.sha256(data).hexdigest(),
        kernel_name=kernel_name if isinstance(kernel_name, str) and kernel_name else "python3",
        language=language,
        nbformat_version=(major, minor),
        # modules beside the notebook that it imports: the package carries a copy of each
        local_modules=discover(
            path.parent,
            (c.code for c in cells if c.cell_type == "code" and "import" in c.code),
            written_files(c.source for c in cells if c.cell_type == "code"),
            written_modules(c.source for c in cells if c.cell_type == "code"),
        ),
    )


# --- bytes, text, JSON ---------------------------------------------------------------------


def _read_json(path: Path, settings: Settings) -> tuple[bytes, Any]:
    """The file's bytes and their JSON, read again while an editor's save is under way (a
    torn read is an empty or cut file, never valid JSON); a file that is simply broken fails at
    once."""
    deadline = time.monotonic() + SAVE_WAIT
    while True:
        before = _stamp(path)
        data = _read_bytes(path, settings.max_bytes)
        try:
            return data, _parse_json(path, _decode(path, data), settings.max_depth)
        except InputError:
            saving = (path.parent / f".~{path.name}").exists() or _stamp(path) != before
            if not saving or time.monotonic() > deadline:
                raise
        time.sleep(0.02)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise InputError("cannot read: is a directory", path=path)
        if not stat.S_ISREG(info.st_mode):
            # a FIFO or device would block or never end
            raise InputError("cannot read: not a regular file", path=path)
        if info.st_size > max_bytes:
            raise InputError(f"refused: file larger than {max_bytes} bytes", path=path)
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    if len(data) > max_bytes:
        raise InputError(f"refused: file larger than {max_bytes} bytes", path=path)
    return data


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")  # strict: a notebook is UTF-8 by the JSON spec and nbformat's
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 (byte 0x{data[exc.start]:02X} at offset {exc.start})", path=path
        ) from exc


def _parse_json(path: Path, text: str, max_depth: int) -> Any:
    if text.startswith("\ufeff"):
        raise InputError(
            "not valid notebook JSON (line 1, col 1): starts with a byte order mark (BOM); "
            "save the file as UTF-8 without BOM",
            path=path,
        )
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid notebook JSON (line {exc.lineno}, col {exc.colno}): {exc.msg}", path=path
        ) from exc
    except _DuplicateKeyError as exc:
        line, col, key = _find_duplicate_key(text) or (1, 1, exc.key)
        raise InputError(
            f"not valid notebook JSON (line {line}, col {col}): duplicate key {key!r}", path=path
        ) from exc
    except RecursionError as exc:
        # json's C scanner guards its recursion, so very deep input ends here instead of crashing
        raise InputError(f"refused: nesting deeper than {max_depth}", path=path) from exc
    if _deeper_than(value, max_depth):
        raise InputError(f"refused: nesting deeper than {max_depth}", path=path)
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return result


#: JSON tokens that matter for finding keys: strings and structural characters (scalars skipped).
_JSON_TOKEN = re.compile(r'"(?:[^"\\]+|\\.)*"|[{}\[\],]')


def _find_duplicate_key(text: str) -> tuple[int, int, str] | None:
    """Line, column and name of the first repeated key in ``text``; only run on the error path."""
    # per open container: the keys seen so far (None for arrays) and whether a key comes next
    stack: list[tuple[set[str] | None, list[bool]]] = []
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token == "{":
            stack.append((set(), [True]))
        elif token == "[":
            stack.append((None, [False]))
        elif token in "]}":
            if stack:
                stack.pop()
        elif token == ",":
            if stack and stack[-1][0] is not None:
                stack[-1][1][0] = True
        elif stack and stack[-1][0] is not None and stack[-1][1][0]:
            keys = stack[-1][0]
            stack[-1][1][0] = False
            key = json.loads(token)
            if key in keys:
                offset = match.start()
                line = text.count("\n", 0, offset) + 1
                col = offset - (text.rfind("\n", 0, offset) + 1) + 1
                return line, col, key
            keys.add(key)
    return None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (the top level is 1); no recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --- version, schema, upgrade --------------------------------------------------------------


def _version(path: Path, raw: dict[str, Any]) -> tuple[int, int]:
    if "nbformat" not in raw:
        raise InputError(
            "unsupported nbformat version: the 'nbformat' key is missing; "
            "nbharden reads nbformat 3 and 4",
            path=path,
        )
    major = raw["nbformat"]
    if not _is_int(major) or major not in _SUPPORTED_MAJOR:
        raise InputError(
            f"unsupported nbformat version {_shorten(json.dumps(major), 40)}; "
            "nbharden reads nbformat 3 and 4",
            path=path,
        )
    minor: Any = raw.get("nbformat_minor", 0 if major == 3 else None)
    if not _is_int(minor) or minor < 0:
        raise InputError(
            f"unsupported nbformat version {major} with nbformat_minor "
            f"{_shorten(json.dumps(minor), 40)}; expected a non-negative integer",
            path=path,
        )
    return int(major), int(minor)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(path: Path, nb: dict[str, Any], major: int, minor: int, *, upgraded: bool) -> None:
    """Raise ``InputError`` at the JSON path of the first schema violation; ``nb`` is untouched.

    fastjsonschema over nbformat's own schema files, without importing nbformat's validator: that
    imports jsonschema, which can take seconds (its optional rfc3987-syntax builds a grammar at
    import), once per worker process and so once per refused notebook in a ``convert`` batch.
    """
    import fastjsonschema

    schema = _schema(major, minor)
    if schema is None:
        raise InputError(
            f"unsupported nbformat version {major}.{minor}; no schema for it", path=path
        )
    try:
        _compiled(major, minor, "")(nb)
        return
    except fastjsonschema.JsonSchemaException as exc:
        where, reason = _locate(schema, major, minor, nb, exc)
    prefix = (
        f"invalid notebook after upgrade from nbformat {major}" if upgraded else "invalid notebook"
    )
    raise InputError(f"{prefix} at {_json_path(where) or 'top level'}: {reason}", path=path)


#: The newest nbformat 4 minor with a schema file of its own; read from nbformat's folder.
def _schema_file(major: int, minor: int) -> tuple[Path | None, bool]:
    """nbformat's schema file for ``major.minor`` and whether it must be relaxed (a newer minor)."""
    spec = importlib.util.find_spec("nbformat")
    for folder in (spec.submodule_search_locations or ()) if spec is not None else ():
        versions = Path(folder) / f"v{major}"
        if major == 3:
            return versions / "nbformat.v3.schema.json", False
        exact = versions / f"nbformat.v{major}.{minor}.schema.json"
        if exact.is_file():
            return exact, False
        known = [
            int(m.group(1))
            for p in versions.glob(f"nbformat.v{major}.*.schema.json")
            if (m := re.fullmatch(rf"nbformat\.v{major}\.(\d+)\.schema\.json", p.name))
        ]
        if known and minor > max(known):
            # nbformat's rule for a notebook from the future: the latest schema, relaxed
            return versions / f"nbformat.v{major}.schema.json", True
    return None, False


@cache
def _schema(major: int, minor: int) -> dict[str, Any] | None:
    """The schema nbformat would validate ``major.minor`` with (3.x all use the one v3 schema)."""
    file, relax = _schema_file(major, 0 if major == 3 else minor)
    if file is None or not file.is_file():
        return None
    schema: dict[str, Any] = json.loads(file.read_text("utf-8"))
    if relax:  # as nbformat.validator does: no additionalProperties, unknown cells and outputs
        schema = _relaxed(schema)
        definitions = schema["definitions"]
        definitions["cell"]["oneOf"].append({"$ref": "#/definitions/unrecognized_cell"})
        definitions["output"]["oneOf"].append({"$ref": "#/definitions/unrecognized_output"})
    return schema


def _relaxed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: True if k == "additionalProperties" else _relaxed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_relaxed(v) for v in value]
    return value


@cache
def _compiled(major: int, minor: int, definition: str) -> Callable[[Any], Any]:
    """A fastjsonschema validator for the whole notebook (``definition`` ""), or for one of the
    schema's definitions (``"code_cell"``): the alternative a oneOf error is narrowed to."""
    import fastjsonschema

    schema = _schema(major, minor)
    assert schema is not None
    if definition:
        schema = {"definitions": schema["definitions"], "$ref": f"#/definitions/{definition}"}
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return validate


def _locate(
    schema: dict[str, Any], major: int, minor: int, nb: Any, exc: Any
) -> tuple[list[Any], str]:
    """The JSON path and a one-line reason for a fastjsonschema error, in jsonschema's words.

    A oneOf over cells or outputs is narrowed like nbformat does: to the cell or output type the
    item names, validated on its own, so the reason points inside it.
    """
    import fastjsonschema

    where: list[Any] = []
    value = nb
    for _ in range(16):  # cells hold outputs: two narrowings at most; the bound is a safeguard
        parts, item = _walk(value, list(exc.path)[1:])
        where.extend(parts)
        if exc.rule not in ("oneOf", "anyOf") or not isinstance(item, dict):
            return where, _reason(exc, item)
        key, known = _discriminator(exc.rule_definition)
        if key is None:
            return where, _reason(exc, item)
        if key not in item:
            return where, f"missing {key!r}; expected one of {', '.join(known)}"
        kind = item[key]
        if not isinstance(kind, str) or kind not in known:
            shown = _shorten(json.dumps(kind), 40)
            return where, f"unknown {key} {shown}; expected one of {', '.join(known)}"
        name = f"{kind}_cell" if key == "cell_type" else kind
        if name not in schema["definitions"]:
            return where, _reason(exc, item)
        try:
            _compiled(major, minor, name)(item)
        except fastjsonschema.JsonSchemaException as inner:
            exc, value = inner, item
            continue
        break
    return where, _reason(exc, value)


def _walk(value: Any, parts: list[str]) -> tuple[list[Any], Any]:
    """Follow fastjsonschema's path (``data.cells[0]`` split on dots and brackets) into ``value``.

    Keys holding dots (``image.png``) come back split: they are rejoined by trying the longest
    key that exists. Stops where the path no longer matches, so the result is always a real path.
    """
    found: list[Any] = []
    i = 0
    while i < len(parts):
        if isinstance(value, list) and parts[i].isdigit() and int(parts[i]) < len(value):
            found.append(int(parts[i]))
            value = value[int(parts[i])]
            i += 1
            continue
        if not isinstance(value, dict):
            break
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in value:
                found.append(key)
                value = value[key]
                i = j
                break
        else:
            break
    return found, value


def _discriminator(alternatives: Any) -> tuple[str | None, list[str]]:
    """("cell_type" or "output_type", the known values) when a oneOf tells items apart by it."""
    for key in ("cell_type", "output_type"):
        known = []
        for alternative in alternatives if isinstance(alternatives, list) else ():
            prop = (
                alternative.get("properties", {}).get(key)
                if isinstance(alternative, dict)
                else None
            )
            enum = prop.get("enum") if isinstance(prop, dict) else None
            if isinstance(enum, list) and enum and isinstance(enum[0], str):
                known.append(enum[0])
        if known:
            return key, known
    return None, []


def _reason(exc: Any, value: Any) -> str:
    """jsonschema's message for fastjsonschema's error ``exc`` about ``value`` (what nbformat's
    users know), shortened."""
    rule, definition, fallback = exc.rule, exc.rule_definition, str(exc.message)
    shown = _shorten(repr(value), 60)
    if rule == "type":
        types = definition if isinstance(definition, list) else [definition]
        reason = f"{shown} is not of type {', '.join(repr(t) for t in types)}"
    elif rule == "required" and isinstance(value, dict) and isinstance(definition, list):
        missing = next(
            (k for k in definition if k not in value), definition[0] if definition else ""
        )
        reason = f"{missing!r} is a required property"
    elif rule == "additionalProperties" and isinstance(value, dict):
        reason = "Additional properties are not allowed"
        schema = exc.definition if isinstance(exc.definition, dict) else {}
        known = schema.get("properties", {})
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        extras = [k for k in value if k not in known and not any(p.search(k) for p in patterns)]
        if extras:
            listed = _shorten(", ".join(repr(k) for k in extras), 80)
            reason += f" ({listed} {'was' if len(extras) == 1 else 'were'} unexpected)"
    elif rule == "enum":
        reason = f"{shown} is not one of {_shorten(repr(definition), 80)}"
    elif rule == "const":
        reason = f"{_shorten(repr(definition), 60)} was expected"
    elif rule == "minimum":
        reason = f"{shown} is less than the minimum of {definition!r}"
    elif rule == "maximum":
        reason = f"{shown} is greater than the maximum of {definition!r}"
    elif rule == "pattern":
        reason = f"{shown} does not match {definition!r}"
    elif rule in ("minLength", "minItems"):
        reason = f"{shown} is too short"
    elif rule in ("maxLength", "maxItems"):
        reason = f"{shown} is too long"
    elif rule == "uniqueItems":
        reason = f"{shown} has non-unique elements"
    elif rule in ("oneOf", "anyOf"):
        reason = f"{shown} is not valid under any of the given schemas"
        kinds = _alternative_types(definition)
        if kinds:
            reason = f"expected {' or '.join(kinds)}, got {_json_type(value)}"
    else:
        reason = fallback.removeprefix("data").lstrip(". ") or fallback
    return _shorten(reason.replace("\n", " "), 300)


def _alternative_types(alternatives: Any) -> list[str]:
    """["a string", "an array of strings"] for a oneOf that only differs by type (a cell source)."""
    kinds: list[str] = []
    for alternative in alternatives if isinstance(alternatives, list) else ():
        kind = alternative.get("type") if isinstance(alternative, dict) else None
        if not isinstance(kind, str):
            return []
        items = alternative.get("items")
        if kind == "array" and isinstance(items, dict) and isinstance(items.get("type"), str):
            kinds.append(f"an array of {items['type']}s")
        else:
            kinds.append(_json_type_name(kind))
    return kinds


def _json_path(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _json_type_name(kind: str) -> str:
    return {
        "array": "an array",
        "object": "an object",
        "integer": "an integer",
        "null": "null",
    }.get(kind, f"a {kind}")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _upgrade(path: Path, raw: dict[str, Any], major: int) -> Any:
    """The notebook as nbformat 4 (nbformat's own converter for v3; v4.x is already v4)."""
    if major == 4:
        return raw
    import nbformat
    from nbformat.converter import convert

    with warnings.catch_warnings():
        # the converter warns about (and invents random) cell ids; load() derives its own below
        warnings.simplefilter("ignore")
        try:
            upgraded = convert(nbformat.from_dict(raw), 4)  # type: ignore[no-untyped-call]
        except (nbformat.ValidationError, ValueError, KeyError, AttributeError, TypeError) as exc:
            raise InputError(
                f"cannot upgrade nbformat {major} to 4: {_shorten(str(exc), 200)}", path=path
            ) from exc
    _validate(path, upgraded, 4, int(upgraded.get("nbformat_minor", 5)), upgraded=True)
    return upgraded


def _original_ids(raw: dict[str, Any]) -> list[str | None]:
    ids: list[str | None] = []
    for cell in raw["cells"]:
        cell_id = cell.get("id") if isinstance(cell, dict) else None
        ids.append(cell_id if isinstance(cell_id, str) and _CELL_ID.fullmatch(cell_id) else None)
    return ids


def _derive_ids(original: list[str | None], count: int) -> list[str]:
    """Keep each valid first-seen id; the rest get ``cell-N`` (N counts from 1): loads agree."""
    kept: list[str | None] = []
    taken: set[str] = set()
    for i in range(count):
        cell_id = original[i] if i < len(original) else None
        if cell_id is not None and cell_id not in taken:
            taken.add(cell_id)
            kept.append(cell_id)
        else:
            kept.append(None)
    # an original id may look like a derived one ("cell-3"): take a free suffix, never collide
    result: list[str] = []
    for index, cell_id in enumerate(kept, 1):
        if cell_id is None:
            candidate, n = f"cell-{index}", 1
            while candidate in taken:
                n += 1
                candidate = f"cell-{index}-{n}"
            taken.add(candidate)
            cell_id = candidate
        result.append(cell_id)
    return result


def _language(path: Path, raw: dict[str, Any], major: int) -> str:
    """The kernel language; refuses anything but Python (a notebook that names none is Python)."""
    metadata = raw.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    candidates: list[Any] = []
    kernelspec = metadata.get("kernelspec")
    if isinstance(kernelspec, dict):
        candidates.append(kernelspec.get("language"))
    language_info = metadata.get("language_info")
    if isinstance(language_info, dict):
        candidates.append(language_info.get("name"))
    if major == 3:
        # v3 recorded the language per code cell; the converter drops it
        for worksheet in raw.get("worksheets") or ():
            cells = worksheet.get("cells") if isinstance(worksheet, dict) else None
            for cell in cells if isinstance(cells, list) else ():
                if isinstance(cell, dict) and cell.get("cell_type") == "code":
                    candidates.append(cell.get("language"))
    language = next((c for c in candidates if isinstance(c, str) and c.strip()), "python")
    if not _PYTHON_LANGUAGE.fullmatch(language.strip().lower()):
        raise InputError(f"kernel language {language!r} is not supported", path=path)
    return "python"


# --- cells --------------------------------------------------------------------------------


class _Budget:
    """Syntax nodes the notebook's code may still have: every later stage costs about 1 ms a node
    (LibCST, black): 10,000 lines took minutes. Shared by the cells, counted from the first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit


def _cell(path: Path, index: int, cell: Any, cell_id: str, budget: _Budget) -> Cell:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(part for part in source if isinstance(part, str))
    elif not isinstance(source, str):
        source = ""
    cell_type = cell.get("cell_type")
    if cell_type not in ("code", "markdown"):
        # raw cells, and unknown types a newer nbformat 4.x allows, are kept but never run
        cell_type = "raw"
    metadata = cell.get("metadata")
    tags_value = metadata.get("tags") if isinstance(metadata, dict) else None
    tags = (
        tuple(t for t in tags_value if isinstance(t, str)) if isinstance(tags_value, list) else ()
    )
    execution_count = cell.get("execution_count")
    code = ""
    if cell_type == "code":
        code = mask_ipython(source)
        _check_syntax(path, index, source, code, budget)
    return Cell(
        index=index,
        cell_type=cell_type,
        source=source,
        code=code,
        cell_id=cell_id,
        tags=tags,
        execution_count=execution_count if _is_int(execution_count) else None,
    )


def _check_syntax(path: Path, index: int, source: str, code: str, budget: _Budget) -> None:
    """Compile ``code`` with CPython; on failure raise ``InputError`` at the place in ``source``.

    Then measure it: too deep for LibCST, or more syntax nodes than the budget has left.
    """
    try:
        compile(code, f"<cell {index}>", "exec", flags=_COMPILE_FLAGS, dont_inherit=True)
        nodes, nested = _measure(code, MAX_CODE_DEPTH, budget.left)
    except SyntaxError as exc:
        message = exc.msg or "invalid syntax"
        if exc.lineno is None:
            line, col = _position_of_nul(source)
            raise InputError(message, path=path, cell=index, line=line, col=col) from exc
        line, col = _map_position(source, code, exc.lineno, exc.offset or 1)
        raise InputError(message, path=path, cell=index, line=line, col=col) from exc
    except RecursionError as exc:
        raise InputError(
            "refused: code nested too deeply to compile", path=path, cell=index
        ) from exc
    except MemoryError as exc:
        raise InputError(
            "refused: cell too large to compile (out of memory)", path=path, cell=index
        ) from exc
    except UnicodeEncodeError as exc:
        offset = next((i for i, ch in enumerate(source) if "\ud800" <= ch <= "\udfff"), None)
        line, col = _line_col(source, offset) if offset is not None else (None, None)
        raise InputError(
            "cell contains a lone surrogate character that is not valid Unicode text",
            path=path,
            cell=index,
            line=line,
            col=col,
        ) from exc
    except ValueError as exc:  # e.g. NUL bytes on some CPython versions
        line, col = _position_of_nul(source)
        raise InputError(
            _shorten(str(exc), 200), path=path, cell=index, line=line, col=col
        ) from exc
    if nodes > budget.left:
        raise InputError(
            f"refused: the code up to this cell has more than {budget.limit} syntax nodes, the "
            "most nbharden converts (max-syntax-nodes in [tool.nbharden])",
            path=path,
            cell=index,
        )
    budget.left -= nodes
    if nested is not None:
        line, col = _map_position(source, code, *nested)
        raise InputError(
            f"refused: code nested deeper than {MAX_CODE_DEPTH} levels (LibCST would run out of "
            "stack); split it into smaller statements",
            path=path,
            cell=index,
            line=line,
            col=col,
        )


#: Fields whose items LibCST wraps in a node of its own (Element, DictElement, Arg,
#: SubscriptElement + Index): one more level each (two for a subscript) than in Python's ast.
_WRAPPED: dict[type[ast.AST], dict[str, int]] = {
    ast.List: {"elts": 2},
    ast.Tuple: {"elts": 2},
    ast.Set: {"elts": 2},
    ast.Dict: {"keys": 2, "values": 2},
    ast.Call: {"args": 2, "keywords": 2},
    ast.Subscript: {"slice": 3},
}
_STRING_TOKENS = {tokenize.STRING, getattr(tokenize, "FSTRING_START", tokenize.STRING)}


def too_deep(code: str, limit: int = MAX_CODE_DEPTH) -> tuple[int, int] | None:
    """(line, col) in ``code`` where LibCST's tree would nest deeper than ``limit``; None if nowhere.

    Measured on Python's ast, adjusted where LibCST nests more: ``a and b and c`` and implicitly
    concatenated strings (``'a' 'b' 'c'``) are flat in ast but one level per operand in LibCST (its
    parser crashed the process on a 10,000-term ``and``), and wrapped items (see ``_WRAPPED``).
    Only called on code that compiles, so parsing cannot fail but by running out of stack.
    """
    if len(code) * 3 + 8 < limit:
        return None  # every level takes at least a third of a character
    return _measure(code, limit, None)[1]


def _measure(code: str, limit: int, budget: int | None) -> tuple[int, tuple[int, int] | None]:
    """Syntax nodes in ``code`` (counting stops past ``budget``) and where it is ``too_deep``."""
    tree = compile(
        code, "<cell>", "exec", flags=_COMPILE_FLAGS | ast.PyCF_ONLY_AST, dont_inherit=True
    )
    lines: list[bytes] = []
    nodes = 0
    # node, its depth, the nearest node with a position (ctx and operators have none), in an f-string
    stack: list[tuple[ast.AST, int, ast.AST, bool]] = [(tree, 1, tree, False)]
    while stack:
        node, depth, located, in_fstring = stack.pop()
        nodes += 1
        if budget is not None and nodes > budget:
            return nodes, None
        if hasattr(node, "lineno"):
            located = node
        if isinstance(node, ast.BoolOp):
            depth += len(node.values) - 1
        elif isinstance(node, ast.JoinedStr) or (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str | bytes)
            and not in_fstring
        ):
            depth += _string_pieces(code, node, lines, limit) - 1
        if depth > limit:
            return nodes, _node_position(code, located)
        wrapped = _WRAPPED.get(type(node), {})
        inside = in_fstring or isinstance(node, ast.JoinedStr)
        children = [
            (child, depth + wrapped.get(field, 1), located, inside)
            for field, value in ast.iter_fields(node)
            for child in (value if isinstance(value, list) else [value])
            if isinstance(child, ast.AST)
        ]
        stack.extend(reversed(children))  # the first offender in source order is reported
    return nodes, None


def refuse_top_level_await(nb: Notebook) -> None:
    """Raise ``InputError`` at the first ``await`` (``async for``, ``async with``) outside a
    function: a generated step is a plain function, where it would not compile.

    Called by the plan stage (``analyze`` reads such notebooks fine; ``convert`` cannot yet).
    """
    for cell in nb.code_cells:
        where = (
            _top_level_await(cell.code) if "async" in cell.code or "await" in cell.code else None
        )
        if where is not None:
            line, col = _map_position(cell.source, cell.code, *where)
            raise InputError(
                "top-level await cannot be converted yet (steps are plain functions); move the "
                "code into an async function and call it with asyncio.run()",
                path=nb.path,
                cell=cell.index,
                line=line,
                col=col,
            )


def _top_level_await(code: str) -> tuple[int, int] | None:
    tree = compile(
        code, "<cell>", "exec", flags=_COMPILE_FLAGS | ast.PyCF_ONLY_AST, dont_inherit=True
    )
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Await | ast.AsyncFor | ast.AsyncWith) or (
            isinstance(node, ast.comprehension) and node.is_async
        ):
            located = node if hasattr(node, "lineno") else node.target
            return _node_position(code, located)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue  # their own scope: await there is theirs (or a SyntaxError compile() gave)
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return None


def _string_pieces(code: str, node: ast.AST, lines: list[bytes], limit: int) -> int:
    """How many literals make up the string ``node`` (``'a' 'b'`` is two); 1 for short strings."""
    first, last = getattr(node, "lineno", 0), getattr(node, "end_lineno", None)
    start, end = getattr(node, "col_offset", 0), getattr(node, "end_col_offset", None)
    if last is None or end is None or (first == last and end - start < 2 * limit):
        return 1  # too short to hold more than ``limit`` pieces: each takes two characters or more
    if not lines:
        lines.extend(line.encode("utf-8", "surrogatepass") for line in _LINE_BREAK.split(code))
    if first == last:
        segment = lines[first - 1][start:end]
    else:
        segment = b"\n".join(
            [lines[first - 1][start:], *lines[first : last - 1], lines[last - 1][:end]]
        )
    text = "(" + segment.decode("utf-8", "surrogatepass") + "\n)"
    try:
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        return max(1, sum(1 for token in tokens if token.type in _STRING_TOKENS))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return 1


def _node_position(code: str, node: ast.AST) -> tuple[int, int]:
    """1-based (line, column in characters) of ``node``; ast counts columns in UTF-8 bytes."""
    line = getattr(node, "lineno", 1)
    lines = _LINE_BREAK.split(code)
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    prefix = text.encode("utf-8", "surrogatepass")[: getattr(node, "col_offset", 0)]
    return line, len(prefix.decode("utf-8", "ignore")) + 1


def _position_of_nul(source: str) -> tuple[int | None, int | None]:
    offset = source.find("\x00")
    return _line_col(source, offset) if offset >= 0 else (None, None)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = _LINE_BREAK.split(text[:offset])
    return len(before), len(before[-1]) + 1


def _map_position(source: str, code: str, lineno: int, offset: int) -> tuple[int, int]:
    """Map a (line, col) in the masked ``code`` back to ``source``.

    IPython keeps line numbers for line magics but joins backslash-continued magic lines, strips a
    common indent and ``>>>``/``In [1]:`` prompts. Transforms only remove lines and line prefixes,
    so the original line is the first one at or after ``lineno`` that ends with the masked text.
    """
    source_lines = _LINE_BREAK.split(source)
    code_lines = _LINE_BREAK.split(code)
    line, col = lineno, max(offset, 1)
    if 1 <= lineno <= len(code_lines):
        masked = code_lines[lineno - 1]
        for candidate in range(lineno, len(source_lines) + 1):
            original = source_lines[candidate - 1]
            if (masked.strip() and original.endswith(masked)) or original == masked:
                return candidate, col + len(original) - len(masked)
    return max(1, min(line, len(source_lines))), col
