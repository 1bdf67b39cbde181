"""`leadsync check` loads and validates the scoring model the config names: a misspelt preset, a
missing file or a broken file fail the check, naming the config file and ``scoring.model`` (and
the model file's own key), not the first score (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli.helpers import leadsync, one_line, write_config

ENV = {"CLI_TEST_HUBSPOT_TOKEN": "pat-na1-cli-test"}
BROKEN = """
format = 1
version = 1
name = "broken"
[engagement]
curve = "linear"
"""


def _model_row(config: Path) -> tuple[int, dict]:
    done = leadsync(config, "check", "--offline", "--json", env=ENV)
    rows = {row["source"]: row for row in json.loads(done.stdout)["checks"]}
    return done.returncode, rows["(scoring model)"]


@pytest.mark.parametrize(
    ("model", "files", "says"),
    [
        ("defualt", {}, ["'defualt'", "presets: default, pardot, points"]),
        ("models/mine.toml", {}, ["mine.toml", "not found"]),
        (
            "broken.toml",
            {"broken.toml": BROKEN},
            ["broken.toml", "engagement.scale", "required key is missing"],
        ),
        (
            "flags.toml",
            {
                "flags.toml": BROKEN.replace(
                    'curve = "linear"', "scale = 10\n[machine]\nhonour_platform_flag = 1"
                )
            },
            ["machine.honour_platform_flag", "true or false"],
        ),
    ],
    ids=["misspelt preset", "missing file", "broken file", "lax boolean"],
)
def test_given_a_bad_scoring_model_check_fails_naming_the_config_file_and_scoring_model(
    tmp_path, model, files, says
):
    config = write_config(tmp_path, model=model)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code, row = _model_row(config)
    assert code == 1 and not row["ok"], row
    detail = row["detail"]
    assert detail.startswith(f"{config}: scoring.model: "), detail
    for fragment in says:
        assert fragment in detail, detail
    # The readable table says the same, with nothing lost to console markup.
    text = one_line(leadsync(config, "check", "--offline", columns=200, env=ENV).stdout)
    assert "scoring.model" in text and says[0] in text


def test_given_a_good_scoring_model_check_names_it_and_passes(tmp_path):
    code, row = _model_row(write_config(tmp_path, model="pardot"))
    assert code == 0 and row["ok"] and "pardot" in row["detail"], row


def test_given_a_bad_scoring_model_the_score_step_names_the_config_file_and_scoring_model(tmp_path):
    config = write_config(tmp_path, model="defualt")
    done = leadsync(config, "score", env=ENV)
    assert done.returncode == 2, done.stdout + done.stderr
    said = one_line(done.stderr)
    assert f"config error: {config}: scoring.model: " in said and "'defualt'" in said, said
    assert "Traceback" not in done.stderr
