"""``leadsync report``: one self-contained HTML file that a sales manager acts on.

It opens with "call these first" (the same persons, in the same order, as ``leadsync leads -n 25``,
each with a link to the contact on its platform), then the score distributions, conversion by grade,
the lift curve, the stage funnel and sync health as runs over time (from the run history).

``gather`` reads the store (scores, identities, run history) and runs a backtest; ``render`` is pure:
data in, HTML out. The charts are matplotlib figures inlined as SVG (sync/reportcharts.py) and the
page is a Jinja2 template shipped with the package (sync/templates/report.html.j2): the file holds
everything it shows, runs no script and loads nothing from the network.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy import Engine, select

from leadsync.config.scoring_model import LIFECYCLE_LEVELS, STAGES, ScoringModel
from leadsync.config.settings import LeadsyncConfig
from leadsync.scoring.backtest import GRADES, Backtest
from leadsync.sync import reportcharts
from leadsync.sync.contactlinks import ContactLink, link_maker
from leadsync.sync.reportcharts import histogram, run_records, run_step
from leadsync.sync.reports import leads
from leadsync.sync.runs import list_runs
from leadsync.sync.store.models import Attributes, Identity, Person, Score

__all__ = ["CALL_FIRST", "CHARTS", "SECTIONS", "CallRow", "ReportData", "gather", "histogram", "render"]

#: The id of every section, in order (a test checks each is present).
SECTIONS = ("call", "distributions", "heatmap", "lift", "funnel", "health")
#: The sections drawn as a chart.
CHARTS = SECTIONS[1:]
CALL_FIRST = 25  # persons in "call these first": `leadsync leads -n 25`
RUNS_SHOWN = 500  # the newest runs of the run history drawn in sync health


@dataclass
class CallRow:
    """One person of "call these first": a ``leads`` row, who they are, and where to open them."""

    lead: dict[str, Any]
    name: str = ""
    title: str = ""
    links: list[ContactLink] = field(default_factory=list)


@dataclass
class ReportData:
    generated_at: datetime
    model_name: str
    call_first: list[CallRow] = field(default_factory=list)
    affinity: list[float] = field(default_factory=list)
    engagement: list[float] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)
    lifecycles: dict[str, int] = field(default_factory=dict)
    backtest: Backtest | None = None
    backtest_note: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)  # as sync.runs.list_runs gives them


def _call_first(engine: Engine, config: LeadsyncConfig | None) -> list[CallRow]:
    top = leads(engine, limit=CALL_FIRST)
    if not top:
        return []
    maker = link_maker(config)
    rows = {row["email"]: CallRow(row) for row in top}
    query = (
        select(
            Person.email,
            Identity.source,
            Identity.platform,
            Identity.remote_id,
            Attributes.first_name,
            Attributes.last_name,
            Attributes.job_title,
            Attributes.company,
            Attributes.raw,
        )
        .join(Identity, Identity.person_id == Person.id)
        .outerjoin(
            Attributes,
            (Attributes.source == Identity.source) & (Attributes.remote_id == Identity.remote_id),
        )
        .where(Person.email.in_(list(rows)))  # type: ignore[attr-defined]
        .order_by(Person.email, Identity.source, Identity.remote_id)
    )
    with engine.connect() as connection:
        for found in connection.execute(query):
            row = rows[found.email]
            name = " ".join(part for part in (found.first_name, found.last_name) if part)
            title = " · ".join(part for part in (found.job_title, found.company) if part)
            row.name = row.name or name
            row.title = row.title or title
            row.links.append(maker.link(found.source, found.platform, found.remote_id, found.raw))
    return list(rows.values())


def gather(
    engine: Engine,
    model: ScoringModel,
    *,
    now: datetime,
    config: LeadsyncConfig | None = None,
    outcome: str = "customer",
    as_of: datetime | None = None,
    horizon: timedelta = timedelta(days=90),
) -> ReportData:
    from leadsync.sync.analytics import default_as_of, run_backtest

    data = ReportData(generated_at=now, model_name=model.name)
    data.call_first = _call_first(engine, config)
    with engine.connect() as connection:
        for affinity, engagement, stage, lifecycle in connection.execute(
            select(Score.affinity, Score.engagement, Score.stage, Score.lifecycle)
        ):
            data.affinity.append(float(affinity))
            data.engagement.append(float(engagement))
            data.stages[stage] = data.stages.get(stage, 0) + 1
            data.lifecycles[lifecycle] = data.lifecycles.get(lifecycle, 0) + 1
    data.runs = list_runs(engine, limit=RUNS_SHOWN)
    try:
        as_of = as_of or default_as_of(engine, horizon)
        data.backtest = run_backtest(engine, model, outcome=outcome, as_of=as_of, horizon=horizon)
    except Exception as exc:  # noqa: BLE001 - the report still shows the other sections
        data.backtest_note = f"No backtest: {exc}"
    return data


# --- rendering (pure) ---------------------------------------------------------------------------

_ENV = Environment(
    loader=PackageLoader("leadsync.sync", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["pct"] = lambda v, digits=1: "n/a" if v is None else f"{100 * v:.{digits}f}%"
_ENV.filters["num"] = lambda v, digits=3: "n/a" if v is None else f"{v:.{digits}f}"
_ENV.filters["when"] = lambda m: "-" if m is None else m.strftime("%Y-%m-%d %H:%M:%S")


def _breakable(text: str) -> Markup:
    """Escaped text that may wrap before an "@" and after a "_" (emails, lifecycle names), not mid-word."""
    return Markup.escape(text).replace("@", Markup("<wbr>@")).replace("_", Markup("_<wbr>"))


_ENV.filters["breakable"] = _breakable


def _source_health(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per source (score runs: "all sources"), newest run first in ``runs``."""
    per: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        per.setdefault(run["source"], []).append(run)
    rows = []
    for source, items in sorted(per.items()):
        status = Counter(r["status"] for r in items)
        moved = Counter()
        for r in items:
            moved[run_step(r)] += run_records(r)
            moved["throttled"] += int((r["counts"] or {}).get("throttled", 0) or 0)
        last = items[0]
        rows.append(
            {
                "source": "all sources (score)" if source == "*" else source,
                "runs": len(items),
                "ok": status.get("ok", 0),
                "failed": status.get("failed", 0),
                "other": len(items) - status.get("ok", 0) - status.get("failed", 0),
                "read": moved["pull"],
                "scored": moved["score"],
                "written": moved["push"],
                "throttled": moved["throttled"],
                "last": {**last, "step": run_step(last)},
            }
        )
    return rows


