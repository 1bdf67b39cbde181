"""Progress of a pull: each stream's bar gets the platform's total from its first page where the
platform gives one (HubSpot search ``total``, Mailchimp ``total_items``, ActiveCampaign
``meta.total``), an ETA, and stops as soon as its stream is done, not when the command ends
(issue 24)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from leadsync.config.settings import load_config
from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from leadsync.sync.cli.progress import new_progress, reporter_for
from leadsync.sync.logsetup import register_secrets
from leadsync.sync.pipeline import Reporter, pull_sources
from leadsync.sync.store import make_engine

# Streams whose platform says how many records a run will read (the fact sheets' sections).
WITH_TOTALS = {
    ("hubspot", "contacts"),  # hubspot.md §2.5: search "total"
    ("mailchimp", "members"),  # mailchimp.md §4.1: total_items
    ("mailchimp", "orders"),
    ("activecampaign", "contacts"),  # activecampaign.md §2: meta.total
    ("activecampaign", "activities"),
    ("activecampaign", "tracking_logs"),  # the first run sweeps every contact
}


def test_each_stream_knows_its_total_from_the_first_page_and_is_done_before_its_source_ends(tmp_path) -> None:
    server = SandboxServer.for_world(
        generate_world(500, 5), ports={"hubspot": 0, "mailchimp": 0, "activecampaign": 0}, rate_limits=False
    )
    events: list[tuple[Any, ...]] = []
    reporter = Reporter(
        reading=lambda source, stream, batch: events.append(
            ("read", source, stream, batch.read, batch.expected, batch.unit)
        ),
        stream_done=lambda source, stream: events.append(("done", source, stream)),
        source_done=lambda source, ok: events.append(("source", source, ok)),
    )
    with server:
        path = tmp_path / "leadsync.toml"
        write_sandbox_config(server, path, store_url=f"sqlite:///{tmp_path / 'store.db'}")
        config = load_config(path)
        register_secrets(config)
        results = pull_sources(make_engine(config.store.url), config, reporter=reporter)
    assert all(r.ok for r in results), results
    streams = {(e[1], e[2]) for e in events if e[0] == "read"}
    assert WITH_TOTALS <= streams
    pages = 0
    for source, stream in streams:
        reads = [e for e in events if e[0] == "read" and (e[1], e[2]) == (source, stream)]
        read = sum(e[3] for e in reads)
        assert reads[-1][4] == read, (source, stream, reads)  # the last batch: the total is what was read
        if (source, stream) in WITH_TOTALS:
            # Mailchimp pages members audience by audience: their total is whole from the last one on
            known = (
                reads[-len(_last_audience(reads)) :]
                if (source, stream) == ("mailchimp", "members")
                else reads
            )
            assert read > 0 and all(e[4] == read for e in known), (source, stream, reads)
            pages += len(known) - 1
        # done after its last batch, and before its source's pull ends
        done = events.index(("done", source, stream))
        assert events.index(reads[-1]) < done < events.index(("source", source, True))
    assert pages > 0, "no stream with a total took more than one page: the test proves little"


def _last_audience(reads: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The batches from the first one that knows the stream's total on."""
    first = next(i for i, e in enumerate(reads) if e[4] is not None)
    return reads[first:]


def _render(progress: Any) -> str:
    console = progress.console
    console.print(progress.get_renderable())
    return console.file.getvalue()


def test_the_bars_show_totals_an_eta_and_stop_when_their_stream_is_done() -> None:
    clock = [0.0]
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    progress = new_progress(console, get_time=lambda: clock[0])
    reporter = reporter_for(progress)

    class Batch:
        def __init__(self, read: int, expected: int | None, unit: str) -> None:
            self.read, self.expected, self.unit = read, expected, unit

    reporter.reading("hubspot", "contacts", Batch(100, 1000, "contacts"))
    clock[0] = 10.0
    reporter.reading("hubspot", "contacts", Batch(100, 1000, "contacts"))
    reporter.reading("hubspot", "email_events", Batch(1000, None, "events"))
    reporter.reading("mailchimp", "members", Batch(500, 500, "members"))
    reporter.stream_done("mailchimp", "members")
    text = _render(progress)
    assert "200/1,000 contacts" in text and "1,000 events" in text and "/?" not in text
    assert "eta 0:01:" in text  # 800 to go at 10 a second (the bar's own speed estimate)
    tasks = {t.description: t for t in progress.tasks}
    assert tasks["pull mailchimp members"].finished and tasks["pull mailchimp members"].stop_time is not None
    assert not tasks["pull hubspot contacts"].finished  # the other streams still run

    reporter.stream_done("hubspot", "email_events")  # a stream without a total: done is done
    reporter.source_done("hubspot", False)  # the pull failed during contacts
    tasks = {t.description: t for t in progress.tasks}
    assert (
        tasks["pull hubspot email_events"].finished
        and not tasks["pull hubspot email_events"].fields["failed"]
    )
    assert tasks["pull hubspot contacts"].finished and tasks["pull hubspot contacts"].fields["failed"]
    text = _render(progress)
    assert "✗" in text and "✓" in text

    reporter.scoring(3)
    reporter.scored(3)
    reporter.pushing("hubspot", 0)
    tasks = {t.description: t for t in progress.tasks}
    assert tasks["score"].total == 3 and tasks["score"].finished and tasks["push hubspot"].finished
