"""The emulators' outgoing webhooks: signed deliveries to a configured URL, and the sent log.

Each emulator turns what happens in its world (a clock advance, ``POST /_sandbox/act``, and
leadsync's own writes) into the deliveries its platform sends (``PlatformEmulator.webhook_bodies``
and the emulators' write hooks); the sender posts them from a few threads, signed as each platform
signs (HubSpot v3, hubspot.md §6; Mailchimp's HMAC, mailchimp.md §10, when a secret is set;
ActiveCampaign, which does not sign, to a URL holding a token, activecampaign.md §9), retrying
429s, 5xx and refused connections a few times with a growing wait, as the platforms retry. Every
attempt's outcome is in the sent log (``GET /_sandbox/webhooks``): tests compare it with what the
receiver stored.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from hubspot.utils.signature import Signature

__all__ = ["Outgoing", "WebhookSender", "WebhookTarget"]

log = logging.getLogger("leadsync.sandbox.webhooks")

MAX_TRIES = 6


@dataclass
class WebhookTarget:
    """Where one platform sends its webhooks. ``secret``: HubSpot's app client secret, Mailchimp's
    signing secret (None: unsigned, the URL carries the token). ``api_source``: Mailchimp's
    ``sources.api`` (mailchimp.md §10), whether leadsync's own API writes come back."""

    url: str
    secret: str | None = field(default=None, repr=False)
    api_source: bool = True

    def public(self) -> dict[str, Any]:
        return {"url": self.url, "signed": self.secret is not None, "api_source": self.api_source}


@dataclass
class Outgoing:
    platform: str
    body: bytes
    content_type: str
    ids: list[str]  # the event ids it carries (HubSpot's eventId; a digest of the body elsewhere)
    kinds: list[str] = field(default_factory=list)


