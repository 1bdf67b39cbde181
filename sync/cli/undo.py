"""``undo RUN_ID``: write back the values a push run replaced (see ``leadsync.sync.undo``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from leadsync.sync.cli.app import (
    EXIT_CONFIG,
    EXIT_FAILED,
    JsonOpt,
    app,
    engine_for,
    errors,
    out,
    print_json,
)

__all__ = ["undo"]

_SAY = {
    "restore": "would restore",
    "restored": "restored",
    "failed": "failed",
    "changed_since": "left alone",
    "forward_only": "not moved back",
}


@app.command()
def undo(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID", help="The push run to undo (`leadsync runs`).")],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Read the platform and say what would be restored; write nothing."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write back the values a push run replaced.

    For leadsync's own fields and the tags it added or removed. A value someone else changed since
    that run is left alone and reported; the lifecycle stage moves forward only, so it is never
    moved back."""
    from leadsync.sync.undo import UnknownRun, undo_run

    try:
        with errors():
            config = ctx.obj.load()
            result = undo_run(engine_for(config), config, run_id, dry_run=dry_run)
    except UnknownRun:  # errors() printed it; bad input is exit 2 either way
        raise typer.Exit(EXIT_CONFIG) from None
    if as_json:
        from dataclasses import asdict

        print_json(asdict(result))
    else:
        table = Table(title=f"undo of push run {run_id} ({result.source}){' - dry run' if dry_run else ''}")
        for column in ("email", "field", "what", "value"):
            table.add_column(column, overflow="fold")
        for item in result.items:
            if item.action in ("restore", "restored", "failed"):
                value = f"{item.now or '-'} -> {item.previous or '(empty)'}"
            elif item.action == "changed_since":
                value = f"run wrote {item.written!r}, now {item.now!r}: {item.detail}"
            else:
                value = item.detail
            table.add_row(item.email or item.remote_id, item.field, _SAY[item.action], value)
        out.print(table)
        restored = result.count("restored", "restore")
        verb = "would restore" if dry_run else "restored"
        out.print(
            f"{verb} {restored} values; left alone {result.count('changed_since')} changed since the run; "
            f"lifecycle stage not moved back (forward only) for {result.count('forward_only')}.",
            highlight=False,
        )
        if result.count("failed"):
            out.print(f"{result.count('failed')} values failed: see `leadsync quarantine`.", highlight=False)
        if not dry_run and restored:
            out.print(
                "The next push writes the current scores again: stop the daemon or deselect the source "
                "first if this run should stay undone.",
                highlight=False,
            )
    if result.count("failed"):
        raise typer.Exit(EXIT_FAILED)
