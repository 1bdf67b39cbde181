"""Many accounts per platform (``sandbox serve --accounts N``): each account's credentials.

Like the real platforms, one address serves every account and the credential a request carries
names the account: a HubSpot private-app token (its portal), a Mailchimp API key, an ActiveCampaign
API token. Account 1 keeps the sandbox's usual credentials, so a one-account sandbox is unchanged.
Each account has its own emulator: its own world (generated from ``seed + index``) and its own
rate-limit budget, since the platforms count limits per portal / key (HubSpot fact sheet §5,
Mailchimp fact sheet §9, ActiveCampaign fact sheet §8).
"""

from __future__ import annotations

import hashlib
from typing import Any

from leadsync.sandbox.activecampaign.emulator import SANDBOX_API_TOKEN
from leadsync.sandbox.hubspot.emulator import SANDBOX_PORTAL_ID
from leadsync.sandbox.mailchimp.emulator import SANDBOX_API_KEY

__all__ = ["ACCOUNT_HEADER", "account_extra", "source_name"]

# Admin requests (``/_sandbox/...``) carry no platform credential: this header (or an ``account``
# query parameter) says which account, numbered from 1; without it, account 1.
ACCOUNT_HEADER = "X-Sandbox-Account"


def _hex(platform: str, index: int, length: int) -> str:
    digest = ""
    counter = 0
    while len(digest) < length:
        digest += hashlib.sha256(f"leadsync-sandbox:{platform}:{index}:{counter}".encode()).hexdigest()
        counter += 1
    return digest[:length]


def account_extra(platform: str, index: int) -> dict[str, Any]:
    """The emulator options that give account ``index`` (0-based) its own credentials."""
    if index == 0:
        return {}
    if platform == "hubspot":
        return {"token": f"pat-na1-sandbox-{index:04d}-hubspot", "portal_id": SANDBOX_PORTAL_ID + index}
    if platform == "mailchimp":
        datacenter = SANDBOX_API_KEY.rsplit("-", 1)[1]
        return {"api_key": f"{_hex(platform, index, 32)}-{datacenter}"}
    if platform == "activecampaign":
        return {"api_token": _hex(platform, index, len(SANDBOX_API_TOKEN))}
    raise KeyError(platform)


def source_name(platform: str, index: int, count: int) -> str:
    """The config's source name for account ``index`` of ``count``: the platform's name alone for a
    one-account sandbox, else numbered from 1 (``hubspot-007``)."""
    if count == 1:
        return platform
    return f"{platform}-{index + 1:0{max(3, len(str(count)))}d}"
