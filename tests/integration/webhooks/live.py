"""A sandbox, a store synced from it once, and the webhook receiver, wired together in this process."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from leadsync.config.scoring_model import load_model
from leadsync.config.settings import LeadsyncConfig, load_config
from leadsync.connectors.mailchimp.writeback import field_defs
from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.webhooks import receiver_url
from leadsync.sync.pipeline import pull_sources, push_sources, score
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Identity, Person, Score, WebhookDelivery
from leadsync.sync.webhooks.service import WebhookService
from leadsync.sync.writeback import desired_values

PLATFORMS = ("hubspot", "mailchimp", "activecampaign")
OWNED = ("affinity", "engagement", "stage", "grade", "lifecycle")


@dataclass
class Live:
    server: SandboxServer
    config: LeadsyncConfig
    engine: Engine
    folder: Path
    service: WebhookService | None = None

    @classmethod
    def start(cls, world: Any, folder: Path, *, latency_ms: float = 0.0) -> Live:
        server = SandboxServer.for_world(
            world, ports={p: 0 for p in PLATFORMS}, rate_limits=False, latency_ms=latency_ms
        ).start()
        write_sandbox_config(
            server, folder / "leadsync.toml", store_url=f"sqlite:///{folder / 'store.db'}", webhooks=True
        )
        config = load_config(folder / "leadsync.toml")
        return cls(server, config, make_engine(config.store.url), folder)

    def sync(self) -> None:
        model = load_model(self.config.scoring.model)
        assert all(r.ok for r in pull_sources(self.engine, self.config))
        score(self.engine, model)
        assert all(r.ok for r in push_sources(self.engine, self.config))

    def receive(self, **kwargs: Any) -> WebhookService:
        self.service = WebhookService(
            self.engine, self.config, load_model(self.config.scoring.model), port=0, **kwargs
        ).start()
        return self.service

    def send_webhooks_to(self, base_url: str) -> None:
        for platform in PLATFORMS:
            answer = httpx.post(
                self.server.base_url(platform) + "/_sandbox/webhooks",
                json={"url": receiver_url(base_url, platform)},
            )
            answer.raise_for_status()

    def act(self, email: str, kind: str, platform: str, url: str | None = None) -> dict[str, Any]:
        answer = httpx.post(
            self.server.base_url(platform) + "/_sandbox/act",
            json={"email": email, "type": kind, "platform": platform, "url": url},
        )
        answer.raise_for_status()
        return answer.json()

    def sent(self) -> list[dict[str, Any]]:
        return self.server.state.webhooks.log()

    def rows(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).all())

    def outcomes(self) -> Counter[tuple[str, str | None]]:
        return Counter((row.kind, row.outcome) for row in self.rows())

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the sandbox sent everything and the receiver processed all it queued."""
        deadline = time.monotonic() + timeout
        assert self.server.state.webhooks.drain(timeout)
        while time.monotonic() < deadline:
            if all(row.status != "queued" for row in self.rows()) and (
                self.service is None or self.service.processor.idle()
            ):
                time.sleep(0.2)  # echoes of a push just made may still be on their way
                if self.server.state.webhooks.drain(timeout) and all(
                    r.status != "queued" for r in self.rows()
                ):
                    return
            time.sleep(0.05)
        raise AssertionError(f"webhooks not settled in {timeout} s: {self.outcomes()}")

    def scores(self, email: str) -> dict[str, str]:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(
                    Score.affinity, Score.engagement, Score.stage, Score.grade, Score.lifecycle, Score.reason
                )
                .add_columns(Score.scored_at)
                .join(Person, Person.id == Score.person_id)
                .where(Person.email == email.lower())
            ).one()
        wanted = desired_values(row, scored_at=row.scored_at)
        return {k: wanted[k] for k in OWNED}

    def holders(self, email: str) -> set[str]:
        with self.engine.connect() as connection:
            return set(
                connection.execute(
                    select(Identity.source)
                    .join(Person, Person.id == Identity.person_id)
                    .where(Person.email == email.lower())
                ).scalars()
            )

    def on_platforms(self, email: str) -> dict[str, dict[str, str | None]]:
        """leadsync's score fields as each platform holds them now (the sandbox's own view)."""
        answer = httpx.get(self.server.base_url("hubspot") + f"/_sandbox/persons/{email}")
        answer.raise_for_status()
        held: dict[str, dict[str, str | None]] = {}
        prefix = self.config.writeback.field_prefix
        for platform, view in answer.json()["platforms"].items():
            if platform == "hubspot":
                values = view["properties"]
                held[platform] = {k: values.get(prefix + k) for k in OWNED}
            elif platform == "mailchimp":
                member = next(iter(view["lists"].values()))["merge_fields"]
                defs = field_defs(prefix)
                held[platform] = {k: member.get(defs[k].tag) for k in OWNED}
            else:
                held[platform] = {k: view["fields"].get((prefix + k).upper()) for k in OWNED}
        for values in held.values():
            for name in ("affinity", "engagement"):
                values[name] = _text(values[name])
        return held

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()
        self.server.stop()
        self.server.state.webhooks.close()
        self.engine.dispose()


def _text(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return str(value)
