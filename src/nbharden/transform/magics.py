"""Translate masked IPython syntax into plain Python, or remove it with a finding - never silently.

``load`` masks ``%magic``, ``%%cell`` and ``!shell`` into calls on ``get_ipython()`` (IPython's own transformer).
This codemod turns those calls into code that runs without IPython:

======================  ===============================================================  ========
notebook                generated                                                        rule
======================  ===============================================================  ========
``%matplotlib inline``  (dropped: figures are saved by the pipeline)                     NBH503
``%timeit -n 3 f(x)``   ``f(x)``                                                         NBH503
``%%time`` cell         the cell's body                                                  NBH503
``!pip install x``      (dropped; ``x`` goes into the generated dependencies)           NBH501
``!ls data``            ``subprocess.run("ls data", shell=True, check=False)``          NBH504
``files = !ls``         ``subprocess.run(..., capture_output=True, ...).stdout.split…`` NBH504
``%%writefile f.py``    ``Path("f.py").write_text(...)``                                 NBH503
``%load_ext foo``       (dropped: it only changes the interactive session)               NBH503
``%hello fr``           ``hello("fr")``, when a cell defined ``@register_line_magic`` hello  NBH503
``%%csv`` cell          ``csv("", "<body>")``, when a cell defined ``@register_cell_magic``  NBH503
======================  ===============================================================  ========
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from nbharden.load import too_deep
from nbharden.masking import mask_ipython
from nbharden.models import Finding, Fix, Severity, Span
from nbharden.transform.codemods import find_all, is_get_ipython_call

# Magics that only change the interactive session (display, introspection, reloading): dropping them cannot change
# what the code computes.
_SESSION_ONLY = {
    "matplotlib",
    "config",
    "load_ext",
    "reload_ext",
    "unload_ext",
    "autoreload",
    "aimport",
    "precision",
    "pprint",
    "who",
    "whos",
    "who_ls",
    "lsmagic",
    "magic",
    "history",
    "hist",
    "pinfo",
    "pinfo2",
    "pdoc",
    "psource",
    "pfile",
    "pdef",
    "page",
    "xmode",
    "colors",
    "automagic",
    "notebook",
    "qtconsole",
    "connect_info",
    "doctest_mode",
    "alias_magic",
    "rehashx",
    "pwd",
    "ls",
    "dhist",
    "dirs",
    "debug",
    "pdb",
    "tb",
    "quickref",
    "killbgscripts",
    "autocall",
    "autoindent",
    "autosave",
    "clear",
    "cls",
    "logstart",
    "logstop",
    "logon",
    "logoff",
    "logstate",
    "recall",
    "rerun",
    "save",
    "sc",
    "unalias",
    "alias",
    "bookmark",
    "gui",
    "macro",
    "edit",
    "ed",
    "reset_selective",
    "xdel",
    "psearch",
    "pycat",
    "less",
    "more",
    "man",
    "cat",
    "mkdir",
    "rmdir",
    "rm",
    "cp",
    "mv",
    "ldir",
    "lf",
    "lk",
    "ll",
    "lx",
    "set_env",
}
# Cell magics whose body is not Python to run: output for the reader only.
_DISPLAY_CELLS = {"html", "HTML", "markdown", "latex", "javascript", "js", "svg", "display", "md"}
# Magics that run their argument (line) or body (cell) as Python: keep the code, drop the timing/profiling.
_RUNS_CODE = {"time", "timeit", "prun", "capture", "memit", "mprun", "lprun", "snakeviz", "scalene"}
_MAGIC_DECORATORS = {
    "register_line_magic",
    "register_cell_magic",
    "register_line_cell_magic",
    "magics_class",
    "line_magic",
    "cell_magic",
    "line_cell_magic",
}
_SHELL_CELLS = {"bash", "sh", "script", "system", "sx"}
# Leading options of the magics that run code: those that take a value, and flags that do not.
_OPTIONS = {
    "timeit": re.compile(r"^\s*(?:-[nrp]\s*\d+\s+|-[tcqo]\s+)+"),
    "prun": re.compile(r"^\s*(?:-[sTDl]\s*\S+\s+|-[rq]\s+)+"),
    "capture": re.compile(r"^\s*(?:--no-(?:stdout|stderr|display)\s+)+"),
}
_NO_OPTIONS = re.compile(r"^(?!)")


def _strip_options(magic: str, arg: str) -> str:
    return _OPTIONS.get(magic, _NO_OPTIONS).sub("", arg)


_PIP_OPTION_WITH_VALUE = {
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
}


@dataclass
class MagicResult:
    module: cst.Module
    findings: list[Finding] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    needs_subprocess: bool = False
    needs_os: bool = False
    needs_path: bool = False
    # indexes of the statements of ``module`` that a magic runs without showing their value (``%timeit f()``
    # shows a timing, not f()'s value): never a shown result
    unshown: frozenset[int] = frozenset()


def _string_value(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString | cst.ConcatenatedString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _ipython_call(node: cst.BaseExpression) -> tuple[str, list[cst.Arg]] | None:
    """``get_ipython().<method>(args)`` -> (method, args)."""
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and is_get_ipython_call(node.func.value)
    ):
        return node.func.attr.value, list(node.args)
    return None


def pip_requirements(args: str) -> list[str]:
    """Package requirements named in ``pip install ARGS`` (options and their values skipped)."""
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    if words and words[0] in {"pip", "pip3", "conda", "mamba"}:
        words = words[1:]
    if words and words[0] == "install":
        words = words[1:]
    else:
        return []
    reqs: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word in _PIP_OPTION_WITH_VALUE:
            skip = True
            continue
        if (
            word.startswith("-")
            or word.startswith("$")
            or "{" in word
            or word.startswith((".", "/", "git+"))
        ):
            continue
        if any(ch in word for ch in "\"'`\\ ") or not re.match(r"^[A-Za-z0-9]", word):
            continue  # a fragment of a broken quote, not a requirement
        reqs.append(word)
    return reqs


#: Decorators that register a function as a magic: the kind of magic each makes.
_REGISTER = {
    "register_line_magic": "line",
    "register_cell_magic": "cell",
    "register_line_cell_magic": "line_cell",
}


@dataclass(frozen=True)
class UserMagic:
    """A magic the notebook defines itself: ``@register_line_magic def hello(line)``."""

    function: str  # the def's name, which the generated code calls
    kind: str  # "line", "cell" or "line_cell"


def user_magics(code: str) -> dict[str, UserMagic]:
    """The magics a cell's (masked) code registers with IPython's decorators, by magic name.

    ``@register_line_magic`` names the magic after the function; ``@register_cell_magic("csv")`` names it
    explicitly. Such a function takes the magic's line (and cell body), so a later ``%name arg`` is a call of it.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    found: dict[str, UserMagic] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name not in _REGISTER:
                continue
            magic = node.name
            if isinstance(dec, ast.Call) and dec.args:
                first = dec.args[0]
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    continue  # registered under a computed name: leave the magic alone
                magic = first.value
            found[magic] = UserMagic(node.name, _REGISTER[name])
    return found


