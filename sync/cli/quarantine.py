"""``quarantine`` and ``quarantine retry``: records that could not be normalised or written."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from leadsync.sync.cli.app import EXIT_FAILED, JsonOpt, app, engine_for, errors, out, print_json, when

quarantine_app = typer.Typer(
    help="Records that could not be normalised or written: list them (the default) or retry them.",
    invoke_without_command=True,
)
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.callback()
def quarantine_list(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List quarantined records with their reasons (`quarantine retry` retries them)."""
    from leadsync.sync.reports import quarantined

    if ctx.invoked_subcommand is not None:
        return
    with errors():
        config = ctx.obj.load()
        rows = quarantined(engine_for(config), source=source)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"quarantine ({len(rows)} records)")
    for column in ("id", "source", "stream", "remote id", "reason", "attempts", "last seen"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["source"],
            row["stream"],
            row["remote_id"] or "-",
            row["reason"],
            str(row["attempts"]),
            when(row["last_seen_at"]),
        )
    out.print(table)
    if rows:
        out.print("Fix the data on the platform (or upgrade leadsync), then run `leadsync quarantine retry`.")


@quarantine_app.command("retry")
def quarantine_retry(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-read (or re-push) what met the quarantined records; resolve those that now go through."""
    from leadsync.sync.quarantine import retry_quarantined

    with errors():
        config = ctx.obj.load()
        engine = engine_for(config)
        outcome = retry_quarantined(engine, config, source=source)
    if as_json:
        from dataclasses import asdict

        print_json(asdict(outcome))
    else:
        out.print(
            f"Retried {outcome.retried} quarantined records: {outcome.resolved} resolved, {outcome.still_bad} still bad."
        )
    if not all(r.ok for r in outcome.pulls + outcome.pushes):
        raise typer.Exit(EXIT_FAILED)
