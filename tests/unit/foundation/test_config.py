"""Config validation: every error names the file and the key, and no traceback reaches the user."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from leadsync.config.settings import load_config, missing_secrets, parse_duration, resolve_source
from leadsync.connectors.errors import ConfigError
from tests import forkcli

VALID = """
[store]
url = "sqlite:///x.db"

[[sources]]
name = "hubspot"
platform = "hubspot"
[sources.secrets]
token = "HS_TOKEN"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leadsync.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (
            VALID.replace('platform = "hubspot"', 'platform = "salesforce"'),
            "sources[0].platform",
            "unknown platform 'salesforce'",
        ),
        (VALID.replace('url = "sqlite:///x.db"', "url = 5"), "store.url", "valid string"),
        (VALID + '\n[schedule]\ninterval = "often"\n', "schedule.interval", "not a duration"),
        (VALID + '\n[writeback]\nlifecycle = "maybe"\n', "writeback.lifecycle", "boolean"),
        (VALID + '\n[writeback]\nfield_prefx = "x_"\n', "writeback.field_prefx", "unknown key"),
        (VALID + "\n[engine]\nscore_range = 0\n", "engine.score_range", "greater than or equal to 1"),
        (
            VALID.replace('token = "HS_TOKEN"', 'token = "pat-na1-123-456"'),
            "sources[0].secrets",
            "name an environment variable",
        ),
        (VALID + '[sources.options]\ntier = "gold"\n', "sources[0].options.tier", "free"),
        (
            VALID.replace(
                "[sources.secrets]",
                'base_url = "https://api.hubapi.com"\n[sources.inline_secrets]\ntoken = "pat-x"\n[sources.secrets]',
            ),
            "sources[0]",
            "environment variable",
        ),
        ("[[sources]]\nname = 'a'\n", "sources[0].platform", "Field required"),
        ("this is = = not toml", None, "not valid TOML"),
    ],
)
def test_given_a_broken_config_when_loaded_then_the_error_names_file_and_key(tmp_path, text, key, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.file == str(path)
    assert caught.value.key == key
    assert fragment in str(caught.value)
    assert str(path) in str(caught.value)


def test_given_a_valid_config_when_loaded_then_defaults_fill_the_rest(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert config.store.url == "sqlite:///x.db"
    assert config.schedule.interval == 900.0
    assert config.writeback.field_prefix == "leadsync_"
    assert config.sources[0].typed_options().model_dump()["tier"] == "free"


def test_given_a_missing_secret_variable_then_the_problem_names_the_variable(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert missing_secrets(config, config.sources[0], {}) == [
        "environment variable HS_TOKEN (secrets.token) is not set"
    ]
    with pytest.raises(ConfigError) as caught:
        resolve_source(config, config.sources[0], {})
    assert caught.value.key == "sources[0].secrets"
    assert "HS_TOKEN" in str(caught.value)


def test_given_the_variable_is_set_then_the_secret_comes_from_the_environment_and_never_shows(tmp_path):
    config = load_config(write(tmp_path, VALID))
    settings = resolve_source(config, config.sources[0], {"HS_TOKEN": "pat-na1-secret-value"})
    assert settings.secrets["token"] == "pat-na1-secret-value"
    assert settings.secret_names["token"] == "HS_TOKEN"
    assert "pat-na1-secret-value" not in repr(settings)


def test_inline_secrets_are_accepted_on_loopback_only(tmp_path):
    text = VALID.replace('[sources.secrets]\ntoken = "HS_TOKEN"', "")
    text = text.replace(
        'platform = "hubspot"',
        'platform = "hubspot"\nbase_url = "http://127.0.0.1:8701"\n[sources.inline_secrets]\ntoken = "pat-sandbox"',
    )
    config = load_config(write(tmp_path, text))
    assert resolve_source(config, config.sources[0], {}).secrets["token"] == "pat-sandbox"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ("[sources.options]\nrate_limit = false\n", "only accepted for a sandbox on loopback"),
        ("[sources.options]\nlookback_s = -1\n", "greater than or equal to 0"),
    ],
)
def test_given_options_unsafe_or_invalid_for_a_real_platform_then_the_config_is_refused(
    tmp_path, options, fragment
):
    text = (
        VALID.replace('platform = "hubspot"', 'platform = "hubspot"\nbase_url = "https://api.hubapi.com"')
        + options
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert fragment in str(caught.value)


def test_on_loopback_the_sandbox_may_turn_the_client_side_limits_off(tmp_path):
    text = VALID.replace('platform = "hubspot"', 'platform = "hubspot"\nbase_url = "http://127.0.0.1:8701"')
    config = load_config(write(tmp_path, text + "[sources.options]\nrate_limit = false\n"))
    assert resolve_source(config, config.sources[0], {"HS_TOKEN": "x"}).options["rate_limit"] is False


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), (45, 45)]
)
def test_durations_parse_with_units(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda t: t.replace('"hubspot"\n[sources', '"zoho"\n[sources'), "sources[0].platform"),
        (
            lambda t: t.replace('token = "HS_TOKEN"', 'token = "HS_TOKEN"\n[sources.options]\ntier = 3'),
            "sources[0].options.tier",
        ),
    ],
)
def test_given_a_bad_config_the_cli_exits_non_zero_naming_file_and_key_without_traceback(tmp_path, edit, key):
    path = write(tmp_path, edit(VALID))
    result = forkcli.run(
        [sys.executable, "-m", "leadsync", "--config", str(path), "check"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 2
    assert str(path) in result.stderr and key in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_given_a_missing_secret_variable_the_cli_check_exits_non_zero_naming_the_variable(tmp_path):
    path = write(tmp_path, VALID)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = forkcli.run(
        [sys.executable, "-m", "leadsync", "--config", str(path), "check", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "HS_TOKEN" in result.stdout and "sources[0].secrets" in result.stdout
    assert "Traceback" not in result.stderr
