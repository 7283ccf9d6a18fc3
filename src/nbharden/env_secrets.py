"""Secrets the notebook reads from the environment by a name it spells out: each becomes a Config field.

``os.environ["GITHUB_TOKEN"]``, ``os.environ.get("GITHUB_TOKEN"[, default])`` and ``os.getenv(...)`` (through
any import of them, after ``load_dotenv()`` or not) whose variable name says it holds a credential
(``secret_shapes.is_secret_name``: ``GITHUB_TOKEN``, ``DB_PASSWORD``, ``OPENAI_API_KEY``; not ``HOME`` or
``DATA_DIR``) become, as hard-coded secrets do, a ``SecretStr`` field of the generated Config:

- the field is read by pydantic-settings from ``<PREFIX><FIELD>`` or from the variable the notebook read
  (``validation_alias=AliasChoices(...)``), in the environment or ``.env``: what the user sets keeps working;
- it is required when the notebook gave no default (or ``None``, or a default that is itself a secret:
  that literal is never written anywhere); otherwise its default is the notebook's;
- the generated code reads the field where the notebook read the environment (a step parameter that
  ``pipeline.run`` fills with ``config.<field>.get_secret_value()``), so the generated tests' placeholders
  reach the step, and functions holding such a read stay in their step (the parameter is in scope there).

A read whose name or default is computed (``os.environ[name]``, ``os.getenv("TOKEN", fallback)``) is left as
it is: the recorder still redacts its value by value (``record/_runtime_secrets.py``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import libcst as cst

from nbharden.analyse import NotebookFacts, qualify
from nbharden.models import ConfigField, SecretUse
from nbharden.secret_shapes import is_secret_literal, is_secret_name, snake_name
from nbharden.secrets import RESERVED_NAMES

_GETTERS = {"os.getenv", "os.environ.get"}
_SETTERS = {"os.environ.setdefault", "os.environ.update", "os.environ.pop", "os.putenv", "os.unsetenv"}


@dataclass(frozen=True)
class EnvRead:
    """One read of a secret-named environment variable (``default_secret``: a value; never serialise)."""

    cell: int
    stmt: int  # index of the top-level statement of the cell's module
    line: int  # that statement's line
    var: str  # the environment variable's name
    default: str | None  # the notebook's default when it is a plain string; None: the field is required
    default_secret: str | None = None  # a default that is itself a secret: required, the literal goes


def _string(node: cst.BaseExpression | None) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def read_of(
    node: cst.CSTNode, qualified: Mapping[str, str]
) -> tuple[str, cst.BaseExpression | None] | None:
    """(variable name, default expression or None) when ``node`` reads the environment by a literal name."""
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        index = node.slice[0].slice
        if isinstance(index, cst.Index) and qualify(node.value, dict(qualified)) == "os.environ":
            name = _string(index.value)
            return (name, None) if name else None
        return None
    if not isinstance(node, cst.Call) or qualify(node.func, dict(qualified)) not in _GETTERS:
        return None
    positional = [a for a in node.args if a.keyword is None and not a.star]
    keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
    if len(positional) + len(keywords) != len(node.args) or not positional or len(node.args) > 2:
        return None
    name = _string(positional[0].value)
    default = positional[1].value if len(positional) == 2 else keywords.get("default")
    if name is None or (len(node.args) == 2 and default is None):
        return None
    return name, default


def _set_names(node: cst.Call) -> list[str]:
    """The variables a call of ``os.environ.setdefault``, ``update``, ``pop`` or ``os.putenv`` sets or removes."""
    names = [a.keyword.value for a in node.args if a.keyword is not None]
    for arg in node.args[:1]:
        if isinstance(arg.value, cst.Dict):
            keys = [e.key for e in arg.value.elements if isinstance(e, cst.DictElement)]
            names += [k for k in map(_string, keys) if k]
        elif (name := _string(arg.value)) is not None:
            names.append(name)
    return names


def _default(var: str, node: cst.BaseExpression | None) -> tuple[bool, str | None, str | None]:
    """(convertible, default, secret default) of a read's default expression."""
    if node is None or (isinstance(node, cst.Name) and node.value == "None"):
        return True, None, None
    value = _string(node)
    if value is None:
        return False, None, None  # a computed fallback: the read stays as it is
    if is_secret_literal(var, value):
        return True, None, value
    return True, value, None


