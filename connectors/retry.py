"""The one retry policy: classify, then wait, then stop (style.md, habit 4).

Every connector request goes through :meth:`RetryPolicy.send` (the page loop in
``connectors.streams`` calls it; writes call it directly). Nothing else retries: the transport
does not, and platform modules never add decorators.

1. **Classify.** A response or an exception is looked up in an ordered table of
   :class:`ErrorRule` rows (Airbyte's ``DEFAULT_ERROR_MAPPING``); the first row that matches gives
   an :class:`Action`: ``SUCCESS``, ``RETRY``, ``RATE_LIMITED``, ``REFRESH_AUTH`` or ``FAIL``.
   Platform modules put their own rows in front with :meth:`RetryPolicy.with_rules`, e.g.
   HubSpot's 403 ``MISSING_SCOPES`` → ``FAIL`` naming the scopes (hubspot.md §5).
2. **Wait.** ``Retry-After`` when the platform sent one (delta-seconds or an HTTP date); else
   the row's fixed ``wait_s`` (HubSpot 423: "a delay of at least 2 seconds"); else, for a 429 with
   neither, the platform's ``rate_limited_wait_s`` (HubSpot: the 10 s window, since "Retry-After
   is not guaranteed", hubspot.md §5); else exponential backoff with jitter.
3. **Stop.** After ``max_attempts`` attempts, or before a wait that would take the call past
   ``max_elapsed_s``. Giving up raises the ``connectors.errors`` type of the last failure:
   :class:`RateLimited` (with ``retry_after`` so a scheduler can come back later),
   :class:`RetriableError`, :class:`AuthError` naming the source and the credential variable, or
   :class:`FatalError`. Nothing is swallowed and nothing is wrapped into a single type.

Retriable by default: 408/425, 429, 5xx, timeouts, connection errors, a connection dropped
mid-body (``httpx.RemoteProtocolError``) and a 2xx whose body is not valid JSON.
A 401 asks the auth to refresh and is retried once (``OAuthRefresh`` does this inside its own
httpx flow; the policy then only checks that it happened once); 403 fails with ``AuthError``.

All requests are retried the same way whatever their method: connectors only send idempotent
writes (batch upserts by id, PUTs, ``contact/sync``).

A stop request (SIGTERM/SIGINT, ``connectors.stopping``) ends a back-off at once, and no attempt
starts after it: ``Stopped`` is raised instead, and neither retried nor classified.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from leadsync.connectors import stopping
from leadsync.connectors._headers import parse_retry_after
from leadsync.connectors._jsonpath import get_path
from leadsync.connectors.auth import RefreshableAuth
from leadsync.connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    MalformedResponse,
    NotFound,
    RateLimited,
    RetriableError,
)
from leadsync.connectors.ratelimit import Limiter, Permit
from leadsync.connectors.redaction import Redactor

__all__ = [
    "Action",
    "DEFAULT_RULES",
    "ErrorRule",
    "PARSED_JSON",
    "Reply",
    "Resolution",
    "RetryPolicy",
    "RetryStats",
    "counting",
    "describe_error",
    "parse_retry_after",
    "policy_options",
    "response_json",
]

log = logging.getLogger("leadsync.connectors.retry")

#: A response extension holding the body already parsed, set by a transport that had to parse it
#: itself (``connectors.mailchimp.sdk.SdkTransport``: the SDK parses every body): read as the reply's
#: JSON instead of parsing ``content`` a second time (issue 23's profile: a tenth of a Mailchimp pull).
PARSED_JSON = "leadsync.parsed_json"


class Action(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    REFRESH_AUTH = "refresh_auth"
    FAIL = "fail"


_DEFAULT_ERROR: dict[Action, type[ConnectorError]] = {
    Action.RETRY: RetriableError,
    Action.RATE_LIMITED: RateLimited,
    Action.REFRESH_AUTH: AuthError,
    Action.FAIL: FatalError,
    Action.SUCCESS: FatalError,  # never raised
}

Message = str | Callable[[Any], str | None]


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """One row of the classification table. Give exactly one of ``status`` and ``exception``.

    ``when`` narrows the row with a predicate on the response (or the exception);
    ``message`` is a fixed text or a function of the response/exception that explains the
    failure; ``error`` is the ``connectors.errors`` type raised on ``FAIL`` or on giving up;
    ``wait_s`` fixes the wait before retrying when no ``Retry-After`` was sent.
    """

    action: Action
    status: int | range | Collection[int] | None = None
    exception: type[BaseException] | tuple[type[BaseException], ...] | None = None
    when: Callable[[Any], bool] | None = None
    error: type[ConnectorError] | None = None
    message: Message | None = None
    wait_s: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if (self.status is None) == (self.exception is None):
            raise ValueError("an ErrorRule matches either a status or an exception, not both or neither")

    def matches(self, response: httpx.Response | None, exc: BaseException | None) -> bool:
        if exc is not None:
            if self.exception is None or not isinstance(exc, self.exception):
                return False
            subject: Any = exc
        elif response is not None:
            if self.status is None:
                return False
            code = response.status_code
            if not (code == self.status if isinstance(self.status, int) else code in self.status):
                return False
            subject = response
        else:
            return False
        return self.when is None or bool(self.when(subject))


@dataclass(frozen=True, slots=True)
class Resolution:
    """What to do about one response or exception."""

    action: Action
    error: type[ConnectorError]
    rule: str = ""
    detail: str | None = None
    retry_after: float | None = None
    wait_s: float | None = None


DEFAULT_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(Action.SUCCESS, status=range(200, 300), name="success"),
    ErrorRule(Action.REFRESH_AUTH, status=401, error=AuthError, name="unauthorized"),
    ErrorRule(Action.FAIL, status=403, error=AuthError, name="forbidden"),
    ErrorRule(Action.FAIL, status=404, error=NotFound, name="not found"),
    ErrorRule(Action.RETRY, status=frozenset({408, 425}), name="request timeout"),
    ErrorRule(Action.RATE_LIMITED, status=429, error=RateLimited, name="too many requests"),
    ErrorRule(Action.RETRY, status=range(500, 600), name="server error"),
    ErrorRule(Action.FAIL, status=range(100, 500), error=FatalError, name="unexpected status"),
    # Our own typed errors, raised below the policy (the OAuth token endpoint, a bad body).
    ErrorRule(Action.RATE_LIMITED, exception=RateLimited, name="rate limited"),
    ErrorRule(Action.RETRY, exception=RetriableError, name="retriable"),
    ErrorRule(Action.FAIL, exception=FatalError, name="fatal"),
    # httpx transport failures. RemoteProtocolError is a connection dropped mid-response.
    ErrorRule(Action.RETRY, exception=httpx.TimeoutException, name="timeout"),
    ErrorRule(Action.RETRY, exception=(httpx.NetworkError, httpx.RemoteProtocolError), name="connection"),
    ErrorRule(Action.RETRY, exception=httpx.DecodingError, name="undecodable body"),
    ErrorRule(Action.FAIL, exception=httpx.HTTPError, name="http error"),
)


@dataclass(slots=True)
class RetryStats:
    """Thread-safe counters across every call of one policy."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    rate_limited: int = 0
    auth_refreshes: int = 0
    gave_up: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
        tally = _TALLY.get()
        if tally is not None and tally is not self:
            tally.add(**counts)


