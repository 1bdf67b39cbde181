"""``backtest``, ``model fit`` and ``report`` (their logic lives in sync/analytics.py and sync/report.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from leadsync.connectors.errors import ConfigError
from leadsync.sync.cli.app import JsonOpt, ModelOpt, app, engine_for, errors, model_for, out, print_json

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

    from leadsync.sync.analytics import default_as_of

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
    from leadsync.sync.analytics import parse_horizon, run_backtest

    with errors():
        config = ctx.obj.load()
        scoring_model = model_for(config, model)
        engine = engine_for(config)
        window = parse_horizon(horizon)
        figures = run_backtest(
            engine, scoring_model, outcome=outcome, as_of=_as_of(as_of, engine, window), horizon=window
        )
    data = figures.as_dict()
    if as_json:
        print_json(data)
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
    from leadsync.sync.analytics import fit_model, parse_horizon

    with errors():
        config = ctx.obj.load()
        base = model_for(config, model)
        engine = engine_for(config)
        window = parse_horizon(horizon)
        report = fit_model(engine, base, outcome=outcome, as_of=_as_of(as_of, engine, window), horizon=window)
        out_file.write_text(report.text, encoding="utf-8")
    if as_json:
        print_json({**report.as_dict(), "out": str(out_file)})
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
    from leadsync.sync.analytics import parse_horizon
    from leadsync.sync.pipeline import utcnow
    from leadsync.sync.report import gather, render

    with errors():
        config = ctx.obj.load()
        engine = engine_for(config)
        window = parse_horizon(horizon)
        moment = None if as_of is None else _as_of(as_of, engine, window)
        data = gather(
            engine, model_for(config, model), now=utcnow(), outcome=outcome, as_of=moment, horizon=window
        )
        out_file.write_text(render(data), encoding="utf-8")
    out.print(f"Wrote {out_file}" + (f" ({data.backtest_note})" if data.backtest_note else "") + ".")
