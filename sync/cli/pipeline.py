"""``pull``, ``score``, ``push``, ``sync`` and ``daemon``: the pipeline steps, and their summary."""

from __future__ import annotations

import logging
from contextlib import ExitStack, suppress
from typing import Annotated, Any

import typer
from rich.table import Table

from leadsync.config.settings import LeadsyncConfig
from leadsync.connectors import stopping
from leadsync.connectors.errors import ConfigError
from leadsync.sync.cli.app import (
    EXIT_FAILED,
    JsonOpt,
    ModelOpt,
    SourcesArg,
    app,
    engine_for,
    err,
    errors,
    model_for,
    out,
    print_json,
)
from leadsync.sync.cli.progress import progress_bars, reporter_for
from leadsync.sync.cli.tables import Column, fitted_table, status_text
from leadsync.sync.shutdown import SignalStop

SUMMARY_COLUMNS = (Column("source"), Column("step"), Column("result"), Column("detail", fold=True))


def summary_table(
    pulls: list[Any], scores: Any, pushes: list[Any], quarantined_total: int | None = None
) -> Table:
    """The summary of a pipeline run, fitted to the terminal (``sync.cli.tables``)."""
    rows: list[list[Any]] = []
    for r in pulls:
        rows.append(
            [
                r.source,
                "pull",
                status_text(r.ok, bad="failed"),
                f"{r.contacts} contacts, {r.events} events, {r.quarantined} quarantined in {r.seconds:.1f}s"
                + (f" - {r.error}" if r.error else ""),
            ]
        )
    if scores is not None:
        rows.append(
            ["(all)", "score", status_text(True), f"{scores.scored} persons scored, {scores.changed} changed"]
        )
    for r in pushes:
        detail = (
            f"{r.planned} to write (dry run: nothing written)"
            if r.dry_run
            else f"{r.written} written, {r.failed} failed, {r.requests} requests"
        )
        rows.append(
            [r.source, "push", status_text(r.ok, bad="failed"), detail + (f" - {r.error}" if r.error else "")]
        )
    caption = (
        f"{quarantined_total} records in quarantine: see `leadsync quarantine`" if quarantined_total else None
    )
    table, _ = fitted_table(SUMMARY_COLUMNS, rows, width=out.width, title="leadsync summary", caption=caption)
    return table


def _results_json(pulls: list[Any], scores: Any, pushes: list[Any]) -> dict[str, Any]:
    from dataclasses import asdict

    results = {
        "pull": [asdict(r) for r in pulls],
        "score": None if scores is None else asdict(scores),
        "push": [asdict(r) for r in pushes],
        "ok": all(r.ok for r in pulls) and all(r.ok for r in pushes),
    }
    if any(r.dry_run for r in pushes):
        results["diff"] = dry_run_rows(pushes)
    return results


def dry_run_rows(pushes: list[Any]) -> list[dict[str, Any]]:
    """Every source's dry-run rows in one list, largest score change first (then by email; each
    contact's fields stay in their order)."""
    rows = [row for r in pushes for row in r.diff]
    return sorted(rows, key=lambda row: (-row["change"], row["email"]))


SHOWN_ROWS = 60  # rows of a dry run printed as text; --json has them all


def _short(value: Any, width: int = 48) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def dry_run_table(pushes: list[Any]) -> tuple[Table | None, str | None]:
    """The dry run as a table (email, platform, field, old -> new) and a note on what is left out."""
    rows = dry_run_rows(pushes)
    if not rows:
        return None, None
    contacts = {(row["source"], row["remote_id"]) for row in rows}
    table = Table(title=f"would write {len(rows)} values to {len(contacts)} contacts, largest change first")
    for column in ("email", "platform", "field", "old -> new"):
        table.add_column(column, overflow="fold")
    for row in rows[:SHOWN_ROWS]:
        table.add_row(
            row["email"], row["platform"], row["field"], f"{_short(row['old'])} -> {_short(row['new'])}"
        )
    note = (
        f"... and {len(rows) - SHOWN_ROWS} more values (use --json for all)"
        if len(rows) > SHOWN_ROWS
        else None
    )
    return table, note


