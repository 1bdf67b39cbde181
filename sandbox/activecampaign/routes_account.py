"""What the account holds beside contacts: the API root, lists and list memberships, campaigns
and their messages, automations, and every contact's tags, read-only (activecampaign.md §5, §10;
the v3 spec's ``retrieve-all-lists``, ``list-all-campaigns``, ``list-all-messages``,
``list-all-automations``).

Figures come from the world as the account holds it: one list that every contact is on
(unsubscribed once the world says so), each world campaign with its counters summed from the
activity stream, one message per campaign, and two automations. ``GET /api/3/`` answers 200 with a
small index (peers used it to check credentials before ``/users/me``, §10; its real body is
unconfirmed). ``GET /contactTags`` (account-wide, used by the singer tap, §4) is not in the spec.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.activecampaign.common import Paging, message_404, path_id
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.activecampaign.host import AccountHost

__all__ = ["MAIN_LIST_ID", "account_routes"]

MAIN_LIST_ID = 1
SENDER = ("Leadsync Sandbox", "hello@leadsync.invalid")


def account_routes(emu: AccountHost) -> list[web.RouteDef]:
    state, render = emu.state, emu.render
    base = render.base

    def started() -> datetime:
        start = getattr(emu.world, "start", None)
        return start if isinstance(start, datetime) else emu.clock.now()

    async def root(request: web.Request) -> web.Response:
        return json_response(
            {
                "message": "ActiveCampaign API v3 (sandbox)",
                "links": {
                    name: f"{base}/{name}" for name in ("contacts", "lists", "campaigns", "automations")
                },
            }
        )

    # --- lists and memberships ---------------------------------------------------------------

    def list_row() -> dict[str, Any]:
        return {
            "stringid": "master-contact-list",
            "userid": "1",
            "name": "Master Contact List",
            "cdate": render.local(started()),
            "p_use_tracking": "1",
            "p_use_analytics_read": "0",
            "p_use_analytics_link": "0",
            "p_use_twitter": "0",
            "p_use_facebook": "0",
            "p_embed_image": "1",
            "p_use_captcha": "1",
            "send_last_broadcast": "0",
            "private": "0",
            "analytics_domains": None,
            "analytics_source": "",
            "analytics_ua": "",
            "to_name": "Subscriber",
            "optinoptout": "1",
            "sender_name": SENDER[0],
            "sender_url": "https://www.example.com",
            "sender_reminder": "You signed up on our website.",
            "optinmessageid": "0",
            "optoutconf": "0",
            "deletestamp": None,
            "udate": None,
            "links": {"contactGoalLists": f"{base}/lists/{MAIN_LIST_ID}/contactGoalLists"},
            "id": str(MAIN_LIST_ID),
            "user": "1",
        }

    async def lists(request: web.Request) -> web.Response:
        return json_response({"lists": Paging(request).slice([list_row()]), "meta": {"total": "1"}})

    async def one_list(request: web.Request) -> web.Response:
        if path_id(request) != MAIN_LIST_ID:
            return message_404("List", request.match_info["id"])
        return json_response({"list": list_row()})

    def unsubscribed() -> dict[int, datetime]:
        out: dict[int, datetime] = {}
        for activity in state.activities:
            if activity.reference_action == "unsubscribe":
                out[activity.contact] = min(out.get(activity.contact, activity.tstamp), activity.tstamp)
        return out

    async def contact_lists(request: web.Request) -> web.Response:
        paging = Paging(request)
        with state.lock:
            gone = unsubscribed()
            contacts = sorted(state.contacts.values(), key=lambda c: c.id)
            rows = [
                {
                    "contact": str(c.id),
                    "list": str(MAIN_LIST_ID),
                    "form": None,
                    "seriesid": "0",
                    "sdate": render.local(c.cdate),
                    "udate": render.local(gone.get(c.id, c.cdate)),
                    "status": "2" if c.id in gone else "1",  # 1 active, 2 unsubscribed
                    "responder": "1",
                    "sync": "0",
                    "unsubreason": "" if c.id not in gone else "Unsubscribed from a campaign",
                    "campaign": None,
                    "message": None,
                    "first_name": c.first_name,
                    "last_name": c.last_name,
                    "ip4Sub": "0",
                    "sourceid": "0",
                    "autosyncLog": None,
                    "ip4_last": "0",
                    "ip4Unsub": "0",
                    "unsubscribeAutomation": None,
                    "links": {
                        "automation": None,
                        "list": f"{base}/contactLists/{c.id}/list",
                        "contact": f"{base}/contactLists/{c.id}/contact",
                    },
                    "id": str(c.id),
                    "automation": None,
                }
                for c in contacts
            ]
        return json_response({"contactLists": paging.slice(rows), "meta": {"total": str(len(rows))}})

    async def contact_tags(request: web.Request) -> web.Response:
        paging = Paging(request)
        with state.lock:
            rows = sorted(state.contact_tags.values(), key=lambda r: r.id)
            return json_response(
                {
                    "contactTags": [render.contact_tag(r) for r in paging.slice(rows)],
                    "meta": {"total": str(len(rows))},
                }
            )

    # --- campaigns and messages --------------------------------------------------------------

    def campaign_rows() -> list[dict[str, Any]]:
        counts: dict[int, Counter[str]] = defaultdict(Counter)
        unique: dict[tuple[int, str], set[int]] = defaultdict(set)
        sent_at: dict[int, datetime] = {}
        for a in state.activities:
            if not a.reference_id or a.reference_id not in state.campaign_names:
                continue
            counts[a.reference_id][a.reference_action] += 1
            unique[(a.reference_id, a.reference_action)].add(a.contact)
            if a.reference_action == "sent":
                sent_at[a.reference_id] = min(sent_at.get(a.reference_id, a.tstamp), a.tstamp)
        rows = []
        for cid, name in sorted(state.campaign_names.items()):
            c = counts[cid]
            when = sent_at.get(cid)
            rows.append(
                {
                    "type": "single",
                    "userid": "1",
                    "segmentid": "0",
                    "bounceid": "-1",
                    "realcid": "0",
                    "sendid": "0",
                    "threadid": "0",
                    "seriesid": "0",
                    "formid": "0",
                    "basemessageid": str(cid),
                    "addressid": "0",
                    "source": "web",
                    "name": name,
                    "cdate": render.local(when or started()),
                    "mdate": render.local(when or started()),
                    "sdate": render.local(when),
                    "ldate": render.local(when),
                    "send_amt": str(c["sent"]),
                    "total_amt": str(c["sent"]),
                    "opens": str(c["open"]),
                    "uniqueopens": str(len(unique[(cid, "open")])),
                    "linkclicks": str(c["click"]),
                    "uniquelinkclicks": str(len(unique[(cid, "click")])),
                    "subscriberclicks": str(len(unique[(cid, "click")])),
                    "forwards": "0",
                    "uniqueforwards": "0",
                    "hardbounces": str(c["bounce"]),
                    "softbounces": "0",
                    "unsubscribes": str(c["unsubscribe"]),
                    "unsubreasons": "0",
                    "updates": "0",
                    "socialshares": "0",
                    "replies": "0",
                    "uniquereplies": "0",
                    "status": "5" if when else "0",  # 5 completed (sent), 0 draft
                    "public": "1",
                    "tracklinks": "all",
                    "trackreads": "1",
                    "links": {"campaignMessage": f"{base}/campaigns/{cid}/campaignMessage"},
                    "id": str(cid),
                    "user": "1",
                    "automation": None,
                }
            )
        return rows

    async def campaigns(request: web.Request) -> web.Response:
        with state.lock:
            rows = campaign_rows()
        return json_response({"campaigns": Paging(request).slice(rows), "meta": {"total": str(len(rows))}})

    async def one_campaign(request: web.Request) -> web.Response:
        with state.lock:
            rows = {int(r["id"]): r for r in campaign_rows()}
        row = rows.get(path_id(request) or -1)
        return json_response({"campaign": row}) if row else message_404("Campaign", request.match_info["id"])

    def message_rows() -> list[dict[str, Any]]:
        return [
            {
                "userid": "1",
                "ed_instanceid": "0",
                "ed_version": "2",
                "cdate": r["cdate"],
                "mdate": r["mdate"],
                "name": r["name"],
                "fromname": SENDER[0],
                "fromemail": SENDER[1],
                "reply2": SENDER[1],
                "priority": "3",
                "charset": "utf-8",
                "encoding": "quoted-printable",
                "format": "mime",
                "subject": r["name"],
                "preheader_text": "",
                "text": f"{r['name']}\n",
                "html": f"<html><body><p>{r['name']}</p></body></html>",
                "htmlfetch": "",
                "textfetch": "",
                "hidden": "0",
                "prev_id": "0",
                "sourceid": "0",
                "links": {"user": f"{base}/messages/{r['id']}/user"},
                "id": r["id"],
                "user": "1",
            }
            for r in campaign_rows()
        ]

    async def messages(request: web.Request) -> web.Response:
        with state.lock:
            rows = message_rows()
        return json_response({"messages": Paging(request).slice(rows), "meta": {"total": str(len(rows))}})

    async def one_message(request: web.Request) -> web.Response:
        with state.lock:
            rows = {int(r["id"]): r for r in message_rows()}
        row = rows.get(path_id(request) or -1)
        return json_response({"message": row}) if row else message_404("Message", request.match_info["id"])

    # --- automations -------------------------------------------------------------------------

    def automation_rows() -> list[dict[str, Any]]:
        trials = {
            cid
            for cid, logs in state.tracking_logs.items()
            if any(log.type == "trial_started" for log in logs)
        }
        flows = (
            (1, "Welcome series", len(state.contacts)),
            (2, "Trial follow-up", len(trials)),
        )
        return [
            {
                "name": name,
                "cdate": render.local(started()),
                "mdate": render.local(started()),
                "userid": "1",
                "status": "1",  # active
                "entered": str(entered),
                "exited": str(entered),
                "hidden": "0",
                "defaultscreenshot": "http://img-us1.com/default-series.gif",
                "links": {
                    "campaigns": f"{base}/automations/{aid}/campaigns",
                    "contactAutomations": f"{base}/automations/{aid}/contactAutomations",
                },
                "id": str(aid),
            }
            for aid, name, entered in flows
        ]

    async def automations(request: web.Request) -> web.Response:
        with state.lock:
            rows = automation_rows()
        return json_response({"automations": Paging(request).slice(rows), "meta": {"total": str(len(rows))}})

    async def one_automation(request: web.Request) -> web.Response:
        with state.lock:
            rows = {int(r["id"]): r for r in automation_rows()}
        row = rows.get(path_id(request) or -1)
        return (
            json_response({"automation": row}) if row else message_404("Automation", request.match_info["id"])
        )

    return [
        web.get("/api/3", root),
        web.get("/api/3/", root),
        web.get("/api/3/lists", lists),
        web.get("/api/3/lists/{id}", one_list),
        web.get("/api/3/contactLists", contact_lists),
        web.get("/api/3/contactTags", contact_tags),
        web.get("/api/3/campaigns", campaigns),
        web.get("/api/3/campaigns/{id}", one_campaign),
        web.get("/api/3/messages", messages),
        web.get("/api/3/messages/{id}", one_message),
        web.get("/api/3/automations", automations),
        web.get("/api/3/automations/{id}", one_automation),
    ]