def render(data: ReportData) -> str:
    """The whole report as one HTML document: inline CSS and SVG, no script, no external resource."""
    bt = data.backtest
    charts: dict[str, Markup | None] = {
        "distributions": Markup(reportcharts.distributions(data.affinity, data.engagement))
        if data.affinity
        else None,
        "heatmap": None,
        "lift": None,
        "funnel": Markup(
            reportcharts.funnel(
                STAGES,
                [data.stages.get(s, 0) for s in STAGES],
                [bt.by_stage[s].rate if bt is not None and s in bt.by_stage else None for s in STAGES],
            )
        ),
        "health": Markup(reportcharts.sync_health(data.runs)) if data.runs else None,
    }
    if bt is not None:
        charts["heatmap"] = Markup(
            reportcharts.heatmap(
                {g: (bt.by_grade[g].converted, bt.by_grade[g].persons) for g in GRADES if g in bt.by_grade}
            )
        )
        charts["lift"] = Markup(
            reportcharts.lift({name: m.lift_curve for name, m in bt.scores.items()}, bt.base_rate)
        )
    lifecycle_rows = [
        {
            "name": level,
            "now": data.lifecycles.get(level, 0),
            "cell": None if bt is None else bt.by_lifecycle.get(level),
        }
        for level in LIFECYCLE_LEVELS
    ]
    return _ENV.get_template("report.html.j2").render(
        data=data,
        bt=bt,
        charts=charts,
        sections=SECTIONS,
        lifecycle_rows=lifecycle_rows,
        mql_level=LIFECYCLE_LEVELS[2],
        health=_source_health(data.runs),
        call_first_size=CALL_FIRST,
    )
