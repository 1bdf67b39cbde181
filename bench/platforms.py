"""Pull, push and an unchanged re-sync of one platform through the real connectors, against the
sandbox at the platform's default limits with injected latency.

Each platform gets its own emulator and world (sizes chosen so the whole bench fits its time
budget). Pull is ``sync.pipeline.pull_source`` (a source's streams side by side, each read one
batch ahead and ingested with its cursor by ``sync.ingest.ingest_batch``), with every stream timed
and counted on its own; push is ``sync.pipeline.push_source`` (plan, connector push, record).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from sqlalchemy import func, select

from bench.ceilings import (
    RATE_WINDOW_S,
    ROUTE_RATE,
    SWEPT_ROUTE,
    mailchimp_service_seconds,
    pull_ideal_seconds,
    push_ceiling,
    raw_concurrency,
    raw_rate,
    stream_ceiling,
)
from bench.rawclient import Recorder, replay
from bench.scale import CHANGED, apply_changes, project, sweep_schedule, timed
from bench.serve import RemoteSandbox
from bench.timeline import Timeline
from leadsync.config.scoring_model import load_model
from leadsync.config.settings import LeadsyncConfig, SourceConfig, load_config, resolve_source
from leadsync.connectors.http import shared_ssl_context
from leadsync.connectors.registry import connector_class
from leadsync.sync.ingest import IngestCounts, ingest_batch
from leadsync.sync.logsetup import register_secrets
from leadsync.sync.pipeline import Reporter, pull_source, push_source, score
from leadsync.sync.runs import Step, list_runs
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Identity, WritebackAudit

__all__ = ["PLATFORMS", "PULL_SAMPLES", "SHORT_PULL_S", "PlatformRun", "median_sample", "run_platform"]

PLATFORMS = ("hubspot", "mailchimp", "activecampaign")

# A pull shorter than SHORT_PULL_S is timed PULL_SAMPLES times (leadsync, then the raw client, each
# time), and its figures are those of the sample whose ratio is the median. One pair of a 1.5 s
# Mailchimp pull swings by ±10 % on these 2 shared cores (2026-12-06, one quiet machine: 86.1, 96.7
# and 102.1 % in three runs in a row; 89.4-106.9 % over eight pairs in one process); a pull of many
# seconds averages that out by itself, and is timed once (HubSpot's takes 12 s, ActiveCampaign's 2
# minutes). Every sample's figures are kept beside the median one (``samples``).
SHORT_PULL_S = 5.0
PULL_SAMPLES = 3
_COUNTED = ("requests", "write_requests", "connections_opened", "answered_429", "rate_limited")


@dataclass
class PlatformRun:
    """What the naive runner needs after the measured run: the live server and the config."""

    server: RemoteSandbox
    config: LeadsyncConfig
    source: SourceConfig


# Streams whose pages hold contacts: their ceiling is in contacts, and the events some platforms
# derive from a contact's counters (HubSpot page views) ride along in the same pages.
CONTACT_STREAMS = ("contacts", "members")


def median_sample(samples: list[dict[str, Any]]) -> int:
    """The index of the sample whose ``ratio`` is the median (the lower median of an even count)."""
    order = sorted(range(len(samples)), key=lambda i: samples[i]["ratio"])
    return order[(len(order) - 1) // 2]


def _route_requests(stats: dict[str, Any], suffix: str) -> int:
    return sum(n for route, n in stats.get("by_route", {}).items() if route.endswith(suffix))


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    # write_requests: the emulators say which requests write (HubSpot search and batch read are POST reads)
    return {key: int(after[key]) - int(before[key]) for key in _COUNTED}


def _pull(
    engine: Any,
    config: LeadsyncConfig,
    source: SourceConfig,
    stats: Callable[[], dict[str, Any]],
    *,
    admin_url: str,
    latency_s: float,
    service_s: float,
    raw: Callable[[str, list[dict[str, str]], int, float], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The pull as ``leadsync pull`` runs it (``sync.pipeline.pull_source``: a source's streams side
    by side, each after the streams it follows). Each stream is timed from its start to its end,
    and counted (its requests from the run record); ``raw(step, requests, records, seconds)``: the
    raw client's figures for the whole pull's requests, replayed together as leadsync sent them."""
    lock = threading.Lock()
    per: dict[str, dict[str, Any]] = {}

    def entry(stream: str) -> dict[str, Any]:
        return per.setdefault(
            stream, {"started": None, "ended": None, "ingest_s": 0.0, "records": 0, "contacts": 0}
        )

    def started(_source: str, stream: str) -> None:
        with lock:
            entry(stream)["started"] = time.perf_counter()

    def pulled(_source: str, stream: str, counts: IngestCounts) -> None:
        with lock:
            figures = entry(stream)
            figures["records"] += counts.contacts + counts.events + counts.quarantined
            figures["contacts"] += counts.contacts

    def finished(_source: str, stream: str) -> None:
        with lock:
            entry(stream)["ended"] = time.perf_counter()

    def timed_ingest(engine: Any, batch: Any, **kwargs: Any) -> IngestCounts:
        ingest_started = time.perf_counter()
        try:
            return ingest_batch(engine, batch, **kwargs)
        finally:
            with lock:
                entry(batch.stream)["ingest_s"] += time.perf_counter() - ingest_started

    reporter = Reporter(stream_started=started, pulled=pulled, stream_done=finished)
    before_all = stats()
    with Timeline(admin_url) as timeline, Recorder(admin_url) as recorder:
        recorder.start()
        started_all = time.perf_counter()
        result = pull_source(engine, config, source, reporter=reporter, ingest=timed_ingest)
        seconds = time.perf_counter() - started_all
        recorded = recorder.stop()
    if not result.ok:
        raise RuntimeError(f"the bench's pull of {source.name} failed: {result.error}")
    after = stats()
    (run,) = list_runs(engine, sources=[source.name], step=Step.PULL, limit=1)
    requests_of = {
        name: int(f.get("requests", 0)) for name, f in (run["counts"].get("streams") or {}).items()
    }
    streams: dict[str, Any] = {}
    for stream, figures in per.items():
        records, contacts = figures["records"], figures["contacts"]
        span = (figures["ended"] or started_all + seconds) - (figures["started"] or started_all)
        paged = contacts if stream in CONTACT_STREAMS else records
        swept = SWEPT_ROUTE.get((source.platform.value, stream))
        if swept is not None:
            paged = _route_requests(after, swept) - _route_requests(before_all, swept)
        ceiling = stream_ceiling(source.platform.value, stream, latency_s=latency_s, service_s=service_s)
        streams[stream] = {
            "records": records,
            "paged_records": paged,
            "unit": "contacts swept" if swept else "records",
            "seconds": round(span, 3),
            "ingest_seconds": round(figures["ingest_s"], 3),
            "records_per_second": round(paged / span, 1) if span else 0.0,
            "ceiling_records_per_second": round(ceiling.records_per_second, 1),
            "ceiling_formula": ceiling.formula,
            "of_ceiling": round(paged / ceiling.records_per_second / span, 4) if span else 0.0,
            "requests": requests_of.get(stream, 0),
        }
    totals = _delta(before_all, after)
    records = sum(s["records"] for s in streams.values())
    paged = sum(s["paged_records"] for s in streams.values())
    ideal = pull_ideal_seconds(
        source.platform.value,
        {name: s["paged_records"] / s["ceiling_records_per_second"] for name, s in streams.items()},
    )
    figures: dict[str, Any] = {
        "records": records,
        "paged_records": paged,
        "seconds": round(seconds, 3),
        "records_per_second": round(paged / seconds, 1) if seconds else 0.0,
        "ceiling_records_per_second": round(paged / ideal, 1) if ideal else None,
        "of_ceiling": round(ideal / seconds, 4),
        "requests_per_record": round(totals["requests"] / paged, 4) if paged else None,
        **totals,
        "in_flight_peak": after["in_flight_peak"],
        **timeline.summary(),
        "streams": streams,
    }
    if raw is not None:  # the same requests again, all of them side by side (bench.rawclient)
        figures.update(raw("pull", recorded, paged, seconds))
        # the least time any client needs for these pages: the slower of ceiling and raw client
        least = max(ideal, figures["raw_seconds"])
        figures["limit_records_per_second"] = round(paged / least, 1) if least else None
        figures["ratio"] = round(least / seconds, 4) if seconds else 0.0
    return figures


