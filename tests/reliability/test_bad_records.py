"""Bad records through the real CLI: each one either normalises correctly or goes to quarantine with
its reason, and the rest of the sync goes on (issue "reliability", Build: Bad records).

The records arrive the way real data does, through the emulators' own HTTP APIs: HubSpot
``POST``/``PATCH /crm/v3/objects/contacts``, Mailchimp ``PUT /lists/{id}/members/{hash}``,
ActiveCampaign ``POST /contacts`` with ``fieldValues``. Where the emulator's API refuses the value
(as the real platform would), the emulator's state is edited directly, and the case says so
(``direct``): a custom HubSpot lifecycle stage (added in the portal's settings, not via the API
we emulate), a Mailchimp number field holding "1,200" and a member status the code does not know,
an ActiveCampaign contact with an invalid or empty email, and ActiveCampaign's
``0000-00-00 00:00:00`` dates (the emulator always renders real dates; its renderer is wrapped).

One small world, all cases injected at once, one ``sync``; the checks are table-driven.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from leadsync.sandbox.hubspot.state import email_problem
from leadsync.sync.scorebatch import load_profiles
from leadsync.sync.store.models import Attributes, Event, Identity, Person, Score
from tests.reliability.figures import Figures
from tests.reliability.harness import AC_TOKEN, HUBSPOT_TOKEN, MAILCHIMP_KEY, Cli, leaks, marker_sandbox
from tests.worlds import private_copy

LONG = ("Head of " + "very " * 1999)[:9_996] + "long"  # 10,000 characters
assert len(LONG) == 10_000
ZERO = "0000-00-00 00:00:00"  # activecampaign.md §1: an empty date


@dataclass(frozen=True)
class Case:
    """One injected record: where it lives, and what the store must hold for it afterwards."""

    name: str
    platform: str
    email: str  # as sent to the platform
    data: dict[str, Any] = field(default_factory=dict)  # platform-shaped input (see _inject)
    reason: str | None = None  # quarantined with a reason containing this; None = stored
    expect: dict[str, Any] = field(default_factory=dict)  # Attributes columns of the identity
    direct: str = ""  # what was edited in the emulator's state, and why


CASES = [
    # --- emails ---
    Case(
        "hubspot invalid email",
        "hubspot",
        "not-an-email",
        reason="invalid email",
        direct="HubSpot answers 400 INVALID_EMAIL to an invalid email: set on the contact in state",
    ),
    Case("hubspot empty email", "hubspot", "", reason="no email address"),
    Case("mailchimp invalid email", "mailchimp", "someone@localhost", reason="invalid email"),
    Case(
        "activecampaign invalid email",
        "activecampaign",
        "broken.example.com",
        reason="invalid email",
        direct="AC answers 422 to an invalid email: set on the contact in state",
    ),
    Case(
        "activecampaign empty email",
        "activecampaign",
        "",
        reason="no email address",
        direct="AC answers 422 to an empty email: set on the contact in state",
    ),
    # --- unicode and right-to-left names ---
    Case(
        "hubspot unicode names",
        "hubspot",
        "zoe.orsted@example.com",
        {"firstname": "Zoë", "lastname": "Ørsted-Nuñez 李"},
        expect={"first_name": "Zoë", "last_name": "Ørsted-Nuñez 李"},
    ),
    Case(
        "mailchimp rtl names, unicode email",
        "mailchimp",
        "Jöran.Ünal@Example.com",
        {"merge_fields": {"FNAME": "שלום", "LNAME": "Łukasz 👩‍💻"}},
        expect={"first_name": "שלום", "last_name": "Łukasz 👩‍💻"},
    ),
    Case(
        "activecampaign rtl names",
        "activecampaign",
        "maryam@example.com",
        {"firstName": "مريم", "lastName": "\u200fכהן"},
        expect={"first_name": "مريم", "last_name": "\u200fכהן"},
    ),
    # --- 10,000-character values ---
    Case(
        "hubspot 10k job title",
        "hubspot",
        "long.hs@example.com",
        {"jobtitle": LONG},
        expect={"job_title": LONG},
    ),
    # mailchimp.md §5: text merge fields are truncated to 255 bytes by Mailchimp itself.
    Case(
        "mailchimp 10k job title",
        "mailchimp",
        "long.mc@example.com",
        {"merge_fields": {"JOBTITLE": LONG}},
        expect={"job_title": LONG[:255]},
    ),
    Case(
        "activecampaign 10k job title and name",
        "activecampaign",
        "long.ac@example.com",
        {"firstName": LONG, "fields": {"JOB_TITLE": LONG}},
        expect={"first_name": LONG, "job_title": LONG},
    ),
    # --- null versus "" ---
    Case(
        "hubspot null keeps, empty clears",
        "hubspot",
        "nulls.hs@example.com",
        {"company": "Acme Null", "jobtitle": "Engineer", "patch": {"company": None, "jobtitle": ""}},
        expect={"company": "Acme Null", "job_title": None},
    ),
    Case(
        "mailchimp empty merge fields",
        "mailchimp",
        "nulls.mc@example.com",
        {"merge_fields": {"FNAME": "", "COMPANY": "", "EMPLOYEES": ""}},
        expect={"first_name": None, "company": None, "company_size": None},
    ),
    Case(
        "activecampaign empty strings",
        "activecampaign",
        "nulls.ac@example.com",
        {"firstName": "", "lastName": "Kept", "fields": {"COMPANY": "", "COMPANY_SIZE": ""}},
        expect={"first_name": None, "last_name": "Kept", "company": None, "company_size": None},
    ),
    # --- unknown enum values ---
    Case(
        "hubspot custom lifecycle stage",
        "hubspot",
        "partner.hs@example.com",
        {"lifecyclestage": "partner_custom"},
        expect={"lifecycle_stage": "partner_custom"},
        direct="the stage is added to lifecyclestage's options in state (portal settings), then PATCHed",
    ),
    Case(
        "mailchimp unknown status",
        "mailchimp",
        "status.mc@example.com",
        {"status": "snoozed"},
        expect={"first_name": "Status"},
        direct="Mailchimp refuses an unknown status: set on the member in state",
    ),
    # --- numbers as strings ---
    Case(
        "hubspot size with thousands separator",
        "hubspot",
        "size1.hs@example.com",
        {"numemployees": "1,200"},
        expect={"company_size": 1200},
    ),
    Case(
        "hubspot size as text",
        "hubspot",
        "size2.hs@example.com",
        {"numemployees": " 250 "},
        expect={"company_size": 250},
    ),
    Case(
        "hubspot size range",
        "hubspot",
        "size3.hs@example.com",
        {"numemployees": "25-50"},
        expect={"company_size": 25},
    ),
    Case(
        "hubspot size unreadable",
        "hubspot",
        "size4.hs@example.com",
        {"numemployees": "about fifty"},
        expect={"company_size": None},
    ),
    Case(
        "mailchimp size as string",
        "mailchimp",
        "size1.mc@example.com",
        {"merge_fields": {"EMPLOYEES": "250"}},
        expect={"company_size": 250},
    ),
    Case(
        "mailchimp size with thousands separator",
        "mailchimp",
        "size2.mc@example.com",
        {"employees_direct": "1,200"},
        expect={"company_size": 1200},
        direct='EMPLOYEES is a number field: Mailchimp refuses "1,200", so it is set in state',
    ),
    Case(
        "activecampaign size with thousands separator",
        "activecampaign",
        "size1.ac@example.com",
        {"fields": {"COMPANY_SIZE": "1,200"}},
        expect={"company_size": 1200},
    ),
    Case(
        "activecampaign size as text",
        "activecampaign",
        "size2.ac@example.com",
        {"fields": {"COMPANY_SIZE": "250"}},
        expect={"company_size": 250},
    ),
    # --- ActiveCampaign's empty dates ---
    Case(
        "activecampaign zero cdate",
        "activecampaign",
        "zero.cdate@example.com",
        {"render": {"cdate": ZERO}},
        expect={"created_at": None},
        direct="the renderer writes 0000-00-00 00:00:00 for cdate",
    ),
    Case(
        "activecampaign zero udate",
        "activecampaign",
        "zero.udate@example.com",
        {"render": {"udate": ZERO}},
        expect={"updated_at": "cdate"},
        direct="the renderer writes 0000-00-00 00:00:00 for udate",
    ),
]
# The same person with the address in different cases on each platform: one person, three identities.
VARIANTS = {
    "hubspot": "Casey.Variant@Example.COM",
    "mailchimp": "CASEY.VARIANT@EXAMPLE.COM",
    "activecampaign": "casey.Variant@example.com",
}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class Injector:
    """Puts records on the platforms through their APIs (or state, where the API refuses)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.hubspot = httpx.Client(
            base_url=server.base_url("hubspot"),
            headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"},
            timeout=10,
        )
        self.mailchimp = httpx.Client(
            base_url=f"{server.base_url('mailchimp')}/3.0", auth=("x", MAILCHIMP_KEY), timeout=10
        )
        self.ac = httpx.Client(
            base_url=f"{server.base_url('activecampaign')}/api/3", headers={"Api-Token": AC_TOKEN}, timeout=10
        )
        self.list_id = self.mailchimp.get("/lists").json()["lists"][0]["id"]
        fields = self.ac.get("/fields", params={"limit": 100}).json()["fields"]
        self.ac_field = {f["perstag"].upper(): f["id"] for f in fields}
        self.ac_render: dict[str, dict[str, str]] = {}  # contact id -> rendered keys to override

    def emulator(self, platform: str) -> Any:
        return self.server.state.hosts[platform].emulator

    def hubspot_contact(self, email: str, data: dict[str, Any]) -> str:
        data = dict(data)
        patch = data.pop("patch", None)
        if "lifecyclestage" in data:
            stage = data["lifecyclestage"]
            prop = self.emulator("hubspot").state.properties["contacts"]["lifecyclestage"]
            if stage not in {o["value"] for o in prop.options}:
                prop.options.append({"label": stage, "value": stage, "displayOrder": 99, "hidden": False})
        refused = bool(email) and email_problem(email) is not None
        placeholder = f"placeholder.{len(email)}@example.com" if refused else email
        props = {"email": placeholder, **data} if email else data
        made = self.hubspot.post("/crm/v3/objects/contacts", json={"properties": props})
        assert made.status_code == 201, made.text
        remote_id = made.json()["id"]
        if refused:
            state = self.emulator("hubspot").state
            with state.lock:
                state.by_email.pop(placeholder, None)
                state.objects["contacts"][str(remote_id)].properties["email"] = email
                state.by_email[email.lower()] = str(remote_id)
        if patch:
            patched = self.hubspot.patch(f"/crm/v3/objects/contacts/{remote_id}", json={"properties": patch})
            assert patched.status_code == 200, patched.text
        return str(remote_id)

    def mailchimp_member(self, email: str, data: dict[str, Any]) -> str:
        digest = hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's member id
        merge = {"FNAME": "Status"} if "status" in data else {}
        merge.update(data.get("merge_fields", {}))
        put = self.mailchimp.put(
            f"/lists/{self.list_id}/members/{digest}",
            json={"email_address": email, "status_if_new": "subscribed", "merge_fields": merge},
        )
        assert put.status_code == 200, put.text
        member = self.emulator("mailchimp").state.audiences[self.list_id].members[digest]
        if "status" in data:
            member.status = data["status"]
        if "employees_direct" in data:
            member.merge_fields["EMPLOYEES"] = data["employees_direct"]
        return f"{self.list_id}:{digest}"

    def ac_contact(self, email: str, data: dict[str, Any]) -> str:
        placeholder = email if "@" in email else f"placeholder.{len(self.ac_render)}@example.com"
        body: dict[str, Any] = {"email": placeholder}
        for key in ("firstName", "lastName"):
            if key in data:
                body[key] = data[key]
        body["fieldValues"] = [
            {"field": self.ac_field[tag], "value": value} for tag, value in data.get("fields", {}).items()
        ]
        made = self.ac.post("/contacts", json={"contact": body})
        assert made.status_code == 201, made.text
        contact_id = made.json()["contact"]["id"]
        if placeholder != email:
            state = self.emulator("activecampaign").state
            with state.lock:
                contact = state.contacts[int(contact_id)]
                state.contact_by_email.pop(placeholder, None)
                contact.email = email
        if data.get("render"):
            self.ac_render[str(contact_id)] = data["render"]
        return str(contact_id)

    def wrap_ac_renderer(self) -> None:
        render = self.emulator("activecampaign").render
        original: Callable[..., dict[str, Any]] = render.contact
        overrides = self.ac_render

        def contact(record: Any, **kwargs: Any) -> dict[str, Any]:
            body = original(record, **kwargs)
            body.update(overrides.get(str(record.id), {}))
            return body

        render.contact = contact

    def inject(self, case: Case) -> str:
        return {
            "hubspot": self.hubspot_contact,
            "mailchimp": self.mailchimp_member,
            "activecampaign": self.ac_contact,
        }[case.platform](case.email, case.data)


