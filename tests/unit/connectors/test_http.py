"""build_client: explicit timeouts, a User-Agent, a pool sized to the platform, an injectable transport."""

from __future__ import annotations

import logging
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from leadsync.connectors.auth import HeaderToken
from leadsync.connectors.http import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    build_client,
    logging_hooks,
    shared_ssl_context,
)
from leadsync.connectors.redaction import Redactor


def test_requests_carry_the_leadsync_user_agent_and_the_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client = build_client(
        base_url="http://127.0.0.1:8703/api/3",
        auth=HeaderToken("Api-Token", "secret-token"),
        max_connections=5,
        transport=httpx.MockTransport(handler),
        headers={"X-Extra": "1"},
    )
    client.get("/users/me")
    request = seen[0]
    assert str(request.url) == "http://127.0.0.1:8703/api/3/users/me"
    assert request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("leadsync/")
    assert request.headers["Api-Token"] == "secret-token"
    assert request.headers["X-Extra"] == "1"


def test_timeouts_are_explicit_and_a_float_applies_to_every_phase() -> None:
    client = build_client(base_url="http://x.test", auth=None, max_connections=1)
    assert client.timeout == DEFAULT_TIMEOUT
    assert DEFAULT_TIMEOUT.read and DEFAULT_TIMEOUT.connect and DEFAULT_TIMEOUT.pool
    client = build_client(base_url="http://x.test", auth=None, max_connections=1, timeout=7.5)
    assert client.timeout == httpx.Timeout(7.5)


def test_no_timeout_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="explicit timeout"):
        build_client(base_url="http://x.test", auth=None, max_connections=1, timeout=None)


def test_the_pool_is_sized_to_the_platform_concurrency() -> None:
    client = build_client(base_url="http://x.test", auth=None, max_connections=10)
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 10 and pool._max_keepalive_connections == 10
    with pytest.raises(ValueError):
        build_client(base_url="http://x.test", auth=None, max_connections=0)


def test_redirects_are_not_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://elsewhere.test/"})

    client = build_client(
        base_url="http://x.test", auth=None, max_connections=1, transport=httpx.MockTransport(handler)
    )
    assert client.get("/").status_code == 302


def test_logging_hooks_log_redacted_urls(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("leadsync.test.http")
    client = build_client(
        base_url="http://x.test",
        auth=None,
        max_connections=1,
        transport=httpx.MockTransport(lambda request: httpx.Response(204)),
        event_hooks=logging_hooks(logger, Redactor(["abcdef"])),
    )
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        client.get("/p", params={"hapikey": "abcdef", "q": "abcdef"})
    assert caplog.messages == [
        "→ GET http://x.test/p?hapikey=***&q=***",
        "← 204 GET http://x.test/p?hapikey=***&q=***",
    ]


def test_every_client_shares_one_certificate_verifying_ssl_context() -> None:
    # a context per client loads the CA bundle each time (28-40 ms of CPU); one is made per process
    first, second = (build_client(base_url="https://x.test", auth=None, max_connections=1) for _ in range(2))
    contexts = {id(client._transport._pool._ssl_context) for client in (first, second)}  # type: ignore[attr-defined]
    assert contexts == {id(shared_ssl_context())}
    assert shared_ssl_context().verify_mode == ssl.CERT_REQUIRED
    assert shared_ssl_context().check_hostname


def test_clients_built_at_once_on_many_threads_still_share_one_ssl_context() -> None:
    import leadsync.connectors.http as http

    made = []
    original = httpx.create_ssl_context

    def counted(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(1)
        time.sleep(0.05)  # a slow first build: the other threads ask meanwhile
        return original()

    http._ssl_context = None
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(httpx, "create_ssl_context", counted)
            with ThreadPoolExecutor(8) as pool:
                contexts = set(pool.map(lambda _: id(shared_ssl_context()), range(8)))
        assert len(made) == 1 and len(contexts) == 1
    finally:
        http._ssl_context = None
