"""Classic automations (the spec's ``GET /automations`` and ``GET /automations/{workflow_id}``).

The sandbox account runs two workflows, with figures drawn from the world as it is now: a welcome
series on the main audience (one email to every subscribed member who joined after the account
started) and an abandoned-cart email on the store (one email per cart that was never checked out).
Read-only: starting, pausing and editing automations are not emulated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from leadsync.sandbox.mailchimp.routes.common import Api, BadRequest, handler, ok
from leadsync.sandbox.mailchimp.shapes import fmt_time, page_params, short_id

__all__ = ["routes"]


def routes(api: Api) -> list[web.RouteDef]:
    state = api.state

    def workflows() -> list[dict[str, Any]]:
        audiences = list(state.audiences.values())
        if not audiences:
            return []
        main = audiences[0]
        started: datetime = main.date_created
        joined = [
            m for m in main.members.values() if m.timestamp_opt is not None and m.timestamp_opt >= started
        ]
        carts = list(state.carts)
        flows = [
            ("welcomeSeries", "Welcome new subscribers", len(joined), started),
            ("abandonedCart", "Abandoned cart reminder", len(carts), started),
        ]
        out = []
        for workflow_type, title, sent, created in flows:
            out.append(
                {
                    "id": short_id(f"automation:{state.seed}:{workflow_type}"),
                    "create_time": fmt_time(created),
                    "start_time": fmt_time(created),
                    "status": "sending",
                    "emails_sent": sent,
                    "recipients": {
                        "list_id": main.id,
                        "list_is_active": True,
                        "list_name": main.name,
                        "store_id": next(iter(state.stores), "") if workflow_type == "abandonedCart" else "",
                    },
                    "settings": {
                        "title": title,
                        "from_name": "Leadsync Sandbox",
                        "reply_to": "hello@leadsync.invalid",
                        "use_conversation": False,
                        "to_name": "*|FNAME|*",
                        "authenticate": True,
                        "auto_footer": False,
                        "inline_css": False,
                    },
                    "tracking": {
                        "opens": True,
                        "html_clicks": True,
                        "text_clicks": False,
                        "goal_tracking": False,
                        "ecomm360": workflow_type == "abandonedCart",
                        "google_analytics": "",
                        "clicktale": "",
                    },
                    "trigger_settings": {
                        "workflow_type": workflow_type,
                        "workflow_title": title,
                        "runtime": {
                            "days": [
                                "sunday",
                                "monday",
                                "tuesday",
                                "wednesday",
                                "thursday",
                                "friday",
                                "saturday",
                            ]
                        },
                        "workflow_emails_count": 1,
                    },
                    "report_summary": {
                        "opens": 0,
                        "unique_opens": 0,
                        "open_rate": 0,
                        "clicks": 0,
                        "subscriber_clicks": 0,
                        "click_rate": 0,
                    },
                    "_links": [],
                }
            )
        return out

    def list_automations(request: web.Request, _: bytes) -> web.Response:
        count, offset = page_params(request.query)
        flows = workflows()
        status = request.query.get("status")
        if status:
            flows = [f for f in flows if f["status"] == status]
        return ok(
            {"automations": flows[offset : offset + count], "total_items": len(flows), "_links": []},
            request.query,
        )

    def get_automation(request: web.Request, _: bytes) -> web.Response:
        for flow in workflows():
            if flow["id"] == request.match_info["workflow_id"]:
                return ok(flow, request.query)
        raise BadRequest(404, "The requested resource could not be found.")

    return [
        web.get("/3.0/automations", handler(api, list_automations)),
        web.get("/3.0/automations/{workflow_id}", handler(api, get_automation)),
    ]
