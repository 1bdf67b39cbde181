"""Secrets planted in the config and the environment never appear in any log line, at any level."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from leadsync.config.settings import load_config
from leadsync.sync.logsetup import REDACTOR, configure_logging, register_secrets
from tests import forkcli

PLANTED_ENV = "pat-na1-PLANTED-ENV-7f3a9c"
PLANTED_INLINE = "PLANTED-INLINE-d41d8cd98f"

CONFIG = f"""
[[sources]]
name = "hubspot"
platform = "hubspot"
base_url = "http://127.0.0.1:9"
[sources.secrets]
token = "PLANTED_HS_TOKEN"

[[sources]]
name = "mailchimp"
platform = "mailchimp"
base_url = "http://127.0.0.1:9/3.0"
[sources.inline_secrets]
api_key = "{PLANTED_INLINE}-us6"
"""


@pytest.fixture
def planted(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANTED_HS_TOKEN", PLANTED_ENV)
    path = tmp_path / "leadsync.toml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("json_lines", [False, True])
def test_log_lines_at_every_level_redact_planted_secrets(planted, json_lines):
    stream = io.StringIO()
    handler = configure_logging(level="DEBUG", json_lines=json_lines, stream=stream)
    try:
        register_secrets(load_config(planted))
        log = logging.getLogger("leadsync.test")
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
            log.log(level, "sending Authorization: Bearer %s", PLANTED_ENV)
            log.log(level, f"key in text {PLANTED_INLINE}-us6 and again {PLANTED_ENV}")
        try:
            raise RuntimeError(f"request failed with token {PLANTED_ENV}")
        except RuntimeError:
            log.exception("boom %s", PLANTED_INLINE)
        logging.getLogger("httpx").warning("HTTP Request: GET https://x/?hapikey=%s", PLANTED_ENV)
    finally:
        logging.getLogger().removeHandler(handler)
    output = stream.getvalue()
    assert output.count("***") >= 10, output
    assert PLANTED_ENV not in output
    assert PLANTED_INLINE not in output
    if json_lines:
        for line in output.splitlines():
            json.loads(line)


def test_the_cli_at_debug_level_never_prints_planted_secrets(planted, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PLANTED_HS_TOKEN": PLANTED_ENV}
    outputs = []
    for args in (
        ["--log-level", "DEBUG", "check"],
        ["--log-level", "DEBUG", "--log-json", "check", "--json"],
    ):
        result = forkcli.run(
            [sys.executable, "-m", "leadsync", "--config", str(planted), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
        outputs.append(result.stdout + result.stderr)
        assert "Traceback" not in result.stderr
    for output in outputs:
        assert PLANTED_ENV not in output and PLANTED_INLINE not in output


def teardown_module() -> None:
    REDACTOR.add()  # the process-wide redactor keeps what tests taught it; harmless


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_json_log_times_are_iso_8601_in_utc_with_the_offset(zone, monkeypatch):
    import time
    from datetime import UTC, datetime, timedelta

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        stream = io.StringIO()
        handler = configure_logging(level="INFO", json_lines=True, stream=stream)
        try:
            before = datetime.now(UTC)
            logging.getLogger("leadsync.test").info("a line")
            after = datetime.now(UTC)
        finally:
            logging.getLogger().removeHandler(handler)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    line = json.loads(stream.getvalue().splitlines()[-1])
    moment = datetime.fromisoformat(line["time"])  # ISO 8601, or this raises
    assert moment.utcoffset() == timedelta(0), line["time"]
    assert line["time"].endswith("+00:00")
    assert before - timedelta(seconds=1) <= moment <= after + timedelta(seconds=1)
