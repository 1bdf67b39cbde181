"""Acceptance 3 (Mailchimp): the official ``mailchimp-marketing`` 3.0.80 SDK, set up as its README
says (``set_config`` with the key and server, ``api_client.host`` pointed at the sandbox,
mailchimp.md §2), reads stores, carts, orders, segments, batches and automations, and what it
reads matches the world.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections import Counter
from collections.abc import Iterator

import mailchimp_marketing
import pytest
import requests

from leadsync.connectors.records import EventType, Platform
from leadsync.sandbox.mailchimp.emulator import SANDBOX_API_KEY, MailchimpEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import World, generate_world

MAILCHIMP = Platform.MAILCHIMP


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(250, 7)


@pytest.fixture(scope="module")
def sdk(world: World) -> Iterator[mailchimp_marketing.Client]:
    with SandboxServer.for_world(
        world, emulators=[MailchimpEmulator], ports={"mailchimp": 0}, rate_limits=True
    ) as server:
        client = mailchimp_marketing.Client()
        client.set_config({"api_key": SANDBOX_API_KEY, "server": "us6", "timeout": 30})
        client.api_client.host = server.base_url("mailchimp") + "/3.0"
        yield client


def _by_email(world: World, kind: EventType) -> Counter[str]:
    emails = {p.id: p.email_on(MAILCHIMP).lower() for p in world.persons}
    return Counter(
        emails[e.person] for e in world.iter_events() if e.platform is MAILCHIMP and e.type is kind
    )


def test_given_the_sdk_when_reading_the_store_then_it_is_the_main_audience_store(sdk, world) -> None:
    stores = sdk.ecommerce.stores()
    main = sdk.lists.get_all_lists(sort_field="date_created", sort_dir="ASC")["lists"][0]
    assert stores["total_items"] == 1 and stores["stores"][0]["list_id"] == main["id"]
    assert sdk.ecommerce.get_store(stores["stores"][0]["id"])["id"] == stores["stores"][0]["id"]


def test_given_the_sdk_when_reading_carts_then_each_member_has_the_world_abandoned_carts(sdk, world) -> None:
    store = sdk.ecommerce.stores()["stores"][0]["id"]
    carts = sdk.ecommerce.get_store_carts(store, count=1000)["carts"]
    assert Counter(c["customer"]["email_address"].lower() for c in carts) == _by_email(
        world, EventType.CART_ABANDONED
    )
    assert sum(_by_email(world, EventType.CART_ABANDONED).values()) > 0
    assert sdk.ecommerce.get_store_cart(store, carts[0]["id"])["order_total"] == carts[0]["order_total"]


def test_given_the_sdk_when_reading_orders_then_each_member_has_the_world_purchases(sdk, world) -> None:
    store = sdk.ecommerce.stores()["stores"][0]["id"]
    orders = sdk.ecommerce.get_store_orders(store, count=1000)["orders"]
    assert Counter(o["customer"]["email_address"].lower() for o in orders) == _by_email(
        world, EventType.PURCHASE
    )
    amounts = sorted(
        float(e.properties["amount"]) for e in world.iter_events() if e.type is EventType.PURCHASE
    )
    assert sorted(float(o["order_total"]) for o in orders) == amounts and amounts


def test_given_a_tag_of_buyers_when_read_as_segments_then_it_holds_the_world_buyers(sdk, world) -> None:
    list_id = sdk.lists.get_all_lists(sort_field="date_created", sort_dir="ASC")["lists"][0]["id"]
    buyers = sorted(_by_email(world, EventType.PURCHASE))
    created = sdk.lists.create_segment(list_id, {"name": "Buyers", "static_segment": buyers})
    segments = sdk.lists.list_segments(list_id)["segments"]
    assert [(s["name"], s["member_count"]) for s in segments] == [("Buyers", len(buyers))]
    one = sdk.lists.get_segment(list_id, created["id"])
    members = sdk.lists.get_segment_members_list(list_id, created["id"], count=1000)["members"]
    assert (
        one["member_count"] == len(buyers) and sorted(m["email_address"].lower() for m in members) == buyers
    )


def test_given_a_batch_of_reads_when_finished_then_its_results_hold_the_world_carts(sdk, world) -> None:
    store = sdk.ecommerce.stores()["stores"][0]["id"]
    batch = sdk.batches.start(
        {
            "operations": [
                {"method": "GET", "path": f"/ecommerce/stores/{store}/carts", "operation_id": "carts"}
            ]
        }
    )
    for _ in range(500):
        status = sdk.batches.status(batch["id"])
        if status["status"] == "finished":
            break
        time.sleep(0.02)
    assert status["status"] == "finished" and status["finished_operations"] == 1 == status["total_operations"]
    assert any(b["id"] == batch["id"] for b in sdk.batches.list()["batches"])
    archive = requests.get(status["response_body_url"], timeout=10).content
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        (member,) = [m for m in tar.getmembers() if m.isfile()]
        (result,) = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    assert result["status_code"] == 200 and result["operation_id"] == "carts"
    assert json.loads(result["response"])["total_items"] == sum(
        _by_email(world, EventType.CART_ABANDONED).values()
    )


def test_given_the_sdk_when_reading_automations_then_their_sends_are_the_world_counts(sdk, world) -> None:
    flows = {a["trigger_settings"]["workflow_type"]: a for a in sdk.automations.list()["automations"]}
    assert flows["abandonedCart"]["emails_sent"] == sum(_by_email(world, EventType.CART_ABANDONED).values())
    joined = [p for p in world.persons if MAILCHIMP in p.platforms and p.created_at >= world.start]
    assert flows["welcomeSeries"]["emails_sent"] == len(joined) > 0
    one = sdk.automations.get(flows["welcomeSeries"]["id"])
    assert one["settings"]["title"] == "Welcome new subscribers"
