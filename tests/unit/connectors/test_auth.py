"""Auth flows: the headers they set, reprs that hide secrets, and OAuth refresh."""

from __future__ import annotations

import base64
import threading
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from leadsync.connectors.auth import (
    BasicKey,
    BearerToken,
    HeaderToken,
    OAuthRefresh,
    RefreshableAuth,
    TokenSet,
)
from leadsync.connectors.errors import AuthError, MalformedResponse, RateLimited, RetriableError
from leadsync.connectors.redaction import Redactor

from .conftest import FakeClock, Script, make_client

SECRET = "key-0123456789abcdef-us6"


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=dict(request.headers))


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (BearerToken("pat-na1-" + SECRET), "authorization", "Bearer pat-na1-" + SECRET),
        (
            BasicKey(SECRET),
            "authorization",
            "Basic " + base64.b64encode(f"leadsync:{SECRET}".encode()).decode(),
        ),
        (HeaderToken("Api-Token", SECRET), "api-token", SECRET),
    ],
    ids=["hubspot bearer", "mailchimp basic", "activecampaign api-token"],
)
def test_static_auths_set_their_header_and_never_show_the_secret(auth: Any, header: str, value: str) -> None:
    body = make_client(echo, auth=auth).get("/").json()
    assert body[header] == value
    assert SECRET not in repr(auth) and "***" in repr(auth)
    assert SECRET in "".join(auth.secrets())


def test_basic_key_lists_its_encoded_header_as_a_secret_too() -> None:
    auth = BasicKey(SECRET, username="anystring")
    encoded = base64.b64encode(f"anystring:{SECRET}".encode()).decode()
    assert auth.secrets() == {SECRET, encoded}


def test_empty_credentials_are_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        BearerToken("")
    with pytest.raises(ValueError):
        HeaderToken("Api-Token", "")


def token_response(access: str, *, expires_in: int = 1800, refresh: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"access_token": access, "expires_in": expires_in, "token_type": "bearer"}
    if refresh:
        body["refresh_token"] = refresh
    return httpx.Response(200, json=body)


def oauth(clock: FakeClock, tokens: Script, **kwargs: Any) -> OAuthRefresh:
    defaults: dict[str, Any] = {
        "client_id": "client-1",
        "client_secret": "client-secret-xyz",
        "refresh_token": "refresh-abc",
        "token_url": "https://api.hubapi.com/oauth/2026-03/token",
        "source": "hubspot",
        "credential_env": "HUBSPOT_REFRESH_TOKEN",
        "clock": clock,
        "transport": httpx.MockTransport(tokens),
    }
    defaults.update(kwargs)
    return OAuthRefresh(**defaults)


def test_the_token_request_is_a_form_encoded_refresh_token_grant(clock: FakeClock) -> None:
    # hubspot.md §1: POST /oauth/2026-03/token (v1's successor, same fields), form-encoded.
    tokens = Script([token_response("access-1")])
    auth = oauth(clock, tokens)
    assert auth.token() == "access-1"
    request = tokens.requests[0]
    assert (request.method, str(request.url)) == ("POST", "https://api.hubapi.com/oauth/2026-03/token")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["refresh_token"],
        "client_id": ["client-1"],
        "client_secret": ["client-secret-xyz"],
        "refresh_token": ["refresh-abc"],
    }


def test_a_token_is_refreshed_before_it_expires_not_after(clock: FakeClock) -> None:
    tokens = Script([token_response("access-1"), token_response("access-2")])
    auth = oauth(clock, tokens, refresh_margin_s=300)
    assert auth.token() == "access-1"
    clock.advance(1800 - 301)
    assert auth.token() == "access-1"
    clock.advance(2)  # now inside the 300 s margin
    assert auth.token() == "access-2"
    assert auth.refresh_count == 2


def test_a_short_lived_token_gets_at_least_half_its_life(clock: FakeClock) -> None:
    tokens = Script([token_response("a", expires_in=60), token_response("b", expires_in=60)])
    auth = oauth(clock, tokens, refresh_margin_s=300)
    auth.token()
    clock.advance(29)
    assert auth.token() == "a"
    clock.advance(2)
    assert auth.token() == "b"


def test_a_given_access_token_is_used_until_its_expiry_margin(clock: FakeClock) -> None:
    tokens = Script([token_response("fresh")])
    auth = oauth(clock, tokens, access_token="given", expires_in=1000, refresh_margin_s=100)
    assert auth.token() == "given"
    clock.advance(901)
    assert auth.token() == "fresh"


def test_proactive_refresh_happens_inside_the_request_flow(clock: FakeClock) -> None:
    tokens = Script([token_response("access-1"), token_response("access-2")])
    auth = oauth(clock, tokens)
    client = make_client(echo, auth=auth)
    assert client.get("/a").json()["authorization"] == "Bearer access-1"
    clock.advance(1800)
    assert client.get("/b").json()["authorization"] == "Bearer access-2"


