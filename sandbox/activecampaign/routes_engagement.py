"""Engagement: the activity stream, tracking logs and deals (activecampaign.md §5)."""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.activecampaign.common import Paging, param, parse_filter_time
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.activecampaign.host import AccountHost

__all__ = ["engagement_routes"]


def engagement_routes(emu: AccountHost) -> list[web.RouteDef]:
    state, render = emu.state, emu.render

    async def list_activities(request: web.Request) -> web.Response:
        # §5: the docs say `contact` is required; the singer tap reads the account-wide feed without
        # it [peer], so the sandbox serves both.
        paging = Paging(request)
        with state.lock:
            after = param(emu, request, "after")
            moment = parse_filter_time(after, emu.tz) if after is not None else None
            order = param(emu, request, "orders[tstamp]")
            if order is not None or moment is not None:
                rows, keys = state.activities_by_time()
                if moment is not None:  # tstamp >= after
                    rows = rows[bisect_left(keys, (moment,)) :]
            else:
                rows = state.activities
            contact = param(emu, request, "contact")
            if contact is not None and contact.isdigit():
                rows = [a for a in rows if a.contact == int(contact)]
            if order is None:
                rows = sorted(rows, key=lambda a: a.id)
            elif order.strip().lower() == "desc":
                rows = rows[::-1]
            page = paging.slice(rows)
            body: dict[str, Any] = {
                "activities": [render.activity(a) for a in page],
                "meta": {"total": str(len(rows))},
            }
            return json_response(body)

    async def list_deals(request: web.Request) -> web.Response:
        paging = Paging(request)
        with state.lock:
            rows = sorted(state.deals.values(), key=lambda d: d.id)
            status = param(emu, request, "filters[status]")
            if status is not None and status.isdigit():
                rows = [d for d in rows if d.status == int(status)]
            for name, attr, after in (
                ("filters[updated_after]", "mdate", True),
                ("filters[updated_before]", "mdate", False),
                ("filters[created_after]", "cdate", True),
                ("filters[created_before]", "cdate", False),
            ):
                raw = param(emu, request, name)
                moment = parse_filter_time(raw, emu.tz) if raw is not None else None
                if moment is not None:  # spec: "greater than or equal to given date"
                    rows = [d for d in rows if (getattr(d, attr) >= moment) == after]
            order = param(emu, request, "orders[cdate]")
            if order is not None:
                rows.sort(key=lambda d: (d.cdate, d.id), reverse=order.strip().lower() == "desc")
            total_cents = sum(d.value_cents for d in rows)
            return json_response(
                {
                    "deals": [render.deal(d) for d in paging.slice(rows)],
                    # spec:list-all-deals types meta.total as an integer (§1: "accept both").
                    "meta": {
                        "currencies": {
                            "USD": {"currency": "usd", "total": str(len(rows)), "value": str(total_cents)}
                        },
                        "total": len(rows),
                    },
                }
            )

    return [
        web.get("/api/3/activities", list_activities),
        web.get("/api/3/deals", list_deals),
    ]
