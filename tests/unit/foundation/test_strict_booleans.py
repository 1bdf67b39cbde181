"""Booleans in the config and the scoring model are TOML booleans only: "yes", 1 or "true" are
refused with an error naming the key, never read as true (issue 24)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadsync.config.scoring_model import load_model_file, preset_path
from leadsync.config.settings import load_config
from leadsync.connectors.errors import ConfigError

CONFIG = """
[[sources]]
name = "hs"
platform = "hubspot"
base_url = "http://127.0.0.1:9"
{source_extra}
[sources.secrets]
token = "HS_TOKEN"
[sources.options]
{options}
{sections}
"""

LAX = ['"yes"', "1", '"true"', "0", '"no"']


def _config(tmp_path: Path, *, source_extra: str = "", options: str = "", sections: str = "") -> Path:
    path = tmp_path / "leadsync.toml"
    path.write_text(CONFIG.format(source_extra=source_extra, options=options, sections=sections))
    return path


@pytest.mark.parametrize("value", LAX)
@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("sections", "writeback.lifecycle"),
        ("sections", "writeback.dry_run"),
        ("source_extra", "sources[0].enabled"),
        ("options", "sources[0].options.rate_limit"),
    ],
)
def test_given_a_boolean_written_as_text_or_number_when_the_config_loads_then_it_is_refused_naming_the_key(
    tmp_path, where, key, value
):
    name = key.rsplit(".", 1)[-1]
    line = f"{name} = {value}"
    text = {"sections": f"[writeback]\n{line}", "source_extra": line, "options": line}[where]
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, **{where: text}))
    message = str(caught.value)
    assert key in message and "true or false" in message, message


def test_given_true_and_false_when_the_config_loads_then_they_are_taken_as_written(tmp_path):
    config = load_config(
        _config(
            tmp_path,
            source_extra="enabled = false",
            sections="[writeback]\nlifecycle = false\ndry_run = true",
        )
    )
    assert config.writeback.lifecycle is False and config.writeback.dry_run is True
    assert config.sources[0].enabled is False


@pytest.mark.parametrize("value", LAX)
@pytest.mark.parametrize(
    ("find", "key"),
    [("honour_platform_flag = true", "machine.honour_platform_flag")],
)
def test_given_a_model_boolean_written_as_text_or_number_then_the_model_is_refused_naming_the_key(
    tmp_path, find, key, value
):
    text = preset_path("default").read_text(encoding="utf-8")
    assert find in text
    model = tmp_path / "model.toml"
    model.write_text(text.replace(find, find.replace("true", value)))
    with pytest.raises(ConfigError) as caught:
        load_model_file(model)
    assert caught.value.key == key and "true or false" in str(caught.value), str(caught.value)


@pytest.mark.parametrize("value", LAX)
def test_given_an_affinity_rule_negate_written_as_text_then_the_model_is_refused(tmp_path, value):
    text = preset_path("default").read_text(encoding="utf-8")
    model = tmp_path / "model.toml"
    model.write_text(text.replace('name = "title_vp"', f'name = "title_vp"\nnegate = {value}', 1))
    with pytest.raises(ConfigError) as caught:
        load_model_file(model)
    assert caught.value.key is not None and caught.value.key.endswith(".negate"), str(caught.value)
