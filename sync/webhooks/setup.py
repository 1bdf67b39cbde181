"""``leadsync webhooks setup SOURCE``: create or update the platform's webhook subscription.

* Mailchimp (mailchimp.md §10): one list webhook per audience, ``POST /lists/{id}/webhooks``, or
  ``PATCH`` the one already pointing at leadsync; person events only, and ``sources.api`` off so
  that leadsync's own writes do not come back (the receiver would recognise them anyway).
* ActiveCampaign (activecampaign.md §9): ``POST /api/3/webhooks`` (or ``PUT`` the existing one)
  with the contact events of the AsyncAPI description, from every source but ``api``.
  ActiveCampaign delivers only to HTTPS on port 443: another URL is refused before any request.
* HubSpot: a private app's webhook subscriptions cannot be made through the API (hubspot.md §6;
  they belong to the app's settings), so the steps to follow are printed.

Through the source's own connector: the same authentication, limits and retries as a sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from leadsync.config.settings import LeadsyncConfig, SourceConfig, resolve_source
from leadsync.connectors.errors import ConfigError
from leadsync.connectors.records import Platform
from leadsync.connectors.registry import connector_class

__all__ = ["SetupStep", "hubspot_steps", "receiver_url", "set_up"]

MAILCHIMP_EVENTS = {
    "subscribe": True,
    "unsubscribe": True,
    "profile": True,
    "upemail": True,
    "cleaned": True,
    "campaign": False,
}
MAILCHIMP_SOURCES = {"user": True, "admin": True, "api": False}
AC_EVENTS = [
    "subscribe",
    "unsubscribe",
    "update",
    "open",
    "click",
    "reply",
    "forward",
    "share",
    "bounce",
    "deal_update",
]
AC_SOURCES = ["public", "admin", "system"]  # not "api": leadsync's own writes
HUBSPOT_PROPERTIES = (
    "hs_analytics_num_page_views",
    "num_conversion_events",
    "jobtitle",
    "email",
    "numemployees",
)


@dataclass
class SetupStep:
    action: str  # create | update | unchanged | manual
    target: str  # the list, or the platform
    detail: dict[str, Any] = field(default_factory=dict)


def receiver_url(config: LeadsyncConfig, source: SourceConfig, base: str | None) -> str:
    """The URL the platform must call for ``source``: ``base`` (or ``webhooks.public_url``) plus
    ``/webhooks/{source}``, and the source's token where the platform cannot sign."""
    base = base or config.webhooks.public_url
    if not base:
        raise ConfigError(
            "no receiver URL: pass --url https://your-host or set webhooks.public_url", file=str(config.path)
        )
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
        raise ConfigError(f"--url must be an http(s) URL, got {base!r}")
    secrets = resolve_source(config, source).secrets
    url = f"{base.rstrip('/')}/webhooks/{source.name}"
    key = f"sources[{config.sources.index(source)}].secrets"
    if source.platform is Platform.ACTIVECAMPAIGN or (
        source.platform is Platform.MAILCHIMP and "webhook_secret" not in secrets
    ):
        if "webhook_token" not in secrets:
            raise ConfigError(
                f"source {source.name!r} needs a webhook_token secret (a long random string, the path "
                f"segment that authenticates {source.platform.value}'s deliveries)",
                file=str(config.path),
                key=key,
            )
        url += "/" + secrets["webhook_token"]
    elif source.platform is Platform.HUBSPOT and not (
        secrets.get("webhook_secret") or secrets.get("client_secret")
    ):
        raise ConfigError(
            f"source {source.name!r} needs a webhook_secret secret: the app's client secret, which signs deliveries",
            file=str(config.path),
            key=key,
        )
    return url


def hubspot_steps(url: str) -> list[str]:
    return [
        "HubSpot private apps cannot subscribe to webhooks through the API: in HubSpot, open "
        "Settings > Integrations > Private Apps > your app > Webhooks.",
        f"Target URL: {url}",
        "Create subscriptions: contact.creation, and contact.propertyChange for "
        + ", ".join(HUBSPOT_PROPERTIES)
        + ".",
        "Do not subscribe to leadsync's own properties (their changes are our writes).",
        "Copy the app's client secret into the environment variable named by secrets.webhook_secret.",
    ]


def _same(held: str, url: str) -> bool:
    return held.rstrip("/") == url.rstrip("/")


def set_up(config: LeadsyncConfig, source: SourceConfig, url: str, *, dry_run: bool) -> list[SetupStep]:
    if source.platform is Platform.HUBSPOT:
        return [SetupStep("manual", "hubspot", {"steps": hubspot_steps(url)})]
    if source.platform is Platform.ACTIVECAMPAIGN:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1") and (
            parts.scheme != "https" or (parts.port or 443) != 443
        ):
            raise ConfigError(
                f"ActiveCampaign delivers webhooks only to HTTPS on port 443 (activecampaign.md §9); "
                f"got {parts.scheme}://{parts.hostname}:{parts.port or ''}"
            )
    settings = resolve_source(config, source)
    with connector_class(source.platform)(settings) as connector:
        if source.platform is Platform.MAILCHIMP:
            return _mailchimp(connector, url, dry_run)
        return _activecampaign(connector, url, dry_run)


def _mailchimp(connector: Any, url: str, dry_run: bool) -> list[SetupStep]:
    steps = []
    wanted = {"url": url, "events": MAILCHIMP_EVENTS, "sources": MAILCHIMP_SOURCES}
    for list_id in connector._list_ids():  # noqa: SLF001 - the connector's own audience selection
        held = (connector._send("GET", f"lists/{list_id}/webhooks") or {}).get("webhooks") or []  # noqa: SLF001
        mine = next((h for h in held if _same(str(h.get("url", "")), url)), None)
        if mine is None:
            steps.append(
                SetupStep(
                    "create", f"list {list_id}", {"events": MAILCHIMP_EVENTS, "sources": MAILCHIMP_SOURCES}
                )
            )
            if not dry_run:
                connector._send("POST", f"lists/{list_id}/webhooks", json=wanted)  # noqa: SLF001
        elif mine.get("events") != MAILCHIMP_EVENTS or mine.get("sources") != MAILCHIMP_SOURCES:
            steps.append(SetupStep("update", f"list {list_id}", {"id": mine.get("id")}))
            if not dry_run:
                connector._send("PATCH", f"lists/{list_id}/webhooks/{mine['id']}", json=wanted)  # noqa: SLF001
        else:
            steps.append(SetupStep("unchanged", f"list {list_id}", {"id": mine.get("id")}))
    return steps


def _activecampaign(connector: Any, url: str, dry_run: bool) -> list[SetupStep]:
    held = (connector.request("GET", "webhooks").body or {}).get("webhooks") or []
    mine = next((h for h in held if _same(str(h.get("url", "")), url)), None)
    wanted = {"webhook": {"name": "leadsync", "url": url, "events": AC_EVENTS, "sources": AC_SOURCES}}
    if mine is None:
        if not dry_run:
            connector.request("POST", "webhooks", json=wanted)
        return [SetupStep("create", "account", {"events": AC_EVENTS, "sources": AC_SOURCES})]
    if sorted(mine.get("events") or []) != sorted(AC_EVENTS) or sorted(mine.get("sources") or []) != sorted(
        AC_SOURCES
    ):
        if not dry_run:
            connector.request("PUT", f"webhooks/{mine['id']}", json=wanted)
        return [SetupStep("update", "account", {"id": mine.get("id")})]
    return [SetupStep("unchanged", "account", {"id": mine.get("id")})]