class _Reads(cst.CSTVisitor):
    """The secret-named environment reads of one statement, in source order (not assignment targets)."""

    def __init__(self, qualified: Mapping[str, str]) -> None:
        super().__init__()
        self.qualified = qualified
        self.found: list[tuple[str, bool, str | None, str | None]] = []
        self.sets: set[str] = set()  # variables the code sets or removes: it provides them, not the user
        self._targets: set[int] = set()

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._targets.add(id(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._targets.add(id(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._targets.add(id(node.target))

    def visit_Del(self, node: cst.Del) -> None:
        self._targets.add(id(node.target))

    def _visit(self, node: cst.Subscript | cst.Call) -> None:
        if id(node) in self._targets:
            target = read_of(node, self.qualified)
            if target is not None:
                self.sets.add(target[0])
            return
        if isinstance(node, cst.Call) and qualify(node.func, dict(self.qualified)) in _SETTERS:
            self.sets.update(_set_names(node))
            return
        read = read_of(node, self.qualified)
        if read is not None and is_secret_name(read[0]):
            self.found.append((read[0], *_default(read[0], read[1])))

    def visit_Subscript(self, node: cst.Subscript) -> None:
        self._visit(node)

    def visit_Call(self, node: cst.Call) -> None:
        self._visit(node)


def environment_names(qualified: Mapping[str, str]) -> frozenset[str]:
    """The names through which the notebook's imports reach the environment (``os``, ``environ``, ``getenv``)."""
    return frozenset(a for a, q in qualified.items() if q in {"os", "os.environ", "os.getenv"})


def env_reads(facts: NotebookFacts) -> list[EnvRead]:
    """Every read of a secret-named environment variable the generated code can take from the Config."""
    out: list[EnvRead] = []
    names = environment_names(facts.qualified)
    if not names:
        return out
    provided: set[str] = set()
    for index in sorted(facts.cells):
        cf = facts.cells[index]
        for i, stmt in enumerate(cf.module.body):
            st = cf.statements[i]
            if names.isdisjoint((*st.reads, *st.uses, *st.lazy)):
                continue  # the usual statement: no walk over its code
            reads = _Reads(facts.qualified)
            stmt.visit(reads)
            provided |= reads.sets
            for var, ok, default, secret in reads.found:
                if ok:
                    out.append(EnvRead(index, i, st.line, var, default, secret))
    # a variable the notebook sets itself (os.environ["X"] = ..., %env X=...) is read as it set it
    return [r for r in out if r.var not in provided]


def default_secrets(facts: NotebookFacts, fields: Iterable[ConfigField]) -> dict[str, str]:
    """Secret value -> field, for the secret-looking defaults of the reads the fields replace: the value
    goes with its read (and is rewritten to the field wherever else it is written), never into a field
    of its own."""
    names = {f.env_var: f.name for f in fields if f.env_var}
    return {
        r.default_secret: names[r.var]
        for r in env_reads(facts)
        if r.default_secret is not None and r.var in names
    }


def resolve_secrets(facts: NotebookFacts, uses: Iterable[SecretUse]) -> dict[str, str]:
    """Secret value -> Config field, from the plan's ``SecretUse`` locations and the notebook's code."""
    reads: list[EnvRead] | None = None
    out: dict[str, str] = {}
    for use in uses:
        cf = facts.cells[use.cell]
        if use.source == "site":
            out[cf.secrets[use.n].secret] = use.field
        elif use.source == "assignment":
            stmt = cf.module.body[use.n]
            assert isinstance(stmt, cst.SimpleStatementLine)
            small = stmt.body[0]
            assert isinstance(small, cst.Assign | cst.AnnAssign) and small.value is not None
            value = ast.literal_eval(cst.Module([]).code_for_node(small.value).strip())
            assert isinstance(value, str)
            out[value] = use.field
        else:
            reads = env_reads(facts) if reads is None else reads
            out[
                next(
                    r.default_secret
                    for r in reads
                    if (r.cell, r.line, r.var) == (use.cell, use.line, use.env_var)
                    and r.default_secret is not None
                )
            ] = use.field
    return out


def env_secret_fields(
    facts: NotebookFacts, taken: Iterable[str], env_prefix: str
) -> list[ConfigField]:
    """A ``SecretStr`` field per secret-named variable the notebook reads, named after the variable, free
    of the notebook's identifiers, the builtins, the generated code's names and ``taken`` (ignoring case)."""
    import builtins

    by_var: dict[str, list[EnvRead]] = {}
    for read in env_reads(facts):
        by_var.setdefault(read.var, []).append(read)
    if not by_var:
        return []
    names: set[str] = set(dir(builtins)) | set(RESERVED_NAMES)
    for cf in facts.cells.values():
        names |= {n for st in cf.statements for n in (*st.binds, *st.reads)}
    lowered = {t.lower() for t in taken}
    fields: list[ConfigField] = []
    for var, reads in by_var.items():
        name = _free(snake_name(var), names, lowered)
        lowered.add(name.lower())
        defaults = {r.default for r in reads}
        default = defaults.pop() if len(defaults) == 1 else None
        first = reads[0]
        where = f"environment variable {var} read in cell {first.cell}, line {first.line}"
        fields.append(
            ConfigField(
                name,
                "SecretStr",
                f"SecretStr({default!r})" if default is not None else "",
                f"{where}; set {var} (or {env_prefix}{name.upper()}) in the environment or .env",
                first.cell,
                first.line,
                secret=True,
                kind="secret",
                env_var=var,
            )
        )
    return fields


def _free(name: str, names: set[str], lowered: set[str]) -> str:
    if name.startswith("model_"):
        name = "secret_" + name
    candidates = [name, f"env_{name}"] + [f"env_{name}_{n}" for n in range(2, 100)]
    return next(c for c in candidates if c not in names and c.lower() not in lowered)


def env_fields(fields: Iterable[ConfigField]) -> dict[str, str]:
    """Environment variable -> the Config field that holds it."""
    return {f.env_var: f.name for f in fields if f.env_var}


def used_env_fields(
    node: cst.CSTNode,
    touched: Iterable[str],
    fields: Sequence[ConfigField],
    qualified: Mapping[str, str],
) -> list[str]:
    """The env-secret fields whose variable ``node`` (a statement touching the global names ``touched``)
    reads, in order."""
    by_var = env_fields(fields)
    if not by_var or environment_names(qualified).isdisjoint(touched):
        return []
    reads = _Reads(qualified)
    node.visit(reads)
    out: list[str] = []
    for var, ok, _default, _secret in reads.found:
        if ok and var in by_var and by_var[var] not in out:
            out.append(by_var[var])
    return out


def pinned_by_env(facts: NotebookFacts) -> frozenset[str]:
    """The functions and classes that read a secret from the environment: they stay in their step."""
    return frozenset(
        facts.cells[r.cell].statements[r.stmt].binds[0]
        for r in env_reads(facts)
        if facts.cells[r.cell].statements[r.stmt].kind in {"def", "class"}
    )


class EnvSecretRewriter(cst.CSTTransformer):
    """Each read of a variable of ``fields`` (variable -> field name) becomes the field's name."""

    def __init__(self, fields: Mapping[str, str], qualified: Mapping[str, str]) -> None:
        super().__init__()
        self.fields = dict(fields)
        self.reads = _Reads(qualified)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self.reads.visit_AssignTarget(node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.reads.visit_AugAssign(node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.reads.visit_AnnAssign(node)

    def visit_Del(self, node: cst.Del) -> None:
        self.reads.visit_Del(node)

    def _swap(
        self, original: cst.Subscript | cst.Call, updated: cst.BaseExpression
    ) -> cst.BaseExpression:
        self.reads.found.clear()
        self.reads._visit(original)
        if not self.reads.found:
            return updated
        var, ok, _default, _secret = self.reads.found[0]
        if not ok or var not in self.fields:
            return updated
        return cst.Name(self.fields[var], lpar=original.lpar, rpar=original.rpar)

    def leave_Subscript(
        self, original: cst.Subscript, updated: cst.Subscript
    ) -> cst.BaseExpression:
        return self._swap(original, updated)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        return self._swap(original, updated)