class _Translator(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self, cell: int, line_offset: int = 0, magics: Mapping[str, UserMagic] | None = None
    ) -> None:
        super().__init__()
        self.cell = cell
        self.line_offset = line_offset
        self.magics = dict(magics or {})
        self.result_findings: list[Finding] = []
        self.dependencies: list[str] = []
        self.needs_subprocess = False
        self.needs_os = False
        self.needs_path = False
        self.unshown: list[cst.CSTNode] = []  # statements and expressions kept from a magic that shows no value
        self._line = 1 + line_offset

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _finding(
        self, code: str, message: str, fix: Fix = Fix.SAFE, severity: Severity = Severity.INFO
    ) -> None:
        self.result_findings.append(
            Finding(
                code,
                message,
                Span(self.cell, self._line, 1),
                severity=severity,
                fix=fix,
                applied=True,
            )
        )

    def _parse_statements(self, code: str, what: str) -> list[cst.BaseStatement] | None:
        """Parse code carried as a string (a magic's argument or body). ``compile`` first: libcst can crash."""
        code = mask_ipython(code)
        try:
            compile(code, "<magic>", "exec", dont_inherit=True)
            if too_deep(code) is not None:  # LibCST would run out of stack or crash the process
                raise RecursionError
            module = cst.parse_module(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError, cst.ParserSyntaxError):
            self._finding(
                "NBH502", f"{what}: its code does not parse; removed", Fix.NONE, Severity.WARNING
            )
            return None
        inner = _Translator(self.cell, line_offset=self._line - 1, magics=self.magics)
        module = MetadataWrapper(module, unsafe_skip_copy=True).visit(inner)
        self.result_findings.extend(inner.result_findings)
        self.dependencies.extend(inner.dependencies)
        self.needs_subprocess |= inner.needs_subprocess
        self.needs_os |= inner.needs_os
        self.needs_path |= inner.needs_path
        return list(module.body)

    def _shell(self, command: str, capture: bool) -> cst.BaseExpression:
        self.needs_subprocess = True
        lit = repr(command)
        if capture:
            code = f"subprocess.run({lit}, shell=True, capture_output=True, text=True, check=False).stdout.splitlines()"
        else:
            code = f"subprocess.run({lit}, shell=True, check=False)"
        return cst.parse_expression(code)

    # -- statement-level translation ---------------------------------------------------------------------------------
    def _no_value(self, magic: str, stmts: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """``stmts``, noted as showing no value: in IPython a magic statement's Out is None (``%%writefile``
        prints a line, ``!ls`` its output, ``%timeit`` a timing), except ``%time``, which shows its statement's."""
        if magic != "time":
            self.unshown.extend(stmts)
        return stmts

    def _translate_statement(self, expr: cst.BaseExpression) -> list[cst.BaseStatement] | None:
        """A magic used as a whole statement -> replacement statements ([] = remove); None = not a magic."""
        call = _ipython_call(expr)
        if call is None:
            return None
        method, args = call
        values = [_string_value(a.value) for a in args]
        if (
            method == "run_line_magic"
            and len(values) >= 2
            and values[0] is not None
            and values[1] is not None
        ):
            return self._no_value(values[0], self._line_magic(values[0], values[1]))
        if method == "run_cell_magic" and len(values) >= 3 and None not in values[:3]:
            return self._no_value(
                values[0] or "", self._cell_magic(values[0] or "", values[1] or "", values[2] or "")
            )
        if method == "system" and values and values[0] is not None:
            return self._no_value("system", self._system(values[0]))
        self._finding(
            "NBH502",
            f"get_ipython().{method}(...) has no equivalent outside IPython; removed",
            Fix.NONE,
            Severity.WARNING,
        )
        return []

    def _system(self, command: str) -> list[cst.BaseStatement]:
        reqs = pip_requirements(command)
        if reqs or re.match(r"\s*(pip3?|conda|mamba)\s+install\b", command):
            self.dependencies.extend(reqs)
            self._finding("NBH501", f"'!{command.strip()}' moved into the generated dependencies")
            return []
        if "{" in command or "$" in command:
            self._finding(
                "NBH502",
                f"'!{command.strip()}' interpolates notebook variables; removed",
                Fix.NONE,
                Severity.WARNING,
            )
            return []
        self._finding("NBH504", f"'!{command.strip()}' runs through subprocess.run")
        return [cst.SimpleStatementLine([cst.Expr(self._shell(command, capture=False))])]

    def _line_magic(self, name: str, arg: str) -> list[cst.BaseStatement]:
        if name in {"pip", "conda", "mamba"}:
            reqs = pip_requirements(f"{name} {arg}")
            self.dependencies.extend(reqs)
            self._finding(
                "NBH501", f"'%{name} {arg.strip()}' moved into the generated dependencies"
            )
            return []
        if name in _RUNS_CODE:
            code = _strip_options(name, arg)
            self._finding("NBH503", f"'%{name}' dropped, its statement kept")
            return self._parse_statements(code, f"'%{name} {arg.strip()}'") or []
        if name in {"sx", "system"}:
            return self._system(arg)
        if name == "env" and "=" in arg and not arg.strip().startswith("-"):
            key, _, value = arg.partition("=")
            self.needs_os = True
            self._finding("NBH503", f"'%env {arg.strip()}' sets os.environ")
            return [cst.parse_statement(f"os.environ[{key.strip()!r}] = {value.strip()!r}\n")]
        if name in _SESSION_ONLY or name == "env":
            self._finding("NBH503", f"'%{name}' only affects the interactive session; dropped")
            return []
        self._finding(
            "NBH502",
            f"'%{name} {arg.strip()}' has no equivalent outside IPython; removed",
            Fix.NONE,
            Severity.WARNING,
        )
        return []

    def _cell_magic(self, name: str, line: str, body: str) -> list[cst.BaseStatement]:
        if name in _RUNS_CODE:
            setup = _strip_options("timeit", line).strip() if name == "timeit" else ""
            self._finding("NBH503", f"'%%{name}' dropped, the cell's code kept")
            stmts = (
                self._parse_statements(f"{setup}\n{body}" if setup else body, f"'%%{name}' cell")
                or []
            )
            return stmts
        if name in {"writefile", "file"}:
            words = line.split()
            append = "-a" in words or "--append" in words
            target = next((w for w in words if not w.startswith("-")), None)
            if target is None:
                return []
            self.needs_path = True
            self._finding("NBH503", f"'%%{name} {target}' writes the file with pathlib")
            if append:
                code = f"with open({target!r}, 'a', encoding='utf-8') as _fh:\n    _fh.write({body!r})\n"
            else:
                code = f"Path({target!r}).write_text({body!r}, encoding='utf-8')\n"
            return [cst.parse_statement(code)]
        if name in _SHELL_CELLS or name in {"bash", "sh"}:
            self._finding("NBH504", f"'%%{name}' cell runs through subprocess.run")
            return [cst.SimpleStatementLine([cst.Expr(self._shell(body, capture=False))])]
        if name in _DISPLAY_CELLS:
            self._finding("NBH503", f"'%%{name}' cell only displays output; dropped")
            return []
        self._finding(
            "NBH502",
            f"'%%{name}' cell has no equivalent outside IPython; removed",
            Fix.NONE,
            Severity.WARNING,
        )
        return []

    def _user_magic(self, method: str, values: list[str | None]) -> cst.Call | None:
        """``%hello fr`` -> ``hello("fr")``, ``%%csv`` -> ``csv("", body)`` for a magic a cell defined (the
        function IPython would call, with the arguments it would pass); ``None`` for any other call."""
        if method not in {"run_line_magic", "run_cell_magic"} or not values or values[0] is None:
            return None
        magic = self.magics.get(values[0])
        cell = method == "run_cell_magic"
        if magic is None or magic.kind == ("line" if cell else "cell"):
            return None
        words = values[1:3] if cell else values[1:2]
        if len(words) != (2 if cell else 1) or None in words:
            return None
        shown = f"%%{values[0]}" if cell else f"%{values[0]} {words[0]}".rstrip()
        self._finding("NBH503", f"'{shown}' calls the notebook's own {magic.function}()")
        return cst.Call(
            cst.Name(magic.function),
            [cst.Arg(cst.SimpleString(repr(word))) for word in words],
        )

    # -- visitors ---------------------------------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        pos = self.get_metadata(PositionProvider, node, None)
        if pos is not None:
            self._line = pos.start.line + self.line_offset
        return True

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        pos = self.get_metadata(PositionProvider, node, None)
        if pos is not None:
            self._line = pos.start.line + self.line_offset
        return True

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel:
        if len(updated.body) != 1 or not isinstance(updated.body[0], cst.Expr):
            return updated
        replacement = self._translate_statement(updated.body[0].value)
        if replacement is None:
            return updated
        if not replacement:
            return cst.RemoveFromParent()
        if updated.leading_lines:
            replacement[0] = replacement[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel(replacement)

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        if not updated.body:
            return updated.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])])
        return updated

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        # @register_line_magic and friends need a running IPython; the function itself stays usable.
        kept = []
        for dec in updated.decorators:
            target = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
            name = (
                target.attr.value
                if isinstance(target, cst.Attribute)
                else getattr(target, "value", "")
            )
            if name in _MAGIC_DECORATORS:
                self._finding(
                    "NBH502",
                    f"'@{name}' registers an IPython magic; decorator removed",
                    Fix.NONE,
                    Severity.WARNING,
                )
                continue
            kept.append(dec)
        return (
            updated.with_changes(decorators=kept)
            if len(kept) != len(updated.decorators)
            else updated
        )

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        # A magic used as a value: ``files = !ls`` -> getoutput; ``x = %timeit -o f()`` etc.
        call = _ipython_call(updated)
        if call is None:
            return updated
        method, args = call
        values = [_string_value(a.value) for a in args]
        user = self._user_magic(method, values)
        if user is not None:
            return user
        if method == "getoutput" and values and values[0] is not None and "{" not in values[0]:
            self._finding(
                "NBH504", f"'!{values[0].strip()}' output captured through subprocess.run"
            )
            return self._shell(values[0], capture=True)
        if (
            method == "run_line_magic"
            and len(values) >= 2
            and values[0] in {"time", "timeit"}
            and values[1]
        ):
            code = _strip_options(values[0] or "", values[1])
            try:
                compile(code, "<magic>", "eval", dont_inherit=True)
                if too_deep(code) is not None:
                    raise RecursionError
                expr = cst.parse_expression(code)
            except (SyntaxError, ValueError, RecursionError, cst.ParserSyntaxError):
                return updated
            self._finding("NBH503", f"'%{values[0]}' dropped, its expression kept")
            if values[0] == "timeit":
                self.unshown.append(expr)
            return expr
        if method in {"run_line_magic", "system"}:
            return updated  # handled at statement level, or reported by the residual check below
        return updated


