"""The ``leadsync`` command line: the composition root that wires config, store, connectors and
scoring together. Every command says what it does in ``--help``; errors print one clear line and
exit non-zero, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from config.settings import (
    EnvSettings,
    LeadsyncConfig,
    config_path,
    load_config,
    missing_secrets,
    resolve_source,
)
from connectors.errors import ConfigError, ConnectorError, LeadsyncError, RetriableError
from sync.logsetup import REDACTOR, configure_logging

__all__ = ["app", "main"]

log = logging.getLogger("leadsync.cli")

app = typer.Typer(
    name="leadsync",
    help="Pull contacts and engagement from HubSpot, Mailchimp and ActiveCampaign, score every person, "
    "and write the scores back where sales people see them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sandbox_app = typer.Typer(
    help="Local emulators of the three platforms, for trying leadsync and for tests.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # one error, one line: scripts grep it

EXIT_CONFIG = 2
EXIT_FAILED = 1


@dataclass
class Context:
    config_option: Path | None
    env: EnvSettings

    @property
    def config_file(self) -> Path:
        return config_path(self.config_option, self.env)

    def load(self) -> LeadsyncConfig:
        config = load_config(self.config_file, env=self.env)
        register_secrets(config)
        return config


def register_secrets(config: LeadsyncConfig, environ: dict[str, str] | None = None) -> None:
    """Teach the log redactor every secret this config can reach, before anything can log one."""
    environ = dict(os.environ) if environ is None else environ
    for source in config.sources:
        values = [
            *source.inline_secrets.values(),
            *(environ.get(variable) for variable in source.secrets.values()),
        ]
        for value in filter(None, values):
            REDACTOR.add(value)
            # mailchimp.md §1: a key is "<secret>-<dc>"; the part before the data centre is the secret.
            stem, _, dc = value.rpartition("-")
            if stem and re.fullmatch(r"[a-z]{2}\d+", dc):
                REDACTOR.add(stem)


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config file (default: $LEADSYNC_CONFIG, else ./leadsync.toml)."),
    ] = None,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log JSON lines instead of readable text.")
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")] = "WARNING",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Same as --log-level INFO.")] = False,
) -> None:
    configure_logging(level="INFO" if verbose and log_level == "WARNING" else log_level, json_lines=log_json)
    ctx.obj = Context(config_option=config, env=EnvSettings())


@contextmanager
def _errors() -> Iterator[None]:
    """Turn leadsync's own errors into one line on stderr and an exit code."""
    try:
        yield
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {REDACTOR.text(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except LeadsyncError as exc:
        err.print(f"[red]error:[/red] {REDACTOR.text(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None


def _print_json(data: Any) -> None:
    sys.stdout.write(REDACTOR.text(json.dumps(data, indent=2, default=str)) + "\n")


# --- init / check -------------------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Where to write it (default: the --config path).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config to fill in."""
    target = path or ctx.obj.config_file
    if target.exists() and not force:
        err.print(f"[red]{target} already exists[/red]; use --force to overwrite it.")
        raise typer.Exit(EXIT_FAILED)
    target.write_text(
        resources.files("config").joinpath("starter.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    out.print(f"Wrote {target}. Set the environment variables it names, then run `leadsync check`.")


@app.command()
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Validate config and secrets without calling the platforms.")
    ] = False,
) -> None:
    """Validate the config, the secrets and each source's credentials; exit 1 if anything needs fixing."""
    with _errors():
        config = ctx.obj.load()
    results: list[dict[str, Any]] = []
    for index, source in enumerate(config.sources):
        if not source.enabled:
            results.append({"source": source.name, "ok": True, "detail": "disabled"})
            continue
        problems = missing_secrets(config, source, os.environ)
        if problems:
            key = f"sources[{index}].secrets"
            results.append({"source": source.name, "ok": False, "detail": f"{key}: " + "; ".join(problems)})
            continue
        if offline:
            results.append({"source": source.name, "ok": True, "detail": "secrets present (not contacted)"})
            continue
        results.append({"source": source.name, **_probe(config, source)})
    store_ok, store_detail = _check_store(config)
    results.append({"source": "(store)", "ok": store_ok, "detail": store_detail})
    ok = all(r["ok"] for r in results)
    if as_json:
        _print_json({"config": str(ctx.obj.config_file), "ok": ok, "checks": results})
    else:
        table = Table(title=f"leadsync check: {ctx.obj.config_file}", show_lines=False)
        table.add_column("source")
        table.add_column("")
        table.add_column("detail", overflow="fold")
        for r in results:
            table.add_row(
                r["source"], "[green]ok[/green]" if r["ok"] else "[red]FAIL[/red]", REDACTOR.text(r["detail"])
            )
        out.print(table)
        if not config.sources:
            out.print("No sources configured: add a [[sources]] entry (see `leadsync init`).")
    raise typer.Exit(0 if ok else EXIT_FAILED)


PROBE_RETRY = {"max_attempts": 2, "max_elapsed_s": 8.0, "backoff_initial_s": 0.5}


def _probe(config: LeadsyncConfig, source: Any) -> dict[str, Any]:
    from connectors.registry import connector_class

    try:
        settings = resolve_source(config, source)
        # A probe answers in seconds: an unreachable URL is reported, not retried for minutes.
        settings = dataclasses.replace(settings, options={**settings.options, **PROBE_RETRY}, timeout_s=10.0)
        with connector_class(source.platform)(settings) as connector:
            result = connector.check()
        return {"ok": result.ok, "detail": result.detail}
    except RetriableError as exc:  # nothing answered, or not in time
        return {"ok": False, "detail": f"{exc} (is base_url right and the service reachable from here?)"}
    except (ConnectorError, ConfigError) as exc:  # AuthError included: the message names the variable
        return {"ok": False, "detail": str(exc)}


def _check_store(config: LeadsyncConfig) -> tuple[bool, str]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from sync.store import sqlite_path

    try:
        url = make_url(config.store.url)
    except ArgumentError:
        return False, f"store.url: not a database URL: {config.store.url!r}"
    path = sqlite_path(config.store.url)
    if path is not None:
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.exists() or not os.access(folder, os.W_OK):
            return False, f"store.url: cannot create {path}: folder {folder} is missing or not writable"
        return True, f"SQLite at {path}" + ("" if path.exists() else " (created on first run)")
    return True, f"{url.get_backend_name()} at {url.render_as_string(hide_password=True)}"


# --- pipeline -----------------------------------------------------------------------------------

SourcesArg = Annotated[
    list[str] | None, typer.Argument(help="Sources to work on (default: every enabled source).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Scoring model: a preset (default, pardot, points) or a file.")
]


def _engine(config: LeadsyncConfig) -> Any:
    from sync.store import make_engine

    return make_engine(config.store.url)


def _model(config: LeadsyncConfig, option: str | None) -> Any:
    from config.scoring_model import load_model

    ref = option or config.scoring.model
    if config.path is not None and option is None and ref.endswith(".toml") and not Path(ref).is_absolute():
        ref = str(config.path.parent / ref)  # a model path in the config is relative to the config
    return load_model(ref)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    if not enabled:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        yield progress


def _reporter(progress: Any) -> Any:
    from sync.pipeline import Reporter

    if progress is None:
        return Reporter()
    tasks: dict[str, Any] = {}
    totals: dict[str, list[int]] = {}

    def pulled(source: str, stream: str, counts: Any) -> None:
        key = f"pull {source}"
        if key not in tasks:
            tasks[key] = progress.add_task(f"pull {source}", total=None, detail="")
            totals[key] = [0, 0]
        totals[key][0] += counts.contacts
        totals[key][1] += counts.events
        progress.update(
            tasks[key],
            advance=counts.contacts + counts.events,
            detail=f"{stream}: {totals[key][0]} contacts, {totals[key][1]} events",
        )

    def scored(n: int) -> None:
        if "score" not in tasks:
            tasks["score"] = progress.add_task("score", total=None, detail="persons")
        progress.update(tasks["score"], advance=n)

    def pushing(source: str, total: int) -> None:
        tasks[f"push {source}"] = progress.add_task(f"push {source}", total=total, detail="updates")

    def pushed(source: str, n: int) -> None:
        progress.update(tasks[f"push {source}"], advance=n)

    return Reporter(pulled=pulled, scored=scored, pushing=pushing, pushed=pushed)


def _summary_table(
    pulls: list[Any], scores: Any, pushes: list[Any], quarantined_total: int | None = None
) -> Table:
    table = Table(title="leadsync summary")
    for column in ("source", "step", "result", "detail"):
        table.add_column(column, overflow="fold")
    for r in pulls:
        table.add_row(
            r.source,
            "pull",
            "[green]ok[/green]" if r.ok else "[red]failed[/red]",
            f"{r.contacts} contacts, {r.events} events, {r.quarantined} quarantined in {r.seconds:.1f}s"
            + (f" - {r.error}" if r.error else ""),
        )
    if scores is not None:
        table.add_row(
            "(all)", "score", "[green]ok[/green]", f"{scores.scored} persons scored, {scores.changed} changed"
        )
    for r in pushes:
        detail = (
            f"{r.planned} to write (dry run: nothing written)"
            if r.dry_run
            else f"{r.written} written, {r.failed} failed, {r.requests} requests"
        )
        table.add_row(
            r.source,
            "push",
            "[green]ok[/green]" if r.ok else "[red]failed[/red]",
            detail + (f" - {r.error}" if r.error else ""),
        )
    if quarantined_total:
        table.caption = f"{quarantined_total} records in quarantine: see `leadsync quarantine`"
    return table


def _results_json(pulls: list[Any], scores: Any, pushes: list[Any]) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "pull": [asdict(r) for r in pulls],
        "score": None if scores is None else asdict(scores),
        "push": [asdict(r) for r in pushes],
        "ok": all(r.ok for r in pulls) and all(r.ok for r in pushes),
    }


def _finish(pulls: list[Any], scores: Any, pushes: list[Any], as_json: bool, engine: Any = None) -> None:
    if as_json:
        _print_json(_results_json(pulls, scores, pushes))
    else:
        out.print(
            _summary_table(pulls, scores, pushes, _quarantine_count(engine) if engine is not None else None)
        )
        for r in pushes:
            if r.dry_run and r.diff:
                out.print(f"[bold]{r.source}[/bold]: would write {len(r.diff)} contacts")
                for item in r.diff[:20]:
                    changes = ", ".join(
                        f"{k}: {v['from']!r} -> {v['to']!r}" for k, v in item["changes"].items()
                    )
                    out.print(f"  {item['remote_id']}: {changes}", highlight=False)
                if len(r.diff) > 20:
                    out.print(f"  ... and {len(r.diff) - 20} more (use --json for all)")
    if not (all(r.ok for r in pulls) and all(r.ok for r in pushes)):
        raise typer.Exit(EXIT_FAILED)


def _quarantine_count(engine: Any) -> int:
    from sqlalchemy import func, select

    from sync.store.models import Quarantine

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
) -> tuple[list[Any], Any, list[Any]]:
    """Pull, score (with ``score``, the model) and push, as asked: what every pipeline command runs."""
    from sync.pipeline import pull_sources, push_sources
    from sync.pipeline import score as run_score

    names = sources or ()
    pulls = pull_sources(engine, config, names, full=full, reporter=reporter) if pull else []
    counts = run_score(engine, score, everyone=everyone, reporter=reporter) if score is not None else None
    pushes = (
        push_sources(engine, config, names, dry_run=dry_run or config.writeback.dry_run, reporter=reporter)
        if push
        else []
    )
    return pulls, counts, pushes


def _pipeline_command(
    ctx: typer.Context, *, as_json: bool, model: str | None = None, scoring: bool, **steps: Any
) -> None:
    with _errors():
        config = ctx.obj.load()
        scoring_model = _model(config, model) if scoring else None
        engine = _engine(config)
        with _progress(not as_json) as progress:
            results = run_steps(engine, config, score=scoring_model, reporter=_reporter(progress), **steps)
    _finish(*results, as_json, engine)


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


@app.command()
def push(
    ctx: typer.Context,
    sources: SourcesArg = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be written; write nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write changed scores, lifecycle stages and tags back to the platforms."""
    _pipeline_command(
        ctx, as_json=as_json, scoring=False, pull=False, push=True, sources=sources, dry_run=dry_run
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
    )


@app.command()
def daemon(ctx: typer.Context, model: ModelOpt = None) -> None:
    """Sync every source on its schedule until SIGTERM or Ctrl-C (which finish the current page, then exit)."""
    from sync.scheduler import Daemon

    if ctx.parent is not None and ctx.parent.params.get("log_level") == "WARNING":
        logging.getLogger("leadsync").setLevel(logging.INFO)  # a daemon reports each run by default
    with _errors():
        config = ctx.obj.load()
        if not any(source.enabled for source in config.sources):
            raise ConfigError("no enabled sources to schedule", file=str(config.path), key="sources")
        runner = Daemon(_engine(config), config, _model(config, model))
        runner.run()


# --- reading the store -------------------------------------------------------------------------


def _when(moment: Any) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


@app.command()
def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show, per source, the last run and its result, the next run, cursors, counts, pending writes and quarantine."""
    from sync.pipeline import utcnow
    from sync.reports import source_status

    with _errors():
        config = ctx.obj.load()
        engine = _engine(config)
        statuses = source_status(engine, config, now=utcnow())
    if as_json:
        from dataclasses import asdict

        _print_json([asdict(item) for item in statuses])
        return
    table = Table(title=f"leadsync status: {config.store.url}")
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
        if item.lease:
            result += " (running)"
            notes.append(
                f"{item.source}: being synced by {item.lease['holder']} until {_when(item.lease['expires_at'])}"
            )
        table.add_row(
            item.source,
            f"{run.get('command', '')} {_when(run.get('started_at'))}".strip(),
            result,
            _when(item.next_run),
            str(item.identities),
            str(item.events),
            str(item.pending_writes),
            str(item.quarantined),
        )
    out.print(table)
    for note in notes:
        out.print(f"  {note}", highlight=False)


def _leads_table(title: str, rows: list[dict[str, Any]], *, reason: bool) -> Table:
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
    from sync.reports import leads as ranked

    with _errors():
        config = ctx.obj.load()
        rows = ranked(_engine(config), limit=limit, grade=grade, lifecycle=lifecycle)
    if as_json:
        _print_json(rows)
        return
    out.print(_leads_table("leads", rows, reason=True))
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

    from connectors.records import normalise_email
    from scoring import score_many
    from scoring.explain import render_explanation
    from sync.pipeline import utcnow
    from sync.rescore import load_event_columns, load_profiles
    from sync.store.models import Person

    with _errors():
        config = ctx.obj.load()
        scoring_model = _model(config, model)
        engine = _engine(config)
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
        _print_json(
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
    from sync.reports import quarantined

    if ctx.invoked_subcommand is not None:
        return
    with _errors():
        config = ctx.obj.load()
        rows = quarantined(_engine(config), source=source)
    if as_json:
        _print_json(rows)
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
            _when(row["last_seen_at"]),
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
    from sync.quarantine import retry_quarantined

    with _errors():
        config = ctx.obj.load()
        engine = _engine(config)
        outcome = retry_quarantined(engine, config, source=source)
    if as_json:
        from dataclasses import asdict

        _print_json(asdict(outcome))
    else:
        out.print(
            f"Retried {outcome.retried} quarantined records: {outcome.resolved} resolved, {outcome.still_bad} still bad."
        )
    if not all(r.ok for r in outcome.pulls + outcome.pushes):
        raise typer.Exit(EXIT_FAILED)


# --- analytics: backtest, learned model, HTML report (logic in sync/analytics.py, sync/report.py) -

OutcomeOpt = Annotated[
    str, typer.Option("--outcome", help="What counts as converting: customer, deal_won or purchase.")
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Score as of this date (YYYY-MM-DD, UTC; default: last event minus the horizon)."
    ),
]
HorizonOpt = Annotated[str, typer.Option("--horizon", help="Outcome window after the as-of date, e.g. 90d.")]


def _as_of(text: str | None, engine: Any, horizon: Any) -> Any:
    from datetime import UTC, datetime

    from sync.analytics import default_as_of

    if text is None:
        return default_as_of(engine, horizon)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--as-of {text!r}: write a date as YYYY-MM-DD", key="--as-of") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def backtest(
    ctx: typer.Context,
    outcome: OutcomeOpt = "customer",
    as_of: AsOfOpt = None,
    horizon: HorizonOpt = "90d",
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild every score as of a date and measure how well it predicted the outcomes that followed."""
    from sync.analytics import parse_horizon, run_backtest

    with _errors():
        config = ctx.obj.load()
        scoring_model = _model(config, model)
        engine = _engine(config)
        window = parse_horizon(horizon)
        figures = run_backtest(
            engine, scoring_model, outcome=outcome, as_of=_as_of(as_of, engine, window), horizon=window
        )
    data = figures.as_dict()
    if as_json:
        _print_json(data)
        return
    out.print(
        f"{outcome} within {figures.horizon_days:g} days of {figures.as_of.date()}: {figures.converted} of "
        f"{figures.persons} leads converted ({figures.excluded_prior} already converted before, left out)."
    )
    table = Table(title=f"backtest of {scoring_model.name}")
    for column in ("score", "ROC-AUC", "PR-AUC", "top-decile lift", "converters in top decile"):
        table.add_column(column)
    fmt = lambda v, spec=".3f": "n/a" if v is None else format(v, spec)  # noqa: E731
    for name, m in data["scores"].items():
        table.add_row(
            name,
            fmt(m["roc_auc"]),
            fmt(m["pr_auc"]),
            fmt(m["top_decile_lift"], ".2f"),
            fmt(m["top_decile_share"], ".1%"),
        )
    out.print(table)
    out.print(
        f"At the MQL threshold ({data['mql']['count']} leads): precision {fmt(data['mql']['precision'], '.1%')}, recall {fmt(data['mql']['recall'], '.1%')}."
    )
    for title, key in (("grade", "by_grade"), ("stage", "by_stage")):
        cells = Table(title=f"conversion by {title}")
        for column in (title, "leads", "converted", "rate"):
            cells.add_column(column)
        for label, cell in data[key].items():
            cells.add_row(label, str(cell["persons"]), str(cell["converted"]), fmt(cell["rate"], ".1%"))
        out.print(cells)


model_app = typer.Typer(help="Scoring models: learn points from your own history.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("fit")
def model_fit(
    ctx: typer.Context,
    outcome: OutcomeOpt = "customer",
    out_file: Annotated[Path, typer.Option("--out", help="Model file to write.")] = Path("learned.toml"),
    as_of: AsOfOpt = None,
    horizon: HorizonOpt = "90d",
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn points from history (regularised logistic regression), validated on a later holdout window."""
    from sync.analytics import fit_model, parse_horizon

    with _errors():
        config = ctx.obj.load()
        base = _model(config, model)
        engine = _engine(config)
        window = parse_horizon(horizon)
        report = fit_model(engine, base, outcome=outcome, as_of=_as_of(as_of, engine, window), horizon=window)
        out_file.write_text(report.text, encoding="utf-8")
    if as_json:
        _print_json({**report.as_dict(), "out": str(out_file)})
        return
    out.print(
        f"Trained on {report.train_persons} leads as of {report.train_as_of.date()} ({report.train_converted} converted), "
        f"held out {report.holdout_persons} as of {report.holdout_as_of.date()} ({report.holdout_converted} converted)."
    )
    out.print(report.verdict() + ".")
    out.print(f"Wrote {out_file}: try it with `leadsync backtest --model {out_file}`.")


@app.command()
def report(
    ctx: typer.Context,
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("report.html"),
    outcome: OutcomeOpt = "customer",
    as_of: AsOfOpt = None,
    horizon: HorizonOpt = "90d",
    model: ModelOpt = None,
) -> None:
    """Write one self-contained HTML report: score distributions, conversion by grade, lift, funnel, sync health."""
    from sync.analytics import parse_horizon
    from sync.pipeline import utcnow
    from sync.report import gather, render

    with _errors():
        config = ctx.obj.load()
        engine = _engine(config)
        window = parse_horizon(horizon)
        moment = None if as_of is None else _as_of(as_of, engine, window)
        data = gather(
            engine, _model(config, model), now=utcnow(), outcome=outcome, as_of=moment, horizon=window
        )
        out_file.write_text(render(data), encoding="utf-8")
    out.print(f"Wrote {out_file}" + (f" ({data.backtest_note})" if data.backtest_note else "") + ".")


# --- sandbox ------------------------------------------------------------------------------------


@sandbox_app.command("world")
def sandbox_world(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="JSON Lines file to write.")],
    contacts: Annotated[int, typer.Option("--contacts", "-n", min=1, help="Number of persons.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Same seed, same world, byte for byte.")] = 1,
) -> None:
    """Generate a deterministic world (persons, campaigns, 180 days of engagement) as JSON Lines."""
    from sandbox.world import generate_world

    with _errors():
        world = generate_world(contacts, seed)
        world.write(out_file)
    out.print(
        f"Wrote {out_file}: {len(world.persons)} persons, {world.event_count} events, "
        f"{len(world.campaigns)} campaigns (seed {seed})."
    )


