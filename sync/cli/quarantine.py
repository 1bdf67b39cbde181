"""``quarantine`` and ``quarantine retry``: records that could not be normalised or written."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leadsync.sync.cli.app import (
    EXIT_FAILED,
    JsonOpt,
    WideOpt,
    app,
    engine_for,
    errors,
    out,
    print_json,
    when,
)
from leadsync.sync.cli.tables import Column, print_table

quarantine_app = typer.Typer(
    help="Records that could not be normalised or written: list them (the default) or retry them.",
    invoke_without_command=True,
)
app.add_typer(quarantine_app, name="quarantine")

#: At 80 columns: id, source, remote id and the reason; the stream, the time and the attempts go first.
QUARANTINE_COLUMNS = (
    Column("id", justify="right"),
    Column("source"),
    Column("stream", drop=1),
    Column("remote id"),
    Column("reason", fold=True),
    Column("attempts", drop=3, justify="right"),
    Column("last seen", drop=2),
)


def checked_source(ctx: typer.Context, config: Any, engine: Any, source: str | None) -> str | None:
    """``--source`` must name a configured source (or one the quarantine holds records of)."""
    if source is None:
        return None
    from leadsync.sync.reports import quarantine_sources

    known = [s.name for s in config.sources]
    known += [name for name in quarantine_sources(engine) if name not in known]
    if source not in known:
        choices = ", ".join(known) if known else "none: no source is configured"
        raise typer.BadParameter(
            f"{source!r} is not a source; sources: {choices}", ctx=ctx, param_hint="--source"
        )
    return source


@quarantine_app.callback()
def quarantine_list(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """List quarantined records with their reasons (`quarantine retry` retries them)."""
    from leadsync.sync.reports import quarantined

    if ctx.invoked_subcommand is not None:
        return
    with errors():
        config = ctx.obj.load()
        engine = engine_for(config)
        rows = quarantined(engine, source=checked_source(ctx, config, engine, source))
    if as_json:
        print_json(rows)
        return
    cells = [
        [
            str(row["id"]),
            row["source"],
            row["stream"],
            row["remote_id"] or "-",
            row["reason"],
            str(row["attempts"]),
            when(row["last_seen_at"]),
        ]
        for row in rows
    ]
    print_table(out, QUARANTINE_COLUMNS, cells, title=f"quarantine ({len(rows)} records)", wide=wide)
    if rows:
        out.print(
            "Fix the data on the platform (or upgrade leadsync), then run `leadsync quarantine retry`.",
            markup=False,
        )


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
        outcome = retry_quarantined(engine, config, source=checked_source(ctx, config, engine, source))
    if as_json:
        from dataclasses import asdict

        print_json(asdict(outcome))
    else:
        out.print(
            f"Retried {outcome.retried} quarantined records: {outcome.resolved} resolved, {outcome.still_bad} still bad."
        )
    if not all(r.ok for r in outcome.pulls + outcome.pushes):
        raise typer.Exit(EXIT_FAILED)
