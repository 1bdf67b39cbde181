"""The sandbox HTTP server: the three emulators on loopback, with shared plumbing.

Every API request passes, in order: counting, injected faults, injected latency, the emulator's
authentication, its rate limits, then its handler. ``/_sandbox/...`` admin requests skip all of
that and are not counted.

``SandboxServer`` runs the emulators either in the foreground (``leadsync sandbox serve``) or on a
background thread (tests, ``leadsync demo``, benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.clock import SandboxClock
from leadsync.sandbox.faults import Fault, FaultKind, FaultPlan, FaultSettings
from leadsync.sandbox.platform import FAULT, EmulatorOptions, PlatformEmulator, json_response
from leadsync.sandbox.ratelimit import ConcurrencyPolicy, LimitDecision
from leadsync.sandbox.stats import PlatformStats
from leadsync.sandbox.webhooks import (
    SANDBOX_WEBHOOK_SECRETS,
    WebhookSender,
    WebhookTarget,
    install_hooks,
    management_routes,
    webhook_bodies,
)

if TYPE_CHECKING:
    from leadsync.sandbox.world import World

__all__ = ["EmulatorHost", "SandboxServer", "SandboxState"]

log = logging.getLogger("leadsync.sandbox")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ADMIN_PREFIX = "/_sandbox/"
DROPPED = 599  # status recorded for a connection dropped on purpose (the client sees no answer)
HOST_KEY = web.AppKey("host", object)


@dataclass
class EmulatorHost:
    """One emulator with its stats, faults and latency: what one port serves."""

    emulator: PlatformEmulator
    port: int
    stats: PlatformStats = field(default_factory=PlatformStats)
    faults: FaultPlan = field(default_factory=FaultPlan)
    latency_s: float = 0.0
    # ids of the open connections that have carried an API request (forgotten when they close)
    api_connections: set[int] = field(default_factory=set)
    # API requests as sent (method, path with query, body), while a benchmark records them to replay
    # them with a raw client (``/_sandbox/record``); None when not recording
    recorded: list[dict[str, str]] | None = None

    @property
    def name(self) -> str:
        return self.emulator.name


@dataclass
class SandboxState:
    """What the three emulators share: the world and its clock."""

    world: World
    clock: SandboxClock
    hosts: dict[str, EmulatorHost] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    webhooks: WebhookSender = field(default_factory=WebhookSender)

    def _send_webhooks(self, delta: Any) -> None:
        for host in self.hosts.values():
            for outgoing in webhook_bodies(self.webhooks, host.emulator, delta):
                self.webhooks.emit(outgoing)

    def act(
        self, email: str, kind: str, *, platform: str | None = None, url: str | None = None
    ) -> dict[str, Any]:
        """``email``'s person does ``kind`` now (one world event at the clock's next second, on
        ``platform`` or the first of theirs): the platform changes and sends its webhooks."""
        from leadsync.connectors.records import EventType, Platform
        from leadsync.sandbox.world import Event, WorldDelta, apply_delta

        event_type = EventType(kind)
        with self.lock:
            person = next(
                (
                    p
                    for p in self.world.persons
                    if email.lower() in {p.email.lower(), *(e.lower() for e in p.platform_emails.values())}
                ),
                None,
            )
            if person is None:
                raise KeyError(email)
            chosen = Platform(platform) if platform else person.platforms[0]
            if chosen not in person.platforms:
                raise ValueError(
                    f"{email} is not on {chosen.value}; they are on {[str(p) for p in person.platforms]}"
                )
            since = self.world.now
            at = max(self.clock.now(), since) + timedelta(seconds=1)
            event = Event(
                id=f"e{self.world.next_event_number}",
                person=person.id,
                platform=chosen,
                type=event_type,
                at=at,
                url=url,
                campaign=None,
            )
            delta = WorldDelta(since=since, until=at, events=[event])
            apply_delta(self.world, delta)
            self.clock.advance(max(timedelta(0), at - self.clock.now()))
            for host in self.hosts.values():
                host.emulator.apply_delta(delta)
        self._send_webhooks(delta)
        return {"person": person.id, "platform": chosen.value, "type": event_type.value, "at": at.isoformat()}

    def advance(self, *, days: float, activity: bool = True) -> dict[str, Any]:
        """Move the world forward; with ``activity`` the generator adds what happened meanwhile."""
        from leadsync.sandbox.world import apply_delta, extend_world

        with self.lock:
            if activity:
                # The world may be behind the clock (an earlier advance without activity): cover both.
                target = self.clock.now() + timedelta(days=days)
                delta = extend_world(self.world, days=(target - self.world.now).total_seconds() / 86400)
                apply_delta(self.world, delta)
                self.clock.advance(max(timedelta(0), self.world.now - self.clock.now()))
                for host in self.hosts.values():
                    host.emulator.apply_delta(delta)
                summary = delta.summary()
                self._send_webhooks(delta)
            else:
                self.clock.advance(timedelta(days=days))
                summary = {}
        return {"now": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"), **summary}


# --- the per-request pipeline ---------------------------------------------------------------


@web.middleware
async def sandbox_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    host: EmulatorHost = request.app[HOST_KEY]  # type: ignore[assignment]
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    connection = id(request.protocol)
    new_connection = connection not in host.api_connections
    if new_connection:
        host.api_connections.add(connection)
    host.stats.request_started(
        f"{request.method} {route}", write=host.emulator.is_write(request), new_connection=new_connection
    )
    recording = host.recorded
    status = 0
    try:
        response = await _serve(host, request, handler)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        host.stats.request_finished(status)
        if recording is not None:
            # after the handler: its read is cached (read first, the handlers would see no body)
            body = await request.read() if request.body_exists else b""
            recording.append(
                {
                    "method": request.method,
                    "path": request.path_qs,
                    "body": body.decode("utf-8", "replace"),
                    "content_type": request.content_type if body else "",
                }
            )


async def _serve(host: EmulatorHost, request: web.Request, handler: Handler) -> web.StreamResponse:
    emulator = host.emulator
    fault = host.faults.next_fault(request.path)
    request[FAULT] = fault  # platform-specific kinds (bulk_import_limit) are acted on by the emulator
    if fault is not None:
        host.stats.count_fault(fault.kind.value)
        early = await _inject_before(host, request, fault)
        if early is not None:
            return early
    if host.latency_s:
        await asyncio.sleep(host.latency_s)

    refusal = emulator.authenticate(request)
    if refusal is not None:
        return refusal

    decisions: list[LimitDecision] = []
    held: list[tuple[ConcurrencyPolicy, str]] = []
    try:
        if emulator.options.rate_limits:
            for rule in emulator.rate_rules(request):
                decision = rule.policy.check(rule.key)
                if not decision.allowed:
                    host.stats.count_rate_limited()
                    return emulator.too_many_requests(request, decision, decision.retry_after)
                if isinstance(rule.policy, ConcurrencyPolicy):
                    held.append((rule.policy, rule.key))
                decisions.append(decision)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if request.match_info.http_exception is None:
                raise
            # No route matched (404/405): answer in the platform's error shape, not aiohttp's text.
            return emulator.error_response(request, exc.status, exc.reason)
        emulator.decorate(request, response, decisions)
        # the server's clock is the world's (RFC 9110 §6.6.1: an origin server sends its Date)
        if not response.prepared:
            response.headers["Date"] = format_datetime(emulator.clock.now(), usegmt=True)
    finally:
        for policy, key in held:
            policy.release(key)

    if fault is not None and fault.kind in (FaultKind.RESET, FaultKind.MALFORMED):
        return await _inject_after(request, response, fault)
    return response


async def _inject_before(host: EmulatorHost, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    emulator = host.emulator
    match fault.kind:
        case FaultKind.DROP:
            _abort(request)
            return web.Response(status=DROPPED)  # never reaches the client: the socket is gone
        case FaultKind.SLOW:
            await asyncio.sleep(fault.seconds or 30.0)
            return None
        case FaultKind.RATE_LIMIT:
            return emulator.too_many_requests(request, None, fault.retry_after)
        case FaultKind.BODILESS_RATE_LIMIT:
            return web.Response(status=429)
        case FaultKind.SERVER_ERROR:
            return emulator.error_response(
                request, fault.status or 500, "Internal Server Error (sandbox fault)"
            )
        case FaultKind.EXPIRE_TOKEN:
            emulator.expire_tokens()
            return None
        case _:
            return None  # RESET / MALFORMED act on the real response; platform faults are the emulator's


async def _inject_after(
    request: web.Request, response: web.StreamResponse, fault: Fault
) -> web.StreamResponse:
    body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b"{}"
    if fault.kind is FaultKind.MALFORMED:
        truncated = web.Response(status=200, body=body[: max(1, len(body) // 2)])
        truncated.headers["Content-Type"] = response.headers.get("Content-Type", "application/json")
        return truncated
    # RESET: promise the whole body, send half, then cut the connection.
    stream = web.StreamResponse(status=response.status, headers=dict(response.headers))
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    _abort(request)
    return stream


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


# --- admin endpoints --------------------------------------------------------------------------


def _admin_routes(state: SandboxState, host: EmulatorHost) -> list[web.RouteDef]:
    async def stats(_: web.Request) -> web.Response:
        return json_response({"platform": host.name, **host.stats.snapshot()})

    async def reset_stats(_: web.Request) -> web.Response:
        host.stats.reset()
        return json_response({"platform": host.name, **host.stats.snapshot()})

    async def get_faults(_: web.Request) -> web.Response:
        return json_response(
            {"platform": host.name, "pending": host.faults.pending, **host.faults.settings.to_json()}
        )

    async def set_faults(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            settings, queue = FaultSettings.from_json(body)
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        host.faults.configure(settings, queue)
        return json_response({"platform": host.name, "pending": host.faults.pending, **settings.to_json()})

    async def clear_faults(_: web.Request) -> web.Response:
        host.faults.clear()
        return json_response({"platform": host.name, "cleared": True})

    async def set_latency(request: web.Request) -> web.Response:
        body = await request.json()
        host.latency_s = max(0.0, float(body.get("ms", 0)) / 1000.0)
        return json_response({"platform": host.name, "latency_ms": host.latency_s * 1000})

    async def start_recording(_: web.Request) -> web.Response:
        host.recorded = []
        return json_response({"platform": host.name, "recording": True})

    async def stop_recording(_: web.Request) -> web.Response:
        recorded, host.recorded = host.recorded or [], None
        return json_response({"platform": host.name, "requests": recorded})

    async def clock(_: web.Request) -> web.Response:
        return json_response({"now": state.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")})

    async def advance(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        try:
            days = float(body.get("days", 1))
            if days <= 0:
                raise ValueError("days must be positive")
        except (TypeError, ValueError) as exc:
            return json_response({"error": f"bad 'days': {exc}"}, status=400)
        result = await asyncio.get_running_loop().run_in_executor(
            None, lambda: state.advance(days=days, activity=bool(body.get("activity", True)))
        )
        return json_response(result)

    async def get_credentials(_: web.Request) -> web.Response:
        return json_response({"platform": host.name, "revoked": host.emulator.credentials_revoked})

    async def set_credentials(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        revoked = body.get("revoked", True) if isinstance(body, dict) else None
        if not isinstance(revoked, bool):
            return json_response({"error": "'revoked' must be true or false"}, status=400)
        host.emulator.revoke_credentials(revoked)
        return json_response({"platform": host.name, "revoked": revoked})

    async def person(request: web.Request) -> web.Response:
        email = request.match_info["email"]
        views = {name: h.emulator.inspect(email) for name, h in state.hosts.items()}
        found = {name: view for name, view in views.items() if view is not None}
        if not found:
            return json_response({"error": f"no platform knows {email}"}, status=404)
        return json_response({"email": email, "platforms": found})

    async def get_webhooks(_: web.Request) -> web.Response:
        sender = state.webhooks
        return json_response(
            {
                "targets": {name: target.public() for name, target in sender.targets.items()},
                "sent": sender.log(),
            }
        )

    async def set_webhooks(request: web.Request) -> web.Response:
        """``{"url": U}``: this platform's webhooks go to U, signed with the sandbox's secret (or
        ``"secret"``); ``{"url": null}`` stops them; ``"api_source"``: Mailchimp's sources.api."""
        try:
            body = await request.json()
            url = body.get("url")
            if url is not None and not str(url).startswith(("http://", "https://")):
                raise ValueError(f"url must be http(s), got {url!r}")
        except (ValueError, AttributeError) as exc:
            return json_response({"error": f"bad webhook settings: {exc}"}, status=400)
        target = None
        if url is not None:
            target = WebhookTarget(
                str(url),
                secret=body.get("secret", SANDBOX_WEBHOOK_SECRETS.get(host.name, {}).get("webhook_secret")),
                api_source=bool(body.get("api_source", True)),
            )
        state.webhooks.configure(host.name, target)
        return json_response({"platform": host.name, "target": target.public() if target else None})

    async def act(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            email, kind = str(body["email"]), str(body.get("type", "page_view"))
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": f"need a JSON body with 'email' (and 'type'): {exc}"}, status=400)
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                None, lambda: state.act(email, kind, platform=body.get("platform"), url=body.get("url"))
            )
        except KeyError:
            return json_response({"error": f"no person with email {email}"}, status=404)
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response(result)

    return [
        web.get("/_sandbox/webhooks", get_webhooks),
        web.post("/_sandbox/webhooks", set_webhooks),
        web.post("/_sandbox/act", act),
        web.get("/_sandbox/stats", stats),
        web.post("/_sandbox/stats/reset", reset_stats),
        web.get("/_sandbox/faults", get_faults),
        web.post("/_sandbox/faults", set_faults),
        web.delete("/_sandbox/faults", clear_faults),
        web.post("/_sandbox/latency", set_latency),
        web.post("/_sandbox/record", start_recording),
        web.delete("/_sandbox/record", stop_recording),
        web.get("/_sandbox/clock", clock),
        web.post("/_sandbox/clock/advance", advance),
        web.get("/_sandbox/persons/{email}", person),
        web.get("/_sandbox/credentials", get_credentials),
        web.post("/_sandbox/credentials", set_credentials),
    ]


