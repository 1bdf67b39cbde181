"""Issue 21, acceptance 1: after one ``leadsync sync`` of a world with meetings, calls, form
submissions, carts and orders, the store holds every one of them: the counts per type and per
person equal the world file's.

What each world event is expected to become (the connectors' documented rules):

* HubSpot ``meeting_booked`` -> ``meeting_booked`` with the same outcome; ``call`` -> ``call``
  with ``completed`` / ``not_connected``;
* HubSpot form conversions -> one event per submission, typed by the form's name
  (``connectors.hubspot.normalize.conversion_type``): ``demo-request`` and ``contact-sales`` are
  demo requests (hand-raisers, scoring research §2.1), ``download-*`` content downloads, the
  webinar registration and the newsletter sign-up form submissions; each with the world's page URL;
* Mailchimp ``cart_abandoned`` and ``purchase`` -> the same, on the member with that email.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from leadsync.connectors.records import EventType, Platform
from leadsync.sync.store.models import Event, Identity, Person
from tests.integration.pipeline.harness import Leadsync, serve

FORM_TYPES = {
    "demo-request": EventType.DEMO_REQUEST,
    "contact-sales": EventType.DEMO_REQUEST,
    "webinar-registration": EventType.FORM_SUBMIT,
    "newsletter-signup": EventType.FORM_SUBMIT,
}
CONVERSIONS = {EventType.FORM_SUBMIT, EventType.DEMO_REQUEST, EventType.CONTENT_DOWNLOAD}
COVERED = (
    *CONVERSIONS,
    EventType.MEETING_BOOKED,
    EventType.CALL,
    EventType.CART_ABANDONED,
    EventType.PURCHASE,
)


def _expected(world: Any) -> Counter[tuple[str, str, str, str]]:
    """(person email, platform, type, detail) for every world event of the covered kinds."""
    out: Counter[tuple[str, str, str, str]] = Counter()
    for person in world.persons:
        email = person.email.strip().lower()
        for e in world.events_of(person.id):
            props = e.properties or {}
            if e.platform is Platform.HUBSPOT and e.type in CONVERSIONS:
                form = str(props.get("form") or "")
                kind = FORM_TYPES.get(
                    form, EventType.CONTENT_DOWNLOAD if form.startswith("download-") else e.type
                )
                out[(email, "hubspot", kind.value, e.url or "")] += 1
            elif e.platform is Platform.HUBSPOT and e.type in (EventType.MEETING_BOOKED, EventType.CALL):
                out[(email, "hubspot", e.type.value, str(props["outcome"]))] += 1
            elif e.platform is Platform.MAILCHIMP and e.type in (
                EventType.CART_ABANDONED,
                EventType.PURCHASE,
            ):
                out[(email, "mailchimp", e.type.value, "")] += 1
    return out


def _stored(lead: Leadsync) -> Counter[tuple[str, str, str, str]]:
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Person.email, Event.platform, Event.type, Event.url, Event.properties)
                .join(
                    Identity,
                    (Identity.source == Event.source) & (Identity.remote_id == Event.remote_contact_id),
                )
                .join(Person, Person.id == Identity.person_id)
                .where(Event.type.in_([t.value for t in COVERED]))
            ).all()
    finally:
        engine.dispose()
    out: Counter[tuple[str, str, str, str]] = Counter()
    for email, platform, kind, url, properties in rows:
        if kind in ("meeting_booked", "call"):
            detail = str((properties or {}).get("outcome"))
        elif platform == "hubspot":
            detail = url or ""
        else:
            detail = ""
        out[(email, platform, kind, detail)] += 1
    return out


def test_given_a_world_with_new_engagement_when_synced_once_then_the_store_holds_every_event(
    world: Any, tmp_path: Path
) -> None:
    expected = _expected(world)
    kinds = Counter(kind for (_, _, kind, _), n in expected.items() for _ in range(n))
    for kind in (
        "meeting_booked",
        "call",
        "demo_request",
        "content_download",
        "form_submit",
        "cart_abandoned",
        "purchase",
    ):
        assert kinds[kind] > 0, f"the test world has no {kind}: pick another seed"
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "lead")
        lead.run("sync")
    stored = _stored(lead)
    assert Counter(k[2] for k in stored.elements()) == kinds  # per type
    missing, extra = expected - stored, stored - expected
    assert not missing and not extra, (
        f"missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
    )  # per person