@dataclass
class Synced:
    cli: Cli
    server: Any
    remote: dict[str, str]  # case name -> remote id
    variants: dict[str, str]  # platform -> remote id of the case variants
    result: dict[str, Any]
    status: dict[str, Any]
    quarantine: list[dict[str, Any]]
    retried: dict[str, Any]
    figures: Figures

    def attributes(self, source: str, remote_id: str) -> Any:
        engine = self.cli.engine()
        try:
            with engine.connect() as connection:
                table = Attributes.__table__  # type: ignore[attr-defined]
                return connection.execute(
                    select(table).where(Attributes.source == source, Attributes.remote_id == remote_id)
                ).one_or_none()
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def synced(reliability_world: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    counted = Figures()
    with marker_sandbox(private_copy(reliability_world)) as server:
        cli = Cli.make(server, tmp_path_factory.mktemp("bad-records"), counted)
        injector = Injector(server)
        remote = {case.name: injector.inject(case) for case in CASES}
        variants = {
            "hubspot": injector.hubspot_contact(VARIANTS["hubspot"], {"firstname": "Casey"}),
            "mailchimp": injector.mailchimp_member(
                VARIANTS["mailchimp"], {"merge_fields": {"COMPANY": "Variant Co"}}
            ),
            "activecampaign": injector.ac_contact(
                VARIANTS["activecampaign"], {"fields": {"JOB_TITLE": "CTO"}}
            ),
        }
        injector.wrap_ac_renderer()
        done = cli.run("sync", "--json", check=False)
        result = json.loads(done.stdout)
        status = {row["source"]: row for row in cli.json("status")}
        quarantine = cli.json("quarantine")
        retried = cli.json("quarantine", "retry")
        yield Synced(cli, server, remote, variants, result, status, quarantine, retried, counted)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_bad_record_normalises_or_goes_to_quarantine_with_its_reason(case: Case, synced: Synced) -> None:
    remote_id = synced.remote[case.name]
    held = [
        row for row in synced.quarantine if row["source"] == case.platform and row["remote_id"] == remote_id
    ]
    row = synced.attributes(case.platform, remote_id)
    if case.reason is not None:
        assert len(held) == 1, (held, synced.quarantine)
        assert case.reason in held[0]["reason"], held[0]
        assert row is None, "a quarantined contact was stored too"
        return
    assert held == [], held
    assert row is not None, f"{case.name}: neither stored nor quarantined"
    attributes = row
    for column, want in case.expect.items():
        have = getattr(attributes, column)
        if want == "cdate":  # an empty udate falls back to the contact's creation time
            assert have is not None and _utc(have) == _utc(attributes.created_at), (
                have,
                attributes.created_at,
            )
        else:
            assert have == want, f"{case.name}: {column} is {have!r}, want {want!r}"


def test_the_rest_of_the_sync_goes_on_and_status_counts_the_quarantine(synced: Synced) -> None:
    assert all(row["ok"] for row in synced.result["pull"]), synced.result["pull"]
    assert all(row["ok"] for row in synced.result["push"]), synced.result["push"]
    bad = [case for case in CASES if case.reason is not None]
    for platform in ("hubspot", "mailchimp", "activecampaign"):
        want = sum(1 for case in bad if case.platform == platform)
        assert synced.status[platform]["quarantined"] == want, (platform, synced.status[platform])
    # Retry re-reads them: the data is still bad, so they stay (once each), nothing is resolved.
    assert (synced.retried["resolved"], synced.retried["still_bad"]) == (0, len(bad)), synced.retried
    assert len(synced.cli.json("quarantine")) == len(bad)


def test_one_email_in_different_cases_on_three_platforms_is_one_person(synced: Synced) -> None:
    engine = synced.cli.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Person.id, Person.email, Identity.source, Identity.remote_id)
                .join(Identity, Identity.person_id == Person.id)
                .where(Person.email.ilike("casey.variant@example.com"))
            ).all()
            assert {row.email for row in rows} == {"casey.variant@example.com"}, rows
            assert {(row.source, row.remote_id) for row in rows} == set(synced.variants.items())
            (profile,) = load_profiles(connection, [rows[0].id])
            scored = connection.execute(select(Score).where(Score.person_id == rows[0].id)).one_or_none()
    finally:
        engine.dispose()
    assert (profile.first_name, profile.company, profile.job_title) == ("Casey", "Variant Co", "CTO"), profile
    assert scored is not None


