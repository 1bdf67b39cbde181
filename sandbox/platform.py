"""What every platform emulator provides to the shared sandbox server.

The server (``sandbox.server``) owns the HTTP plumbing shared by all three emulators: counting
requests and connections, injected faults and latency, rate limiting and the ``/_sandbox/`` admin
endpoints. An emulator only says what is platform-specific: its routes, how it authenticates, which
rate limits apply to a request and what its refusals look like on the wire.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from aiohttp import web

from leadsync.sandbox.ratelimit import ConcurrencyPolicy, LimitDecision, RollingWindowPolicy

if TYPE_CHECKING:
    from leadsync.sandbox.clock import SandboxClock
    from leadsync.sandbox.world import World, WorldDelta

__all__ = ["EmulatorOptions", "PlatformEmulator", "RateRule", "json_response"]

# Request keys: who the request is from (set by authenticate()), and the injected Fault (or None),
# for platform-specific fault kinds the emulator acts on itself.
PRINCIPAL: web.RequestKey[str] = web.RequestKey("sandbox.principal", str)
FAULT: web.RequestKey[Any] = web.RequestKey("sandbox.fault", object)


def json_response(
    body: Any,
    *,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON response with an exact content type (Mailchimp errors use application/problem+json)."""
    return web.Response(
        body=_json_bytes(body),
        status=status,
        headers={"Content-Type": f"{content_type}; charset=utf-8", **(headers or {})},
    )


def _json_bytes(body: Any) -> bytes:
    """Compact UTF-8 JSON. orjson: the emulators serialise every page they serve, and the stdlib's
    encoder cost as much CPU as building the pages; ``json.dumps`` for what orjson refuses (keys
    that are not strings, integers beyond 64 bits). Both give the same JSON values."""
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class EmulatorOptions:
    """Options common to every emulator, plus a free-form ``extra`` for platform ones."""

    rate_limits: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RateRule:
    """One limit that applies to a request: the policy and the key it is counted under."""

    policy: RollingWindowPolicy | ConcurrencyPolicy
    key: str


class PlatformEmulator(ABC):
    """Base class of the three emulators. Subclasses hold the platform's state for one world."""

    name: ClassVar[str]
    default_port: ClassVar[int]

    def __init__(self, world: World, clock: SandboxClock, options: EmulatorOptions | None = None) -> None:
        self.world = world
        self.clock = clock
        self.options = options or EmulatorOptions()
        # ``/_sandbox/credentials``: the account's credentials were revoked (a deleted private app,
        # a removed API user, a regenerated key). Each emulator then refuses them in its own shape.
        self.credentials_revoked = False

    # --- HTTP -------------------------------------------------------------------------------

    @abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Register the platform's API routes on ``app``."""

    @abstractmethod
    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        """Check credentials. Return the platform's refusal, or None and set ``request[PRINCIPAL]``."""

    def account_key(self) -> str | None:
        """The credential that names this account (``sandbox serve --accounts``: one port serves
        many accounts, each request goes to the account its credential names)."""
        return None

    def request_key(self, request: web.Request) -> str | None:
        """The credential a request carries, in the form ``account_key`` returns."""
        return None

    def rate_rules(self, request: web.Request) -> Sequence[RateRule]:
        """The limits that apply to this request (after authentication). None by default."""
        return ()

    @abstractmethod
    def too_many_requests(
        self, request: web.Request, decision: LimitDecision | None, retry_after: float | None
    ) -> web.StreamResponse:
        """The platform's 429. ``decision`` is None when the 429 is an injected fault."""

    @abstractmethod
    def error_response(self, request: web.Request, status: int, message: str) -> web.StreamResponse:
        """The platform's error body for ``status`` (used for injected 5xx and generic errors)."""

    def decorate(  # noqa: B027 - optional hook
        self, request: web.Request, response: web.StreamResponse, decisions: Sequence[LimitDecision]
    ) -> None:
        """Add platform headers to a normal answer (rate-limit headers, request ids)."""

    def is_write(self, request: web.Request) -> bool:
        """Whether a request changes platform state (counted as a write in the stats). Platforms
        that read through POST (HubSpot search and batch read) say so by overriding this."""
        return request.method not in {"GET", "HEAD", "OPTIONS"}

    # --- world ------------------------------------------------------------------------------

    def apply_delta(self, delta: WorldDelta) -> None:  # noqa: B027 - optional hook
        """New activity after a clock advance: update platform state (counters, events, records)."""

    def expire_tokens(self) -> None:  # noqa: B027 - optional hook
        """Make every issued access token invalid (only platforms with expiring tokens care)."""

    def revoke_credentials(self, revoked: bool = True) -> None:
        """Refuse (``revoked``) or accept again the credentials the sandbox config carries."""
        self.credentials_revoked = revoked
        if revoked:
            self.expire_tokens()

    def inspect(self, email: str) -> dict[str, Any] | None:
        """What the platform holds for this email (admin endpoint), or None when unknown."""
        return None

    @abstractmethod
    def source_config(self, base_url: str) -> dict[str, Any]:
        """A ``[[sources]]`` entry for leadsync's config that works against this emulator."""
