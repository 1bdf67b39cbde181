"""The model file: presets load, fingerprints track content, broken files name file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadsync.config.scoring_model import PRESETS, ScoringModel, load_model, parse_model, preset_path
from leadsync.connectors.errors import ConfigError

from .helpers import HEADER, LINEAR


@pytest.mark.parametrize("name", PRESETS)
def test_given_a_preset_name_when_loaded_then_it_validates_and_has_a_version(name: str) -> None:
    model = load_model(name)
    assert model.name == name
    assert model.version >= 1
    assert len(model.fingerprint) == 64


def test_given_no_model_when_resolved_then_default_is_used() -> None:
    assert load_model(None).name == "default"


def test_given_a_path_when_resolved_then_the_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(preset_path("points").read_text())
    assert load_model(path).fingerprint == load_model("points").fingerprint
    assert load_model(str(path)).name == "points"


def test_given_comments_and_key_order_changed_when_fingerprinted_then_it_is_the_same() -> None:
    one = parse_model(HEADER + LINEAR + "[engagement.events.email_open]\npoints = 1\nhalf_life_days = 30\n")
    two = parse_model(
        '# a comment\nname = "test"\nversion = 1\n'
        + LINEAR
        + "[engagement.events.email_open]\nhalf_life_days = 30.0  # same\npoints = 1\n"
    )
    assert one.fingerprint == two.fingerprint


def test_given_a_changed_copy_when_fingerprinted_then_it_differs_from_the_original() -> None:
    model = load_model("default")
    before = model.fingerprint
    changed = model.model_copy(update={"version": model.version + 1})
    assert changed.fingerprint != before
    assert model.fingerprint == before


def test_given_a_number_changed_when_fingerprinted_then_it_differs() -> None:
    one = parse_model(HEADER + LINEAR + "[engagement.events.email_open]\npoints = 1\n")
    two = parse_model(HEADER + LINEAR + "[engagement.events.email_open]\npoints = 2\n")
    assert one.fingerprint != two.fingerprint


BROKEN = [
    # (what, toml body after the header, expected key, words in the reason)
    (
        "unknown event type",
        LINEAR + "[engagement.events.email_opened]\npoints = 1\n",
        "engagement.events.email_opened",
        "unknown event type 'email_opened'",
    ),
    (
        "negative half-life",
        LINEAR + "[engagement.events.email_open]\npoints = 1\nhalf_life_days = -3\n",
        "engagement.events.email_open.half_life_days",
        "greater than 0",
    ),
    (
        "zero half-life",
        LINEAR + "[engagement.events.email_open]\npoints = 1\nhalf_life_days = 0\n",
        "engagement.events.email_open.half_life_days",
        "greater than 0",
    ),
    (
        "bad pattern in an affinity rule",
        LINEAR
        + '[[affinity.rules]]\nname = "t"\nattribute = "job_title"\npatterns = ["ok", "(unclosed"]\npoints = 5\n',
        "affinity.rules[0].patterns[1]",
        "bad regular expression '(unclosed'",
    ),
    (
        "bad pattern in a page category",
        LINEAR + '[engagement.pages.pricing]\npatterns = ["[a-"]\npoints = 5\n',
        "engagement.pages.pricing.patterns[0]",
        "bad regular expression",
    ),
    (
        "misspelt key",
        LINEAR + "[engagement.events.email_open]\npoints = 1\nhalflife_days = 3\n",
        "engagement.events.email_open.halflife_days",
        "unknown key",
    ),
    (
        "missing points",
        LINEAR + "[engagement.events.email_open]\nhalf_life_days = 3\n",
        "engagement.events.email_open.points",
        "required key is missing",
    ),
    (
        "zero cap count",
        LINEAR + "[engagement.events.email_open]\npoints = 1\ncap = { count = 0, window_days = 30 }\n",
        "engagement.events.email_open.cap.count",
        "greater than or equal to 1",
    ),
    (
        "stage signal that does not exist",
        LINEAR + '[stage.decision]\nsignals = ["page:pricing"]\nwindow_days = 30\n',
        "stage.decision.signals[0]",
        "unknown event type or page category 'page:pricing'",
    ),
    (
        "action from something else than a purchase",
        LINEAR + '[stage.action]\nsignals = ["purchase", "demo_request"]\nwindow_days = 30\n',
        "stage.action.signals[1]",
        "only purchase or deal_won",
    ),
    (
        "grade bands out of order",
        LINEAR + "[grade]\naffinity_bands = [50, 75, 25]\n",
        "grade.affinity_bands",
        "100 >= b1 > b2 > b3 > 0",
    ),
    (
        "lifecycle level that does not exist",
        LINEAR + "[[lifecycle.hot_lead.when]]\nmin_engagement = 50\n",
        "lifecycle.hot_lead",
        "unknown key",
    ),
    (
        "range on a text attribute",
        LINEAR + '[[affinity.rules]]\nname = "c"\nattribute = "country"\nmin = 1\npoints = 5\n',
        "affinity.rules[0]",
        "company_size only",
    ),
    (
        "two matchers in one rule",
        LINEAR + '[[affinity.rules]]\nname = "c"\nattribute = "country"\nvalues = ["us"]\n'
        'patterns = ["u"]\npoints = 5\n',
        "affinity.rules[0]",
        "exactly one of patterns, values, min/max",
    ),
    (
        "disqualifier naming an unknown rule",
        LINEAR + '[[disqualifiers]]\nname = "x"\nrules = ["nope"]\nmax_lifecycle = "lead"\n',
        "disqualifiers[0].rules[0]",
        "no affinity rule named 'nope'",
    ),
    (
        "unknown lifecycle in a disqualifier",
        LINEAR + '[[disqualifiers]]\nname = "x"\nevents = ["email_unsubscribe"]\nmax_lifecycle = "vip"\n',
        "disqualifiers[0].max_lifecycle",
        "Input should be",
    ),
    ("missing engagement section", "", "engagement", "required key is missing"),
    ("unsupported format", "format = 2\n" + LINEAR, "format", "Input should be 1"),
]


@pytest.mark.parametrize(("what", "body", "key", "reason"), BROKEN, ids=[b[0] for b in BROKEN])
def test_given_a_broken_model_file_when_loaded_then_error_names_file_key_and_reason(
    tmp_path: Path, what: str, body: str, key: str, reason: str
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(HEADER + body)
    with pytest.raises(ConfigError) as caught:
        load_model(path)
    err = caught.value
    assert err.file == str(path)
    assert err.key == key
    assert reason in str(err)
    assert str(err).startswith(f"{path}: {key}: ")


def test_given_invalid_toml_when_loaded_then_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text('version = 1\nname = "x"\n[engagement\n')
    with pytest.raises(ConfigError) as caught:
        load_model(path)
    assert caught.value.file == str(path)
    assert "line 3" in str(caught.value)


def test_given_several_problems_when_loaded_then_the_first_is_the_key_and_the_rest_are_listed() -> None:
    body = LINEAR + "[engagement.events.email_opened]\npoints = 1\n[engagement.events.clicks]\npoints = 1\n"
    with pytest.raises(ConfigError) as caught:
        parse_model(HEADER + body, file="m.toml")
    assert caught.value.key == "engagement.events.email_opened"
    assert "engagement.events.clicks" in str(caught.value)


@pytest.mark.parametrize("ref", ["nosuchpreset", "missing/dir/model.toml", "gone.toml"])
def test_given_an_unknown_model_reference_when_resolved_then_config_error(ref: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_model(ref)
    assert caught.value.file == ref


def test_model_is_frozen() -> None:
    model = load_model("default")
    assert isinstance(model, ScoringModel)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is an implementation detail
        model.version = 2  # type: ignore[misc]
