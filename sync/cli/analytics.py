"""``backtest``, ``model fit`` and ``report`` (their logic lives in sync/analytics.py and sync/report.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from leadsync.connectors.errors import ConfigError
from leadsync.scoring.learn import TooFewOutcomes
from leadsync.sync.cli.app import (
    JsonOpt,
    ModelOpt,
    WideOpt,
    app,
    engine_for,
    errors,
    model_for,
    out,
    print_json,
)
from leadsync.sync.cli.tables import Column, print_table

BACKTEST_COLUMNS = (
    Column("score"),
    Column("ROC-AUC", justify="right"),
    Column("PR-AUC", justify="right"),
    Column("top-decile lift", justify="right"),
    Column("converters in top decile", drop=1, justify="right"),
)

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
    wide: WideOpt = False,
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
        f"{figures.persons} leads converted ({figures.excluded_prior} already converted before, left out).",
        markup=False,
    )
    fmt = lambda v, spec=".3f": "n/a" if v is None else format(v, spec)  # noqa: E731
    rows = [
        [
            name,
            fmt(m["roc_auc"]),
            fmt(m["pr_auc"]),
            fmt(m["top_decile_lift"], ".2f"),
            fmt(m["top_decile_share"], ".1%"),
        ]
        for name, m in data["scores"].items()
    ]
    print_table(out, BACKTEST_COLUMNS, rows, title=f"backtest of {scoring_model.name}", wide=wide)
    out.print(
        f"At marketing_qualified_lead or above ({data['mql']['count']} leads): "
        f"precision {fmt(data['mql']['precision'], '.1%')}, recall {fmt(data['mql']['recall'], '.1%')}.",
        markup=False,
    )
    for title, key in (("grade", "by_grade"), ("stage", "by_stage")):
        columns = (
            Column(title),
            Column("leads", justify="right"),
            Column("converted", justify="right"),
            Column("rate", justify="right"),
        )
        cells = [
            [label, str(cell["persons"]), str(cell["converted"]), fmt(cell["rate"], ".1%")]
            for label, cell in data[key].items()
        ]
        print_table(out, columns, cells, title=f"conversion by {title}", wide=wide)


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
        try:
            report = fit_model(
                engine, base, outcome=outcome, as_of=_as_of(as_of, engine, window), horizon=window
            )
        except TooFewOutcomes as exc:
            raise TooFewOutcomes(_sandbox_advice(config, exc), persons_needed=exc.persons_needed) from None
        out_file.write_text(report.text, encoding="utf-8")
    if as_json:
        print_json({**report.as_dict(), "out": str(out_file)})
        return
    out.print(
        f"Trained on {report.train_persons} leads as of {report.train_as_of.date()} ({report.train_converted} converted), "
        f"held out {report.holdout_persons} as of {report.holdout_as_of.date()} ({report.holdout_converted} converted)."
    )
    out.print(report.verdict() + ".", markup=False)
    out.print(f"Wrote {out_file}: try it with `leadsync backtest --model {out_file}`.", markup=False)


def _sandbox_advice(config: Any, exc: TooFewOutcomes) -> str:
    """On a sandbox (every source on loopback) a larger generated world is one command away."""
    from leadsync.config.settings import is_loopback

    sources = [s for s in config.sources if s.enabled]
    if exc.persons_needed is None or not sources or not all(is_loopback(s.base_url) for s in sources):
        return str(exc)
    folder = ".demo-fit"
    return (
        f"{exc}. This store comes from a sandbox: a generated world of {exc.persons_needed:,} persons has "
        f"enough history: `leadsync demo --contacts {exc.persons_needed} --rate-limits off --dir {folder}`, "
        f"then `leadsync --config {folder}/leadsync.toml model fit`"
    )


def _html_out(path: Path) -> Path:
    if path.is_dir():
        raise typer.BadParameter(
            f"{str(path)!r} is a folder; name the HTML file to write, e.g. {path / 'report.html'}"
        )
    if not path.parent.is_dir():
        raise typer.BadParameter(f"{str(path)!r}: the folder {str(path.parent)!r} does not exist")
    return path


@app.command()
def report(
    ctx: typer.Context,
    out_file: Annotated[Path, typer.Option("--out", callback=_html_out, help="HTML file to write.")] = Path(
        "report.html"
    ),
    outcome: OutcomeOpt = "customer",
    as_of: AsOfOpt = None,
    horizon: HorizonOpt = "90d",
    model: ModelOpt = None,
) -> None:
    """Write one self-contained HTML report: whom to call first, score distributions, conversion by grade,
    lift, funnel, sync health."""
    from leadsync.sync.analytics import parse_horizon
    from leadsync.sync.pipeline import utcnow
    from leadsync.sync.report import gather, render

    with errors():
        config = ctx.obj.load()
        engine = engine_for(config)
        window = parse_horizon(horizon)
        moment = None if as_of is None else _as_of(as_of, engine, window)
        data = gather(
            engine,
            model_for(config, model),
            now=utcnow(),
            config=config,
            outcome=outcome,
            as_of=moment,
            horizon=window,
        )
        try:
            out_file.write_text(render(data), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"--out {str(out_file)!r}: cannot write it: {exc.strerror}", key="--out"
            ) from None
    out.print(
        f"Wrote {out_file}" + (f" ({data.backtest_note})" if data.backtest_note else "") + ".", markup=False
    )
