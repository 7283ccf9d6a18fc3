"""Timeouts and retries for network calls (NBH301, NBH302): the codemod and what the generated package needs.

A network call in the notebook becomes a call through a helper of the generated ``support.py``, which retries
that one call (never the whole step) with exponential backoff on transient errors only: connection errors,
timeouts, HTTP 429 and 5xx. The timeout, the number of attempts and the backoff are ``Config`` fields.

=======================================================  ==================================================
notebook                                                 generated
=======================================================  ==================================================
``requests.get(url)`` (also post/put/patch/delete/...)   ``call_with_retry(requests.get, url,
                                                         timeout=http_timeout())``
``session.get(url)`` (a ``requests.Session``)            ``call_with_retry(session.get, url,
                                                         timeout=http_timeout())``
``httpx.get(url)``, ``client.get(url)`` (``httpx.Client``) the same (no per-call timeout when the client was
                                                         made with one)
``urllib.request.urlopen(url)``                          ``call_with_retry(urllib.request.urlopen, url,
                                                         timeout=http_timeout())``
``pd.read_csv(url)`` (any ``pd.read_*`` on an http(s)/ftp  ``read_url(pd.read_csv, url)``: the socket timeout
URL)                                                     during the call, and the retry
``boto3.client("s3")``, ``boto3.resource(...)``,         ``boto3.client("s3", config=aws_config())``:
``session.client(...)``                                  botocore's own timeouts and standard retries
=======================================================  ==================================================

A timeout the notebook gives is kept. A call with ``**kwargs`` is retried but gets no timeout (the mapping may
hold one already), and NBH301 stays reported. What counts as a URL for the pandas readers: a string literal with
an http(s) or ftp scheme, an f-string, concatenation, ``.format`` or ``urljoin`` starting with one, or a name the
notebook binds to any of those (a parameters-cell ``DATA_URL = "https://..."``, a dict or list of URLs, a loop
variable over one).

The stages use this module as follows: ``plan`` adds ``network_fields`` to ``Config`` and ``tenacity`` to the
dependencies when ``scan(facts).found``; ``emit`` runs ``NetworkCalls`` in its codemod chain, adds
``import_line()`` to ``steps.py``, ``pipeline_setup`` to ``pipeline.run``, ``support_module`` to ``support.py``,
and replaces the analysis' NBH301/NBH302 findings with ``findings`` (applied, at the call's cell and line).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from nbharden.analyse import NotebookFacts, qualify
from nbharden.models import ConfigField, Finding, Fix, Severity, Span
from nbharden.templates import template_text

#: The network helpers of generated packages: a real module (nbharden/templates/network.py).
TEMPLATE = "network.py"
#: Where the helpers start in the template (everything above is its docstring and imports).
_HELPERS_MARK = "# --- network calls:"


def _template_defaults() -> tuple[dict[str, float], float]:
    """``_network`` and ``_MAX_WAIT`` as the template sets them: the defaults of the Config fields."""
    values: dict[str, object] = {}
    target: ast.expr
    for node in ast.parse(template_text(TEMPLATE)).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in {"_network", "_MAX_WAIT"}:
            values[target.id] = ast.literal_eval(value)
    network, max_wait = values["_network"], values["_MAX_WAIT"]
    assert isinstance(network, dict) and isinstance(max_wait, float)
    return network, max_wait


#: Defaults of the Config fields (and of the generated support module, for a step called on its own); MAX_WAIT is
#: the longest wait between two attempts, seconds.
_DEFAULTS, MAX_WAIT = _template_defaults()
DEFAULT_ATTEMPTS = int(_DEFAULTS["attempts"])
DEFAULT_BACKOFF = _DEFAULTS["backoff"]
DEFAULT_TIMEOUT = _DEFAULTS["timeout"]

#: The Config fields, in order: (preferred name, annotation, default, description, constraints).
_FIELDS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "retry_attempts",
        "int",
        repr(DEFAULT_ATTEMPTS),
        "attempts per network call before giving up (1: no retry); a call is retried only on a "
        "connection error, a timeout, HTTP 429 or 5xx",
        "ge=1",
    ),
    (
        "retry_backoff",
        "float",
        repr(DEFAULT_BACKOFF),
        "seconds to wait after the first failed attempt of a network call, doubled after each "
        f"further one (at most {MAX_WAIT:.0f} s)",
        "ge=0",
    ),
    (
        "http_timeout",
        "float",
        repr(DEFAULT_TIMEOUT),
        "timeout of each network call in seconds (to connect, and between bytes received)",
        "gt=0",
    ),
)

#: The dependency the generated package needs when it retries.
DEPENDENCY = "tenacity"

_HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})
_SESSION_FACTORIES = frozenset(
    {"requests.Session", "requests.session", "requests.sessions.Session"}
)
_HTTPX_CLIENTS = frozenset({"httpx.Client"})
_BOTO3_FACTORIES = frozenset({"boto3.client", "boto3.resource"})
_BOTO3_SESSIONS = frozenset({"boto3.Session", "boto3.session.Session"})
_URLOPEN = frozenset({"urllib.request.urlopen"})
#: pandas readers that download http(s)/ftp URLs with urllib (pandas.io.common.get_handle).
_PANDAS_READERS = frozenset(
    {
        "read_csv",
        "read_table",
        "read_fwf",
        "read_json",
        "read_excel",
        "read_html",
        "read_xml",
        "read_parquet",
        "read_feather",
        "read_orc",
        "read_pickle",
        "read_stata",
        "read_sas",
    }
)
#: Keyword names of the source argument of those readers.
_SOURCE_KEYWORDS = frozenset({"filepath_or_buffer", "path_or_buf", "io", "path"})
_URL_TEXT = re.compile(r"^(https?|ftp)://", re.IGNORECASE)
_URL_JOIN = frozenset({"urllib.parse.urljoin", "posixpath.join"})

#: Helper names in the generated support module.
HELPERS = ("call_with_retry", "read_url", "http_timeout", "aws_config")


@dataclass(frozen=True)
class NetworkCall:
    """One network call the codemod rewrote: what it was, how, and where."""

    span: Span | None  # where the call is in the notebook (None: not found, no finding)
    target: str  # qualified name for messages: requests.get, requests.Session.get, pandas.read_csv
    how: str  # "call" (call_with_retry) | "read" (read_url) | "aws" (config=aws_config())
    timeout: str  # "added" | "kept" (the notebook gives one) | "client" (the httpx client has one) | "unknown"


@dataclass
class NetworkScan:
    """What the notebook's code says about network use: session/client names and URL-valued names."""

    qualified: dict[str, str]
    url_names: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)  # requests.Session objects
    clients: dict[str, bool] = field(
        default_factory=dict
    )  # httpx.Client objects -> made with a timeout
    aws_sessions: set[str] = field(default_factory=set)  # boto3 sessions
    found: bool = False  # at least one call the codemod rewrites

    def classify(self, node: cst.Call) -> tuple[str, str] | None:
        """(how, target) when ``node`` is a network call the codemod rewrites, else None."""
        func = node.func
        name = qualify(func, self.qualified)
        if name is not None:
            head, _, method = name.rpartition(".")
            if head in {"requests", "httpx"} and method in _HTTP_METHODS:
                return "call", name
            if name in _URLOPEN:
                return "call", name
            if name in _BOTO3_FACTORIES:
                return "aws", name
            if head == "pandas" and method in _PANDAS_READERS and self._reads_url(node):
                return "read", name
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            receiver = func.value
            kind = self._receiver_kind(receiver)
            if kind == "session" and method in _HTTP_METHODS:
                return "call", f"requests.Session.{method}"
            if kind == "client" and method in _HTTP_METHODS:
                return "call", f"httpx.Client.{method}"
            if kind == "aws-session" and method in {"client", "resource"}:
                return "aws", f"boto3.Session.{method}"
        return None

    def _receiver_kind(self, receiver: cst.BaseExpression) -> str | None:
        if isinstance(receiver, cst.Name):
            if receiver.value in self.sessions:
                return "session"
            if receiver.value in self.clients:
                return "client"
            if receiver.value in self.aws_sessions:
                return "aws-session"
            return None
        if isinstance(receiver, cst.Call):  # requests.Session().get(url)
            made = qualify(receiver.func, self.qualified)
            if made in _SESSION_FACTORIES:
                return "session"
            if made in _HTTPX_CLIENTS:
                return "client"
            if made in _BOTO3_SESSIONS:
                return "aws-session"
        return None

    def client_has_timeout(self, node: cst.Call) -> bool:
        """Whether the httpx client ``node`` is called on was made with its own timeout."""
        func = node.func
        if not isinstance(func, cst.Attribute):
            return False
        receiver = func.value
        if isinstance(receiver, cst.Name):
            return self.clients.get(receiver.value, False)
        return isinstance(receiver, cst.Call) and _has_keyword(receiver, "timeout")

    def _reads_url(self, node: cst.Call) -> bool:
        source = next((a.value for a in node.args if a.keyword is None and not a.star), None)
        if source is None:
            source = next(
                (
                    a.value
                    for a in node.args
                    if a.keyword is not None and a.keyword.value in _SOURCE_KEYWORDS
                ),
                None,
            )
        return source is not None and self.is_url(source)

    def is_url(self, expr: cst.BaseExpression) -> bool:
        """Whether ``expr`` evaluates to an http(s)/ftp URL, as far as the notebook's code shows."""
        if isinstance(expr, cst.SimpleString):
            value = expr.evaluated_value
            return isinstance(value, str) and _URL_TEXT.match(value) is not None
        if isinstance(expr, cst.ConcatenatedString):
            return self.is_url(expr.left)
        if isinstance(expr, cst.FormattedString):
            if not expr.parts:
                return False
            first = expr.parts[0]
            if isinstance(first, cst.FormattedStringText):
                return _URL_TEXT.match(first.value) is not None
            return isinstance(first, cst.FormattedStringExpression) and self.is_url(
                first.expression
            )
        if isinstance(expr, cst.Name):
            return expr.value in self.url_names
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
            return self.is_url(expr.left)
        if isinstance(expr, cst.Subscript):  # URLS["prices"]
            return self.is_url(expr.value)
        if isinstance(expr, cst.Call):
            func = expr.func
            if isinstance(func, cst.Attribute) and func.attr.value in {"format", "strip"}:
                return self.is_url(func.value)
            name = qualify(func, self.qualified)
            if (name in _URL_JOIN or name == "str") and expr.args:
                return self.is_url(expr.args[0].value)
        if isinstance(expr, cst.Dict):
            return any(
                isinstance(e, cst.DictElement) and self.is_url(e.value) for e in expr.elements
            )
        if isinstance(expr, cst.List | cst.Tuple | cst.Set):
            return any(self.is_url(e.value) for e in expr.elements)
        return False


