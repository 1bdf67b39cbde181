"""The webhook receiver: an aiohttp app that checks, parses and queues deliveries, and answers fast.

Routes (``{source}`` is a configured source's name):

* ``POST /webhooks/{source}``: HubSpot (``X-HubSpot-Signature-v3``) and Mailchimp with a signing
  secret (``X-Mailchimp-Signature``);
* ``POST /webhooks/{source}/{token}``: Mailchimp without signing and ActiveCampaign, which cannot
  sign (activecampaign.md §9): the token is the source's ``webhook_token`` secret;
* ``GET`` on either: Mailchimp's URL validation (mailchimp.md §10) gets 200 once the token checks;
* ``GET /healthz``: how many deliveries wait.

A bad signature, a stale timestamp, a replay or a wrong token is 401; a body that is not what the
platform sends is 400; nothing of either is stored, and the log line names the source and the
reason, never a secret or the token. A delivery is answered 200 once its row is committed (a
group commit: the requests that arrive together share one transaction). Past ``queue_limit``
deliveries waiting, the answer is 429 with ``Retry-After``: the platforms retry (hubspot.md §6,
mailchimp.md §10), and the scheduled sync is the backstop for what they do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Engine

from leadsync.config.settings import LeadsyncConfig, SourceConfig, resolve_source
from leadsync.connectors.errors import LeadsyncError
from leadsync.connectors.records import Platform
from leadsync.sync.webhooks import queue
from leadsync.sync.webhooks.parse import Malformed, parse
from leadsync.sync.webhooks.signatures import (
    BadSignature,
    signature_digest,
    verify_hubspot_v3,
    verify_mailchimp,
)

__all__ = ["Receiver", "ReceiverServer", "SourceKeys"]

log = logging.getLogger("leadsync.webhooks")

MAX_BODY = 1024 * 1024  # far above any platform's delivery; a larger body is refused (413)
GROUP = 256  # requests committed in one transaction, at most
RETRY_AFTER_S = 5
RECOUNT_S = 0.5


@dataclass(frozen=True)
class SourceKeys:
    """A source's webhook secrets (never logged: ``repr`` leaves them out)."""

    name: str
    platform: Platform
    secret: str | None
    token: str | None

    def __repr__(self) -> str:
        return f"SourceKeys({self.name!r}, {self.platform.value!r})"


def source_keys(
    config: LeadsyncConfig, source: SourceConfig, environ: Mapping[str, str] | None
) -> SourceKeys:
    secrets = resolve_source(config, source, environ).secrets
    secret = secrets.get("webhook_secret")
    if source.platform is Platform.HUBSPOT and not secret:
        secret = secrets.get("client_secret")  # an OAuth app signs with its client secret (hubspot.md §6)
    return SourceKeys(source.name, source.platform, secret or None, secrets.get("webhook_token") or None)