#: The counters of the work at hand (one stream of a pull), added to beside every policy's own:
#: a source's streams are pulled side by side over one connector, so the difference of its totals
#: before and after a stream would mix them. Set by ``counting``; ``connectors.pools`` carries it
#: into the threads a connector sends its requests from.
_TALLY: ContextVar[RetryStats | None] = ContextVar("leadsync_request_tally", default=None)


@contextmanager
def counting(tally: RetryStats) -> Iterator[RetryStats]:
    """Count every request this context (and the pools it submits to) sends into ``tally`` too."""
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer: the response and its parsed JSON body (``None`` when empty)."""

    response: httpx.Response
    body: Any


class _Retry(Exception):
    """Internal: carries the typed error of a retriable attempt and the wait it asked for."""

    def __init__(self, error: ConnectorError, wait_s: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_s = wait_s


@dataclass(slots=True)
class _Call:
    start: float
    refreshed: bool = False


class _Stop(stop_base):
    """Stop before a wait that would end past the time budget, measured on the policy's clock."""

    def __init__(self, policy: RetryPolicy, call: _Call) -> None:
        self.policy = policy
        self.call = call

    def __call__(self, retry_state: RetryCallState) -> bool:
        elapsed = self.policy.clock() - self.call.start
        return elapsed + retry_state.upcoming_sleep > self.policy.max_elapsed_s


class _Wait(wait_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _Retry) and exc.wait_s is not None:
            return exc.wait_s
        return self.policy.backoff(retry_state.attempt_number)


