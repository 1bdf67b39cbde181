"""``runs``: past runs, newest first; ``runs show ID``: one run, with the writes it made."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from leadsync.sync.cli.app import (
    EXIT_CONFIG,
    JsonOpt,
    WideOpt,
    app,
    engine_for,
    err,
    errors,
    out,
    print_json,
    when,
)
from leadsync.sync.cli.tables import Column, print_table, status_text

__all__ = ["runs_app"]

runs_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="List past runs (pull, score, push per source), newest first; `runs show ID` shows one.",
)
app.add_typer(runs_app, name="runs")

SHOWN_WRITES = 200  # writes printed as text by `runs show`; --json has them all

RUN_COLUMNS = (
    Column("id", justify="right"),
    Column("source"),
    Column("step"),
    Column("trigger", drop=2),
    Column("started"),
    Column("took", drop=1, justify="right"),
    Column("result"),
    Column("detail", fold=True),
)


def _count(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise typer.BadParameter(f"{value}: use 1 or more runs")
    return value


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _source(name: str) -> str:
    return "(all)" if name == "*" else name


def detail(run: dict[str, Any]) -> str:
    """What a run did, in a few words (its counts), and its error."""
    c = run["counts"]
    if run["step"] == "pull":
        parts = [
            f"{c.get('records_read', 0)} read",
            f"{c.get('upserted', 0)} stored",
            f"{c.get('quarantined', 0)} quarantined",
        ]
    elif run["step"] == "score":
        parts = [f"{c.get('persons_scored', 0)} scored", f"{c.get('persons_changed', 0)} changed"]
    else:
        parts = [f"{c.get('written', 0)} of {c.get('planned', 0)} persons written"]
        if c.get("write_failures"):
            parts.append(f"{c['write_failures']} failed")
        if c.get("undo_of"):
            parts.append(f"undo of run {c['undo_of']}")
    if run["step"] != "score":
        parts.append(f"{c.get('requests', 0)} requests")
        if c.get("throttled"):
            parts.append(f"{c['throttled']} x 429")
        if c.get("retries"):
            parts.append(f"{c['retries']} retries")
    text = ", ".join(parts)
    return f"{text} - {run['error']}" if run.get("error") else text


def _result(status: str) -> Any:
    return status_text(status == "ok", good="ok", bad=status) if status != "running" else "running"


@runs_app.callback()
def runs(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Only this source's runs (repeatable; `*` for score runs)."),
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only runs that failed or were interrupted.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", callback=_count, help="How many runs to show (newest first).")
    ] = 20,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """List past runs, newest first: source, step, trigger, when, how long, the outcome, what each
    did (records, persons, writes, requests, 429 answers, retries) and its error."""
    if ctx.invoked_subcommand is not None:
        return
    from leadsync.sync.runs import ALL_SOURCES, list_runs

    with errors():
        config = ctx.obj.load()
        names = list(dict.fromkeys(source or []))
        for name in names:
            if name != ALL_SOURCES:
                config.source(name)  # an unknown source: a config error naming the configured ones
        found = list_runs(engine_for(config), sources=names, failed=failed, limit=limit)
    if as_json:
        print_json(found)
        return
    if not found:
        out.print("No runs recorded yet." if not (names or failed) else "No run matches.", highlight=False)
        return
    rows = [
        [
            str(run["id"]),
            _source(run["source"]),
            run["step"],
            run["trigger"],
            when(run["started_at"]),
            _took(run["seconds"]),
            _result(run["status"]),
            detail(run),
        ]
        for run in found
    ]
    print_table(
        out,
        RUN_COLUMNS,
        rows,
        title="leadsync runs, newest first",
        caption="`leadsync runs show ID` for one run and the writes it made",
        wide=wide,
    )


WRITE_COLUMNS = (
    Column("email"),
    Column("id", drop=2),
    Column("field"),
    Column("old -> new", fold=True),
    Column("status", drop=1),
)


@runs_app.command("show")
def show(
    ctx: typer.Context,
    run_ref: Annotated[str, typer.Argument(metavar="ID", help="The run's id (`leadsync runs`).")],
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Show one run: what triggered it, who ran it, how it ended, its counts per stream, and the
    writes it made (from the audit of every write)."""
    from leadsync.sync.runs import get_run, list_runs

    with errors():
        config = ctx.obj.load()
        engine = engine_for(config)
        run_id = int(run_ref) if run_ref.strip().isdigit() else None
        run = (
            None
            if run_id is None
            else get_run(engine, run_id, writes_limit=None if as_json else SHOWN_WRITES)
        )
        if run is None:
            recent = [str(r["id"]) for r in list_runs(engine, limit=10)]
            choices = f"recent runs: {', '.join(recent)}" if recent else "no run is recorded yet"
            what = f"no run {run_id}" if run_id is not None else f"run id {run_ref!r} is not a number"
            err.print(f"[red]error:[/red] {escape(what)}; {choices} (see `leadsync runs`)", highlight=False)
            raise typer.Exit(EXIT_CONFIG)
    if as_json:
        print_json(run)
        return
    lines = [
        f"run {run['id']}: {run['step']} of {_source(run['source'])}; trigger {run['trigger']}"
        f"{' (undo)' if run['command'] == 'undo' else ''}; worker {run['worker'] or '-'}",
        f"started {when(run['started_at'])}, finished {when(run['finished_at'])} ({_took(run['seconds'])}): "
        f"{run['status']}",
        detail(run),
    ]
    for line in lines:
        out.print(line, highlight=False, markup=False)
    streams = run["counts"].get("streams") or {}
    if streams:
        print_table(
            out,
            (Column("stream"), Column("requests", justify="right"), Column("records", justify="right")),
            [[name, str(m.get("requests", 0)), str(m.get("records", 0))] for name, m in streams.items()],
            title="per stream",
            wide=wide,
        )
    if run["writes"]:
        shown = run["writes"]
        print_table(
            out,
            WRITE_COLUMNS,
            [
                [
                    w["email"] or "-",
                    w["remote_id"],
                    w["field"],
                    f"{w['old'] or '-'} -> {w['new'] or '-'}",
                    w["status"],
                ]
                for w in shown
            ],
            title=f"{run['writes_total']} writes",
            caption=(
                f"the first {len(shown)} of {run['writes_total']} shown; --json has them all"
                if run["writes_total"] > len(shown)
                else None
            ),
            wide=wide,
        )
    elif run["step"] == "push":
        out.print("No write recorded for this run.", highlight=False)