def test_on_401_the_flow_refreshes_once_and_resends_once(clock: FakeClock) -> None:
    tokens = Script([token_response("access-2")])
    api = Script([httpx.Response(401), httpx.Response(200, json={})])
    auth = oauth(clock, tokens, access_token="access-1", expires_in=1800)
    response = make_client(api, auth=auth).get("/x")
    assert response.status_code == 200
    assert [h["authorization"] for h in api.headers] == ["Bearer access-1", "Bearer access-2"]
    assert [r.status_code for r in response.history] == [401]  # what connectors.retry checks


def test_on_a_second_401_the_flow_gives_the_401_back_instead_of_looping(clock: FakeClock) -> None:
    tokens = Script([token_response("access-2")])
    api = Script([httpx.Response(401), httpx.Response(401)])
    auth = oauth(clock, tokens, access_token="access-1", expires_in=1800)
    assert make_client(api, auth=auth).get("/x").status_code == 401
    assert auth.refresh_count == 1


def test_a_rotated_refresh_token_replaces_the_old_one_and_is_handed_to_the_caller(clock: FakeClock) -> None:
    saved: list[TokenSet] = []
    tokens = Script(
        [token_response("a", refresh="refresh-2", expires_in=10), token_response("b", expires_in=10)]
    )
    auth = oauth(clock, tokens, on_refresh=saved.append)
    auth.token()
    clock.advance(10)
    auth.token()
    assert parse_qs(tokens.requests[1].content.decode())["refresh_token"] == ["refresh-2"]
    assert [t.refresh_token for t in saved] == ["refresh-2", "refresh-2"]
    assert "refresh-2" not in repr(saved[0])


def test_many_threads_needing_a_token_at_once_cause_one_refresh(clock: FakeClock) -> None:
    gate = threading.Event()

    def slow_token(request: httpx.Request) -> httpx.Response:
        gate.wait(1.0)
        return token_response("shared")

    tokens = Script([slow_token])  # a second token request would fail the test
    auth = oauth(clock, tokens)
    seen: list[str] = []
    threads = [threading.Thread(target=lambda: seen.append(auth.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()
    assert seen == ["shared"] * 8
    assert auth.refresh_count == 1


def test_a_401_on_a_token_another_thread_already_replaced_reuses_the_new_token(clock: FakeClock) -> None:
    tokens = Script([token_response("access-2")])
    auth = oauth(clock, tokens, access_token="access-1", expires_in=1800)
    assert auth.refresh(stale="access-1") == "access-2"
    assert auth.refresh(stale="access-1") == "access-2"  # stale: no second request
    assert auth.refresh_count == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(400, json={"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}),
         AuthError),
        (httpx.Response(401, json={"error": "invalid_client"}), AuthError),
        (httpx.Response(429), RateLimited),
        (httpx.Response(502, text="<html>bad gateway</html>"), RetriableError),
        (httpx.Response(200, json={"token_type": "bearer"}), MalformedResponse),
        (httpx.ConnectError("refused"), RetriableError),
    ],
    ids=["refused refresh token", "bad client", "429", "502", "no access_token", "connection refused"],
)  # fmt: skip
def test_token_endpoint_failures_raise_the_error_that_says_what_to_do(answer: Any, error: type) -> None:
    auth = oauth(FakeClock(), Script([answer]))
    with pytest.raises(error) as caught:
        auth.token()
    assert caught.value.source == "hubspot"
    assert "client-secret-xyz" not in str(caught.value) and "refresh-abc" not in str(caught.value)


def test_a_refused_refresh_token_names_the_variable_to_fix() -> None:
    auth = oauth(FakeClock(), Script([httpx.Response(400, json={"error": "invalid_grant"})]))
    with pytest.raises(AuthError, match=r"refused \(400 invalid_grant\).*HUBSPOT_REFRESH_TOKEN"):
        auth.token()


def test_oauth_repr_and_redactor_never_leak_tokens(clock: FakeClock) -> None:
    redactor = Redactor()
    auth = oauth(clock, Script([token_response("access-new", refresh="refresh-new")]), redactor=redactor)
    auth.token()
    text = repr(auth)
    for secret in ("client-secret-xyz", "refresh-abc", "access-new", "refresh-new"):
        assert secret not in text
        assert secret in redactor.secrets
    assert {"access-new", "refresh-new", "client-secret-xyz"} <= auth.secrets()


def test_oauth_is_a_refreshable_auth_and_static_tokens_are_not() -> None:
    assert isinstance(oauth(FakeClock(), Script([])), RefreshableAuth)
    assert not isinstance(BearerToken("x"), RefreshableAuth)
