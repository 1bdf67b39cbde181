"""Change-only write-back: decide what to write to each identity, and remember what was written.

The platform is the truth for the fields and tags leadsync owns (contract 3): a pull reads what
each contact holds in them (``Attributes.observed``, see ``sync.observed``), and a plan compares the
new scores with those values wherever they were read after leadsync's last write there; otherwise
with the last value leadsync pushed (``writeback_state``). So a value someone else changed is
written again (or only reported, ``[writeback] on_drift = "report"``), and a store rebuilt from
nothing converges to one stage tag and one lifecycle tag per contact. An update carries only the
fields whose value differs. Every write (or failed attempt) lands in ``writeback_audit``, with the
value it replaced. Lifecycle stages only move forward.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, and_, delete, select

from leadsync.config.scoring_model import LIFECYCLE_LEVELS, STAGES
from leadsync.connectors.base import PushReport, ScoreUpdate
from leadsync.connectors.catalog import LIFECYCLE_STAGE, STAGE_TAGS
from leadsync.connectors.errors import BadRecord
from leadsync.connectors.records import Platform
from leadsync.sync.ingest import quarantine
from leadsync.sync.observed import (
    LIFECYCLE_TAG,
    OWNED_TAGS,
    PENDING,
    STAGE_TAG,
    TRIGGER_FIELDS,
    same_value,
)
from leadsync.sync.store import upsert
from leadsync.sync.store.models import Attributes, Identity, Score, SyncRun, WritebackAudit, WritebackState

__all__ = [
    "TRIGGER_FIELDS",
    "VALUE_FIELDS",
    "Drift",
    "Plan",
    "PlannedWrite",
    "adopt_values",
    "desired_values",
    "diff_rows",
    "first_persons",
    "mark_pending",
    "own_tags",
    "plan_source",
    "plan_writes",
    "record_push",
]

# The fields leadsync writes and keeps the last pushed value of.
VALUE_FIELDS = ("affinity", "engagement", "stage", "grade", "lifecycle", "reason")
PLATFORM_LIFECYCLE = "platform_lifecycle"
# ``PENDING`` (sync.observed) is written, with the tags about to be added, just before a chunk goes
# to the platform, and removed when its outcome is recorded: if it is still there, a run died in
# between and the platform may hold anything from the old to the new values, so the next plan
# re-sends that identity in full.
OnDrift = Literal["rewrite", "report"]


def lifecycle_rank(value: str | None) -> int:
    return LIFECYCLE_LEVELS.index(value) if value in LIFECYCLE_LEVELS else -1


def tag_name(prefix: str, kind: str, value: str) -> str:
    return f"{prefix}{kind}_{value}"


def own_tags(prefix: str, kind: str) -> set[str]:
    """Every tag of ``kind`` ("stage" or "lifecycle") leadsync can write: a tag someone else named
    like ours ("leadsync_stage_partner") is not leadsync's, and leadsync never removes it."""
    return {tag_name(prefix, kind, value) for value in (STAGES if kind == "stage" else LIFECYCLE_LEVELS)}


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
    """One identity's update plus what the state will hold once it is written. ``old`` is what the
    write replaces: the platform's value where the last pull read it, else leadsync's last write.
    ``size`` orders plans (largest score change first): |Δ affinity| + |Δ engagement|, a value
    never written counting from 0; ``moves`` (stage, lifecycle and grade changes) breaks ties."""

    update: ScoreUpdate
    old: dict[str, str | None]
    new: dict[str, str | None] = field(default_factory=dict)
    person_id: int | None = None
    size: float = 0.0
    moves: int = 0

    @property
    def order(self) -> tuple[float, int, str, str]:
        return (-self.size, -self.moves, self.update.email, self.update.remote_id)


@dataclass(frozen=True)
class Drift:
    """A value of leadsync's that someone else changed on the platform since leadsync wrote it."""

    remote_id: str
    email: str
    field: str
    ours: str | None
    theirs: str | None
    action: str  # "rewrite" (written again) | "report" (left as it is)