class Receiver:
    """The receiver's state: the sources' keys, the group-commit writer, the count of waiting rows.

    ``notify()`` is called after every commit that queued something (the processor wakes up);
    ``processed(n)`` is the processor's word that ``n`` rows left the queue.
    """

    def __init__(
        self,
        engine: Engine,
        config: LeadsyncConfig,
        *,
        environ: Mapping[str, str] | None = None,
        notify: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.config = config
        self.settings = config.webhooks
        self.keys = {
            source.name: source_keys(config, source, environ) for source in config.sources if source.enabled
        }
        self.notify = notify or (lambda: None)
        self.clock = clock
        self._lock = threading.Lock()
        # held over a commit of new rows and the settling of their reservations, and over the
        # recount's read: a count read between the two would hold those rows twice (stored, and
        # still reserved), and the surplus would stay after every row was worked
        self._ledger = threading.Lock()
        self._waiting = queue.queued_count(engine)  # stored and not yet worked, plus reserved
        self._reserved = 0  # reserved by requests whose rows are not committed yet
        self._recounted = 0.0
        self._moves = 0  # rows stored or worked since start: a recount that saw any move is not exact
        self._pending: asyncio.Queue[tuple[queue.Enqueue, asyncio.Future[None]]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.counts = {"accepted": 0, "duplicates": 0, "refused": 0, "malformed": 0, "throttled": 0}

    # --- the queue bound ------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        with self._lock:
            return self._waiting

    def _reserve(self, count: int) -> bool:
        """Take room for ``count`` deliveries before they are stored (requests in flight count).
        At the bound, the count is read again from the store (at most twice a second): another
        process may be working the queue (``webhooks serve --no-process`` in front of it)."""
        limit = self.settings.queue_limit
        with self._lock:
            recount = self._waiting + count > limit and time.monotonic() - self._recounted >= RECOUNT_S
            if recount:
                self._recounted = time.monotonic()
        if recount:
            self._recount()
        with self._lock:
            if self._waiting + count > limit:
                return False
            self._waiting += count
            self._reserved += count
            return True

    def _recount(self, tries: int = 3) -> None:
        """The count read again from the store. New rows cannot land while it is read (the ledger
        lock); rows worked here while they were counted may be in the count or not, and the running
        total has them already: such a count is read again, and the last is taken (off by at most
        those rows, until the next recount)."""
        for attempt in range(tries):
            with self._lock:
                moves = self._moves
            with self._ledger:
                stored = queue.queued_count(self.engine)
            with self._lock:
                if self._moves == moves or attempt == tries - 1:
                    self._waiting = stored + self._reserved
                    return

    def _settle(self, count: int, queued: int) -> None:
        """A reservation of ``count`` is over: ``queued`` rows were stored (the rest took no room)."""
        with self._lock:
            self._reserved -= count
            self._waiting = max(0, self._waiting - (count - queued))
            self._moves += 1

    def processed(self, count: int) -> None:
        with self._lock:
            self._waiting = max(0, self._waiting - count)
            self._moves += 1

    # --- the app ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes(
            [
                web.post("/webhooks/{source}", self.deliver),
                web.post("/webhooks/{source}/{token}", self.deliver),
                web.get("/webhooks/{source}", self.validate),
                web.get("/webhooks/{source}/{token}", self.validate),
                web.get("/healthz", self.health),
            ]
        )
        app.on_startup.append(self._start_writer)
        app.on_cleanup.append(self._stop_writer)
        return app

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"queued": self.waiting, "limit": self.settings.queue_limit, **self.counts})

    def _refuse(self, status: int, source: str, reason: str) -> web.Response:
        self.counts["refused" if status == 401 else "malformed"] += 1
        log.warning("webhook for source %r refused (%s): %s", source, status, reason)
        return web.json_response({"error": reason}, status=status)

    def _check_token(self, keys: SourceKeys, request: web.Request) -> str | None:
        token = request.match_info.get("token")
        if keys.token is None:
            return f"source has no webhook_token secret configured ({keys.platform.value} sends no signature)"
        if token is None or not hmac.compare_digest(token.encode(), keys.token.encode()):
            return "wrong or missing token in the webhook URL"
        return None

    def _uri(self, request: web.Request) -> str:
        """The URI HubSpot signed: the public address it was given (behind a proxy), or this one."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/") + request.rel_url.raw_path_qs
        return str(request.url)

    async def validate(self, request: web.Request) -> web.Response:
        name = request.match_info["source"]
        keys = self.keys.get(name)
        if keys is None or keys.platform is not Platform.MAILCHIMP:
            return web.json_response({"error": "no such webhook"}, status=404)
        if request.match_info.get("token") is not None or keys.secret is None:
            problem = self._check_token(keys, request)
            if problem:
                return self._refuse(401, name, problem)
        return web.json_response({"ok": True})  # mailchimp.md §10: the GET that validates the URL

    async def deliver(self, request: web.Request) -> web.Response:
        name = request.match_info["source"]
        keys = self.keys.get(name)
        if keys is None:
            log.warning(
                "webhook for unknown source %r refused (404); configured: %s", name, sorted(self.keys)
            )
            return web.json_response({"error": "no such webhook"}, status=404)
        body = await request.read()
        signature: str | None = None
        try:
            if keys.platform is Platform.HUBSPOT:
                if keys.secret is None:
                    return self._refuse(401, name, "source has no webhook_secret (the app's client secret)")
                signature = request.headers.get("X-HubSpot-Signature-v3")
                verify_hubspot_v3(
                    secret=keys.secret,
                    method=request.method,
                    uri=self._uri(request),
                    body=body.decode("utf-8", errors="replace"),
                    signature=signature,
                    timestamp=request.headers.get("X-HubSpot-Request-Timestamp"),
                    now_s=self.clock(),
                    tolerance_s=self.settings.tolerance,
                )
            elif keys.platform is Platform.MAILCHIMP and keys.secret is not None:
                signature = request.headers.get("X-Mailchimp-Signature")
                verify_mailchimp(
                    secret=keys.secret,
                    header=signature,
                    body=body,
                    now_s=self.clock(),
                    tolerance_s=self.settings.tolerance,
                )
            else:
                problem = self._check_token(keys, request)
                if problem:
                    return self._refuse(401, name, problem)
        except BadSignature as exc:
            return self._refuse(401, name, str(exc))
        try:
            parsed = parse(keys.platform, body, request.content_type)
        except Malformed as exc:
            return self._refuse(400, name, f"malformed {keys.platform.value} delivery: {exc}")
        for kind in parsed.ignored:
            log.info("webhook for source %r: event type %r is not about a person; ignored", name, kind)
        if not parsed.deliveries:
            return web.json_response({"queued": 0, "ignored": len(parsed.ignored)})
        if not self._reserve(len(parsed.deliveries)):
            self.counts["throttled"] += 1
            return web.json_response(
                {"error": "too many deliveries waiting; retry later"},
                status=429,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        request_row = queue.Enqueue(
            name,
            parsed.deliveries,
            signature_digest(signature) if signature else None,
            datetime.fromtimestamp(self.clock(), UTC),
        )
        try:
            await self._commit(request_row)  # its reservation is settled with the commit
        except LeadsyncError as exc:
            log.error("webhook for source %r not stored: %s", name, exc)
            return web.json_response({"error": "could not store the delivery"}, status=503)
        if request_row.replay:
            return self._refuse(401, name, "replayed delivery (this signature was already received)")
        self.counts["accepted"] += request_row.queued
        self.counts["duplicates"] += len(parsed.deliveries) - request_row.queued
        return web.json_response({"queued": request_row.queued})

    # --- the group-commit writer --------------------------------------------------------------

    def _store(self, requests: list[queue.Enqueue]) -> None:
        """Commit the requests' rows and settle their reservations (redeliveries and replays took
        no room; a failed commit stored nothing)."""
        with self._ledger:
            try:
                queue.enqueue_many(self.engine, requests)
            except BaseException:
                for request in requests:
                    self._settle(len(request.deliveries), 0)
                raise
            for request in requests:
                self._settle(len(request.deliveries), request.queued)

    async def _commit(self, request: queue.Enqueue) -> None:
        assert self._pending is not None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._pending.put((request, done))
        await done

    async def _start_writer(self, _: web.Application) -> None:
        self._pending = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())

    async def _stop_writer(self, _: web.Application) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_loop(self) -> None:
        assert self._pending is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._pending.get()]
            while len(batch) < GROUP and not self._pending.empty():
                batch.append(self._pending.get_nowait())
            requests = [request for request, _ in batch]
            try:
                await loop.run_in_executor(None, self._store, requests)
            except Exception as exc:  # noqa: BLE001 - every waiting request is answered 503, and logged
                log.exception("could not store %d webhook request(s)", len(batch))
                for _, done in batch:
                    if not done.done():
                        done.set_exception(LeadsyncError(f"store error: {type(exc).__name__}"))
                continue
            if any(request.queued for request in requests):
                self.notify()
            for _, done in batch:
                if not done.done():
                    done.set_result(None)


class ReceiverServer:
    """Runs a ``Receiver`` on ``host:port``, in the foreground or on a background thread."""

    def __init__(self, receiver: Receiver, *, host: str, port: int) -> None:
        self.receiver, self.host, self.port = receiver, host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def serve_async(self, stop: threading.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        runner = web.AppRunner(self.receiver.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        log.info("webhook receiver listening on %s", self.url)
        self._ready.set()
        try:
            while not self._stopped.is_set() and not (stop and stop.is_set()):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), 0.2)
        finally:
            await runner.cleanup()

    def start(self) -> ReceiverServer:
        def run() -> None:
            try:
                asyncio.run(self.serve_async())
            except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
                self._error = exc
                self._ready.set()

        self._thread = threading.Thread(target=run, name="leadsync-webhooks", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise LeadsyncError(f"the webhook receiver could not start on {self.url}: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ReceiverServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
