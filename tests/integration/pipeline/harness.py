"""Shared plumbing of the pipeline tests: a sandbox in this process, a config for it, the CLI as a
process of its own (forked from a preloaded zygote, tests/forkcli.py), and snapshots of the store and
of what the platforms hold."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sync.store.db import store_url as driver_url
from leadsync.sync.store.models import Event, Identity, Person, Score, WritebackState
from tests import forkcli

ROOT = Path(__file__).resolve().parents[3]
PLATFORMS = ("hubspot", "mailchimp", "activecampaign")
# A fixed scoring time for runs whose results are compared (see fastcli.py).
SCORE_NOW = "2026-11-02T00:00:00+00:00"
PREFIX = "leadsync_"


# Which store the next ``Leadsync.create`` makes: set per test by the autouse, parametrised
# ``pipeline_store`` fixture (conftest.py), so every pipeline test runs on SQLite and on PostgreSQL.
STORE: dict[str, Any] = {"new": lambda folder: f"sqlite:///{folder / 'leadsync.db'}"}


def serve(world: Any, **kwargs: Any) -> SandboxServer:
    kwargs.setdefault("rate_limits", False)
    return SandboxServer.for_world(world, ports={name: 0 for name in PLATFORMS}, **kwargs)


@dataclass
class Leadsync:
    """One config + store pointed at one sandbox, driven through the CLI."""

    server: SandboxServer
    folder: Path
    score_now: str | None = SCORE_NOW
    store_url: str = ""

    @property
    def config(self) -> Path:
        return self.folder / "leadsync.toml"

    @property
    def db(self) -> Path:
        """The SQLite store's file (a SQLite store only)."""
        path = make_url(self.store_url).database if self.store_url else None
        if not self.store_url or self.kind != "sqlite" or not path:
            raise ValueError(f"not a SQLite store: {self.store_url!r}")
        return Path(path)

    @classmethod
    def create(cls, server: SandboxServer, folder: Path, *, score_now: str | None = SCORE_NOW) -> Leadsync:
        folder.mkdir(parents=True, exist_ok=True)
        made = cls(server, folder, score_now, STORE["new"](folder))
        write_sandbox_config(server, made.config, store_url=made.store_url)
        return made

    @property
    def kind(self) -> str:
        return make_url(self.store_url).get_backend_name()

    def lose_store(self) -> None:
        """The store is lost (a disk, a dropped database): empty, as if new."""
        if self.kind == "sqlite":
            for leftover in self.db.parent.glob(f"{self.db.name}*"):  # the file, its WAL and shm
                leftover.unlink()
            return
        from sqlalchemy import text

        schema = make_url(self.store_url).query["options"].split("=", 1)[1]
        engine = self.engine()
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()

    def command(self, *args: str, fast: bool = True) -> list[str]:
        module = "tests.integration.pipeline.fastcli" if fast else "leadsync.sync.cli"
        return [sys.executable, "-m", module, "--config", str(self.config), *args]

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "COLUMNS": "200", **extra}
        env.pop("LEADSYNC_TEST_SCORE_NOW", None)
        if self.score_now:
            env["LEADSYNC_TEST_SCORE_NOW"] = self.score_now
        env.pop("LEADSYNC_CONFIG", None)
        env.pop("LEADSYNC_STORE_URL", None)
        return env

    def run(
        self, *args: str, check: bool = True, timeout: float = 240, fast: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = forkcli.run(
            self.command(*args, fast=fast),
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"leadsync {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def start(self, *args: str, **popen: Any) -> Any:
        """The CLI as a running process (``subprocess.Popen``'s interface, see tests/forkcli.py)."""
        return forkcli.popen(
            self.command(*args),
            cwd=ROOT,
            env=self.env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **popen,
        )

    def engine(self) -> Any:
        return create_engine(driver_url(self.store_url))


def writes(server: SandboxServer) -> dict[str, int]:
    """Write requests per platform, from the sandbox's own stats (HubSpot's POST search and batch
    read count as reads there)."""
    return {name: stats["write_requests"] for name, stats in server.stats().items()}


def routes(server: SandboxServer) -> dict[str, dict[str, int]]:
    return {name: dict(stats["by_route"]) for name, stats in server.stats().items()}


def new_writes(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Write routes (non-GET) called between two ``routes`` snapshots."""
    found: dict[str, dict[str, int]] = {}
    for name, table in after.items():
        for route, count in table.items():
            grew = count - before.get(name, {}).get(route, 0)
            if grew and not route.startswith("GET "):
                found.setdefault(name, {})[route] = grew
    return found


# --- snapshots ----------------------------------------------------------------------------------


def store_state(lead: Leadsync) -> dict[str, Any]:
    """What must be equal between two stores that synced the same world (no timestamps)."""
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            persons = set(connection.execute(select(Person.email)).scalars())
            identities = {
                (row.source, row.remote_id, row.email, row.email_of_person)
                for row in connection.execute(
                    select(
                        Identity.source,
                        Identity.remote_id,
                        Identity.email,
                        Person.email.label("email_of_person"),
                    ).join(Person, Person.id == Identity.person_id)
                )
            }
            events = set(connection.execute(select(Event.source, Event.source_id)))
            event_count = connection.execute(select(func.count()).select_from(Event)).scalar_one()
            scores = {
                row.email: (
                    round(row.affinity, 6),
                    round(row.engagement, 6),
                    row.stage,
                    row.grade,
                    row.lifecycle,
                    row.reason,
                )
                for row in connection.execute(
                    select(
                        Person.email,
                        Score.affinity,
                        Score.engagement,
                        Score.stage,
                        Score.grade,
                        Score.lifecycle,
                        Score.reason,
                    ).join(Score, Score.person_id == Person.id)
                )
            }
            state = {
                (row.source, row.remote_id, row.field): row.value
                for row in connection.execute(select(WritebackState))
                if row.field != "scored_at"
            }
    finally:
        engine.dispose()
    return {
        "persons": persons,
        "identities": identities,
        "events": events,
        "event_count": event_count,
        "scores": scores,
        "writeback_state": state,
    }


def platform_view(server: SandboxServer, emails: Sequence[str]) -> dict[str, Any]:
    """leadsync's fields and tags as each platform holds them, per person (scored-at left out)."""
    view: dict[str, Any] = {}
    with httpx.Client(base_url=server.base_url("hubspot"), timeout=30) as client:
        for email in sorted(emails):
            answer = client.get(f"/_sandbox/persons/{email}")
            if answer.status_code == 404:
                continue
            answer.raise_for_status()
            view[email] = _owned(answer.json()["platforms"])
    return view


def _owned(platforms: dict[str, Any]) -> dict[str, Any]:
    """Per platform: leadsync's own fields (without scored-at), the lifecycle stage, every tag."""
    owned: dict[str, Any] = {}
    for name, held in platforms.items():
        if name == "hubspot":
            props = held["properties"]
            owned[name] = {
                "fields": {
                    k: v for k, v in props.items() if k.startswith(PREFIX) and k != f"{PREFIX}scored_at"
                },
                "lifecyclestage": props.get("lifecyclestage"),
            }
        elif name == "mailchimp":
            owned[name] = {
                list_id: {
                    "fields": {
                        k: v
                        for k, v in member.get("merge_fields", {}).items()
                        if k.startswith("LEAD") and k != "LEADSCORED"
                    },
                    "tags": sorted(member["tags"]),
                }
                for list_id, member in held["lists"].items()
            }
        elif name == "activecampaign":
            owned[name] = {
                "fields": {
                    k: v
                    for k, v in held["fields"].items()
                    if k.startswith("LEADSYNC_") and k != "LEADSYNC_SCORED_AT"
                },
                "tags": sorted(held["tags"]),
            }
    return owned


def full_view(server: SandboxServer, emails: Sequence[str]) -> dict[str, Any]:
    """Everything each platform holds for these persons (scored-at included): to prove untouched."""
    view: dict[str, Any] = {}
    with httpx.Client(base_url=server.base_url("hubspot"), timeout=30) as client:
        for email in sorted(emails):
            answer = client.get(f"/_sandbox/persons/{email}")
            if answer.status_code != 404:
                view[email] = answer.json()["platforms"]
    return view
