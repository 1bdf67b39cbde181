"""/metrics and /healthz over the store: the collector's figures from both shapes of run rows, the
failure streaks, counters that never go down, the health answer and a port that is in use."""

from __future__ import annotations

import socket
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from leadsync.config.settings import LeadsyncConfig
from leadsync.connectors.errors import ConfigError
from leadsync.sync.health import HealthServer, health
from leadsync.sync.metrics import StoreCollector, source_health
from leadsync.sync.runs import Outcome, RunCounts, Step, Trigger, finish_run, prune_runs, start_run
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Quarantine, SyncRun, WritebackAudit

NOW = datetime(2026, 12, 1, tzinfo=UTC)


PG_ADMIN = "host=127.0.0.1 user=postgres dbname=postgres connect_timeout=3"


@contextmanager
def store(kind: str, tmp_path):
    """A fresh migrated store: SQLite in ``tmp_path``, or a new PostgreSQL database (skipped when
    there is no psycopg or no server on 127.0.0.1:5432)."""
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        yield engine
        engine.dispose()
        return
    psycopg = pytest.importorskip("psycopg")
    name = f"leadsync_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {exc}")
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    with store(request.param, tmp_path) as engine:
        yield engine


def _new_run(engine, source, step, outcome, *, counts=None, trigger=Trigger.DAEMON, started=NOW, error=None):
    """A run as sync.runs records it (step, trigger, the newer counters)."""
    run_id = start_run(
        engine, source=source, step=step, trigger=trigger, command="sync", worker="w", now=started
    )
    finish_run(
        engine,
        run_id,
        outcome=outcome,
        counts=RunCounts(**(counts or {})),
        error=error,
        now=started + timedelta(seconds=5),
    )
    return run_id


def _old_run(engine, source, command, ok, counts, error=None):
    """A run as the pipeline recorded it before run history (the step only in ``command``): a store
    upgraded from round one holds such rows."""
    with engine.begin() as connection:
        inserted = connection.execute(
            SyncRun.__table__.insert().values(
                source=source,
                command=command,
                started_at=NOW,
                finished_at=NOW,
                status="ok" if ok else "failed",
                counts=dict(counts),
                error=error,
            )
        )
        return int(inserted.inserted_primary_key[0])


