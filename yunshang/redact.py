"""The one redaction helper: secrets out of anything a person or a file will see. Pure.

Everything yunshang prints, logs, exports, records in the audit log or writes in a
report that may carry a URL, a DSN, a cloud configuration or a library's exception
text goes through :func:`redact` (text) or :func:`redact_obj` (JSON-able data)::

    postgresql://ys:S3cret@db/ys          -> postgresql://ys:***@db/ys
    postgresql://:S3cret@db/ys            -> postgresql://:***@db/ys
    https://tok3n@svc/health              -> https://***@svc/health
    https://svc/health?token=abc&x=1      -> https://svc/health?token=***&x=1
    host=db password='a b' user=ys        -> host=db password=*** user=ys
    {'password': 'S3cret', 'username': 'admin'}  -> {'password': '***', 'username': 'admin'}
    X-Auth-Token: gAAAA...  /  Authorization: Bearer eyJ...  -> X-Auth-Token: *** / Authorization: Bearer ***

What counts as a secret: URL userinfo (a password, or a lone userinfo part, which is how
tokens travel in URLs), and the value of any key/parameter whose name says secret
(``password``, ``passwd``, ``pwd``, ``secret``, ``token``, ``api_key``, ``credential``,
``signature``, ...). Names such as ``username`` or ``project_name`` are left alone.
Redaction is idempotent and never raises; text without a trigger is returned as is.
"""
from __future__ import annotations

import functools
import logging
import re
from typing import Any, Iterable

MASK = "***"

# A key is secret when it ends in one of these words, alone or after a prefix ("sslpassword",
# "db_password", "OS_PASSWORD", "application_credential_secret", "X-Auth-Token", "access_key").
# "passed", "tokens", "token_type", "keystone" or "secret: true" (a request flag) are not secrets.
_SECRET_WORD = (r"(?:[\w.-]*[_.-]|ssl|db|admin|service|auth|access|client|api|x)?"
                r"(?:password|passwd|passphrase|pwd|secret|token|apikey|api_key|access_key|private_key|"
                r"credentials?|signature|sig)(?![\w])")
_SECRET_KEY = re.compile(rf"^{_SECRET_WORD}$", re.IGNORECASE)

# scheme://user:password@  (the password may hold '/', '?', '#', ':': up to the last '@' of the word)
_USERINFO_PW = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s:/?#@'\"<>]*):"
                          r"(?P<pw>[^\s'\"<>]*)@")
# scheme://token@  (a lone userinfo part: how tokens travel in URLs)
_USERINFO_TOKEN = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s:/?#@'\"<>]+)@")
# key=value in a query string or a libpq keyword DSN: password=..., ?token=..., &api_key=...
_KV = re.compile(rf"(?P<key>(?<![\w.-]){_SECRET_WORD})(?P<eq>\s*=\s*)"
                 r"(?P<val>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"<>)}\]]+)", re.IGNORECASE)
# 'password': 'x' / "password": "x" / password: x (dict reprs, JSON, YAML, error texts)
_COLON = re.compile(rf"(?P<key>(?P<q>['\"]?)(?<![\w.-]){_SECRET_WORD}(?P=q))(?P<sep>\s*:\s*)"
                    r"(?P<val>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|(?:Bearer\s+|Basic\s+)?[^\s,;'\"<>)}\]]+)",
                    re.IGNORECASE)
_AUTH_HEADER = re.compile(r"(?P<key>\bAuthorization\s*[:=]\s*(?:Bearer|Basic|Token|Negotiate)?\s*)"
                          r"(?P<val>[^\s,;'\"]+)", re.IGNORECASE)
_NOT_SECRET_VALUES = frozenset({"true", "false", "none", "null", "~", "''", '""', MASK})
_TRIGGER = re.compile(r"://|pass|pwd|secret|token|key|credential|sig|authorization", re.IGNORECASE)


def _mask_value(val: str) -> str:
    if val[:1] in "'\"" and val[-1:] == val[:1] and len(val) >= 2:
        return val[0] + MASK + val[0]
    for prefix in ("Bearer ", "Basic ", "bearer ", "basic "):
        if val.startswith(prefix):
            return prefix + MASK
    return MASK


def _userinfo_pw(m: re.Match) -> str:
    if m.group("pw") == MASK:
        return m.group(0)
    return f"{m.group('scheme')}{m.group('user')}:{MASK}@"


def _userinfo_token(m: re.Match) -> str:
    return m.group(0) if m.group("user") == MASK else f"{m.group('scheme')}{MASK}@"


