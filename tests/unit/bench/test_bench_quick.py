"""`python -m bench --quick --out DIR` runs end to end and writes valid JSON with every section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_given_quick_mode_when_run_then_json_and_markdown_hold_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        # the scale-out section starts PostgreSQL workers: `python -m bench.scaleout --quick` on its own
        [sys.executable, "-m", "bench", "--quick", "--no-scaleout", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((out / "bench.json").read_text())
    assert figures["quick"] is True and figures["machine"]["cpus"] >= 1
    assert set(figures["platforms"]) == {"hubspot", "mailchimp", "activecampaign"}
    for name, run in figures["platforms"].items():
        for step in ("pull", "push"):
            assert run[step]["records"] > 0, (name, step)
            assert run[step]["ceiling_records_per_second"] > 0, (name, step)
            assert 0 < run[step]["ratio"], (name, step)
            assert run[step]["connections_opened"] >= 1, (name, step)
        assert run["pull"]["streams"], name
        assert run["naive"]["push"]["records_per_second"] > 0, name
        assert run["resync"]["records_written"] == 0, name
        assert run["resync"]["write_requests"] == 0, name
        assert run["resync"]["persons_rescored"] == 0, name  # echoes of our writes are no news (issue 23)
        assert run["resync"]["tracking_log_requests"] == 0, name
    dry = figures["dry_run"]
    assert dry["contacts_planned"] > 0 and 0 < dry["dry_run_seconds"] < dry["pull_seconds"] + 10
    local = figures["local"]
    assert local["ingest"]["events_per_second"] > 0
    assert local["rescore_store"]["persons"] == local["ingest"]["persons"]
    assert local["rescore_memory"]["peak_rss_mb"] > 0
    table = (out / "bench.md").read_text()
    for heading in ("of ceiling", "straightforward loop", "Unchanged re-sync", "Local work", "acceptance"):
        assert heading in table
