"""Keep secrets (and, by default, email addresses) out of error messages and logs.

Three shapes of leak, one function each:

* a URL with a credential in its query (HubSpot's retired ``hapikey``, ``api_key``, ``token``) or
  in its user-info part: :func:`redact_url`;
* headers that carry credentials (``Authorization``, ActiveCampaign's ``Api-Token``, cookies):
  :func:`redact_headers`;
* free text (an error body echoed back, an exception message) that may contain a known secret
  value anywhere: :func:`redact_text`, given the set of secrets to look for.

:class:`Redactor` bundles a growing set of known secrets (each auth object lists its own through
``secrets()``) and :class:`RedactingFilter` applies it to every log record of a logger.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

__all__ = [
    "MASK",
    "RedactingFilter",
    "Redactor",
    "SENSITIVE_HEADERS",
    "SENSITIVE_QUERY_PARAMS",
    "redact_headers",
    "redact_text",
    "redact_url",
]

MASK = "***"

# Lower-cased names. Matching is case-insensitive.
SENSITIVE_QUERY_PARAMS: frozenset[str] = frozenset(
    {
        "access_token",
        "api_key",
        "api-key",
        "apikey",
        "client_secret",
        "code",
        "hapikey",  # hubspot.md §1: legacy query-param key, sunset but still seen in old URLs
        "key",
        "password",
        "refresh_token",
        "secret",
        "signature",
        "token",
    }
)
SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {
        "api-token",  # activecampaign.md §1
        "authorization",
        "cookie",
        "proxy-authorization",
        "set-cookie",
        "x-api-key",
        "x-hubspot-signature",
        "x-hubspot-signature-v3",
    }
)
# Secrets shorter than this are not searched for in free text: masking every "a" helps nobody.
_MIN_SECRET_LENGTH = 4
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def redact_url(url: str | httpx.URL, *, params: Iterable[str] = SENSITIVE_QUERY_PARAMS) -> str:
    """The URL with sensitive query values and any user-info password replaced by ``***``."""
    text = str(url)
    parts = urlsplit(text)
    sensitive = {name.lower() for name in params}
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in sensitive for name, _ in pairs):
            query = urlencode(
                [(name, MASK if name.lower() in sensitive else value) for name, value in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(
    headers: Mapping[str, str] | httpx.Headers, *, names: Iterable[str] = SENSITIVE_HEADERS
) -> dict[str, str]:
    """A plain dict copy of ``headers`` with credential-bearing values replaced by ``***``.

    For ``Authorization`` the scheme is kept (``Bearer ***``) because it helps debugging and is
    not secret.
    """
    sensitive = {name.lower() for name in names}
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() not in sensitive:
            out[name] = value
        elif name.lower() in ("authorization", "proxy-authorization") and " " in value:
            out[name] = f"{value.split(' ', 1)[0]} {MASK}"
        else:
            out[name] = MASK
    return out


def redact_text(text: str, secrets: Iterable[str] = (), *, emails: bool = True) -> str:
    """``text`` with every known secret value replaced, and email local parts masked.

    ``emails=True`` turns ``ana@acme.io`` into ``***@acme.io``: messages keep the domain, which
    is usually enough to debug, and drop the person (style.md, habit 12).
    """
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    if emails:
        text = _EMAIL.sub(lambda match: f"{MASK}@{match.group(1)}", text)
    return text


class Redactor:
    """A thread-safe set of known secrets and the three redactions that use it."""

    def __init__(self, secrets: Iterable[str] = (), *, emails: bool = True) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self.emails = emails
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Remember more secret values (a refreshed token, a rotated refresh token)."""
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    @property
    def secrets(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._secrets)

    def text(self, text: str) -> str:
        return redact_text(text, self.secrets, emails=self.emails)

    def url(self, url: str | httpx.URL) -> str:
        return self.text(redact_url(url))

    def headers(self, headers: Mapping[str, str] | httpx.Headers) -> dict[str, str]:
        return {name: self.text(value) for name, value in redact_headers(headers).items()}

    def __repr__(self) -> str:
        return f"Redactor(<{len(self.secrets)} secrets>, emails={self.emails})"


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record's message once and redacts it.

    Attach it to a handler or logger: ``logger.addFilter(RedactingFilter(redactor))``.
    """

    def __init__(self, redactor: Redactor, name: str = "") -> None:
        super().__init__(name)
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor.text(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        # A traceback can carry a secret in an exception message: render it once, redacted, and
        # drop exc_info so no formatter renders the raw one again.
        if record.exc_info:
            record.exc_text = self.redactor.text(_FORMATTER.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.text(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
