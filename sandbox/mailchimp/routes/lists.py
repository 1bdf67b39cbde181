"""Audiences: ``GET /lists``, ``GET /lists/{list_id}`` and batch subscribe ``POST /lists/{list_id}``
(mailchimp.md §3, §8.2)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leadsync.sandbox.mailchimp.routes.common import Api, BadRequest, audience_or_404, handler, ok, parse_body
from leadsync.sandbox.mailchimp.shapes import page_params, subscriber_hash
from leadsync.sandbox.mailchimp.state import MergeValueError

__all__ = ["routes"]

# mailchimp.md §8.2: up to 500 members per batch subscribe request.
BATCH_MAX = 500
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")


def routes(api: Api) -> list[web.RouteDef]:
    state = api.state

    def get_lists(request: web.Request, _: bytes) -> web.Response:
        count, offset = page_params(request.query)
        audiences = sorted(state.audiences.values(), key=lambda a: a.date_created)
        items = [a.render(*state.campaign_count(a.id)) for a in audiences[offset : offset + count]]
        body = {
            "lists": items,
            "total_items": len(audiences),
            "constraints": {
                "may_create": True,
                "max_instances": 100,
                "current_total_instances": len(audiences),
            },
            "_links": [],
        }
        return ok(body, request.query)

    def get_list(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        return ok(audience.render(*state.campaign_count(audience.id)), request.query)

    def batch_subscribe(request: web.Request, raw: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        body = parse_body(raw)
        members = body.get("members")
        if not isinstance(members, list):
            raise BadRequest(
                400,
                "Schema describes array, object found instead",
                title="Invalid Resource",
                errors=[{"field": "members", "message": "Schema describes array"}],
            )
        if len(members) > BATCH_MAX:
            raise BadRequest(
                400,
                f"You may only add or update up to {BATCH_MAX} members at a time.",
                title="Invalid Resource",
            )
        update_existing = bool(body.get("update_existing", False))
        skip_duplicates = request.query.get("skip_duplicate_check") == "true"
        new: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()

        def fail(
            email: str, message: str, code: str = "ERROR_GENERIC", field: str = "", field_message: str = ""
        ) -> None:
            errors.append(
                {
                    "email_address": email,
                    "error": message,
                    "error_code": code,
                    "field": field,
                    "field_message": field_message,
                }
            )

        for item in members:
            if not isinstance(item, dict) or not isinstance(item.get("email_address"), str):
                fail("", "An email address must contain a single @.")
                continue
            email = item["email_address"].strip()
            if "@" not in email or email.count("@") != 1:
                fail(email, f"{email} looks fake or invalid, please enter a real email address.")
                continue
            key = subscriber_hash(email)
            if key in seen:
                if not skip_duplicates:
                    fail(email, f"{email} was already in the request.")
                continue
            seen.add(key)
            if key in audience.forgotten:
                fail(
                    email,
                    f"{email} was permanently deleted and cannot be re-imported. "
                    "The contact must re-subscribe to get back on the list.",
                )
                continue
            status = item.get("status")
            if status is not None and status not in STATUSES:
                fail(
                    email, "Invalid status", field="status", field_message=f"{status!r} is not a valid status"
                )
                continue
            values, bad = audience.coerce_merge(dict(item.get("merge_fields") or {}))
            if bad:
                first: MergeValueError = bad[0]
                fail(email, "Your merge fields were invalid.", field=first.tag, field_message=first.message)
                continue
            member = audience.members.get(key)
            if member is not None and not update_existing:
                # INFERRED (mailchimp.md §8.2): existing addresses come back as ERROR_CONTACT_EXISTS.
                fail(
                    email,
                    f"{email} is already a list member, do you want to update? "
                    "please provide update_existing:true in the request body",
                    "ERROR_CONTACT_EXISTS",
                )
                continue
            at = state.stamp()
            if member is None:
                if status is None:
                    fail(
                        email,
                        "Please provide a status for new members.",
                        field="status",
                        field_message="status is required for new members",
                    )
                    continue
                member = state.new_member(audience, email, status, at)
                member.merge_fields.update(values)
                new.append(member.render(audience.id, audience.merge_fields))
                continue
            # update_existing: the status changes only when the item names one (§8.2).
            if status is not None and status != member.status:
                member.status = status
            member.merge_fields.update(values)
            member.last_changed = at
            if state.on_member_write is not None:
                state.on_member_write(audience, member)
            updated.append(member.render(audience.id, audience.merge_fields))
        return ok(
            {
                "new_members": new,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(new),
                "total_updated": len(updated),
                "error_count": len(errors),
                "_links": [],
            }
        )

    return [
        web.get("/3.0/lists", handler(api, get_lists)),
        web.get("/3.0/lists/{list_id}", handler(api, get_list)),
        web.post("/3.0/lists/{list_id}", handler(api, batch_subscribe)),
    ]