def _finish(pulls: list[Any], scores: Any, pushes: list[Any], as_json: bool, engine: Any = None) -> None:
    if as_json:
        print_json(_results_json(pulls, scores, pushes))
    else:
        out.print(
            summary_table(
                pulls, scores, pushes, open_quarantine_count(engine) if engine is not None else None
            )
        )
        if any(r.dry_run for r in pushes):
            diff, note = dry_run_table(pushes)
            if diff is not None:
                out.print(diff)
            if note:
                out.print(note, highlight=False)
        for r in pushes:
            if r.held_back:
                out.print(
                    f"{r.source}: {r.held_back} contacts left for the next push (--limit)",
                    highlight=False,
                    markup=False,
                )
            for drift in r.drift:
                action = (
                    "written again" if drift["action"] == "rewrite" else "left as it is (on_drift = report)"
                )
                out.print(
                    f"{r.source}: {drift['email']} {drift['field']} was changed on the platform to "
                    f"{drift['theirs']!r} (leadsync wrote {drift['ours']!r}): {action}",
                    highlight=False,
                    markup=False,
                )
    if not (all(r.ok for r in pulls) and all(r.ok for r in pushes)):
        raise typer.Exit(EXIT_FAILED)


def open_quarantine_count(engine: Any) -> int:
    from sqlalchemy import func, select

    from leadsync.sync.store.models import Quarantine

    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(Quarantine).where(Quarantine.resolved_at.is_(None))
        ).scalar_one()


def run_steps(
    engine: Any,
    config: LeadsyncConfig,
    *,
    pull: bool,
    score: Any | None,
    push: bool,
    sources: list[str] | None = None,
    full: bool = False,
    everyone: bool = False,
    dry_run: bool = False,
    reporter: Any = None,
    limit: int | None = None,
) -> tuple[list[Any], Any, list[Any]]:
    """Pull, score (with ``score``, the model) and push, as asked: what every pipeline command runs."""
    from leadsync.sync.pipeline import prune_history, pull_sources, push_sources
    from leadsync.sync.pipeline import score as run_score

    names = sources or ()
    prune_history(engine, config)
    pulls = pull_sources(engine, config, names, full=full, reporter=reporter) if pull else []
    counts = None
    if score is not None and not stopping.requested():
        try:
            counts = run_score(engine, score, everyone=everyone, reporter=reporter)
        except stopping.Stopped:  # between two batches: those written stay, the rest keep their marks
            pass
    pushes = (
        push_sources(
            engine,
            config,
            names,
            dry_run=dry_run or config.writeback.dry_run,
            reporter=reporter,
            limit=limit,
            # a source that failed to pull in this run: its persons get no lifecycle promotion now
            failed_pulls=[result.source for result in pulls if not result.ok],
        )
        if push and not stopping.requested()
        else []
    )
    return pulls, counts, pushes


def _pipeline_command(
    ctx: typer.Context, *, as_json: bool, model: str | None = None, scoring: bool, **steps: Any
) -> None:
    # SIGTERM/SIGINT: stop between two requests, show what was done, exit 143/130 (sync.shutdown)
    results: tuple[list[Any], Any, list[Any]] = ([], None, [])
    with SignalStop() as signals, errors():
        config = ctx.obj.load()
        scoring_model = model_for(config, model) if scoring else None
        engine = engine_for(config)
        with progress_bars(not as_json) as progress, suppress(stopping.Stopped):
            results = run_steps(engine, config, score=scoring_model, reporter=reporter_for(progress), **steps)
    if not signals.received:
        _finish(*results, as_json, engine)
        return
    try:
        _finish(*results, as_json, engine)
    except typer.Exit:
        pass
    err.print(
        f"stopped by {signals.name}: what was done is committed; the next run goes on from there",
        highlight=False,
        markup=False,
    )
    signals.exit_process(signals.exit_code)