def _push(
    engine: Any,
    config: LeadsyncConfig,
    source: SourceConfig,
    stats: Callable[[], dict[str, Any]],
    *,
    admin_url: str,
    latency_s: float,
    service_s: float,
) -> dict[str, Any]:
    before = stats()
    with Timeline(admin_url) as timeline, Recorder(admin_url) as recorder:
        recorder.start()
        # timed as the pull is, and as the raw client is: from the call to its return, without the
        # bench's own recorder and sampler (two more clients, two admin requests: 40-50 ms)
        started = time.perf_counter()
        result = push_source(engine, config, source)
        seconds = time.perf_counter() - started
        recorded = recorder.stop()
    totals = _delta(before, stats())
    ceiling = push_ceiling(
        source.platform.value,
        latency_s=latency_s,
        service_s=service_s,
        records=result.written,
        write_requests=sum(r["method"] not in ("GET", "HEAD") for r in recorded),
    )
    rate = result.written / seconds if seconds else 0.0
    return {
        "recorded": recorded,
        "records": result.written,
        "failed": result.failed,
        "error": result.error,
        "seconds": round(seconds, 3),
        "records_per_second": round(rate, 1),
        "ceiling_records_per_second": round(ceiling.records_per_second, 1),
        "ceiling_formula": ceiling.formula,
        "ratio": round(rate / ceiling.records_per_second, 4),
        "requests_per_record": round(totals["requests"] / result.written, 4) if result.written else None,
        **totals,
        "in_flight_peak": stats()["in_flight_peak"],
        **timeline.summary(),
    }