def _has_keyword(node: cst.Call, name: str) -> bool:
    return any(a.keyword is not None and a.keyword.value == name for a in node.args)


def _has_double_star(node: cst.Call) -> bool:
    return any(a.star == "**" for a in node.args)


class _Bindings(cst.CSTVisitor):
    """Collects (target name, value) of assignments, with-items and for-loops, and the network calls."""

    def __init__(self) -> None:
        super().__init__()
        self.bindings: list[tuple[str, cst.BaseExpression, bool]] = (
            []
        )  # (name, value, is loop target)
        self.calls: list[cst.Call] = []

    def visit_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            if isinstance(t.target, cst.Name):
                self.bindings.append((t.target.value, node.value, False))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if isinstance(node.target, cst.Name) and node.value is not None:
            self.bindings.append((node.target.value, node.value, False))

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None and isinstance(node.asname.name, cst.Name):
            self.bindings.append((node.asname.name.value, node.item, False))

    def visit_For(self, node: cst.For) -> None:
        if isinstance(node.target, cst.Name):
            self.bindings.append((node.target.value, node.iter, True))

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(node)


def scan(facts: NotebookFacts) -> NetworkScan:
    """Find the notebook's sessions, clients and URL-valued names, and whether any call is a network call."""
    result = NetworkScan(dict(facts.qualified))
    bindings: list[tuple[str, cst.BaseExpression, bool]] = []
    calls: list[cst.Call] = []
    for index in sorted(facts.cells):
        collector = _Bindings()
        facts.cells[index].module.visit(collector)
        bindings += collector.bindings
        calls += collector.calls
    for name, value, loop in bindings:
        if loop or not isinstance(value, cst.Call):
            continue
        made = qualify(value.func, result.qualified)
        if made in _SESSION_FACTORIES:
            result.sessions.add(name)
        elif made in _HTTPX_CLIENTS:
            result.clients[name] = result.clients.get(name, False) or _has_keyword(value, "timeout")
        elif made in _BOTO3_SESSIONS:
            result.aws_sessions.add(name)
    # URL-valued names: a fixed point, since one can be built from another (BASE + "/prices.csv").
    changed = True
    while changed:
        changed = False
        for name, value, _loop in bindings:
            if name not in result.url_names and result.is_url(value):
                result.url_names.add(name)
                changed = True
    result.found = any(result.classify(c) is not None for c in calls)
    return result


