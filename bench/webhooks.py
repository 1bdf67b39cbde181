"""Real time through webhooks (issue 22), measured end to end over loopback.

* **Latency**: a sandbox (its own process, the platforms' default limits, 50 ms injected latency)
  and a store synced from it once; the webhook receiver runs here. ``actions`` times, a person
  acts in the sandbox (``POST /_sandbox/act``: a HubSpot pricing-page view, an ActiveCampaign
  click, a Mailchimp unsubscribe, in turn), the platform sends its signed webhook, and the clock
  stops when the delivery has been worked and every platform holding the person shows the scores
  the store now has for them (read from the sandbox's admin view). p50 and p95 over all actions.
* **Flood**: ``flood`` deliveries in ``flood_seconds`` seconds, sent by another process, each a
  signed HubSpot property change of one of leadsync's own properties on a contact the store
  holds (what a large push brings back). Counted: 200s, 429s, anything else; the queue's bound;
  the peak RSS of this process (receiver and fast path) while it lasts; and the time until every
  accepted delivery was worked.

    .venv/bin/python -m bench.webhooks [--actions 200] [--flood 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import psutil
import tomli_w
from sqlalchemy import func, select

from leadsync.config.scoring_model import load_model
from leadsync.config.settings import load_config
from leadsync.connectors.mailchimp.writeback import field_defs
from leadsync.sandbox.webhooks import SANDBOX_WEBHOOK_SECRETS
from leadsync.sync.logsetup import register_secrets
from leadsync.sync.pipeline import pull_sources, push_sources, score
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Identity, Person, Score, WebhookDelivery
from leadsync.sync.webhooks.service import WebhookService
from leadsync.sync.writeback import desired_values

__all__ = ["run_webhooks"]

PLATFORMS = ("hubspot", "mailchimp", "activecampaign")
OWNED = ("affinity", "engagement", "stage", "grade", "lifecycle")
ACTS = {"hubspot": "page_view", "activecampaign": "email_click", "mailchimp": "email_unsubscribe"}
ROOT = Path(__file__).resolve().parents[1]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _die_with_parent() -> None:
    """Linux: the sandbox gets SIGTERM when the bench dies (a timed-out test kills the bench only)."""
    if sys.platform == "linux":
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Sandbox:
    """``leadsync sandbox serve`` in its own process, on free ports."""

    def __init__(
        self, folder: Path, *, persons: int, seed: int, latency_ms: float, rate_limits: bool
    ) -> None:
        self.ports = dict(zip(PLATFORMS, _free_ports(3), strict=True))
        self.config_file = folder / "leadsync.toml"
        self.args = [
            sys.executable, "-m", "leadsync.sync.cli", "sandbox", "serve",
            "--contacts", str(persons), "--seed", str(seed), "--latency-ms", str(latency_ms),
            "--rate-limits", "on" if rate_limits else "off",
            "--write-config", str(self.config_file), "--store-url", f"sqlite:///{folder / 'store.db'}",
            *(arg for name, port in self.ports.items() for arg in (f"--{name}-port", str(port))),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, platform: str) -> str:
        return f"http://127.0.0.1:{self.ports[platform]}"

    def __enter__(self) -> Sandbox:
        log_file = self.config_file.parent / "sandbox.log"  # not a pipe: nobody reads it while it runs
        with log_file.open("wb") as log:
            self.process = subprocess.Popen(
                self.args,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if all(
                    httpx.get(self.url(p) + "/_sandbox/clock", timeout=1).status_code == 200
                    for p in PLATFORMS
                ):
                    if self.config_file.exists():
                        return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"the sandbox exited: {log_file.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError("the sandbox did not start in 120 s")

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _scores(engine: Any, email: str) -> dict[str, str]:
    with engine.connect() as connection:
        row = connection.execute(
            select(Score.affinity, Score.engagement, Score.stage, Score.grade, Score.lifecycle, Score.reason)
            .add_columns(Score.scored_at)
            .join(Person, Person.id == Score.person_id)
            .where(Person.email == email)
        ).one()
    wanted = desired_values(row, scored_at=row.scored_at)
    return {k: wanted[k] for k in OWNED}


def _number(value: Any) -> str | None:
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return None if value in (None, "") else str(value)


def _held(client: httpx.Client, sandbox: Sandbox, email: str, prefix: str) -> dict[str, dict[str, Any]]:
    view = client.get(sandbox.url("hubspot") + f"/_sandbox/persons/{email}").json().get("platforms", {})
    held: dict[str, dict[str, Any]] = {}
    for platform, data in view.items():
        if platform == "hubspot":
            values = {k: data["properties"].get(prefix + k) for k in OWNED}
        elif platform == "mailchimp":
            member = next(iter(data["lists"].values()))["merge_fields"]
            defs = field_defs(prefix)
            values = {k: member.get(defs[k].tag) for k in OWNED}
        else:
            values = {k: data["fields"].get((prefix + k).upper()) for k in OWNED}
        values["affinity"], values["engagement"] = _number(values["affinity"]), _number(values["engagement"])
        held[platform] = values
    return held


def _latency(
    sandbox: Sandbox, engine: Any, config: Any, actions: int, service: WebhookService
) -> dict[str, Any]:
    prefix = config.writeback.field_prefix
    with engine.connect() as connection:
        holders: dict[str, set[str]] = {}
        for source, email in connection.execute(
            select(Identity.source, Person.email).join(Person, Person.id == Identity.person_id)
        ):
            holders.setdefault(email, set()).add(source)
    people = {p: sorted(e for e, s in holders.items() if p in s) for p in PLATFORMS}
    used_unsubscribe: set[str] = set()
    seconds: list[float] = []
    by_platform: dict[str, list[float]] = {p: [] for p in PLATFORMS}
    unchanged = timeouts = 0
    with httpx.Client(timeout=30) as client:
        for number in range(actions):
            platform = PLATFORMS[number % 3]
            pool = people[platform]
            email = pool[(number // 3 * 7) % len(pool)]
            if platform == "mailchimp":  # an address unsubscribes once
                email = next((e for e in pool if e not in used_unsubscribe), email)
                used_unsubscribe.add(email)
            with engine.connect() as connection:
                last = connection.execute(select(func.max(WebhookDelivery.id))).scalar() or 0
            started = time.perf_counter()
            answer = client.post(
                sandbox.url(platform) + "/_sandbox/act",
                json={
                    "email": email,
                    "type": ACTS[platform],
                    "platform": platform,
                    "url": "https://example.com/pricing",
                },
            )
            answer.raise_for_status()
            deadline = started + 30
            while time.perf_counter() < deadline:
                with engine.connect() as connection:
                    worked = connection.execute(
                        select(func.count())
                        .select_from(WebhookDelivery)
                        .where(
                            WebhookDelivery.id > last,
                            WebhookDelivery.status != "queued",
                            WebhookDelivery.kind != "contact.propertyChange"
                            if platform != "hubspot"
                            else WebhookDelivery.id > last,
                        )
                    ).scalar_one()
                if worked:
                    want = _scores(engine, email)
                    held = _held(client, sandbox, email, prefix)
                    if held and all(values == want for values in held.values()):
                        break
                time.sleep(0.02)
            else:
                timeouts += 1
            took = time.perf_counter() - started
            seconds.append(took)
            by_platform[platform].append(took)
    quantiles = (
        statistics.quantiles(seconds, n=20, method="inclusive") if len(seconds) >= 2 else [seconds[0]] * 19
    )
    return {
        "actions": actions,
        "p50_s": round(statistics.median(seconds), 3),
        "p95_s": round(quantiles[18], 3),
        "max_s": round(max(seconds), 3),
        "timeouts": timeouts,
        "unchanged": unchanged,
        "p50_by_platform_s": {p: round(statistics.median(v), 3) for p, v in by_platform.items() if v},
        "fast_path": dict(service.fastpath.counts),
    }


FLOOD_SCRIPT = r"""
import asyncio, json, sys, time
import aiohttp
from hubspot.utils.signature import Signature
url, secret, total, seconds, ids, prefix, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5]), sys.argv[6], int(sys.argv[7])
async def main():
    statuses = {}
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as client:
        async def one(n):
            body = json.dumps([{"eventId": first + n, "subscriptionType": "contact.propertyChange",
                "objectId": int(ids[n % len(ids)]), "propertyName": prefix + "engagement",
                "propertyValue": str(n % 100), "changeSource": "INTEGRATION", "occurredAt": int(time.time()*1000)}])
            stamp = str(int(time.time() * 1000))
            headers = {"X-HubSpot-Signature-v3": Signature.get_signature(secret, body, "v3", url, "POST", stamp),
                       "X-HubSpot-Request-Timestamp": stamp, "Content-Type": "application/json"}
            try:
                async with client.post(url, data=body.encode(), headers=headers) as answer:
                    await answer.read()
                    status = answer.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status = type(exc).__name__
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        start = time.perf_counter()
        tasks = []
        for n in range(total):
            due = start + n * seconds / total
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        print(json.dumps({"statuses": statuses, "seconds": round(time.perf_counter() - start, 2)}))
asyncio.run(main())
"""


def _flood(
    engine: Any,
    config: Any,
    service: WebhookService,
    total: int,
    seconds: float,
    *,
    first_id: int,
    paused: bool = False,
) -> dict[str, Any]:
    """``paused``: the receiver only queues while the flood lasts (``webhooks serve --no-process``
    in front of a stalled worker), so the bound is reached; the worker starts once it is over."""
    with engine.connect() as connection:
        ids = [
            r
            for r in connection.execute(
                select(Identity.remote_id).where(Identity.source == "hubspot")
            ).scalars()
        ]
        before = connection.execute(select(func.max(WebhookDelivery.id))).scalar() or 0
    secret = config.source("hubspot").inline_secrets["webhook_secret"]
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    sender = subprocess.run(
        [sys.executable, "-c", FLOOD_SCRIPT, service.url + "/webhooks/hubspot", secret, str(total), str(seconds),
         json.dumps(ids), config.writeback.field_prefix, str(first_id)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if sender.returncode != 0:
        raise RuntimeError(f"the flood sender failed: {sender.stderr[-2000:]}")
    sent = json.loads(sender.stdout.strip().splitlines()[-1])
    if paused:
        service.processor.start()
    deadline = time.perf_counter() + 600
    while time.perf_counter() < deadline:
        with engine.connect() as connection:
            queued = connection.execute(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.id > before, WebhookDelivery.status == "queued")
            ).scalar_one()
        if not queued and service.processor.idle():
            break
        time.sleep(0.1)
    drained = time.perf_counter() - started
    done.set()
    sampler.join()
    with engine.connect() as connection:
        stored = connection.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.id > before)
            .group_by(WebhookDelivery.status)
        ).all()
    accepted = sent["statuses"].get("200", 0)
    return {
        "deliveries": total,
        "worker": "paused until the flood is over" if paused else "working",
        "over_seconds": seconds,
        "sending_took_s": sent["seconds"],
        "answers": sent["statuses"],
        "queue_limit": config.webhooks.queue_limit,
        "stored_by_status": {status: count for status, count in stored},
        "accepted": accepted,
        "all_accepted_processed": dict(stored) == {"done": accepted},
        "drained_after_s": round(drained, 1),
        "rss_before_mb": round(baseline / 2**20, 1),
        "rss_peak_mb": round(peak[0] / 2**20, 1),
        "rss_growth_mb": round((peak[0] - baseline) / 2**20, 1),
    }


def run_webhooks(
    workdir: Path, *, persons: int = 300, seed: int = 7, latency_ms: float = 50.0, actions: int = 200,
    flood: int = 10_000, flood_seconds: float = 10.0, rate_limits: bool = True,
) -> dict[str, Any]:  # fmt: skip
    figures: dict[str, Any] = {"persons": persons, "latency_ms": latency_ms, "rate_limits": rate_limits}
    folder = workdir / "webhooks"
    folder.mkdir(parents=True, exist_ok=True)
    with Sandbox(
        folder, persons=persons, seed=seed, latency_ms=latency_ms, rate_limits=rate_limits
    ) as sandbox:
        # the secrets the sandbox's webhooks are signed with (its targets are set once the store is synced)
        document = tomllib.loads(sandbox.config_file.read_text(encoding="utf-8"))
        for source in document["sources"]:
            source["inline_secrets"].update(SANDBOX_WEBHOOK_SECRETS[source["platform"]])
        sandbox.config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
        config = load_config(sandbox.config_file)
        register_secrets(config)
        engine = make_engine(config.store.url)
        model = load_model("default")
        started = time.perf_counter()
        pull_sources(engine, config)
        score(engine, model)
        push_sources(engine, config)
        figures["initial_sync_s"] = round(time.perf_counter() - started, 1)
        with WebhookService(engine, config, model, port=0) as service:
            for platform in PLATFORMS:
                token = (
                    "/" + config.source(platform).inline_secrets["webhook_token"]
                    if platform == "activecampaign"
                    else ""
                )
                httpx.post(
                    sandbox.url(platform) + "/_sandbox/webhooks",
                    json={"url": f"{service.url}/webhooks/{platform}{token}"},
                ).raise_for_status()
            figures["latency"] = _latency(sandbox, engine, config, actions, service)
            time.sleep(2)  # the last echoes
            if flood:
                figures["flood"] = _flood(engine, config, service, flood, flood_seconds, first_id=50_000_000)
        if flood:
            with WebhookService(engine, config, model, port=0, process=False) as paused:
                figures["flood_bound"] = _flood(
                    engine, config, paused, flood, flood_seconds, first_id=60_000_000, paused=True
                )
        engine.dispose()
    return figures


def markdown(figures: dict[str, Any]) -> str:
    lat = figures.get("latency", {})
    limits = "platforms' default limits" if figures.get("rate_limits", True) else "no rate limits"
    lines = [
        f"Webhooks: {lat.get('actions')} actions at {figures['latency_ms']:.0f} ms latency, "
        f"{limits}: "
        f"act to new scores on every platform p50 {lat.get('p50_s')} s, p95 {lat.get('p95_s')} s, max {lat.get('max_s')} s "
        f"(per platform p50 {lat.get('p50_by_platform_s')}; {lat.get('timeouts')} not seen within 30 s).",
    ]
    for key in ("flood", "flood_bound"):
        fl = figures.get(key)
        if fl:
            lines.append(
                f"Flood, worker {fl['worker']}: {fl['deliveries']} deliveries in {fl['over_seconds']:.0f} s "
                f"(sent in {fl['sending_took_s']} s): answers {fl['answers']}, queue limit {fl['queue_limit']}, "
                f"every accepted one processed: {fl['all_accepted_processed']} (drained after "
                f"{fl['drained_after_s']} s); peak RSS {fl['rss_peak_mb']} MB (+{fl['rss_growth_mb']} MB over "
                f"{fl['rss_before_mb']} MB)."
            )
    return "\n\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=200)
    parser.add_argument("--flood", type=int, default=10_000)
    parser.add_argument("--persons", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadsync-bench-webhooks-") as tmp:
        figures = run_webhooks(Path(tmp), persons=args.persons, actions=args.actions, flood=args.flood)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "webhooks.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(markdown(figures))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
