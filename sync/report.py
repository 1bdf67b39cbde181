"""``leadsync report``: one self-contained HTML file (no network needed to view it).

Sections: score distributions, a grade-by-conversion heatmap, the lift curve, the stage funnel and
sync health per source. ``gather`` reads the store (current scores, sync runs) and runs a backtest;
``render`` is pure: data in, HTML text out.

The plots are hand-built inline SVG (bars, rectangles, one polyline). No chart library is installed,
and matplotlib or plotly would add a large install to every ``make demo`` for five simple plots;
inline SVG also keeps the file viewable offline, with no script and no external resource.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, desc, select

from leadsync.config.scoring_model import STAGES, ScoringModel
from leadsync.scoring.backtest import GRADES, Backtest
from leadsync.sync.store.models import Score, SyncRun

__all__ = ["SECTIONS", "ReportData", "gather", "render"]

#: The id of every section, in order (a test checks each is present).
SECTIONS = ("distributions", "heatmap", "lift", "funnel", "health")

BINS = 10  # score histogram: 0-9, 10-19, ..., 90-100


@dataclass
class ReportData:
    generated_at: datetime
    model_name: str
    affinity: list[float] = field(default_factory=list)
    engagement: list[float] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)
    backtest: Backtest | None = None
    backtest_note: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)


def gather(
    engine: Engine,
    model: ScoringModel,
    *,
    now: datetime,
    outcome: str = "customer",
    as_of: datetime | None = None,
    horizon: timedelta = timedelta(days=90),
) -> ReportData:
    from leadsync.sync.analytics import default_as_of, run_backtest

    data = ReportData(generated_at=now, model_name=model.name)
    with engine.connect() as connection:
        for affinity, engagement, stage in connection.execute(
            select(Score.affinity, Score.engagement, Score.stage)
        ):
            data.affinity.append(float(affinity))
            data.engagement.append(float(engagement))
            data.stages[stage] = data.stages.get(stage, 0) + 1
        data.runs = [
            {
                "source": run.source,
                "step": run.step,
                "trigger": run.trigger,
                "command": run.command,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "status": run.status,
                "counts": run.counts or {},
                "error": run.error,
            }
            for run in connection.execute(select(SyncRun).order_by(desc(SyncRun.id)).limit(500))
        ]
    try:
        as_of = as_of or default_as_of(engine, horizon)
        data.backtest = run_backtest(engine, model, outcome=outcome, as_of=as_of, horizon=horizon)
    except Exception as exc:  # noqa: BLE001 - the report still shows the other sections
        data.backtest_note = f"No backtest: {exc}"
    return data


# --- rendering (pure) ---------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f5f5f5}td.l,th.l{text-align:left}.ok{color:#1a7f37}.bad{color:#c62828}.note{color:#666}
svg text{font:11px system-ui,sans-serif;fill:#333}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def histogram(values: list[float], bins: int = BINS) -> list[int]:
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v * bins // 100)))] += 1
    return counts


def _bars(counts: list[int], labels: list[str], title: str, color: str) -> str:
    width, height, left, bottom = 440, 200, 40, 30
    top = max(counts) if counts and max(counts) > 0 else 1
    slot = (width - left - 10) / max(1, len(counts))
    parts = [
        f'<svg role="img" aria-label="{_e(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    parts.append(f'<text x="{left}" y="12">{_e(title)}</text>')
    chart_h = height - bottom - 20
    for i, (count, label) in enumerate(zip(counts, labels, strict=True)):
        h = chart_h * count / top
        x = left + i * slot
        y = height - bottom - h
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{slot - 4:.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{_e(label)}: {count}</title></rect>"
        )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle">{_e(label)}</text>'
        )
    parts.append(
        f'<text x="{left - 4}" y="{height - bottom - chart_h + 4:.1f}" text-anchor="end">{top}</text>'
    )
    parts.append(f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def _distributions(data: ReportData) -> str:
    labels = [f"{10 * i}" for i in range(BINS)]
    if not data.affinity:
        return '<p class="note">No scores yet: run <code>leadsync sync</code>.</p>'
    return (
        f"<p>{len(data.affinity)} scored persons (current scores, model of the last run).</p>"
        + _bars(histogram(data.affinity), labels, "affinity (0-100)", "#4e79a7")
        + _bars(histogram(data.engagement), labels, "engagement (0-100)", "#f28e2b")
    )


def _heat_color(rate: float | None, top: float) -> str:
    if rate is None:
        return "#eeeeee"
    share = 0.0 if top <= 0 else min(1.0, rate / top)
    # white to deep green
    r, g, b = (int(255 - share * (255 - c)) for c in (26, 127, 55))
    return f"#{r:02x}{g:02x}{b:02x}"


def _heatmap(bt: Backtest | None, note: str) -> str:
    if bt is None:
        return f'<p class="note">{_e(note)}</p>'
    cell, pad = 70, 30
    rates = [bt.by_grade[g].rate for g in GRADES if g in bt.by_grade]
    top = max((r for r in rates if r is not None), default=0.0)
    size = pad + 4 * cell
    parts = [
        f'<svg role="img" aria-label="conversion by grade" width="{size + 10}" height="{size + 10}" viewBox="0 0 {size + 10} {size + 10}">'
    ]
    for d in range(4):
        parts.append(
            f'<text x="{pad + d * cell + cell / 2}" y="18" text-anchor="middle">engagement {d + 1}</text>'
        )
    for li, letter in enumerate("ABCD"):
        parts.append(
            f'<text x="12" y="{pad + li * cell + cell / 2 + 4}" text-anchor="middle">{letter}</text>'
        )
        for d in range(4):
            grade = f"{letter}{d + 1}"
            rate_cell = bt.by_grade.get(grade)
            rate = rate_cell.rate if rate_cell else None
            persons = rate_cell.persons if rate_cell else 0
            converted = rate_cell.converted if rate_cell else 0
            x, y = pad + d * cell, pad + li * cell
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{_heat_color(rate, top)}">'
                f"<title>{grade}: {converted} of {persons} converted</title></rect>"
            )
            ink = ' style="fill:#fff"' if rate is not None and top > 0 and rate / top > 0.6 else ""
            parts.append(
                f'<text x="{x + cell / 2}" y="{y + cell / 2 - 4}" text-anchor="middle"{ink}>{grade} {_pct(rate)}</text>'
            )
            parts.append(
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 12}" text-anchor="middle"{ink}>{converted}/{persons}</text>'
            )
    parts.append("</svg>")
    return (
        f"<p>Grade as of {bt.as_of.date()} (letter = affinity, digit = engagement) against conversion "
        f"({_e(bt.outcome)}) in the next {bt.horizon_days:g} days: {bt.converted} of {bt.persons} leads "
        f"({_pct(bt.base_rate)}).</p>" + "".join(parts)
    )


def _lift(bt: Backtest | None, note: str) -> str:
    if bt is None:
        return f'<p class="note">{_e(note)}</p>'
    size, pad = 320, 40
    colors = {"total": "#4e79a7", "affinity": "#59a14f", "engagement": "#f28e2b", "composite": "#b07aa1"}
    parts = [
        f'<svg role="img" aria-label="lift curve" width="{size + pad + 120}" height="{size + pad}" viewBox="0 0 {size + pad + 120} {size + pad}">'
    ]
    x0, y0 = pad, size
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0 + size - pad}" y2="{y0}" stroke="#999"/>')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{pad / 2}" stroke="#999"/>')
    span = size - pad
    parts.append(
        f'<line x1="{x0}" y1="{y0}" x2="{x0 + span}" y2="{y0 - span}" stroke="#bbb" stroke-dasharray="4 3">'
        "<title>random</title></line>"
    )
    for i, (name, metrics) in enumerate(bt.scores.items()):
        points = [(0.0, 0.0)] + [
            (p["share_of_persons"], p["share_of_converters"]) for p in metrics.lift_curve
        ]
        coords = " ".join(f"{x0 + px * span:.1f},{y0 - py * span:.1f}" for px, py in points)
        color = colors.get(name, "#333")
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"><title>{_e(name)}</title></polyline>'
        )
        parts.append(f'<text x="{x0 + span + 10}" y="{pad + 16 * i}" style="fill:{color}">{_e(name)}</text>')
    parts.append(
        f'<text x="{x0 + span / 2}" y="{y0 + 28}" text-anchor="middle">share of leads, best scored first</text>'
    )
    parts.append(f'<text x="{x0 - 6}" y="{pad / 2 + 4}" text-anchor="end">100%</text>')
    parts.append("</svg>")
    rows = "".join(
        f'<tr><td class="l">{_e(name)}</td><td>{_num(m.roc_auc)}</td><td>{_num(m.pr_auc)}</td>'
        f"<td>{_num(m.top_decile_lift, 2)}</td><td>{_pct(m.top_decile_share)}</td></tr>"
        for name, m in bt.scores.items()
    )
    table = (
        '<table><tr><th class="l">score</th><th>ROC-AUC</th><th>PR-AUC</th><th>top-decile lift</th>'
        f"<th>converters in top decile</th></tr>{rows}</table>"
        f"<p>At the MQL threshold ({bt.mql_count} leads): precision {_pct(bt.mql_precision)}, "
        f"recall {_pct(bt.mql_recall)}.</p>"
    )
    return "".join(parts) + table


def _funnel(data: ReportData) -> str:
    bt = data.backtest
    width, row = 560, 34
    counts = [data.stages.get(s, 0) for s in STAGES]
    top = max(counts) if counts and max(counts) else 1
    parts = [
        f'<svg role="img" aria-label="stage funnel" width="{width}" height="{row * len(STAGES) + 10}" viewBox="0 0 {width} {row * len(STAGES) + 10}">'
    ]
    for i, (stage, count) in enumerate(zip(STAGES, counts, strict=True)):
        w = (width - 240) * count / top
        x = 110 + ((width - 240) - w) / 2
        rate = bt.by_stage[stage].rate if bt is not None and stage in bt.by_stage else None
        parts.append(f'<text x="100" y="{i * row + 22}" text-anchor="end">{stage}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{i * row + 6}" width="{max(w, 1):.1f}" height="{row - 8}" fill="#76b7b2"><title>{stage}: {count}</title></rect>'
        )
        label = f"{count}" + ("" if bt is None else f" · converted {_pct(rate)}")
        parts.append(f'<text x="{width - 120}" y="{i * row + 22}">{_e(label)}</text>')
    parts.append("</svg>")
    return "<p>Persons per buying stage now; conversion by stage as of the backtest date.</p>" + "".join(
        parts
    )


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _health(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return '<p class="note">No sync runs recorded yet.</p>'
    per_source: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        per_source.setdefault(run["source"], []).append(run)
    rows = []
    for source, items in sorted(per_source.items()):
        last = items[0]
        status = Counter(r["status"] for r in items)
        css = "ok" if last["status"] == "ok" else "bad"
        counts = ", ".join(
            f"{k} {v}" for k, v in sorted(last["counts"].items()) if isinstance(v, (int, float))
        )
        rows.append(
            f'<tr><td class="l">{_e(source)}</td><td class="l">{_e(last.get("step") or last["command"])}</td><td>{_when(last["started_at"])}</td>'
            f'<td class="{css}">{_e(last["status"])}</td><td>{status.get("ok", 0)}</td><td>{status.get("failed", 0)}</td>'
            f'<td class="l">{_e(counts)}</td><td class="l">{_e(last["error"] or "")}</td></tr>'
        )
    return (
        _health_bars(per_source)
        + '<table><tr><th class="l">source</th><th class="l">last run</th><th>started</th><th>result</th>'
        '<th>ok runs</th><th>failed runs</th><th class="l">last counts</th><th class="l">last error</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _health_bars(per_source: dict[str, list[dict[str, Any]]]) -> str:
    """One bar per source: its recorded runs, ok (green) then failed (red) then other (grey)."""
    width, row, left = 560, 26, 120
    most = max(len(items) for items in per_source.values())
    height = row * len(per_source) + 6
    parts = [
        f'<svg role="img" aria-label="sync runs per source" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    for i, (source, items) in enumerate(sorted(per_source.items())):
        status = Counter(r["status"] for r in items)
        ok, failed = status.get("ok", 0), status.get("failed", 0)
        other = len(items) - ok - failed
        parts.append(f'<text x="{left - 8}" y="{i * row + 18}" text-anchor="end">{_e(source)}</text>')
        x = float(left)
        for count, color, label in (
            (ok, "#59a14f", "ok"),
            (failed, "#e15759", "failed"),
            (other, "#bab0ac", "other"),
        ):
            w = (width - left - 130) * count / most
            if count:
                parts.append(
                    f'<rect x="{x:.1f}" y="{i * row + 5}" width="{w:.1f}" height="{row - 8}" fill="{color}">'
                    f"<title>{_e(source)}: {count} {label}</title></rect>"
                )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{i * row + 18}">{ok} ok, {failed} failed</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(data: ReportData) -> str:
    """The whole report as one HTML document: inline CSS and SVG, no script, no external resource."""
    bt = data.backtest
    sections = {
        "distributions": ("Score distributions", _distributions(data)),
        "heatmap": ("Conversion by grade", _heatmap(bt, data.backtest_note)),
        "lift": ("Lift curve", _lift(bt, data.backtest_note)),
        "funnel": ("Stage funnel", _funnel(data)),
        "health": ("Sync health per source", _health(data.runs)),
    }
    body = "".join(
        f'<section id="{key}"><h2>{_e(title)}</h2>{content}</section>'
        for key, (title, content) in sections.items()
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>leadsync report</title>"
        f"<style>{_CSS}</style></head><body>"
        f'<h1>leadsync report</h1><p class="note">Generated {_e(data.generated_at.isoformat(timespec="seconds"))}, '
        f"model {_e(data.model_name)}.</p>{body}</body></html>\n"
    )
