"""`leadsync model fit` on a world with a few hundred outcomes (analytics acceptance 2): the learned
model's holdout ROC-AUC is at least the default model's, both are reported, and the file it writes is
a normal model file whose backtest gives the reported figure."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadsync.config.scoring_model import load_model_file
from leadsync.sandbox.world import generate_world
from tests import forkcli
from tests.integration.analytics.worldstore import write_world

ROOT = Path(__file__).resolve().parents[3]
# About 300 converters over the train and holdout windows. Seed 1: learned 0.766 vs default 0.743;
# on seed 3 the learned model only ties (0.7802 vs 0.7801), so this is a margin, not a guarantee.
PERSONS = 8_000
AS_OF = "2026-08-03"


def leadsync(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return forkcli.run(
        [sys.executable, "-m", "leadsync", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fit")
    write_world(
        generate_world(PERSONS, 1), folder / "store.db", now=datetime(2026, 11, 2, tzinfo=UTC)
    ).dispose()
    config = folder / "leadsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{folder / "store.db"}"\n', encoding="utf-8")
    return config


@pytest.mark.slow(50)
def test_model_fit_beats_the_default_model_on_the_holdout_and_reports_both(store, tmp_path):
    out = tmp_path / "learned.toml"
    done = leadsync(
        store, "model", "fit", "--outcome", "customer", "--as-of", AS_OF, "--out", str(out), "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    outcomes = report["train"]["converted"] + report["holdout"]["converted"]
    assert outcomes >= 200, report  # "a few hundred outcomes"
    auc = report["holdout_roc_auc"]
    assert auc["learned"] >= auc["base"] > 0.5, auc
    assert report["beats_base"] is True

    model = load_model_file(out)  # a normal model file
    header = out.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert f"learned {auc['learned']:.3f}, default {auc['base']:.3f}" in header
    assert "the learned model beats or equals default" in " ".join(header.replace("#", " ").split())
    # the written file, backtested like any model, gives the reported holdout figure
    again = leadsync(
        store, "backtest", "--outcome", "customer", "--as-of", AS_OF, "--model", str(out), "--json"
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["scores"]["total"]["roc_auc"] == pytest.approx(auc["learned"], abs=1e-9)
    assert model.name == "default-learned"
