"""A store filled and scored without a sandbox (records ingested as a pull would), and the real CLI
as a subprocess at a given terminal width."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadsync.config.scoring_model import load_model
from leadsync.connectors.base import PullBatch
from leadsync.connectors.records import ContactRecord, EventRecord, EventType, Platform
from leadsync.sync.ingest import ingest_batch
from leadsync.sync.pipeline import score
from leadsync.sync.store import make_engine
from tests import forkcli

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

CONFIG = """
[store]
url = "sqlite:///{db}"

[scoring]
model = "{model}"

[[sources]]
name = "hubspot"
platform = "hubspot"
base_url = "http://127.0.0.1:9"
[sources.secrets]
token = "CLI_TEST_HUBSPOT_TOKEN"
"""

# Long emails, as real ones can be (up to the longest of the demo world and more): a table that
# wraps them at 80 columns is unreadable.
EMAILS = [
    "alexandra.konstantinou@northwind.io",
    "g.davis@crescent.com",
    "jean-baptiste.dupont@silverline.fr",
    "khaled@juniper.io",
    "maria.goncalves@estrela-consulting.com",
]


def write_config(folder: Path, *, model: str = "default") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "leadsync.toml"
    path.write_text(CONFIG.format(db=folder / "store.db", model=model), encoding="utf-8")
    return path


def contact(remote_id: str, email: str, **attributes: object) -> ContactRecord:
    return ContactRecord(
        source="hubspot",
        platform=Platform.HUBSPOT,
        remote_id=remote_id,
        email=email,
        created_at=NOW - timedelta(days=300),
        updated_at=NOW - timedelta(days=1),
        **attributes,  # type: ignore[arg-type]
    )


def event(remote_id: str, number: int, kind: EventType, at: datetime, **properties: object) -> EventRecord:
    return EventRecord(
        source="hubspot",
        platform=Platform.HUBSPOT,
        source_id=f"e{remote_id}-{number}",
        type=kind,
        occurred_at=at,
        remote_contact_id=remote_id,
        properties=dict(properties),
    )


def ingest(
    config: Path, contacts: list[ContactRecord], events: list[EventRecord], bad: list | None = None
) -> None:
    engine = make_engine(f"sqlite:///{config.parent / 'store.db'}")
    ingest_batch(
        engine,
        PullBatch("contacts", contacts=contacts, events=events, bad=bad or []),
        source="hubspot",
        now=NOW,
    )
    engine.dispose()


def score_at(config: Path, when: datetime, model: str = "default") -> None:
    engine = make_engine(f"sqlite:///{config.parent / 'store.db'}")
    score(engine, load_model(model), now=when)
    engine.dispose()


def scored_store(folder: Path) -> Path:
    """Five persons with titles and a month of activity, scored at ``NOW``."""
    config = write_config(folder)
    titles = ["VP Sales", "Director of Marketing", "Chief Revenue Officer", "Sales Manager", "Analyst"]
    contacts = [
        contact(str(i), email, job_title=titles[i], company_size=200 + 100 * i, country="US")
        for i, email in enumerate(EMAILS)
    ]
    events = [
        event(str(i), n, kind, NOW - timedelta(days=2 + n + i))
        for i in range(len(EMAILS))
        for n, kind in enumerate(
            [EventType.EMAIL_OPEN, EventType.FORM_SUBMIT, EventType.PAGE_VIEW][: 1 + i % 3]
        )
    ]
    events.append(event("4", 9, EventType.DEMO_REQUEST, NOW - timedelta(days=3)))  # a hand-raiser: MQL or SQL
    ingest(config, contacts, events)
    score_at(config, NOW)
    return config


def leadsync(
    config: Path | None, *args: str, columns: int = 80, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI; ``columns`` is the terminal width rich sees."""
    environ = {**os.environ, "COLUMNS": str(columns), "LINES": "50", **(env or {})}
    for name in ("LEADSYNC_CONFIG", "LEADSYNC_STORE_URL", "FORCE_COLOR", "NO_COLOR"):
        environ.pop(name, None)
    prefix = ["--config", str(config)] if config is not None else []
    return forkcli.run(
        [sys.executable, "-m", "leadsync", *prefix, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=environ,
    )


def one_line(text: str) -> str:
    return " ".join(text.split())
