"""``leads`` and ``explain``: the ranked leads, and what made one person's scores."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from leadsync.sync.cli.app import (
    EXIT_FAILED,
    JsonOpt,
    ModelOpt,
    app,
    engine_for,
    err,
    errors,
    model_for,
    out,
    print_json,
)


def leads_table(title: str, rows: list[dict[str, Any]], *, reason: bool) -> Table:
    """Ranked leads as a table (``leads``, and the demo's leaderboard without the reason)."""
    columns = ["#", "email", "grade", "affinity", "engagement", "stage", "lifecycle"]
    table = Table(title=title)
    for column in [*columns, "reason"] if reason else columns:
        table.add_column(column, overflow="fold" if reason else "ellipsis")
    for rank, row in enumerate(rows, 1):
        cells = [
            str(rank),
            row["email"],
            row["grade"],
            f"{row['affinity']:.0f}",
            f"{row['engagement']:.0f}",
            row["stage"],
            row["lifecycle"],
        ]
        table.add_row(*cells, *([row["reason"]] if reason else []))
    return table


@app.command()
def leads(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many to show.")] = 20,
    grade: Annotated[
        str | None, typer.Option("--grade", help="Only this affinity band (A, B, C, D) or grade (A1).")
    ] = None,
    lifecycle: Annotated[str | None, typer.Option("--lifecycle", help="Only this lifecycle stage.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the best leads, ranked by score, with the reason for each."""
    from leadsync.sync.reports import leads as ranked

    with errors():
        config = ctx.obj.load()
        rows = ranked(engine_for(config), limit=limit, grade=grade, lifecycle=lifecycle)
    if as_json:
        print_json(rows)
        return
    out.print(leads_table("leads", rows, reason=True))
    if not rows:
        out.print("No scored persons yet: run `leadsync sync`.")


@app.command()
def explain(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show every contribution to a person's scores; they sum to the scores."""
    from sqlalchemy import select

    from leadsync.connectors.records import normalise_email
    from leadsync.scoring import score_many
    from leadsync.scoring.explain import render_explanation
    from leadsync.sync.pipeline import utcnow
    from leadsync.sync.scorebatch import load_event_columns, load_profiles
    from leadsync.sync.store.models import Person

    with errors():
        config = ctx.obj.load()
        scoring_model = model_for(config, model)
        engine = engine_for(config)
        now = utcnow()
        with engine.connect() as connection:
            person_id = connection.execute(
                select(Person.id).where(Person.email == normalise_email(email))
            ).scalar_one_or_none()
            if person_id is None:
                err.print(f"No person with email {email!r} in the store.")
                raise typer.Exit(EXIT_FAILED)
            profiles = load_profiles(connection, [person_id])
            columns = load_event_columns(connection, [person_id], now)
        result = score_many(profiles, columns, scoring_model, now=now).result(0)
    if as_json:
        print_json(
            {
                "email": result.email,
                "affinity": result.affinity,
                "engagement": result.engagement,
                "stage": result.stage,
                "grade": result.grade,
                "lifecycle": result.lifecycle,
                "disqualified": result.disqualified_reason,
                "reason": result.sentence,
                "contributions": [c.as_dict() for c in result.contributions],
            }
        )
        return
    out.print(render_explanation(result), highlight=False)
