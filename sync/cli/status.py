"""``status``: per source, the last run, whether it syncs now, the next run (while a daemon runs),
counts, pending writes and quarantine."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from leadsync.sync.cli.app import JsonOpt, app, engine_for, errors, out, print_json, when


@app.command()
def status(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", help="Add each source's raw cursors (they can hold per-contact positions)."
        ),
    ] = False,
) -> None:
    """Show, per source, the last run and its result, whether it is syncing, the next run (when a
    daemon is running), counts, pending writes and quarantine. `--json` carries counts only."""

    from leadsync.sync.lease import live_daemons
    from leadsync.sync.pipeline import utcnow
    from leadsync.sync.reports import source_status

    with errors():
        config = ctx.obj.load()
        engine = engine_for(config)
        now = utcnow()
        statuses = source_status(engine, config, now=now, verbose=verbose)
        daemons = live_daemons(engine, now=now)
    if as_json:
        from dataclasses import asdict

        items = []
        for item in statuses:
            data = asdict(item)
            if not verbose:
                data.pop("cursors")
            items.append(data)
        print_json(items)
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
        if item.syncing and item.lease:
            result += " (syncing now)"
            notes.append(
                f"{item.source}: being synced by {item.lease['holder']} until {when(item.lease['expires_at'])}"
            )
        table.add_row(
            item.source,
            f"{run.get('step', '')} {when(run.get('started_at'))}".strip(),
            result,
            when(item.next_run) if daemons else "no daemon",
            str(item.identities),
            str(item.events),
            str(item.pending_writes),
            str(item.quarantined),
        )
    out.print(table)
    if daemons:
        for daemon in daemons:
            out.print(f"  daemon running: {daemon['holder']} since {when(daemon['since'])}", highlight=False)
    else:
        out.print(
            "  No daemon is running: nothing syncs until you run `leadsync sync` or start "
            "`leadsync daemon` (see the systemd unit in docs/).",
            highlight=False,
            markup=False,
        )
    for note in notes:
        out.print(f"  {note}", highlight=False, markup=False)
