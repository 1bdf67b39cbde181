"""Table models: where leadsync keeps what it pulled, scored and pushed.

One person per normalised email; each platform record is an identity linked to a person; its
attributes and events hang off the identity's (source, remote id). Cursors live here too, so a
cursor is committed in the same transaction as the rows it covers (DESIGN.md "Sync state").

Schema changes go through Alembic (``sync/migrations``), applied on start.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "Attributes",
    "ChangedPerson",
    "Event",
    "Identity",
    "Lease",
    "MarkClaims",
    "Person",
    "Quarantine",
    "Score",
    "ScoreHistory",
    "SyncCursor",
    "SyncRun",
    "WebhookDelivery",
    "WritebackAudit",
    "WritebackState",
]


class Person(SQLModel, table=True):
    """One human, keyed by trimmed lowercased email."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True)
    created_at: datetime
    updated_at: datetime


class ChangedPerson(SQLModel, table=True):
    """A person whose data changed since their last score: the next re-score includes them, and
    deletes the row if nothing changed again while it ran. ``version`` is 0 while a re-score holds
    the mark (``sync.rescore.claim_marks``); a page ingested after that moves it off 0, and the
    re-score leaves the row for the next run (a time stamp would not do: an ingest stamps its ``now``
    before it commits). ``changed_at`` is the latest change.

    A table of its own, not a flag on ``person``: every ingested page marks hundreds of persons, and
    upserting into this small table dirties far fewer pages than updating scattered person rows and
    an index on the flag (the ingest hot path, issue #9).
    """

    person_id: int = Field(primary_key=True, foreign_key="person.id")
    changed_at: datetime
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class MarkClaims(SQLModel, table=True):
    """How many times the change marks have been claimed: one row (``id`` 1), one more on every
    claim, under the marks lock (``sync.store.marklock``). While the count stays the same, no mark
    a page committed has been claimed since: a pull that remembers whose marks it made at one count
    need not make them again (``sync.store.marklock.MarkedContacts``)."""

    id: int = Field(default=1, primary_key=True)
    claims: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Identity(SQLModel, table=True):
    """A contact as one source knows it. The remote id is stable; the email may change."""

    __table_args__ = (UniqueConstraint("source", "remote_id", name="uq_identity_source_remote"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    platform: str
    remote_id: str
    email: str | None = Field(default=None, index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    seen_at: datetime


class Attributes(SQLModel, table=True):
    """The normalised attributes of one identity, as last pulled."""

    __table_args__ = (UniqueConstraint("source", "remote_id", name="uq_attributes_source_remote"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    remote_id: str
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    seniority: str | None = None
    company: str | None = None
    industry: str | None = None
    company_size: int | None = None
    country: str | None = None
    lifecycle_stage: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # A hash of everything above that scoring reads (``sync.observed.content_digest``): a re-read
    # contact with the same digest changed only in what scoring ignores (leadsync's own fields, the
    # platform's modification stamp), so it is not re-scored and its ``updated_at`` stays.
    digest: str | None = None
    # What the platform held in leadsync's own fields and tags at ``observed_at`` (the ingest's
    # time): the platform is the truth for them (contract 3); None: never read.
    observed: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    observed_at: datetime | None = None


class Event(SQLModel, table=True):
    """One engagement event; (source, source_id) makes a re-read idempotent.

    No index on the contact: events arrive in time order for random contacts, so such an index took
    one random page write per event, most of the ingest's cost (issue #9). Scoring reads the events
    of many persons in one scan instead (``sync.scorebatch.load_event_columns``).
    """

    __table_args__ = (UniqueConstraint("source", "source_id", name="uq_event_source_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    platform: str
    source_id: str
    type: str  # no index: nothing filters on it, and every ingested event would pay for one
    occurred_at: datetime
    remote_contact_id: str
    url: str | None = None
    campaign: str | None = None
    machine: bool = False
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Score(SQLModel, table=True):
    """The current scores of a person."""

    person_id: int = Field(primary_key=True, foreign_key="person.id")
    affinity: float
    engagement: float
    composite: float = Field(default=0, index=True)  # the ranking `leadsync leads` sorts by
    stage: str
    grade: str
    lifecycle: str
    disqualified: bool = False
    reason: str = ""
    contributions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model_fingerprint: str
    scored_at: datetime


class ScoreHistory(SQLModel, table=True):
    """Every change of a person's scores (a new row only when something changed)."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    affinity: float
    engagement: float
    stage: str
    grade: str
    lifecycle: str
    model_fingerprint: str
    scored_at: datetime


class WritebackState(SQLModel, table=True):
    """The last value successfully pushed per identity and field: push only differences."""

    __table_args__ = (UniqueConstraint("source", "remote_id", "field", name="uq_writeback_state"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    remote_id: str
    field: str
    value: str | None = None
    pushed_at: datetime


class WritebackAudit(SQLModel, table=True):
    """Every write leadsync made (or tried): who, what, from which value to which."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = Field(default=None, index=True)
    source: str = Field(index=True)
    remote_id: str
    field: str
    old_value: str | None = None
    new_value: str | None = None
    status: str  # written | failed | dry_run
    error: str | None = None
    at: datetime


class SyncCursor(SQLModel, table=True):
    """Where the next incremental pull of a (source, stream) starts."""

    source: str = Field(primary_key=True)
    stream: str = Field(primary_key=True)
    value: Any = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime


class Quarantine(SQLModel, table=True):
    """A record that could not be normalised or written, kept for inspection and retry."""

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    stream: str
    remote_id: str | None = None
    reason: str
    payload: Any = Field(default=None, sa_column=Column(JSON))
    attempts: int = 1
    created_at: datetime
    last_seen_at: datetime  # the last run that found this record bad (a retry that does not resolves it)
    resolved_at: datetime | None = None


class Lease(SQLModel, table=True):
    """Who is syncing a source right now, and until when (renewed while working)."""

    name: str = Field(primary_key=True)
    holder: str
    acquired_at: datetime
    expires_at: datetime


class SyncRun(SQLModel, table=True):
    """One run of one step (pull, score, push) of one source: what triggered it, who ran it, what it
    did and how it ended (``leadsync runs`` and ``status`` read these; see ``sync.runs``)."""

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)  # the score step, which covers every source, records "*"
    step: str = "pull"  # pull | score | push
    trigger: str = "command"  # command | daemon | webhook | worker
    command: str  # the command or job that ran it (sync, pull, daemon, ...)
    worker: str | None = None  # host:pid:tag of the process (a lease holder id) or a worker's name
    started_at: datetime = Field(index=True)
    finished_at: datetime | None = None
    status: str = "running"  # running | ok | failed | stopped | interrupted
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = None


class WebhookDelivery(SQLModel, table=True):
    """One event a platform pushed to the webhook receiver, queued until the per-person fast path
    has processed it (``sync.webhooks``). ``event_id`` is the platform's id for the event (HubSpot's
    ``eventId``) or a digest of the delivery where the platform gives none; one row per (source,
    event id), so a redelivery is acknowledged and not queued twice. ``signature`` is a digest of
    the signature header of a signed delivery: the same signature again is a replay. The payload is
    what the fast path needs (the event's type, the contact's id and email), never a secret."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("source", "event_id", name="uq_webhook_delivery_event"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    event_id: str
    kind: str  # the platform's event type (contact.propertyChange, subscribe, click ...)
    remote_id: str | None = None
    email: str | None = None
    payload: Any = Field(default=None, sa_column=Column(JSON))
    signature: str | None = Field(default=None, index=True)
    received_at: datetime
    status: str = Field(default="queued", index=True)  # queued | done | failed
    outcome: str | None = None  # rescored | unchanged | echo | unknown_person | ignored | deferred
    attempts: int = 0
    processed_at: datetime | None = None
    error: str | None = None
