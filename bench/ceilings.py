"""Each platform's ceiling: the most records a second any client can move, from the platform's caps.

A ceiling is *the cap times the records per request* (the largest page or batch the endpoint allows):

* HubSpot (hubspot.md §5, Free/Starter): 100 requests per rolling 10 s = 10 requests/s; contact
  search has its own 5 requests/s (§2.5). Pull pages: search 200, legacy email events 1,000,
  page-view events 100, deals 100. Push: batch update of 100 -> 10 x 100 = 1,000 records/s.
* ActiveCampaign (activecampaign.md §2, §7, §8): 5 requests/s, pages of 100 -> 500 records/s pull.
  Tracking logs exist only per contact (§5: ``GET /contacts/{id}/trackingLogs``, no account-wide or
  date-filtered read), so that endpoint's most per request is one contact: its ceiling is 5 contacts
  swept a second, and the stream is counted in contacts swept (requests to that route).
  Push is bulk import of 250 contacts, but §7 also caps multi-contact imports at 100 requests a
  minute, so 250 x min(5, 100/60) = 416.7 records/s. An import is asynchronous: a record counts as
  written when ``/import/info`` says its batch completed (the connector waits for that).
* Mailchimp (mailchimp.md §9): no request-rate cap, only 10 simultaneous connections. A connection
  carries one request at a time, so the ceiling is
  ``10 x records per request / (injected latency + service time)``, where the service time is the
  emulator's own time to answer one full page, measured here on one connection with no injected
  latency (so the ceiling is the platform's, not our client's). Pages of 1,000 (members, email
  activity, open details, orders); batch subscribe of 500 for push.

A pull's ceiling mixes streams with different page sizes: its ideal time is the sum over streams
of ``records / stream ceiling``, and the pull's ratio is that ideal time over the measured time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import httpx

__all__ = [
    "Ceiling",
    "PULL_PAGE",
    "PUSH_BATCH",
    "RATE_WINDOW_S",
    "REQUESTS_PER_SECOND",
    "SWEPT_ROUTE",
    "mailchimp_service_seconds",
    "pull_ideal_seconds",
    "push_ceiling",
    "ROUTE_RATE",
    "raw_concurrency",
    "raw_rate",
    "stream_ceiling",
]

# requests/s a client may sustain (None: no rate cap, only concurrency)
REQUESTS_PER_SECOND: dict[str, float | None] = {"hubspot": 10.0, "mailchimp": None, "activecampaign": 5.0}
MAILCHIMP_CONNECTIONS = 10
# the window each rate limit is counted over (hubspot.md §5: rolling 10 s; activecampaign.md §8: 5 a
# second; Mailchimp counts connections, not requests)
RATE_WINDOW_S: dict[str, float] = {"hubspot": 10.0, "mailchimp": 0.0, "activecampaign": 1.0}

# records per request at the endpoint's maximum page size, per stream the connector pulls
PULL_PAGE: dict[str, dict[str, int]] = {
    "hubspot": {
        "contacts": 200,
        "email_events": 1000,
        "page_views": 100,
        "meetings": 200,
        "calls": 200,
        "deals": 100,
    },
    "mailchimp": {"members": 1000, "email_activity": 1000, "orders": 1000, "carts": 1000},
    "activecampaign": {"contacts": 100, "activities": 100, "tracking_logs": 1, "deals": 100},
}
# Streams read one contact a request, counted in contacts swept: the requests to this route.
SWEPT_ROUTE: dict[tuple[str, str], str] = {("activecampaign", "tracking_logs"): "/trackingLogs"}
# requests/s for a stream when it differs from the platform's (HubSpot search: 5/s)
STREAM_RATE: dict[tuple[str, str], float] = {
    ("hubspot", "contacts"): 5.0,
    ("hubspot", "meetings"): 5.0,
    ("hubspot", "calls"): 5.0,
}
PUSH_BATCH: dict[str, int] = {"hubspot": 100, "mailchimp": 500, "activecampaign": 250}
PUSH_RATE: dict[str, float] = {"activecampaign": 100 / 60}  # §7: 100 bulk imports a minute


@dataclass(frozen=True)
class Ceiling:
    records_per_second: float
    formula: str


def _mailchimp(records: int, latency_s: float, service_s: float) -> Ceiling:
    rate = MAILCHIMP_CONNECTIONS * records / (latency_s + service_s)
    return Ceiling(
        rate,
        f"{MAILCHIMP_CONNECTIONS} conn x {records} / ({latency_s * 1000:.0f} ms + {service_s * 1000:.1f} ms)",
    )


def stream_ceiling(platform: str, stream: str, *, latency_s: float, service_s: float = 0.0) -> Ceiling:
    page = PULL_PAGE[platform][stream]
    if platform == "mailchimp":
        return _mailchimp(page, latency_s, service_s)
    rate = STREAM_RATE.get((platform, stream), REQUESTS_PER_SECOND[platform] or 0.0)
    return Ceiling(rate * page, f"{rate:g} req/s x {page}")


def push_ceiling(
    platform: str,
    *,
    latency_s: float,
    service_s: float = 0.0,
    records: int = 0,
    write_requests: int = 0,
) -> Ceiling:
    batch = PUSH_BATCH[platform]
    if platform == "mailchimp":
        if not records or not write_requests:
            return _mailchimp(batch, latency_s, service_s)
        # The write needs more than batch subscribes: tags go one member a request (is_syncing, §6)
        # or 500 a request (bulk_tags). Every write request the push made is one it needed (batch
        # subscribe of 500, tag writes), each held at least the injected latency on one of the 10
        # connections; the emulator's service time is left out, so this bounds from above.
        rate = MAILCHIMP_CONNECTIONS * records / (write_requests * latency_s)
        return Ceiling(
            rate,
            f"{MAILCHIMP_CONNECTIONS} conn x {records:,} records / ({write_requests:,} write requests "
            f"x {latency_s * 1000:.0f} ms)",
        )
    rate = min(REQUESTS_PER_SECOND[platform] or 0.0, PUSH_RATE.get(platform, float("inf")))
    return Ceiling(rate * batch, f"{rate:.3g} req/s x {batch}")


# Routes with a cap of their own, by a part of their path (hubspot.md §2.5: search, 5/s).
ROUTE_RATE: dict[str, dict[str, float]] = {"hubspot": {"/search": 5.0}}


def pull_ideal_seconds(platform: str, stream_seconds: dict[str, float]) -> float:
    """The least time for a pull whose streams run side by side (as leadsync pulls them), given each
    stream's time at its ceiling: streams that share a budget add up, separate budgets overlap
    (HubSpot's search has its own 5/s, exempt from the 10 s bucket, hubspot.md §2.5; Mailchimp's
    streams share its 10 connections, ActiveCampaign's its 5/s)."""
    budgets: dict[str, float] = {}
    for stream, seconds in stream_seconds.items():
        budget = "own" if (platform, stream) in STREAM_RATE else "platform"
        budgets[budget] = budgets.get(budget, 0.0) + seconds
    return max(budgets.values(), default=0.0)


def raw_rate(platform: str, stream: str | None = None) -> float | None:
    """The pace a raw client keeps to: the platform's rate cap, None for none (a route with a cap
    of its own is paced by ``ROUTE_RATE`` as well). ``stream``: the stream's own cap where all of
    its requests are held to it (for a projection's many requests)."""
    if stream is not None and (platform, stream) in STREAM_RATE:
        return STREAM_RATE[(platform, stream)]
    return REQUESTS_PER_SECOND[platform]


def raw_concurrency(platform: str, latency_s: float) -> int:
    """Requests a raw client keeps in flight: Mailchimp's 10 connections (§9); on a rate-capped
    platform (no concurrency cap) a second's worth of the cap, so a burst the window allows goes
    out at once, and never fewer than the latency needs to keep up the pace."""
    if platform == "mailchimp":
        return MAILCHIMP_CONNECTIONS
    rate = REQUESTS_PER_SECOND[platform] or 1.0
    return max(int(rate), int(rate * (latency_s + 0.05)) + 1)


def mailchimp_service_seconds(
    base_url: str, api_key: str, *, latency_ms: float, samples: int = 7
) -> tuple[float, int]:
    """Median time the emulator takes to answer one page of (up to) 1,000 members with no injected
    latency, and the members in that page.

    Measured on one keep-alive connection, the body read but not parsed: the server's time plus
    loopback transfer, nothing of our client's normalisation. ``latency_ms`` is restored after.
    """
    admin = base_url.rsplit("/3.0", 1)[0]
    times = []
    with httpx.Client(auth=("user", api_key), timeout=30) as client:
        list_id = client.get(f"{base_url}/lists", params={"count": 1}).json()["lists"][0]["id"]
        client.post(f"{admin}/_sandbox/latency", json={"ms": 0})
        try:
            for _ in range(samples):
                started = time.perf_counter()
                reply = client.get(f"{base_url}/lists/{list_id}/members", params={"count": 1000, "offset": 0})
                body = reply.read()
                times.append(time.perf_counter() - started)
                reply.raise_for_status()
        finally:
            client.post(f"{admin}/_sandbox/latency", json={"ms": latency_ms})
    members = len(httpx.Response(200, content=body).json()["members"])
    return statistics.median(times), members
