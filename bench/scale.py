"""Cost against size (issue 23): an incremental cycle (pull, score, push) after 1 % of the contacts
changed, measured on the bench's world and projected to 2,000, 20,000 and 100,000 contacts; and
the ActiveCampaign tracking-log sweep's schedule at 20,000 and 200,000 contacts.

The measured cycle: 1 % of the platform's contacts get a new first name through the platform's own
API (HubSpot ``PATCH /crm/v3/objects/contacts/{id}``, Mailchimp ``PATCH .../members/{hash}``,
ActiveCampaign ``PUT /contacts/{id}``), then leadsync pulls, scores and pushes as the daemon does.

The projection is a per-request cost model, not a run (a 100,000-contact world does not fit the
bench's time here): each stream's requests at size N follow what its server-side filter allows
(``GROWTH``), and its time is those requests at the per-request cost measured in the cycle.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from bench.ceilings import RATE_WINDOW_S, ROUTE_RATE, raw_concurrency, raw_rate
from bench.rawclient import replay

__all__ = ["GROWTH", "SIZES", "change_requests", "project", "sweep_schedule"]

SIZES = (2_000, 20_000, 100_000)
CHANGED = 0.01

# How each stream's requests in an incremental cycle grow, and why (the fact sheets' sections):
#   ("changes", page): a server-side filter on the change time: ceil(changed / page), at least 1;
#   ("fixed", None): a time filter on the stream's own events: what happened in the period, not
#       how many contacts the account holds (the measured count is kept);
#   ("size", None): no server-side filter: the whole collection each cycle, in proportion to size;
#   ("per-change", None): one request per changed contact.
GROWTH: dict[str, dict[str, tuple[str, int | None, str]]] = {
    "hubspot": {
        "contacts": ("changes", 200, "search on lastmodifieddate (hubspot.md §2.5)"),
        "email_events": ("fixed", None, "startTimestamp filter: the period's events"),
        "page_views": ("fixed", None, "derived from the contact counters read with contacts"),
        "meetings": ("fixed", None, "search on hs_lastmodifieddate: the period's meetings"),
        "calls": ("fixed", None, "search on hs_lastmodifieddate: the period's calls"),
        "deals": ("fixed", None, "search on hs_lastmodifieddate: the period's deals"),
    },
    "mailchimp": {
        "members": ("changes", 1000, "since_last_changed (mailchimp.md §4.1)"),
        "email_activity": ("fixed", None, "since, per sent campaign: grows with campaigns, not contacts"),
        "orders": ("size", 1000, "no server-side time filter on e-commerce orders: read whole"),
        "carts": ("size", 1000, "no server-side time filter on carts: read whole"),
    },
    "activecampaign": {
        "contacts": ("changes", 100, "filters[updated_after] (activecampaign.md §2)"),
        "activities": ("fixed", None, "after: the period's activities (§5)"),
        "tracking_logs": ("per-change", None, "per contact only (§5): one request per changed contact"),
        "deals": ("fixed", None, "filters[updated_after]: the period's deals"),
    },
}


def change_requests(platform: str, remote_ids: list[str], prefix: str) -> list[dict[str, str]]:
    """The API requests that give ``remote_ids`` a new first name (a change to a scoring input)."""
    import json

    out = []
    for number, remote_id in enumerate(remote_ids):
        name = f"Changed{number}"
        if platform == "hubspot":
            path, method = f"{prefix}/crm/v3/objects/contacts/{remote_id}", "PATCH"
            body: dict[str, Any] = {"properties": {"firstname": name}}
        elif platform == "mailchimp":
            list_id, _, member = remote_id.partition(":")
            path, method = f"{prefix}/3.0/lists/{list_id}/members/{member}", "PATCH"
            body = {"merge_fields": {"FNAME": name}}
        else:
            path, method = f"{prefix}/api/3/contacts/{remote_id}", "PUT"
            body = {"contact": {"firstName": name}}
        out.append(
            {"method": method, "path": path, "body": json.dumps(body), "content_type": "application/json"}
        )
    return out


def apply_changes(
    platform: str, base_url: str, remote_ids: list[str], *, secrets: dict[str, str], latency_s: float
) -> int:
    """Send the changes through the platform's API (paced to its cap); returns the refusals."""
    result = replay(
        base_url,
        change_requests(platform, remote_ids, ""),
        platform=platform,
        secrets=secrets,
        concurrency=raw_concurrency(platform, latency_s),
        rate=raw_rate(platform),
        window=RATE_WINDOW_S[platform] or 1.0,
        route_rates=ROUTE_RATE.get(platform),
    )
    return result.failed


