"""The portal's directory: forms (Forms API v3), owners (CRM owners v3) and lists (Lists v3).

What the official SDK and common clients read in their default setup (``client.marketing.forms``,
``client.crm.owners``, ``client.crm.lists``); none of these has a spec beside the repo, so the shapes
follow the SDK's models (``hubspot-api-client`` 12.0.0), which the tests read them through.

* Forms: every form a world conversion names (``recent_conversion_event_name``), one HubSpot form
  each with an email field; ``GET /marketing/v3/forms/`` pages with ``after`` (default 20).
* Owners: the sales team the meetings and calls belong to; ``GET /crm/v3/owners/``.
* Lists: "All contacts", "Customers" (lifecycle stage customer) and one list per form (its
  submitters), sizes and members computed from the portal as it is now.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.hubspot.routes.common import error, read_json, request_error
from leadsync.sandbox.hubspot.state import CrmObject, RequestError, iso
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.hubspot.host import PortalHost

__all__ = ["DirectoryRoutes"]

FORMS_PAGE, FORMS_MAX = 20, 50
OWNERS_PAGE, OWNERS_MAX = 100, 500
LISTS_SEARCH_MAX = 500
CONTACT_OBJECT = "0-1"


def _page(request: web.Request, default: int, maximum: int) -> tuple[int, int]:
    limit = int(request.query.get("limit", str(default)))
    if not 1 <= limit <= maximum:
        raise RequestError(400, f"limit must be between 1 and {maximum}")
    after = int(request.query.get("after") or 0)
    return limit, after


def _paging(request: web.Request, after: int, limit: int, total: int) -> dict[str, Any]:
    if after + limit >= total:
        return {}
    nxt = str(after + limit)
    return {
        "paging": {
            "next": {"after": nxt, "link": f"{request.scheme}://{request.host}{request.path}?after={nxt}"}
        }
    }


class DirectoryRoutes:
    def __init__(self, emulator: PortalHost) -> None:
        self.emu = emulator
        self.state = emulator.state

    def add(self, app: web.Application) -> None:
        for path in ("/marketing/v3/forms", "/marketing/v3/forms/"):
            app.router.add_get(path, self.forms)
        app.router.add_get("/marketing/v3/forms/{formId}", self.form)
        for path in ("/crm/v3/owners", "/crm/v3/owners/"):
            app.router.add_get(path, self.owners)
        app.router.add_get("/crm/v3/owners/{ownerId}", self.owner)
        app.router.add_post("/crm/v3/lists/search", self.search_lists)
        for path in ("/crm/v3/lists", "/crm/v3/lists/"):
            app.router.add_get(path, self.get_lists)
        app.router.add_get("/crm/v3/lists/{listId}", self.get_list)
        app.router.add_get("/crm/v3/lists/{listId}/memberships", self.memberships)

    # --- forms ------------------------------------------------------------------------------

    @staticmethod
    def _form(form: dict[str, Any]) -> dict[str, Any]:
        created: datetime = form["createdAt"]
        return {
            "id": form["id"],
            "name": form["name"],
            "formType": "hubspot",
            "createdAt": iso(created),
            "updatedAt": iso(form["updatedAt"]),
            "archived": False,
            "fieldGroups": [
                {
                    "groupType": "default_group",
                    "richTextType": "text",
                    "fields": [
                        {
                            "objectTypeId": CONTACT_OBJECT,
                            "name": "email",
                            "label": "Email",
                            "required": True,
                            "hidden": False,
                            "fieldType": "email",
                            "validation": {"blockedEmailDomains": [], "useDefaultBlockList": False},
                        }
                    ],
                }
            ],
            "configuration": {
                "language": "en",
                "cloneable": True,
                "postSubmitAction": {"type": "thank_you", "value": "Thanks for submitting the form."},
                "editable": True,
                "archivable": True,
                "recaptchaEnabled": False,
                "notifyContactOwner": False,
                "notifyRecipients": [],
                "createNewContactForNewEmail": False,
                "prePopulateKnownValues": True,
                "allowLinkToResetKnownValues": False,
                "lifecycleStages": [],
            },
            "displayOptions": {
                "renderRawHtml": False,
                "theme": "default_style",
                "submitButtonText": "Submit",
                "style": {
                    "fontFamily": "arial, helvetica, sans-serif",
                    "backgroundWidth": "100%",
                    "labelTextColor": "#33475b",
                    "labelTextSize": "14px",
                    "helpTextColor": "#7C98B6",
                    "helpTextSize": "11px",
                    "legalConsentTextColor": "#33475b",
                    "legalConsentTextSize": "14px",
                    "submitColor": "#ff7a59",
                    "submitAlignment": "left",
                    "submitFontColor": "#ffffff",
                    "submitSize": "12px",
                },
                "cssClass": "",
            },
            "legalConsentOptions": {"type": "none"},
        }

    async def forms(self, request: web.Request) -> web.Response:
        try:
            limit, after = _page(request, FORMS_PAGE, FORMS_MAX)
        except ValueError:
            return error(400, "limit and after must be integers")
        except RequestError as exc:
            return request_error(exc)
        with self.state.lock:
            forms = sorted(self.state.forms.values(), key=lambda f: (f["createdAt"], f["name"]))
            body: dict[str, Any] = {"results": [self._form(f) for f in forms[after : after + limit]]}
            body.update(_paging(request, after, limit, len(forms)))
        return json_response(body)

    async def form(self, request: web.Request) -> web.Response:
        with self.state.lock:
            for form in self.state.forms.values():
                if form["id"] == request.match_info["formId"]:
                    return json_response(self._form(form))
        return error(404, "Form not found.", "OBJECT_NOT_FOUND")

    # --- owners -----------------------------------------------------------------------------

    async def owners(self, request: web.Request) -> web.Response:
        try:
            limit, after = _page(request, OWNERS_PAGE, OWNERS_MAX)
        except ValueError:
            return error(400, "limit and after must be integers")
        except RequestError as exc:
            return request_error(exc)
        email = request.query.get("email")
        with self.state.lock:
            owners = [o for o in self.state.owners if not email or o["email"] == email.lower()]
        body: dict[str, Any] = {"results": owners[after : after + limit]}
        body.update(_paging(request, after, limit, len(owners)))
        return json_response(body)

    async def owner(self, request: web.Request) -> web.Response:
        key = request.match_info["ownerId"]
        by_user = request.query.get("idProperty") == "userId"
        with self.state.lock:
            for owner in self.state.owners:
                if (str(owner["userId"]) if by_user else owner["id"]) == key:
                    return json_response(owner)
        return error(404, f"Owner {key} not found.", "OBJECT_NOT_FOUND")

    # --- lists ------------------------------------------------------------------------------

    def _lists(self) -> list[tuple[dict[str, Any], list[CrmObject]]]:
        """Every list with its members, as the portal is now (call with the lock held)."""
        contacts = [c for c in self.state.objects["contacts"].values() if not c.archived]
        start = self.emu.world_start
        defined: list[tuple[str, str, list[CrmObject]]] = [
            ("1", "All contacts", contacts),
            ("2", "Customers", [c for c in contacts if c.properties.get("lifecyclestage") == "customer"]),
        ]
        forms = sorted(self.state.forms.values(), key=lambda f: (f["createdAt"], f["name"]))
        for number, form in enumerate(forms, start=3):
            submitted = {
                cid
                for cid, items in self.state.form_submissions.items()
                if any(item["form-id"] == form["id"] for item in items)
            }
            defined.append((str(number), f"Form: {form['name']}", [c for c in contacts if c.id in submitted]))
        out = []
        for list_id, name, members in defined:
            latest = max((c.created_at for c in members), default=start)
            out.append(
                (
                    {
                        "listId": list_id,
                        "listVersion": 1,
                        "name": name,
                        "objectTypeId": CONTACT_OBJECT,
                        "processingStatus": "COMPLETE",
                        "processingType": "DYNAMIC",
                        "createdAt": iso(start),
                        "updatedAt": iso(latest),
                        "filtersUpdatedAt": iso(start),
                        "createdById": "9100001",
                        "updatedById": "9100001",
                        "size": len(members),
                    },
                    members,
                )
            )
        return out

    async def search_lists(self, request: web.Request) -> web.Response:
        try:
            body = await read_json(request)
            count = int(body.get("count") or 20)
            offset = int(body.get("offset") or 0)
            if not 1 <= count <= LISTS_SEARCH_MAX:
                raise RequestError(400, f"count must be between 1 and {LISTS_SEARCH_MAX}")
        except (TypeError, ValueError):
            return error(400, "count and offset must be integers")
        except RequestError as exc:
            return request_error(exc)
        query = str(body.get("query") or "").lower()
        wanted_ids = {str(i) for i in body.get("listIds") or []}
        types = set(body.get("processingTypes") or [])
        with self.state.lock:
            found = [
                (defn, members)
                for defn, members in self._lists()
                if query in defn["name"].lower()
                and (not wanted_ids or defn["listId"] in wanted_ids)
                and (not types or defn["processingType"] in types)
            ]
        page = found[offset : offset + count]
        results = []
        for defn, members in page:
            item = {k: v for k, v in defn.items() if k != "size"}
            last = max((m.created_at for m in members), default=None)
            item["additionalProperties"] = {
                "hs_list_size": str(defn["size"]),
                "hs_last_record_added_at": "" if last is None else str(int(last.timestamp() * 1000)),
            }
            results.append(item)
        return json_response(
            {
                "lists": results,
                "total": len(found),
                "offset": offset + len(page),
                "hasMore": offset + count < len(found),
            }
        )

    async def get_lists(self, request: web.Request) -> web.Response:
        wanted = set(request.query.getall("listIds", []))
        with self.state.lock:
            lists = [defn for defn, _ in self._lists() if not wanted or defn["listId"] in wanted]
        return json_response({"lists": lists})

    async def get_list(self, request: web.Request) -> web.Response:
        with self.state.lock:
            for defn, _ in self._lists():
                if defn["listId"] == request.match_info["listId"]:
                    return json_response({"list": defn})
        return error(404, f"List {request.match_info['listId']} does not exist.", "OBJECT_NOT_FOUND")

    async def memberships(self, request: web.Request) -> web.Response:
        try:
            limit, after = _page(request, 100, 250)
        except ValueError:
            return error(400, "limit and after must be integers")
        except RequestError as exc:
            return request_error(exc)
        with self.state.lock:
            for defn, members in self._lists():
                if defn["listId"] == request.match_info["listId"]:
                    ordered = sorted(members, key=lambda c: int(c.id))
                    body: dict[str, Any] = {
                        "results": [
                            {"recordId": c.id, "membershipTimestamp": iso(c.created_at)}
                            for c in ordered[after : after + limit]
                        ]
                    }
                    body.update(_paging(request, after, limit, len(ordered)))
                    return json_response(body)
        return error(404, f"List {request.match_info['listId']} does not exist.", "OBJECT_NOT_FOUND")