def build_app(state: SandboxState, host: EmulatorHost) -> web.Application:
    app = web.Application(middlewares=[sandbox_middleware], client_max_size=8 * 1024 * 1024)
    app[HOST_KEY] = host
    app.add_routes(_admin_routes(state, host))
    app.add_routes(management_routes(state.webhooks, host.emulator))
    host.emulator.add_routes(app)
    return app


# --- running ----------------------------------------------------------------------------------


class SandboxServer:
    """Runs emulators on 127.0.0.1, in the foreground or on a background thread.

    >>> with SandboxServer.for_world(world, ports={"hubspot": 0}) as server:  # 0 = any free port
    ...     server.base_url("hubspot")
    """

    def __init__(
        self, state: SandboxState, *, host: str = "127.0.0.1", accounts: Sequence[SandboxState] = ()
    ) -> None:
        self.state = state
        # Every account's own world, clock and emulators (``for_accounts``); ``state`` is the first.
        self.accounts: list[SandboxState] = list(accounts) or [state]
        self.host = host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None

    @classmethod
    def for_world(
        cls,
        world: World,
        *,
        emulators: Sequence[type[PlatformEmulator]] | None = None,
        ports: dict[str, int] | None = None,
        rate_limits: bool = True,
        latency_ms: float = 0.0,
        extra: dict[str, dict[str, Any]] | None = None,
    ) -> SandboxServer:
        from leadsync.sandbox.emulators import ALL_EMULATORS

        clock = SandboxClock(world.now)
        state = SandboxState(world=world, clock=clock)
        for emulator_cls in emulators or ALL_EMULATORS:
            options = EmulatorOptions(rate_limits=rate_limits, extra=(extra or {}).get(emulator_cls.name, {}))
            port = (ports or {}).get(emulator_cls.name, emulator_cls.default_port)
            host = EmulatorHost(emulator_cls(world, clock, options), port=port, latency_s=latency_ms / 1000.0)
            state.hosts[emulator_cls.name] = host
            install_hooks(state.webhooks, host.emulator)
        return cls(state)

    @classmethod
    def for_accounts(
        cls,
        worlds: Sequence[World],
        *,
        emulators: Sequence[type[PlatformEmulator]] | None = None,
        ports: dict[str, int] | None = None,
        rate_limits: bool = True,
        latency_ms: float = 0.0,
        extra: dict[str, dict[str, Any]] | None = None,
    ) -> SandboxServer:
        """One account per world on each platform, all on the platform's one port: each request goes
        to the account its credential names (``sandbox.accounts``). Each account has its own world,
        clock, platform state and rate-limit budget."""
        from leadsync.sandbox.accounts import account_extra

        states: list[SandboxState] = []
        for index, world in enumerate(worlds):
            per_account = {
                name: {**(extra or {}).get(name, {}), **account_extra(name, index)}
                for name in ("hubspot", "mailchimp", "activecampaign")
            }
            server = cls.for_world(
                world,
                emulators=emulators,
                ports=ports,
                rate_limits=rate_limits,
                latency_ms=latency_ms,
                extra=per_account,
            )
            states.append(server.state)
        if not states:
            raise ValueError("at least one account")
        return cls(states[0], accounts=states)

    def base_url(self, platform: str) -> str:
        return f"http://{self.host}:{self.state.hosts[platform].port}"

    def stats(self, account: int | None = None) -> dict[str, dict[str, Any]]:
        """Per platform: one account's stats (``account``, from 1), or every account's summed."""
        if account is not None or len(self.accounts) == 1:
            state = self.accounts[(account or 1) - 1]
            return {name: host.stats.snapshot() for name, host in state.hosts.items()}
        return {
            name: _summed([state.hosts[name].stats.snapshot() for state in self.accounts])
            for name in self.state.hosts
        }

    async def _start(self) -> None:
        for name, host in self.state.hosts.items():
            if len(self.accounts) > 1:
                app = _account_front(self.accounts, name)
            else:
                app = build_app(self.state, host)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            _count_connections(runner, host)
            site = web.TCPSite(runner, self.host, host.port, backlog=1024, reuse_address=True)
            await site.start()
            if host.port == 0:  # learn the port the OS picked
                server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor
                host.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._runners.append(runner)

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def serve_async(self) -> None:
        self._stopped = asyncio.Event()
        await self._start()
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await self._stop()

    def serve_forever(self) -> None:
        """Foreground: run until interrupted (Ctrl-C)."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self.serve_async())

    def start(self) -> SandboxServer:
        """Background: start on a daemon thread and return once every port listens."""

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.serve_async())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of start(), re-raised there
                self._error = exc
                self._ready.set()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="leadsync-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise RuntimeError(f"sandbox failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _account_front(accounts: Sequence[SandboxState], platform: str) -> web.Application:
    """The app on a platform's port when it serves many accounts: each request is handed to the app
    of the account its credential names (an unknown credential to the first account, which refuses
    it the platform's way); an admin request to the account ``X-Sandbox-Account`` names."""
    from leadsync.sandbox.accounts import ACCOUNT_HEADER

    apps: list[web.Application] = []
    for state in accounts:
        app = build_app(state, state.hosts[platform])
        app.freeze()
        apps.append(app)
    by_key = {
        state.hosts[platform].emulator.account_key(): app for state, app in zip(accounts, apps, strict=True)
    }
    emulator = accounts[0].hosts[platform].emulator

    @web.middleware
    async def dispatch(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            named = request.headers.get(ACCOUNT_HEADER) or request.query.get("account") or "1"
            if not named.isdigit() or not 1 <= int(named) <= len(apps):
                return json_response(
                    {"error": f"no account {named!r}; accounts are 1 to {len(apps)}"}, status=404
                )
            app = apps[int(named) - 1]
        else:
            app = by_key.get(emulator.request_key(request), apps[0])
        # aiohttp has no public call to hand a request to another Application; ``_handle`` is the
        # one its own server calls for every request (route, middlewares, handler). A clone, since
        # the request caches the front app's (empty) route match.
        return await app._handle(request.clone())  # noqa: SLF001

    return web.Application(middlewares=[dispatch], client_max_size=8 * 1024 * 1024)


def _summed(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Stats of many accounts as one: numbers added, per-route and per-status tables merged."""
    total: dict[str, Any] = {}
    for snapshot in snapshots:
        for key, value in snapshot.items():
            if isinstance(value, bool) or not isinstance(value, int | float | dict):
                total.setdefault(key, value)
            elif isinstance(value, dict):
                merged = total.setdefault(key, {})
                for inner, count in value.items():
                    if isinstance(count, int | float):
                        merged[inner] = merged.get(inner, 0) + count
            else:
                total[key] = total.get(key, 0) + value
    return total


def _count_connections(runner: web.AppRunner, host: EmulatorHost) -> None:
    """Count TCP connections by wrapping the aiohttp server's connection hooks."""
    server = runner.server
    assert server is not None
    made, lost = server.connection_made, server.connection_lost

    def connection_made(handler: Any, transport: Any) -> None:
        host.stats.connection_opened()
        made(handler, transport)

    def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
        host.stats.connection_closed()
        host.api_connections.discard(id(handler))
        lost(handler, exc)

    server.connection_made = connection_made  # type: ignore[method-assign]
    server.connection_lost = connection_lost  # type: ignore[method-assign]