def run_platform(
    platform: str,
    *,
    persons: int,
    seed: int,
    latency_ms: float,
    workdir: Path,
    after: Callable[[PlatformRun], dict[str, Any]] | None = None,
    raw_sample_s: float = 20.0,
    rate_limits: bool = True,
) -> dict[str, Any]:
    """Serve ``platform`` alone for a world of ``persons``; pull, score, push, then re-sync unchanged.
    ``after`` runs against the same live server (the naive comparison) and its result is kept.
    ``rate_limits=False`` (``--quick``) serves without the platform's limits, and so has no rate
    window to wait out between the steps: leadsync and the raw client still pace themselves."""
    latency_s = latency_ms / 1000.0
    model = load_model("default")

    def settle() -> None:
        """Let the platform's rate window empty, so that the next step starts with its own budget."""
        if rate_limits:
            time.sleep(RATE_WINDOW_S[platform])

    with RemoteSandbox(
        platform, persons=persons, seed=seed, latency_ms=latency_ms, rate_limits=rate_limits
    ) as server:
        stats = server.stats
        config_file = workdir / f"{platform}.toml"
        store = workdir / f"{platform}.db"
        for leftover in workdir.glob(f"{platform}.db*"):
            leftover.unlink()
        document = {"store": {"url": f"sqlite:///{store}"}, "sources": [server.source_config]}
        config_file.write_bytes(tomli_w.dumps(document).encode())
        config = load_config(config_file)
        register_secrets(config)
        source = config.sources[0]
        engine = make_engine(config.store.url)
        figures: dict[str, Any] = {
            "persons_in_world": persons,
            "contacts_on_platform": server.contacts,
            "latency_ms": latency_ms,
        }
        service_s = 0.0
        if platform == "mailchimp":
            service_s, page = mailchimp_service_seconds(
                server.base_url() + "/3.0", source.inline_secrets["api_key"], latency_ms=latency_ms
            )
            figures["service_ms_per_page"] = round(service_s * 1000, 2)
            figures["service_page_records"] = page
        admin_url = server.base_url()
        secrets = dict(source.inline_secrets)

        settled: list[bool] = []

        def raw(
            stream: str | None, requests: list[dict[str, str]], records: int, seconds: float
        ) -> dict[str, Any]:
            # the cap's window starts empty, as it did for leadsync
            if not settled or stream is None or stream == "pull":
                settle()
                settled.append(True)
            figures = _raw_figures(
                platform,
                admin_url,
                requests,
                records,
                seconds,
                stream=stream,
                secrets=secrets,
                latency_s=latency_s,
                sample_s=raw_sample_s,
            )
            return figures

        # Process start-up is kept out of the timed pull, as the raw client's is (its client is built
        # before its timer starts): a daemon pays it once, not per pull. The connector's module and
        # its vendor SDK imported (24 ms for Mailchimp here), and the process's TLS context built
        # (connectors.http.shared_ssl_context: 30-40 ms), before the timer starts.
        connector_class(source.platform)
        shared_ssl_context()
        server.reset()
        # A short pull is sampled again, each into a store of its own (the same first pull each
        # time), and the pair of the median ratio is kept: see SHORT_PULL_S.
        engines: list[Any] = [engine]
        samples: list[dict[str, Any]] = []
        while True:
            samples.append(
                _pull(
                    engines[-1],
                    config,
                    source,
                    stats,
                    admin_url=admin_url,
                    latency_s=latency_s,
                    service_s=service_s,
                    raw=raw,
                )
            )
            if samples[0]["seconds"] >= SHORT_PULL_S or len(samples) >= PULL_SAMPLES:
                break
            settle()
            engines.append(make_engine(f"sqlite:///{workdir / f'{platform}.sample{len(samples)}.db'}"))
        kept = median_sample(samples)
        engine = engines[kept]
        for other in engines:
            if other is not engine:
                other.dispose()
        figures["pull"] = samples[kept]
        figures["pull"]["samples"] = [
            {key: sample.get(key) for key in ("seconds", "raw_seconds", "ratio")} for sample in samples
        ]
        figures["pull"]["raw_429_all_samples"] = sum(sample.get("raw_429", 0) for sample in samples)
        # ... and so does leadsync's next request (the fields, below): the pull's replay spent it
        settle()
        started = time.perf_counter()
        scored = score(engine, model)
        figures["score_seconds"] = round(time.perf_counter() - started, 3)
        figures["scored"] = scored.scored
        # Fields are provisioned once per account (first push ever): counted apart from throughput.
        before = stats()
        with connector_class(source.platform)(resolve_source(config, source)) as connector:
            connector.ensure_fields()
        figures["ensure_fields_requests"] = _delta(before, stats())["requests"]
        # ... and so is the rate-limit window its requests fill: the push starts with the budget it
        # would have on its own (the limiter is shared per account, sync.pipeline's steps too).
        settle()
        figures["push"] = _push(
            engine, config, source, stats, admin_url=admin_url, latency_s=latency_s, service_s=service_s
        )
        figures["resync"] = _resync(
            engine,
            config,
            source,
            stats,
            model,
            admin_url=admin_url,
            latency_s=latency_s,
            service_s=service_s,
        )
        figures["connections_peak"] = stats()["connections_peak"]
        # every 429 leadsync met, between the timed steps too (a new connector's limiter starts empty)
        figures["answered_429_all_steps"] = stats()["answered_429"] - figures["pull"]["raw_429_all_samples"]
        # The push's writes again, by the raw client: after the re-sync, so that its writes (the
        # same values again) cannot be taken for changes by it.
        push = figures["push"]
        push.update(raw(None, push.pop("recorded"), push["records"], push["seconds"]))
        push["limit_records_per_second"] = round(
            min(push["ceiling_records_per_second"], push["raw_records_per_second"] or float("inf")), 1
        )
        push["of_ceiling"] = push["ratio"]
        push["ratio"] = (
            round(push["records_per_second"] / push["limit_records_per_second"], 4)
            if push["limit_records_per_second"]
            else 0.0
        )
        figures["cycle"] = _cycle(
            engine,
            config,
            source,
            stats,
            model,
            admin_url=admin_url,
            latency_s=latency_s,
            service_s=service_s,
            secrets=secrets,
            full_streams=figures["pull"]["streams"],
            settle=settle,
        )
        if platform == "activecampaign":
            tracking = figures["pull"]["streams"]["tracking_logs"]
            per_request = tracking["seconds"] / tracking["requests"] if tracking["requests"] else 0.2
            figures["sweep_schedule"] = {
                "per_request_s": round(per_request, 4),
                "how": "measured per-request cost of the first pull's sweep x the request count",
                "rows": sweep_schedule(per_request, figures["cycle"]["requests"]),
            }
        if after is not None:
            figures["naive"] = after(PlatformRun(server, config, source))
        engine.dispose()
    return figures


