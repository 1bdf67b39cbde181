"""Associations v4 batch read: which contacts a meeting or call belongs to (hubspot.md §4.4).

``POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read`` with ``{"inputs":[{"id"}]}``
answers ``{"status","results":[{"from":{"id"},"to":[{"toObjectId","associationTypes":[...]}]}],
"startedAt","completedAt"}`` (DOCS https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/batch/get-associations;
``toObjectId`` is a string in the SDK's model ``MultiAssociatedObjectWithLabel``). Not in the specs
beside the repo. Ids that are unknown or have no association of that type come back in a 207's
``errors`` (the exact category and wording are unconfirmed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.hubspot.routes.common import read_json, request_error
from leadsync.sandbox.hubspot.state import RequestError, iso
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.hubspot.host import PortalHost

__all__ = ["AssociationRoutes", "ASSOCIATION_TYPE_IDS"]

# v4 batch read: at most 1,000 ids a request, larger ones rejected (since 2025-02-10, every tier:
# https://developers.hubspot.com/changelog/bug-fix-batch-read-limit-for-hubspot-associations-api)
BATCH_LIMIT = 1000
# HubSpot-defined association type ids (from -> to), as HubSpot documents them for v4.
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("meetings", "contacts"): 200,
    ("calls", "contacts"): 194,
    ("deals", "contacts"): 3,
    ("contacts", "meetings"): 199,
    ("contacts", "calls"): 193,
    ("contacts", "deals"): 4,
}


class AssociationRoutes:
    def __init__(self, emulator: PortalHost) -> None:
        self.emu = emulator
        self.state = emulator.state

    def add(self, app: web.Application) -> None:
        app.router.add_post(
            "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read", self.batch_read
        )

    async def batch_read(self, request: web.Request) -> web.Response:
        started = self.emu.clock.now()
        try:
            source = self.state.object_type(request.match_info["fromObjectType"])
            target = self.state.object_type(request.match_info["toObjectType"])
            body = await read_json(request)
            inputs = body.get("inputs")
            if not isinstance(inputs, list):
                raise RequestError(400, "Invalid input JSON: 'inputs' is required")
            if len(inputs) > BATCH_LIMIT:
                raise RequestError(
                    400, f"Batch input of {len(inputs)} exceeds the limit of {BATCH_LIMIT} inputs"
                )
        except RequestError as exc:
            return request_error(exc)
        type_id = ASSOCIATION_TYPE_IDS.get((source, target))
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        with self.state.lock:
            for item in inputs:
                oid = str((item or {}).get("id", ""))
                obj = self.state.objects[source].get(oid)
                linked = obj.associations.get(target, []) if obj is not None and not obj.archived else []
                if not linked:
                    missing.append(oid)
                    continue
                results.append(
                    {
                        "from": {"id": oid},
                        "to": [
                            {
                                "toObjectId": str(to),
                                "associationTypes": [
                                    {"category": "HUBSPOT_DEFINED", "typeId": type_id or 1, "label": None}
                                ],
                            }
                            for to in linked
                        ],
                    }
                )
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(started),
            "completedAt": iso(started),
        }
        if not missing:
            return json_response(answer)
        answer["numErrors"] = len(missing)
        answer["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"No {target} are associated with {source} {oid}.",
                "context": {"fromObjectId": [oid]},
                "errors": [],
                "links": {},
            }
            for oid in missing
        ]
        return json_response(answer, status=207)
