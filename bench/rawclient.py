"""The physical limit of a step, measured in the same run: the requests leadsync made, replayed by
a raw client against the same emulator at the same injected latency.

The sandbox records every API request of a step (method, path with query, body:
``POST /_sandbox/record`` ... ``DELETE /_sandbox/record``). The raw client then sends the same
requests with plain ``httpx``: one client with keep-alive connections, as many requests in flight as
the platform allows (Mailchimp: 10 connections, mailchimp.md §9), and paced no faster than the
platform's rate cap where it has one (HubSpot 10/s, its search 5/s; ActiveCampaign 5/s). It reads
each body and discards it: no parsing, no normalising, no store. A 429 is waited out and retried
(and counted). The records/s it reaches over the step's records is the most any client can get
from this emulator on this machine: leadsync's ratio is taken against the lower of that and the
platform's ceiling.

Reads are replayed all at once (each page's request is known), so the raw client is not held to
the order in which a cursor reveals the next page: the limit is, if anything, flattering to it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Recorder", "RawResult", "replay"]


class Recorder:
    """Records the API requests one emulator receives between ``start`` and ``stop``."""

    def __init__(self, admin_url: str) -> None:
        self.admin = httpx.Client(base_url=admin_url, timeout=60)

    def start(self) -> None:
        self.admin.post("/_sandbox/record").raise_for_status()

    def stop(self) -> list[dict[str, str]]:
        reply = self.admin.delete("/_sandbox/record")
        reply.raise_for_status()
        return list(reply.json()["requests"])

    def close(self) -> None:
        self.admin.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class RawResult:
    requests: int
    seconds: float
    answered_429: int
    failed: int  # answers other than 2xx/429 (a replayed write the platform refuses again, etc.)


# A rolling window at exactly the cap meets an occasional 429: arrivals jitter by a few
# milliseconds. A margin of 2 % of the window avoids it (leadsync's own limiters keep one too), and
# a 429 that still comes is waited out and counted.
PACE_MARGIN = 0.02


class _Pacer:
    """At most ``rate x window`` starts in any ``window`` seconds (plus the margin): the burst a
    rolling-window cap allows, then its pace (no cap: ``rate`` None)."""

    def __init__(self, rate: float | None, window: float = 1.0) -> None:
        self.limit = max(1, round(rate * window)) if rate else 0
        self.window = window * (1.0 + PACE_MARGIN)
        self.starts: deque[float] = deque()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.limit:
            return
        while True:
            with self.lock:
                now = time.perf_counter()
                while self.starts and self.starts[0] <= now - self.window:
                    self.starts.popleft()
                if len(self.starts) < self.limit:
                    self.starts.append(now)
                    return
                until = self.starts[0] + self.window
            time.sleep(max(until - now, 0.0))


_PACERS: dict[tuple[str, float | None, float], _Pacer] = {}


def _shared(key: str, rate: float | None, window: float) -> _Pacer:
    return _PACERS.setdefault((key, rate, window), _Pacer(rate, window))


def auth_headers(platform: str, secrets: dict[str, str]) -> tuple[dict[str, str], Any]:
    """(headers, auth) a raw client sends: each platform's own scheme (fact sheets §1)."""
    if platform == "hubspot":
        return {"Authorization": f"Bearer {secrets['token']}"}, None
    if platform == "mailchimp":
        return {}, ("user", secrets["api_key"])  # mailchimp.md §1: Basic, any user name
    return {"Api-Token": secrets["api_token"]}, None


def replay(
    base_url: str,
    requests: list[dict[str, str]],
    *,
    platform: str,
    secrets: dict[str, str],
    concurrency: int,
    rate: float | None,
    window: float = 1.0,
    route_rates: dict[str, float] | None = None,
) -> RawResult:
    """Send ``requests`` (as recorded) with ``concurrency`` in flight, held to ``rate``/s over a
    rolling ``window``; a request whose path contains a key of ``route_rates`` is held to that rate
    over a second instead (HubSpot search: 5/s, exempt from the 10 s bucket)."""
    headers, auth = auth_headers(platform, secrets)
    # one pacer per emulator and cap for all replays: the window remembers the previous step's starts
    pacer = _shared(base_url, rate, window)
    route_pacers = {part: _shared(base_url + part, r, 1.0) for part, r in (route_rates or {}).items()}
    counts = {"429": 0, "failed": 0}
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=base_url, headers=headers, auth=auth, timeout=60, limits=limits) as client:

        def send(recorded: dict[str, str]) -> None:
            content = recorded["body"].encode() if recorded["body"] else None
            extra = {"Content-Type": recorded["content_type"]} if content else {}
            path = recorded["path"].split("?", 1)[0]
            own = [route_pacer for part, route_pacer in route_pacers.items() if part in path]
            while True:
                # a route with a cap of its own is exempt from the platform's (HubSpot search, §2.5)
                for route_pacer in own or [pacer]:
                    route_pacer.wait()
                with client.stream(
                    recorded["method"], recorded["path"], content=content, headers=extra
                ) as reply:
                    for _ in reply.iter_raw():  # read and discard
                        pass
                if reply.status_code != 429:
                    break
                with lock:
                    counts["429"] += 1
                time.sleep(float(reply.headers.get("Retry-After") or 1.0))
            if reply.status_code >= 300:
                with lock:
                    counts["failed"] += 1

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="raw") as pool:
            for future in [pool.submit(send, r) for r in requests]:
                future.result()
        seconds = time.perf_counter() - started
    return RawResult(len(requests), seconds, counts["429"], counts["failed"])
