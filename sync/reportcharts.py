"""The report's charts: matplotlib figures on the Agg canvas, saved as inline SVG.

Text stays text (``svg.fonttype = "none"``): the browser draws it in DejaVu Sans, the font matplotlib
measured it with, so labels can be read, searched and copied, and the report's browser test can
measure every label's box. Each chart salts its SVG ids with its own name, so several charts in one
page never share an id. Every function is pure: figures in, an ``<svg>`` element out.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

__all__ = [
    "distributions",
    "funnel",
    "heatmap",
    "histogram",
    "lift",
    "run_records",
    "run_step",
    "sync_health",
]

BINS = 10  # score histogram: 0-9, 10-19, ..., 90-100
FONT = "DejaVu Sans"
# Tableau 10: colour-blind friendly enough, and distinct on a printout.
COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#e15759", "#edc948", "#9c755f")
OUTCOME_STYLE = {  # run outcome -> (marker, colour, label)
    "ok": ("o", "#59a14f", "ok"),
    "failed": ("X", "#e15759", "failed"),
    "interrupted": ("s", "#9c755f", "interrupted"),
    "stopped": ("D", "#bab0ac", "stopped"),
    "running": ("^", "#4e79a7", "running"),
}

_RC = {
    "svg.fonttype": "none",
    "font.family": FONT,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlelocation": "left",
}


@contextmanager
def _figure(name: str, size: tuple[float, float]) -> Iterator[Figure]:
    """A figure on the Agg canvas (no pyplot: no global figure state), drawn with the report's style."""
    with rc_context({**_RC, "svg.hashsalt": f"leadsync-{name}"}):
        figure = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure


