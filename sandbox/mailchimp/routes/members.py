"""Audience members, their tags and activity (mailchimp.md §4, §6, §7)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leadsync.sandbox.mailchimp.routes.common import Api, BadRequest, audience_or_404, handler, ok, parse_body
from leadsync.sandbox.mailchimp.shapes import fmt_time, page_params, parse_time_param, subscriber_hash
from leadsync.sandbox.mailchimp.state import Audience, Member

__all__ = ["routes"]

STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")
SORT_FIELDS = ("timestamp_opt", "timestamp_signup", "last_changed")


def _invalid(errors: list[dict[str, str]]) -> BadRequest:
    return BadRequest(400, "Your merge fields were invalid.", title="Invalid Resource", errors=errors)


def routes(api: Api) -> list[web.RouteDef]:
    state = api.state

    def member_or_404(audience: Audience, key: str) -> Member:
        member = audience.find(key)
        if member is None:
            raise BadRequest(404, "The requested resource could not be found.")
        return member

    def apply_write(
        audience: Audience, member: Member, body: dict[str, Any], *, allowed: tuple[str, ...]
    ) -> None:
        values, bad = audience.coerce_merge(dict(body.get("merge_fields") or {}))
        if bad:
            raise _invalid([{"field": e.tag, "message": e.message} for e in bad])
        status = body.get("status")
        if status is not None:
            if status not in allowed:
                raise BadRequest(400, f"Invalid status {status!r}.", title="Invalid Resource")
            if member.status != status and status == "subscribed":
                member.timestamp_opt = state.clock.now()
            member.status = status
        if "vip" in body:
            member.vip = bool(body["vip"])
        email = body.get("email_address")
        if isinstance(email, str) and email and subscriber_hash(email) != member.id:
            audience.members.pop(member.id, None)
            member.email = email
            audience.members[member.id] = member
        member.merge_fields.update(values)
        member.last_changed = state.stamp()
        if state.on_member_write is not None:
            state.on_member_write(audience, member)

    def list_members(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        q = request.query
        count, offset = page_params(q)
        members = list(audience.members.values())
        status = q.get("status")
        if status:
            members = [m for m in members if m.status == status]
        else:
            # UNCONFIRMED (§4.1) whether archived members come back without a status filter; they do not here.
            members = [m for m in members if m.status != "archived"]
        since = parse_time_param(q.get("since_last_changed"), "since_last_changed")
        before = parse_time_param(q.get("before_last_changed"), "before_last_changed")
        # Mailchimp compares at its one-second resolution; "changed after" (§4.1) read as inclusive
        # of the second named, which a connector with a lookback handles either way.
        if since is not None:
            members = [m for m in members if m.last_changed.replace(microsecond=0) >= since]
        if before is not None:
            members = [m for m in members if m.last_changed.replace(microsecond=0) <= before]
        since_opt = parse_time_param(q.get("since_timestamp_opt"), "since_timestamp_opt")
        if since_opt is not None:
            members = [m for m in members if m.timestamp_opt and m.timestamp_opt >= since_opt]
        sort_field = q.get("sort_field")
        if sort_field:
            if sort_field not in SORT_FIELDS:
                raise BadRequest(400, f"Invalid sort_field {sort_field!r}.", title="Invalid Resource")
            members.sort(
                key=lambda m: (_sort_value(m, sort_field), m.web_id), reverse=q.get("sort_dir") == "DESC"
            )
        page = members[offset : offset + count]
        body = {
            "members": [m.render(audience.id, audience.merge_fields) for m in page],
            "list_id": audience.id,
            "total_items": len(members),
            "_links": [],
        }
        return ok(body, q)

    def get_member(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        member = member_or_404(audience, request.match_info["subscriber_hash"])
        return ok(member.render(audience.id, audience.merge_fields), request.query)

    def add_member(request: web.Request, raw: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        body = parse_body(raw)
        email = body.get("email_address")
        status = body.get("status")
        if not isinstance(email, str) or "@" not in email or status not in STATUSES[:-1]:
            raise BadRequest(
                400,
                "The resource submitted could not be validated.",
                title="Invalid Resource",
                errors=[{"field": "email_address" if status else "status", "message": "Required"}],
            )
        key = subscriber_hash(email)
        if key in audience.forgotten:
            raise BadRequest(
                400,
                f"{email} was permanently deleted and cannot be re-imported. The contact must "
                "re-subscribe to get back on the list.",
                title="Forgotten Email Not Subscribed",
            )
        if key in audience.members:
            # §4.3: POST fails for a present member.
            raise BadRequest(
                400,
                f"{email} is already a list member. Use PUT to insert or update list members.",
                title="Member Exists",
            )
        values, bad = audience.coerce_merge(dict(body.get("merge_fields") or {}))
        if bad:
            raise _invalid([{"field": e.tag, "message": e.message} for e in bad])
        at = state.stamp()
        member = state.new_member(audience, email, status, at)
        member.merge_fields.update(values)
        tags = body.get("tags") or []
        state.set_tags(member, [(str(t), True) for t in tags], at)
        return ok(member.render(audience.id, audience.merge_fields))

    def put_member(request: web.Request, raw: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        key = request.match_info["subscriber_hash"]
        body = parse_body(raw)
        member = audience.find(key)
        if member is None:
            # §4.3: PUT is an upsert; status_if_new decides the status of a new member.
            email = body.get("email_address")
            status = body.get("status_if_new") or body.get("status")
            if not isinstance(email, str) or "@" not in email or status not in STATUSES[:-1]:
                raise BadRequest(
                    400,
                    "The resource submitted could not be validated.",
                    title="Invalid Resource",
                    errors=[{"field": "status_if_new", "message": "Required for new members"}],
                )
            if subscriber_hash(email) in audience.forgotten:
                raise BadRequest(
                    400,
                    f"{email} was permanently deleted and cannot be re-imported.",
                    title="Forgotten Email Not Subscribed",
                )
            if subscriber_hash(email) != key.lower() and key.lower() != email.lower():
                raise BadRequest(
                    400, "The subscriber hash does not match the email address.", title="Invalid Resource"
                )
            member = state.new_member(audience, email, status, state.stamp())
            apply_write(
                audience, member, {k: v for k, v in body.items() if k != "status"}, allowed=STATUSES[:-1]
            )
        else:
            apply_write(audience, member, body, allowed=STATUSES[:-1])
        return ok(member.render(audience.id, audience.merge_fields))

    def patch_member(request: web.Request, raw: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        member = member_or_404(audience, request.match_info["subscriber_hash"])
        apply_write(audience, member, parse_body(raw), allowed=STATUSES[:4])
        return ok(member.render(audience.id, audience.merge_fields))

    def archive_member(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        member = member_or_404(audience, request.match_info["subscriber_hash"])
        member.status = "archived"  # §4.3: DELETE archives
        member.last_changed = state.stamp()
        return web.Response(status=204)

    def delete_permanent(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        member = member_or_404(audience, request.match_info["subscriber_hash"])
        audience.members.pop(member.id, None)
        audience.forgotten.add(member.id)
        return web.Response(status=204)

    def get_tags(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        member = member_or_404(audience, request.match_info["subscriber_hash"])
        count, offset = page_params(request.query)
        tags = sorted(member.tags.items(), key=lambda item: item[1][1])
        body = {
            # §6: the doc example shows date_added as "2018-07-16 19:49:42", not ISO.
            "tags": [
                {"id": tag_id, "name": name, "date_added": added.strftime("%Y-%m-%d %H:%M:%S")}
                for name, (tag_id, added) in tags[offset : offset + count]
            ],
            "total_items": len(tags),
            "_links": [],
        }
        return ok(body, request.query)

    def post_tags(request: web.Request, raw: bytes) -> web.StreamResponse:
        audience = audience_or_404(api, request.match_info["list_id"])
        member = member_or_404(audience, request.match_info["subscriber_hash"])
        body = parse_body(raw)
        tags = body.get("tags")
        if not isinstance(tags, list):
            raise BadRequest(
                400,
                "The resource submitted could not be validated.",
                title="Invalid Resource",
                errors=[{"field": "tags", "message": "Schema describes array"}],
            )
        changes: list[tuple[str, bool]] = []
        for tag in tags:
            if (
                not isinstance(tag, dict)
                or not isinstance(tag.get("name"), str)
                or tag.get("status")
                not in (
                    "active",
                    "inactive",
                )
            ):
                raise BadRequest(
                    400, "Each tag needs a name and a status of active or inactive.", title="Invalid Resource"
                )
            changes.append((tag["name"].strip()[:100], tag["status"] == "active"))
        at = state.stamp()
        if state.set_tags(member, changes, at):
            member.last_changed = at
        if body.get("is_syncing"):
            state.synced_tag_writes += 1  # automations would not fire (§6)
        else:
            state.automation_tag_writes += 1
        # §6, §14.6: 204 with no body and no Content-Type.
        return web.Response(status=204)

    def activity_feed(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        member = member_or_404(audience, request.match_info["subscriber_hash"])
        count, offset = page_params(request.query)
        items = sorted(
            state.feeds.get((audience.id, member.id), []), key=lambda i: i.created_at, reverse=True
        )
        filters = request.query.getall("activity_filters", [])
        wanted = {f for value in filters for f in value.split(",") if f}
        if wanted:
            items = [i for i in items if i.activity_type in wanted]
        body = {
            "email_id": member.id,
            "list_id": audience.id,
            "activity": [i.render() for i in items[offset : offset + count]],
            "total_items": len(items),
            "_links": [],
        }
        return ok(body, request.query)

    def activity(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        member = member_or_404(audience, request.match_info["subscriber_hash"])
        legacy = {
            "sent": "sent",
            "open": "open",
            "click": "click",
            "bounce": "bounce",
            "unsub": "unsub",
            "order": "ecomm",
        }
        items = sorted(
            state.feeds.get((audience.id, member.id), []), key=lambda i: i.created_at, reverse=True
        )
        rows: list[dict[str, Any]] = []
        for item in items:
            action = legacy.get(item.activity_type)
            if action is None:
                continue
            row = {
                "action": action,
                "timestamp": fmt_time(item.created_at),
                "campaign_id": item.campaign_id,
                "title": item.campaign_title,
            }
            if "link_clicked" in item.extra:
                row["url"] = item.extra["link_clicked"]
            if "bounce_type" in item.extra:
                row["type"] = item.extra["bounce_type"]
            rows.append(row)
        body = {
            "activity": rows[:50],  # §7: the last 50 events only
            "email_id": member.id,
            "list_id": audience.id,
            "contact_id": member.contact_id,
            "total_items": min(len(rows), 50),
            "_links": [],
        }
        return ok(body, request.query)

    base = "/3.0/lists/{list_id}/members"
    one = base + "/{subscriber_hash}"
    return [
        web.get(base, handler(api, list_members)),
        web.post(base, handler(api, add_member)),
        web.get(one, handler(api, get_member)),
        web.put(one, handler(api, put_member)),
        web.patch(one, handler(api, patch_member)),
        web.delete(one, handler(api, archive_member)),
        web.post(one + "/actions/delete-permanent", handler(api, delete_permanent)),
        web.get(one + "/tags", handler(api, get_tags)),
        web.post(one + "/tags", handler(api, post_tags)),
        web.get(one + "/activity-feed", handler(api, activity_feed)),
        web.get(one + "/activity", handler(api, activity)),
    ]


def _sort_value(member: Member, field: str) -> str:
    value = getattr(member, field)
    return fmt_time(value) if value is not None else ""
