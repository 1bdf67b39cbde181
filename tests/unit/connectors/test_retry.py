"""The one retry policy: classification table, waits, stops and the errors raised on giving up."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import pytest

from leadsync.connectors.auth import BearerToken, OAuthRefresh
from leadsync.connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    MalformedResponse,
    NotFound,
    RateLimited,
    RetriableError,
)
from leadsync.connectors.pagination import get_path
from leadsync.connectors.ratelimit import Permit
from leadsync.connectors.redaction import Redactor
from leadsync.connectors.retry import (
    PARSED_JSON,
    Action,
    ErrorRule,
    RetryPolicy,
    describe_error,
    parse_retry_after,
    response_json,
)

from .conftest import FakeClock, Script, make_client


def policy(clock: FakeClock, **kwargs: Any) -> RetryPolicy:
    defaults: dict[str, Any] = {
        "source": "hubspot",
        "credential_env": "HUBSPOT_TOKEN",
        "max_attempts": 4,
        "max_elapsed_s": 120.0,
        "clock": clock,
        "sleep": clock.sleep,
        "rand": lambda: 0.5,
    }
    defaults.update(kwargs)
    return RetryPolicy(**defaults)


def ok(body: Any = None) -> httpx.Response:
    return httpx.Response(200, json={"results": []} if body is None else body)


def send(client: httpx.Client, retry: RetryPolicy, path: str = "/crm/v3/objects/contacts", **kwargs: Any):
    return retry.send(client, client.build_request("GET", path), **kwargs)


# -- classification: a pure table ---------------------------------------------------------------

REQUEST = httpx.Request("GET", "https://api.example.test/x")


@pytest.mark.parametrize(
    ("status", "action", "error"),
    [
        (200, Action.SUCCESS, None),
        (204, Action.SUCCESS, None),
        (207, Action.SUCCESS, None),
        (302, Action.FAIL, FatalError),
        (400, Action.FAIL, FatalError),
        (401, Action.REFRESH_AUTH, AuthError),
        (403, Action.FAIL, AuthError),
        (404, Action.FAIL, NotFound),
        (408, Action.RETRY, RetriableError),
        (422, Action.FAIL, FatalError),
        (429, Action.RATE_LIMITED, RateLimited),
        (500, Action.RETRY, RetriableError),
        (502, Action.RETRY, RetriableError),
        (503, Action.RETRY, RetriableError),
        (504, Action.RETRY, RetriableError),
    ],
)
def test_each_status_maps_to_one_action(
    status: int, action: Action, error: type | None, clock: FakeClock
) -> None:
    resolution = policy(clock).classify(response=httpx.Response(status, request=REQUEST))
    assert resolution.action is action
    if error is not None:
        assert resolution.error is error


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        (httpx.ReadTimeout("slow", request=REQUEST), Action.RETRY),
        (httpx.ConnectTimeout("slow", request=REQUEST), Action.RETRY),
        (httpx.ConnectError("refused", request=REQUEST), Action.RETRY),
        (httpx.ReadError("reset", request=REQUEST), Action.RETRY),
        (httpx.RemoteProtocolError("peer closed connection", request=REQUEST), Action.RETRY),
        (MalformedResponse("not json"), Action.RETRY),
        (RetriableError("token endpoint 503"), Action.RETRY),
        (RateLimited("token endpoint 429", retry_after=3.0), Action.RATE_LIMITED),
        (AuthError("refresh token refused"), Action.FAIL),
        (httpx.UnsupportedProtocol("ftp", request=REQUEST), Action.FAIL),
        (httpx.LocalProtocolError("bad header"), Action.FAIL),
    ],
)
def test_each_exception_maps_to_one_action(exc: BaseException, action: Action, clock: FakeClock) -> None:
    assert policy(clock).classify(exc=exc).action is action


def test_an_exception_no_row_knows_is_a_programming_error_not_a_retry(clock: FakeClock) -> None:
    with pytest.raises(TypeError, match="no retry rule for KeyError"):
        policy(clock).classify(exc=KeyError("x"))


def test_platform_rows_are_consulted_before_the_defaults(clock: FakeClock) -> None:
    # activecampaign.md §8: intermittent 403s that succeed on retry.
    retry = policy(clock).with_rules(ErrorRule(Action.RETRY, status=403, name="flaky 403"))
    resolution = retry.classify(response=httpx.Response(403, request=REQUEST))
    assert (resolution.action, resolution.rule) == (Action.RETRY, "flaky 403")
    assert policy(clock).classify(response=httpx.Response(403, request=REQUEST)).action is Action.FAIL


def test_a_rule_matches_a_status_or_an_exception_never_both() -> None:
    with pytest.raises(ValueError):
        ErrorRule(Action.RETRY)
    with pytest.raises(ValueError):
        ErrorRule(Action.RETRY, status=500, exception=httpx.ReadTimeout)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
    ],
)
def test_retry_after_in_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_as_an_http_date_is_seconds_from_now() -> None:
    now = 1_800_000_000.0
    value = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(value, now=lambda: now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=lambda: now) == 0.0


# -- waits --------------------------------------------------------------------------------------


def test_given_429_with_retry_after_when_sent_then_waits_exactly_that_long(clock: FakeClock) -> None:
    script = Script([httpx.Response(429, headers={"Retry-After": "7"}), ok({"results": [1]})])
    reply = send(make_client(script), policy(clock))
    assert reply.body == {"results": [1]}
    assert clock.sleeps == [7.0]


def test_given_429_with_an_http_date_retry_after_then_waits_until_that_date(clock: FakeClock) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    script = Script([httpx.Response(429, headers={"Retry-After": when}), ok()])
    send(make_client(script), policy(clock))
    assert clock.sleeps[0] == pytest.approx(20.0, abs=1.5)


def test_given_429_without_retry_after_then_waits_the_platform_default(clock: FakeClock) -> None:
    # hubspot.md §5: Retry-After is not guaranteed; wait out the 10 s rolling window.
    body = {"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}
    script = Script([httpx.Response(429, json=body), ok()])
    send(make_client(script), policy(clock, rate_limited_wait_s=10.0))
    assert clock.sleeps == [10.0]


def test_given_a_bodiless_429_and_no_platform_default_then_backs_off_exponentially(clock: FakeClock) -> None:
    # mailchimp.md §9: 429 "without a JSON body", and no Retry-After.
    script = Script([httpx.Response(429), httpx.Response(429), ok()])
    send(make_client(script), policy(clock))
    assert clock.sleeps == [0.75, 1.5]  # equal jitter at rand=0.5: 3/4 of 1 s, then of 2 s


def test_given_server_errors_then_backoff_doubles_up_to_the_cap(clock: FakeClock) -> None:
    script = Script([httpx.Response(500), httpx.Response(502), httpx.Response(503), ok()])
    retry = policy(clock, max_attempts=5, backoff_initial_s=1.0, backoff_max_s=3.0)
    send(make_client(script), retry)
    assert clock.sleeps == [0.75, 1.5, 2.25]


def test_jitter_keeps_every_wait_between_half_and_all_of_the_exponential(clock: FakeClock) -> None:
    for rand, expected in ((0.0, 4.0), (1.0, 8.0)):
        assert policy(clock, rand=lambda r=rand: r).backoff(4) == expected


def test_a_rule_can_fix_its_own_wait(clock: FakeClock) -> None:
    # hubspot.md §5: 423 Locked, "include a delay of at least 2 seconds".
    retry = policy(clock).with_rules(ErrorRule(Action.RETRY, status=423, wait_s=2.0, name="locked"))
    send(make_client(Script([httpx.Response(423), ok()])), retry)
    assert clock.sleeps == [2.0]


# -- transport failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.Response(200, content=b'{"results": [', headers={"Content-Type": "application/json"}),
        httpx.Response(200, content=b"<html>502 Bad Gateway</html>"),
    ],
    ids=["timeout", "connection refused", "dropped mid-body", "truncated json", "html on 200"],
)
def test_given_one_transient_failure_then_the_second_attempt_succeeds(failure: Any, clock: FakeClock) -> None:
    script = Script([failure, ok({"results": ["a"]})])
    retry = policy(clock)
    assert send(make_client(script), retry).body == {"results": ["a"]}
    assert len(script.requests) == 2
    assert retry.stats.retries == 1


def test_an_empty_2xx_body_is_none_not_malformed(clock: FakeClock) -> None:
    reply = send(make_client(Script([httpx.Response(204)])), policy(clock))
    assert reply.body is None


# -- stopping -----------------------------------------------------------------------------------


def test_given_server_errors_forever_then_gives_up_with_retriable_error_after_n_attempts(
    clock: FakeClock,
) -> None:
    script = Script([httpx.Response(503, json={"message": "down for maintenance"})] * 4)
    with pytest.raises(RetriableError) as caught:
        send(make_client(script), policy(clock, max_attempts=4))
    error = caught.value
    assert type(error) is RetriableError
    assert (error.source, error.status) == ("hubspot", 503)
    assert "down for maintenance" in str(error)
    assert "gave up after 4 attempt(s)" in error.__notes__[0]
    assert error.response is not None and error.response.status_code == 503
    assert len(script.requests) == 4


def test_given_timeouts_forever_then_gives_up_with_retriable_error_chained_to_the_cause(
    clock: FakeClock,
) -> None:
    script = Script([httpx.ReadTimeout("read timed out")] * 3)
    with pytest.raises(RetriableError, match="ReadTimeout") as caught:
        send(make_client(script), policy(clock, max_attempts=3))
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert caught.value.status is None


def test_given_429_forever_then_gives_up_with_rate_limited_carrying_retry_after(clock: FakeClock) -> None:
    script = Script([httpx.Response(429, headers={"Retry-After": "2"})] * 3)
    with pytest.raises(RateLimited) as caught:
        send(make_client(script), policy(clock, max_attempts=3))
    assert caught.value.retry_after == 2.0
    assert clock.sleeps == [2.0, 2.0]


def test_given_a_retry_after_beyond_the_time_budget_then_gives_up_at_once(clock: FakeClock) -> None:
    script = Script([httpx.Response(429, headers={"Retry-After": "3600"})])
    with pytest.raises(RateLimited) as caught:
        send(make_client(script), policy(clock, max_elapsed_s=120.0))
    assert caught.value.retry_after == 3600.0  # a scheduler can come back then
    assert clock.sleeps == []


def test_the_time_budget_counts_time_already_spent(clock: FakeClock) -> None:
    script = Script([httpx.Response(429, headers={"Retry-After": "50"})] * 3)
    with pytest.raises(RateLimited):
        send(make_client(script), policy(clock, max_attempts=10, max_elapsed_s=120.0))
    assert clock.sleeps == [50.0, 50.0]  # a third wait would end at 150 s


# -- failing at once ------------------------------------------------------------------------------


def test_given_403_then_auth_error_names_the_source_and_variable_after_one_attempt(clock: FakeClock) -> None:
    script = Script(
        [httpx.Response(403, json={"message": "This app hasn't been granted all required scopes"})]
    )
    with pytest.raises(AuthError) as caught:
        send(make_client(script), policy(clock))
    message = str(caught.value)
    assert message.startswith("hubspot: GET https://api.example.test/crm/v3/objects/contacts → 403 Forbidden")
    assert "HUBSPOT_TOKEN" in message
    assert len(script.requests) == 1


def test_given_404_then_not_found(clock: FakeClock) -> None:
    with pytest.raises(NotFound):
        send(make_client(Script([httpx.Response(404, json={"message": "Object not found"})])), policy(clock))


def hubspot_missing_scopes(response: httpx.Response) -> str:
    body = response_json(response)
    scopes = get_path(body, "errors.0.context.requiredGranularScopes", [])
    return f"the token lacks the scopes {', '.join(scopes)}"


HUBSPOT_403 = ErrorRule(
    Action.FAIL,
    status=403,
    when=lambda r: get_path(response_json(r), "category") == "MISSING_SCOPES",
    error=AuthError,
    message=hubspot_missing_scopes,
    name="hubspot missing scopes",
)
HUBSPOT_DAILY = ErrorRule(
    Action.FAIL,
    status=429,
    when=lambda r: get_path(response_json(r), "policyName") == "DAILY",
    error=RateLimited,
    message="the daily API limit is spent; it resets at midnight in the account's time zone",
    name="hubspot daily limit",
)


def test_given_hubspot_403_missing_scopes_then_auth_error_names_the_scopes(clock: FakeClock) -> None:
    # hubspot.md §5: 403 category MISSING_SCOPES, errors[0].context.requiredGranularScopes.
    body = {
        "status": "error",
        "category": "MISSING_SCOPES",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "errors": [{"message": "...", "context": {"requiredGranularScopes": ["crm.objects.contacts.read"]}}],
    }
    retry = policy(clock).with_rules(HUBSPOT_403)
    with pytest.raises(AuthError, match="lacks the scopes crm.objects.contacts.read; check HUBSPOT_TOKEN"):
        send(make_client(Script([httpx.Response(403, json=body)])), retry)


def test_given_hubspot_daily_limit_then_rate_limited_at_once_without_retrying(clock: FakeClock) -> None:
    body = {"status": "error", "message": "You have reached your daily limit.", "policyName": "DAILY"}
    script = Script([httpx.Response(429, json=body)])
    with pytest.raises(RateLimited, match="daily API limit"):
        send(make_client(script), policy(clock).with_rules(HUBSPOT_DAILY))
    assert clock.sleeps == []


# -- 401 and refreshing ---------------------------------------------------------------------------


def oauth(clock: FakeClock, token_script: Script, **kwargs: Any) -> OAuthRefresh:
    return OAuthRefresh(
        client_id="client-1",
        client_secret="client-secret-xyz",
        refresh_token="refresh-abc",
        token_url="https://api.example.test/oauth/v1/token",
        source="hubspot",
        credential_env="HUBSPOT_REFRESH_TOKEN",
        access_token="access-old",
        expires_in=1800,
        clock=clock,
        transport=httpx.MockTransport(token_script),
        **kwargs,
    )


def token(access: str) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": access, "refresh_token": "refresh-abc", "expires_in": 1800}
    )


def test_given_401_with_oauth_then_refreshes_once_and_the_retry_succeeds(clock: FakeClock) -> None:
    tokens = Script([token("access-new")])
    api = Script([httpx.Response(401), ok({"results": ["x"]})])
    auth = oauth(clock, tokens)
    reply = send(make_client(api, auth=auth), policy(clock))
    assert reply.body == {"results": ["x"]}
    assert [h["authorization"] for h in api.headers] == ["Bearer access-old", "Bearer access-new"]
    assert auth.refresh_count == 1


def test_given_401_again_after_refreshing_then_auth_error_after_exactly_one_refresh(clock: FakeClock) -> None:
    tokens = Script([token("access-new")])
    api = Script([httpx.Response(401), httpx.Response(401, json={"category": "INVALID_AUTHENTICATION"})])
    auth = oauth(clock, tokens)
    with pytest.raises(AuthError, match="even after refreshing the token.*HUBSPOT_TOKEN"):
        send(make_client(api, auth=auth), policy(clock))
    assert auth.refresh_count == 1
    assert len(api.requests) == 2


def test_given_401_with_a_static_token_then_auth_error_without_retrying(clock: FakeClock) -> None:
    api = Script([httpx.Response(401)])
    with pytest.raises(AuthError, match="hubspot: .* 401 Unauthorized"):
        send(make_client(api, auth=BearerToken("pat-na1-secret")), policy(clock))
    assert len(api.requests) == 1


class ExternallyRefreshed:
    """A refreshable auth whose flow does not handle 401 itself: the policy must refresh it."""

    refresh_on_401 = False

    def __init__(self) -> None:
        self.token = "old"
        self.refreshed_from: list[str | None] = []

    def refresh(self, *, stale: str | None = None) -> str:
        self.refreshed_from.append(stale)
        self.token = "new"
        return self.token

    def auth_flow(self, request: httpx.Request):  # httpx calls sync_auth_flow → auth_flow
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class ExternallyRefreshedAuth(ExternallyRefreshed, httpx.Auth):
    pass


def test_given_401_with_an_auth_that_leaves_refresh_to_the_policy_then_policy_refreshes_once(
    clock: FakeClock,
) -> None:
    auth = ExternallyRefreshedAuth()
    api = Script([httpx.Response(401), ok(), httpx.Response(401), httpx.Response(401)])
    client = make_client(api, auth=auth)
    retry = policy(clock)
    send(client, retry)
    assert auth.refreshed_from == ["old"]
    assert clock.sleeps == [0.0]  # no backoff before a retry with a fresh token
    with pytest.raises(AuthError):
        send(client, retry)
    assert auth.refreshed_from == ["old", "new"]  # once per call, never twice


def test_given_the_token_endpoint_is_down_then_the_policy_retries_the_whole_request(clock: FakeClock) -> None:
    tokens = Script([httpx.Response(503), token("access-new")])
    auth = OAuthRefresh(
        client_id="c",
        client_secret="s3cret-value",
        refresh_token="r-token",
        token_url="https://api.example.test/oauth/v1/token",
        source="hubspot",
        clock=clock,
        transport=httpx.MockTransport(tokens),
    )
    api = Script([ok({"results": [1]})])
    assert send(make_client(api, auth=auth), policy(clock)).body == {"results": [1]}
    assert len(tokens.requests) == 2


# -- the limiter sits inside the policy -----------------------------------------------------------


class RecordingLimiter:
    def __init__(self) -> None:
        self.events: list[str] = []

    def acquire(self) -> Permit:
        self.events.append("acquire")
        return Permit(lambda: self.events.append("release"))

    def observe(self, response: httpx.Response) -> None:
        self.events.append(f"observe {response.status_code}")


def test_the_limiter_is_acquired_before_every_attempt_and_sees_every_response(clock: FakeClock) -> None:
    limiter = RecordingLimiter()
    script = Script([httpx.Response(429, headers={"Retry-After": "1"}), httpx.ReadTimeout("slow"), ok()])
    send(make_client(script), policy(clock), limiter=limiter)
    assert limiter.events == [
        "acquire", "observe 429", "release",
        "acquire", "release",
        "acquire", "observe 200", "release",
    ]  # fmt: skip


# -- messages never leak --------------------------------------------------------------------------


def test_error_messages_redact_query_secrets_known_secrets_and_emails(clock: FakeClock) -> None:
    body = {"message": "token pat-na1-SECRET rejected for ana@acme.io"}
    retry = policy(clock, redactor=Redactor(["pat-na1-SECRET"]))
    with pytest.raises(FatalError) as caught:
        send(
            make_client(Script([httpx.Response(400, json=body)])), retry, path="/x?hapikey=abcdef123&limit=5"
        )
    message = str(caught.value)
    assert "abcdef123" not in message and "pat-na1-SECRET" not in message and "ana@" not in message
    assert "hapikey=***" in message and "***@acme.io" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR"},
         "Property values were not valid [VALIDATION_ERROR]"),
        ({"type": "https://mailchimp.com/developer/", "title": "Resource Not Found", "detail": "The list does not exist"},
         "The list does not exist"),
        ({"errors": [{"title": "Not Found", "detail": "Contact not found"}]}, "Contact not found"),
        ({"message": "No Result found for Subscriber with id 1"}, "No Result found for Subscriber with id 1"),
    ],
    ids=["hubspot", "mailchimp", "activecampaign errors[]", "activecampaign message"],
)  # fmt: skip
def test_error_bodies_of_all_three_platforms_are_described(body: dict[str, Any], expected: str) -> None:
    assert describe_error(httpx.Response(400, json=body)) == expected


def test_non_json_and_empty_error_bodies_are_described_too() -> None:
    assert (
        describe_error(httpx.Response(502, text="<html>\n Bad   Gateway</html>"))
        == "<html> Bad Gateway</html>"
    )
    assert describe_error(httpx.Response(429)) == "no body"


def test_every_error_raised_is_a_connector_error_with_the_source(clock: FakeClock) -> None:
    for status in (400, 401, 403, 404, 429, 500):
        with pytest.raises(ConnectorError) as caught:
            send(make_client(Script([httpx.Response(status)] * 4)), policy(clock))
        assert caught.value.source == "hubspot"


# -- vendor-SDK calls run under the same policy (RetryPolicy.call) --------------------------------


class SdkHttpError(Exception):
    """What an SDK raises for an HTTP error: status, headers and body, but no httpx.Response."""

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.headers, self.body = status, headers or {}, body


def sdk_to_response(exc: BaseException) -> httpx.Response | None:
    if isinstance(exc, SdkHttpError):
        return httpx.Response(exc.status, headers=exc.headers, content=exc.body)
    return None


DESCRIBE = httpx.Request("POST", "https://api.example.test/crm/v3/objects/contacts/batch/update")


def test_an_sdk_call_is_classified_waited_and_retried_like_an_httpx_request(clock: FakeClock) -> None:
    outcomes: list[Any] = [SdkHttpError(429, {"Retry-After": "4"}), SdkHttpError(502), {"status": "COMPLETE"}]

    def fn() -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    limiter = RecordingLimiter()
    result = policy(clock).call(fn, describe=DESCRIBE, to_response=sdk_to_response, limiter=limiter)
    assert result == {"status": "COMPLETE"}
    assert clock.sleeps == [4.0, 1.5]  # Retry-After, then the backoff of a second attempt
    assert limiter.events.count("acquire") == 3 and "observe 429" in limiter.events


def test_an_sdk_call_refused_with_401_refreshes_once_then_fails_with_auth_error(clock: FakeClock) -> None:
    refreshes: list[int] = []

    def fn() -> Any:
        raise SdkHttpError(401)

    with pytest.raises(AuthError, match="HUBSPOT_TOKEN"):
        policy(clock).call(
            fn, describe=DESCRIBE, to_response=sdk_to_response, refresh_auth=lambda: refreshes.append(1)
        )
    assert refreshes == [1]


def test_a_bug_inside_an_sdk_call_is_raised_as_is_and_never_retried(clock: FakeClock) -> None:
    calls: list[int] = []

    def fn() -> Any:
        calls.append(1)
        raise KeyError("properties")

    with pytest.raises(KeyError):
        policy(clock).call(fn, describe=DESCRIBE, to_response=sdk_to_response)
    assert calls == [1]


def test_a_body_parsed_by_the_transport_is_taken_out_of_the_response(clock: FakeClock) -> None:
    """httpx's response is in a reference cycle: a parsed body left in it (the Mailchimp SDK's)
    would live until the cyclic collector ran, and be walked by every collection until then."""
    parsed = {"members": [{"id": "a"}]}
    script = Script([httpx.Response(200, json=parsed, extensions={PARSED_JSON: parsed})])
    reply = send(make_client(script), policy(clock))
    assert reply.body is parsed
    assert PARSED_JSON not in reply.response.extensions
