"""CRM objects v3 (contacts, deals, meetings, calls): list, get, create, update, batch read/update/
upsert, search.

Facts: hubspot.md §2 (contacts v3), §2.5 (search), §5 (207 Multi-Status), §10 (checklist).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.hubspot.routes.common import list_param, read_json, request_error
from leadsync.sandbox.hubspot.search import search_page
from leadsync.sandbox.hubspot.state import CrmObject, ItemError, RequestError, email_problem, iso
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.hubspot.host import PortalHost

__all__ = ["CrmRoutes"]

BATCH_LIMIT = 100  # hubspot.md §2.2: "Object API batch endpoints are limited to 100 inputs per request"
LIST_LIMIT = 100  # hubspot.md §2.1: up to 100 per page
_DEAL_DEFAULTS = [
    "dealname",
    "amount",
    "closedate",
    "pipeline",
    "dealstage",
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
]
_ENGAGEMENT_DEFAULTS = ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]  # hubspot.md §4.4
DEFAULT_LIST_PROPERTIES = {
    "contacts": ["firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"],
    "deals": _DEAL_DEFAULTS,
    "meetings": _ENGAGEMENT_DEFAULTS,
    "calls": _ENGAGEMENT_DEFAULTS,
}
DEFAULT_SEARCH_PROPERTIES = {  # hubspot.md §2.5
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "deals": _DEAL_DEFAULTS,
    "meetings": _ENGAGEMENT_DEFAULTS,
    "calls": _ENGAGEMENT_DEFAULTS,
}


class CrmRoutes:
    def __init__(self, emulator: PortalHost) -> None:
        self.emu = emulator
        self.state = emulator.state

    def add(self, app: web.Application) -> None:
        base = "/crm/v3/objects/{objectType}"
        app.router.add_post(base + "/search", self.search)
        app.router.add_post(base + "/batch/read", self.batch_read)
        app.router.add_post(base + "/batch/update", self.batch_update)
        app.router.add_post(base + "/batch/upsert", self.batch_upsert)
        app.router.add_get(base, self.list)
        app.router.add_post(base, self.create)
        app.router.add_get(base + "/{objectId}", self.get)
        app.router.add_patch(base + "/{objectId}", self.patch)

    # --- helpers ---------------------------------------------------------------------------

    def _names(
        self, object_type: str, requested: list[str] | None, default: dict[str, list[str]]
    ) -> list[str]:
        defs = self.state.properties[object_type]
        return [n for n in (requested or default[object_type]) if n in defs]

    def _now(self) -> datetime:
        return self.emu.clock.tick()

    @staticmethod
    def _batch_body(
        results: list[dict[str, Any]], errors: list[ItemError], started: datetime
    ) -> web.Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(started),
            "completedAt": iso(started),
        }
        if not errors:
            return json_response(body)
        body["numErrors"] = len(errors)
        body["errors"] = [
            {
                "status": e.status,
                "category": e.category,
                "message": e.message,
                "context": {"ids": e.ids},
                "errors": [],
                "links": {},
            }
            for e in errors
        ]
        return json_response(body, status=207)  # hubspot.md §5: 207 Multi-Status

    @staticmethod
    def _inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise RequestError(400, "Invalid input JSON: 'inputs' is required")
        if len(inputs) > BATCH_LIMIT:
            raise RequestError(400, f"Batch input of {len(inputs)} exceeds the limit of {BATCH_LIMIT} inputs")
        return inputs

    # --- handlers --------------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
            limit = int(request.query.get("limit", "10"))
            if not 1 <= limit <= LIST_LIMIT:
                raise RequestError(400, f"limit must be between 1 and {LIST_LIMIT}")
            after = request.query.get("after")
            floor = int(after) if after else 0  # hubspot.md §2.1: `after` is the id of the next record
            archived = request.query.get("archived", "false").lower() == "true"
        except ValueError:
            return request_error(RequestError(400, "limit and after must be integers"))
        except RequestError as exc:
            return request_error(exc)
        names = self._names(object_type, list_param(request, "properties"), DEFAULT_LIST_PROPERTIES)
        assoc = list_param(request, "associations")
        with self.state.lock:
            rows = sorted(
                (
                    o
                    for o in self.state.objects[object_type].values()
                    if o.archived == archived and int(o.id) >= floor
                ),
                key=lambda o: int(o.id),
            )
            page = rows[: limit + 1]
            body: dict[str, Any] = {
                "results": [o.to_json(names, with_associations=assoc) for o in page[:limit]]
            }
        if len(page) > limit:
            nxt = page[limit].id
            body["paging"] = {"next": {"after": nxt, "link": f"{self.emu.public_url(request)}?after={nxt}"}}
        return json_response(body)

    async def get(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
        except RequestError as exc:
            return request_error(exc)
        obj = self.state.lookup(object_type, request.match_info["objectId"], request.query.get("idProperty"))
        if obj is None or obj.archived:
            return request_error(RequestError(404, "Object not found.", "OBJECT_NOT_FOUND"))
        names = self._names(object_type, list_param(request, "properties"), DEFAULT_LIST_PROPERTIES)
        with self.state.lock:
            return json_response(obj.to_json(names, with_associations=list_param(request, "associations")))

    async def create(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
            body = await read_json(request)
            props = dict(body.get("properties") or {})
            self.state.check_property_names(object_type, props)
            if object_type == "contacts" and props.get("email"):
                invalid = email_problem(str(props["email"]))
                if invalid is not None:
                    raise RequestError(400, invalid, "VALIDATION_ERROR")
            if (
                object_type == "contacts"
                and props.get("email")
                and self.state.contact_by_email(str(props["email"]))
            ):
                existing = self.state.contact_by_email(str(props["email"]))
                assert existing is not None
                # hubspot.md §2.6: duplicate email -> 409
                raise RequestError(409, f"Contact already exists. Existing ID: {existing.id}", "CONFLICT")
            now = self._now()
            obj = self.state.create(
                object_type, {"email": props.pop("email", None)} if object_type == "contacts" else {}, now
            )
            problem = self.state.update(obj, props, now)
            if problem is not None:
                raise RequestError(400, problem.message, problem.category)
        except RequestError as exc:
            return request_error(exc)
        with self.state.lock:
            return json_response(
                obj.to_json(self._names(object_type, None, DEFAULT_LIST_PROPERTIES)), status=201
            )

    async def patch(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
            body = await read_json(request)
            props = dict(body.get("properties") or {})
            self.state.check_property_names(object_type, props)
            obj = self.state.lookup(
                object_type, request.match_info["objectId"], request.query.get("idProperty")
            )
            if obj is None:
                raise RequestError(404, "Object not found.", "OBJECT_NOT_FOUND")
            problem = self.state.update(obj, props, self._now())
            if problem is not None:
                raise RequestError(400, problem.message, problem.category)
        except RequestError as exc:
            return request_error(exc)
        with self.state.lock:
            return json_response(
                obj.to_json(
                    sorted(
                        set(props)
                        | {"hs_object_id", "lastmodifieddate"} & set(self.state.properties[object_type])
                    )
                )
            )

    async def batch_read(self, request: web.Request) -> web.Response:
        started = self.emu.clock.now()
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
            body = await read_json(request)
            inputs = self._inputs(body)
        except RequestError as exc:
            return request_error(exc)
        names = self._names(object_type, body.get("properties"), DEFAULT_LIST_PROPERTIES)
        id_property = body.get("idProperty")
        results, missing = [], []
        with self.state.lock:
            for item in inputs:
                obj = self.state.lookup(object_type, str(item.get("id", "")), id_property)
                if obj is None or obj.archived:
                    missing.append(str(item.get("id", "")))
                else:
                    results.append(obj.to_json(names))
        errors = (
            [
                ItemError(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {object_type.upper()[:-1]} objects, they may be "
                    "deleted or not exist. Check that ids are valid.",
                    missing,
                )
            ]
            if missing
            else []
        )
        return self._batch_body(results, errors, started)

    async def batch_update(self, request: web.Request) -> web.Response:
        started = self.emu.clock.now()
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
            body = await read_json(request)
            inputs = self._inputs(body)
            ids = [str(i.get("id", "")) for i in inputs]
            if len(set(ids)) != len(ids):
                raise RequestError(
                    400,
                    "Duplicate IDs found in batch input: "
                    + str(sorted({i for i in ids if ids.count(i) > 1})),
                )
            for item in inputs:
                if item.get("idProperty") == "email":
                    # hubspot.md §2.3: batch update by email fails (hubspot-api-nodejs#548)
                    raise RequestError(400, "Unable to perform update/upsert by non-unique 0-1 property")
                if not isinstance(item.get("properties"), dict):
                    raise RequestError(400, "Invalid input JSON: each input needs id and properties")
                self.state.check_property_names(object_type, item["properties"])
        except RequestError as exc:
            return request_error(exc)
        now = self._now()
        results: list[dict[str, Any]] = []
        errors: list[ItemError] = []
        missing: list[str] = []
        with self.state.lock:
            for item in inputs:
                obj = self.state.lookup(object_type, str(item.get("id")), item.get("idProperty"))
                if obj is None or obj.archived:
                    missing.append(str(item.get("id")))
                    continue
                problem = self.state.update(obj, item["properties"], now)
                if problem is not None:
                    errors.append(problem)
                else:
                    results.append(obj.to_json(sorted(set(item["properties"]) | {"hs_object_id"})))
        if missing:
            errors.append(
                ItemError(
                    "OBJECT_NOT_FOUND",
                    "Could not update some objects, they may be deleted or not exist.",
                    missing,
                )
            )
        return self._batch_body(results, errors, started)

    async def batch_upsert(self, request: web.Request) -> web.Response:
        started = self.emu.clock.now()
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
            body = await read_json(request)
            inputs = self._inputs(body)
            for item in inputs:
                self.state.check_property_names(object_type, dict(item.get("properties") or {}))
        except RequestError as exc:
            return request_error(exc)
        now = self._now()
        results: list[dict[str, Any]] = []
        errors: list[ItemError] = []
        with self.state.lock:
            for item in inputs:
                props = dict(item.get("properties") or {})
                id_property = item.get("idProperty")
                key = str(item.get("id", ""))
                obj: CrmObject | None = self.state.lookup(object_type, key, id_property)
                new = obj is None
                if obj is None:
                    seed = {"email": key} if (object_type == "contacts" and id_property == "email") else {}
                    invalid = email_problem(key) if "email" in seed else None
                    if invalid is not None:
                        errors.append(ItemError("VALIDATION_ERROR", invalid, [key]))
                        continue
                    if not seed and id_property and id_property != "hs_object_id":
                        seed = {id_property: key}
                    if not seed:
                        errors.append(
                            ItemError("OBJECT_NOT_FOUND", "Object not found for upsert by record ID.", [key])
                        )
                        continue
                    obj = self.state.create(object_type, seed, now)
                problem = self.state.update(obj, props, now)
                if problem is not None:
                    errors.append(problem)
                    continue
                row = obj.to_json(sorted(set(props) | {"hs_object_id"}))
                row["new"] = new
                results.append(row)
        return self._batch_body(results, errors, started)

    async def search(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
            body = await read_json(request)
            with self.state.lock:
                page = search_page(
                    list(self.state.objects[object_type].values()),
                    body,
                    self.state.properties[object_type],
                    DEFAULT_SEARCH_PROPERTIES[object_type],
                )
        except RequestError as exc:
            return request_error(exc)
        return json_response(page)
