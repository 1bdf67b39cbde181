"""leadsync connectors: the shared core every platform connector is built on.

* ``connectors.http`` - :func:`build_client`, the only way connector HTTP clients are made.
* ``connectors.auth`` - httpx auth flows (bearer, Basic key, header token, OAuth refresh).
* ``connectors.retry`` - the one retry policy: classify → wait → stop.
* ``connectors.ratelimit`` - proactive limiters (rolling window, concurrency, composite).
* ``connectors.pagination`` - paginator objects; ``connectors.streams`` - ``StreamSpec`` and the
  one page loop.
* ``connectors.redaction`` - secrets out of messages and logs.
* ``connectors.errors`` / ``connectors.records`` - the error tree and the normalised records.

Platform connectors live in ``connectors.hubspot``, ``connectors.mailchimp`` and
``connectors.activecampaign`` and are imported from there, not from here.
"""

from __future__ import annotations

from leadsync.connectors.auth import (
    BasicKey,
    BearerToken,
    HeaderToken,
    OAuthRefresh,
    RefreshableAuth,
    TokenSet,
)
from leadsync.connectors.errors import (
    AuthError,
    BadRecord,
    ConfigError,
    ConnectorError,
    FatalError,
    LeadsyncError,
    MalformedResponse,
    NotFound,
    PaginationLoop,
    RateLimited,
    RetriableError,
)
from leadsync.connectors.http import DEFAULT_TIMEOUT, USER_AGENT, build_client, logging_hooks
from leadsync.connectors.pagination import (
    CursorAfterPaginator,
    HasMoreOffsetPaginator,
    KeysetPaginator,
    OffsetPaginator,
    PageRequest,
    Paginator,
    SearchOffsetPaginator,
    SinglePagePaginator,
    get_path,
)
from leadsync.connectors.ratelimit import (
    UNLIMITED,
    CompositeLimiter,
    ConcurrencyLimiter,
    Limiter,
    LimiterStats,
    Permit,
    RollingWindowLimiter,
    shared_limiter,
)
from leadsync.connectors.records import (
    CALL_OUTCOMES,
    MEETING_OUTCOMES,
    CallOutcome,
    ContactRecord,
    EventRecord,
    EventType,
    MeetingOutcome,
    Platform,
    Profile,
    call_outcome,
    meeting_outcome,
    normalise_email,
    parse_count,
)
from leadsync.connectors.redaction import (
    MASK,
    SENSITIVE_HEADERS,
    SENSITIVE_QUERY_PARAMS,
    RedactingFilter,
    Redactor,
    redact_headers,
    redact_text,
    redact_url,
)
from leadsync.connectors.retry import (
    DEFAULT_RULES,
    PARSED_JSON,
    Action,
    ErrorRule,
    Reply,
    Resolution,
    RetryPolicy,
    RetryStats,
    counting,
    describe_error,
    parse_retry_after,
    policy_options,
    response_json,
)
from leadsync.connectors.streams import (
    Page,
    StreamSpec,
    iter_offset_pages_concurrently,
    iter_pages,
    iter_records,
)

__all__ = [
    "Action",
    "AuthError",
    "BadRecord",
    "BasicKey",
    "BearerToken",
    "CALL_OUTCOMES",
    "CallOutcome",
    "CompositeLimiter",
    "ConcurrencyLimiter",
    "ConfigError",
    "ConnectorError",
    "ContactRecord",
    "CursorAfterPaginator",
    "DEFAULT_RULES",
    "DEFAULT_TIMEOUT",
    "ErrorRule",
    "EventRecord",
    "EventType",
    "FatalError",
    "HasMoreOffsetPaginator",
    "HeaderToken",
    "KeysetPaginator",
    "LeadsyncError",
    "Limiter",
    "LimiterStats",
    "MASK",
    "MEETING_OUTCOMES",
    "MalformedResponse",
    "MeetingOutcome",
    "NotFound",
    "OAuthRefresh",
    "OffsetPaginator",
    "PARSED_JSON",
    "Page",
    "PageRequest",
    "PaginationLoop",
    "Paginator",
    "Permit",
    "Platform",
    "Profile",
    "RateLimited",
    "RedactingFilter",
    "Redactor",
    "RefreshableAuth",
    "Reply",
    "Resolution",
    "RetriableError",
    "RetryPolicy",
    "RetryStats",
    "RollingWindowLimiter",
    "SENSITIVE_HEADERS",
    "SENSITIVE_QUERY_PARAMS",
    "SearchOffsetPaginator",
    "SinglePagePaginator",
    "StreamSpec",
    "TokenSet",
    "UNLIMITED",
    "USER_AGENT",
    "build_client",
    "call_outcome",
    "counting",
    "describe_error",
    "get_path",
    "iter_offset_pages_concurrently",
    "iter_pages",
    "iter_records",
    "logging_hooks",
    "meeting_outcome",
    "normalise_email",
    "parse_count",
    "parse_retry_after",
    "policy_options",
    "redact_headers",
    "redact_text",
    "redact_url",
    "response_json",
    "shared_limiter",
]
