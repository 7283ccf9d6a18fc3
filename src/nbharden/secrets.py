"""Hard-coded secrets (NBH201): find them in a cell's code, move them to the Config, keep them out of every output.

A secret is found by its shape (an AWS access key id, a GitHub, Slack, Stripe, Google, OpenAI or Hugging Face
token, a JWT, a PEM private key, the password of a URL, a ``Bearer`` credential, a ``Pwd=`` or ``?api_key=`` part
of a connection string) or by its place: a plausible value bound to a secret-looking name (a variable, an
attribute, a keyword argument, a dictionary key, an environment variable, a parameter's default, a class
attribute, one side of a tuple unpacking or of a comparison). Only the secret part of a literal counts:
``"postgresql://ana:pw@db/sales"`` keeps its user and host and moves only ``pw``.

The stages use this module so that a secret's value is never copied anywhere but into memory:

- ``scan`` (analysis) lists the sites: cell, line, column, what kind of secret, the name it is bound to;
- the plan turns each distinct secret into a ``SecretStr`` field of the Config (``field_hint``) and keeps the
  functions that use one inside their step (``uses_secret``), so that they can read it from the step's
  parameters; ``used_fields`` says which fields a statement reads;
- ``SecretRewriter`` (emit) replaces every occurrence of a secret in a string literal or f-string of the
  generated code by the field's value (``"Bearer <token>"`` becomes ``f"Bearer {authorization}"``) and
  scrubs comments;
- ``redact`` removes secrets from any text (finding messages, error messages), and the recorder refuses to
  store a value whose bytes contain one.

The values themselves never leave the process: the plan records where a secret is (cell, line, column), not
what it is, and ``secret_values`` recomputes the values from the analysis when a stage needs them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from nbharden.secret_shapes import Hit as Hit
from nbharden.secret_shapes import disjoint, snake_name
from nbharden.secret_shapes import is_secret_literal as is_secret_literal
from nbharden.secret_shapes import is_secret_name as is_secret_name
from nbharden.secret_shapes import plausible_secret as plausible_secret
from nbharden.secret_shapes import secret_hits as secret_hits
from nbharden.templates import template_text

#: What ``redact`` writes in place of a secret.
REDACTED = "<redacted>"


@dataclass(frozen=True)
class Site:
    """One secret in a cell's code (the value itself is ``secret``; never serialise a Site)."""

    cell: int
    stmt: int  # index of the top-level statement of the cell's module; -1 outside any statement
    line: int
    col: int
    secret: str
    kind: str
    context: str | None  # the name the literal is bound to (variable, keyword, key...), if any
    owner: str | None  # the call, dictionary or class the binding belongs to, if any
    in_comment: bool = False
    label: str = ""

    @property
    def description(self) -> str:
        return KINDS.get(self.kind, ("secret", "secret"))[0]

    @property
    def hint(self) -> str:
        """A field name for the secret, before collisions are resolved."""
        if self.context and is_secret_name(self.context):
            return snake_name(self.context)
        if self.kind == "url-password" and self.context:
            return snake_name(self.context) + "_password"
        return self.label or KINDS.get(self.kind, ("secret", "secret"))[1]


#: kind -> (description, default field name)
KINDS: dict[str, tuple[str, str]] = {
    "aws-access-key-id": ("AWS access key id", "aws_access_key_id"),
    "github-token": ("GitHub token", "github_token"),
    "gitlab-token": ("GitLab token", "gitlab_token"),
    "slack-token": ("Slack token", "slack_token"),
    "slack-webhook": ("Slack webhook URL", "slack_webhook_url"),
    "stripe-key": ("Stripe key", "stripe_api_key"),
    "google-api-key": ("Google API key", "google_api_key"),
    "openai-key": ("OpenAI-style API key", "openai_api_key"),
    "huggingface-token": ("Hugging Face token", "huggingface_token"),
    "sendgrid-key": ("SendGrid API key", "sendgrid_api_key"),
    "jwt": ("JSON Web Token", "jwt"),
    "private-key": ("private key", "private_key"),
    "azure-key": ("Azure storage account key", "azure_account_key"),
    "url-password": ("password in a URL", "url_password"),
    "auth-header": ("credential in an Authorization value", "auth_token"),
    "key-value": ("credential in a connection string", "connection_secret"),
    "named": ("secret", "secret"),
}

