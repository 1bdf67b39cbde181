"""The tests' CLI runner (tests/forkcli.py) gives what ``subprocess`` gives: exit codes, the two
streams apart, the call's own environment and directory, a timeout, and a real pid that signals
reach. The rest of the suite relies on it for every CLI call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import forkcli

LEADSYNC = [sys.executable, "-m", "leadsync"]


def test_a_call_gives_its_exit_code_and_its_streams_apart(tmp_path: Path) -> None:
    done = forkcli.run(
        [*LEADSYNC, "--config", str(tmp_path / "none.toml"), "status"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "no config file here" in done.stderr
    assert forkcli.run([*LEADSYNC, "--help"], capture_output=True, text=True).returncode == 0


def test_a_call_runs_in_its_own_environment_and_directory(tmp_path: Path) -> None:
    (tmp_path / "leadsync.toml").write_text("not toml [", encoding="utf-8")
    env = {**os.environ, "COLUMNS": "123", "LINES": "40"}
    env.pop("LEADSYNC_CONFIG", None)
    done = forkcli.run([*LEADSYNC, "status"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "leadsync.toml" in done.stderr  # ./leadsync.toml: the call's cwd
    wide = forkcli.run([*LEADSYNC, "--help"], env=env, capture_output=True, text=True).stdout
    assert max(len(line) for line in wide.splitlines()) == 123  # the call's COLUMNS, not the zygote's


def test_a_call_past_its_timeout_is_killed_and_raises(tmp_path: Path) -> None:
    command = [*LEADSYNC, "sandbox", "serve", "-n", "5", *_free_ports()]
    with pytest.raises(subprocess.TimeoutExpired):
        forkcli.run(command, capture_output=True, text=True, timeout=3)


def test_a_started_call_has_a_real_pid_that_a_signal_ends() -> None:
    process = forkcli.popen(
        [*LEADSYNC, "sandbox", "serve", "-n", "5", *_free_ports()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert isinstance(process, forkcli.Popen)
    time.sleep(1.0)
    assert process.poll() is None
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    process.communicate(timeout=30)


def test_other_commands_and_the_switch_off_go_through_subprocess(monkeypatch) -> None:
    done = forkcli.run([sys.executable, "-c", "print('plain')"], capture_output=True, text=True)
    assert done.stdout == "plain\n"
    monkeypatch.setattr(forkcli, "_ENABLED", False)
    process = forkcli.popen([*LEADSYNC, "--help"], stdout=subprocess.DEVNULL)
    assert not isinstance(process, forkcli.Popen)
    assert process.wait(timeout=60) == 0


def _free_ports() -> list[str]:
    return ["--hubspot-port", "0", "--mailchimp-port", "0", "--activecampaign-port", "0"]
