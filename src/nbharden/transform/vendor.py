"""The copies of the notebook's local modules in the generated package, and the imports of them.

``RelativeLocalImports`` turns ``import helper`` / ``from helper import x`` into relative imports of
the copies under ``<pkg>/vendored/`` (in the steps module, and inside the copies themselves);
``vendored_files`` lays the copies out. See ``nbharden.local_modules`` for how they are found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

import libcst as cst

from nbharden.local_modules import VENDORED, module_exports
from nbharden.models import LocalModule


def _join(base: str, dotted: str) -> str:
    return base + dotted if base.endswith(".") else f"{base}.{dotted}"


class RelativeLocalImports(cst.CSTTransformer):
    """Rewrite the imports of local modules into relative imports of their copies.

    ``base`` is the relative path from the module being rewritten to the ``vendored`` package:
    ``.vendored`` in the steps module, ``.`` or ``..`` inside a copied module. ``from helper import *``
    becomes an import of the names it binds (valid inside a function too).
    """

    def __init__(self, modules: Mapping[str, LocalModule], base: str) -> None:
        super().__init__()
        self.modules = modules
        self.base = base
        self.exports = module_exports(modules.values())

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        if not any(isinstance(s, cst.Import | cst.ImportFrom) for s in updated.body):
            return updated
        body: list[cst.BaseSmallStatement] = []
        changed = False
        for small in updated.body:
            new = self._rewrite(small)
            if new is None:
                body.append(small)
                continue
            changed = True
            for text in new:
                line = cst.parse_statement(text + "\n")
                assert isinstance(line, cst.SimpleStatementLine)
                body += line.body
        if not changed:
            return updated
        # one line (black splits it): a statement stays a statement wherever it is
        loads = any(isinstance(b, cst.ImportFrom) and _unused_alias(b) for b in body)
        trailing = updated.trailing_whitespace
        if loads and trailing.comment is None:
            trailing = trailing.with_changes(
                whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment("# noqa: F401")
            )
        return updated.with_changes(
            body=[b.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) for b in body],
            trailing_whitespace=trailing,
        )

    def _rewrite(self, small: cst.BaseSmallStatement) -> list[str] | None:
        """The statements replacing ``small``, or None when it imports no local module."""
        if isinstance(small, cst.Import):
            if not any(_dotted(a.name).split(".")[0] in self.modules for a in small.names):
                return None
            out: list[str] = []
            for alias in small.names:
                dotted = _dotted(alias.name)
                asname = _asname(alias)
                head, _, rest = dotted.partition(".")
                if head not in self.modules:
                    out.append(f"import {dotted}" + (f" as {asname}" if asname else ""))
                elif asname:
                    parent, _, leaf = dotted.rpartition(".")
                    where = _join(self.base, parent) if parent else self.base
                    out.append(f"from {where} import {leaf} as {asname}")
                else:
                    out.append(f"from {self.base} import {head}")
                    if rest:  # ``import tools.sub`` binds tools and loads tools.sub
                        parent, _, leaf = dotted.rpartition(".")
                        alias_name = "_" + dotted.replace(".", "_")
                        out.append(f"from {_join(self.base, parent)} import {leaf} as {alias_name}")
            return out
        if isinstance(small, cst.ImportFrom) and not small.relative and small.module is not None:
            dotted = _dotted(small.module)
            head = dotted.split(".")[0]
            if head not in self.modules:
                return None
            where = _join(self.base, dotted)
            if isinstance(small.names, cst.ImportStar):
                names = self.exports.get(dotted, ())
                return [
                    f"from {where} import {', '.join(names)}" if names else f"from {where} import *"
                ]
            imported = (
                cst.Module([])
                .code_for_node(cst.ImportFrom(module=cst.Name("x"), names=small.names))
                .split(" import ", 1)[1]
            )
            return [f"from {where} import {imported}"]
        return None


def _unused_alias(node: cst.ImportFrom) -> bool:
    """``from .vendored.tools import sub as _tools_sub``: imported to load a submodule, never read."""
    return not isinstance(node.names, cst.ImportStar) and any(
        (name := _asname(a)) is not None
        and name.startswith("_")
        and name.endswith(a.evaluated_name)
        for a in node.names
    )


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _asname(alias: cst.ImportAlias) -> str | None:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return None


def vendored_files(modules: Iterable[LocalModule], package: str) -> dict[str, str]:
    """The copies: ``src/<package>/vendored/<path>`` -> source with local imports made relative."""
    mods = {m.name: m for m in modules}
    if not mods:
        return {}
    root = PurePosixPath("src", package, VENDORED)
    files = {
        str(
            root / "__init__.py"
        ): '"""Modules from the notebook\'s folder that it imports, copied by '
        'nbharden (their imports of each other made relative)."""\n'
    }
    for module in mods.values():
        for rel, text in module.files:
            depth = len(PurePosixPath(rel).parts) - 1  # folders between vendored/ and the file
            try:
                tree = cst.parse_module(text)
                text = tree.visit(RelativeLocalImports(mods, "." * (depth + 1))).code
            except cst.ParserSyntaxError:
                pass  # copied as it is: Jupyter could not import it either
            files[str(root / rel)] = text
    return files
