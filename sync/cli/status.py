"""``status``: per source, the last run, the next run, counts, pending writes and quarantine."""

from __future__ import annotations

import typer
from rich.table import Table

from leadsync.sync.cli.app import JsonOpt, app, engine_for, errors, out, print_json, when


@app.command()
def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show, per source, the last run and its result, the next run, cursors, counts, pending writes and quarantine."""
    from leadsync.sync.pipeline import utcnow
    from leadsync.sync.reports import source_status

    with errors():
        config = ctx.obj.load()
        engine = engine_for(config)
        statuses = source_status(engine, config, now=utcnow())
    if as_json:
        from dataclasses import asdict

        print_json([asdict(item) for item in statuses])
        return
    from leadsync.sync.store import public_url

    table = Table(title=f"leadsync status: {public_url(config.store.url)}")  # never the password
    for column in (
        "source",
        "last run",
        "result",
        "next run",
        "contacts",
        "events",
        "to write",
        "quarantined",
    ):
        table.add_column(column, overflow="fold")
    notes: list[str] = []
    for item in statuses:
        run = item.last_run or {}
        result = run.get("status", "never run")
        if run.get("error"):
            notes.append(f"{item.source}: {run['error']}")
        if item.lease:
            result += " (running)"
            notes.append(
                f"{item.source}: being synced by {item.lease['holder']} until {when(item.lease['expires_at'])}"
            )
        table.add_row(
            item.source,
            f"{run.get('command', '')} {when(run.get('started_at'))}".strip(),
            result,
            when(item.next_run),
            str(item.identities),
            str(item.events),
            str(item.pending_writes),
            str(item.quarantined),
        )
    out.print(table)
    for note in notes:
        out.print(f"  {note}", highlight=False)
