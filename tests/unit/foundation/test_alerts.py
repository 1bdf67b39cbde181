"""[alerts]: once per streak, credentials refused, recovery, the command channel, no secret sent,
and the config's checks."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest

from leadsync.config.settings import LeadsyncConfig
from leadsync.connectors.errors import ConfigError
from leadsync.sync.alerts import Alert, AlertMonitor, Notifier
from leadsync.sync.logsetup import REDACTOR
from leadsync.sync.runs import Outcome, RunCounts, Step, Trigger, finish_run, start_run
from tests.unit.foundation.test_metrics import store

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SECRET = "pat-na1-unit-secret-4242"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    with store(request.param, tmp_path) as engine:
        yield engine


def _config(**alerts) -> LeadsyncConfig:
    return LeadsyncConfig.model_validate(
        {
            "alerts": {"failures": 3, "url": "http://127.0.0.1:9/hook", **alerts},
            "sources": [
                {"name": "hubspot", "platform": "hubspot", "secrets": {"token": "HUBSPOT_TOKEN"}},
                {"name": "mailchimp", "platform": "mailchimp", "secrets": {"api_key": "MAILCHIMP_KEY"}},
            ],
        }
    )


def _run(engine, source: str, outcome: Outcome, error: str | None = None, step: Step = Step.PULL) -> int:
    run_id = start_run(
        engine, source=source, step=step, trigger=Trigger.DAEMON, command="sync", worker="w", now=NOW
    )
    finish_run(
        engine, run_id, outcome=outcome, counts=RunCounts(), error=error, now=NOW + timedelta(seconds=1)
    )
    return run_id


class Recorder:
    def __init__(self, accept: bool = True) -> None:
        self.sent: list[Alert] = []
        self.accept = accept

    def __call__(self, alert: Alert) -> bool:
        if self.accept:
            self.sent.append(alert)
        return self.accept


def test_failing_alert_goes_out_once_per_streak_and_recovery_is_said(engine) -> None:
    sent = Recorder()
    monitor = AlertMonitor(engine, _config(), notify=sent, probe=lambda source: None)
    for _ in range(2):
        _run(engine, "hubspot", Outcome.FAILED, "HubSpot answered 500")
        assert monitor.check() == []
    _run(engine, "hubspot", Outcome.FAILED, "HubSpot answered 500")
    assert [(a.kind, a.source, a.consecutive_failures) for a in monitor.check()] == [
        ("failing", "hubspot", 3)
    ]
    _run(engine, "hubspot", Outcome.FAILED, "HubSpot answered 500")
    _run(engine, "hubspot", Outcome.STOPPED)
    assert monitor.check() == []  # the same streak: no second alert
    assert "failed its last 3 runs; last error: HubSpot answered 500" in sent.sent[0].text

    _run(engine, "hubspot", Outcome.OK)
    assert [a.kind for a in monitor.check()] == ["recovered"]
    assert monitor.check() == []
    for _ in range(3):  # a new streak alerts again
        _run(engine, "hubspot", Outcome.FAILED, "down")
    assert [a.kind for a in monitor.check()] == ["failing"]
    assert [a.kind for a in sent.sent] == ["failing", "recovered", "failing"]


def test_refused_credentials_alert_on_the_first_failed_run_once(engine) -> None:
    sent = Recorder()
    probes: list[str] = []

    def probe(source) -> str | None:
        probes.append(source.name)
        return (
            "source 'mailchimp': 401 API Key Invalid; check MAILCHIMP_KEY"
            if source.name == "mailchimp"
            else None
        )

    monitor = AlertMonitor(engine, _config(), notify=sent, probe=probe)
    _run(engine, "mailchimp", Outcome.FAILED, "401")
    _run(engine, "hubspot", Outcome.FAILED, "500")
    assert [(a.kind, a.source) for a in monitor.check()] == [("credentials", "mailchimp")]
    assert monitor.check() == []  # no new failed run: no new probe
    _run(engine, "mailchimp", Outcome.FAILED, "401")
    _run(engine, "hubspot", Outcome.FAILED, "500")
    assert monitor.check() == []  # mailchimp's credentials alert went out for this streak already
    assert probes == ["hubspot", "mailchimp", "hubspot"]  # hubspot's second failure probed again
    assert "MAILCHIMP_KEY" in sent.sent[0].text


def test_pull_and_push_failing_in_turn_are_one_streak_and_alert_once(engine) -> None:
    """Revoked credentials fail the pull and the push; as each becomes the longer streak in turn,
    the source's streak is still the one that began with its first failure (no second alert)."""
    sent = Recorder()
    monitor = AlertMonitor(
        engine, _config(), notify=sent, probe=lambda source: "401 API Key Invalid; check MAILCHIMP_KEY"
    )
    for step in (Step.PULL, Step.PUSH, Step.PUSH, Step.PULL, Step.PULL, Step.PUSH, Step.PUSH):
        _run(engine, "mailchimp", Outcome.FAILED, "401", step=step)
        monitor.check()
    assert sorted(a.kind for a in sent.sent) == ["credentials", "failing"]