def network_fields(taken: Iterable[str]) -> tuple[ConfigField, ...]:
    """The Config fields of the retry and the timeout, named so they do not clash with ``taken``."""
    used = set(taken)
    out = []
    for name, annotation, default, description, constraints in _FIELDS:
        while name in used:
            name += "_"
        used.add(name)
        out.append(
            ConfigField(
                name,
                annotation,
                default,
                description,
                0,
                0,
                kind="network",
                constraints=constraints,
            )
        )
    return tuple(out)


def _fields_of(config_fields: Sequence[ConfigField]) -> tuple[ConfigField, ...]:
    return tuple(f for f in config_fields if f.kind == "network")


class NetworkCalls(cst.CSTTransformer):
    """The codemod: each network call goes through a retrying helper and gets an explicit timeout.

    One instance serves a whole notebook (``emit`` runs it on every statement); ``calls`` lists what it
    rewrote and ``used`` the helpers the generated ``steps.py`` must import.
    """

    def __init__(self, facts: NotebookFacts, taken: Iterable[str] = ()) -> None:
        super().__init__()
        self.scan = facts.network  # made once per conversion (the plan asked first)
        self.facts = facts
        avoid = set(taken)
        self.names: dict[str, str] = {}
        for helper in HELPERS:
            name = helper
            while name in avoid:
                name += "_"
            self.names[helper] = name
        self.calls: list[NetworkCall] = []
        self.used: set[str] = set()
        self._candidates: list[tuple[cst.Call, str, str, Span]] | None = None
        self._claimed: set[int] = set()

    def _helper(self, helper: str) -> cst.Name:
        self.used.add(helper)
        return cst.Name(self.names[helper])

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        found = self.scan.classify(original)
        if found is None:
            return updated
        how, target = found
        args = list(updated.args)
        if how == "aws":
            if _has_keyword(updated, "config") or _has_double_star(updated):
                return updated  # the notebook configures the client itself
            config = cst.Call(self._helper("aws_config"))
            self.calls.append(NetworkCall(self._claim(original, target), target, how, "added"))
            return updated.with_changes(args=[*_with_comma(args), _keyword("config", config)])
        if how == "read":
            self.calls.append(NetworkCall(self._claim(original, target), target, how, "added"))
            return cst.Call(self._helper("read_url"), [cst.Arg(updated.func), *args])
        timeout = self._timeout(original, target)
        if timeout == "added":
            value = cst.Call(self._helper("http_timeout"))
            args = [*_with_comma(args), _keyword("timeout", value)]
        self.calls.append(NetworkCall(self._claim(original, target), target, how, timeout))
        return cst.Call(self._helper("call_with_retry"), [cst.Arg(updated.func), *args])

    def _timeout(self, node: cst.Call, target: str) -> str:
        if _has_keyword(node, "timeout"):
            return "kept"
        positional = [a for a in node.args if a.keyword is None]
        if target in _URLOPEN and (len(positional) >= 3 or any(a.star == "*" for a in positional)):
            return "kept"  # urlopen(url, data, timeout)
        if target.startswith("httpx.Client.") and self.scan.client_has_timeout(node):
            return "client"
        if _has_double_star(node):
            return "unknown"
        return "added"

    def import_line(self) -> str | None:
        """``from .support import ...`` for the helpers the rewritten code uses (None when it uses none)."""
        if not self.used:
            return None
        parts = []
        for helper in HELPERS:
            if helper in self.used:
                name = self.names[helper]
                parts.append(helper if name == helper else f"{helper} as {name}")
        return "from .support import " + ", ".join(parts)

    def findings(self, findings: Iterable[Finding]) -> list[Finding]:
        """``findings`` with NBH301/NBH302 of each rewritten call replaced by what was applied to it."""
        replaced: set[tuple[int, int, int]] = set()
        added: list[Finding] = []
        for call in self.calls:
            if call.span is None:
                continue
            replaced.add((call.span.cell, call.span.line, call.span.col))
            added += _call_findings(call, call.span)
        kept = [
            f
            for f in findings
            if not (
                f.code in {"NBH301", "NBH302"}
                and f.span is not None
                and (f.span.cell, f.span.line, f.span.col) in replaced
            )
        ]
        return kept + added

    def _claim(self, node: cst.Call, target: str) -> Span | None:
        """Where the notebook has the call ``node``, each notebook call claimed once.

        ``node`` is the notebook's own node unless a codemod that ran before this one copied the
        statement (LibCST transformers return new nodes); then the same source text, or else the
        first unclaimed call of the same target, in notebook order, is taken.
        """
        if self._candidates is None:
            self._candidates = self._find_candidates()
        code = _code(node)
        for test in (
            lambda c: c[0] is node,
            lambda c: c[1] == code,
            lambda c: c[2] == target,
        ):
            for i, candidate in enumerate(self._candidates):
                if i not in self._claimed and test(candidate):
                    self._claimed.add(i)
                    return candidate[3]
        return None

    def _find_candidates(self) -> list[tuple[cst.Call, str, str, Span]]:
        """Every call the codemod would rewrite, in notebook order: (node, source, target, span)."""
        out: list[tuple[cst.Call, str, str, Span]] = []
        for index in sorted(self.facts.cells):
            module = self.facts.cells[index].module
            collector = _Bindings()
            module.visit(collector)
            found = [(c, self.scan.classify(c)) for c in collector.calls]
            hits = [(c, f[1]) for c, f in found if f is not None]
            if not hits:
                continue
            positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
            for node, target in hits:
                where = positions.get(node)
                if isinstance(where, CodeRange):
                    span = Span(index, where.start.line, where.start.column + 1)
                    out.append((node, _code(node), target, span))
        out.sort(key=lambda c: (c[3].cell, c[3].line, c[3].col))
        return out


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _keyword(name: str, value: cst.BaseExpression) -> cst.Arg:
    """``name=value`` as an argument, spaced as black writes it."""
    none = cst.SimpleWhitespace("")
    return cst.Arg(value, keyword=cst.Name(name), equal=cst.AssignEqual(none, none))