def test_an_empty_value_on_one_platform_does_not_hide_another_platforms_value(synced: Synced) -> None:
    """HubSpot's "" clears its job title; the merged profile still has the name and company from
    elsewhere, never ""."""
    engine = synced.cli.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Attributes.__table__)).all()  # type: ignore[attr-defined]
            for row in rows:
                for name in ("first_name", "last_name", "job_title", "company", "industry", "country"):
                    assert getattr(row, name) != "", (row.source, row.remote_id, name)
    finally:
        engine.dispose()


def test_activecampaign_offset_dates_are_stored_as_the_same_utc_instant(synced: Synced) -> None:
    state = synced.server.state.hosts["activecampaign"].emulator.state
    tz_name = synced.server.state.hosts["activecampaign"].emulator.render.tz
    zeroed = {synced.remote[c.name] for c in CASES if c.platform == "activecampaign" and "render" in c.data}
    checked = 0
    for contact_id, contact in state.contacts.items():
        if str(contact_id) in zeroed:
            continue
        row = synced.attributes("activecampaign", str(contact_id))
        if row is None:
            continue  # quarantined (bad email)
        attributes = row
        # The wire carries whole seconds (§1: ``2018-09-28T17:30:52-05:00``).
        assert _utc(attributes.updated_at) == contact.udate.astimezone(UTC).replace(microsecond=0), contact_id
        assert _utc(attributes.created_at) == contact.cdate.astimezone(UTC).replace(microsecond=0), contact_id
        checked += 1
    assert checked >= 10
    assert datetime(2026, 1, 15, tzinfo=UTC).astimezone(tz_name).utcoffset() != 0, "the account is on UTC"
    engine = synced.cli.engine()
    try:
        with engine.connect() as connection:
            events = connection.execute(
                select(Event.source_id, Event.occurred_at).where(Event.source == "activecampaign")
            ).all()
    finally:
        engine.dispose()
    activities = {f"activity:{a.id}": a for a in state.activities}
    matched = 0
    for source_id, occurred in events:
        activity = activities.get(source_id)
        if activity is not None:
            assert _utc(occurred) == activity.tstamp.astimezone(UTC).replace(microsecond=0), source_id
            matched += 1
    assert matched > 0


