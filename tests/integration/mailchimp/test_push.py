from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from leadsync.connectors.base import ScoreUpdate
from leadsync.connectors.errors import FatalError
from leadsync.connectors.mailchimp.connector import MailchimpConnector
from leadsync.sandbox.faults import Fault, FaultKind, FaultSettings
from leadsync.sandbox.server import SandboxServer
from tests.integration.mailchimp.conftest import connector_for, emulator_of, pull_all

SCORED = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)


def _updates(connector: MailchimpConnector) -> list[ScoreUpdate]:
    batches, _ = pull_all(connector)
    updates = []
    for i, contact in enumerate(c for b in batches["members"] for c in b.contacts):
        stage = ("awareness", "investigation", "decision")[i % 3]
        updates.append(
            ScoreUpdate(
                remote_id=contact.remote_id,
                email=contact.email or "",
                fields={
                    "affinity": 40 + i % 50,
                    "engagement": 12.5,
                    "stage": stage,
                    "grade": "B2",
                    "lifecycle": "lead",
                    "reason": "opened 3 campaigns",
                    "scored_at": SCORED,
                },
                tags_add=(f"leadsync_stage:{stage}",) if i % 2 == 0 else (),
                tags_remove=("leadsync_stage:awareness",) if i % 2 == 0 and stage != "awareness" else (),
            )
        )
    return updates


def _push_all(
    server: SandboxServer, connector: MailchimpConnector
) -> tuple[list[ScoreUpdate], dict[str, int]]:
    """Push scores for every member (fields already created); the updates and requests by route."""
    updates = _updates(connector)
    connector.ensure_fields()
    host = server.state.hosts["mailchimp"]
    host.stats.reset()
    report = connector.push(updates)
    assert not report.failed
    assert sorted(report.written) == sorted(u.remote_id for u in updates)
    return updates, host.stats.snapshot()["by_route"]


def test_given_scores_when_pushed_then_batches_of_500_and_tags_and_values_read_back(
    server: SandboxServer,
) -> None:
    with connector_for(server) as connector:
        updates, stats = _push_all(server, connector)
        sdk = connector.sdk
        per_list: dict[str, int] = {}
        for u in updates:
            per_list[u.remote_id.split(":")[0]] = per_list.get(u.remote_id.split(":")[0], 0) + 1
        batches = sum(math.ceil(n / 500) for n in per_list.values())
        tagged = sum(1 for u in updates if u.tags_add or u.tags_remove)
        assert stats.get("POST /3.0/lists/{list_id}", 0) == batches
        assert stats.get("POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags", 0) == tagged
        assert sum(stats.values()) == batches + tagged  # fields existed: nothing else was sent

        # Read back through the SDK itself.
        tags_by_name = {d.logical: d.tag for d in connector.fields.values()}
        for update in updates[:40]:
            list_id, member_id = update.remote_id.split(":")
            member = sdk.lists.get_list_member(list_id, member_id)
            merge = member["merge_fields"]
            assert merge[tags_by_name["affinity"]] == update.fields["affinity"]
            assert merge[tags_by_name["stage"]] == update.fields["stage"]
            assert merge[tags_by_name["scored_at"]] == "2026-11-01"
            names = {t["name"] for t in sdk.lists.get_list_member_tags(list_id, member_id)["tags"]}
            assert set(update.tags_add) <= names
            assert not set(update.tags_remove) & names
    assert emulator_of(server).state.automation_tag_writes == 0  # every tag write had is_syncing


def test_given_member_status_when_pushed_then_status_unchanged(server: SandboxServer) -> None:
    state = emulator_of(server).state
    with connector_for(server) as connector:
        updates = _updates(connector)
        before = {f"{a.id}:{k}": m.status for a in state.audiences.values() for k, m in a.members.items()}
        assert "unsubscribed" in before.values() or "cleaned" in before.values()
        connector.push(updates)
    after = {f"{a.id}:{k}": m.status for a in state.audiences.values() for k, m in a.members.items()}
    assert after == before


