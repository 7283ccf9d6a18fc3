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
import json
import os
import re
import stat
import warnings
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from nbharden.errors import InputError
from nbharden.masking import mask_ipython
from nbharden.models import Cell, Notebook
from nbharden.settings import Settings

__all__ = ["load"]

#: Versions whose schema nbformat ships; 3 is upgraded to 4 on load.
_SUPPORTED_MAJOR = (3, 4)
#: nbformat 4.5's cell-id rule; ids that break it are replaced like missing ones.
_CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
#: Languages that mean "a Python notebook" (kernelspec.language / language_info.name, lower-cased).
_PYTHON_LANGUAGE = re.compile(r"i?python[23]?")
#: CPython splits source lines on these only (str.splitlines() also splits on \f, \u2028, ...).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # notebooks may ``await`` at the top level


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
    data = _read_bytes(path, settings.max_bytes)
    text = _decode(path, data)
    raw = _parse_json(path, text, settings.max_depth)
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
    ids = _derive_ids(original_ids, len(cells_json))
    cells = tuple(
        _cell(path, index, cell, cell_id)
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
    )


# --- bytes, text, JSON ---------------------------------------------------------------------


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
    """Raise ``InputError`` at the JSON path of the first schema violation; ``nb`` is untouched."""
    # nbformat ships a single v3 schema (3.0); newer 4.x minors get nbformat's relaxed latest schema
    schema_minor = 0 if major == 3 else minor
    quick = _quick_validator(major, schema_minor)
    if quick is not None:
        import fastjsonschema

        try:
            quick(nb)
            return
        except fastjsonschema.JsonSchemaException as exc:
            first = str(exc)
    else:
        from nbformat.validator import get_validator

        fast = get_validator(major, schema_minor, name="fastjsonschema")  # type: ignore[no-untyped-call]
        if fast is None:
            raise InputError(
                f"unsupported nbformat version {major}.{minor}; no schema for it", path=path
            )
        errors = list(fast.iter_errors(nb))
        if not errors:
            return
        first = str(errors[0])
    from nbformat.validator import better_validation_error, get_validator

    # fastjsonschema is quick but vague; jsonschema (slow) names the failing path, and nbformat's
    # better_validation_error narrows "not valid under any of the given schemas" to the cell type
    slow = get_validator(major, schema_minor, name="jsonschema")  # type: ignore[no-untyped-call]
    where, reason = "top level", _shorten(first, 200)
    for error in slow.iter_errors(nb) if slow is not None else ():
        error = better_validation_error(error, major, schema_minor)  # type: ignore[no-untyped-call]
        where = _json_path(list(error.relative_path)) or "top level"
        reason = _describe(error)
        break
    prefix = (
        f"invalid notebook after upgrade from nbformat {major}" if upgraded else "invalid notebook"
    )
    raise InputError(f"{prefix} at {where}: {reason}", path=path)


@cache
def _quick_validator(major: int, minor: int) -> Callable[[Any], Any] | None:
    """fastjsonschema over nbformat's schema file for ``major.minor``; None if there is none.

    Found without importing nbformat: that pulls in jsonschema, which can take seconds (its optional
    rfc3987-syntax builds a grammar at import), and a valid notebook never needs jsonschema.
    """
    spec = importlib.util.find_spec("nbformat")
    name = (
        f"nbformat.v{major}.schema.json" if major == 3 else f"nbformat.v{major}.{minor}.schema.json"
    )
    for folder in (spec.submodule_search_locations or ()) if spec is not None else ():
        schema_file = Path(folder) / f"v{major}" / name
        if schema_file.is_file():
            import fastjsonschema

            validate: Callable[[Any], Any] = fastjsonschema.compile(
                json.loads(schema_file.read_text("utf-8"))
            )
            return validate
    return None


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


def _describe(error: Any) -> str:
    """A one-line reason for a jsonschema error, with the offending value shortened."""
    instance = error.instance
    if error.validator in ("oneOf", "anyOf") and isinstance(error.validator_value, list):
        reason = _describe_alternatives(instance, error.validator_value)
        if reason is not None:
            return reason
    message = str(error.message)
    shown = repr(instance)
    if len(shown) > 60 and shown in message:
        message = message.replace(shown, _shorten(shown, 60))
    return _shorten(message.replace("\n", " "), 300)


def _describe_alternatives(instance: Any, alternatives: list[Any]) -> str | None:
    """Why nothing matched a oneOf: a cell or output of unknown kind, or a wrong value type."""
    refs = [a.get("$ref", "") for a in alternatives if isinstance(a, dict)]
    names = [ref.rsplit("/", 1)[-1] for ref in refs if ref.startswith("#/definitions/")]
    if names and len(names) == len(alternatives) and isinstance(instance, dict):
        # cells are told apart by cell_type ("code_cell" -> "code"), outputs by output_type
        if all(name.endswith("_cell") for name in names):
            key, known = "cell_type", [name.removesuffix("_cell") for name in names]
        else:
            key, known = "output_type", names
        if key not in instance:
            return f"missing {key!r}; expected one of {', '.join(known)}"
        if instance[key] not in known:
            shown = _shorten(json.dumps(instance[key]), 40)
            return f"unknown {key} {shown}; expected one of {', '.join(known)}"
        return None
    kinds: list[str] = []
    for alternative in alternatives:
        kind = alternative.get("type") if isinstance(alternative, dict) else None
        if not isinstance(kind, str):
            return None
        items = alternative.get("items")
        if kind == "array" and isinstance(items, dict) and isinstance(items.get("type"), str):
            kinds.append(f"an array of {items['type']}s")
        else:
            kinds.append(_json_type_name(kind))
    return f"expected {' or '.join(kinds)}, got {_json_type(instance)}" if kinds else None


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


def _cell(path: Path, index: int, cell: Any, cell_id: str) -> Cell:
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
        _check_syntax(path, index, source, code)
    return Cell(
        index=index,
        cell_type=cell_type,
        source=source,
        code=code,
        cell_id=cell_id,
        tags=tags,
        execution_count=execution_count if _is_int(execution_count) else None,
    )


def _check_syntax(path: Path, index: int, source: str, code: str) -> None:
    """Compile ``code`` with CPython; on failure raise ``InputError`` at the place in ``source``."""
    try:
        compile(code, f"<cell {index}>", "exec", flags=_COMPILE_FLAGS, dont_inherit=True)
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
