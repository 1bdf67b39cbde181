"""Issue 19, health and metrics (acceptance 6, and the port-in-use case of 7), end to end: a
``leadsync daemon --metrics-port`` subprocess against the sandbox over loopback HTTP.

/metrics parses with prometheus-client's own parser; /healthz turns 503 when the sandbox revokes a
source's credentials and 200 again after a successful run; [alerts] POSTs once per streak to a local
HTTP server, and nothing it sends holds a secret. A port in use is a one-line error, exit 2.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.pipeline.harness import Leadsync, serve
from tests.integration.pipeline.test_daemon import Daemon


class MetricsDaemon(Daemon):
    """``leadsync daemon`` with options (test_daemon's helper starts it without any)."""

    def __init__(self, lead: Leadsync, *args: str) -> None:
        self.process = lead.start("daemon", *args)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


SERVING = re.compile(r"serving /metrics and /healthz on http://127\.0\.0\.1:(\d+)")


def _served_port(daemon: MetricsDaemon) -> int:
    """The port a daemon started with ``--metrics-port 0`` listens on, from its log: a port picked
    beforehand could be taken by another process before the daemon binds it (it was, once)."""
    found = SERVING.search(daemon.log)
    assert found, daemon.log
    return int(found.group(1))


@contextmanager
def hook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver (as Slack's would be): the JSON bodies POSTed to it, in order."""
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"raw": body.decode(), **json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _configure(lead: Leadsync, *, hook: str, failures: int) -> None:
    document = tomllib.loads(lead.config.read_text(encoding="utf-8"))
    for source in document["sources"]:
        source["interval"] = 1
    document["alerts"] = {"failures": failures, "url": hook}
    lead.config.write_text(tomli_w.dumps(document), encoding="utf-8")


def _wait(what: str, condition: Callable[[], Any], daemon: Daemon, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert daemon.process.poll() is None, daemon.log
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{daemon.log[-4000:]}")


def test_healthz_turns_503_when_credentials_are_revoked_and_200_after_a_success(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server, hook_server() as (hook, received):
        lead = Leadsync.create(server, tmp_path / "h")
        _configure(lead, hook=hook, failures=2)
        secrets = [
            value
            for source in tomllib.loads(lead.config.read_text())["sources"]
            for value in source["inline_secrets"].values()
        ]
        secrets += [value.rsplit("-", 1)[0] for value in secrets if "-us" in value]  # Mailchimp's key stem
        daemon = MetricsDaemon(lead, "--metrics-port", "0")
        daemon.wait_started()
        client = httpx.Client(base_url=f"http://127.0.0.1:{_served_port(daemon)}", timeout=10)
        try:

            def healthz() -> tuple[int, dict[str, Any]]:
                answer = client.get("/healthz")
                return answer.status_code, answer.json()

            def families() -> dict[str, Any]:
                text = client.get("/metrics").text  # the acceptance: prometheus-client's parser reads it
                return {family.name: family for family in text_string_to_metric_families(text)}

            def all_synced() -> bool:
                success = families()["leadsync_last_success_timestamp_seconds"].samples
                done = {(s.labels["source"], s.labels["step"]) for s in success}
                return healthz()[0] == 200 and done >= {
                    (source, step)
                    for source in ("hubspot", "mailchimp", "activecampaign")
                    for step in ("pull", "push")
                }

            _wait("every source's first pull and push", all_synced, daemon)
            scraped = families()
            runs = {
                (s.labels["source"], s.labels["step"], s.labels["outcome"]): s.value
                for s in scraped["leadsync_runs"].samples
                if s.name == "leadsync_runs_total"
            }
            assert runs[("mailchimp", "pull", "ok")] >= 1 and runs[("hubspot", "push", "ok")] >= 1
            read = {s.labels["source"]: s.value for s in scraped["leadsync_records_read"].samples}
            assert read["mailchimp"] > 0 and read["hubspot"] > 0
            assert {
                "leadsync_writes",
                "leadsync_last_success_timestamp_seconds",
                "leadsync_quarantined_records",
            } <= set(scraped)
            assert {s.labels["source"] for s in scraped["leadsync_pending_writes"].samples} == {
                "hubspot",
                "mailchimp",
                "activecampaign",
            }
            assert next(iter(scraped["leadsync_scheduler_up"].samples)).value == 1

            httpx.post(
                f"{server.base_url('mailchimp')}/_sandbox/credentials", json={"revoked": True}
            ).raise_for_status()
            status, body = _wait("/healthz 503", lambda: (s := healthz())[0] == 503 and s, daemon)
            assert body["status"] == "failing"
            assert len(body["reasons"]) == 1 and body["reasons"][0].startswith(
                "source 'mailchimp' failed its last"
            )
            assert "API key provided is invalid" in body["reasons"][0]
            assert body["sources"]["hubspot"]["consecutive_failures"] == 0

            def streak() -> int:
                return int(healthz()[1]["sources"]["mailchimp"]["consecutive_failures"])

            _wait("both alerts", lambda: {a["kind"] for a in received} >= {"credentials", "failing"}, daemon)
            # More failed runs of the same streak: each alert still went out once.
            seen = streak()
            _wait("two more failed runs", lambda: streak() >= seen + 2, daemon)
            kinds = [(alert["kind"], alert["source"]) for alert in received]
            assert sorted(kinds) == [("credentials", "mailchimp"), ("failing", "mailchimp")], kinds
            credentials = next(alert for alert in received if alert["kind"] == "credentials")
            assert "refuses its credentials" in credentials["text"] and "401" in credentials["text"]

            httpx.post(
                f"{server.base_url('mailchimp')}/_sandbox/credentials", json={"revoked": False}
            ).raise_for_status()
            _wait("/healthz 200 again", lambda: healthz()[0] == 200, daemon)
            _wait(
                "the recovered alert", lambda: any(alert["kind"] == "recovered" for alert in received), daemon
            )
            assert [alert["kind"] for alert in received].count("failing") == 1
            for alert in received:
                assert set(alert) >= {"text", "kind", "source"}
                for secret in secrets:
                    assert secret not in alert["raw"]
            metrics = client.get("/metrics").text
            for secret in secrets:
                assert secret not in metrics
        finally:
            client.close()
            took = daemon.stop() if daemon.process.poll() is None else 0.0
        assert daemon.process.returncode == 0 and took < 10, daemon.log


def test_a_metrics_port_in_use_is_one_line_exit_2(world: Any, tmp_path: Path) -> None:
    with serve(world) as server, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        lead = Leadsync.create(server, tmp_path / "p")
        done = lead.run("daemon", "--metrics-port", str(port), check=False, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"--metrics-port: port {port} on 127.0.0.1 is already in use" in lines[0]
    assert sum(server.stats()[name]["requests"] for name in ("hubspot", "mailchimp", "activecampaign")) == 0
