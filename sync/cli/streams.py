"""``streams``: what each source can pull and what it costs; ``fields``: the platform's profile fields."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from leadsync.sync.cli.app import JsonOpt, ModelOpt, app, engine_for, errors, model_for, out, print_json

__all__ = ["fields", "streams"]


@app.command()
def streams(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Argument(help="One source (default: every configured source).")
    ] = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List each source's streams, what they feed and what they cost.

    Whether each stream is selected (`streams = [...]` in the source's config), the event types it
    yields and the scores they feed, and its cost per run in requests, measured in the last runs."""
    from leadsync.sync.streamview import MEASURED_RUNS, stream_rows

    with errors():
        config = ctx.obj.load()
        sources = [config.source(source)] if source else list(config.sources)
        scoring = model_for(config, model)
        engine = engine_for(config)
        rows = [row for item in sources for row in stream_rows(engine, item, scoring)]
    if as_json:
        from dataclasses import asdict

        print_json([asdict(row) for row in rows])
        return
    table = Table(title="leadsync streams")
    for column in ("source", "stream", "selected", "reads", "feeds", "requests/run"):
        table.add_column(column, overflow="fold")
    for row in rows:
        cost = (
            f"{row.requests_per_run:g} (last {row.last_requests}, over {row.runs_measured} runs)"
            if row.requests_per_run is not None
            else "not measured yet"
        )
        table.add_row(
            row.source,
            row.stream,
            "yes" if row.selected else "no",
            row.reads,
            ", ".join(row.feeds) or "-",
            cost,
        )
    out.print(table)
    out.print(
        f"Costs are the mean of the last {MEASURED_RUNS} pulls that measured them. Choose streams with "
        '`streams = ["contacts", ...]` in a source\'s config; a stream left out makes no request.',
        highlight=False,
    )


@app.command()
def fields(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source whose platform fields to list.")],
    sample: Annotated[
        int, typer.Option("--sample", min=1, max=10_000, help="Contacts to read for the fill rates.")
    ] = 500,
    as_json: JsonOpt = False,
) -> None:
    """List the platform's profile fields with their type and fill rate.

    HubSpot properties, Mailchimp merge fields or ActiveCampaign custom fields: what a profile-field
    mapping can name."""
    from leadsync.config.settings import resolve_source
    from leadsync.connectors.registry import connector_class

    with errors():
        config = ctx.obj.load()
        chosen = config.source(source)
        with connector_class(chosen.platform)(resolve_source(config, chosen)) as connector:
            found = connector.profile_fields(sample)
    found.sort(key=lambda f: (f.owned, -(f.fill_rate or 0.0), f.group or "", f.name))
    if as_json:
        print_json(
            [
                {
                    "name": f.name,
                    "label": f.label,
                    "type": f.type,
                    "fill_rate": None if f.fill_rate is None else round(f.fill_rate, 4),
                    "filled": f.filled,
                    "sampled": f.sampled,
                    "owned_by_leadsync": f.owned,
                    "group": f.group,
                }
                for f in found
            ]
        )
        return
    table = Table(title=f"{chosen.name}: profile fields ({chosen.platform.value})")
    for column in ("name", "label", "type", "filled", "group"):
        table.add_column(column, overflow="fold")
    for f in found:
        rate = "-" if f.fill_rate is None else f"{f.fill_rate:.0%} of {f.sampled}"
        table.add_row(f.name, f.label + (" (leadsync's)" if f.owned else ""), f.type, rate, f.group or "")
    out.print(table)