@dataclass
class Plan:
    """What to write, the drift found, and ``adopt``: (remote id, field, value) of values the
    platform already holds as the scores want, which leadsync has no record of writing (a store
    rebuilt from nothing): recorded as leadsync's (``adopt_values``), so that a later change by
    someone else is drift, not news."""

    writes: list[PlannedWrite] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    adopt: list[tuple[str, str, str]] = field(default_factory=list)
    # identities whose forward-only lifecycle promotion was held back (``hold_lifecycle_of``)
    lifecycle_held: int = 0


def _number(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def plan_writes(
    connection: Connection,
    source: str,
    *,
    prefix: str,
    lifecycle_writeback: bool,
    now: datetime,
    on_drift: OnDrift = "rewrite",
) -> list[PlannedWrite]:
    """Updates for every identity of ``source`` whose scores differ from what the platform holds
    (see ``plan_source``), largest change first."""
    return plan_source(
        connection, source, prefix=prefix, lifecycle_writeback=lifecycle_writeback, now=now, on_drift=on_drift
    ).writes


def plan_source(
    connection: Connection,
    source: str,
    *,
    prefix: str,
    lifecycle_writeback: bool,
    now: datetime,
    on_drift: OnDrift = "rewrite",
    hold_lifecycle_of: Collection[str] = (),
    remote_ids: Sequence[str] | None = None,
) -> Plan:
    """What to write to each identity of ``source`` (only ``remote_ids`` when given: the webhook
    fast path plans one person), and the drift found on the way.

    ``hold_lifecycle_of``: sources whose pull failed in this run. A person with an identity in one
    of them gets no lifecycle promotion now: the platform's lifecycle stage only moves forward, and
    a promotion made without that source's data (an unsubscribe, a hard bounce it did not deliver)
    could never be taken back (issue 20). Their other fields are written; the promotion comes with
    the first push after that source's pull succeeds (nothing is recorded as written meanwhile).
    A failed source that has never finished a pull may hold anyone: then every promotion waits."""
    held_persons: set[int] | None = set()  # None: everyone
    if hold_lifecycle_of:
        failed = sorted(hold_lifecycle_of)
        # pull runs: step "pull" (push runs are recorded as command "push")
        pulled_once = set(
            connection.execute(
                select(SyncRun.source)
                .where(
                    SyncRun.source.in_(failed),
                    SyncRun.status == "ok",
                    SyncRun.step == "pull",
                    SyncRun.command != "push",
                )
                .distinct()
            ).scalars()
        )
        if set(failed) - pulled_once:
            held_persons = None
        else:
            held_persons = set(
                connection.execute(
                    select(Identity.person_id)
                    .where(Identity.source.in_(failed), Identity.person_id.is_not(None))
                    .distinct()
                ).scalars()
            )
    state: dict[str, dict[str, tuple[str | None, datetime]]] = defaultdict(dict)
    state_query = select(
        WritebackState.remote_id, WritebackState.field, WritebackState.value, WritebackState.pushed_at
    ).where(WritebackState.source == source)
    if remote_ids is not None:
        state_query = state_query.where(WritebackState.remote_id.in_(list(remote_ids)))
    for remote_id, name, value, pushed_at in connection.execute(state_query):
        state[remote_id][name] = (value, pushed_at)
    rows = connection.execute(
        select(
            Identity.remote_id,
            Identity.email,
            Identity.person_id,
            Identity.platform,
            Score.affinity,
            Score.engagement,
            Score.stage,
            Score.grade,
            Score.lifecycle,
            Score.reason,
            Attributes.lifecycle_stage,
            Attributes.observed,
            Attributes.observed_at,
        )
        .join(Score, Score.person_id == Identity.person_id)
        .outerjoin(
            Attributes,
            and_(Attributes.source == Identity.source, Attributes.remote_id == Identity.remote_id),
        )
        .where(
            and_(Identity.source == source, Identity.email.is_not(None)),
            Identity.remote_id.in_(list(remote_ids)) if remote_ids is not None else and_(True),
        )
    )
    plan = Plan()
    for row in rows:
        write = _plan_identity(
            row,
            state.get(row.remote_id, {}),
            prefix,
            lifecycle_writeback,
            now,
            on_drift,
            plan,
            hold_lifecycle=held_persons is None or row.person_id in held_persons,
        )
        if write is not None:
            plan.writes.append(write)
    plan.writes.sort(key=lambda w: w.order)
    return plan


def _plan_identity(
    row: Any,
    last_state: Mapping[str, tuple[str | None, datetime]],
    prefix: str,
    lifecycle_writeback: bool,
    now: datetime,
    on_drift: OnDrift,
    plan: Plan,
    *,
    hold_lifecycle: bool = False,
) -> PlannedWrite | None:
    score = row
    last = {name: value for name, (value, _) in last_state.items()}
    observed: Mapping[str, Any] | None = row.observed
    observed_at = _utc(row.observed_at)

    def fresh(name: str) -> bool:
        """Whether the platform's value of ``name`` was read after leadsync last wrote it."""
        if observed is None or observed_at is None:
            return False
        key = OWNED_TAGS if name in (STAGE_TAG, LIFECYCLE_TAG) else name
        if key not in observed:
            return False
        pushed = last_state.get(name)
        return pushed is None or observed_at >= _utc(pushed[1])  # type: ignore[operator]

    def held(name: str) -> str | None:
        return observed[name] if fresh(name) else last.get(name)  # type: ignore[index]

    want = desired_values(score, scored_at=now)
    pending = last.get(PENDING)
    maybe_tags = set(json.loads(pending)) if pending else set()
    left: set[str] = set()  # fields another writer changed, left alone (on_drift = "report")
    for name in TRIGGER_FIELDS:
        if fresh(name) and name in last and not same_value(name, observed[name], last[name]):  # type: ignore[index]
            plan.drift.append(
                Drift(row.remote_id, row.email, name, last[name], observed[name], on_drift)  # type: ignore[index]
            )
            if on_drift == "report":
                left.add(name)

    def differs(name: str) -> bool:
        return name not in left and (pending is not None or not same_value(name, held(name), want[name]))

    # engagement ticks with decay only past a whole point of hysteresis (scoring.engine.score_many)
    changed = (
        {k: want[k] for k in VALUE_FIELDS if differs(k)} if any(differs(k) for k in TRIGGER_FIELDS) else {}
    )
    for name in TRIGGER_FIELDS:
        if (
            name not in changed
            and name not in left
            and fresh(name)
            and same_value(name, observed[name], want[name])
        ):  # type: ignore[index]
            if name not in last or not same_value(name, last[name], want[name]):
                plan.adopt.append((row.remote_id, name, want[name]))
    old: dict[str, str | None] = {k: held(k) for k in changed}
    new: dict[str, str | None] = dict(changed)
    if changed:
        changed["scored_at"] = new["scored_at"] = want["scored_at"]
        old["scored_at"] = held("scored_at")
    tags_add: list[str] = []
    tags_remove: list[str] = []
    tagged = Platform(row.platform) in STAGE_TAGS
    for key, kind, value in (
        (STAGE_TAG, "stage", score.stage),
        (LIFECYCLE_TAG, "lifecycle", score.lifecycle),
    ):
        if not tagged:
            break
        wanted = tag_name(prefix, kind, value)
        family = tag_name(prefix, kind, "")
        if fresh(key):
            # leadsync's tags of this kind as the platform holds them: converge to exactly one. Only
            # names leadsync can write count (a stage or lifecycle value): a tag someone else named
            # like ours ("leadsync_stage_partner") is not leadsync's, and stays.
            held_tags = sorted(t for t in observed[OWNED_TAGS] if t in own_tags(prefix, kind))  # type: ignore[index]
            mine = last.get(key)
            if mine is not None and not set(held_tags) <= {mine, *maybe_tags}:
                plan.drift.append(
                    Drift(row.remote_id, row.email, key, mine, ",".join(held_tags) or None, on_drift)
                )
                if on_drift == "report":
                    continue
            if held_tags == [wanted] and pending is None:
                if mine != wanted:
                    plan.adopt.append((row.remote_id, key, wanted))
                continue
            tags_add.append(wanted)
            stale = {*held_tags, *(t for t in maybe_tags if t.startswith(family))}
            tags_remove.extend(sorted(t for t in stale if t != wanted))
            old[key], new[key] = ",".join(held_tags) or None, wanted
        elif last.get(key) != wanted or pending is not None:
            tags_add.append(wanted)
            # only ever tags leadsync itself set: the last pushed one, and any a dead run sent
            stale = {last.get(key), *(t for t in maybe_tags if t.startswith(family))}
            tags_remove.extend(sorted(t for t in stale if t and t != wanted))
            old[key], new[key] = last.get(key), wanted
    platform_lifecycle = None
    if (
        lifecycle_writeback
        and Platform(row.platform) in LIFECYCLE_STAGE
        and lifecycle_rank(score.lifecycle) > lifecycle_rank(last.get(PLATFORM_LIFECYCLE))
        and hold_lifecycle
    ):
        plan.lifecycle_held += 1  # a source of this person's data failed to pull: not now
    elif (
        lifecycle_writeback
        and Platform(row.platform) in LIFECYCLE_STAGE
        and lifecycle_rank(score.lifecycle) > lifecycle_rank(last.get(PLATFORM_LIFECYCLE))
    ):
        platform_lifecycle = score.lifecycle  # forward only; the connector also checks the platform
        old[PLATFORM_LIFECYCLE], new[PLATFORM_LIFECYCLE] = last.get(PLATFORM_LIFECYCLE), score.lifecycle
    if not (changed or tags_add or tags_remove or platform_lifecycle):
        return None
    update = ScoreUpdate(
        remote_id=row.remote_id,
        email=row.email,
        fields=changed,
        lifecycle=platform_lifecycle,
        lifecycle_seen=row.lifecycle_stage,
        tags_add=tuple(tags_add),
        tags_remove=tuple(tags_remove),
    )
    size = sum(abs(_number(want[k]) - _number(held(k))) for k in ("affinity", "engagement"))
    moves = sum(1 for k in ("stage", "lifecycle", "grade") if not same_value(k, held(k), want[k]))
    return PlannedWrite(update=update, old=old, new=new, person_id=row.person_id, size=size, moves=moves)


def first_persons(writes: Sequence[PlannedWrite], limit: int) -> set[int | None]:
    """The ``limit`` persons with the largest score change among ``writes`` (``push --limit``)."""
    chosen: set[int | None] = set()
    for write in sorted(writes, key=lambda w: w.order):
        if len(chosen) >= limit:
            break
        chosen.add(write.person_id)
    return chosen


# The order fields are shown in; the rest after them.
_SHOWN = (*VALUE_FIELDS, "scored_at", STAGE_TAG, LIFECYCLE_TAG, PLATFORM_LIFECYCLE)


def diff_rows(source: str, platform: str, writes: Sequence[PlannedWrite]) -> list[dict[str, Any]]:
    """What a dry run shows: one row per field to write, largest score change first."""
    rank = {name: index for index, name in enumerate(_SHOWN)}
    rows: list[dict[str, Any]] = []
    for write in sorted(writes, key=lambda w: w.order):
        for name in sorted(write.new, key=lambda n: rank.get(n, len(rank))):
            rows.append(
                {
                    "email": write.update.email,
                    "source": source,
                    "platform": platform,
                    "remote_id": write.update.remote_id,
                    "field": name,
                    "old": write.old.get(name),
                    "new": write.new[name],
                    "change": round(write.size, 2),
                }
            )
    return rows


def adopt_values(
    engine: Engine, source: str, adopt: Sequence[tuple[str, str, str]], *, now: datetime
) -> None:
    """Record values the platform already holds as leadsync's own (``Plan.adopt``)."""
    if not adopt:
        return
    rows = [
        {"source": source, "remote_id": remote_id, "field": name, "value": value, "pushed_at": now}
        for remote_id, name, value in adopt
    ]
    with engine.begin() as connection:
        upsert(
            connection,
            WritebackState,
            rows,
            key=["source", "remote_id", "field"],
            update=["value", "pushed_at"],
        )


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
