"""Change-only write-back: decide what to write to each identity, and remember what was written.

The last successfully pushed value of every (source, remote id, field) lives in
``writeback_state``; an update carries only the fields whose desired value differs from it. Every
write (or failed attempt) lands in ``writeback_audit``. Lifecycle stages only move forward.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, select

from leadsync.config.scoring_model import LIFECYCLE_LEVELS
from leadsync.connectors.base import PushReport, ScoreUpdate
from leadsync.connectors.errors import BadRecord
from leadsync.sync.ingest import quarantine
from leadsync.sync.store import upsert
from leadsync.sync.store.models import Attributes, Identity, Score, WritebackAudit, WritebackState

__all__ = [
    "TRIGGER_FIELDS",
    "VALUE_FIELDS",
    "PlannedWrite",
    "desired_values",
    "mark_pending",
    "plan_writes",
    "record_push",
]

# The fields leadsync writes and keeps the last pushed value of.
VALUE_FIELDS = ("affinity", "engagement", "stage", "grade", "lifecycle", "reason")
# Fields whose change alone justifies a write; the rest (the reason, scored_at) ride along with them.
# The reason quotes points that decay by the minute: on its own, a new wording is not worth a write
# (an unchanged re-sync must write nothing), and it goes out with the next change of a score.
TRIGGER_FIELDS = ("affinity", "engagement", "stage", "grade", "lifecycle")
STAGE_TAG = "tag:stage"
LIFECYCLE_TAG = "tag:lifecycle"
PLATFORM_LIFECYCLE = "platform_lifecycle"
# Written (with the tags about to be added) just before a chunk goes to the platform, removed when
# its outcome is recorded: if it is still there, a run died in between and the platform may hold
# anything from the old to the new values, so the next plan re-sends that identity in full.
PENDING = "pending"


def lifecycle_rank(value: str | None) -> int:
    return LIFECYCLE_LEVELS.index(value) if value in LIFECYCLE_LEVELS else -1


def tag_name(prefix: str, kind: str, value: str) -> str:
    return f"{prefix}{kind}_{value}"


def desired_values(score: Any, *, scored_at: datetime) -> dict[str, str]:
    """The logical fields as the strings every platform stores."""
    return {
        "affinity": str(int(score.affinity)),
        "engagement": str(int(score.engagement)),
        "stage": score.stage,
        "grade": score.grade,
        "lifecycle": score.lifecycle,
        "reason": score.reason,
        "scored_at": scored_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@dataclass
class PlannedWrite:
    """One identity's update plus what the state will hold once it is written."""

    update: ScoreUpdate
    old: dict[str, str | None]
    new: dict[str, str | None] = field(default_factory=dict)


def plan_writes(
    connection: Connection,
    source: str,
    *,
    prefix: str,
    lifecycle_writeback: bool,
    now: datetime,
) -> list[PlannedWrite]:
    """Updates for every identity of ``source`` whose scores differ from what was last pushed."""
    state: dict[str, dict[str, str | None]] = defaultdict(dict)
    for remote_id, name, value in connection.execute(
        select(WritebackState.remote_id, WritebackState.field, WritebackState.value).where(
            WritebackState.source == source
        )
    ):
        state[remote_id][name] = value
    rows = connection.execute(
        select(
            Identity.remote_id,
            Identity.email,
            Score.affinity,
            Score.engagement,
            Score.stage,
            Score.grade,
            Score.lifecycle,
            Score.reason,
            Attributes.lifecycle_stage,
        )
        .join(Score, Score.person_id == Identity.person_id)
        .outerjoin(
            Attributes,
            and_(Attributes.source == Identity.source, Attributes.remote_id == Identity.remote_id),
        )
        .where(and_(Identity.source == source, Identity.email.is_not(None)))
        .order_by(Identity.remote_id)
    )
    plans: list[PlannedWrite] = []
    for row in rows:
        score = row
        last = state.get(row.remote_id, {})
        want = desired_values(score, scored_at=now)
        pending = last.get(PENDING)
        maybe_tags = set(json.loads(pending)) if pending else set()
        # engagement ticks with decay only past a whole point of hysteresis (scoring.engine.score_many)
        if pending is not None or any(last.get(k) != want[k] for k in TRIGGER_FIELDS):
            changed = {k: want[k] for k in VALUE_FIELDS if pending is not None or last.get(k) != want[k]}
        else:
            changed = {}
        old: dict[str, str | None] = {k: last.get(k) for k in changed}
        new: dict[str, str | None] = dict(changed)
        if changed:
            changed["scored_at"] = new["scored_at"] = want["scored_at"]
            old["scored_at"] = last.get("scored_at")
        tags_add: list[str] = []
        tags_remove: list[str] = []
        for key, kind, value in (
            (STAGE_TAG, "stage", score.stage),
            (LIFECYCLE_TAG, "lifecycle", score.lifecycle),
        ):
            wanted = tag_name(prefix, kind, value)
            if last.get(key) != wanted or pending is not None:
                tags_add.append(wanted)
                # only ever tags leadsync itself set: the last pushed one, and any a dead run sent
                stale = {last.get(key), *(t for t in maybe_tags if t.startswith(tag_name(prefix, kind, "")))}
                tags_remove.extend(sorted(t for t in stale if t and t != wanted))
                old[key], new[key] = last.get(key), wanted
        platform_lifecycle = None
        if lifecycle_writeback and lifecycle_rank(score.lifecycle) > lifecycle_rank(
            last.get(PLATFORM_LIFECYCLE)
        ):
            platform_lifecycle = score.lifecycle  # forward only; the connector also checks the platform
            old[PLATFORM_LIFECYCLE], new[PLATFORM_LIFECYCLE] = last.get(PLATFORM_LIFECYCLE), score.lifecycle
        if not (changed or tags_add or platform_lifecycle):
            continue
        update = ScoreUpdate(
            remote_id=row.remote_id,
            email=row.email,
            fields=changed,
            lifecycle=platform_lifecycle,
            lifecycle_seen=row.lifecycle_stage,
            tags_add=tuple(tags_add),
            tags_remove=tuple(tags_remove),
        )
        plans.append(PlannedWrite(update=update, old=old, new=new))
    return plans