def test_given_foreign_tag_when_asked_to_remove_then_left_alone(server: SandboxServer) -> None:
    state = emulator_of(server).state
    audience = next(iter(state.audiences.values()))
    key, member = next(iter(audience.members.items()))
    member.tags["VIP customer"] = (1, member.last_changed)
    with connector_for(server) as connector:
        report = connector.push(
            [ScoreUpdate(f"{audience.id}:{key}", member.email, tags_remove=("VIP customer",))]
        )
    assert "VIP customer" in member.tags
    assert report.written == [f"{audience.id}:{key}"]


def test_given_field_value_refused_when_pushed_then_member_quarantined_others_written(
    server: SandboxServer,
) -> None:
    audience = next(iter(emulator_of(server).state.audiences.values()))
    (k1, m1), (k2, m2) = list(audience.members.items())[:2]
    with connector_for(server) as connector:
        report = connector.push(
            [
                ScoreUpdate(f"{audience.id}:{k1}", m1.email, fields={"affinity": "very high"}),
                ScoreUpdate(f"{audience.id}:{k2}", m2.email, fields={"affinity": 77}),
                ScoreUpdate(f"{audience.id}:{'0' * 32}", "nobody@example.invalid", fields={"affinity": 5}),
            ]
        )
    assert report.written == [f"{audience.id}:{k2}"]
    failed = {f.remote_id: f.reason for f in report.failed}
    assert "quarantined" in failed[f"{audience.id}:{k1}"]
    assert f"{audience.id}:{'0' * 32}" in failed  # not a member: refused per member, not created
    assert audience.find("nobody@example.invalid") is None


def test_given_full_audience_when_fields_ensured_then_clear_error(server: SandboxServer) -> None:
    from leadsync.sandbox.mailchimp.state import MergeField

    audience = next(iter(emulator_of(server).state.audiences.values()))
    while len(audience.merge_fields) < 28:
        n = len(audience.merge_fields) + 1
        audience.merge_fields.append(MergeField(n, f"EXTRA{n}", f"Extra {n}", "text"))
    with connector_for(server, lists=[audience.id]) as connector, pytest.raises(FatalError) as info:
        connector.ensure_fields()
    assert "28 of its 30 merge fields" in str(info.value) and "needs 7 more" in str(info.value)


def test_given_fields_when_ensured_then_tags_fit_ten_characters_and_second_call_creates_none(
    server: SandboxServer,
) -> None:
    with connector_for(server) as connector:
        connector.ensure_fields()
        audience = next(iter(emulator_of(server).state.audiences.values()))
        ours = [f for f in audience.merge_fields if f.name.startswith("leadsync_")]
        assert len(ours) == 7 and all(len(f.tag) <= 10 for f in ours)
        assert {f.type for f in ours} == {"number", "text", "date"}
        again = connector_for(server)
        host = server.state.hosts["mailchimp"]
        host.stats.reset()
        again.ensure_fields()
        assert host.stats.write_requests == 0
        again.close()


def test_given_bulk_tags_when_pushed_then_each_tag_goes_500_members_a_request_and_reads_back(
    server: SandboxServer,
) -> None:
    state = emulator_of(server).state
    with connector_for(server, bulk_tags=True) as connector:
        updates, stats = _push_all(server, connector)
        adds: dict[tuple[str, str], int] = {}
        removes: dict[tuple[str, str], int] = {}
        for u in updates:
            list_id = u.remote_id.split(":")[0]
            for name in u.tags_add:
                adds[list_id, name] = adds.get((list_id, name), 0) + 1
            for name in u.tags_remove:
                removes[list_id, name] = removes.get((list_id, name), 0) + 1
        tags = set(adds) | set(removes)
        assert stats.get("POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags", 0) == 0
        assert stats.get("GET /3.0/lists/{list_id}/tag-search", 0) == len(tags)  # one lookup a tag
        assert stats.get("POST /3.0/lists/{list_id}/segments/{segment_id}", 0) == sum(
            math.ceil(max(adds.get(t, 0), removes.get(t, 0)) / 500) for t in tags
        )
        for update in updates[:40]:
            list_id, member_id = update.remote_id.split(":")
            names = {t["name"] for t in connector.sdk.lists.get_list_member_tags(list_id, member_id)["tags"]}
            assert set(update.tags_add) <= names
            assert not set(update.tags_remove) & names
    assert state.synced_tag_writes == 0 and state.automation_tag_writes > 0  # bulk has no is_syncing