def _with_comma(args: list[cst.Arg]) -> list[cst.Arg]:
    """``args`` ready for one more argument after them (the last one keeps or gets its comma)."""
    if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
        return [
            *args[:-1],
            args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
        ]
    return args


def _call_findings(call: NetworkCall, span: Span) -> list[Finding]:
    name = f"{call.target}()"
    out = []
    if call.how == "aws":
        return [
            Finding(
                "NBH301",
                f"{name} gets config=aws_config(): connect and read timeouts of Config.http_timeout",
                span,
                Severity.INFO,
                Fix.SAFE,
                applied=True,
            ),
            Finding(
                "NBH302",
                f"{name} clients retry with botocore's standard mode (Config.retry_attempts attempts, "
                "exponential backoff on throttling, 5xx and connection errors)",
                span,
                Severity.INFO,
                Fix.SAFE,
                applied=True,
            ),
        ]
    if call.timeout == "added":
        what = (
            "reads with a socket timeout of Config.http_timeout (pandas has no timeout option)"
            if call.how == "read"
            else "gets timeout=Config.http_timeout"
        )
        out.append(Finding("NBH301", f"{name} {what}", span, Severity.INFO, Fix.SAFE, applied=True))
    elif call.timeout == "unknown":
        out.append(
            Finding(
                "NBH301",
                f"{name} gets its arguments from **kwargs: no timeout added, pass timeout= yourself",
                span,
                Severity.WARNING,
                Fix.SAFE,
                applied=False,
            )
        )
    out.append(
        Finding(
            "NBH302",
            f"{name} is retried on connection errors, timeouts, HTTP 429 and 5xx "
            "(Config.retry_attempts, backoff from Config.retry_backoff)",
            span,
            Severity.INFO,
            Fix.SAFE,
            applied=True,
        )
    )
    return out