@app.command()
def pull(
    ctx: typer.Context,
    sources: SourcesArg = None,
    full: Annotated[
        bool, typer.Option("--full", help="Re-read everything instead of what changed since the last run.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Pull contacts and engagement from the sources into the local store."""
    _pipeline_command(ctx, as_json=as_json, scoring=False, pull=True, push=False, sources=sources, full=full)


@app.command()
def score(
    ctx: typer.Context,
    model: ModelOpt = None,
    everyone: Annotated[
        bool, typer.Option("--all", help="Re-score every person, not only those whose data changed.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Score the persons whose data changed (everyone after a model change)."""
    _pipeline_command(
        ctx, as_json=as_json, model=model, scoring=True, pull=False, push=False, everyone=everyone
    )


def _persons(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise typer.BadParameter(f"{value} persons: use 1 or more (--dry-run writes none)")
    return value


LimitOpt = Annotated[
    int | None,
    typer.Option(
        "--limit",
        callback=_persons,
        help="Write at most this many persons, largest score change first; the rest stay for the next push.",
    ),
]


@app.command()
def push(
    ctx: typer.Context,
    sources: SourcesArg = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show what would be written (from the store: no request); write nothing."
        ),
    ] = False,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write changed scores, lifecycle stages and tags back to the platforms."""
    _pipeline_command(
        ctx,
        as_json=as_json,
        scoring=False,
        pull=False,
        push=True,
        sources=sources,
        dry_run=dry_run,
        limit=limit,
    )


@app.command()
def sync(
    ctx: typer.Context,
    sources: SourcesArg = None,
    full: Annotated[bool, typer.Option("--full", help="Re-read everything instead of what changed.")] = False,
    model: ModelOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Pull and score, but only show what would be written.")
    ] = False,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull, score and push: one full run."""
    _pipeline_command(
        ctx,
        as_json=as_json,
        model=model,
        scoring=True,
        pull=True,
        push=True,
        sources=sources,
        full=full,
        dry_run=dry_run,
        limit=limit,
    )


@app.command()
def daemon(
    ctx: typer.Context,
    model: ModelOpt = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Serve /metrics and /healthz on this port (off by default; 0: any free port, which the log names).",
        ),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="The address --metrics-port listens on.")] = "127.0.0.1",
    webhook_port: Annotated[
        int | None,
        typer.Option(
            "--webhook-port", min=0, max=65535, help="Also receive webhooks on this port (`webhooks serve`)."
        ),
    ] = None,
) -> None:
    """Sync every source on its schedule until SIGTERM or Ctrl-C (it stops within 5 s, exit 0)."""
    from leadsync.sync.health import monitoring
    from leadsync.sync.lease import daemon_heartbeat
    from leadsync.sync.scheduler import Daemon

    if ctx.parent is not None and ctx.parent.params.get("log_level") == "WARNING":
        logging.getLogger("leadsync").setLevel(logging.INFO)  # a daemon reports each run by default
    with errors():
        config = ctx.obj.load()
        if not any(source.enabled for source in config.sources):
            raise ConfigError("no enabled sources to schedule", file=str(config.path), key="sources")
        engine = engine_for(config)
        runner = Daemon(engine, config, model_for(config, model))
        with ExitStack() as running:
            # monitoring first: a metrics port in use is refused before the daemon says it runs
            running.enter_context(monitoring(runner, engine, config, port=metrics_port, host=metrics_host))
            running.enter_context(daemon_heartbeat(engine))  # `status` tells from it whether a daemon runs
            if webhook_port is not None:
                from leadsync.sync.webhooks.service import (
                    WebhookService,
                )  # its own threads: never blocks jobs

                running.enter_context(WebhookService(engine, config, runner.model, port=webhook_port))
            runner.run()
