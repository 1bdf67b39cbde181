"""The one place connector HTTP clients are made (style.md, habit 1).

Every platform connector builds its ``httpx.Client`` with :func:`build_client`: explicit timeouts
(httpx's 5 s default is too short for a 1000-member Mailchimp page and mailchimp-marketing has
none at all), a ``User-Agent`` naming leadsync and its version, no redirects, and a connection
pool sized from the platform's concurrency. Tests and the sandbox pass ``transport=`` (an
``httpx.MockTransport``) instead of patching anything.

Retrying and rate limiting are *not* done here (see ``connectors.retry`` and
``connectors.ratelimit``): the transport never retries, so exactly one policy decides.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any

import httpx

from leadsync.connectors.redaction import Redactor

__all__ = ["DEFAULT_TIMEOUT", "USER_AGENT", "build_client", "logging_hooks"]


def _version() -> str:
    try:
        return metadata.version("leadsync")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


USER_AGENT = f"leadsync/{_version()}"

# connect fast or fail; reads get long enough for a large page (Mailchimp answers within 120 s or
# not at all, mailchimp.md §9); pool waits are bounded so a leaked connection surfaces as an error.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=60.0)

EventHooks = Mapping[str, Sequence[Callable[..., Any]]]


_ssl_context: ssl.SSLContext | None = None
_ssl_context_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """httpx's default certificate verification (certifi's CA bundle, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` as read when first asked), made once per process and shared by every client.

    Each ``httpx.Client()`` otherwise builds its own, loading the CA bundle: 28-40 ms of CPU here, more
    than a cycle of a small unchanged source spends on everything else (a sync of 60 sources built
    100 clients). The httpx docs pass such a context as ``verify=``
    (https://www.python-httpx.org/advanced/ssl/); a context is safe to share between threads. Made
    under a lock: a sync's sources start at once, and each would make its own.
    """
    global _ssl_context
    with _ssl_context_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context()
        return _ssl_context


def build_client(
    *,
    base_url: str | httpx.URL,
    auth: httpx.Auth | None,
    timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
    max_connections: int,
    transport: httpx.BaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
    event_hooks: EventHooks | None = None,
) -> httpx.Client:
    """A configured ``httpx.Client`` for one platform.

    ``max_connections`` is the platform's concurrency (Mailchimp: 10 simultaneous connections,
    mailchimp.md §9); the pool keeps that many alive so no request ever opens an 11th socket.
    ``timeout`` must be explicit: a float applies to every phase, ``None`` is refused.
    """
    if timeout is None:
        raise ValueError("build_client needs an explicit timeout; None would let a request hang forever")
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, got {max_connections}")
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    all_headers.update(headers or {})
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        transport=transport,
        headers=all_headers,
        verify=shared_ssl_context(),
        event_hooks={name: list(hooks) for name, hooks in (event_hooks or {}).items()},
        follow_redirects=False,
    )


def logging_hooks(
    logger: logging.Logger, redactor: Redactor | None = None
) -> dict[str, list[Callable[..., Any]]]:
    """``event_hooks`` that log each request and response at DEBUG, with URLs redacted."""
    redact = redactor or Redactor()

    def on_request(request: httpx.Request) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("→ %s %s", request.method, redact.url(request.url))

    def on_response(response: httpx.Response) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            request = response.request
            logger.debug("← %s %s %s", response.status_code, request.method, redact.url(request.url))

    return {"request": [on_request], "response": [on_response]}