@dataclass(frozen=True)
class RetryPolicy:
    """Classification table, wait rules and limits for one platform (one per source).

    ``source`` and ``credential_env`` name the configured source and the environment variable
    holding its credential, for error messages. ``clock``, ``sleep`` and ``rand`` are injectable
    for tests.
    """

    source: str
    credential_env: str | None = None
    rules: tuple[ErrorRule, ...] = DEFAULT_RULES
    max_attempts: int = 6
    max_elapsed_s: float = 300.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    rate_limited_wait_s: float | None = None
    clock: Callable[[], float] = time.monotonic
    # a back-off ends at once on a stop request
    sleep: Callable[[float], None] = stopping.sleeper("in a retry back-off")
    rand: Callable[[], float] = random.random
    redactor: Redactor = field(default_factory=Redactor)
    stats: RetryStats = field(default_factory=RetryStats, compare=False)

    def configured(self, options: Mapping[str, Any]) -> RetryPolicy:
        """A copy with the source's retry options applied (see ``policy_options``)."""
        return replace(self, stats=RetryStats(), **policy_options(options))

    def with_rules(self, *rules: ErrorRule, **changes: Any) -> RetryPolicy:
        """A copy with ``rules`` consulted before the current ones (and other fields changed)."""
        return replace(self, rules=(*rules, *self.rules), stats=RetryStats(), **changes)

    # -- classify -----------------------------------------------------------------------------

    def classify(
        self, response: httpx.Response | None = None, exc: BaseException | None = None
    ) -> Resolution:
        """Look a response or an exception up in the table. Pure: no I/O, no sleeping."""
        for rule in self.rules:
            if rule.matches(response, exc):
                detail = (
                    rule.message(exc if exc is not None else response)
                    if callable(rule.message)
                    else rule.message
                )
                retry_after = None
                if exc is not None and isinstance(exc, RateLimited):
                    retry_after = exc.retry_after
                elif response is not None:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                return Resolution(
                    action=rule.action,
                    error=rule.error or _DEFAULT_ERROR[rule.action],
                    rule=rule.name,
                    detail=detail,
                    retry_after=retry_after,
                    wait_s=rule.wait_s,
                )
        if exc is not None:
            raise TypeError(f"no retry rule for {type(exc).__name__}") from exc
        return Resolution(Action.FAIL, FatalError, rule="unclassified")

    def backoff(self, attempt_number: int) -> float:
        """Exponential backoff with "equal jitter": between half and all of the capped exponential."""
        ceiling = min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(attempt_number - 1, 0))
        return ceiling / 2 + self.rand() * ceiling / 2

    # -- the one call site --------------------------------------------------------------------

    def send(
        self,
        client: httpx.Client,
        request: httpx.Request,
        *,
        limiter: Limiter | None = None,
        expect_json: bool = True,
    ) -> Reply:
        """Send ``request`` until it succeeds or the policy gives up; return the parsed answer.

        The limiter is acquired before every attempt and told about every response.
        """
        call = _Call(start=self.clock())
        self.stats.add(calls=1)
        retrying = Retrying(
            retry=retry_if_exception_type(_Retry),
            wait=_Wait(self),
            stop=stop_after_attempt(self.max_attempts) | _Stop(self, call),
            sleep=self.sleep,
            before_sleep=self._before_sleep,
            retry_error_callback=self._give_up,
            reraise=True,
        )
        return retrying(self._attempt, client, request, limiter, expect_json, call)

    def call(
        self,
        fn: Callable[[], Any],
        *,
        describe: httpx.Request,
        to_response: Callable[[BaseException], httpx.Response | None],
        limiter: Limiter | None = None,
        refresh_auth: Callable[[], None] | None = None,
    ) -> Any:
        """Run a vendor-SDK call (which does its own HTTP, outside httpx) under this same policy.

        ``describe`` is a stand-in request (method and URL) for messages. ``to_response`` turns
        the SDK's HTTP exception (status, headers, body) into an ``httpx.Response`` so it is
        classified by the same table as httpx answers; it returns None for other exceptions,
        which are classified as exceptions (platforms add rows for their SDK's transport errors).
        On a 401, ``refresh_auth`` (if given) renews the credential once and the call is retried;
        ``fn`` must fetch fresh SDK objects on every attempt so the new token is used.
        """
        call = _Call(start=self.clock())
        self.stats.add(calls=1)
        retrying = Retrying(
            retry=retry_if_exception_type(_Retry),
            wait=_Wait(self),
            stop=stop_after_attempt(self.max_attempts) | _Stop(self, call),
            sleep=self.sleep,
            before_sleep=self._before_sleep,
            retry_error_callback=self._give_up,
            reraise=True,
        )
        return retrying(self._attempt_call, fn, describe, to_response, limiter, refresh_auth, call)

    def _attempt_call(
        self,
        fn: Callable[[], Any],
        describe: httpx.Request,
        to_response: Callable[[BaseException], httpx.Response | None],
        limiter: Limiter | None,
        refresh_auth: Callable[[], None] | None,
        call: _Call,
    ) -> Any:
        permit = self._permit(limiter)
        self.stats.add(attempts=1)
        try:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                response = to_response(exc)
                if response is None:
                    if not any(rule.matches(None, exc) for rule in self.rules):
                        raise  # a bug in the caller, not a platform failure: never retried
                    self._raise_for(self.classify(exc=exc), describe, None, exc)
                if limiter is not None:
                    limiter.observe(response)
        finally:
            if permit is not None:
                permit.release()
        resolution = self.classify(response=response)
        if resolution.action is Action.REFRESH_AUTH and refresh_auth is not None and not call.refreshed:
            refresh_auth()
            call.refreshed = True
            self.stats.add(auth_refreshes=1)
            raise _Retry(self._error(resolution, describe, response, None), 0.0)
        if resolution.action in (Action.SUCCESS, Action.REFRESH_AUTH):
            resolution = replace(resolution, action=Action.FAIL)
        self._raise_for(resolution, describe, response, None)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        client: httpx.Client,
        request: httpx.Request,
        limiter: Limiter | None,
        expect_json: bool,
        call: _Call,
    ) -> Reply:
        permit = self._permit(limiter)
        self.stats.add(attempts=1)
        try:
            try:
                response = client.send(request)
            except (httpx.HTTPError, ConnectorError) as exc:
                self._raise_for(self.classify(exc=exc), request, None, exc)
            if limiter is not None:
                limiter.observe(response)
        finally:
            if permit is not None:
                permit.release()

        resolution = self.classify(response=response)
        if resolution.action is Action.SUCCESS:
            body = None
            if expect_json and PARSED_JSON in response.extensions:
                # taken out, not read: httpx's response is in a reference cycle (its stream points
                # back at it), so a body left in it lives, and is walked by every collection, until
                # the cyclic collector frees it; taken out, it goes as soon as its records are stored
                # (a Mailchimp pull left about 140,000 such objects for the collector, issue 23)
                body = response.extensions.pop(PARSED_JSON)
            elif expect_json and response.content.strip():
                try:
                    body = orjson.loads(response.content)
                except orjson.JSONDecodeError as exc:
                    malformed = MalformedResponse(
                        self._message(request, response, "the body is not valid JSON"),
                        source=self.source,
                        status=response.status_code,
                        response=response,
                    )
                    malformed.__cause__ = exc
                    self._raise_for(self.classify(exc=malformed), request, response, malformed)
            return Reply(response, body)
        if resolution.action is Action.REFRESH_AUTH:
            self._refresh_or_fail(client, request, response, resolution, call)
        self._raise_for(resolution, request, response, None)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _permit(limiter: Limiter | None) -> Permit | None:
        """The limiter's permit for one attempt; no attempt starts once a stop was requested, even
        after a long wait for the permit (``connectors.stopping``)."""
        stopping.check()
        if limiter is None:
            return None
        permit = limiter.acquire()
        if stopping.requested():
            permit.release()
            raise stopping.Stopped("stopped in the rate limiter's wait")
        return permit

    def _raise_for(
        self,
        resolution: Resolution,
        request: httpx.Request,
        response: httpx.Response | None,
        exc: BaseException | None,
    ) -> Any:
        """Raise the typed error for a non-success resolution: wrapped in ``_Retry`` if retriable."""
        if isinstance(exc, ConnectorError) and isinstance(exc, resolution.error):
            error = exc  # already typed and worded below us (auth flow, malformed body)
        else:
            error = self._error(resolution, request, response, exc)
        if resolution.action in (Action.RETRY, Action.RATE_LIMITED):
            if resolution.action is Action.RATE_LIMITED:
                self.stats.add(rate_limited=1)
            wait = resolution.retry_after if resolution.retry_after is not None else resolution.wait_s
            if wait is None and resolution.action is Action.RATE_LIMITED:
                wait = self.rate_limited_wait_s
            raise _Retry(error, wait) from exc
        raise error from exc

    def _refresh_or_fail(
        self,
        client: httpx.Client,
        request: httpx.Request,
        response: httpx.Response,
        resolution: Resolution,
        call: _Call,
    ) -> None:
        auth = client.auth
        already = any(earlier.status_code == 401 for earlier in response.history)
        if already or call.refreshed or not isinstance(auth, RefreshableAuth):
            why = "even after refreshing the token" if (already or call.refreshed) else None
            raise self._error(resolution, request, response, None, extra=why)
        if auth.refresh_on_401:
            # The auth flow refreshes and resends on a 401 itself; a 401 with no 401 in its history
            # means it chose not to (the token was already fresh): give up rather than loop.
            raise self._error(resolution, request, response, None)
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or None
        auth.refresh(stale=sent)
        call.refreshed = True
        self.stats.add(auth_refreshes=1)
        raise _Retry(self._error(resolution, request, response, None), 0.0)

    # -- messages -----------------------------------------------------------------------------

    def _error(
        self,
        resolution: Resolution,
        request: httpx.Request,
        response: httpx.Response | None,
        exc: BaseException | None,
        *,
        extra: str | None = None,
    ) -> ConnectorError:
        detail = resolution.detail
        if detail is None and response is not None:
            detail = describe_error(response)
        elif detail is None and exc is not None:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if extra:
            detail = f"{detail} ({extra})" if detail else extra
        if resolution.error is AuthError and self.credential_env:
            detail = f"{detail}; check {self.credential_env}" if detail else f"check {self.credential_env}"
        message = self._message(request, response, detail)
        status = response.status_code if response is not None else None
        if issubclass(resolution.error, RateLimited):
            return resolution.error(
                message,
                source=self.source,
                status=status,
                retry_after=resolution.retry_after,
                response=response,
            )
        return resolution.error(message, source=self.source, status=status, response=response)

    def _message(self, request: httpx.Request, response: httpx.Response | None, detail: str | None) -> str:
        head = f"{self.source}: {request.method} {self.redactor.url(request.url)}"
        if response is not None:
            head += f" → {response.status_code} {response.reason_phrase}".rstrip()
        text = f"{head}: {detail}" if detail else head
        return self.redactor.text(text)

    # -- tenacity callbacks -------------------------------------------------------------------

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        self.stats.add(retries=1)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        log.warning(
            "%s; retrying in %.1f s (attempt %d of %d)",
            exc,
            retry_state.upcoming_sleep,
            retry_state.attempt_number + 1,
            self.max_attempts,
        )

    def _give_up(self, retry_state: RetryCallState) -> Any:
        self.stats.add(gave_up=1)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if not isinstance(exc, _Retry):  # pragma: no cover - only _Retry is retried
            raise exc if exc is not None else RuntimeError("retry gave up without an outcome")
        error = exc.error
        elapsed = self.clock() - retry_state.args[-1].start
        error.add_note(f"gave up after {retry_state.attempt_number} attempt(s) in {elapsed:.1f} s")
        raise error from exc.__cause__