def test_unicode_and_long_values_survive_the_cli_outputs(synced: Synced) -> None:
    shown = synced.cli.json("leads", "--limit", "500")
    emails = {row["email"] for row in shown}
    assert "jöran.ünal@example.com" in emails and "maryam@example.com" in emails
    explained = synced.cli.json("explain", "Jöran.Ünal@EXAMPLE.com")
    assert explained["email"] == "jöran.ünal@example.com"
    assert synced.cli.json("explain", "long.ac@example.com")["contributions"] is not None


def test_nothing_is_lost_or_duplicated_and_the_figures_count_it(synced: Synced, figures: Figures) -> None:
    """Every record a platform holds is either an identity in the store or in quarantine, once."""
    engine = synced.cli.engine()
    try:
        with engine.connect() as connection:
            identities = connection.execute(select(Identity.source, Identity.remote_id)).all()
            emails = connection.execute(select(Person.email)).scalars().all()
    finally:
        engine.dispose()
    held = {(row["source"], row["remote_id"]) for row in synced.quarantine}
    hosts = synced.server.state.hosts
    platform_ids = {
        ("hubspot", oid)
        for oid, obj in hosts["hubspot"].emulator.state.objects["contacts"].items()
        if not obj.archived
    }
    for list_id, audience in hosts["mailchimp"].emulator.state.audiences.items():
        platform_ids |= {
            ("mailchimp", f"{list_id}:{key}")
            for key, member in audience.members.items()
            if member.status != "archived"
        }
    platform_ids |= {("activecampaign", str(cid)) for cid in hosts["activecampaign"].emulator.state.contacts}
    stored = set(identities)
    lost = len(platform_ids - stored - held)
    duplicated = (
        (len(identities) - len(stored))
        + len(stored & held)
        + (len(emails) - len({e.lower() for e in emails}))
    )
    figures.add("records lost", lost)
    figures.add("records duplicated", duplicated)
    figures.add("bad records injected", len(CASES) + len(VARIANTS))
    figures.add("records quarantined", len(held))
    for figure, count in synced.figures.counts.items():
        figures.add(figure, count)
    leaked = leaks(synced.cli.outputs)  # bad records echoed in errors must not carry a secret either
    figures.add("secrets leaked", len(leaked))
    assert leaked == []
    assert (lost, duplicated) == (0, 0), (platform_ids - stored - held, stored & held)