def _scrape(collector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    samples = {}
    for family in text_string_to_metric_families(text):  # the acceptance: prometheus-client parses it
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples, name, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_parse_and_count_runs_records_writes_429s_retries_from_both_run_shapes(engine) -> None:
    _old_run(engine, "mailchimp", "pull", True, {"contacts": 10, "events": 30, "quarantined": 2})
    _old_run(engine, "mailchimp", "push", True, {"planned": 8, "written": 7, "failed": 1, "requests": 9})
    _new_run(
        engine,
        "hubspot",
        Step.PULL,
        Outcome.OK,
        counts={
            "records_read": 50,
            "upserted": 48,
            "quarantined": 2,
            "requests": 12,
            "throttled": 3,
            "retries": 4,
        },
    )
    _new_run(engine, "hubspot", Step.PULL, Outcome.FAILED, counts={"requests": 2, "retries": 1}, error="boom")
    _new_run(
        engine, "hubspot", Step.PUSH, Outcome.OK, counts={"written": 5, "write_failures": 2, "requests": 3}
    )
    start_run(engine, source="hubspot", step=Step.PULL, trigger=Trigger.DAEMON, command="sync", worker="w")
    with engine.begin() as connection:
        connection.execute(
            WritebackAudit.__table__.insert(),
            [
                {"source": "hubspot", "remote_id": "1", "field": "grade", "status": "written", "at": NOW},
                {"source": "hubspot", "remote_id": "2", "field": "grade", "status": "written", "at": NOW},
                {"source": "hubspot", "remote_id": "3", "field": "grade", "status": "failed", "at": NOW},
                {"source": "hubspot", "remote_id": "4", "field": "grade", "status": "dry_run", "at": NOW},
            ],
        )
        connection.execute(
            Quarantine.__table__.insert(),
            [
                {
                    "source": "mailchimp",
                    "stream": "members",
                    "reason": "x",
                    "created_at": NOW,
                    "last_seen_at": NOW,
                    "resolved_at": None,
                },
                {
                    "source": "mailchimp",
                    "stream": "members",
                    "reason": "y",
                    "created_at": NOW,
                    "last_seen_at": NOW,
                    "resolved_at": NOW,
                },
            ],
        )
    samples = _scrape(
        StoreCollector(engine, sources=["hubspot", "mailchimp"], pending=lambda: {"hubspot": 4})
    )

    assert _value(samples, "leadsync_store_up") == 1
    # old rows: the step from ``command``, the trigger the column's default
    assert (
        _value(
            samples, "leadsync_runs_total", source="mailchimp", step="pull", trigger="command", outcome="ok"
        )
        == 1
    )
    assert (
        _value(
            samples, "leadsync_runs_total", source="mailchimp", step="push", trigger="command", outcome="ok"
        )
        == 1
    )
    assert (
        _value(samples, "leadsync_runs_total", source="hubspot", step="pull", trigger="daemon", outcome="ok")
        == 1
    )
    assert (
        _value(
            samples, "leadsync_runs_total", source="hubspot", step="pull", trigger="daemon", outcome="failed"
        )
        == 1
    )
    assert _value(samples, "leadsync_run_failures_total", source="hubspot", step="pull") == 1
    assert _value(samples, "leadsync_runs_running", source="hubspot", step="pull") == 1
    assert _value(samples, "leadsync_records_read_total", source="mailchimp", step="pull") == 42
    assert _value(samples, "leadsync_records_upserted_total", source="mailchimp", step="pull") == 40
    assert _value(samples, "leadsync_records_read_total", source="hubspot", step="pull") == 50
    assert _value(samples, "leadsync_records_upserted_total", source="hubspot", step="pull") == 48
    assert _value(samples, "leadsync_records_quarantined_total", source="hubspot", step="pull") == 2
    assert _value(samples, "leadsync_requests_total", source="hubspot", step="pull") == 14
    assert _value(samples, "leadsync_rate_limited_total", source="hubspot", step="pull") == 3
    assert _value(samples, "leadsync_retries_total", source="hubspot", step="pull") == 5
    assert _value(samples, "leadsync_requests_total", source="mailchimp", step="push") == 9
    assert _value(samples, "leadsync_run_write_failures_total", source="mailchimp", step="push") == 1
    assert _value(samples, "leadsync_run_write_failures_total", source="hubspot", step="push") == 2
    assert _value(samples, "leadsync_writes_total", source="hubspot", result="written") == 2
    assert _value(samples, "leadsync_writes_total", source="hubspot", result="failed") == 1
    assert _value(samples, "leadsync_writes_total", source="hubspot", result="dry_run") is None
    assert _value(samples, "leadsync_quarantined_records", source="mailchimp") == 1
    assert _value(samples, "leadsync_pending_writes", source="hubspot") == 4
    assert _value(samples, "leadsync_consecutive_failures", source="hubspot") == 1
    assert _value(samples, "leadsync_consecutive_failures", source="mailchimp") == 0
    assert _value(
        samples, "leadsync_last_success_timestamp_seconds", source="hubspot", step="push"
    ) == pytest.approx((NOW + timedelta(seconds=5)).timestamp())


def test_audit_writes_are_counted_incrementally_and_counters_survive_pruning(engine) -> None:
    collector = StoreCollector(engine)
    old = NOW - timedelta(days=200)
    for _ in range(3):
        _new_run(engine, "hubspot", Step.PULL, Outcome.FAILED, started=old, counts={"requests": 1})
    _new_run(engine, "hubspot", Step.PULL, Outcome.OK, counts={"requests": 1})
    running = start_run(
        engine, source="hubspot", step=Step.PULL, trigger=Trigger.DAEMON, command="sync", worker="w"
    )
    first = _scrape(collector)
    assert _value(first, "leadsync_run_failures_total", source="hubspot", step="pull") == 3
    assert _value(first, "leadsync_requests_total", source="hubspot", step="pull") == 4

    assert prune_runs(engine, older_than=timedelta(days=90), now=NOW) == 3
    _new_run(engine, "hubspot", Step.PULL, Outcome.FAILED, counts={"requests": 1})
    finish_run(
        engine, running, outcome=Outcome.FAILED, counts=RunCounts(requests=2), error="x"
    )  # counted once, now
    with engine.begin() as connection:
        connection.execute(
            WritebackAudit.__table__.insert(),
            [{"source": "hubspot", "remote_id": "1", "field": "grade", "status": "written", "at": NOW}],
        )
    second = _scrape(collector)
    # the pruned runs stay counted in this process: a counter never goes down
    assert _value(second, "leadsync_run_failures_total", source="hubspot", step="pull") == 5
    assert _value(second, "leadsync_requests_total", source="hubspot", step="pull") == 7
    assert _value(_scrape(collector), "leadsync_requests_total", source="hubspot", step="pull") == 7
    assert _value(second, "leadsync_writes_total", source="hubspot", result="written") == 1
    with engine.begin() as connection:
        connection.execute(
            WritebackAudit.__table__.insert(),
            [{"source": "hubspot", "remote_id": "2", "field": "grade", "status": "written", "at": NOW}],
        )
    assert _value(_scrape(collector), "leadsync_writes_total", source="hubspot", result="written") == 2


def test_a_store_that_does_not_answer_reports_store_down_not_an_error(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE syncrun")
    samples = _scrape(StoreCollector(engine))
    assert _value(samples, "leadsync_store_up") == 0
    engine.dispose()


def test_streak_counts_failed_and_interrupted_runs_since_the_last_success(engine) -> None:
    _new_run(engine, "hubspot", Step.PULL, Outcome.FAILED)
    _new_run(engine, "hubspot", Step.PULL, Outcome.OK)
    first = _new_run(engine, "hubspot", Step.PULL, Outcome.FAILED, error="401")
    _new_run(engine, "hubspot", Step.PULL, Outcome.STOPPED)  # asked to stop: neither way
    _new_run(engine, "hubspot", Step.PUSH, Outcome.OK)  # a push that works does not hide failing pulls
    _new_run(engine, "hubspot", Step.PULL, Outcome.INTERRUPTED, error="killed")
    _new_run(engine, "*", Step.SCORE, Outcome.FAILED)  # scoring is not a source's run
    _old_run(engine, "mailchimp", "pull", False, {}, error="old shape")
    health = source_health(engine, ["hubspot", "mailchimp", "activecampaign"])
    assert health["hubspot"].streak == 2
    assert health["hubspot"].streak_started == first
    assert health["hubspot"].last_error == "killed"
    assert health["mailchimp"].streak == 1
    assert health["activecampaign"].streak == 0 and health["activecampaign"].last_success_at is None

    _new_run(engine, "hubspot", Step.PULL, Outcome.OK)
    assert source_health(engine, ["hubspot"])["hubspot"].streak == 0


def test_healthz_answers_503_with_the_reason_when_a_source_failed_its_last_n_runs(engine) -> None:
    alive = lambda: (True, "running")  # noqa: E731
    for _ in range(2):
        _new_run(engine, "mailchimp", Step.PULL, Outcome.FAILED, error="API Key Invalid")
    assert health(engine, ["mailchimp"], failures=3, alive=alive)[0] == 200
    _new_run(engine, "mailchimp", Step.PULL, Outcome.FAILED, error="API Key Invalid")
    status, body = health(engine, ["mailchimp"], failures=3, alive=alive)
    assert status == 503 and body["status"] == "failing"
    assert body["reasons"] == ["source 'mailchimp' failed its last 3 runs: API Key Invalid"]
    assert body["sources"]["mailchimp"]["consecutive_failures"] == 3

    _new_run(engine, "mailchimp", Step.PULL, Outcome.OK)
    assert health(engine, ["mailchimp"], failures=3, alive=alive)[0] == 200
    status, body = health(engine, ["mailchimp"], failures=3, alive=lambda: (False, "stopping"))
    assert status == 503 and body["reasons"] == ["scheduler stopping"]


def test_health_server_serves_both_paths_and_refuses_a_port_in_use(engine) -> None:
    config = LeadsyncConfig.model_validate({"sources": [{"name": "hubspot", "platform": "hubspot"}]})
    server = HealthServer(engine, config, alive=lambda: (True, "running"), port=0).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            text = client.get("/metrics").text
            names = {family.name for family in text_string_to_metric_families(text)}
            assert {"leadsync_store_up", "leadsync_scheduler_up", "leadsync_runs"} <= names
            assert client.get("/other").status_code == 404
        with pytest.raises(
            ConfigError, match=rf"--metrics-port: port {server.port} on 127.0.0.1 is already in use"
        ):
            HealthServer(engine, config, alive=lambda: (True, "running"), port=server.port)
    finally:
        server.close()
    with socket.socket() as taken:  # any other program holding the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="already in use"):
            HealthServer(engine, config, alive=lambda: (True, "running"), port=taken.getsockname()[1])


def test_pending_writes_are_counted_at_most_once_a_minute_and_never_hold_up_a_scrape(engine) -> None:
    import threading

    now = [0.0]
    calls: list[float] = []
    release = threading.Event()
    release.set()

    def pending() -> dict[str, int]:
        calls.append(now[0])
        release.wait(10)
        return {"hubspot": len(calls)}

    collector = StoreCollector(engine, pending=pending, clock=lambda: now[0])
    assert _value(_scrape(collector), "leadsync_pending_writes", source="hubspot") == 1  # the first waits
    now[0] = 30.0
    assert _value(_scrape(collector), "leadsync_pending_writes", source="hubspot") == 1
    assert calls == [0.0]
    now[0] = 61.0
    release.clear()  # a slow count: the scrape answers with the last one meanwhile
    assert _value(_scrape(collector), "leadsync_pending_writes", source="hubspot") == 1
    release.set()
    collector._pending_thread.join(5)
    assert _value(_scrape(collector), "leadsync_pending_writes", source="hubspot") == 2
    assert calls == [0.0, 61.0]


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("nosuch.invalid", "--metrics-host: 'nosuch.invalid' is not an address this machine can listen on"),
        ("192.0.2.1", "--metrics-host: cannot listen on 192.0.2.1 port"),  # TEST-NET-1: not this machine's
    ],
)
def test_a_host_that_cannot_be_listened_on_names_metrics_host(engine, host: str, message: str) -> None:
    config = LeadsyncConfig.model_validate({"sources": [{"name": "hubspot", "platform": "hubspot"}]})
    with pytest.raises(ConfigError, match=message):
        HealthServer(engine, config, alive=lambda: (True, "running"), port=0, host=host)