def mark_pending(engine: Engine, source: str, plans: Sequence[PlannedWrite], *, now: datetime) -> None:
    """Before a chunk is sent: remember that its outcome is unknown until ``record_push``."""
    rows = [
        {
            "source": source,
            "remote_id": plan.update.remote_id,
            "field": PENDING,
            "value": json.dumps(sorted(plan.update.tags_add)),
            "pushed_at": now,
        }
        for plan in plans
    ]
    with engine.begin() as connection:
        upsert(
            connection,
            WritebackState,
            rows,
            key=["source", "remote_id", "field"],
            update=["value", "pushed_at"],
        )


def record_push(
    engine: Engine,
    source: str,
    plans: Sequence[PlannedWrite],
    report: PushReport,
    *,
    run_id: int | None,
    now: datetime,
) -> None:
    """Remember what was written (state + audit) and keep failures in quarantine, in one transaction."""
    failed = {failure.remote_id: failure for failure in report.failed}
    written = set(report.written)
    state_rows: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    bad: list[BadRecord] = []
    for plan in plans:
        remote_id = plan.update.remote_id
        if remote_id in written:
            for name, value in plan.new.items():
                state_rows.append(
                    {
                        "source": source,
                        "remote_id": remote_id,
                        "field": name,
                        "value": value,
                        "pushed_at": now,
                    }
                )
                audit_rows.append(
                    _audit(run_id, source, remote_id, name, plan.old.get(name), value, "written", None, now)
                )
        elif remote_id in failed:
            reason = failed[remote_id].reason
            for name, value in plan.new.items():
                audit_rows.append(
                    _audit(run_id, source, remote_id, name, plan.old.get(name), value, "failed", reason, now)
                )
            if not failed[remote_id].retriable:
                bad.append(
                    BadRecord(
                        f"push failed: {reason}",
                        record={"update": _update_dict(plan.update)},
                        remote_id=remote_id,
                    )
                )
    with engine.begin() as connection:
        upsert(
            connection,
            WritebackState,
            state_rows,
            key=["source", "remote_id", "field"],
            update=["value", "pushed_at"],
        )
        ids = [plan.update.remote_id for plan in plans]
        for start in range(0, len(ids), 500):
            connection.execute(
                delete(WritebackState).where(
                    WritebackState.source == source,
                    WritebackState.field == PENDING,
                    WritebackState.remote_id.in_(ids[start : start + 500]),
                )
            )
        if audit_rows:
            connection.execute(WritebackAudit.__table__.insert(), audit_rows)  # type: ignore[attr-defined]
        quarantine(connection, source, "push", bad, now)


def _update_dict(update: ScoreUpdate) -> dict[str, Any]:
    return {
        "remote_id": update.remote_id,
        "fields": dict(update.fields),
        "lifecycle": update.lifecycle,
        "tags_add": list(update.tags_add),
        "tags_remove": list(update.tags_remove),
    }


def _audit(
    run_id: int | None,
    source: str,
    remote_id: str,
    name: str,
    old: str | None,
    new: str | None,
    status: str,
    error: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "source": source,
        "remote_id": remote_id,
        "field": name,
        "old_value": old,
        "new_value": new,
        "status": status,
        "error": error,
        "at": now,
    }
