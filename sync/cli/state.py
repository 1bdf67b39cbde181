"""``state``: each stream's cursor in plain words; ``state reset``: re-read a stream from the start."""

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
    err,
    errors,
    out,
    print_json,
)

__all__ = ["state"]


def _when(moment: object) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[attr-defined]


def usage_error(message: str) -> typer.Exit:
    """Bad input on the command line: one line naming the value and the choices, exit 2."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(EXIT_CONFIG)


@app.command(
    context_settings={"help_option_names": ["--help"]},
    epilog="Forms: `leadsync state [SOURCE] [--json]` and `leadsync state reset SOURCE [--stream S] [--yes]`.",
)
def state(
    ctx: typer.Context,
    words: Annotated[
        list[str] | None,
        typer.Argument(metavar="[SOURCE] | reset SOURCE", help="A source to show, or `reset SOURCE`."),
    ] = None,
    stream: Annotated[
        list[str] | None, typer.Option("--stream", "-s", help="reset: only this stream (repeatable).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="reset: do not ask first.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show each stream's cursor in plain words, or reset a source's cursors.

    `state [SOURCE]`: since when each stream reads, a sweep's progress, the last success.
    `state reset SOURCE [--stream S]`: the next pull re-reads those streams from the start (asks first;
    refused while another process syncs the source)."""
    from leadsync.connectors.catalog import stream_names
    from leadsync.sync.cursors import reset_streams, source_state

    words = list(words or [])
    resetting = bool(words) and words[0] == "reset"
    if resetting:
        words = words[1:]
        if len(words) != 1:
            raise usage_error(
                "state reset needs exactly one SOURCE: leadsync state reset SOURCE [--stream S]"
            )
    elif len(words) > 1:
        raise usage_error(f"state takes at most one SOURCE, got {' '.join(words)}")
    if not resetting and (stream or yes):
        raise usage_error("--stream and --yes go with `state reset SOURCE`")
    with errors():
        config = ctx.obj.load()
        sources = [config.source(words[0])] if words else list(config.sources)
        engine = engine_for(config)
        if resetting:
            source = sources[0]
            choices = stream_names(source.platform)
            for name in stream or []:
                if name not in choices:
                    raise usage_error(
                        f"unknown stream {name!r} for source {source.name!r} ({source.platform.value}); "
                        f"choices: {', '.join(choices)}"
                    )
            chosen = list(dict.fromkeys(stream)) if stream else list(choices)
            question = (
                f"Reset {source.name}'s cursor for {', '.join(chosen)}? The next pull re-reads "
                f"{'it' if len(chosen) == 1 else 'them'} from the start (nothing is counted twice)."
            )
            if not yes and not typer.confirm(question, default=False):
                out.print("Nothing reset.")
                raise typer.Exit(EXIT_FAILED)
            deleted = reset_streams(engine, source, chosen)
            out.print(
                f"Reset {source.name}: {', '.join(chosen)} ({deleted} cursor{'s' if deleted != 1 else ''} "
                "forgotten); the next pull reads from the start.",
                highlight=False,
            )
            return
        states = [row for source in sources for row in source_state(engine, source)]
    if as_json:
        from dataclasses import asdict

        print_json([asdict(row) for row in states])
        return
    table = Table(title="leadsync state: where each stream's next pull starts")
    for column in ("source", "stream", "selected", "since", "progress", "last page", "last good pull"):
        table.add_column(column, overflow="fold")
    for row in states:
        table.add_row(
            row.source,
            row.stream,
            "yes" if row.selected else "no",
            _when(row.since),
            row.progress,
            _when(row.committed_at),
            _when(row.last_success),
        )
    out.print(table)