@sandbox_app.command("serve")
def sandbox_serve(
    contacts: Annotated[
        int, typer.Option("--contacts", "-n", min=1, help="Generate a world of this many persons.")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the generated world.")] = 1,
    world_file: Annotated[
        Path | None, typer.Option("--world", help="Serve this world file instead of generating one.")
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    hubspot_port: Annotated[int, typer.Option("--hubspot-port")] = 8701,
    mailchimp_port: Annotated[int, typer.Option("--mailchimp-port")] = 8702,
    activecampaign_port: Annotated[int, typer.Option("--activecampaign-port")] = 8703,
    rate_limits: Annotated[
        str, typer.Option("--rate-limits", help="'on' (the platforms' defaults) or 'off' (for speed).")
    ] = "on",
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0, help="Delay added to every API request.")
    ] = 0.0,
    hubspot_tier: Annotated[
        str, typer.Option("--hubspot-tier", help="free, starter, professional or enterprise.")
    ] = "free",
    write_config: Annotated[
        Path | None,
        typer.Option("--write-config", help="Write a leadsync config that points at this sandbox."),
    ] = None,
    store_url: Annotated[
        str | None, typer.Option("--store-url", help="Store URL to put in the written config.")
    ] = None,
) -> None:
    """Run the HubSpot, Mailchimp and ActiveCampaign emulators on loopback until Ctrl-C."""
    from sandbox.server import SandboxServer
    from sandbox.world import World, generate_world

    if rate_limits not in {"on", "off"}:
        err.print("--rate-limits must be 'on' or 'off'")
        raise typer.Exit(EXIT_CONFIG)
    with _errors():
        world = World.read(world_file) if world_file else generate_world(contacts, seed)
        server = SandboxServer.for_world(
            world,
            ports={
                "hubspot": hubspot_port,
                "mailchimp": mailchimp_port,
                "activecampaign": activecampaign_port,
            },
            rate_limits=rate_limits == "on",
            latency_ms=latency_ms,
            extra={"hubspot": {"tier": hubspot_tier}},
        )
        server.host = host
        server.start()
    try:
        if write_config:
            write_sandbox_config(server, write_config, store_url=store_url)
            out.print(f"Wrote {write_config}: run `leadsync --config {write_config} check`.")
        for name in server.state.hosts:
            out.print(
                f"{name:>15}: {server.base_url(name)}   (admin: {server.base_url(name)}/_sandbox/stats)"
            )
        out.print(f"Serving {len(world.persons)} persons. Ctrl-C to stop.")
        _wait_forever()
    finally:
        server.stop()


