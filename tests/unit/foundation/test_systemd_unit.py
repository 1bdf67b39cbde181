"""The shipped systemd unit (docs/leadsync.service) stops leadsync the way leadsync expects to be
stopped, and runs a command line leadsync accepts."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from typer.testing import CliRunner

from leadsync.sync.cli import app
from leadsync.sync.shutdown import GRACE_S

UNIT = Path(__file__).resolve().parents[3] / "docs" / "leadsync.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None, inline_comment_prefixes=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign] # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser["Service"]


def test_the_unit_stops_with_sigterm_waits_longer_than_leadsync_needs_and_restarts_on_failure() -> None:
    unit = service()
    assert unit["KillSignal"] == "SIGTERM"
    assert unit["Restart"] == "on-failure"
    assert unit["KillMode"] == "mixed"
    # leadsync exits within GRACE_S of the signal (5 s promised); SIGKILL must come well after
    assert float(unit["TimeoutStopSec"]) >= 2 * GRACE_S
    assert {"130", "143"} <= set(unit["SuccessExitStatus"].split())


def test_the_units_command_line_is_one_leadsync_accepts() -> None:
    program, *args = shlex.split(service()["ExecStart"])
    assert program.endswith("/leadsync")
    assert args[-1] == "daemon"
    # the same options, asking the daemon command for its help: parsed, not run
    done = CliRunner().invoke(app, [*args, "--help"])
    assert done.exit_code == 0, done.output
    assert "SIGTERM" in done.output
