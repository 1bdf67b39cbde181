"""Contacts v1 reads that carry a contact's form-submission history (hubspot.md §4.3).

* ``GET /contacts/v1/contact/vids/batch`` (``vid`` repeated, at most 100; ``formSubmissionMode``
  ``all|none|newest|oldest``, default ``newest``; ``property`` repeated): a JSON object keyed by vid
  (DOCS https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/v1/get-contacts-v1-contactvids-batch);
* ``GET /contacts/v1/contact/vid/{vid}/profile`` (the same, one contact).

Each contact's ``form-submissions`` items: ``conversion-id``, ``timestamp`` (epoch ms), ``form-id``,
``portal-id``, ``title``, ``form-type``, ``contact-associated-by``, ``meta-data`` and, when the form
was submitted on a page, ``page-url``, ``canonical-url``, ``page-title`` (Airbyte's
``contacts_form_submissions`` schema and its recorded fixture, which has no page-url). These reads
outlive the v1 lists sunset of 2026-04-30, without list memberships
(https://developers.hubspot.com/changelog/upcoming-sunset-v1-lists-api). Option ``contacts_v1 =
false`` answers 404 instead, as a removed API would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.hubspot.routes.common import error
from leadsync.sandbox.hubspot.state import CrmObject, ms
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.hubspot.host import PortalHost

__all__ = ["LegacyContactRoutes"]

BATCH_LIMIT = 100  # "Requests should be limited to 100 records in a single request" (docs above)
MODES = ("all", "none", "newest", "oldest")


class LegacyContactRoutes:
    def __init__(self, emulator: PortalHost) -> None:
        self.emu = emulator
        self.state = emulator.state

    def add(self, app: web.Application) -> None:
        app.router.add_get("/contacts/v1/contact/vids/batch", self.batch)
        app.router.add_get("/contacts/v1/contact/vids/batch/", self.batch)
        app.router.add_get("/contacts/v1/contact/vid/{vid}/profile", self.profile)

    def _gone(self) -> web.Response | None:
        if self.emu.options.extra.get("contacts_v1", True):
            return None
        return error(404, "This API has been sunset.", "OBJECT_NOT_FOUND")

    def _render(self, contact: CrmObject, mode: str, properties: list[str] | None) -> dict[str, Any]:
        names = (
            properties if properties else [k for k, v in contact.properties.items() if v not in (None, "")]
        )
        submissions = sorted(
            self.state.form_submissions.get(contact.id, []), key=lambda s: s["timestamp"], reverse=True
        )
        if mode == "none":
            submissions = []
        elif mode == "newest":
            submissions = submissions[:1]
        elif mode == "oldest":
            submissions = submissions[-1:]
        vid = int(contact.id)
        return {
            "vid": vid,
            "canonical-vid": vid,
            "merged-vids": [],
            "portal-id": self.emu.portal_id,
            "is-contact": True,
            "properties": {
                name: {"value": contact.properties[name]}
                for name in names
                if contact.properties.get(name) not in (None, "")
            },
            "form-submissions": [{**s, "portal-id": self.emu.portal_id} for s in submissions],
            "identity-profiles": [
                {
                    "vid": vid,
                    "saved-at-timestamp": ms(contact.created_at),
                    "deleted-changed-timestamp": 0,
                    "identities": [
                        {
                            "type": "EMAIL",
                            "value": contact.properties.get("email") or "",
                            "timestamp": ms(contact.created_at),
                            "is-primary": True,
                        }
                    ],
                }
            ],
            "merge-audits": [],
        }

    @staticmethod
    def _mode(request: web.Request) -> str | None:
        mode = request.query.get("formSubmissionMode", "newest").lower()
        return mode if mode in MODES else None

    async def batch(self, request: web.Request) -> web.Response:
        if (gone := self._gone()) is not None:
            return gone
        vids = request.query.getall("vid", [])
        mode = self._mode(request)
        if mode is None:
            return error(400, f"formSubmissionMode must be one of {', '.join(MODES)}")
        if len(vids) > BATCH_LIMIT:
            return error(400, f"Requests are limited to {BATCH_LIMIT} vids, got {len(vids)}")
        properties = request.query.getall("property", []) or None
        body: dict[str, Any] = {}
        with self.state.lock:
            for vid in vids:
                contact = self.state.objects["contacts"].get(str(vid).strip())
                if contact is not None and not contact.archived:  # invalid vids are ignored (docs above)
                    body[contact.id] = self._render(contact, mode, properties)
        return json_response(body)

    async def profile(self, request: web.Request) -> web.Response:
        if (gone := self._gone()) is not None:
            return gone
        mode = self._mode(request)
        if mode is None:
            return error(400, f"formSubmissionMode must be one of {', '.join(MODES)}")
        with self.state.lock:
            contact = self.state.objects["contacts"].get(request.match_info["vid"])
            if contact is None or contact.archived:
                return error(404, "contact does not exist", "OBJECT_NOT_FOUND")
            return json_response(self._render(contact, mode, request.query.getall("property", []) or None))