def _wait_forever() -> None:
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where to put the demo's config and store.")] = Path(
        ".demo"
    ),
    contacts: Annotated[
        int, typer.Option("--contacts", "-n", min=10, help="Persons in the generated world.")
    ] = 400,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the generated world.")] = 1,
    rate_limits: Annotated[
        str, typer.Option("--rate-limits", help="'on' (the platforms' defaults) or 'off'.")
    ] = "on",
) -> None:
    """Run the whole pipeline against a local sandbox: check, sync, leaderboard, read-back, re-sync."""
    from config.scoring_model import load_model
    from sandbox.server import SandboxServer
    from sandbox.world import generate_world
    from sync.demo import demo_dir, free_port, read_back
    from sync.reports import leads as ranked

    folder = demo_dir(folder)
    out.rule("leadsync demo")
    out.print(f"Generating a world of {contacts} persons (seed {seed}) ...")
    world = generate_world(contacts, seed)
    server = SandboxServer.for_world(
        world,
        ports={"hubspot": free_port(), "mailchimp": free_port(), "activecampaign": free_port()},
        rate_limits=rate_limits != "off",
    )
    with server, _errors():
        config_file = folder / "leadsync.toml"
        write_sandbox_config(server, config_file, store_url=f"sqlite:///{folder / 'leadsync.db'}")
        out.print(
            f"Sandbox on {', '.join(server.base_url(n) for n in server.state.hosts)}; config in {config_file}"
        )
        config = load_config(config_file)
        register_secrets(config)
        for source in config.sources:
            result = _probe(config, source)
            out.print(
                f"check {source.name}: {'[green]ok[/green]' if result['ok'] else '[red]FAIL[/red]'} {result['detail']}"
            )
            if not result["ok"]:
                raise typer.Exit(EXIT_FAILED)
        engine = _engine(config)
        model = load_model(config.scoring.model)
        with _progress(True) as progress:
            pulls, counts, pushes = run_steps(
                engine, config, pull=True, score=model, push=True, reporter=_reporter(progress)
            )
        out.print(_summary_table(pulls, counts, pushes, _quarantine_count(engine)))
        top = ranked(engine, limit=10)
        out.print(_leads_table("Leaderboard: the 10 best leads", top, reason=False))
        checked = read_back(engine, config, [row["email"] for row in top])
        out.print(
            f"Read-back: {checked.matched} of {checked.checked} written values read back from the platforms match the store."
        )
        for problem in checked.mismatches[:10]:
            out.print(f"  [red]mismatch[/red] {problem}", highlight=False)
        before = {name: host.stats.snapshot()["write_requests"] for name, host in server.state.hosts.items()}
        _, _, again = run_steps(engine, config, pull=False, score=None, push=True)
        after = {name: host.stats.snapshot()["write_requests"] for name, host in server.state.hosts.items()}
        writes = sum(after[n] - before[n] for n in after)
        out.print(
            f"Second push with nothing changed: {sum(r.planned for r in again)} updates planned, {writes} write requests."
        )
        ok = (
            all(r.ok for r in pulls + pushes)
            and not checked.mismatches
            and checked.checked > 0
            and writes == 0
        )
        out.rule("[green]demo passed[/green]" if ok else "[red]demo found problems[/red]")
        out.print(
            f"Look around: leadsync --config {config_file} leads | status | explain EMAIL  (the sandbox stops now)"
        )
    if not ok:
        raise typer.Exit(EXIT_FAILED)


