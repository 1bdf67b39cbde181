"""`leadsync explain` shows the scores the store holds (what was written to the platforms) and the
contributions that produced them, with what hysteresis kept, instead of re-scoring from scratch
now (issue 24)."""

from __future__ import annotations

import json
from datetime import timedelta

from leadsync.connectors.records import EventType
from tests.integration.cli.helpers import (
    NOW,
    contact,
    event,
    ingest,
    leadsync,
    one_line,
    score_at,
    write_config,
)

# One form is worth 60 engagement points, halving every 30 days; grade digit 2 from 50 (kept down to
# 45), marketing_qualified_lead from 55 (kept down to 45).
MODEL = """
format = 1
version = 1
name = "hysteresis"

[engagement]
curve = "linear"
scale = 100

[engagement.events.form_submit]
label = "form"
points = 60
half_life_days = 30

[grade]
engagement_bands = [75, 50, 25]
margin = 5

[lifecycle]
margin = 10

[[lifecycle.marketing_qualified_lead.when]]
min_engagement = 55
"""
EMAIL = "held.person@acme.io"


def _store(tmp_path):
    model = tmp_path / "hysteresis.toml"
    model.write_text(MODEL)
    config = write_config(tmp_path, model=str(model))
    ingest(config, [contact("1", EMAIL)], [event("1", 0, EventType.FORM_SUBMIT, NOW)])
    score_at(config, NOW, model=str(model))  # engagement 60: D2, marketing_qualified_lead
    # Nine days later the form is worth 48.7: the rules alone give D3 and subscriber, but both are
    # within the margins of what the person had, so the store (and the platforms) keep D2 and MQL.
    score_at(config, NOW + timedelta(days=9), model=str(model))
    return config


def test_explain_shows_the_stored_scores_and_what_hysteresis_kept(tmp_path):
    config = _store(tmp_path)
    stored = json.loads(leadsync(config, "leads", "--json").stdout)[0]
    assert (stored["grade"], stored["lifecycle"], stored["engagement"]) == (
        "D2",
        "marketing_qualified_lead",
        49,
    )
    explained = json.loads(leadsync(config, "explain", EMAIL, "--json").stdout)
    for key in ("engagement", "affinity", "grade", "lifecycle", "stage"):
        assert explained[key] == stored[key], key
    for score in ("affinity", "engagement"):
        assert sum(c["points"] for c in explained["contributions"] if c["score"] == score) == stored[score]
    assert explained["reason"] == stored["reason"] and explained["reproduced"]
    assert explained["held"] == {
        "grade": {"stored": "D2", "rules_alone": "D3"},
        "lifecycle": {"stored": "marketing_qualified_lead", "rules_alone": "subscriber"},
    }
    text = leadsync(config, "explain", EMAIL).stdout
    assert "grade D2, lifecycle marketing_qualified_lead" in text
    assert (
        "kept by hysteresis" in text
        and "lifecycle marketing_qualified_lead (the rules alone give subscriber" in text
    )
    assert "+49  form" in text and "49  = engagement" in text


def test_after_new_data_explain_still_shows_what_was_written_and_says_it_is_out_of_date(tmp_path):
    config = _store(tmp_path)
    ingest(config, [], [event("1", 1, EventType.FORM_SUBMIT, NOW + timedelta(days=8))])
    explained = json.loads(leadsync(config, "explain", EMAIL, "--json").stdout)
    assert (explained["engagement"], explained["lifecycle"]) == (49, "marketing_qualified_lead")
    assert sum(c["points"] for c in explained["contributions"] if c["score"] == "engagement") == 49
    assert not explained["reproduced"]
    assert "`leadsync score` brings them up to date" in one_line(leadsync(config, "explain", EMAIL).stdout)


def test_explain_of_a_person_not_scored_yet_says_so(tmp_path):
    config = write_config(tmp_path)
    ingest(config, [contact("1", EMAIL)], [])
    done = leadsync(config, "explain", EMAIL)
    assert done.returncode == 1 and "has not been scored yet" in done.stderr