def test_given_bulk_tags_when_a_lifecycle_moves_on_then_the_old_tag_goes_and_the_new_one_comes(
    server: SandboxServer,
) -> None:
    audience = next(iter(emulator_of(server).state.audiences.values()))
    members = list(audience.members.items())[:3]
    ids = [f"{audience.id}:{key}" for key, _ in members]
    with connector_for(server, bulk_tags=True) as connector:
        first = connector.push(
            [
                ScoreUpdate(i, m.email, tags_add=("leadsync_lifecycle_lead",))
                for i, (_, m) in zip(ids, members, strict=True)
            ]
        )
        second = connector.push(
            [
                ScoreUpdate(
                    i,
                    m.email,
                    tags_add=("leadsync_lifecycle_customer",),
                    tags_remove=("leadsync_lifecycle_lead",),
                )
                for i, (_, m) in zip(ids, members, strict=True)
            ]
        )
    assert sorted(first.written) == sorted(second.written) == sorted(ids)
    for _, member in members:
        assert "leadsync_lifecycle_customer" in member.tags
        assert "leadsync_lifecycle_lead" not in member.tags


def test_given_more_than_500_emails_when_bulk_tagging_then_the_sandbox_refuses_like_mailchimp(
    server: SandboxServer,
) -> None:
    audience = next(iter(emulator_of(server).state.audiences.values()))
    with connector_for(server) as connector:
        tag = connector._send(
            "POST", f"lists/{audience.id}/segments", json={"name": "big", "static_segment": []}
        )
        with pytest.raises(FatalError):
            connector._send(
                "POST",
                f"lists/{audience.id}/segments/{tag['id']}",
                json={"members_to_add": [f"p{i}@example.com" for i in range(501)]},
            )
        found = connector._send("GET", f"lists/{audience.id}/tag-search", params={"name": "bi"})
    assert found["tags"] == [{"id": tag["id"], "name": "big"}]


def test_given_a_tag_lookup_failing_when_bulk_tagging_then_its_members_are_retried_later_and_the_rest_written(
    server: SandboxServer,
) -> None:
    audience = next(iter(emulator_of(server).state.audiences.values()))
    members = list(audience.members.items())[:4]
    host = server.state.hosts["mailchimp"]
    updates = [
        ScoreUpdate(
            f"{audience.id}:{key}",
            member.email,
            fields={"affinity": 60},
            tags_add=("leadsync_stage_decision",) if i < 2 else (),
        )
        for i, (key, member) in enumerate(members)
    ]
    with connector_for(server, bulk_tags=True, max_attempts=2) as connector:
        connector.ensure_fields()
        host.faults.configure(
            FaultSettings(paths="/tag-search"), [Fault(FaultKind.SERVER_ERROR, status=503)] * 10
        )
        first = connector.push(updates)
        host.faults.clear()
        second = connector.push(updates[:2])
    assert sorted(f.remote_id for f in first.failed) == sorted(u.remote_id for u in updates[:2])
    assert all(f.retriable for f in first.failed)
    assert first.written == [u.remote_id for u in updates[2:]]
    assert sorted(second.written) == sorted(u.remote_id for u in updates[:2])
    assert all("leadsync_stage_decision" in member.tags for _, member in members[:2])