class WebhookSender:
    def __init__(self, *, threads: int = 4) -> None:
        self.targets: dict[str, WebhookTarget] = {}
        self.sent: list[dict[str, Any]] = []
        self._queue: queue.Queue[Outgoing | None] = queue.Queue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._thread_count = threads
        self._in_flight = 0
        self._client: httpx.Client | None = None
        self.event_ids = itertools.count(1)

    def configure(self, platform: str, target: WebhookTarget | None) -> None:
        with self._lock:
            if target is None:
                self.targets.pop(platform, None)
            else:
                self.targets[platform] = target

    def target(self, platform: str) -> WebhookTarget | None:
        with self._lock:
            return self.targets.get(platform)

    def next_event_id(self) -> int:
        with self._lock:
            return next(self.event_ids)

    def emit(self, outgoing: Outgoing) -> None:
        if self.target(outgoing.platform) is None:
            return
        with self._lock:
            self._in_flight += 1
            if not self._threads:
                self._client = httpx.Client(timeout=10)
                for number in range(self._thread_count):
                    thread = threading.Thread(
                        target=self._run, name=f"sandbox-webhooks-{number}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
        self._queue.put(outgoing)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every emitted delivery was answered (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0:
                    return True
            time.sleep(0.01)
        return False

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.sent)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._client is not None:
            self._client.close()

    def _headers(self, outgoing: Outgoing, target: WebhookTarget) -> dict[str, str]:
        headers = {"Content-Type": outgoing.content_type}
        if outgoing.platform == "hubspot" and target.secret:
            stamp = str(int(time.time() * 1000))
            headers["X-HubSpot-Request-Timestamp"] = stamp
            # signed by the SDK's own code, independently of the receiver's (hubspot.md §6)
            headers["X-HubSpot-Signature-v3"] = Signature.get_signature(
                target.secret, outgoing.body.decode(), "v3", target.url, "POST", stamp
            )
        elif outgoing.platform == "mailchimp" and target.secret:
            t = str(int(time.time()))  # mailchimp.md §10: v1 = HMAC-SHA256(secret, "{t}.{body}")
            digest = hmac.new(target.secret.encode(), f"{t}.".encode() + outgoing.body, hashlib.sha256)
            headers["X-Mailchimp-Signature"] = f"t={t},v1={digest.hexdigest()}"
        return headers

    def _run(self) -> None:
        while True:
            outgoing = self._queue.get()
            if outgoing is None:
                return
            try:
                self._deliver(outgoing)
            finally:
                with self._lock:
                    self._in_flight -= 1

    def _deliver(self, outgoing: Outgoing) -> None:
        status: int | str = "unsent"
        tries = 0
        for tries in range(1, MAX_TRIES + 1):
            target = self.target(outgoing.platform)
            if target is None or self._client is None:
                break
            try:
                answer = self._client.post(
                    target.url, content=outgoing.body, headers=self._headers(outgoing, target)
                )
                status = answer.status_code
            except httpx.HTTPError as exc:
                status = f"error: {type(exc).__name__}"
            if isinstance(status, int) and status < 500 and status != 429:
                break
            time.sleep(min(2.0, 0.05 * 2**tries))
        with self._lock:
            self.sent.append(
                {
                    "platform": outgoing.platform,
                    "ids": outgoing.ids,
                    "kinds": outgoing.kinds,
                    "status": status,
                    "tries": tries,
                    "at": time.time(),
                }
            )


# --- what each platform sends --------------------------------------------------------------------


def body_id(body: bytes) -> str:
    """The id the receiver gives a delivery without an event id (Mailchimp, ActiveCampaign)."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _form(fields: dict[str, Any]) -> bytes:
    return urlencode({k: "" if v is None else str(v) for k, v in fields.items()}).encode()


# hubspot.md §6: the contact property a world event moves, as a property-change subscription sees it.
HUBSPOT_EVENT_PROPERTY = {
    "page_view": "hs_analytics_num_page_views",
    "form_submit": "num_conversion_events",
    "content_download": "num_conversion_events",
    "demo_request": "num_conversion_events",
    "webinar_attended": "num_conversion_events",
    "trial_started": "num_conversion_events",
}
HUBSPOT_CHANGED_PROPERTY = {"job_title": "jobtitle", "company_size": "numemployees", "email": "email"}
HUBSPOT_BATCH = 100  # hubspot.md §6: up to 100 events a request


def hubspot_event(
    sender: WebhookSender, emulator: Any, contact_id: str, kind: str, name: str | None, source: str
) -> dict[str, Any]:
    contact = emulator.state.objects["contacts"].get(contact_id)
    event: dict[str, Any] = {
        "eventId": sender.next_event_id(),
        "subscriptionId": 1,
        "portalId": emulator.portal_id,
        "appId": 1,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": int(contact_id) if str(contact_id).isdigit() else contact_id,
        "changeSource": source,
    }
    if name is not None:
        event["propertyName"] = name
        event["propertyValue"] = (contact.properties.get(name) if contact else None) or ""
    return event


def hubspot_outgoing(events: list[dict[str, Any]]) -> list[Outgoing]:
    out = []
    for start in range(0, len(events), HUBSPOT_BATCH):
        chunk = events[start : start + HUBSPOT_BATCH]
        body = json.dumps(chunk, separators=(",", ":")).encode()
        out.append(
            Outgoing(
                "hubspot",
                body,
                "application/json",
                [str(e["eventId"]) for e in chunk],
                [e["subscriptionType"] for e in chunk],
            )
        )
    return out


def _hubspot_bodies(sender: WebhookSender, emulator: Any, delta: Any) -> list[Outgoing]:
    state = emulator.state
    events: list[dict[str, Any]] = []
    with state.lock:
        for person in getattr(delta, "persons", None) or []:
            cid = state.person_contact.get(person.id)
            if cid:
                events.append(hubspot_event(sender, emulator, cid, "contact.creation", None, "CRM"))
        for change in getattr(delta, "changes", None) or []:
            cid, name = state.person_contact.get(change.person), HUBSPOT_CHANGED_PROPERTY.get(change.field)
            if cid and name:
                events.append(hubspot_event(sender, emulator, cid, "contact.propertyChange", name, "CRM"))
        for event in getattr(delta, "events", None) or []:
            name = HUBSPOT_EVENT_PROPERTY.get(str(event.type))
            cid = state.person_contact.get(event.person)
            if str(event.platform) == "hubspot" and cid and name:
                events.append(
                    hubspot_event(sender, emulator, cid, "contact.propertyChange", name, "ANALYTICS")
                )
    return hubspot_outgoing(events)


def hubspot_write_hook(sender: WebhookSender, emulator: Any) -> Any:
    """leadsync's own writes come back as property changes (the echo, hubspot.md §6)."""

    def changed(obj: Any, names: list[str]) -> None:
        if obj.object_type != "contacts" or sender.target("hubspot") is None:
            return
        events = [
            hubspot_event(sender, emulator, obj.id, "contact.propertyChange", name, "INTEGRATION")
            for name in names
        ]
        for outgoing in hubspot_outgoing(events):
            sender.emit(outgoing)

    return changed


def _mailchimp_member_fields(kind: str, audience: Any, member: Any, now: str) -> dict[str, Any]:
    """mailchimp.md §10: ``type``, ``fired_at`` and ``data[...]``."""
    fields: dict[str, Any] = {
        "type": kind,
        "fired_at": now,
        "data[id]": member.unique_email_id,
        "data[list_id]": audience.id,
        "data[email]": member.email,
        "data[email_type]": "html",
        "data[ip_opt]": "127.0.0.1",
        "data[web_id]": member.web_id,
    }
    for tag, value in sorted(member.merge_fields.items()):
        fields[f"data[merges][{tag}]"] = value if not isinstance(value, dict) else json.dumps(value)
    if kind == "unsubscribe":
        fields.update({"data[action]": "unsub", "data[reason]": member.unsubscribe_reason or "manual"})
    return fields


def _mailchimp_bodies(sender: WebhookSender, emulator: Any, delta: Any) -> list[Outgoing]:
    state = emulator.state
    now = emulator.clock.now().strftime("%Y-%m-%d %H:%M:%S")
    wanted: list[tuple[str, str]] = []  # (type, person id)
    wanted += [("subscribe", p.id) for p in getattr(delta, "persons", None) or []]
    wanted += [("profile", c.person) for c in getattr(delta, "changes", None) or []]
    for event in getattr(delta, "events", None) or []:
        if str(event.platform) == "mailchimp" and str(event.type) in (
            "email_unsubscribe",
            "email_spam_report",
        ):
            wanted.append(("unsubscribe", event.person))
    out: list[Outgoing] = []
    with state.lock:
        for kind, person_id in wanted:
            key = state.person_hashes.get(person_id)
            for audience in state.audiences.values():
                member = audience.members.get(key) if key else None
                if member is not None:
                    body = _form(_mailchimp_member_fields(kind, audience, member, now))
                    out.append(Outgoing("mailchimp", body, FORM, [body_id(body)], [kind]))
    return out


def mailchimp_write_hook(sender: WebhookSender, emulator: Any) -> Any:
    """With ``sources.api`` on, leadsync's own member writes come back as ``profile`` (mailchimp.md §10)."""

    def changed(audience: Any, member: Any) -> None:
        target = sender.target("mailchimp")
        if target is None or not target.api_source:
            return
        now = emulator.clock.now().strftime("%Y-%m-%d %H:%M:%S")
        body = _form(_mailchimp_member_fields("profile", audience, member, now))
        sender.emit(Outgoing("mailchimp", body, FORM, [body_id(body)], ["profile"]))

    return changed


# The AsyncAPI description's message types for world events ActiveCampaign has a webhook for;
# event tracking (page views, forms ...) has none (activecampaign.md §9).
AC_EVENT_TYPE = {"email_open": "open", "email_click": "click", "email_unsubscribe": "unsubscribe"}


def _ac_fields(
    kind: str, contact: Any, initiated_from: str, when: str, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": kind,
        "date_time": when,
        "initiated_from": initiated_from,
        "initiated_by": "api" if initiated_from == "api" else "contact",
        "list": "1",
        "contact[id]": contact.id,
        "contact[email]": contact.email,
        "contact[first_name]": contact.first_name,
        "contact[last_name]": contact.last_name,
        **extra,
    }


def _activecampaign_bodies(sender: WebhookSender, emulator: Any, delta: Any) -> list[Outgoing]:
    state = emulator.state
    out: list[Outgoing] = []
    with state.lock:
        for event in getattr(delta, "events", None) or []:
            kind = AC_EVENT_TYPE.get(str(event.type))
            contact_id = state.contact_by_person.get(event.person)
            contact = state.contacts.get(contact_id) if contact_id is not None else None
            if str(event.platform) != "activecampaign" or kind is None or contact is None:
                continue
            extra = {"link[url]": event.url} if kind == "click" and event.url else {}
            body = _form(_ac_fields(kind, contact, "public", event.at.isoformat(), extra))
            out.append(Outgoing("activecampaign", body, FORM, [body_id(body)], [kind]))
    return out


def activecampaign_write_hook(sender: WebhookSender, emulator: Any) -> Any:
    """leadsync's own field and tag writes come back as ``update`` / ``contact_tag_*`` events
    ``initiated_from`` api (the AsyncAPI description's envelope)."""

    def changed(contact_id: int, kind: str, extra: dict[str, Any]) -> None:
        contact = emulator.state.contacts.get(contact_id)
        if contact is None or sender.target("activecampaign") is None:
            return
        when = emulator.clock.now().isoformat()
        body = _form(_ac_fields(kind, contact, "api", when, extra))
        sender.emit(Outgoing("activecampaign", body, FORM, [body_id(body)], [kind]))

    return changed


FORM = "application/x-www-form-urlencoded"
_BUILDERS = {
    "hubspot": _hubspot_bodies,
    "mailchimp": _mailchimp_bodies,
    "activecampaign": _activecampaign_bodies,
}


def webhook_bodies(sender: WebhookSender, emulator: Any, delta: Any) -> list[Outgoing]:
    """What ``emulator``'s platform sends for ``delta`` (nothing when no target is configured)."""
    builder = _BUILDERS.get(emulator.name)
    if builder is None or sender.target(emulator.name) is None:
        return []
    return builder(sender, emulator, delta)


def install_hooks(sender: WebhookSender, emulator: Any) -> None:
    """Make ``emulator``'s API writes send the webhooks they cause (the echoes)."""
    if emulator.name == "hubspot":
        emulator.state.on_update = hubspot_write_hook(sender, emulator)
    elif emulator.name == "mailchimp":
        emulator.state.on_member_write = mailchimp_write_hook(sender, emulator)
    elif emulator.name == "activecampaign":
        emulator.state.on_write = activecampaign_write_hook(sender, emulator)


# The sandbox's webhook secrets: the HubSpot app's client secret, Mailchimp's signing secret and
# ActiveCampaign's URL token (``write_sandbox_config`` puts them in the config, as inline secrets).
SANDBOX_WEBHOOK_SECRETS: dict[str, dict[str, str]] = {
    "hubspot": {"webhook_secret": "sandbox-hubspot-app-client-secret-0000"},
    "mailchimp": {"webhook_secret": "sandbox-mailchimp-signing-secret-0000"},
    "activecampaign": {"webhook_token": "sandbox-activecampaign-webhook-token-0000"},
}


def receiver_url(base: str, platform: str, source: str | None = None) -> str:
    """Where ``platform``'s sandbox webhooks go on a leadsync receiver at ``base``."""
    path = f"{base.rstrip('/')}/webhooks/{source or platform}"
    token = SANDBOX_WEBHOOK_SECRETS.get(platform, {}).get("webhook_token")
    return f"{path}/{token}" if token else path


# --- the platforms' webhook management APIs ---------------------------------------------------------
# Mailchimp ``/lists/{list_id}/webhooks`` (mailchimp.md §10) and ActiveCampaign ``/api/3/webhooks``
# (activecampaign.md §9). Registering a webhook points the sandbox's deliveries at its URL.


def management_routes(sender: WebhookSender, emulator: Any) -> list[Any]:
    from aiohttp import web

    from leadsync.sandbox.platform import json_response

    hooks: dict[str, dict[str, Any]] = {}
    counter = itertools.count(1)

    def point(hook: dict[str, Any]) -> None:
        secret = SANDBOX_WEBHOOK_SECRETS.get(emulator.name, {}).get("webhook_secret")
        sources = hook.get("sources")
        api = bool(sources.get("api", True)) if isinstance(sources, dict) else "api" in (sources or [])
        sender.configure(emulator.name, WebhookTarget(str(hook["url"]), secret=secret, api_source=api))

    async def body_of(request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    if emulator.name == "mailchimp":

        async def mc_list(request: web.Request) -> web.Response:
            list_id = request.match_info["list_id"]
            found = [h for h in hooks.values() if h["list_id"] == list_id]
            return json_response({"webhooks": found, "list_id": list_id, "total_items": len(found)})

        async def mc_create(request: web.Request) -> web.Response:
            body = await body_of(request)
            if not isinstance(body, dict) or not str(body.get("url", "")).startswith(("http://", "https://")):
                return json_response(
                    {"title": "Invalid Resource", "status": 400, "detail": "The URL is not valid."},
                    status=400,
                    content_type="application/problem+json",
                )
            hook = {
                "id": f"wh{next(counter)}",
                "list_id": request.match_info["list_id"],
                "url": body["url"],
                "events": body.get("events") or {},
                "sources": body.get("sources") or {},
            }
            hooks[hook["id"]] = hook
            point(hook)
            # mailchimp.md §10: the signing secret is returned once, on creation
            secret = SANDBOX_WEBHOOK_SECRETS["mailchimp"]["webhook_secret"]
            return json_response({**hook, "signing_secret": secret})

        async def mc_patch(request: web.Request) -> web.Response:
            hook = hooks.get(request.match_info["webhook_id"])
            body = await body_of(request)
            if hook is None:
                return json_response({"title": "Resource Not Found", "status": 404}, status=404)
            for key in ("url", "events", "sources"):
                if isinstance(body, dict) and key in body:
                    hook[key] = body[key]
            point(hook)
            return json_response(hook)

        base = "/3.0/lists/{list_id}/webhooks"
        return [
            web.get(base, mc_list),
            web.post(base, mc_create),
            web.patch(base + "/{webhook_id}", mc_patch),
        ]

    if emulator.name == "activecampaign":

        async def ac_list(_: web.Request) -> web.Response:
            return json_response({"webhooks": list(hooks.values()), "meta": {"total": str(len(hooks))}})

        async def ac_create(request: web.Request) -> web.Response:
            body = await body_of(request)
            data = body.get("webhook") if isinstance(body, dict) else None
            missing = [
                k
                for k in ("name", "url", "events", "sources")
                if not isinstance(data, dict) or not data.get(k)
            ]
            if missing:
                return json_response(
                    {"errors": [{"title": f"The {missing[0]} field is required", "code": "field_missing"}]},
                    status=422,
                )
            assert isinstance(data, dict)
            hook = {"id": str(next(counter)), **{k: data[k] for k in ("name", "url", "events", "sources")}}
            hook["listid"] = str(data.get("listid") or "0")
            hooks[hook["id"]] = hook
            point(hook)
            return json_response({"webhook": hook}, status=201)

        async def ac_put(request: web.Request) -> web.Response:
            hook = hooks.get(request.match_info["id"])
            body = await body_of(request)
            if hook is None:
                return json_response(
                    {"message": f"No Result found for Webhook with id {request.match_info['id']}"}, status=404
                )
            data = body.get("webhook") if isinstance(body, dict) else {}
            for key in ("name", "url", "events", "sources"):
                if isinstance(data, dict) and key in data:
                    hook[key] = data[key]
            point(hook)
            return json_response({"webhook": hook})

        return [
            web.get("/api/3/webhooks", ac_list),
            web.post("/api/3/webhooks", ac_create),
            web.put("/api/3/webhooks/{id}", ac_put),
        ]
    return []


def point_at_receiver(server: Any, base: str) -> None:
    """Every emulator of ``server`` sends its webhooks to the leadsync receiver at ``base``."""
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"the webhook URL must be http(s), got {base!r}")
    for name in server.state.hosts:
        secret = SANDBOX_WEBHOOK_SECRETS.get(name, {}).get("webhook_secret")
        server.state.webhooks.configure(name, WebhookTarget(receiver_url(base, name), secret=secret))
