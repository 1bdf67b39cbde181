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

__all__ = ["ReadBack", "demo_dir", "free_port", "read_back"]

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
