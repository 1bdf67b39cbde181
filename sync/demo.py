"""Helpers of ``leadsync demo`` (the whole pipeline against a local sandbox, start to finish):
free ports, a clean folder, and reading written values back through the connectors."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select

from leadsync.config.settings import LeadsyncConfig, resolve_source
from leadsync.connectors.registry import connector_class
from leadsync.sync.store.models import Identity, Person, Score

__all__ = ["ReadBack", "RealTime", "demo_dir", "free_port", "read_back", "real_time"]

COMPARED = ("affinity", "engagement", "grade")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in ("leadsync.db", "leadsync.db-wal", "leadsync.db-shm", "leadsync.toml"):
        (path / name).unlink(missing_ok=True)
    return path


@dataclass
class ReadBack:
    checked: int = 0
    matched: int = 0
    mismatches: list[str] = field(default_factory=list)


def read_back(engine: Engine, config: LeadsyncConfig, emails: Sequence[str]) -> ReadBack:
    """Read leadsync's fields back from every platform that holds these persons, through the same
    connectors that wrote them, and compare with the scores in the store."""
    result = ReadBack()
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Identity.source,
                Identity.remote_id,
                Person.email,
                Score.affinity,
                Score.engagement,
                Score.grade,
            )
            .join(Person, Person.id == Identity.person_id)
            .join(Score, Score.person_id == Person.id)
            .where(Person.email.in_(list(emails)))
        ).all()
    by_source: dict[str, list[tuple[str, str, dict[str, str]]]] = {}
    for source, remote_id, email, affinity, engagement, grade in rows:
        expected = {"affinity": str(int(affinity)), "engagement": str(int(engagement)), "grade": grade}
        by_source.setdefault(source, []).append((remote_id, email, expected))
    for name, items in by_source.items():
        source = config.source(name)
        with connector_class(source.platform)(resolve_source(config, source)) as connector:
            try:
                held = connector.read_fields([remote_id for remote_id, _, _ in items])
            except NotImplementedError:
                # Reported as a problem (the demo must not claim a read-back it could not do).
                result.mismatches.append(f"{name}: its connector cannot read fields back yet (read_fields)")
                continue
        for remote_id, email, expected in items:
            result.checked += 1
            got = {key: held.get(remote_id, {}).get(key) for key in COMPARED}
            if got == expected:
                result.matched += 1
            else:
                result.mismatches.append(f"{email} on {name}: the store has {expected}, the platform {got}")
    return result


REALTIME_S = 15.0  # the demo's limit for a person's new scores to reach every platform


@dataclass
class RealTime:
    """The demo's real-time step (issue 22): one person acted; when their new scores were read
    back from every platform holding them."""

    email: str
    before: dict[str, object]
    after: dict[str, object]
    seconds: float
    read: ReadBack | None = None
    skipped: bool = False  # nobody on HubSpot in this world

    @property
    def ok(self) -> bool:
        return self.skipped or (self.read is not None and self.read.checked > 0 and not self.read.mismatches)


def real_time(server: object, engine: Engine, config: LeadsyncConfig, model: object) -> RealTime:
    """A person on HubSpot and elsewhere, with room for their engagement to grow, views the pricing
    page three times in the sandbox; HubSpot's signed webhooks reach a receiver started here, and
    the person's new scores are read back from every platform holding them through the connectors
    (``read_back``)."""
    import time

    from leadsync.sandbox.webhooks import WebhookTarget, receiver_url
    from leadsync.sync.store.models import WebhookDelivery
    from leadsync.sync.webhooks.service import WebhookService

    state = server.state  # type: ignore[attr-defined]
    with engine.connect() as connection:
        engagement = {
            email: value
            for email, value in connection.execute(
                select(Person.email, Score.engagement).join(Score, Score.person_id == Person.id)
            )
        }
    people = [
        p
        for p in state.world.persons
        if str(p.platforms[0]) == "hubspot" and len(p.platforms) > 1 and p.email.lower() in engagement
    ]
    people = people or [
        p
        for p in state.world.persons
        if "hubspot" in {str(x) for x in p.platforms} and p.email.lower() in engagement
    ]
    if not people:
        return RealTime("-", {}, {}, 0.0, skipped=True)
    person = min(people, key=lambda p: (abs(engagement[p.email.lower()] - 40), p.id))
    email = person.email.lower()

    def scores() -> dict[str, object]:
        with engine.connect() as connection:
            row = connection.execute(
                select(Score.engagement, Score.stage)
                .join(Person, Person.id == Score.person_id)
                .where(Person.email == email)
            ).one()
        return {"engagement": row.engagement, "stage": row.stage}

    def worked() -> bool:
        with engine.connect() as connection:
            waiting = connection.execute(
                select(WebhookDelivery.id).where(WebhookDelivery.status == "queued").limit(1)
            ).first()
        return waiting is None and state.webhooks.drain(0.01)

    with WebhookService(engine, config, model, port=0) as service:  # type: ignore[arg-type]
        for name in state.hosts:
            secret = config.source(name).inline_secrets.get("webhook_secret")
            state.webhooks.configure(name, WebhookTarget(receiver_url(service.url, name), secret=secret))
        result = RealTime(email, scores(), {}, 0.0)
        started = time.monotonic()
        try:
            for _ in range(3):
                state.act(email, "page_view", platform="hubspot", url="https://example.com/pricing")
            while time.monotonic() - started < REALTIME_S:
                result.after = scores()
                moved = result.after != result.before
                if moved or (worked() and service.processor.idle() and time.monotonic() - started > 2):
                    result.read = read_back(engine, config, [email])
                    if result.ok:
                        break
                time.sleep(0.1)
        finally:
            result.seconds = time.monotonic() - started
            for name in state.hosts:
                state.webhooks.configure(name, None)
    return result