def pipeline_setup(config_fields: Sequence[ConfigField], config: str) -> tuple[str, list[str]]:
    """(name to import from .support, lines for ``run``'s body) that hand the Config values to the helpers.

    Empty when the plan has no network fields.
    """
    fields = _fields_of(config_fields)
    if len(fields) != len(_FIELDS):
        return "", []
    attempts, backoff, timeout = (f.name for f in fields)
    return "configure_network", [
        f"    configure_network(attempts={config}.{attempts}, backoff={config}.{backoff}, "
        f"timeout={config}.{timeout})"
    ]


def uses_network(config_fields: Sequence[ConfigField]) -> bool:
    """Whether the plan gave Config the network fields (then support.py carries the helpers)."""
    return bool(_fields_of(config_fields))


def support_module(support: str) -> str:
    """The generated ``support.py`` text with the network helpers added: the template's imports after its imports,
    the helpers at the end (ruff sorts the imports when the tree is formatted)."""
    template = template_text(TEMPLATE)
    have = {cst.Module([]).code_for_node(s).strip() for s in _imports(cst.parse_module(support))}
    wanted = [
        s
        for s in _imports(cst.parse_module(template))
        if cst.Module([]).code_for_node(s).strip() not in have
    ]
    module = cst.parse_module(support)
    body = list(module.body)
    last_import = max(
        (i for i, stmt in enumerate(body) if stmt in _imports(module)),
        default=-1,
    )
    body[last_import + 1 : last_import + 1] = [s.with_changes(leading_lines=[]) for s in wanted]
    text = module.with_changes(body=body).code.rstrip("\n") + "\n"
    if not re.search(r"^logger = ", text, re.MULTILINE):
        text += "\nlogger = logging.getLogger(__name__)\n"
    return text + "\n\n" + template[template.index(_HELPERS_MARK) :]


def _imports(module: cst.Module) -> list[cst.SimpleStatementLine]:
    return [
        stmt
        for stmt in module.body
        if isinstance(stmt, cst.SimpleStatementLine)
        and all(isinstance(s, cst.Import | cst.ImportFrom) for s in stmt.body)
    ]
