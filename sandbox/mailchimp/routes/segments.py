"""Tags as static segments: list them, read one and its members, look a tag up by name, create
one, add and remove members in bulk (mailchimp.md §6; the spec's ``/lists/{list_id}/segments``
and ``/tag-search``).

Tags and static segments are one thing in Mailchimp ("static segments are now known as tags",
spec), so a segment's id is its tag's id. The bulk endpoint has no ``is_syncing``: every write
through it counts as one that would fire tag automations.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leadsync.sandbox.mailchimp.routes.common import Api, BadRequest, audience_or_404, handler, ok, parse_body
from leadsync.sandbox.mailchimp.shapes import fmt_time, page_params
from leadsync.sandbox.mailchimp.state import Audience, Member

__all__ = ["routes"]

BULK_MAX = 500  # §6: members_to_add and members_to_remove, 500 each


def _list_tags(audience: Audience) -> dict[str, int]:
    """The audience's tags: those on any member, and those created empty."""
    tags = dict(audience.tags)
    for member in audience.members.values():
        for name, (tag_id, _) in member.tags.items():
            tags.setdefault(name, tag_id)
    return tags


def _emails(body: dict[str, object], field: str) -> list[str]:
    value = body.get(field) or []
    if not isinstance(value, list) or not all(isinstance(email, str) for email in value):
        raise BadRequest(
            400,
            "The resource submitted could not be validated.",
            title="Invalid Resource",
            errors=[{"field": field, "message": "Schema describes array of strings"}],
        )
    if len(value) > BULK_MAX:
        raise BadRequest(
            400,
            f"You may only add or remove {BULK_MAX} members at a time.",
            title="Invalid Resource",
            errors=[{"field": field, "message": f"at most {BULK_MAX} items"}],
        )
    return value


def _members_of(audience: Audience, name: str, query: Any) -> list[Member]:
    """Members holding the tag; cleaned, transactional and unsubscribed ones only when asked
    (the spec's ``include_cleaned``, ``include_transactional``, ``include_unsubscribed``)."""
    shown = {"subscribed", "pending", "archived"}
    for status, flag in (
        ("cleaned", "include_cleaned"),
        ("transactional", "include_transactional"),
        ("unsubscribed", "include_unsubscribed"),
    ):
        if str(query.get(flag, "false")).lower() == "true":
            shown.add(status)
    return [m for m in audience.members.values() if name in m.tags and m.status in shown]


def routes(api: Api) -> list[web.RouteDef]:
    state = api.state

    def render_segment(audience: Audience, name: str, tag_id: int, query: Any) -> dict[str, Any]:
        members = _members_of(audience, name, query)
        added = [m.tags[name][1] for m in members]
        created = min(added, default=None) or state.clock.now()
        return {
            "id": tag_id,
            "name": name,
            "member_count": len(members),
            "type": "static",
            "created_at": fmt_time(created),
            "updated_at": fmt_time(max(added, default=created)),
            "options": {"match": "any", "conditions": []},
            "list_id": audience.id,
            "_links": [],
        }

    def segment_or_404(audience: Audience, raw_id: str) -> tuple[str, int]:
        try:
            segment_id = int(raw_id)
        except ValueError:
            raise BadRequest(404, "The requested resource could not be found.") from None
        for name, tag_id in _list_tags(audience).items():
            if tag_id == segment_id:
                return name, tag_id
        raise BadRequest(404, "The requested resource could not be found.")

    def list_segments(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        count, offset = page_params(request.query)
        kind = request.query.get("type")
        found = (
            []
            if kind not in (None, "", "static")
            else sorted(_list_tags(audience).items(), key=lambda t: t[1])
        )
        return ok(
            {
                "segments": [
                    render_segment(audience, name, tag_id, request.query)
                    for name, tag_id in found[offset : offset + count]
                ],
                "list_id": audience.id,
                "total_items": len(found),
                "_links": [],
            },
            request.query,
        )

    def get_segment(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        name, tag_id = segment_or_404(audience, request.match_info["segment_id"])
        return ok(render_segment(audience, name, tag_id, request.query), request.query)

    def segment_members(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        name, _ = segment_or_404(audience, request.match_info["segment_id"])
        count, offset = page_params(request.query)
        members = _members_of(audience, name, request.query)
        return ok(
            {
                "members": [
                    m.render(audience.id, audience.merge_fields) for m in members[offset : offset + count]
                ],
                "total_items": len(members),
                "_links": [],
            },
            request.query,
        )

    def tag_search(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        # spec: "compared to each tag as a prefix"; no name: every tag
        prefix = request.query.get("name", "")
        found = sorted(
            (name, tag_id) for name, tag_id in _list_tags(audience).items() if name.startswith(prefix)
        )
        return ok(
            {"tags": [{"id": tag_id, "name": name} for name, tag_id in found], "total_items": len(found)}
        )

    def create_segment(request: web.Request, raw: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        body = parse_body(raw)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BadRequest(
                400,
                "The resource submitted could not be validated.",
                title="Invalid Resource",
                errors=[{"field": "name", "message": "This value should not be blank."}],
            )
        if "static_segment" not in body:
            raise BadRequest(
                400, "The sandbox emulates static segments (tags) only.", title="Invalid Resource"
            )
        name = name.strip()[:100]
        if name in _list_tags(audience):
            raise BadRequest(400, f"A segment named {name!r} already exists.", title="Invalid Resource")
        at = state.stamp()
        tag_id = state.tag_id(name)
        audience.tags[name] = tag_id
        count = 0
        for email in _emails(body, "static_segment"):
            member = audience.find(email)
            if member is not None and state.set_tags(member, [(name, True)], at):
                member.last_changed = at
                count += 1
        return ok(
            {
                "id": tag_id,
                "name": name,
                "member_count": count,
                "type": "static",
                "created_at": fmt_time(at),
                "updated_at": fmt_time(at),
                "options": {"match": "any", "conditions": []},
                "list_id": audience.id,
                "_links": [],
            }
        )

    def add_remove(request: web.Request, raw: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        try:
            segment_id = int(request.match_info["segment_id"])
        except ValueError:
            raise BadRequest(404, "The requested resource could not be found.") from None
        name = next((n for n, tag_id in _list_tags(audience).items() if tag_id == segment_id), None)
        if name is None:
            raise BadRequest(404, "The requested resource could not be found.")
        body = parse_body(raw)
        to_add, to_remove = _emails(body, "members_to_add"), _emails(body, "members_to_remove")
        at = state.stamp()
        added, removed = [], []
        # §6: emails not on the list are ignored
        for emails, active, done in ((to_add, True, added), (to_remove, False, removed)):
            for email in emails:
                member = audience.find(email)
                if member is not None and state.set_tags(member, [(name, active)], at):
                    member.last_changed = at
                    done.append(member.render(audience.id, audience.merge_fields))
        state.automation_tag_writes += 1  # no is_syncing on this endpoint (§6)
        return ok(
            {
                "members_added": added,
                "members_removed": removed,
                "errors": [],
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": 0,
                "_links": [],
            }
        )

    base = "/3.0/lists/{list_id}"
    return [
        web.get(base + "/tag-search", handler(api, tag_search)),
        web.get(base + "/segments", handler(api, list_segments)),
        web.post(base + "/segments", handler(api, create_segment)),
        web.get(base + "/segments/{segment_id}", handler(api, get_segment)),
        web.post(base + "/segments/{segment_id}", handler(api, add_remove)),
        web.get(base + "/segments/{segment_id}/members", handler(api, segment_members)),
    ]