def test_health_server_listens_on_ipv6_loopback(engine) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    config = LeadsyncConfig.model_validate({"sources": [{"name": "hubspot", "platform": "hubspot"}]})
    try:
        server = HealthServer(engine, config, alive=lambda: (True, "running"), port=0, host="::1").start()
    except ConfigError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert httpx.get(f"http://[::1]:{server.port}/healthz", timeout=10).status_code == 200
    finally:
        server.close()


def test_monitoring_serves_while_the_daemon_runs_and_stops_within_2s(engine) -> None:
    import threading
    import time
    from types import SimpleNamespace

    from apscheduler.schedulers.background import BackgroundScheduler

    from leadsync.sync.health import monitoring

    config = LeadsyncConfig.model_validate(
        {
            "alerts": {"url": "http://127.0.0.1:9/hook"},
            "sources": [{"name": "hubspot", "platform": "hubspot", "secrets": {"token": "T"}}],
        }
    )
    scheduler = BackgroundScheduler()
    daemon = SimpleNamespace(stop=threading.Event(), scheduler=scheduler)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with monitoring(daemon, engine, config, port=port):
        url = f"http://127.0.0.1:{port}/healthz"
        assert httpx.get(url, timeout=10).json()["reasons"] == ["scheduler not running"]
        scheduler.start()
        assert httpx.get(url, timeout=10).status_code == 200
        daemon.stop.set()
        assert httpx.get(url, timeout=10).json()["scheduler"] == "stopping"
        scheduler.shutdown()
        started = time.monotonic()
    assert time.monotonic() - started < 2
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
