"""`leadsync explain` shows every contribution, and they sum to the scores (scoring acceptance 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests import forkcli


def leadsync(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return forkcli.run(
        [sys.executable, "-m", "leadsync", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=config.parent,
    )


def test_explain_prints_every_contribution_and_they_sum_to_the_scores(tmp_path):
    server = SandboxServer.for_world(
        generate_world(60, 4), ports={"hubspot": 0, "mailchimp": 0, "activecampaign": 0}, rate_limits=False
    )
    with server:
        config = tmp_path / "sb.toml"
        write_sandbox_config(server, config, store_url=f"sqlite:///{tmp_path / 'store.db'}")
        assert leadsync(config, "pull").returncode == 0
        assert leadsync(config, "score").returncode == 0
    top = json.loads(leadsync(config, "leads", "-n", "5", "--json").stdout)
    assert len(top) == 5
    for lead in top:
        explained = json.loads(leadsync(config, "explain", lead["email"], "--json").stdout)
        for score in ("affinity", "engagement"):
            parts = [c["points"] for c in explained["contributions"] if c["score"] == score]
            assert sum(parts) == explained[score] == lead[score]
        text = leadsync(config, "explain", lead["email"]).stdout
        for contribution in explained["contributions"]:
            assert f"{contribution['points']:+4d}" in text
        assert "= affinity" in text and "= engagement" in text