def _kv(m: re.Match) -> str:
    val = m.group("val")
    if val.strip("'\"").lower() in _NOT_SECRET_VALUES:
        return m.group(0)
    return m.group("key") + m.group("eq") + _mask_value(val)


def _colon(m: re.Match) -> str:
    val = m.group("val")
    if val.strip("'\"").lower() in _NOT_SECRET_VALUES or val.lower() in _NOT_SECRET_VALUES:
        return m.group(0)
    return m.group("key") + m.group("sep") + _mask_value(val)


def redact(text: Any, known: Iterable[str] = ()) -> str:
    """``text`` (anything; str() is taken) with every secret it carries replaced by ``***``.

    ``known``: secret values the caller holds (a clouds.yaml password, a DSN's password) that are
    also masked wherever they appear verbatim, e.g. when a library quotes a piece of its input.
    """
    s = text if isinstance(text, str) else str(text)
    if known:
        for k in sorted({k for k in known if isinstance(k, str) and len(k) >= 3}, key=len, reverse=True):
            s = s.replace(k, MASK)
    if (":" not in s and "=" not in s) or not _TRIGGER.search(s):   # every form below needs ':' or '='
        return s
    s = _USERINFO_PW.sub(_userinfo_pw, s)
    s = _USERINFO_TOKEN.sub(_userinfo_token, s)
    s = _AUTH_HEADER.sub(lambda m: m.group("key") + (m.group("val") if m.group("val") == MASK else MASK), s)
    s = _KV.sub(_kv, s)
    s = _COLON.sub(_colon, s)
    return s


def redact_url(url: str) -> str:
    """A URL or DSN for a message: userinfo password/token and secret query parameters masked."""
    return redact(url)


def url_secrets(url: str) -> tuple[str, ...]:
    """The secret values inside a URL or DSN (userinfo password or token, secret query/keyword values)."""
    out: list[str] = []
    for m in _USERINFO_PW.finditer(url):
        out.append(m.group("pw"))
    for m in _USERINFO_TOKEN.finditer(url):
        out.append(m.group("user"))
    for m in _KV.finditer(url):
        out.append(m.group("val").strip("'\""))
    return tuple(v for v in out if v and v != MASK)


def mapping_secrets(data: Any) -> tuple[str, ...]:
    """The values under secret keys anywhere in a parsed config (e.g. a clouds.yaml document)."""
    out: list[str] = []
    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if isinstance(k, str) and is_secret_key(k) and isinstance(v, str) and v:
                    out.append(v)
                elif isinstance(v, str) and "://" in v:
                    out.extend(url_secrets(v))
                else:
                    walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
    walk(data)
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    """True when a mapping key / parameter name says its value is a secret."""
    return bool(_SECRET_KEY.match(name))


def redact_obj(data: Any) -> Any:
    """A copy of JSON-able ``data``: values under secret keys masked, every string passed through redact()."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {k: (MASK if isinstance(k, str) and is_secret_key(k) and isinstance(v, (str, bytes)) and v
                    else redact_obj(v)) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(redact_obj(v) for v in data) if isinstance(data, list) else [redact_obj(v) for v in data]
    return data


def exception_text(exc: BaseException, known: Iterable[str] = (), limit: int = 300) -> str:
    """A library exception as one redacted line (psycopg, keystoneauth and urllib errors echo their input)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return redact(first, known)[:limit]


class RedactingFormatter(logging.Formatter):
    """A logging formatter whose whole output (message, arguments, traceback) is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _RedactingStderr(logging.StreamHandler):
    """Like logging's last-resort handler (WARNING and up, to the current sys.stderr), redacted."""

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)
        self.setFormatter(RedactingFormatter("%(message)s"))

    @property  # type: ignore[override]
    def stream(self):  # sys.stderr as it is now (click's test runner swaps it)
        import sys

        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # always the current sys.stderr
        pass


def install_last_resort() -> None:
    """Libraries' warnings that reach no handler (keystoneauth logs the auth URL it contacted) are redacted."""
    if not isinstance(logging.lastResort, _RedactingStderr):
        logging.lastResort = _RedactingStderr()


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Wrap the formatter of every handler of ``logger`` (default: the root logger) in redaction."""
    target = logger or logging.getLogger()
    for h in target.handlers:
        fmt = h.formatter
        if isinstance(fmt, RedactingFormatter):
            continue
        rf = RedactingFormatter(fmt._fmt if fmt else None, fmt.datefmt if fmt else None)
        h.setFormatter(rf)
