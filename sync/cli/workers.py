"""``worker`` and ``enqueue``: syncs on many machines through Procrastinate (``sync.workers``)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from leadsync.sync.cli.app import (
    JsonOpt,
    ModelOpt,
    SourcesArg,
    app,
    engine_for,
    errors,
    model_for,
    out,
    print_json,
)


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-j", min=1, help="Jobs this worker runs at once (threads).")
    ] = 1,
    name: Annotated[
        str | None, typer.Option("--name", help="This worker's name in logs (default: host:worker:pid).")
    ] = None,
    heartbeat: Annotated[
        float, typer.Option("--heartbeat", min=0.1, help="Seconds between this worker's heartbeats.")
    ] = 10.0,
    stalled_after: Annotated[
        float,
        typer.Option(
            "--stalled-after",
            min=0.5,
            help="Seconds without a heartbeat after which a worker's running jobs are retried by another.",
        ),
    ] = 30.0,
    attempts: Annotated[
        int, typer.Option("--attempts", min=1, help="Tries of a failing job in all (back-off 2, 4, 8... s).")
    ] = 5,
    model: ModelOpt = None,
) -> None:
    """Take sync jobs from the queue in the PostgreSQL store ([engine] kind = "procrastinate") until
    SIGTERM or Ctrl-C. Start one on each machine; each schedules and runs the sources' syncs."""
    import os

    from leadsync.sync.workers import WorkerOptions, require_procrastinate, run_worker

    if ctx.parent is not None and ctx.parent.params.get("log_level") == "WARNING":
        logging.getLogger("leadsync").setLevel(logging.INFO)  # a worker reports each job by default
    with errors():
        config = ctx.obj.load()
        require_procrastinate(config)
        options = WorkerOptions(
            concurrency=concurrency,
            heartbeat=heartbeat,
            stalled_after=stalled_after,
            attempts=attempts,
        )
        options.name = name or f"{options.name}:{os.getpid()}"
        run_worker(engine_for(config), config, model_for(config, model), options)


@app.command()
def enqueue(ctx: typer.Context, sources: SourcesArg = None, as_json: JsonOpt = False) -> None:
    """Queue a sync of these sources (default: every enabled one) now, for the workers to take."""
    from leadsync.sync.workers import enqueue as enqueue_sources
    from leadsync.sync.workers import require_procrastinate

    with errors():
        config = ctx.obj.load()
        require_procrastinate(config)
        result = enqueue_sources(engine_for(config), config, sources or [])
    if as_json:
        print_json(result)
        return
    for source, state in result.items():
        out.print(f"{source}: {state}", markup=False)
