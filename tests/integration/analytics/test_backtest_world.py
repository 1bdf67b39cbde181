"""`leadsync backtest` and `leadsync report` on a sandbox world pulled through the real pipeline.

Acceptance 1: the backtest figures equal an independent computation: outcomes from the world's own
ground truth (its purchase and won-deal events, not the store), scores from the scoring engine as of
the date, metrics from scikit-learn (and a hand count for the top decile and the grade cells).
Acceptance 3: the report of that store is well-formed, needs no network and holds every plot.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from leadsync.config.scoring_model import load_model
from leadsync.connectors.records import EventType, normalise_email
from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from leadsync.scoring import score_many
from leadsync.sync.report import CHARTS, SECTIONS
from leadsync.sync.scorebatch import load_event_columns, load_profiles
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Person
from tests import forkcli
from tests.unit.analytics.test_report import check

ROOT = Path(__file__).resolve().parents[3]
AS_OF = datetime(2026, 8, 3, tzinfo=UTC)
HORIZON = timedelta(days=90)
OUTCOME_TYPES = {EventType.PURCHASE, EventType.DEAL_WON}


def leadsync(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return forkcli.run(
        [sys.executable, "-m", "leadsync", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def pulled(tmp_path_factory):
    world = generate_world(700, 1)
    folder = tmp_path_factory.mktemp("backtest")
    server = SandboxServer.for_world(
        world, ports={"hubspot": 0, "mailchimp": 0, "activecampaign": 0}, rate_limits=False
    )
    with server:
        config = folder / "leadsync.toml"
        write_sandbox_config(server, config, store_url=f"sqlite:///{folder / 'store.db'}")
        done = leadsync(config, "sync")
        assert done.returncode == 0, done.stdout + done.stderr
    return world, config, folder / "store.db"


def _independent(world, db: Path):
    """Leads at AS_OF, their outcome in the horizon (world truth) and their scores as of AS_OF."""
    start, end = AS_OF, AS_OF + HORIZON
    first: dict[str, list[datetime]] = {}
    created: dict[str, datetime] = {}
    for person in world.persons:
        email = normalise_email(person.email)
        created[email] = min(created.get(email, person.created_at), person.created_at)
        first[email] = [e.at for e in world.events_of(person.id) if e.type in OUTCOME_TYPES]
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        people = connection.execute(select(Person.id, Person.email).order_by(Person.id)).all()
        leads = [
            (pid, email)
            for pid, email in people
            if created[email] <= start and not any(t <= start for t in first[email])
        ]
        ids = [pid for pid, _ in leads]
        profiles = load_profiles(connection, ids)
        columns = load_event_columns(connection, ids, AS_OF)
    engine.dispose()
    y = np.array([any(start < t <= end for t in first[email]) for _, email in leads])
    batch = score_many(profiles, columns, load_model("default"), now=AS_OF)
    return y, batch, len(people) - len(leads)


def test_backtest_figures_equal_an_independent_computation(pulled):
    metrics = pytest.importorskip("sklearn.metrics")
    world, config, db = pulled
    done = leadsync(
        config, "backtest", "--outcome", "customer", "--as-of", "2026-08-03", "--horizon", "90d", "--json"
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)

    y, batch, left_out = _independent(world, db)
    assert figures["persons"] == len(y) and figures["converted"] == int(y.sum()) >= 10
    assert figures["persons"] + figures["excluded_prior"] <= figures["persons"] + left_out
    scores = {
        "total": batch.affinity + batch.engagement,
        "affinity": batch.affinity,
        "engagement": batch.engagement,
        "composite": batch.composite,
    }
    for name, s in scores.items():
        reported = figures["scores"][name]
        assert reported["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12), name
        assert reported["pr_auc"] == pytest.approx(metrics.average_precision_score(y, s), abs=1e-12), name
        top = np.argsort(-s, kind="stable")[: math.ceil(len(y) / 10)]
        assert reported["top_decile_share"] == pytest.approx(y[top].sum() / y.sum()), name
        assert reported["top_decile_lift"] == pytest.approx(y[top].mean() / y.mean()), name

    mql = batch.lifecycle >= 2  # marketing_qualified_lead and above
    assert figures["mql"]["precision"] == pytest.approx(metrics.precision_score(y, mql))
    assert figures["mql"]["recall"] == pytest.approx(metrics.recall_score(y, mql))
    grades = [batch.grade(i) for i in range(len(y))]
    for grade, cell in figures["by_grade"].items():
        members = [i for i, g in enumerate(grades) if g == grade]
        assert (cell["persons"], cell["converted"]) == (len(members), int(y[members].sum())), grade
    stages = [batch.stage_name(i) for i in range(len(y))]
    for stage, cell in figures["by_stage"].items():
        members = [i for i, st in enumerate(stages) if st == stage]
        assert (cell["persons"], cell["converted"]) == (len(members), int(y[members].sum())), stage


def test_backtest_ignores_everything_after_the_as_of_date(pulled):
    _, config, _ = pulled
    early = leadsync(config, "backtest", "--as-of", "2026-07-01", "--horizon", "30d", "--json")
    assert early.returncode == 0, early.stderr
    figures = json.loads(early.stdout)
    # persons who only appeared later are not leads then; nobody converted twice in the figures
    assert figures["converted"] <= figures["persons"]
    assert figures["horizon_days"] == 30


def test_model_fit_refuses_with_too_few_converters(pulled):
    _, config, db = pulled
    folder = db.parent
    done = leadsync(config, "model", "fit", "--outcome", "purchase", "--out", str(folder / "never.toml"))
    assert done.returncode == 1
    assert "converters in the training window (need at least 20)" in " ".join(done.stderr.split())
    assert not (folder / "never.toml").exists()


def test_report_of_the_store_is_well_formed_offline_with_every_plot(pulled):
    _, config, db = pulled
    out = db.parent / "report.html"
    done = leadsync(config, "report", "--out", str(out), "--as-of", "2026-08-03")
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    checker = check(text)
    assert list(checker.sections) == list(SECTIONS)
    for section in CHARTS:
        assert checker.sections[section] >= 1, section
    for source in ("hubspot", "mailchimp", "activecampaign"):
        assert source in text  # a sync-health row per source
    assert "No backtest" not in text
