"""`leadsync model fit` on the demo world: the world has too few conversions to learn from, and the
refusal says what would help; following its advice gives a fitted model (issue 24)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests import forkcli
from tests.integration.cli.helpers import one_line


def _leadsync(args: list[str], cwd) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
    return forkcli.run(
        [sys.executable, "-m", "leadsync", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.mark.slow(120)
def test_model_fit_on_the_demo_world_gives_advice_that_works_when_followed(tmp_path):
    # The demo's world (400 persons, seed 1), without the rate limits so that the test is quick.
    demo = _leadsync(["demo", "--rate-limits", "off", "--dir", "demo"], tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    refused = _leadsync(["--config", "demo/leadsync.toml", "model", "fit", "--out", "never.toml"], tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = one_line(refused.stderr)
    assert "converters in the training window (need at least 20)" in said, said
    assert "later --as-of" not in said and "broader --outcome" not in said  # the old advice did not help
    commands = re.findall(r"`(leadsync [^`]+)`", said)
    assert len(commands) == 2 and commands[0].startswith("leadsync demo --contacts "), said
    assert not (tmp_path / "never.toml").exists()

    # Follow the advice as written, in the same folder.
    for command in commands:
        done = _leadsync(shlex.split(command)[1:], tmp_path)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert "learned" in (tmp_path / "learned.toml").read_text(encoding="utf-8").lower()
