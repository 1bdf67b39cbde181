"""``init`` and ``check``: write a starter config; validate config, secrets, credentials and store."""

from __future__ import annotations

import dataclasses
import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from leadsync.config.settings import LeadsyncConfig, missing_secrets, resolve_source
from leadsync.connectors.errors import ConfigError, ConnectorError, RetriableError
from leadsync.sync.cli.app import EXIT_FAILED, WideOpt, app, err, errors, model_for, out, print_json
from leadsync.sync.cli.tables import Column, print_table, status_text
from leadsync.sync.logsetup import REDACTOR


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
        err.print(f"[red]{escape(str(target))} already exists[/red]; use --force to overwrite it.")
        raise typer.Exit(EXIT_FAILED)
    target.write_text(
        resources.files("leadsync.config").joinpath("starter.toml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    out.print(
        f"Wrote {target}. Set the environment variables it names, then run `leadsync check`.", markup=False
    )


@app.command()
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Validate config and secrets without calling the platforms.")
    ] = False,
    wide: WideOpt = False,
) -> None:
    """Validate the config, the scoring model, the secrets and each source's credentials; exit 1 if
    anything needs fixing."""
    with errors():
        config = ctx.obj.load()
    results: list[dict[str, Any]] = [{"source": "(scoring model)", **_check_model(config)}]
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
        results.append({"source": source.name, **probe_source(config, source)})
    store_ok, store_detail = _check_store(config)
    results.append({"source": "(store)", "ok": store_ok, "detail": store_detail})
    ok = all(r["ok"] for r in results)
    if as_json:
        print_json({"config": str(ctx.obj.config_file), "ok": ok, "checks": results})
    else:
        print_table(
            out,
            CHECK_COLUMNS,
            [[r["source"], status_text(r["ok"]), REDACTOR.text(r["detail"])] for r in results],
            title=f"leadsync check: {ctx.obj.config_file}",
            wide=wide,
        )
        if not config.sources:
            out.print("No sources configured: add a [[sources]] entry (see `leadsync init`).", markup=False)
    raise typer.Exit(0 if ok else EXIT_FAILED)


CHECK_COLUMNS = (Column("check"), Column(""), Column("detail", fold=True))


def _check_model(config: LeadsyncConfig) -> dict[str, Any]:
    """Load and validate the scoring model the config names (``scoring.model``)."""
    try:
        model = model_for(config, None)
    except ConfigError as exc:
        return {"ok": False, "detail": str(exc)}
    return {
        "ok": True,
        "detail": f"scoring.model = {config.scoring.model!r}: {model.name!r} version {model.version}",
    }


PROBE_RETRY = {"max_attempts": 2, "max_elapsed_s": 8.0, "backoff_initial_s": 0.5}


def probe_source(config: LeadsyncConfig, source: Any) -> dict[str, Any]:
    from leadsync.connectors.registry import connector_class

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
    """Connect to the store and read its schema version, without creating or migrating anything.
    SQLite: also check its pages and that it takes a write (``sync.store.db.inspect_store``), so a
    read-only, damaged or foreign file, an unwritable folder, a full disk or a store locked past
    ``store.lock_timeout`` is reported with what to do. PostgreSQL: reachable or not, the server's
    version and the schema's against the one this leadsync expects. The URL's password is hidden."""
    from leadsync.sync.store import StoreSettingError, public_url, sqlite_path, store_url
    from leadsync.sync.store.db import describe_store_error, head_revision, inspect_store, schema_revision

    try:
        url = store_url(config.store.url)
    except StoreSettingError as exc:
        return False, str(exc)
    if sqlite_path(url) is not None:
        return inspect_store(config.store.url, lock_timeout=config.store.lock_timeout)
    shown = public_url(config.store.url)
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    head = head_revision()
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 10})
    except ModuleNotFoundError:
        return False, "store.url: the PostgreSQL driver is not installed: pip install 'leadsync[postgres]'"
    try:
        with engine.connect() as connection:
            revision = schema_revision(connection)
            server = (
                "PostgreSQL " + str(connection.exec_driver_sql("SHOW server_version").scalar()).split()[0]
            )
    except DBAPIError as exc:
        return False, f"store.url: {describe_store_error(exc, config.store.url)}"
    finally:
        engine.dispose()
    if revision is None:
        return True, f"{server} at {shown}: reachable; no schema yet (the first command creates it, {head})"
    if revision != head:
        return True, f"{server} at {shown}: reachable; schema {revision}, migrated to {head} on the next run"
    return True, f"{server} at {shown}: reachable; schema {revision} (current)"
