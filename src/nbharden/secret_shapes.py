"""Secret shapes and names: whether a string holds a credential (``secret_hits``), whether a name says its
value is one (``is_secret_name``), whether a value bound to such a name looks real (``plausible_secret``).

Standard library only, on purpose: ``nbharden.secrets`` uses it on the notebook's code, and the recorder
loads this file into the notebook's kernel (by path, like ``record/_values.py``) to find secrets in the
values a run produces, the kernel's interpreter having none of nbharden's dependencies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    """A secret inside a string value: ``value[start:end]``."""

    start: int
    end: int
    kind: str  # key of KINDS
    label: str = ""  # a better default field name than the kind's ("postgres_password")


# --- shapes ---------------------------------------------------------------------------------------------------

_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "aws-access-key-id",
        re.compile(
            r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}(?![A-Z0-9])"
        ),
    ),
    (
        "github-token",
        re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
    ),
    ("gitlab-token", re.compile(r"(?<![A-Za-z0-9_])glpat-[A-Za-z0-9_\-]{20,}")),
    (
        "slack-webhook",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/]{20,}"),
    ),
    ("slack-token", re.compile(r"(?<![A-Za-z0-9])xox[abposre]-[A-Za-z0-9-]{10,}")),
    ("stripe-key", re.compile(r"(?<![A-Za-z0-9])[sr]k_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("google-api-key", re.compile(r"AIza[0-9A-Za-z_\-]{35}")),
    ("sendgrid-key", re.compile(r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}")),
    ("huggingface-token", re.compile(r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}")),
    (
        "openai-key",
        re.compile(
            r"(?<![A-Za-z0-9_])sk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]+-)?[A-Za-z0-9_\-]{20,}"
        ),
    ),
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
    (
        "private-key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
            re.DOTALL,
        ),
    ),
)
_URL_CREDENTIALS = re.compile(
    r"(?<![A-Za-z0-9+.\-])([a-zA-Z][a-zA-Z0-9+.\-]*)://([^/\s:@]*):([^/\s@]+)@"
)
_AUTH_HEADER = re.compile(
    r"\b(?:Bearer|Basic|Token|token|Digest|Bot)\s+([A-Za-z0-9._~+/\-]{16,}=*)"
)
_AZURE = re.compile(r"AccountKey=([A-Za-z0-9+/]{40,}={0,2})")
# name=value inside a string: a query string (?api_key=...), an ODBC or ADO connection string (Pwd=...;),
# a .env line (PASSWORD=...).
_KEY_VALUE = re.compile(
    r"(?:^|[?&;\s,])((?:[A-Za-z0-9]+[_-])*(?:api[_-]?key|apikey|key|access[_-]?token|auth[_-]?token|token|"
    r"secret|client[_-]?secret|password|passwd|pwd|sig|signature|appid))\s*=\s*([^&;\s'\"#]+)",
    re.IGNORECASE,
)

_PLACEHOLDER = re.compile(
    r"(your|my)[-_ ]?(own[-_ ]?)?(api|secret|token|key|password|pass|access|app|client|db|bot)|_here\b|-here\b|"
    r"<[^>]*>|\$\{|\$\(|\{\{|x{4,}|\*{3,}|\.{3}|change[-_]?me|placeholder|replace[-_ ]?(me|with|this)|"
    r"^(todo|tbd|none|null|nil|undefined|secret|password|token|empty|unset|redacted|dummy|test|sample)$|"
    r"example|insert[-_ ]|^fake$|^\W+$",
    re.IGNORECASE,
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_FILE_SUFFIX = re.compile(
    r"\.(pem|key|crt|cer|der|p12|pfx|jks|pub|json|ya?ml|toml|ini|cfg|conf|env|txt|csv|gpg|asc|kdbx|"
    r"parquet|pkl|pickle|db|sqlite|log)$",
    re.IGNORECASE,
)
_SLASHED_WORDS = re.compile(r"^[a-z0-9_.\-]+(/[a-z0-9_.\-]+)+/?$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")

# --- names ------------------------------------------------------------------------------------------------------

_SECRET_WORDS = {
    "password",
    "passwd",
    "pwd",
    "pw",
    "pass",
    "passphrase",
    "passcode",
    "secret",
    "token",
    "apikey",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "creds",
    "accesskey",
    "secretkey",
    "privatekey",
    "apitoken",
}
_KEY_PREFIXES = {
    "api",
    "access",
    "secret",
    "private",
    "signing",
    "encryption",
    "master",
    "account",
    "subscription",
    "license",
    "licence",
    "client",
    "app",
    "consumer",
    "shared",
    "storage",
    "hmac",
    "fernet",
    "service",
    "admin",
    "write",
    "read",
    "session",
    "webhook",
}
_TRAILING_OK = {
    "value",
    "val",
    "str",
    "string",
    "raw",
    "plain",
    "plaintext",
    "b64",
    "base64",
    "encoded",
    "hex",
    "prod",
    "production",
    "dev",
    "test",
    "staging",
    "live",
    "old",
    "new",
    "main",
    "default",
    "primary",
    "secondary",
    "backup",
}


def _words(name: str) -> list[str]:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", name.lower()) if w]


def is_secret_name(name: str | None) -> bool:
    """Whether a name says its value is a credential: ``db_password``, ``OPENAI_API_KEY``, ``X-Api-Key``.

    The secret word must be the name's head: ``password_hash``, ``token_url``, ``secret_name`` and
    ``tokenizer`` are not secrets.
    """
    if not name:
        return False
    words = _words(name)
    last = -1
    for i, word in enumerate(words):
        if word in _SECRET_WORDS or (word == "key" and i > 0 and words[i - 1] in _KEY_PREFIXES):
            last = i
        elif word in {"apikey", "accesskey", "secretkey", "privatekey"}:
            last = i
    if last < 0:
        return False
    return all(w in _TRAILING_OK or w.isdigit() for w in words[last + 1 :])


def snake_name(name: str) -> str:
    """``name`` in snake case (``OpenAIKey`` -> ``open_ai_key``), ``secret`` when it has no words, never starting with
    a digit: the name of a Config field that holds a secret."""
    words = _words(name) or ["secret"]
    text = "_".join(words)
    return text if not text[0].isdigit() else f"secret_{text}"


# --- values -----------------------------------------------------------------------------------------------------


def _classes(value: str) -> int:
    return sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )


def _pathlike(value: str) -> bool:
    return (
        value.startswith(("/", "~", "./", "../", "\\\\"))
        or re.match(r"^[A-Za-z]:[\\/]", value) is not None
        or _FILE_SUFFIX.search(value) is not None
        or _SLASHED_WORDS.match(value) is not None
    )


def plausible_secret(value: str) -> bool:
    """Whether ``value``, bound to a secret-looking name, looks like a real credential.

    Not placeholders (``your-api-key-here``, ``<TOKEN>``, ``xxxx``), templates, paths, URLs, e-mail addresses,
    environment variable names, hashes and UUIDs, ordinary words or text with spaces.
    """
    if not 6 <= len(value) <= 512 or any(c.isspace() for c in value):
        return False
    if _PLACEHOLDER.search(value) or "{" in value or "}" in value or "%s" in value:
        return False
    if "://" in value or _pathlike(value) or _EMAIL.match(value) or _ENV_NAME.match(value):
        return False
    if _UUID.match(value):
        return False
    if re.fullmatch(r"[a-z]+(?:[-_.][a-z]+)*", value) and (
        len(value) < 12 or re.search(r"[-_.]", value)
    ):
        return False  # a word or a slug: 'required', 'basic', 'read-only', 'bert-base-uncased'
    if value.lower() in {"true", "false", "bearer", "basic", "oauth", "oauth2"}:
        return False
    return len(value) >= 8 or _classes(value) >= 2


def _token_shape_ok(kind: str, token: str) -> bool:
    if re.search(r"(?i)x{5,}|example|your|0{10,}|\*{3,}|\.\.\.|placeholder|<", token):
        return False
    if kind == "openai-key":
        tail = token.split("-")[-1] if "-" in token[3:] else token[3:]
        body = token[3:]
        return (
            bool(re.search(r"[a-z]", body) and re.search(r"[A-Z]", body) and re.search(r"\d", body))
            and len(tail) >= 8
        )
    if kind in {"jwt"}:
        return True
    if kind == "aws-access-key-id":
        return bool(re.search(r"\d", token[4:])) or len(set(token[4:])) > 6
    return True


def secret_hits(name: str | None, value: str) -> list[Hit]:
    """The secrets inside a string value, given the name it is bound to (or None). Sorted, never overlapping."""
    if len(value) > 200_000 or not value.strip():
        return []
    hits: list[Hit] = []
    for kind, pattern in _SHAPES:
        for m in pattern.finditer(value):
            if _token_shape_ok(kind, m.group(0)):
                hits.append(Hit(m.start(), m.end(), kind))
    for m in _URL_CREDENTIALS.finditer(value):
        password = m.group(3)
        if _url_password_ok(password):
            scheme = re.split(r"[^a-z0-9]", m.group(1).lower())[0]
            scheme = {"postgresql": "postgres", "https": "http", "mongodb": "mongodb"}.get(
                scheme, scheme
            )
            hits.append(Hit(m.start(3), m.end(3), "url-password", f"{scheme}_password"))
    for m in _AUTH_HEADER.finditer(value):
        token = m.group(1)
        if _classes(token) >= 2 and not _PLACEHOLDER.search(token):
            hits.append(Hit(m.start(1), m.end(1), "auth-header"))
    for m in _AZURE.finditer(value):
        hits.append(Hit(m.start(1), m.end(1), "azure-key"))
    for m in _KEY_VALUE.finditer(value):
        key, secret = m.group(1), m.group(2)
        if key.lower() not in {"key", "sig", "signature", "appid"} and not is_secret_name(key):
            continue
        generic = key.lower() in {"key", "sig", "signature", "appid"}
        if (not generic and plausible_secret(secret)) or (
            generic and len(secret) >= 16 and _classes(secret) >= 2 and plausible_secret(secret)
        ):
            hits.append(Hit(m.start(2), m.end(2), "key-value", snake_name(key)))
    if not hits and is_secret_name(name) and plausible_secret(value):
        hits.append(Hit(0, len(value), "named"))
    return disjoint(hits)


def _url_password_ok(password: str) -> bool:
    if _PLACEHOLDER.search(password) or "{" in password or "$" in password[:1]:
        return False
    if re.fullmatch(r"[a-z]+", password) and len(password) < 12:
        return False  # :password@, :secret@, :pass@ in documentation
    return len(password) >= 4


def disjoint(hits: list[Hit]) -> list[Hit]:
    """The hits that do not overlap, by position: longest first, then by position, a hit inside (or overlapping) one
    already taken is dropped."""
    taken: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (-(h.end - h.start), h.start)):
        if all(hit.end <= t.start or hit.start >= t.end for t in taken):
            taken.append(hit)
    return sorted(taken, key=lambda h: h.start)


def is_secret_literal(name: str | None, value: str) -> bool:
    """A string literal that holds a credential (by its shape, or a plausible value bound to a secret name)."""
    return bool(secret_hits(name, value))
