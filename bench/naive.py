"""The straightforward way, as the vendors' examples show: a sequential loop over the official
SDK's list call, and one update request per contact. Same sandbox, same latency, same run.

* HubSpot: ``hubspot-api-client`` ``crm.contacts.basic_api.get_page`` (100 a page) and
  ``basic_api.update`` per contact.
* Mailchimp: ``mailchimp-marketing`` 3.0.80 ``lists.get_list_members_info`` (1,000 a page) and
  ``lists.update_list_member`` per member, ``api_client.host`` pointed at the sandbox (§2).
* ActiveCampaign has no official Python SDK: plain ``httpx``, ``GET /contacts`` (100 a page) and
  ``PUT /contacts/{id}`` with ``fieldValues`` per contact.

Each update writes only leadsync's score fields (no tags, no lifecycle): less work than leadsync's
push does, so the ratio is if anything in the loop's favour. The loops are short: a fixed number
of records is timed and the rate is that count over that time (extrapolated, not run over the whole
audience). A 429 is waited out (``Retry-After``, else 1 s) and retried, and counted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.platforms import PlatformRun

__all__ = ["run_naive"]

VALUES = {"affinity": 42, "engagement": 17, "grade": "B3"}


class _Loop:
    """Times a sequential loop; retries 429s after the platform's wait."""

    def __init__(self, is_429: Callable[[BaseException], float | None]) -> None:
        self.is_429 = is_429
        self.answered_429 = 0
        self.requests = 0

    def call(self, fn: Callable[[], Any]) -> Any:
        while True:
            self.requests += 1
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - only 429s are retried; anything else re-raised
                wait = self.is_429(exc)
                if wait is None:
                    raise
                self.answered_429 += 1
                time.sleep(wait)


def _figures(records: int, seconds: float, loop: _Loop) -> dict[str, Any]:
    return {
        "records": records,
        "seconds": round(seconds, 3),
        "records_per_second": round(records / seconds, 2) if seconds else 0.0,
        "requests": loop.requests,
        "answered_429": loop.answered_429,
    }


def _retry_after(headers: Any) -> float:
    try:
        return float((headers or {}).get("Retry-After") or 1.0)
    except (TypeError, ValueError):
        return 1.0


def _hubspot(run: PlatformRun, pages: int, updates: int) -> dict[str, Any]:
    from hubspot import HubSpot
    from hubspot.crm.contacts import SimplePublicObjectInput
    from hubspot.crm.contacts.exceptions import ApiException

    from leadsync.connectors.hubspot.writeback import properties_for

    def is_429(exc: BaseException) -> float | None:
        if isinstance(exc, ApiException) and exc.status == 429:
            return _retry_after(exc.headers)
        return None

    client = HubSpot(access_token=run.source.inline_secrets["token"], host=run.server.base_url("hubspot"))
    loop, ids, after = _Loop(is_429), [], None
    started = time.perf_counter()
    for _ in range(pages):
        page = loop.call(lambda a=after: client.crm.contacts.basic_api.get_page(limit=100, after=a))
        ids.extend(contact.id for contact in page.results)
        after = page.paging.next.after if page.paging and page.paging.next else None
        if after is None:
            break
    pull = _figures(len(ids), time.perf_counter() - started, loop)
    properties = properties_for(VALUES, run.config.writeback.field_prefix)
    loop = _Loop(is_429)
    started = time.perf_counter()
    for contact_id in ids[:updates]:
        loop.call(
            lambda c=contact_id: client.crm.contacts.basic_api.update(
                c, SimplePublicObjectInput(properties=properties)
            )
        )
    push = _figures(min(updates, len(ids)), time.perf_counter() - started, loop)
    return {
        "how": "hubspot-api-client get_page(limit=100) loop; basic_api.update per contact",
        "pull": pull,
        "push": push,
    }