def response_json(response: httpx.Response) -> Any:
    """The parsed body, or ``None`` when it is empty or not JSON. For use in ``ErrorRule`` predicates."""
    if not response.content.strip():
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


_DETAIL_PATHS = (
    "message",
    "detail",
    "title",
    "error_description",
    "error",
    "errors.0.message",
    "errors.0.detail",
    "errors.0.title",
)


def describe_error(response: httpx.Response, *, limit: int = 300) -> str:
    """A short human description of an error body in any of the three platforms' shapes.

    HubSpot ``{"message", "category"}`` (hubspot.md §5), Mailchimp problem+json ``{"title",
    "detail"}`` (mailchimp.md §9), ActiveCampaign ``{"message"}`` or ``{"errors": [{"title",
    "detail"}]}`` (activecampaign.md §8); otherwise the start of the text, or "no body".
    """
    body = response_json(response)
    if isinstance(body, dict):
        for path in _DETAIL_PATHS:
            value = get_path(body, path)
            if isinstance(value, str) and value.strip():
                category = body.get("category") or body.get("policyName")
                text = f"{value.strip()} [{category}]" if isinstance(category, str) else value.strip()
                return text[:limit]
    text = response.text.strip() if response.content else ""
    if not text:
        return "no body"
    return " ".join(text.split())[:limit]


#: Source options that tune the one retry policy (config: [sources.options]); `leadsync check`
#: sets max_attempts/max_elapsed_s low so a probe of an unreachable URL answers in seconds.
_POLICY_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "max_attempts": int,
    "max_elapsed_s": float,
    "backoff_initial_s": float,
    "backoff_max_s": float,
}


def policy_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The RetryPolicy fields a source's options set; absent or None options keep the defaults."""
    return {
        name: convert(options[name])
        for name, convert in _POLICY_OPTIONS.items()
        if options.get(name) is not None
    }
