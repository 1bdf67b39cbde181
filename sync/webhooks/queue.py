"""The durable delivery queue: the ``webhook_delivery`` table (migration 0005).

A delivery is acknowledged only once its row is committed, so a receiver killed after answering
loses nothing; on restart every row still ``queued`` is processed. One row per (source, event
id): a redelivery is acknowledged and not queued again. A signed delivery whose signature was
seen before is a replay and is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from leadsync.sync.store.models import WebhookDelivery
from leadsync.sync.webhooks.parse import Delivery

__all__ = ["Enqueue", "Replay", "claim", "enqueue_many", "finish", "queued_count", "queued_rows"]

QUEUED, DONE, FAILED = "queued", "done", "failed"


class Replay(Exception):
    """A signed delivery whose signature the store already holds."""


@dataclass
class Enqueue:
    """One accepted request to store: its deliveries and the digest of its signature (if signed)."""

    source: str
    deliveries: Sequence[Delivery]
    signature: str | None
    received_at: datetime
    queued: int = 0  # set by enqueue_many: new rows (the rest were redeliveries)
    replay: bool = False


def _insert(dialect: str) -> Any:
    table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    return (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table).on_conflict_do_nothing(
        index_elements=["source", "event_id"]
    )


def enqueue_many(engine: Engine, requests: Sequence[Enqueue]) -> None:
    """Store several requests in one transaction (the receiver's group commit); sets each one's
    ``queued`` and ``replay``. A replayed request stores nothing."""
    table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        statement = _insert(connection.dialect.name)
        signatures = {r.signature for r in requests if r.signature}
        seen = (
            set(
                connection.execute(
                    select(table.c.signature).where(table.c.signature.in_(sorted(signatures))).distinct()
                ).scalars()
            )
            if signatures
            else set()
        )
        for request in requests:
            if request.signature and request.signature in seen:
                request.replay = True
                continue
            if request.signature:
                seen.add(request.signature)
            for delivery in request.deliveries:
                result = connection.execute(
                    statement.values(
                        source=request.source,
                        event_id=delivery.event_id,
                        kind=delivery.kind,
                        remote_id=delivery.remote_id,
                        email=delivery.email,
                        payload=delivery.payload,
                        signature=request.signature,
                        received_at=request.received_at,
                        status=QUEUED,
                        attempts=0,
                    )
                )
                request.queued += max(0, result.rowcount or 0)


def queued_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == QUEUED)
            ).scalar_one()
        )


def queued_rows(engine: Engine, *, limit: int, skip: Sequence[int] = ()) -> list[Any]:
    """The oldest queued deliveries, not counting those in ``skip`` (being processed)."""
    query = select(WebhookDelivery).where(WebhookDelivery.status == QUEUED)
    if skip:
        query = query.where(WebhookDelivery.id.not_in(list(skip)))  # type: ignore[union-attr]
    with engine.connect() as connection:
        return list(connection.execute(query.order_by(WebhookDelivery.id).limit(limit)).all())


def claim(engine: Engine, ids: Sequence[int]) -> None:
    """Count an attempt on ``ids`` before working on them (a crash leaves the count behind)."""
    with engine.begin() as connection:
        connection.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(ids)))  # type: ignore[union-attr]
            .values(attempts=WebhookDelivery.attempts + 1)
        )


def finish(
    engine: Engine, ids: Sequence[int], *, outcome: str, now: datetime, error: str | None = None
) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(ids)))  # type: ignore[union-attr]
            .values(status=FAILED if error else DONE, outcome=outcome, processed_at=now, error=error)
        )
