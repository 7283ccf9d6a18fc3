"""Format and verify the generated tree: ruff's import sorting and safe fixes, then the formatter; then prove it.

The formatter is ``ruff format`` (setting ``formatter = "ruff"``, the default: one process for the whole tree,
black's style) or black itself (``formatter = "black"``, in process). The generated code is written so that both
give the same bytes (tests/test_fmt.py checks it on the goldens).

Verification follows black's own safety checks: every module compiles, formatting leaves the AST unchanged (one
comparison per module, black's ``assert_equivalent``), and a second pass over the formatted code changes nothing
(so a second conversion gives the same bytes).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from nbharden.errors import UsageError, VerificationError
from nbharden.local_modules import VENDORED
from nbharden.models import FileTree
from nbharden.settings import Settings

# Import sorting, unused imports, and the pyupgrade-style fixes black does not make; all safe fixes.
RUFF_FIXES = ["I", "F401", "F841", "E703", "F632", "E401", "UP"]
# What the generated project's own ruff configuration checks (kept in sync with emit._pyproject).
LINT_RULES = ["E4", "E7", "E9", "F", "I"]


def _ruff_bin() -> str:
    try:
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        return "ruff"


FORMATTERS = ("ruff", "black")


def _with_ruff(files: dict[str, str], args: list[str], *, line_length: int) -> dict[str, str]:
    """``files`` after ``ruff <args>`` ran over their Python files in a temporary folder (one process)."""
    py = {p: t for p, t in files.items() if p.endswith(".py")}
    if not py:
        return files
    with tempfile.TemporaryDirectory(prefix="nbharden-fmt-") as tmp:
        root = Path(tmp)
        for rel, text in py.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        _run_ruff(root, args, line_length=line_length)
        return {**files, **{rel: (root / rel).read_text(encoding="utf-8") for rel in py}}


def _run_ruff(root: Path, args: list[str], *, line_length: int) -> None:
    cmd = [
        _ruff_bin(),
        *args,
        "--quiet",
        "--no-cache",
        "--isolated",
        f"--line-length={line_length}",
        "--target-version=py311",
        ".",
    ]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode not in (0, 1):
        raise VerificationError(f"ruff failed: {proc.stderr.strip()[:300]}")


def ruff_format(files: dict[str, str], *, line_length: int) -> dict[str, str]:
    """``ruff format`` over the Python files, all in one process; other files are returned as they are."""
    return _with_ruff(files, ["format"], line_length=line_length)


def ruff_fix(files: dict[str, str], *, line_length: int, add_noqa: bool = False) -> dict[str, str]:
    """Run ``ruff check --fix`` (safe fixes only) over the Python files, all in one process.

    With ``add_noqa``, instead mark what is left of the project's lint rules with ``# noqa: CODE``: style the
    notebook chose (``l = ...``, ``x == None`` on a frame) that no fix could change without changing results.
    """
    mode = (
        ["--add-noqa", "--select=" + ",".join(LINT_RULES)]
        if add_noqa
        else ["--fix", "--exit-zero", "--select=" + ",".join(RUFF_FIXES)]
    )
    # An unused local's fix keeps the right-hand side (its effects) and drops the name: safe here, since
    # generated code never inspects locals().
    config = ["--config", 'lint.extend-safe-fixes = ["F841"]', "--ignore=UP035,UP006,UP007,UP045"]
    return _with_ruff(files, ["check", *mode, *config], line_length=line_length)


def black_format(path: str, text: str, *, line_length: int) -> str:
    """Format one module with black; raise ``VerificationError`` if black changes its AST or is not stable."""
    import black
    from black.mode import TargetVersion

    mode = black.Mode(line_length=line_length, target_versions={TargetVersion.PY311})
    try:
        formatted = black.format_str(text, mode=mode)
    except black.parsing.InvalidInput as exc:
        raise VerificationError(f"generated code does not parse: {exc}", path=path) from exc
    try:
        # black's AST check; stability (a second pass changes nothing) is proven by the determinism tests and
        # costs a second full format of every module, so it is not repeated on every conversion.
        black.assert_equivalent(text, formatted)
    except (AssertionError, black.parsing.ASTSafetyError) as exc:
        raise VerificationError(
            f"formatting changed the code's meaning: {str(exc)[:200]}", path=path
        ) from exc
    return formatted


def verify(tree: FileTree) -> None:
    """Every generated module compiles with CPython (not just parses: ``await`` outside an async
    function, a ``return`` outside a function parse fine and fail at import)."""
    for path, text in tree:
        if path.endswith(".py"):
            try:
                compile(text, path, "exec", dont_inherit=True)
            except SyntaxError as exc:
                raise VerificationError(
                    f"generated code does not compile: {exc.msg} (line {exc.lineno})", path=path
                ) from exc


def _formatted(files: dict[str, str], *, formatter: str, line_length: int) -> dict[str, str]:
    """The Python files of ``files`` formatted (the others as they are), each checked to keep its AST."""
    if formatter == "black":
        return {
            p: black_format(p, t, line_length=line_length) if p.endswith(".py") else t
            for p, t in files.items()
        }
    out = ruff_format(files, line_length=line_length)
    for path, text in files.items():
        if path.endswith(".py") and out[path] != text:
            _assert_equivalent(path, text, out[path])
    return out


def _assert_equivalent(path: str, before: str, after: str) -> None:
    """black's AST check: formatting must not change what the code does.

    Two modules whose ASTs are the same are equivalent by black's check too (it compares them after
    normalising docstrings and a few spellings): only a module whose AST the formatter changed (a docstring's
    indentation) needs black, which takes a tenth of a second to import.
    """
    import ast

    try:
        if ast.dump(ast.parse(before)) == ast.dump(ast.parse(after)):
            return
    except (SyntaxError, ValueError):
        pass  # black's check says what is wrong
    import black

    try:
        black.assert_equivalent(before, after)
    except (AssertionError, black.parsing.ASTSafetyError) as exc:
        raise VerificationError(
            f"formatting changed the code's meaning: {str(exc)[:200]}", path=path
        ) from exc


def _vendored(path: str) -> bool:
    """A module copied from the notebook's folder (``src/<pkg>/vendored/...``): the author's code, kept as it is."""
    parts = path.split("/")
    return len(parts) > 3 and parts[0] == "src" and parts[2] == VENDORED


def format_tree(tree: FileTree, *, settings: Settings) -> FileTree:
    """ruff fixes, then the formatter (``settings.formatter``); verified (compiles, AST kept by formatting,
    stable). Returns the formatted tree. The copies of the notebook's local modules are left as they are
    (a fix could change what they do)."""
    if settings.formatter not in FORMATTERS:
        raise UsageError(f"formatter must be one of {', '.join(FORMATTERS)}, not {settings.formatter!r}")
    kept = {p: t for p, t in tree if _vendored(p)}
    files = {p: t for p, t in tree if not _vendored(p)}
    verify(tree)
    files = ruff_fix(files, line_length=settings.line_length)
    out = _formatted(files, formatter=settings.formatter, line_length=settings.line_length)
    # Mark what no safe fix can change with a noqa comment, then let the formatter re-wrap; repeat until both agree
    # (it may move a marked line, which needs a new marker), so the result is a fixpoint of both: idempotent.
    for _ in range(4):
        marked = ruff_fix(out, line_length=settings.line_length, add_noqa=True)
        changed = {p: t for p, t in marked.items() if t != out[p]}
        if not changed:
            break
        out.update(_formatted(changed, formatter=settings.formatter, line_length=settings.line_length))
    result = FileTree.of({**out, **kept})
    verify(result)
    return result


if __name__ == "__main__":  # pragma: no cover - debugging aid: format a file in place
    for name in sys.argv[1:]:
        p = Path(name)
        p.write_text(black_format(name, p.read_text(), line_length=88))