#: Where the part of templates/secrets_support.py that is appended starts (above it: its docstring and imports).
_SECRETS_MARK = "# --- appended to support.py from here:\n"
#: Appended to the generated ``support.py`` when the Config has secrets; ``run`` calls it first.
SECRETS_SUPPORT = template_text("secrets_support.py").split(_SECRETS_MARK, 1)[1]

# --- scanning a cell --------------------------------------------------------------------------------------------

_ENV_GETTERS = {"get", "getenv", "setdefault", "putenv", "pop"}
_LOGIN_CALLS = re.compile(
    r"^(login|HTTPBasicAuth|HTTPDigestAuth|HTTPProxyAuth|BasicAuth|DigestAuth|auth|authenticate|set_password)$"
)
_COMMENT_ASSIGN = re.compile(r"""([A-Za-z_][\w.\-]*)["']?\s*[:=]\s*[fbru]{0,2}["']([^"']+)["']""")


def _string_value(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        if isinstance(value, bytes):
            return value.decode("latin-1")
        return value
    return None


def _target_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        part = node.slice[0].slice
        if isinstance(part, cst.Index):
            return _string_value(part.value)
    return None


def _callee(node: cst.Call) -> str | None:
    func = node.func
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return None


class _Scanner(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, cell: int) -> None:
        super().__init__()
        self.cell = cell
        self.stmt = -1
        self.context: dict[int, tuple[str | None, str | None]] = {}  # id(node) -> (name, owner)
        self.sites: list[Site] = []
        self.owners: list[str] = []  # enclosing class / function names

    # where each value is bound
    def _bind(self, node: cst.CSTNode | None, name: str | None, owner: str | None = None) -> None:
        if node is None or name is None:
            return
        self.context[id(node)] = (name, owner)
        # transparent wrappers pass the name on
        if isinstance(node, cst.IfExp):
            self._bind(node.body, name, owner)
            self._bind(node.orelse, name, owner)
        elif isinstance(node, cst.BooleanOperation | cst.BinaryOperation):
            self._bind(node.left, name, owner)
            self._bind(node.right, name, owner)
        elif isinstance(node, cst.ConcatenatedString):
            self._bind(node.left, name, owner)
            self._bind(node.right, name, owner)
        elif isinstance(node, cst.Tuple | cst.List) and is_secret_name(name):
            strings = [e for e in node.elements if isinstance(e.value, cst.SimpleString)]
            if len(node.elements) == 2 and len(strings) == 2:
                # auth = ("user", "password"): the second is the secret
                self.context[id(node.elements[0].value)] = (None, owner)
                self._bind(node.elements[1].value, name, owner)

    def _pairs(
        self, target: cst.BaseExpression, value: cst.BaseExpression | None, owner: str | None
    ) -> None:
        if value is None:
            return
        if isinstance(target, cst.Tuple | cst.List) and isinstance(value, cst.Tuple | cst.List):
            if len(target.elements) == len(value.elements):
                for t, v in zip(target.elements, value.elements, strict=True):
                    self._pairs(t.value, v.value, owner)
            return
        if isinstance(target, cst.Attribute | cst.Subscript):
            base = target.value
            while isinstance(base, cst.Attribute | cst.Subscript | cst.Call):
                base = base.func if isinstance(base, cst.Call) else base.value
            if isinstance(base, cst.Name) and base.value not in {"os", "self", "cls"}:
                owner = base.value
        self._bind(value, _target_name(target), owner)

    def _owner(self) -> str | None:
        return self.owners[-1] if self.owners else None

    def visit_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            self._pairs(t.target, node.value, self._owner())

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._pairs(node.target, node.value, self._owner())

    def visit_Call(self, node: cst.Call) -> None:
        callee = _callee(node)
        owner = callee
        if callee == "dict":  # creds = dict(password=...): the dictionary's name
            owner = self.context.get(id(node), (None, None))[0]
        for arg in node.args:
            if arg.keyword is not None:
                self._bind(arg.value, arg.keyword.value, owner)
        positional = [a for a in node.args if a.keyword is None and a.star == ""]
        if callee in _ENV_GETTERS and len(positional) >= 2:
            key = _string_value(positional[0].value)
            if key is not None:
                self._bind(positional[1].value, key, None)
        if callee == "setattr" and len(positional) == 3:
            self._bind(positional[2].value, _string_value(positional[1].value), callee)
        if callee is not None and _LOGIN_CALLS.match(callee) and len(positional) >= 2:
            self._bind(positional[1].value, "password", callee)

    def visit_Dict(self, node: cst.Dict) -> None:
        owner = self.context.get(id(node), (None, None))[0]
        for element in node.elements:
            if isinstance(element, cst.DictElement):
                self._bind(element.value, _string_value(element.key), owner)

    def visit_Comparison(self, node: cst.Comparison) -> None:
        left = _target_name(node.left) if not isinstance(node.left, cst.SimpleString) else None
        for target in node.comparisons:
            if left is not None:
                self._bind(target.comparator, left, None)
            elif isinstance(node.left, cst.SimpleString):
                self._bind(node.left, _target_name(target.comparator), None)

    def visit_Param(self, node: cst.Param) -> None:
        if node.default is not None:
            self._bind(node.default, node.name.value, self._owner())

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.owners.append(node.name.value)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.owners.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.owners.append(node.name.value)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self.owners.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if self.owners and node.value is not None:
            self._bind(node.value, re.sub(r"^(get|load|read|fetch)_", "", self.owners[-1]), None)

    # the literals
    def _position(self, node: cst.CSTNode) -> tuple[int, int]:
        where = self.get_metadata(PositionProvider, node, None)
        return (where.start.line, where.start.column + 1) if where is not None else (1, 1)

    def _add(
        self,
        node: cst.CSTNode,
        raw: str,
        value: str,
        hits: Sequence[Hit],
        name: str | None,
        owner: str | None,
        comment: bool = False,
    ) -> None:
        line, col = self._position(node)
        for hit in hits:
            secret = value[hit.start : hit.end]
            # the line the secret starts on, for multi-line literals (a PEM block)
            probe = secret[:12]
            at = raw.find(probe) if probe else -1
            hit_line, hit_col = line, col
            if at > 0 and "\n" in raw[:at]:
                hit_line = line + raw[:at].count("\n")
                hit_col = at - raw[:at].rfind("\n")
            self.sites.append(
                Site(
                    self.cell,
                    self.stmt,
                    hit_line,
                    hit_col,
                    secret,
                    hit.kind,
                    name,
                    owner,
                    comment,
                    hit.label,
                )
            )

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        value = _string_value(node)
        if value is None:
            return
        name, owner = self.context.get(id(node), (None, None))
        hits = secret_hits(name, value)
        if hits:
            self._add(node, node.value, value, hits, name, owner)

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        name, owner = self.context.get(id(node), (None, None))
        # expressions become a NUL so that a URL's password or a token in the text is still found
        texts: list[tuple[int, cst.FormattedStringText]] = []
        combined = ""
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                texts.append((len(combined), part))
                combined += part.value
            else:
                combined += "\x00"
        for hit in secret_hits(None, combined):
            for offset, part in texts:
                if offset <= hit.start and hit.end <= offset + len(part.value):
                    sub = Hit(hit.start - offset, hit.end - offset, hit.kind, hit.label)
                    self._add(node, node.start + combined, part.value, [sub], name, owner)
                    break

    def visit_Comment(self, node: cst.Comment) -> None:
        text = node.value
        hits: list[Hit] = []
        for m in _COMMENT_ASSIGN.finditer(text):
            for hit in secret_hits(m.group(1), m.group(2)):
                hits.append(Hit(hit.start + m.start(2), hit.end + m.start(2), hit.kind, hit.label))
        hits.extend(secret_hits(None, text))
        hits = disjoint(hits)
        if hits:
            self._add(node, text, text, hits, None, None, comment=True)


def scan(
    module: cst.Module, cell: int, positions: Mapping[cst.CSTNode, CodeRange] | None = None
) -> list[Site]:
    """Every secret in one cell's (masked, translated) code, in source order. ``positions``: the module's
    ``PositionProvider`` metadata when the caller has resolved it already (resolving it is most of the cost)."""
    if positions is None:
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    scanner = _Scanner(cell)
    scanner.metadata = {PositionProvider: positions}
    for line in module.header:
        if line.comment is not None:
            line.comment.visit(scanner)
    for i, stmt in enumerate(module.body):
        scanner.stmt = i
        stmt.visit(scanner)
    scanner.stmt = -1
    for line in module.footer:
        if line.comment is not None:
            line.comment.visit(scanner)
    return sorted(scanner.sites, key=lambda s: (s.line, s.col))


def scan_cells(modules: Mapping[int, cst.Module]) -> list[Site]:
    """``scan`` over every cell (cell index -> module)."""
    sites: list[Site] = []
    for cell in sorted(modules):
        sites.extend(scan(modules[cell], cell))
    return sites


# --- which statements use which secret --------------------------------------------------------------------------


def matcher(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern that finds any of ``values`` (longest first), or None when there is none."""
    ordered = sorted({v for v in values if v}, key=lambda v: (-len(v), v))
    if not ordered:
        return None
    return re.compile("|".join(re.escape(v) for v in ordered))


class _Strings(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[str] = []

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        value = _string_value(node)
        if value is not None:
            self.values.append(value)

    def visit_FormattedStringText(self, node: cst.FormattedStringText) -> None:
        self.values.append(node.value)


def strings_in(node: cst.CSTNode) -> list[str]:
    """Every string literal's value and f-string text in ``node``, in source order."""
    collector = _Strings()
    node.visit(collector)
    return collector.values


def used_fields(node: cst.CSTNode, fields: Mapping[str, str]) -> list[str]:
    """The fields (secret value -> field name) whose secret occurs in a string of ``node``, in order."""
    pattern = matcher(fields)
    if pattern is None:
        return []
    out: list[str] = []
    for text in strings_in(node):
        for m in pattern.finditer(text):
            name = fields[m.group(0)]
            if name not in out:
                out.append(name)
    return out


def uses_secret(node: cst.CSTNode, values: Iterable[str]) -> bool:
    """Whether a string literal in ``node`` contains one of the secret ``values``."""
    pattern = matcher(values)
    return pattern is not None and any(pattern.search(t) for t in strings_in(node))


# --- naming -----------------------------------------------------------------------------------------------------

#: Names a pydantic-settings field must not take (BaseModel's own attributes).
_PYDANTIC_RESERVED = {
    "copy",
    "dict",
    "json",
    "schema",
    "schema_json",
    "construct",
    "validate",
    "fields",
    "parse_obj",
    "parse_raw",
    "parse_file",
    "from_orm",
    "update_forward_refs",
}


#: Context names that say "a secret" but not which one: the owner's name or the kind goes in front.
_GENERIC = {
    "token",
    "password",
    "passwd",
    "pwd",
    "pw",
    "pass",
    "secret",
    "api_key",
    "apikey",
    "key",
    "auth",
    "authorization",
    "credentials",
    "creds",
    "access_token",
}


def field_name(site: Site, taken: set[str]) -> str:
    """A free field name for ``site``'s secret; never equal to a taken name, ignoring case (environment
    variables are matched without case)."""
    lowered = {t.lower() for t in taken}
    hint = snake_name(site.hint)
    owner = snake_name(site.owner) if site.owner else None
    label = site.label or KINDS.get(site.kind, ("", ""))[1]
    candidates = [hint]
    if hint in _GENERIC:
        candidates = (
            ([f"{owner}_{hint}"] if owner else [])
            + ([label] if site.kind != "named" else [])
            + [hint]
        )
    elif owner:
        candidates.append(f"{owner}_{hint}")
    for name in candidates:
        if name.startswith("model_") or name in _PYDANTIC_RESERVED:
            name = "secret_" + name
        if name.lower() not in lowered:
            return name
    base = candidates[-1]
    n = 2
    while f"{base}_{n}".lower() in lowered:
        n += 1
    return f"{base}_{n}"


#: Names the generated modules use next to a step's parameters.
RESERVED_NAMES = frozenset(
    {"config", "logger", "output_dir", "data_dir", "workdir", "steps", "run", "main", "Config"}
)


class _Identifiers(cst.CSTVisitor):
    """Every variable name in a module (not attribute names or keyword-argument names: nothing to shadow)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self._skip: set[int] = set()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._skip.add(id(node.attr))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._skip.add(id(node.keyword))

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) not in self._skip:
            self.names.add(node.value)


def assign_fields(
    cells: Mapping[int, Any],
    consumed: Collection[tuple[int, int]],
    known: Mapping[str, str],
) -> list[tuple[str, str, Site]]:
    """(secret value, field name, first site) for each secret that is not already a field.

    ``cells`` maps a cell index to its ``CellFacts`` (``module`` and ``secrets``); ``consumed`` are the
    (cell, statement) pairs that became Config fields; ``known`` maps the values of those secret fields to
    their names. Field names never collide with any identifier of the notebook (a step parameter must not
    shadow anything its code uses), with a builtin or with the generated code's own names. Deterministic:
    the plan and the emitter both call it and get the same names.
    """
    import builtins

    seen = set(known)
    todo = [
        site
        for index in sorted(cells)
        for site in cells[index].secrets
        if not site.in_comment and (site.cell, site.stmt) not in consumed and site.secret not in seen
    ]
    if not todo:  # the usual notebook: no walk over every cell's code for names no field needs
        return []
    taken = set(dir(builtins)) | RESERVED_NAMES | set(known.values())
    for cf in cells.values():
        collector = _Identifiers()
        cf.module.visit(collector)
        taken |= collector.names
    out: list[tuple[str, str, Site]] = []
    for site in todo:
        if site.secret in seen:
            continue
        name = field_name(site, taken)
        taken.add(name)
        seen.add(site.secret)
        out.append((site.secret, name, site))
    return out


# --- rewriting the generated code -------------------------------------------------------------------------------


class SecretRewriter(cst.CSTTransformer):
    """Replace each secret in a string literal by the Config field that holds it; scrub comments.

    ``fields`` maps a secret value to the name the generated code reads it from (a step parameter).
    ``scrub`` are more values to take out of comments (secrets found only in comments).
    """

    def __init__(self, fields: Mapping[str, str], scrub: Iterable[str] = ()) -> None:
        super().__init__()
        self.fields = dict(fields)
        self.pattern = matcher(self.fields)
        self.scrub = matcher([*self.fields, *scrub])
        self.used: set[str] = set()
        self._concatenated = 0

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> None:
        self._concatenated += 1

    def leave_ConcatenatedString(
        self, original: cst.ConcatenatedString, updated: cst.ConcatenatedString
    ) -> cst.BaseExpression:
        self._concatenated -= 1
        return updated

    def _pieces(self, text: str) -> list[str | tuple[str]] | None:
        """``text`` split into literal text and (field,) pieces; None when no secret is in it."""
        if self.pattern is None or not self.pattern.search(text):
            return None
        pieces: list[str | tuple[str]] = []
        last = 0
        for m in self.pattern.finditer(text):
            if m.start() > last:
                pieces.append(text[last : m.start()])
            name = self.fields[m.group(0)]
            self.used.add(name)
            pieces.append((name,))
            last = m.end()
        if last < len(text):
            pieces.append(text[last:])
        return pieces

    def leave_SimpleString(
        self, original: cst.SimpleString, updated: cst.SimpleString
    ) -> cst.BaseExpression:
        value = updated.evaluated_value
        is_bytes = isinstance(value, bytes)
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        pieces = self._pieces(text)
        if pieces is None:
            return updated
        if is_bytes:
            parts = [
                f"{piece[0]}.encode()"
                if isinstance(piece, tuple)
                else repr(piece.encode("latin-1"))
                for piece in pieces
            ]
            return cst.parse_expression(
                "(" + " + ".join(parts) + ")" if len(parts) > 1 else parts[0]
            )
        if len(pieces) == 1 and isinstance(pieces[0], tuple) and not self._concatenated:
            return cst.Name(pieces[0][0])
        return _fstring(pieces)

    def leave_FormattedString(
        self, original: cst.FormattedString, updated: cst.FormattedString
    ) -> cst.BaseExpression:
        parts: list[cst.BaseFormattedStringContent] = []
        changed = False
        for part in updated.parts:
            pieces = self._pieces(part.value) if isinstance(part, cst.FormattedStringText) else None
            if pieces is None:
                parts.append(part)
                continue
            changed = True
            for piece in pieces:
                if isinstance(piece, tuple):
                    parts.append(cst.FormattedStringExpression(cst.Name(piece[0])))
                else:
                    parts.append(cst.FormattedStringText(piece))
        return updated.with_changes(parts=parts) if changed else updated

    def leave_Comment(self, original: cst.Comment, updated: cst.Comment) -> cst.Comment:
        if self.scrub is None or not self.scrub.search(updated.value):
            return updated
        return updated.with_changes(value=self.scrub.sub(REDACTED, updated.value))


def _fstring(pieces: Sequence[str | tuple[str]]) -> cst.BaseExpression:
    """An f-string of literal text and field names, quoted and escaped safely."""
    marker = "\x00"
    if any(isinstance(p, str) and marker in p for p in pieces):
        parts = [p[0] if isinstance(p, tuple) else repr(p) for p in pieces]
        return cst.parse_expression("(" + " + ".join(parts) + ")")
    text = "".join(
        marker if isinstance(p, tuple) else p.replace("{", "{{").replace("}", "}}") for p in pieces
    )
    literal = repr(text)
    names = iter(p[0] for p in pieces if isinstance(p, tuple))
    literal = re.sub(r"\\x00", lambda _m: "{" + next(names) + "}", literal)
    return cst.parse_expression("f" + literal)


# --- values and redaction ---------------------------------------------------------------------------------------


def redact(text: str, values: Iterable[str]) -> str:
    """``text`` with every secret value (and its JSON-escaped form) replaced by ``<redacted>``."""
    forms: set[str] = set()
    for v in values:
        if not v:
            continue
        forms.add(v)
        escaped = _json_escaped(v)
        if escaped != v:
            forms.add(escaped)
        if "\n" in v:
            forms.update(line for line in v.splitlines() if len(line) >= 16)
    pattern = matcher(forms)
    return pattern.sub(REDACTED, text) if pattern is not None else text


def _json_escaped(value: str) -> str:
    import json

    return json.dumps(value)[1:-1]


def contains_secret(text: str, values: Iterable[str]) -> bool:
    """Whether ``text`` holds one of the secret ``values`` (plain or JSON-escaped)."""
    return redact(text, values) != text


def secret_values(sites: Iterable[Site]) -> list[str]:
    """The distinct secret values of ``sites``, longest first (what the recorder and ``redact`` look for)."""
    return sorted({s.secret for s in sites}, key=lambda v: (-len(v), v))


def redact_any(obj: Any, values: Sequence[str]) -> Any:
    """``obj`` (JSON-like: dicts, lists, strings) with every string redacted."""
    if isinstance(obj, str):
        return redact(obj, values)
    if isinstance(obj, list):
        return [redact_any(x, values) for x in obj]
    if isinstance(obj, dict):
        return {k: redact_any(v, values) for k, v in obj.items()}
    return obj
