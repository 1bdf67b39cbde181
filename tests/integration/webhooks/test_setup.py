"""``leadsync webhooks setup SOURCE``: Mailchimp list webhooks and ActiveCampaign webhooks created
through their APIs (then left unchanged), HubSpot's manual steps, a dry run that writes nothing,
and a clear one-line error for a bad URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from leadsync.sandbox.webhooks import SANDBOX_WEBHOOK_SECRETS
from leadsync.sandbox.world import generate_world
from tests import forkcli
from tests.integration.webhooks.live import Live

ROOT = Path(__file__).resolve().parents[3]
RECEIVER = "http://127.0.0.1:8799"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    made = Live.start(generate_world(20, 2), tmp_path)
    try:
        yield made
    finally:
        made.close()


def _cli(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LEADSYNC_CONFIG", "LEADSYNC_STORE_URL")}
    env["COLUMNS"] = "200"
    return forkcli.run(
        [sys.executable, "-m", "leadsync.sync.cli", "--config", str(live.folder / "leadsync.toml"), "webhooks", "setup", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _targets(live: Live) -> dict[str, dict[str, object]]:
    return httpx.get(live.server.base_url("hubspot") + "/_sandbox/webhooks").json()["targets"]


def test_setup_creates_then_leaves_the_subscriptions_and_hides_the_token(live: Live) -> None:
    dry = _cli(live, "activecampaign", "--url", RECEIVER, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would create webhook" in dry.stdout and _targets(live) == {}
    token = SANDBOX_WEBHOOK_SECRETS["activecampaign"]["webhook_token"]
    made = _cli(live, "activecampaign", "--url", RECEIVER)
    assert made.returncode == 0, made.stderr
    assert "create webhook" in made.stdout and token not in made.stdout + made.stderr
    assert _targets(live)["activecampaign"]["url"] == f"{RECEIVER}/webhooks/activecampaign/{token}"
    assert "unchanged" in _cli(live, "activecampaign", "--url", RECEIVER).stdout

    mailchimp = _cli(live, "mailchimp", "--url", RECEIVER)
    assert mailchimp.returncode == 0, mailchimp.stderr
    assert "create webhook" in mailchimp.stdout
    target = _targets(live)["mailchimp"]
    assert target["url"] == f"{RECEIVER}/webhooks/mailchimp" and target["api_source"] is False
    assert "create" not in _cli(live, "mailchimp", "--url", RECEIVER).stdout


def test_setup_prints_hubspot_steps(live: Live) -> None:
    done = _cli(live, "hubspot", "--url", RECEIVER)
    assert done.returncode == 0, done.stderr
    assert "Private Apps" in done.stdout and f"{RECEIVER}/webhooks/hubspot" in done.stdout
    assert "hubspot" not in _targets(live)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("hubspot",), "no receiver URL"),
        (("hubspot", "--url", "ftp://x"), "must be an http(s) URL"),
        (("nosuch", "--url", RECEIVER), "no source named 'nosuch'"),
        (("activecampaign", "--url", "http://hooks.example.com"), "only to HTTPS on port 443"),
    ],
)
def test_setup_bad_input_is_one_line_and_exit_2(live: Live, args: tuple[str, ...], message: str) -> None:
    done = _cli(live, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_sandbox_serve_refuses_a_bad_webhook_url(tmp_path: Path) -> None:
    done = forkcli.run(
        [sys.executable, "-m", "leadsync.sync.cli", "sandbox", "serve", "--webhook-url", "hooks.example.com"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--webhook-url must be an http(s) URL" in done.stderr and "'hooks.example.com'" in done.stderr
