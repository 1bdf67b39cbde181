"""Every filter checks its value and names the choices (exit 2), instead of silently showing
nothing; and the lifecycle stages have one name everywhere: the scoring model's (issue 24)."""

from __future__ import annotations

import json
import re

import pytest

from leadsync.config.scoring_model import LIFECYCLE_LEVELS
from tests.integration.cli.helpers import ROOT, leadsync, one_line, scored_store


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return scored_store(tmp_path_factory.mktemp("filters"))


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (["leads", "--lifecycle", "mql"], LIFECYCLE_LEVELS),
        (["leads", "--lifecycle", "marketing-qualified"], LIFECYCLE_LEVELS),
        (["leads", "--grade", "E"], ["A, B, C, D", "A1 ... D4"]),
        (["leads", "--grade", "B5"], ["A, B, C, D", "A1 ... D4"]),
        (["quarantine", "--source", "hubspt"], ["hubspot"]),
        (["quarantine", "retry", "--source", "hubspt"], ["hubspot"]),
    ],
)
def test_a_filter_value_that_matches_nothing_possible_exits_2_naming_the_choices(config, args, choices):
    done = leadsync(config, *args, columns=200)
    assert done.returncode == 2, done.stdout + done.stderr
    said = one_line(done.stderr)
    assert repr(args[-1]) in said, said
    for choice in choices:
        assert choice in said, said


@pytest.mark.parametrize("grade", ["a", "B", "b2", "D4"])
def test_a_valid_grade_filter_is_taken_in_any_case(config, grade):
    done = leadsync(config, "leads", "--grade", grade, "--json")
    assert done.returncode == 0, done.stderr
    assert all(row["grade"].startswith(grade.upper()) for row in json.loads(done.stdout))


def test_the_lifecycle_filter_takes_the_names_leads_prints(config):
    everyone = json.loads(leadsync(config, "leads", "--json").stdout)
    for stage in {row["lifecycle"] for row in everyone}:
        picked = json.loads(leadsync(config, "leads", "--lifecycle", stage, "--json").stdout)
        assert picked and {row["lifecycle"] for row in picked} == {stage}


def test_leads_explain_and_the_reason_use_the_lifecycle_names_of_the_scoring_model(config):
    rows = json.loads(leadsync(config, "leads", "--json").stdout)
    assert {"marketing_qualified_lead", "sales_qualified_lead"} & {row["lifecycle"] for row in rows}
    for row in rows:
        assert row["lifecycle"] in LIFECYCLE_LEVELS
        assert row["reason"].startswith(f"{row['grade']} {row['lifecycle']}, "), row["reason"]
        explained = json.loads(leadsync(config, "explain", row["email"], "--json").stdout)
        assert explained["lifecycle"] == row["lifecycle"]


def test_the_readme_names_the_lifecycle_stages_as_leads_prints_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = [line for line in readme.splitlines() if line.startswith("| lifecycle |")]
    named = re.findall(r"`([a-z_]+)`", line.split("|")[2])
    assert named[: len(LIFECYCLE_LEVELS)] == list(LIFECYCLE_LEVELS), line
    assert "marketing-qualified" not in readme and "sales-qualified" not in readme