def _svg(figure: Figure, name: str, label: str) -> str:
    buffer = io.StringIO()
    with rc_context({**_RC, "svg.hashsalt": f"leadsync-{name}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight", pad_inches=0.08)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE: it goes inline in HTML
    # matplotlib names groups "figure_1", "axes_1" ... in every figure: prefix each id (and each
    # reference to it) with the chart's name, so the page's ids stay unique.
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{name}-{m.group(1)}"', text)
    text = re.sub(
        r'#([A-Za-z_][\w.-]*)(?=[)"])',
        lambda m: f"#{name}-{m.group(1)}" if m.group(1) in ids else m.group(0),
        text,
    )
    # DejaVu Sans is what matplotlib measured the text with; Verdana has near its widths where it is missing.
    text = text.replace("font-family: 'DejaVu Sans'", "font-family: 'DejaVu Sans', Verdana, sans-serif")
    return re.sub(r"^<svg ", f'<svg role="img" aria-label="{_attr(label)}" class="chart" ', text, count=1)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def histogram(values: Sequence[float], bins: int = BINS) -> list[int]:
    """Counts per score band of width 100/bins; 100 falls into the last band."""
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v * bins // 100)))] += 1
    return counts


def distributions(affinity: Sequence[float], engagement: Sequence[float]) -> str:
    """Two histograms side by side, a count above each bar and the median marked."""
    with _figure("distributions", (9.4, 3.3)) as figure:
        axes = figure.subplots(1, 2, sharey=True)
        edges = np.arange(0, 101, 100 / BINS)
        for ax, (name, values, color) in zip(
            axes,
            (("affinity", affinity, COLORS[0]), ("engagement", engagement, COLORS[1])),
            strict=True,
        ):
            counts = histogram(values)
            bars = ax.bar(edges[:-1], counts, width=100 / BINS * 0.9, align="edge", color=color)
            ax.bar_label(bars, labels=[f"{c:,}" if c else "" for c in counts], padding=2, fontsize=8)
            median = float(np.median(values)) if len(values) else None
            if median is not None:
                ax.axvline(
                    median, color="#333333", linestyle="--", linewidth=1, zorder=0.5
                )  # behind the counts
            ax.set_title(f"{name.capitalize()}" + ("" if median is None else f" (median {median:.0f})"))
            ax.set_xlabel(f"{name} score (0-100)")
            ax.set_xticks(edges)
            ax.set_xlim(0, 100)
            ax.margins(y=0.15)
        axes[0].set_ylabel("persons")
        axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
        return _svg(figure, "distributions", "score distributions")


_GREENS = LinearSegmentedColormap.from_list("leadsync-greens", ["#f7fcf5", "#1a7f37"])


def heatmap(cells: dict[str, tuple[int, int]], *, letters: str = "ABCD", digits: str = "1234") -> str:
    """Grade cells (letter = affinity band, digit = engagement band) coloured by conversion rate; each
    cell shows its rate and "converted of leads". ``cells``: grade -> (converted, leads)."""
    rates = np.full((len(letters), len(digits)), np.nan)
    for i, letter in enumerate(letters):
        for j, digit in enumerate(digits):
            converted, persons = cells.get(f"{letter}{digit}", (0, 0))
            if persons:
                rates[i, j] = converted / persons
    top = float(np.nanmax(rates)) if np.isfinite(rates).any() else 0.0
    with _figure("heatmap", (6.4, 4.9)) as figure:
        ax = figure.subplots()
        cmap = _GREENS.with_extremes(bad="#eeeeee")
        image = ax.imshow(np.ma.masked_invalid(rates), cmap=cmap, vmin=0, vmax=max(top, 0.01), aspect="auto")
        for i, letter in enumerate(letters):
            for j, digit in enumerate(digits):
                converted, persons = cells.get(f"{letter}{digit}", (0, 0))
                rate = rates[i, j]
                dark = bool(np.isfinite(rate) and top > 0 and rate / top > 0.55)
                ink = "white" if dark else "#222222"
                head = f"{letter}{digit}" + (f": {100 * rate:.1f}%" if persons else "")
                detail = f"{converted:,} of {persons:,}" if persons else "no leads"
                ax.text(j, i - 0.14, head, ha="center", va="center", color=ink, fontsize=10, weight="bold")
                ax.text(j, i + 0.2, detail, ha="center", va="center", color=ink, fontsize=8.5)
        ax.set_xticks(range(len(digits)), [f"{d}" for d in digits])
        ax.set_yticks(range(len(letters)), list(letters))
        ax.set_xlabel("engagement band (1 = most engaged)")
        ax.set_ylabel("affinity band (A = best fit)")
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        bar = figure.colorbar(image, ax=ax, fraction=0.05, pad=0.03)
        bar.set_label("converted (share of the cell's leads)")
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        return _svg(figure, "heatmap", "conversion by grade")


def lift(curves: dict[str, list[dict[str, float]]], base_rate: float | None) -> str:
    """Left: cumulative gains (share of converters reached, leads taken best first, one point per
    decile) against the random baseline. Right: cumulative lift (the converter rate of the leads
    taken so far over the average rate) per decile, against 1 (random)."""
    with _figure("lift", (9.4, 3.9)) as figure:
        gains, lifts = figure.subplots(1, 2)
        deciles = np.arange(1, 11) / 10
        gains.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="random")
        lifts.axhline(1.0, color="#999999", linestyle="--", linewidth=1, label="random (lift 1)")
        for (name, points), color in zip(curves.items(), COLORS, strict=False):
            if not points:
                continue
            x = [0.0] + [p["share_of_persons"] for p in points]
            y = [0.0] + [p["share_of_converters"] for p in points]
            gains.plot(x, y, color=color, marker="o", markersize=3.5, linewidth=1.6, label=name)
            lifts.plot(
                [p["share_of_persons"] for p in points],
                [p["lift"] for p in points],
                color=color,
                marker="o",
                markersize=3.5,
                linewidth=1.6,
                label=name,
            )
        for ax in (gains, lifts):
            ax.set_xticks(deciles[1::2])  # labels every 20%, a tick and a point at every decile
            ax.set_xticks(deciles, minor=True)
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.set_xlim(0, 1.02)
            ax.set_xlabel("leads taken, best scored first (deciles)")
            ax.grid(color="#eeeeee", linewidth=0.8)
        gains.set_ylim(0, 1.02)
        gains.set_yticks(np.arange(0, 1.01, 0.2))
        gains.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        gains.set_ylabel("converters reached")
        gains.set_title("Cumulative gains")
        lifts.set_ylabel("lift (their rate / average rate)")
        lifts.set_ylim(bottom=0)
        lifts.set_title(
            "Cumulative lift" + ("" if base_rate is None else f" (average rate {100 * base_rate:.1f}%)")
        )
        handles, labels = gains.get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside right upper", frameon=False)
        return _svg(figure, "lift", "lift curve")


def funnel(stages: Sequence[str], counts: Sequence[int], rates: Sequence[float | None]) -> str:
    """One horizontal bar per buying stage, its persons and conversion rate beside it."""
    height = 0.6 + 0.55 * len(stages)
    with _figure("funnel", (8.4, height)) as figure:
        ax = figure.subplots()
        y = np.arange(len(stages))
        bars = ax.barh(y, counts, color=COLORS[4], height=0.62)
        labels = [
            f"{count:,} persons" + ("" if rate is None else f" · {100 * rate:.1f}% converted")
            for count, rate in zip(counts, rates, strict=True)
        ]
        ax.bar_label(bars, labels=labels, padding=4, fontsize=9)
        ax.set_yticks(y, list(stages))
        ax.invert_yaxis()  # awareness on top, action at the bottom
        ax.set_xlim(0, max(max(counts, default=0), 1) * 1.55)  # room for the labels beside the bars
        ax.set_xlabel("persons now")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        return _svg(figure, "funnel", "stage funnel")