def project(
    platform: str, cycle: dict[str, Any], contacts: int, full: dict[str, Any]
) -> list[dict[str, Any]]:
    """The cycle's requests and time at each of ``SIZES``, from the measured ``cycle`` and the full
    pull's per-stream records (``full``, the size of a collection read whole); a per-request cost
    model (see the module's docstring)."""
    streams: dict[str, Any] = cycle["streams"]
    measured_changed = max(cycle["changed"], 1)
    rows = []
    for size in SIZES:
        changed = max(1, round(size * CHANGED))
        requests, seconds, why = 0, 0.0, []
        for stream, figures in streams.items():
            kind, page, reason = GROWTH[platform].get(stream, ("fixed", None, "?"))
            measured = figures["requests"]
            if kind == "changes":  # the measured requests less their pages of changes, plus the new pages
                fixed = max(measured - math.ceil(measured_changed / (page or 1)), 0)
                n = fixed + max(1, math.ceil(changed / (page or 1)))
            elif kind == "size":  # the collection grows with the account: its pages with it
                records = (full.get(stream) or {}).get("records", 0)
                pages = math.ceil(records / (page or 1))
                fixed = max(measured - pages, 0)
                n = fixed + math.ceil(records * size / max(contacts, 1) / (page or 1))
            elif kind == "per-change":
                n = changed
            else:
                n = measured
            per_request = figures["seconds"] / measured if measured else 0.0
            if not per_request:  # nothing measured for this stream: the cycle's average
                per_request = cycle["pull_seconds"] / max(cycle["pull_requests"], 1)
            cap = raw_rate(platform, stream)  # a few requests fit a burst; many are held to the cap
            if cap and n > cap:
                per_request = max(per_request, 1 / cap)
            requests += n
            seconds += n * per_request
            if kind == "size":
                why.append(f"{stream}: {reason}")
        push = cycle["push"]
        # writes follow what the re-score changed: in proportion to the changed contacts
        push_requests = math.ceil(push["requests"] * changed / measured_changed)
        push_seconds = push["seconds"] * changed / measured_changed
        rows.append(
            {
                "contacts": size,
                "changed": changed,
                "pull_requests": requests,
                "pull_seconds": round(seconds, 1),
                "push_requests": push_requests,
                "seconds": round(seconds + push_seconds + cycle["score_seconds"], 1),
                "grows_with_size": why,
            }
        )
    return rows


def sweep_schedule(
    per_request_s: float, incremental_requests: int, *, interval_s: float = 900.0, rate: float = 5.0
) -> list[dict[str, Any]]:
    """The ActiveCampaign tracking-log sweep at 20,000 and 200,000 contacts under the default
    budget (half the interval's requests at the rate cap), from the measured per-request cost."""
    budget = int(interval_s * rate / 2)
    rows = []
    for contacts in (20_000, 200_000):
        sweep_requests = contacts + math.ceil(contacts / 100)  # a request a contact, a page of ids a 100
        cycles = math.ceil(sweep_requests / budget)
        sweep_hours = cycles * interval_s / 3600
        every_s = max(24 * 3600, cycles * interval_s)  # a sweep starts a day after the last began
        cycles_per_day = 86400 / interval_s
        per_day = sweep_requests * 86400 / every_s + incremental_requests * cycles_per_day
        longest = (min(budget, sweep_requests) + incremental_requests) * max(per_request_s, 1 / rate)
        rows.append(
            {
                "contacts": contacts,
                "budget_per_cycle": budget,
                "sweep_requests": sweep_requests,
                "sweep_cycles": cycles,
                "sweep_hours": round(sweep_hours, 1),
                "requests_per_day": round(per_day),
                "longest_cycle_s": round(longest),
                "interval_s": interval_s,
                "fits": longest <= interval_s,
            }
        )
    return rows


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started
