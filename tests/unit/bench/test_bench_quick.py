"""`python -m bench --quick --out DIR` runs end to end and writes valid JSON with every section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.platforms import PULL_SAMPLES, SHORT_PULL_S

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow(190)  # mostly the emulators' 50 ms latency
def test_given_quick_mode_when_run_then_json_and_markdown_hold_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        # the scale-out section starts PostgreSQL workers: `python -m bench.scaleout --quick` on its own
        [sys.executable, "-m", "bench", "--quick", "--no-scaleout", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
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
            # the raw client replayed the step's own requests (issue 23): its limit is in the figures
            assert run[step]["raw_records_per_second"], (name, step)
            assert run[step]["limit_records_per_second"] <= run[step]["ceiling_records_per_second"] + 0.1
        pull = run["pull"]  # the raw client replayed the pull's own requests, all of them
        # a short pull is timed PULL_SAMPLES times, and the row is the sample of the median ratio
        samples = pull["samples"]
        expected = PULL_SAMPLES if samples[0]["seconds"] < SHORT_PULL_S else 1
        assert len(samples) == expected, (name, samples)
        assert sorted(s["ratio"] for s in samples)[(expected - 1) // 2] == pull["ratio"], name
        assert {
            "seconds": pull["seconds"],
            "raw_seconds": pull["raw_seconds"],
            "ratio": pull["ratio"],
        } in samples
        assert pull["raw_requests"] == pull["requests"], name
        # the run record's requests per stream (counted per stream while the streams overlap) add up
        # to what the emulator answered
        assert sum(s["requests"] for s in pull["streams"].values()) == pull["requests"], name
        cycle = run["cycle"]  # 1 % changed by another writer: pulled, re-scored, at a cost that is shown
        assert cycle["changed"] >= 1 and cycle["changes_refused"] == 0, name
        assert cycle["persons_rescored"] >= cycle["changed"], name
        assert [row["contacts"] for row in cycle["projection"]] == [2_000, 20_000, 100_000], name
        assert run["pull"]["streams"], name
        assert run["naive"]["push"]["records_per_second"] > 0, name
        assert run["resync"]["records_written"] == 0, name
        assert run["resync"]["write_requests"] == 0, name
        assert run["resync"]["persons_rescored"] == 0, name  # echoes of our writes are no news (issue 23)
        assert run["resync"]["tracking_log_requests"] == 0, name
    sweep = figures["platforms"]["activecampaign"]["sweep_schedule"]["rows"]
    assert [row["contacts"] for row in sweep] == [20_000, 200_000]
    assert all(row["longest_cycle_s"] <= row["interval_s"] for row in sweep)
    dry = figures["dry_run"]
    assert dry["contacts_planned"] > 0 and 0 < dry["dry_run_seconds"] < dry["pull_seconds"] + 10
    local = figures["local"]
    assert local["ingest"]["events_per_second"] > 0
    assert local["rescore_store"]["persons"] == local["ingest"]["persons"]
    assert local["rescore_memory"]["peak_rss_mb"] > 0
    table = (out / "bench.md").read_text()
    for heading in (
        "of ceiling",
        "raw client",
        "straightforward loop",
        "Unchanged re-sync",
        "1 % of the contacts changed",
        "tracking-log sweep",
        "Local work",
        "acceptance",
    ):
        assert heading in table
