"""A run that dies inside a push chunk: the platform got the writes, the store never heard back.

The next run must put the platform back to what the store says, even when the scores have moved
back to the values last recorded (a plain diff against the recorded state would then see nothing
to write), and must take off the tags the dead run added.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from leadsync.config.settings import load_config, resolve_source
from leadsync.connectors.base import ScoreUpdate
from leadsync.connectors.registry import connector_class
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Identity, Person, WritebackState
from leadsync.sync.writeback import PENDING
from tests.integration.pipeline.harness import Leadsync, platform_view, serve


def test_writes_of_a_dead_push_are_repaired(world: Any, tmp_path: Path) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "dead")
        lead.run("sync", "--json")
        emails: list[str] = []
        engine = make_engine(lead.store_url)
        config = load_config(lead.config)
        for name in ("hubspot", "mailchimp", "activecampaign"):
            with engine.connect() as connection:
                remote_id, email = connection.execute(
                    select(Identity.remote_id, Person.email)
                    .join(Person, Person.id == Identity.person_id)
                    .where(Identity.source == name)
                    .order_by(Identity.remote_id)
                ).first()
            expected = platform_view(server, [email])
            # What a dead run sent: other values, another stage tag; then it was killed before
            # recording anything but the pending marker written ahead of the chunk.
            ghost = ScoreUpdate(
                remote_id=remote_id,
                email=email,
                fields={
                    "affinity": "99",
                    "grade": "A1",
                    "stage": "decision",
                    "scored_at": "2026-11-02T00:00:00Z",
                },
                tags_add=("leadsync_stage_decision",),
            )
            source = config.source(name)
            with connector_class(source.platform)(resolve_source(config, source)) as connector:
                connector.push([ghost])
            with engine.begin() as connection:
                connection.execute(
                    WritebackState.__table__.insert().values(  # type: ignore[attr-defined]
                        source=name,
                        remote_id=remote_id,
                        field=PENDING,
                        value=json.dumps(["leadsync_stage_decision"]),
                        pushed_at=datetime.now(UTC),
                    )
                )
            assert platform_view(server, [email]) != expected
            emails.append(email)
            done = json.loads(lead.run("push", "--json").stdout)
            assert {r["source"]: r["written"] for r in done["push"]}[name] == 1, done
            assert platform_view(server, [email]) == expected, name
        with engine.connect() as connection:
            assert not connection.execute(
                select(WritebackState).where(WritebackState.field == PENDING)
            ).first()
        engine.dispose()