def _mailchimp(run: PlatformRun, pages: int, updates: int) -> dict[str, Any]:
    import mailchimp_marketing
    from mailchimp_marketing.api_client import ApiClientError

    from leadsync.connectors.mailchimp.writeback import field_defs

    def is_429(exc: BaseException) -> float | None:
        if isinstance(exc, ApiClientError) and exc.status_code == 429:
            return 1.0
        return None

    key = run.source.inline_secrets["api_key"]
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": key, "server": key.rpartition("-")[2]})
    client.api_client.host = run.server.base_url("mailchimp") + "/3.0"  # mailchimp.md §2
    list_id = client.lists.get_all_lists(count=1)["lists"][0]["id"]
    loop, emails = _Loop(is_429), []
    started = time.perf_counter()
    for number in range(pages):
        page = loop.call(
            lambda n=number: client.lists.get_list_members_info(list_id, count=1000, offset=n * 1000)
        )
        emails.extend(member["email_address"] for member in page["members"])
        if len(page["members"]) < 1000:
            break
    pull = _figures(len(emails), time.perf_counter() - started, loop)
    defs = field_defs(run.config.writeback.field_prefix)
    body = {"merge_fields": {defs[name].tag: value for name, value in VALUES.items()}}
    loop = _Loop(is_429)
    started = time.perf_counter()
    for email in emails[:updates]:
        subscriber = hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's member id
        loop.call(lambda s=subscriber: client.lists.update_list_member(list_id, s, body))
    push = _figures(min(updates, len(emails)), time.perf_counter() - started, loop)
    return {
        "how": "mailchimp-marketing get_list_members_info(count=1000) loop; update_list_member per member",
        "pull": pull,
        "push": push,
    }


def _activecampaign(run: PlatformRun, pages: int, updates: int) -> dict[str, Any]:
    def is_429(exc: BaseException) -> float | None:
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429:
            return _retry_after(exc.response.headers)
        return None

    base = run.server.base_url("activecampaign") + "/api/3"
    headers = {"Api-Token": run.source.inline_secrets["api_token"]}

    def get(client: httpx.Client, path: str, **params: Any) -> Any:
        reply = client.get(f"{base}/{path}", params=params)
        reply.raise_for_status()
        return reply.json()

    def put(client: httpx.Client, path: str, body: Any) -> Any:
        reply = client.put(f"{base}/{path}", json=body)
        reply.raise_for_status()
        return reply.json()

    with httpx.Client(headers=headers, timeout=30) as client:
        loop = _Loop(is_429)
        fields = loop.call(lambda: get(client, "fields", limit=100))["fields"]
        prefix = run.config.writeback.field_prefix.upper()
        field_ids = {
            f["perstag"].upper()[len(prefix) :].lower(): f["id"]
            for f in fields
            if str(f.get("perstag", "")).upper().startswith(prefix)
        }
        loop, ids = _Loop(is_429), []
        started = time.perf_counter()
        for number in range(pages):
            page = loop.call(lambda n=number: get(client, "contacts", limit=100, offset=n * 100))
            ids.extend(contact["id"] for contact in page["contacts"])
            if len(page["contacts"]) < 100:
                break
        pull = _figures(len(ids), time.perf_counter() - started, loop)
        body = {
            "contact": {
                "fieldValues": [
                    {"field": field_ids[name], "value": str(value)}
                    for name, value in VALUES.items()
                    if name in field_ids
                ]
            }
        }
        loop = _Loop(is_429)
        started = time.perf_counter()
        for contact_id in ids[:updates]:
            loop.call(lambda c=contact_id: put(client, f"contacts/{c}", body))
        push = _figures(min(updates, len(ids)), time.perf_counter() - started, loop)
    return {
        "how": "no official Python SDK: httpx GET /contacts?limit=100 loop; PUT /contacts/{id} per contact",
        "pull": pull,
        "push": push,
    }


_RUNNERS = {"hubspot": _hubspot, "mailchimp": _mailchimp, "activecampaign": _activecampaign}


def run_naive(run: PlatformRun, *, pages: int, updates: int) -> dict[str, Any]:
    """``pages`` list pages and ``updates`` single-contact updates, timed, against the live sandbox."""
    return _RUNNERS[run.source.platform.value](run, pages, updates)
