"""``leadsync daemon --metrics-port P``: ``/healthz`` and ``/metrics`` on a small HTTP server.

* ``/metrics``: the Prometheus text format, through prometheus-client's own WSGI app over a
  registry holding ``sync.metrics.StoreCollector`` (the store's figures) and this process's
  scheduler state.
* ``/healthz``: 200 while the scheduler is alive and no enabled source has failed its last
  ``[alerts] failures`` runs; 503 otherwise. The body is JSON and says why.

It binds 127.0.0.1 unless ``--metrics-host`` says otherwise, and runs on its own threads (the
``wsgiref`` server prometheus-client uses for ``start_http_server``), so a slow scrape never
delays a sync. A port that cannot be bound is a one-line error (exit 2) before the daemon starts.

``monitoring(...)`` wires the server and the ``[alerts]`` monitor around a running ``Daemon``.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from leadsync.config.settings import LeadsyncConfig
from leadsync.connectors.errors import ConfigError
from leadsync.sync.logsetup import REDACTOR
from leadsync.sync.metrics import StoreCollector, pending_writes, source_health

__all__ = ["HealthServer", "health", "monitoring"]

log = logging.getLogger("leadsync.health")

DEFAULT_HOST = "127.0.0.1"

Alive = Callable[[], tuple[bool, str]]  # (alive, what the scheduler is doing)


def health(
    engine: Engine, sources: Iterable[str], *, failures: int, alive: Alive
) -> tuple[int, dict[str, Any]]:
    """The ``/healthz`` answer: (status, JSON body)."""
    ok, scheduler = alive()
    reasons: list[str] = [] if ok else [f"scheduler {scheduler}"]
    body: dict[str, Any] = {"scheduler": scheduler, "failures_threshold": failures}
    try:
        states = source_health(engine, list(sources))
    except SQLAlchemyError as exc:
        reasons.append(f"store unavailable: {REDACTOR.text(str(exc).splitlines()[0])}")
        states = {}
    body["sources"] = {name: state.as_json() for name, state in states.items()}
    for name, state in states.items():
        if state.streak >= failures:
            reasons.append(
                f"source {name!r} failed its last {state.streak} runs"
                + (f": {state.last_error}" if state.last_error else "")
            )
    body["status"] = "failing" if reasons else "ok"
    body["reasons"] = reasons
    return (503 if reasons else 200), body


class _SchedulerCollector(Collector):
    def __init__(self, alive: Alive) -> None:
        self.alive = alive

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("leadsync_scheduler_up", "1 while this process's scheduler is running.")
        family.add_metric([], 1 if self.alive()[0] else 0)
        yield family


class _QuietHandler(WSGIRequestHandler):
    """Requests go to the debug log, not to stderr (scrapes come every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s " + format, self.address_string(), *args)


class HealthServer:
    """The HTTP server, on a thread. ``port`` 0 picks a free port (``.port`` says which)."""

    def __init__(
        self,
        engine: Engine,
        config: LeadsyncConfig,
        *,
        alive: Alive,
        port: int,
        host: str = DEFAULT_HOST,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.engine = engine
        self.sources = [source.name for source in config.sources if source.enabled]
        self.failures = config.alerts.failures
        self.alive = alive
        if registry is None:
            registry = CollectorRegistry()
            registry.register(
                StoreCollector(engine, sources=self.sources, pending=pending_writes(engine, config))
            )
            registry.register(_SchedulerCollector(alive))
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        self.registry = registry
        self._metrics_app = make_wsgi_app(registry)
        self.server = _bind(host, port, self._app)
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            status, body = health(self.engine, self.sources, failures=self.failures, alive=self.alive)
            payload = json.dumps(body, indent=2).encode()
            start_response(
                "200 OK" if status == 200 else "503 Service Unavailable",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        if path in {"/metrics", "/metrics/"}:
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        payload = b'{"error": "not found; try /metrics or /healthz"}'
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [payload]

    def start(self) -> HealthServer:
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        log.info("serving /metrics and /healthz on http://%s:%d", self.host, self.port)
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _bind(host: str, port: int, app: Callable[..., Any]) -> Any:
    """The WSGI server on ``host`` (a name, an IPv4 or IPv6 address) and ``port``, or a ConfigError
    naming the option to change."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:
        raise ConfigError(
            f"{host!r} is not an address this machine can listen on ({getattr(exc, 'strerror', None) or exc})",
            key="--metrics-host",
        ) from None

    class Server(ThreadingWSGIServer):
        address_family = family

    try:
        return make_server(str(address[0]), port, app, Server, handler_class=_QuietHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use; stop what holds it or choose another port",
                key="--metrics-port",
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"port {port} on {host} needs privileges; choose a port above 1023", key="--metrics-port"
            ) from None
        raise ConfigError(
            f"cannot listen on {host} port {port}: {exc.strerror or exc}", key="--metrics-host"
        ) from None


def scheduler_alive(daemon: Any) -> Alive:
    """The ``Alive`` of a ``sync.scheduler.Daemon``: its APScheduler running, its thread alive."""

    def alive() -> tuple[bool, str]:
        if daemon.stop.is_set():
            return False, "stopping"
        scheduler = daemon.scheduler
        if not scheduler.running:
            return False, "not running"
        thread = getattr(scheduler, "_thread", None)  # BackgroundScheduler's loop
        if thread is not None and not thread.is_alive():
            return False, "thread died"
        return True, "running"

    return alive


@contextmanager
def monitoring(
    daemon: Any,
    engine: Engine,
    config: LeadsyncConfig,
    *,
    port: int | None,
    host: str = DEFAULT_HOST,
) -> Iterator[None]:
    """Around ``daemon.run()``: the metrics server when ``port`` is given, the ``[alerts]`` monitor
    when ``[alerts]`` names a command or a URL. Both are set up (and fail) before the daemon starts."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    from leadsync.sync.alerts import AlertMonitor

    with ExitStack() as stack:
        if port is not None:
            server = HealthServer(engine, config, alive=scheduler_alive(daemon), port=port, host=host)
            stack.callback(server.close)
            server.start()
        if config.alerts.enabled:
            monitor = AlertMonitor(engine, config)
            stack.callback(monitor.close)
            daemon.scheduler.add_listener(monitor.wake, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
            monitor.start()
        yield
