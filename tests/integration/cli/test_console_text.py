"""Text from users, configs and platforms is printed as it is, never read as console markup: a
config key such as ``[sources.secrets]`` in a message survives (issue 24)."""

from __future__ import annotations

import json

from leadsync.config.scoring_model import preset_path
from tests.integration.cli.helpers import NOW, leadsync, one_line, score_at, scored_store, write_config


def test_an_error_message_keeps_the_config_key_in_square_brackets(tmp_path):
    config = write_config(tmp_path)
    text = config.read_text().replace(
        'base_url = "http://127.0.0.1:9"', 'base_url = "https://api.hubapi.com"'
    )
    config.write_text(text + '[sources.inline_secrets]\ntoken = "pat-na1-x"\n')
    done = leadsync(config, "check", "--offline")
    assert done.returncode == 2
    assert "name it under [sources.secrets]" in one_line(done.stderr), done.stderr


def test_the_check_table_keeps_the_config_key_in_square_brackets(tmp_path):
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('[sources.secrets]\ntoken = "CLI_TEST_HUBSPOT_TOKEN"\n', ""))
    done = leadsync(config, "check", "--offline", columns=200)
    assert done.returncode == 1
    assert "under [sources.secrets]" in one_line(done.stdout), done.stdout


def test_a_reason_with_square_brackets_is_printed_whole_by_leads_and_explain(tmp_path):
    model = tmp_path / "bracketed.toml"
    model.write_text(preset_path("default").read_text().replace('label = "VP title"', 'label = "[vp] title"'))
    config = scored_store(tmp_path)
    config.write_text(config.read_text().replace('model = "default"', f'model = "{model}"'))
    score_at(config, NOW, model=str(model))
    rows = json.loads(leadsync(config, "leads", "--json").stdout)
    vp = next(row for row in rows if "[vp] title" in row["reason"])
    assert "[vp] title" in leadsync(config, "leads", "--wide").stdout
    explained = leadsync(config, "explain", vp["email"])
    assert explained.returncode == 0, explained.stderr
    assert "[vp] title" in explained.stdout
