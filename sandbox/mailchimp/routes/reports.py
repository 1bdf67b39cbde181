"""Campaigns and their reports: ``GET /campaigns``, ``/reports/{campaign_id}/email-activity``,
``/reports/{campaign_id}/open-details`` (mailchimp.md §7)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leadsync.sandbox.mailchimp.routes.common import Api, BadRequest, handler, ok
from leadsync.sandbox.mailchimp.shapes import fmt_time, page_params, parse_time_param
from leadsync.sandbox.mailchimp.state import CampaignState

__all__ = ["routes"]


def routes(api: Api) -> list[web.RouteDef]:
    state = api.state

    def render_campaign(c: CampaignState) -> dict[str, Any]:
        audience = state.audiences.get(c.list_id)
        opens, clicks = len(c.opened_by), len(c.clicked_by)
        sent = len(c.recipients)
        return {
            "id": c.id,
            "web_id": c.web_id,
            "type": "regular",
            "create_time": fmt_time(c.create_time),
            "archive_url": f"http://eepurl.com/{c.id[:6]}",
            "long_archive_url": f"https://us6.campaign-archive.com/?u=0&id={c.id}",
            "status": "sent",
            "emails_sent": sent,
            "send_time": fmt_time(c.send_time),
            "content_type": "template",
            "needs_block_refresh": False,
            "resendable": False,
            "recipients": {
                "list_id": c.list_id,
                "list_is_active": True,
                "list_name": audience.name if audience else "",
                "segment_text": "",
                "recipient_count": sent,
            },
            "settings": {
                "subject_line": c.subject,
                "preview_text": "",
                "title": c.title,
                "from_name": "Leadsync Sandbox",
                "reply_to": "news@leadsync.invalid",
                "use_conversation": False,
                "to_name": "*|FNAME|*",
                "folder_id": "",
                "authenticate": True,
                "auto_footer": False,
                "inline_css": False,
                "auto_tweet": False,
                "fb_comments": False,
                "timewarp": False,
                "template_id": 0,
                "drag_and_drop": True,
            },
            "tracking": {
                "opens": True,
                "html_clicks": True,
                "text_clicks": False,
                "goal_tracking": False,
                "ecomm360": True,
                "google_analytics": "",
                "clicktale": "",
            },
            "report_summary": {
                "opens": opens,
                "unique_opens": opens,
                "open_rate": round(opens / sent, 4) if sent else 0,
                "clicks": clicks,
                "subscriber_clicks": clicks,
                "click_rate": round(clicks / sent, 4) if sent else 0,
            },
            "_links": [],
        }

    def campaign_or_404(campaign_id: str) -> CampaignState:
        campaign = state.campaigns.get(campaign_id)
        if campaign is None:
            raise BadRequest(404, "The requested resource could not be found.")
        return campaign

    def list_campaigns(request: web.Request, _: bytes) -> web.Response:
        q = request.query
        count, offset = page_params(q)
        campaigns = list(state.campaigns.values())
        if q.get("status") and q["status"] != "sent":
            campaigns = []
        if q.get("list_id"):
            campaigns = [c for c in campaigns if c.list_id == q["list_id"]]
        since = parse_time_param(q.get("since_send_time"), "since_send_time")
        if since is not None:
            campaigns = [c for c in campaigns if c.send_time >= since]
        before = parse_time_param(q.get("before_send_time"), "before_send_time")
        if before is not None:
            campaigns = [c for c in campaigns if c.send_time <= before]
        sort_field = q.get("sort_field") or "create_time"
        if sort_field not in ("create_time", "send_time"):
            raise BadRequest(400, f"Invalid sort_field {sort_field!r}.", title="Invalid Resource")
        campaigns.sort(key=lambda c: (getattr(c, sort_field), c.id), reverse=q.get("sort_dir") == "DESC")
        body = {
            "campaigns": [render_campaign(c) for c in campaigns[offset : offset + count]],
            "total_items": len(campaigns),
            "_links": [],
        }
        return ok(body, q)

    def get_campaign(request: web.Request, _: bytes) -> web.Response:
        return ok(render_campaign(campaign_or_404(request.match_info["campaign_id"])), request.query)

    def email_activity(request: web.Request, _: bytes) -> web.Response:
        campaign = campaign_or_404(request.match_info["campaign_id"])
        q = request.query
        count, offset = page_params(q)
        since = parse_time_param(q.get("since"), "since")
        rows: list[dict[str, Any]] = []
        # §7: "since" = only events after T; recipients with none after T are left out.
        source = (
            campaign.activity.items()
            if since is not None
            else ((key, campaign.activity.get(key, [])) for key in campaign.recipients)
        )
        for key, acts in source:
            email = campaign.recipients.get(key, "")
            if since is not None:
                acts = [a for a in acts if a.second > since]
                if not acts:
                    continue
            rows.append(
                {
                    "campaign_id": campaign.id,
                    "list_id": campaign.list_id,
                    "list_is_active": True,
                    "email_id": key,
                    "email_address": email,
                    "activity": [_activity(a) for a in acts],
                    "_links": [],
                }
            )
        body = {
            "emails": rows[offset : offset + count],
            "campaign_id": campaign.id,
            "total_items": len(rows),
            "_links": [],
        }
        return ok(body, q)

    def open_details(request: web.Request, _: bytes) -> web.Response:
        campaign = campaign_or_404(request.match_info["campaign_id"])
        q = request.query
        count, offset = page_params(q)
        since = parse_time_param(q.get("since"), "since")
        rows: list[dict[str, Any]] = []
        total = proxy_excluded = 0
        for key, acts in campaign.activity.items():
            email = campaign.recipients.get(key, "")
            opens = [a for a in acts if a.action == "open" and (since is None or a.second > since)]
            if not opens:
                continue
            human = sum(1 for a in opens if not a.proxy)
            total += len(opens)
            proxy_excluded += human
            audience = state.audiences.get(campaign.list_id)
            member = audience.members.get(key) if audience else None
            rows.append(
                {
                    "campaign_id": campaign.id,
                    "list_id": campaign.list_id,
                    "list_is_active": True,
                    "contact_status": member.status if member else "subscribed",
                    "email_id": key,
                    "email_address": email,
                    "merge_fields": dict(member.merge_fields) if member else {},
                    "vip": bool(member.vip) if member else False,
                    "opens_count": len(opens),
                    "proxy_excluded_opens_count": human,
                    "opens": [{"timestamp": a.stamp, "is_proxy_open": a.proxy} for a in opens],
                    "_links": [],
                }
            )
        body = {
            "members": rows[offset : offset + count],
            "campaign_id": campaign.id,
            "total_items": len(rows),
            "total_opens": total,
            "total_proxy_excluded_opens": proxy_excluded,
            "_links": [],
        }
        return ok(body, q)

    return [
        web.get("/3.0/campaigns", handler(api, list_campaigns)),
        web.get("/3.0/campaigns/{campaign_id}", handler(api, get_campaign)),
        web.get("/3.0/reports/{campaign_id}/email-activity", handler(api, email_activity)),
        web.get("/3.0/reports/{campaign_id}/open-details", handler(api, open_details)),
    ]


def _activity(a: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"action": a.action, "timestamp": a.stamp, "ip": a.ip}
    if a.action == "click":
        item["url"] = a.url
    if a.action == "bounce":
        item["type"] = a.type
    return item