def _raw_figures(
    platform: str,
    base_url: str,
    requests: list[dict[str, str]],
    records: int,
    seconds: float,
    *,
    stream: str | None,
    secrets: dict[str, str],
    latency_s: float,
    sample_s: float = 20.0,
) -> dict[str, Any]:
    """The raw client's time for ``requests`` (bench.rawclient), and leadsync's ratio to it. On a
    rate-capped platform the replay is paced at the cap: a sample of ``sample_s`` seconds of
    requests shows whether the emulator keeps up, and the rest is extrapolated (in the figures)."""
    rate = raw_rate(platform)
    sample = requests if rate is None else requests[: max(1, int(rate * sample_s))]
    if not sample:
        return {"raw_requests": 0, "raw_seconds": 0.0, "raw_records_per_second": None}
    result = replay(
        base_url,
        sample,
        platform=platform,
        secrets=secrets,
        concurrency=raw_concurrency(platform, latency_s),
        rate=rate,
        window=RATE_WINDOW_S[platform] or 1.0,
        route_rates=ROUTE_RATE.get(platform),
    )
    raw_seconds = result.seconds * len(requests) / len(sample)
    return {
        "raw_requests": len(requests),
        "raw_replayed": len(sample),
        "raw_seconds": round(raw_seconds, 3),
        "raw_records_per_second": round(records / raw_seconds, 1) if raw_seconds else None,
        "raw_429": result.answered_429,
        "raw_failed": result.failed,
    }


