"""Engagement: the legacy Email Events API (hubspot.md §4.1), the events API (§4.2, Enterprise
only) and the deal pipelines (which stages are won): the list, one pipeline, its stages."""

from __future__ import annotations

import base64
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.hubspot.routes.common import error, list_param
from leadsync.sandbox.hubspot.schema import DEAL_STAGES
from leadsync.sandbox.hubspot.state import parse_time
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.hubspot.host import PortalHost

__all__ = ["EngagementRoutes"]

EMAIL_EVENTS_MAX = 1000  # hubspot.md §4.1: limit=1000 used by peers (documented max unconfirmed)
WEB_EVENTS_MAX = 100


def _encode(position: int) -> str:
    return base64.urlsafe_b64encode(f"pos:{position}".encode()).decode().rstrip("=")


def _decode(token: str) -> int:
    padded = token + "=" * (-len(token) % 4)
    text = base64.urlsafe_b64decode(padded.encode()).decode()
    if not text.startswith("pos:"):
        raise ValueError(token)
    return int(text[4:])


class EngagementRoutes:
    def __init__(self, emulator: PortalHost) -> None:
        self.emu = emulator
        self.state = emulator.state

    def add(self, app: web.Application) -> None:
        app.router.add_get("/email/public/v1/events", self.email_events)
        # hubspot.md §10.2: the SDK calls /events/v3/events/ with a trailing slash; accept both.
        app.router.add_get("/events/v3/events", self.web_events)
        app.router.add_get("/events/v3/events/", self.web_events)
        app.router.add_get("/events/v3/events/event-types", self.event_types)
        app.router.add_get("/crm/v3/pipelines/{objectType}", self.pipelines)
        app.router.add_get("/crm/v3/pipelines/{objectType}/{pipelineId}", self.pipeline)
        app.router.add_get("/crm/v3/pipelines/{objectType}/{pipelineId}/stages", self.stages)
        app.router.add_get("/crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}", self.stage)

    async def email_events(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            start = int(q["startTimestamp"]) if "startTimestamp" in q else None
            end = int(q["endTimestamp"]) if "endTimestamp" in q else None
            limit = min(int(q.get("limit", "100")), EMAIL_EVENTS_MAX)
            position = _decode(q["offset"]) if q.get("offset") else 0
        except ValueError:
            return error(
                400,
                "startTimestamp, endTimestamp and limit must be integers; offset must come from a previous page",
            )
        kind, recipient, campaign = q.get("eventType"), q.get("recipient"), q.get("campaignId")
        exclude_filtered = q.get("excludeFilteredEvents", "false").lower() == "true"
        with self.state.lock:
            rows = self.state.email_events_sorted()
            # events are kept in (created, id) order; `offset` is a position in the filtered list
            lo = 0 if start is None else bisect_left(self.state.email_event_keys(), (start, ""))
            selected: list[dict[str, Any]] = []
            matched = 0
            has_more = False
            plain = not (kind or recipient or campaign or exclude_filtered)
            if plain and q.get("offset"):  # fast path: the token is an absolute index in time order
                lo, position = position, 0
            for row in rows[lo:]:
                if end is not None and row["created"] > end:
                    break
                if kind and row["type"] != kind.upper():
                    continue
                if recipient and row["recipient"] != recipient.lower():
                    continue
                if campaign and str(row["emailCampaignId"]) != campaign:
                    continue
                if exclude_filtered and row.get("filteredEvent"):
                    continue
                if matched >= position:
                    if len(selected) == limit:
                        has_more = True
                        break
                    selected.append({**row, "portalId": self.emu.portal_id})
                matched += 1
        next_position = (lo + len(selected)) if plain else position + len(selected)
        return json_response({"hasMore": has_more, "offset": _encode(next_position), "events": selected})

    async def web_events(self, request: web.Request) -> web.Response:
        if self.emu.tier != "enterprise":
            # hubspot.md §4.2: the events API is Enterprise only (exact refusal body unconfirmed)
            return error(
                403,
                "This endpoint requires a Marketing Hub Enterprise or Content Hub Enterprise subscription.",
                "MISSING_SCOPES",
                subCategory="REQUIRES_ENTERPRISE",
                errors=[
                    {"message": "Requires an Enterprise subscription", "subCategory": "REQUIRES_ENTERPRISE"}
                ],
            )
        q = request.query
        try:
            after_ts = parse_time(q["occurredAfter"]) if q.get("occurredAfter") else None
            before_ts = parse_time(q["occurredBefore"]) if q.get("occurredBefore") else None
            limit = min(int(q.get("limit", "100")), WEB_EVENTS_MAX)
            position = _decode(q["after"]) if q.get("after") else 0
        except ValueError:
            return error(
                400,
                "Invalid query: occurredAfter/occurredBefore must be ISO times, limit an integer, "
                "after a token from a previous page",
            )
        object_type = q.get("objectType")
        object_id = q.get("objectId")
        event_types = list_param(request, "eventType")
        descending = (
            q.get("sort", "ASCENDING").upper().startswith("DESC") or q.get("sort", "") == "-occurredAt"
        )
        with self.state.lock:
            rows = [
                r
                for r in self.state.web_events
                if (not object_type or object_type in ("contact", "contacts", "0-1"))
                and (not object_id or r["objectId"] == object_id)
                and (not event_types or r["eventType"] in event_types)
                and (after_ts is None or parse_time(r["occurredAt"]) > after_ts)
                and (before_ts is None or parse_time(r["occurredAt"]) < before_ts)
            ]
        rows.sort(key=lambda r: (r["occurredAt"], r["id"]), reverse=descending)
        page = rows[position : position + limit]
        body: dict[str, Any] = {"results": page}
        if position + limit < len(rows):
            token = _encode(position + limit)
            body["paging"] = {
                "next": {"after": token, "link": f"{self.emu.public_url(request)}?after={token}"}
            }
        return json_response(body)

    async def event_types(self, request: web.Request) -> web.Response:
        if self.emu.tier != "enterprise":
            return error(403, "This endpoint requires an Enterprise subscription.", "MISSING_SCOPES")
        return json_response({"eventTypes": ["e_visited_page", "e_submitted_form", "e_clicked_link"]})

    @staticmethod
    def _pipeline() -> dict[str, Any]:
        stamp = "2019-08-06T02:41:52.000Z"
        stages = [
            {
                "id": sid,
                "label": label,
                "displayOrder": i,
                "archived": False,
                "createdAt": stamp,
                "updatedAt": stamp,
                "metadata": {
                    "isClosed": "true" if sid.startswith("closed") else "false",
                    "probability": prob,
                },
            }
            for i, (sid, label, prob) in enumerate(DEAL_STAGES)
        ]
        return {
            "id": "default",
            "label": "Sales Pipeline",
            "displayOrder": 0,
            "archived": False,
            "createdAt": stamp,
            "updatedAt": stamp,
            "stages": stages,
        }

    def _found(self, request: web.Request) -> dict[str, Any] | web.Response:
        if request.match_info["objectType"] not in ("deals", "0-3"):
            return error(400, "Pipelines are emulated for deals only")
        pipeline = self._pipeline()
        if request.match_info.get("pipelineId", "default") != pipeline["id"]:
            return error(
                404, f"Pipeline {request.match_info['pipelineId']} does not exist.", "OBJECT_NOT_FOUND"
            )
        return pipeline

    async def pipelines(self, request: web.Request) -> web.Response:
        found = self._found(request)
        return found if isinstance(found, web.Response) else json_response({"results": [found]})

    async def pipeline(self, request: web.Request) -> web.Response:
        found = self._found(request)
        return found if isinstance(found, web.Response) else json_response(found)

    async def stages(self, request: web.Request) -> web.Response:
        found = self._found(request)
        return found if isinstance(found, web.Response) else json_response({"results": found["stages"]})

    async def stage(self, request: web.Request) -> web.Response:
        found = self._found(request)
        if isinstance(found, web.Response):
            return found
        for stage in found["stages"]:
            if stage["id"] == request.match_info["stageId"]:
                return json_response(stage)
        return error(404, f"Stage {request.match_info['stageId']} does not exist.", "OBJECT_NOT_FOUND")