# Options that lift the connectors' own throttles; accepted only for loopback base URLs.
UNTHROTTLED: dict[str, dict[str, Any]] = {
    "hubspot": {"rate_limit": False},
    "activecampaign": {"requests_per_second": 0, "import_poll_s": 0.02, "bulk_rate_wait_s": 0.05},
}


def write_sandbox_config(server: Any, path: Path, *, store_url: str | None = None) -> None:
    """A config whose sources point at ``server``, with the sandbox's inline secrets."""
    import tomli_w

    sources = []
    for name, host in server.state.hosts.items():
        source = host.emulator.source_config(server.base_url(name))
        if not host.emulator.options.rate_limits:  # a sandbox without limits: no client-side throttle either
            source["options"] = {**source.get("options", {}), **UNTHROTTLED.get(name, {})}
        sources.append(source)
    document = {
        "store": {"url": store_url or f"sqlite:///{path.with_suffix('.db').name}"},
        "sources": sources,
    }
    path.write_text(
        "# Written by `leadsync sandbox serve --write-config`: points at the local sandbox.\n"
        "# inline_secrets are accepted only because every base_url is on loopback.\n"
        + tomli_w.dumps(document),
        encoding="utf-8",
    )
    os.chmod(path, 0o600)


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # raised outside a command's own handler (e.g. by a callback)
        err.print(f"[red]config error:[/red] {REDACTOR.text(str(exc))}", highlight=False)
        sys.exit(EXIT_CONFIG)
    except LeadsyncError as exc:
        err.print(f"[red]error:[/red] {REDACTOR.text(str(exc))}", highlight=False)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