def _cycle(
    engine: Any,
    config: LeadsyncConfig,
    source: SourceConfig,
    stats: Callable[[], dict[str, Any]],
    model: Any,
    *,
    admin_url: str,
    latency_s: float,
    service_s: float,
    secrets: dict[str, str],
    full_streams: dict[str, Any],
    settle: Callable[[], None],
) -> dict[str, Any]:
    """An incremental cycle after 1 % of the contacts changed on the platform (bench.scale);
    ``full_streams``: the first pull's per-stream figures (the size of what is read whole)."""
    platform = source.platform.value
    with engine.connect() as connection:
        ids = list(
            connection.execute(
                select(Identity.remote_id).where(Identity.source == source.name).order_by(Identity.id)
            ).scalars()
        )
    count = max(1, round(len(ids) * CHANGED))
    chosen = ids[:: max(1, len(ids) // count)][:count]
    # one interval later on the platform's clock (its stamps have a second's resolution), with
    # nothing else happening meanwhile: the changes are all there is to read
    httpx.post(
        f"{admin_url}/_sandbox/clock/advance", json={"days": 900 / 86400, "activity": False}, timeout=60
    ).raise_for_status()
    settle()
    refused = apply_changes(platform, admin_url, chosen, secrets=secrets, latency_s=latency_s)
    settle()
    before, started = stats(), time.perf_counter()
    pull = _pull(engine, config, source, stats, admin_url=admin_url, latency_s=latency_s, service_s=service_s)
    scored, score_s = timed(lambda: score(engine, model))
    pushed, push_s = timed(lambda: push_source(engine, config, source))
    seconds = time.perf_counter() - started
    totals = _delta(before, stats())
    cycle: dict[str, Any] = {
        "contacts": len(ids),
        "changed": len(chosen),
        "changes_refused": refused,
        "requests": totals["requests"],
        "seconds": round(seconds, 2),
        "answered_429": totals["answered_429"],
        "streams": {
            name: {"requests": f["requests"], "seconds": f["seconds"], "records": f["records"]}
            for name, f in pull["streams"].items()
        },
        "pull_requests": pull["requests"],
        "pull_seconds": pull["seconds"],
        "persons_rescored": scored.scored,
        "score_seconds": round(score_s, 3),
        "push": {
            "requests": totals["requests"] - pull["requests"],
            "written": pushed.written,
            "seconds": round(push_s, 3),
        },
    }
    cycle["projection"] = project(platform, cycle, len(ids), full_streams)
    return cycle


def _resync(
    engine: Any,
    config: LeadsyncConfig,
    source: SourceConfig,
    stats: Callable[[], dict[str, Any]],
    model: Any,
    *,
    admin_url: str,
    latency_s: float,
    service_s: float,
) -> dict[str, Any]:
    """Pull (incremental), score and push again with nothing changed on the platform."""
    with engine.connect() as connection:
        audited = connection.execute(select(func.max(WritebackAudit.id))).scalar() or 0
    before, started = stats(), time.perf_counter()
    pull = _pull(engine, config, source, stats, admin_url=admin_url, latency_s=latency_s, service_s=service_s)
    scored = score(engine, model)
    push = push_source(engine, config, source)
    totals = _delta(before, stats())
    with engine.connect() as connection:
        changed = dict(
            connection.execute(  # what the re-sync wrote, by field (the audit says why)
                select(WritebackAudit.field, func.count())
                .where(WritebackAudit.id > audited)
                .group_by(WritebackAudit.field)
            ).all()
        )
    after = stats()
    return {
        "seconds": round(time.perf_counter() - started, 3),
        # ActiveCampaign's follow-up reads: an unchanged re-sync should make none (issue 23)
        "tracking_log_requests": _route_requests(after, "/trackingLogs")
        - _route_requests(before, "/trackingLogs"),
        "requests": totals["requests"],
        "write_requests": totals["write_requests"],
        "records_pulled": pull["records"],
        "persons_rescored": scored.scored,
        "updates_planned": push.planned,
        "records_written": push.written,
        "answered_429": totals["answered_429"],
        "written_fields": changed,
    }