STEPS = ("pull", "score", "push")


def run_step(run: dict[str, Any]) -> str:
    """The step a run record is of. Rows recorded before run history had steps hold the default
    "pull" with the step in ``command``."""
    step, command = run.get("step") or "pull", run.get("command")
    return command if step == "pull" and command in STEPS else step


def run_records(run: dict[str, Any]) -> int:
    """What a run moved: records read by a pull (older rows: the sum over its streams), persons scored
    by a score run, values written by a push."""
    counts = run.get("counts") or {}
    step = run_step(run)
    if step == "score":
        return int(counts.get("persons_scored", 0) or 0)
    if step == "push":
        return int(counts.get("written", 0) or 0)
    if counts.get("records_read"):
        return int(counts["records_read"])
    streams = counts.get("streams") or {}
    return sum(int((s or {}).get("records", 0) or 0) for s in streams.values() if isinstance(s, dict))


def _series_name(run: dict[str, Any]) -> str:
    source = "all sources" if run["source"] == "*" else run["source"]
    return f"{source} {run_step(run)}"


def sync_health(runs: Sequence[dict[str, Any]]) -> str:
    """Runs over time, as run history records them: each run's outcome (top), the records it moved
    (middle: read by a pull, scored by a score run, written by a push) and the 429 answers it met."""
    runs = sorted((r for r in runs if r.get("started_at") is not None), key=lambda r: r["started_at"])
    series = sorted({_series_name(r) for r in runs})
    sources = sorted({r["source"] for r in runs})
    source_color = {s: COLORS[i % len(COLORS)] for i, s in enumerate(sources)}
    with _figure("health", (9.4, 1.6 + 0.32 * len(series) + 4.0)) as figure:
        outcome_ax, records_ax, throttled_ax = figure.subplots(
            3, 1, sharex=True, height_ratios=[0.5 + 0.32 * len(series), 2.0, 1.4]
        )
        row = {name: i for i, name in enumerate(series)}
        for outcome, (marker, color, label) in OUTCOME_STYLE.items():
            chosen = [r for r in runs if r["status"] == outcome]
            if not chosen:
                continue
            outcome_ax.scatter(
                [_naive(r["started_at"]) for r in chosen],
                [row[_series_name(r)] for r in chosen],
                marker=marker,
                color=color,
                s=36,
                label=f"{label} ({len(chosen)})",
                zorder=3,
            )
        outcome_ax.set_yticks(range(len(series)), series)
        outcome_ax.set_ylim(len(series) - 0.5, -0.5)
        outcome_ax.set_title("Runs: one mark per run, by outcome")
        outcome_ax.grid(axis="y", color="#eeeeee")
        outcome_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)

        kinds = (("pull", "o", "read"), ("score", "s", "scored"), ("push", "^", "written"))
        for step, marker, _label in kinds:
            for source in sources:
                chosen = [r for r in runs if run_step(r) == step and r["source"] == source]
                if chosen:
                    records_ax.plot(
                        [_naive(r["started_at"]) for r in chosen],
                        [run_records(r) for r in chosen],
                        marker=marker,
                        linestyle="-",
                        linewidth=1,
                        markersize=5,
                        color=source_color[source],
                    )
                    throttled_ax.plot(
                        [_naive(r["started_at"]) for r in chosen],
                        [int((r["counts"] or {}).get("throttled", 0) or 0) for r in chosen],
                        marker=marker,
                        linestyle="",
                        markersize=5,
                        color=source_color[source],
                    )
        records_ax.set_title("Records per run")
        records_ax.set_ylabel("records")
        records_ax.set_ylim(0, max(1, records_ax.get_ylim()[1]))
        records_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        handles = [
            Line2D([], [], color=source_color[s], linewidth=3, label="all sources" if s == "*" else s)
            for s in sources
        ] + [
            Line2D([], [], color="#555555", marker=marker, linestyle="", label=f"{label} ({step})")
            for step, marker, label in kinds
        ]
        records_ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        throttled_ax.set_title("429 answers per run (rate limited; retried)")
        throttled_ax.set_ylabel("429s")
        throttled_ax.set_ylim(0, max(1, throttled_ax.get_ylim()[1]))
        throttled_ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        locator = AutoDateLocator(minticks=3, maxticks=8)
        throttled_ax.xaxis.set_major_locator(locator)
        throttled_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        throttled_ax.set_xlabel("run start (UTC)")
        for ax in (outcome_ax, records_ax, throttled_ax):
            ax.grid(axis="x", color="#eeeeee")
        return _svg(figure, "health", "sync runs over time")


def _naive(moment: datetime) -> datetime:
    """UTC without tzinfo: matplotlib's date axis then labels UTC as is."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