def test_a_delivery_that_fails_is_tried_again_at_the_next_check(engine) -> None:
    sent = Recorder(accept=False)
    monitor = AlertMonitor(engine, _config(failures=1), notify=sent, probe=lambda source: None)
    _run(engine, "hubspot", Outcome.FAILED, "500")
    assert monitor.check() == []
    sent.accept = True
    assert [a.kind for a in monitor.check()] == ["failing"]
    assert monitor.check() == []


def test_alert_payload_is_slack_shaped_and_carries_no_secret(engine) -> None:
    REDACTOR.add(SECRET)
    sent = Recorder()
    monitor = AlertMonitor(engine, _config(failures=1), notify=sent, probe=lambda source: None)
    _run(engine, "hubspot", Outcome.FAILED, f"refused Authorization: Bearer {SECRET}")
    (alert,) = monitor.check()
    payload = alert.payload()
    assert isinstance(payload["text"], str) and payload["source"] == "hubspot"
    assert SECRET not in json.dumps(payload)


def test_command_gets_the_alert_on_stdin_without_the_sources_secret_variables(tmp_path) -> None:
    out = tmp_path / "alert.json"
    script = (
        "import json, os, sys; "
        f"json.dump({{'stdin': json.load(sys.stdin), 'env': dict(os.environ)}}, open({str(out)!r}, 'w'))"
    )
    notifier = Notifier(
        _config(url=None, command=[sys.executable, "-c", script]).alerts,
        secret_variables={"HUBSPOT_TOKEN"},
        environ={"HUBSPOT_TOKEN": SECRET, "PATH": "/usr/bin"},
    )
    assert notifier(Alert("failing", "hubspot", "leadsync: source 'hubspot' failed its last 3 runs"))
    got = json.loads(out.read_text())
    assert got["stdin"]["text"] == "leadsync: source 'hubspot' failed its last 3 runs"
    assert got["env"]["LEADSYNC_ALERT_KIND"] == "failing" and got["env"]["LEADSYNC_ALERT_SOURCE"] == "hubspot"
    assert "HUBSPOT_TOKEN" not in got["env"] and SECRET not in out.read_text()

    failing = Notifier(
        _config(url=None, command=[sys.executable, "-c", "raise SystemExit(3)"]).alerts,
        secret_variables=set(),
        environ={},
    )
    assert not failing(Alert("failing", "hubspot", "x"))


def test_alerts_config_is_checked() -> None:
    assert not LeadsyncConfig().alerts.enabled and LeadsyncConfig().alerts.failures == 3
    with pytest.raises(ValueError, match="url or url_env, not both"):
        _config(url_env="SLACK_WEBHOOK")
    with pytest.raises(ValueError, match="not an http or https URL"):
        _config(url="hooks.slack.com/x")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        _config(failures=0)
    with pytest.raises(ConfigError, match="SLACK_WEBHOOK is not set"):
        Notifier(_config(url=None, url_env="SLACK_WEBHOOK").alerts, secret_variables=set(), environ={})


def test_webhook_text_is_escaped_as_slack_reads_it() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    bodies: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        notifier = Notifier(_config(url=url).alerts, secret_variables=set(), environ={})
        assert notifier(Alert("failing", "hubspot", "error <html> & more"))
    finally:
        server.shutdown()
        server.server_close()
    assert bodies[0]["text"] == "error &lt;html&gt; &amp; more" and bodies[0]["kind"] == "failing"


def test_a_check_in_flight_does_not_hold_up_the_daemons_exit(engine) -> None:
    import threading
    import time

    probing = threading.Event()

    def slow_probe(source) -> None:
        probing.set()
        time.sleep(10)  # a platform that does not answer

    monitor = AlertMonitor(engine, _config(), notify=Recorder(), probe=slow_probe)
    _run(engine, "hubspot", Outcome.FAILED, "timeout")
    monitor.start()
    assert probing.wait(10)
    started = time.monotonic()
    monitor.close()
    assert time.monotonic() - started < 2