def translate_magics(
    module: cst.Module, cell: int, magics: Mapping[str, UserMagic] | None = None
) -> MagicResult:
    """Translate or remove every IPython construct in one cell's masked module (see the table above).

    ``magics`` are the magics earlier cells defined (:func:`user_magics`): their uses become calls."""
    translator = _Translator(cell, magics=magics)
    new = MetadataWrapper(module, unsafe_skip_copy=True).visit(translator)
    result = MagicResult(
        new,
        translator.result_findings,
        translator.dependencies,
        translator.needs_subprocess,
        translator.needs_os,
        translator.needs_path,
    )
    # Anything left that still calls get_ipython() (used inside an expression we cannot translate) is removed at
    # the statement level so that the generated code never needs IPython.
    if any(is_get_ipython_call(n) for n in find_all(result.module, cst.Call)):
        leftover = _StripResidual(cell)
        result.module = result.module.visit(leftover)
        result.findings.extend(leftover.findings)
    result.unshown = _unshown(result.module, translator.unshown)
    return result


def _unshown(module: cst.Module, kept: list[cst.CSTNode]) -> frozenset[int]:
    """The indexes of ``module``'s statements that are (or only evaluate) one of ``kept``, matched by their
    code (the transformers around rebuild the nodes, so identity does not survive)."""
    code = module.code_for_node
    texts = {code(node).strip() for node in kept}
    out = set()
    for i, stmt in enumerate(module.body):
        if code(stmt).strip() in texts or (
            isinstance(stmt, cst.SimpleStatementLine)
            and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Expr)
            and code(stmt.body[0].value).strip() in texts
        ):
            out.add(i)
    return frozenset(out)


class _StripResidual(cst.CSTTransformer):
    def __init__(self, cell: int) -> None:
        super().__init__()
        self.cell = cell
        self.findings: list[Finding] = []

    def _strip(self, body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        kept: list[cst.BaseStatement] = []
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine) and any(
                is_get_ipython_call(n) for n in find_all(stmt, cst.Call)
            ):
                self.findings.append(
                    Finding(
                        "NBH502",
                        "statement uses get_ipython(); removed",
                        Span(self.cell, 1, 1),
                        severity=Severity.WARNING,
                        fix=Fix.NONE,
                        applied=True,
                    )
                )
                continue
            kept.append(stmt)
        return kept

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        return updated.with_changes(body=self._strip(list(updated.body)))

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body = self._strip(list(updated.body)) or [cst.SimpleStatementLine([cst.Pass()])]
        return updated.with_changes(body=body)
