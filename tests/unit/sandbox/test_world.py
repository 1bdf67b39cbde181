"""The sandbox world: its file format, and the generator's determinism and coherence."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import leadsync.sandbox.world as world_package
from leadsync.connectors.errors import ConfigError
from leadsync.connectors.records import EventType, Platform, normalise_email
from leadsync.sandbox.world import (
    DEFAULT_NOW,
    PLATFORM_EVENT_TYPES,
    Stage,
    World,
    apply_delta,
    campaigns_between,
    extend_world,
    generate_world,
)

E = EventType
HUBSPOT, MAILCHIMP, ACTIVECAMPAIGN = Platform.HUBSPOT, Platform.MAILCHIMP, Platform.ACTIVECAMPAIGN
EMAIL_STOPPERS = (E.EMAIL_UNSUBSCRIBE, E.EMAIL_SPAM_REPORT)


@pytest.fixture(scope="module")
def world_5k() -> World:
    return generate_world(5000, 7)


@pytest.fixture(scope="module")
def small_world() -> World:
    return generate_world(400, 11)


# --- determinism ------------------------------------------------------------------------------


def test_given_same_seed_when_generated_twice_then_bytes_are_identical(world_5k: World) -> None:
    assert generate_world(5000, 7).dumps() == world_5k.dumps()


def test_given_same_seed_when_generated_in_another_process_then_bytes_are_identical() -> None:
    """No dependence on hash randomisation, the wall clock or anything else of the process."""
    script = "from leadsync.sandbox.world import generate_world; import hashlib; print(hashlib.sha256(generate_world(150, 3).dumps()).hexdigest())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env, cwd=Path.cwd()
    )
    assert result.stdout.strip() == hashlib.sha256(generate_world(150, 3).dumps()).hexdigest()


@pytest.mark.parametrize(("first", "second"), [((300, 1), (300, 2)), ((300, 1), (301, 1))])
def test_given_different_arguments_when_generated_then_worlds_differ(
    first: tuple[int, int], second: tuple[int, int]
) -> None:
    assert generate_world(*first).dumps() != generate_world(*second).dumps()


def test_given_default_now_when_generated_then_window_ends_at_the_fixed_constant() -> None:
    world = generate_world(10, 1)
    assert world.now == DEFAULT_NOW == datetime(2026, 11, 1, tzinfo=UTC)
    assert world.start == DEFAULT_NOW - timedelta(days=180)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"contacts": -1, "seed": 1}, "contacts"),
        ({"contacts": 10, "seed": 1, "days": 0}, "days"),
        ({"contacts": 10, "seed": 1, "now": datetime(2026, 1, 1)}, "aware"),
    ],
)
def test_given_bad_arguments_when_generating_then_value_error_says_which(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_world(**kwargs)


# --- the file format --------------------------------------------------------------------------


def test_given_world_when_written_and_read_back_then_bytes_are_identical(
    small_world: World, tmp_path: Path
) -> None:
    path = tmp_path / "world.jsonl"
    small_world.write(path)
    assert path.read_bytes() == small_world.dumps()
    again = World.read(path)
    assert again.dumps() == small_world.dumps()
    assert again.seed == 11 and again.now == small_world.now and again.event_count == small_world.event_count


def test_given_world_file_then_lines_have_kind_first_and_utc_z_times(small_world: World) -> None:
    lines = small_world.dumps().decode().splitlines()
    assert lines[0].startswith('{"kind":"world","version":1,"seed":11,"contacts":400,')
    kinds = Counter(line.split('"', 4)[3] for line in lines)
    assert kinds == {
        "world": 1,
        "campaign": len(small_world.campaigns),
        "person": 400,
        "event": small_world.event_count,
    }
    assert all(line.startswith('{"kind":') for line in lines)
    assert '"at":"2026-' in lines[-1] and lines[-1].count("Z") >= 1
    assert "+00:00" not in small_world.dumps().decode()


def test_given_hand_written_world_like_design_md_when_read_then_ids_and_span_are_filled_in(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hand.jsonl"
    path.write_text(
        '{"kind": "person", "id": "p1", "email": "ana@acme.io", "first_name": "Ana", "last_name": "Ruiz",'
        ' "job_title": "VP Finance", "company": "Acme", "industry": "manufacturing", "company_size": 800,'
        ' "country": "US", "created_at": "2026-05-02T10:00:00Z", "platforms": ["hubspot", "mailchimp"]}\n'
        '{"kind": "event", "person": "p1", "platform": "hubspot", "type": "page_view",'
        ' "at": "2026-06-01T09:30:00Z", "url": "https://example.com/pricing"}\n'
        '{"kind": "event", "person": "p1", "platform": "hubspot", "type": "deal_won", "at": "2026-07-01T00:00:00Z"}\n',
        encoding="utf-8",
    )
    world = World.read(path)
    events = world.events_of("p1")
    assert [e.id for e in events] == ["L2", "L3"]
    assert events[0].url == "https://example.com/pricing"
    assert world.start == datetime(2026, 5, 2, 10, tzinfo=UTC) and world.now == datetime(
        2026, 7, 1, tzinfo=UTC
    )
    assert world.person("p1").hidden is None and world.person("p1").email_on("mailchimp") == "ana@acme.io"


HEADER = '{"kind":"world","version":1,"seed":1,"start":"2026-01-01T00:00:00Z","now":"2026-02-01T00:00:00Z"}'
PERSON = (
    '{"kind":"person","id":"p1","email":"a@b.io","first_name":"A","last_name":"B","job_title":null,'
    '"company":null,"industry":null,"company_size":null,"country":null,"created_at":"2026-01-02T00:00:00Z",'
    '"platforms":["hubspot"]}'
)
EVENT = '{"kind":"event","id":"e1","person":"p1","platform":"hubspot","type":"page_view","at":"2026-01-03T00:00:00Z"}'


@pytest.mark.parametrize(
    ("lines", "bad_line", "message"),
    [
        ([HEADER, "{not json"], 2, "not valid JSON"),
        ([HEADER, "[1, 2]"], 2, "expected a JSON object"),
        ([HEADER, '{"id": "p1"}'], 2, 'missing "kind"'),
        ([HEADER, '{"kind": "robot"}'], 2, "unknown kind 'robot'"),
        ([HEADER, PERSON, EVENT.replace('"at":"2026-01-03T00:00:00Z"', '"at":"yesterday"')], 3, "UTC time"),
        (
            [HEADER, PERSON, EVENT.replace('"at":"2026-01-03T00:00:00Z"', '"at":"2026-01-03T00:00:00"')],
            3,
            "UTC",
        ),
        ([HEADER, PERSON, EVENT.replace("page_view", "page_viewed")], 3, "not an event type"),
        ([HEADER, PERSON, EVENT.replace('"platform":"hubspot"', '"platform":"salesforce"')], 3, "platform"),
        ([HEADER, PERSON, EVENT.replace('"type"', '"typo"')], 3, 'missing "type"'),
        ([HEADER, PERSON, EVENT, EVENT], 4, "duplicate event id 'e1'"),
        ([HEADER, PERSON, PERSON], 3, "duplicate person id 'p1'"),
        ([HEADER, EVENT.replace('"p1"', '"p9"'), PERSON], 2, "unknown person 'p9'"),
        ([HEADER, PERSON, EVENT.replace('"hubspot"', '"mailchimp"')], 3, "not on that platform"),
        ([HEADER, PERSON, EVENT.replace('"at"', '"campaign":"c9","at"')], 3, "unknown campaign 'c9'"),
        (
            [HEADER, PERSON, PERSON.replace('"company_size":null', '"company_size":"big"')],
            3,
            "must be an integer",
        ),
        ([PERSON, HEADER], 2, "header must be the first line"),
        ([HEADER.replace('"version":1', '"version":9'), PERSON], 1, "version 9 is not supported"),
    ],
)
def test_given_malformed_line_when_read_then_config_error_names_file_and_line(
    tmp_path: Path, lines: list[str], bad_line: int, message: str
) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        World.read(path)
    assert str(caught.value).startswith(f"{path}: line {bad_line}: ")
    assert message in str(caught.value)
    assert caught.value.file == str(path)


def test_given_truncated_file_when_read_then_config_error_says_counts_disagree(
    small_world: World, tmp_path: Path
) -> None:
    path = tmp_path / "truncated.jsonl"
    path.write_bytes(b"\n".join(small_world.dumps().splitlines()[:-3]) + b"\n")
    with pytest.raises(ConfigError, match=r"header says \d+ events but the file holds \d+ \(truncated"):
        World.read(path)


# --- coherence (statistical, on 5,000 people) -------------------------------------------------


def test_given_world_then_volume_is_realistic(world_5k: World) -> None:
    per_person = world_5k.event_count / len(world_5k.persons)
    assert 80 <= per_person <= 200
    assert 100 <= len(world_5k.campaigns) <= 200  # three platforms, 26 weeks


def test_given_world_then_every_event_is_one_its_platform_exposes_for_a_person_on_it(world_5k: World) -> None:
    for person in world_5k.persons:
        for event in world_5k.events_of(person.id):
            assert event.platform in person.platforms
            assert event.type in PLATFORM_EVENT_TYPES[event.platform], (event.platform, event.type)
    assert not world_5k.events_on(MAILCHIMP) or all(
        e.type is not E.PAGE_VIEW for e in world_5k.events_on(MAILCHIMP)
    )


def test_given_world_then_events_are_in_window_after_creation_sorted_and_uniquely_numbered(
    world_5k: World,
) -> None:
    ids = [event.id for event in world_5k.iter_events()]
    assert ids == [f"e{n}" for n in range(1, len(ids) + 1)]
    for person in world_5k.persons:
        times = [event.at for event in world_5k.events_of(person.id)]
        assert times == sorted(times)
        if times:
            assert times[0] >= max(person.created_at, world_5k.start) and times[-1] <= world_5k.now


def test_given_world_then_high_fit_people_convert_far_more_often_than_low_fit(world_5k: World) -> None:
    converted: dict[str, list[bool]] = defaultdict(list)
    for person in world_5k.persons:
        band = "high" if person.hidden.fit >= 0.8 else "low" if person.hidden.fit < 0.4 else "mid"
        types = {event.type for event in world_5k.events_of(person.id)}
        converted[band].append(E.PURCHASE in types or E.DEAL_WON in types)
    rate = {band: sum(flags) / len(flags) for band, flags in converted.items()}
    assert rate["high"] > 2.5 * rate["low"]
    assert rate["high"] > rate["mid"] > rate["low"]
    assert 0.02 < sum(map(sum, converted.values())) / len(world_5k.persons) < 0.10


def test_given_world_then_outcomes_follow_the_hidden_action_stage(world_5k: World) -> None:
    for person in world_5k.persons:
        outcomes = [e for e in world_5k.events_of(person.id) if e.type in (E.PURCHASE, E.DEAL_WON)]
        reached_action = any(change.stage is Stage.ACTION for change in person.hidden.stages)
        assert bool(outcomes) == reached_action
        for event in outcomes:
            assert person.hidden.stage_at(event.at) is Stage.ACTION
            assert event.properties["amount"] > 0 and event.properties["currency"] == "USD"
            if event.type is E.PURCHASE:
                assert event.platform is MAILCHIMP and event.properties["order_id"].startswith(person.id)
            else:
                assert event.platform in (HUBSPOT, ACTIVECAMPAIGN) and event.properties["deal_id"].startswith(
                    person.id
                )


def test_given_world_then_students_and_competitors_do_not_buy(world_5k: World) -> None:
    for person in world_5k.persons:
        if person.hidden.persona in ("student", "competitor"):
            assert not any(e.type in (E.PURCHASE, E.DEAL_WON) for e in world_5k.events_of(person.id))


def test_given_world_then_machine_opens_come_seconds_after_delivery_for_a_quarter_of_people(
    world_5k: World,
) -> None:
    flagged = [p for p in world_5k.persons if p.hidden.machine_opens]
    assert 0.18 <= len(flagged) / len(world_5k.persons) <= 0.32
    machine_opens = 0
    for person in world_5k.persons:
        sent_at = {
            (e.platform, e.campaign): e.at for e in world_5k.events_of(person.id) if e.type is E.EMAIL_SENT
        }
        for event in world_5k.events_of(person.id):
            if event.type is E.EMAIL_OPEN and event.machine:
                machine_opens += 1
                assert person.hidden.machine_opens
                assert (
                    timedelta(seconds=1)
                    <= event.at - sent_at[(event.platform, event.campaign)]
                    <= timedelta(seconds=3)
                )
    assert machine_opens > 10_000


def test_given_world_then_scanner_clicks_hit_every_link_within_seconds(world_5k: World) -> None:
    scanned = 0
    for person in (p for p in world_5k.persons if p.hidden.link_scanner):
        events = world_5k.events_of(person.id)
        sent_at = {(e.platform, e.campaign): e.at for e in events if e.type is E.EMAIL_SENT}
        clicks: dict[tuple[Platform, str], set[str]] = defaultdict(set)
        for event in events:
            if event.type is E.EMAIL_CLICK and event.machine:
                assert event.at - sent_at[(event.platform, event.campaign)] <= timedelta(seconds=30)
                clicks[(event.platform, event.campaign)].add(event.url)
        for (_, campaign_id), urls in clicks.items():
            assert urls == set(world_5k.campaign(campaign_id).links)
            scanned += 1
    assert scanned > 100


def test_given_world_then_no_email_follows_a_hard_bounce_unsubscribe_or_spam_report(world_5k: World) -> None:
    stops = Counter()
    for person in world_5k.persons:
        stopped: set[Platform] = set()
        for event in world_5k.events_of(person.id):
            if event.type is E.EMAIL_SENT:
                assert event.platform not in stopped, (person.id, event.id)
            hard = event.type is E.EMAIL_BOUNCE and event.properties["bounce"] == "hard"
            if hard or event.type in EMAIL_STOPPERS:
                stopped.add(event.platform)
                stops[event.type] += 1
    assert stops[E.EMAIL_BOUNCE] > 50 and stops[E.EMAIL_UNSUBSCRIBE] > 50 and stops[E.EMAIL_SPAM_REPORT] >= 1


def test_given_world_then_deeper_stages_look_at_pricing_and_demo_more(world_5k: World) -> None:
    views: dict[Stage, Counter] = defaultdict(Counter)
    for person in world_5k.persons:
        if person.hidden.persona in ("competitor", "student"):
            continue
        for event in world_5k.events_of(person.id, HUBSPOT):
            if event.type is E.PAGE_VIEW:
                stage = person.hidden.stage_at(event.at)
                views[stage]["all"] += 1
                views[stage]["decision"] += (
                    event.url.endswith(("/pricing", "/demo")) or "/compare/" in event.url
                )
    share = {stage: counts["decision"] / counts["all"] for stage, counts in views.items()}
    assert share[Stage.DECISION] > 3 * share[Stage.AWARENESS]
    assert share[Stage.INVESTIGATION] > share[Stage.AWARENESS]


def test_given_world_then_emails_overlap_across_platforms_some_differing_only_in_case(
    world_5k: World,
) -> None:
    on_several = [p for p in world_5k.persons if len(p.platforms) > 1]
    assert 0.4 <= len(on_several) / len(world_5k.persons) <= 0.7
    variants = [
        (p, platform, email) for p in world_5k.persons for platform, email in p.platform_emails.items()
    ]
    assert len(variants) > 100
    for person, platform, email in variants:
        assert platform in person.platforms and email != person.email
        assert normalise_email(email) == normalise_email(person.email)
    canonical = [normalise_email(p.email) for p in world_5k.persons]
    assert len(set(canonical)) == len(canonical)


def test_given_world_then_personas_cover_real_world_variety(world_5k: World) -> None:
    personas = Counter(p.hidden.persona for p in world_5k.persons)
    assert {"ideal", "good", "average", "poor", "student", "competitor"} <= set(personas)
    assert Counter(p.seniority for p in world_5k.persons).keys() >= {
        "c-level",
        "vp",
        "director",
        "manager",
        "student",
    }
    domains = Counter(p.email.rpartition("@")[2] for p in world_5k.persons)
    assert domains["gmail.com"] > 50
    assert any(p.email.endswith("@scorewise.io") for p in world_5k.persons)
    names = [f"{p.first_name} {p.last_name}" for p in world_5k.persons]
    assert any(not name.isascii() for name in names)
    assert any("\u0590" <= ch <= "\u06ff" for name in names for ch in name)  # Hebrew or Arabic script
    assert all(p.email.isascii() for p in world_5k.persons)
    assert sum(p.job_title is None for p in world_5k.persons) > 100  # real records have holes


# --- moving the clock -------------------------------------------------------------------------


def test_given_world_when_extended_twice_the_same_way_then_deltas_are_identical(small_world: World) -> None:
    first, second = extend_world(small_world, days=3), extend_world(small_world, days=3)
    assert first.summary() == second.summary()
    assert (
        first.events == second.events and first.persons == second.persons and first.changes == second.changes
    )
    assert extend_world(small_world, days=3, seed=99).events != first.events


def test_given_world_when_delta_applied_then_only_later_events_are_added_and_now_moves(
    tmp_path: Path,
) -> None:
    world = generate_world(400, 11)
    before = world.dumps()
    old_now, old_count, old_people = world.now, world.event_count, len(world.persons)
    delta = extend_world(world, days=7)
    assert world.dumps() == before  # extend_world does not touch the world
    assert delta.events and delta.campaigns and delta.persons
    assert all(old_now < event.at <= old_now + timedelta(days=7) for event in delta.events)
    apply_delta(world, delta)
    assert world.now == old_now + timedelta(days=7)
    assert world.event_count == old_count + len(delta.events)
    assert [p.id for p in world.persons[old_people:]] == [
        f"p{n}" for n in range(old_people + 1, len(world.persons) + 1)
    ]
    assert before.split(b"\n", 1)[1].split(b'{"kind":"person"', 1)[0] in world.dumps()  # old campaigns kept
    path = tmp_path / "advanced.jsonl"
    world.write(path)
    assert World.read(path).dumps() == world.dumps()
    ids = [event.id for event in world.iter_events()]
    assert len(ids) == len(set(ids))


def test_given_applied_delta_when_applied_again_then_value_error(small_world: World) -> None:
    world = World.loads(small_world.dumps())
    delta = extend_world(world, days=1)
    apply_delta(world, delta)
    with pytest.raises(ValueError, match="make a new one with extend_world"):
        apply_delta(world, delta)


def test_given_long_advance_then_people_keep_progressing_and_records_change() -> None:
    world = generate_world(1000, 5)
    delta = extend_world(world, days=60)
    assert delta.stage_changes and delta.changes
    assert {change.field for change in delta.changes} >= {"job_title", "seniority"}
    apply_delta(world, delta)
    for change in delta.changes:
        assert world.person(change.person).updated_at >= change.at > world.start
    for stage_change in delta.stage_changes:
        stages = world.person(stage_change.person).hidden.stages
        assert stage_change.change in stages and stages == sorted(stages, key=lambda c: c.at)
    summary = delta.summary()
    assert summary["events"] == len(delta.events) and summary["until"] == "2026-12-31T00:00:00Z"


def test_given_split_window_then_campaign_schedule_is_the_same_as_one_window() -> None:
    a, b, c = DEFAULT_NOW - timedelta(days=40), DEFAULT_NOW - timedelta(days=17.5), DEFAULT_NOW
    for platform in Platform:
        whole = campaigns_between(7, platform, a, c)
        assert whole == campaigns_between(7, platform, a, b) + campaigns_between(7, platform, b, c)
        assert all(campaign.platform is platform and a < campaign.sent_at <= c for campaign in whole)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 1, tzinfo=UTC), None),
        (datetime(2026, 2, 1, tzinfo=UTC), Stage.AWARENESS),
        (datetime(2026, 3, 1, tzinfo=UTC), Stage.DECISION),
        (datetime(2026, 3, 2, tzinfo=UTC), Stage.AWARENESS),
    ],
)
def test_given_stage_history_then_stage_at_is_the_latest_change_before(
    moment: datetime, expected: Stage | None
) -> None:
    hidden = world_package.Hidden(persona="good", fit=0.7, intent=0.3, email_engagement=0.3)
    hidden.stages = [
        world_package.StageChange(Stage.AWARENESS, datetime(2026, 2, 1, tzinfo=UTC)),
        world_package.StageChange(Stage.DECISION, datetime(2026, 3, 1, tzinfo=UTC)),
        world_package.StageChange(Stage.AWARENESS, datetime(2026, 3, 2, tzinfo=UTC)),
    ]
    assert hidden.stage_at(moment) is expected


def test_package_exports_are_sorted_and_importable() -> None:
    assert world_package.__all__ == sorted(world_package.__all__)
    for name in world_package.__all__:
        assert getattr(world_package, name) is not None


def test_given_world_then_lookups_agree_with_the_events(small_world: World) -> None:
    everything = list(small_world.iter_events())
    for platform in Platform:
        on_platform = small_world.events_on(platform)
        assert on_platform == [e for e in everything if e.platform is platform]
        assert {e.person for e in on_platform} <= {p.id for p in small_world.persons_on(platform)}
        assert all(c.platform is platform for c in small_world.campaigns_on(platform))
    campaign = small_world.campaigns_on(MAILCHIMP)[0]
    activity = small_world.events_for_campaign(campaign.id)
    assert activity == [e for e in everything if e.campaign == campaign.id]
    assert {e.type for e in activity} >= {E.EMAIL_SENT, E.EMAIL_OPEN}
    person = small_world.persons[0]
    assert small_world.events_of(person.id, person.platforms[0]) == [
        e for e in small_world.events_of(person.id) if e.platform is person.platforms[0]
    ]
    assert small_world.person(person.id) is person and small_world.find_person("p0") is None
