"""Links from the report to a contact on its platform: the page a salesperson opens, not the API.

Each platform's pattern, and where it comes from:

* HubSpot: ``https://app.hubspot.com/contacts/{portal_id}/record/0-1/{contact_id}``. ``0-1`` is the
  object type id of contacts (https://developers.hubspot.com/docs/api/crm/understanding-the-crm,
  "object type ID values"). The path itself is practice, not API reference: it is the address
  HubSpot's app shows for a contact record, and the API reference documents no record-page URL
  (a contact's ``url`` field is only "The URL associated with the object", HubSpot fact sheet §2).
  The Hub ID is not in the API's base URL, so it comes from the source's ``options.portal_id``
  (``leadsync check`` prints it: "HubSpot portal N reachable").
* Mailchimp: ``https://{dc}.admin.mailchimp.com/lists/members/view?id={web_id}``: the Marketing API
  reference describes a list member's ``web_id`` as "The ID used in the Mailchimp web application.
  View this member in your Mailchimp account at https://{dc}.admin.mailchimp.com/lists/members/view?id={web_id}"
  (https://mailchimp.com/developer/marketing/api/list-members/). The data centre is ``options.dc``
  or the first label of a ``https://us6.api.mailchimp.com/3.0`` base URL (Mailchimp fact sheet §1).
* ActiveCampaign: ``https://{account}.activehosted.com/app/contacts/{contact_id}``, the hosted app's
  contact page, as ActiveCampaign's own WooCommerce plugin builds it from the account's API URL
  (activecampaign/activecampaign-for-woocommerce, ``hosted_contact_url``). The account is
  ``options.account`` or the first label of ``https://{account}.api-us1.com/api/3`` (ActiveCampaign
  fact sheet §1).

Pure: config and stored identifiers in, URLs out. A source whose account cannot be told gets no link
and a hint naming the option to set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from leadsync.config.settings import LeadsyncConfig, SourceConfig

__all__ = ["ContactLink", "LinkMaker", "link_maker"]

PLATFORM_NAMES = {"hubspot": "HubSpot", "mailchimp": "Mailchimp", "activecampaign": "ActiveCampaign"}

_MAILCHIMP_API_HOST = re.compile(r"^([a-z]{2}[0-9]{1,3})\.api\.mailchimp\.com$")
_ACTIVECAMPAIGN_API_HOST = re.compile(
    r"^([a-z0-9][a-z0-9-]*)\.(?:api-[a-z]{2}[0-9]+\.com|activehosted\.com)$"
)


@dataclass(frozen=True)
class ContactLink:
    source: str
    platform: str  # "HubSpot", "Mailchimp", "ActiveCampaign"
    url: str | None  # None: the account is unknown (see ``hint``)
    hint: str = ""


def _host(url: str | None) -> str:
    return (urlsplit(url).hostname or "") if url else ""


@dataclass(frozen=True)
class _SourceLinks:
    source: str
    platform: str
    root: str | None  # the account's web-app root, None when unknown
    hint: str

    def link(self, remote_id: str, raw: dict[str, Any] | None) -> ContactLink:
        name = PLATFORM_NAMES.get(self.platform, self.platform)
        if self.root is None:
            return ContactLink(self.source, name, None, self.hint)
        if self.platform == "hubspot":
            return ContactLink(self.source, name, f"{self.root}/record/0-1/{quote(remote_id, safe='')}")
        if self.platform == "mailchimp":
            web_id = (raw or {}).get("web_id")
            if web_id in (None, ""):
                return ContactLink(self.source, name, None, "no web_id stored yet: the next pull reads it")
            return ContactLink(
                self.source, name, f"{self.root}/lists/members/view?id={quote(str(web_id), safe='')}"
            )
        return ContactLink(self.source, name, f"{self.root}/app/contacts/{quote(remote_id, safe='')}")


def _source_links(source: SourceConfig) -> _SourceLinks:
    platform = source.platform.value
    options = source.options
    if platform == "hubspot":
        portal = options.get("portal_id")
        if portal:
            return _SourceLinks(source.name, platform, f"https://app.hubspot.com/contacts/{int(portal)}", "")
        return _SourceLinks(
            source.name, platform, None, f"set [sources.options] portal_id for {source.name} to link contacts"
        )
    if platform == "mailchimp":
        match = _MAILCHIMP_API_HOST.match(_host(source.base_url))
        dc = options.get("dc") or (match.group(1) if match else None)
        if dc:
            return _SourceLinks(source.name, platform, f"https://{dc}.admin.mailchimp.com", "")
        return _SourceLinks(
            source.name, platform, None, f"set [sources.options] dc for {source.name} to link members"
        )
    match = _ACTIVECAMPAIGN_API_HOST.match(_host(source.base_url))
    account = options.get("account") or (match.group(1) if match else None)
    if account:
        return _SourceLinks(source.name, platform, f"https://{account}.activehosted.com", "")
    return _SourceLinks(
        source.name, platform, None, f"set [sources.options] account for {source.name} to link contacts"
    )


class LinkMaker:
    """Builds each identity's link from the sources of one config."""

    def __init__(self, sources: list[SourceConfig]) -> None:
        self._by_source = {source.name: _source_links(source) for source in sources}

    def link(self, source: str, platform: str, remote_id: str, raw: dict[str, Any] | None) -> ContactLink:
        maker = self._by_source.get(source)
        if maker is None:  # a source no longer in the config: its platform, no account to link to
            return ContactLink(source, PLATFORM_NAMES.get(platform, platform), None, "not in the config")
        return maker.link(remote_id, raw)


def link_maker(config: LeadsyncConfig | None) -> LinkMaker:
    return LinkMaker(list(config.sources) if config is not None else [])
