"""The sandbox world: who exists, on which platforms, and what each person did when.

A world is what the three emulators serve. It is stored as JSON Lines (DESIGN.md, "Sandbox"): one
object a line, each with ``kind`` first and a fixed key order, UTC times as ``YYYY-MM-DDTHH:MM:SSZ``,
so the same world is always the same bytes::

    {"kind":"world","version":1,"seed":7,"contacts":5000,"campaigns":153,"events":544774,...}
    {"kind":"campaign","id":"mc-20260505-newsletter","platform":"mailchimp","name":...,"links":[...]}
    {"kind":"person","id":"p1","email":"ana@acme.io",...,"platform_emails":{},"hidden":{...}}
    {"kind":"event","id":"e1","person":"p1","platform":"mailchimp","type":"email_sent","at":...}

(Lines are compact, without spaces; DESIGN.md spaces its example for reading.) Keys with no value
are written as ``null`` on persons and left out on events.

The header comes first, then the campaigns by send time, then every person followed by their events
in time order. A person's ``hidden`` object is the generator's ground truth (fit, intent, buying
stage over time): emulators must never expose it; the backtest may read it.

Everything here is plain data with lookups. Datetimes are aware and in UTC, to the second.
"""

from __future__ import annotations

import bisect
import gc
import io
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from leadsync.connectors.errors import ConfigError
from leadsync.connectors.records import EventType, Platform

__all__ = [
    "FORMAT_VERSION",
    "SENIORITIES",
    "Campaign",
    "Event",
    "Hidden",
    "Person",
    "Stage",
    "StageChange",
    "World",
    "format_time",
    "parse_time",
    "pause_gc",
]

FORMAT_VERSION = 1

# The seniority levels the generator uses, most senior first (the ``seniority`` contact attribute).
SENIORITIES = ("c-level", "vp", "director", "manager", "individual", "intern", "student")

# orjson writes aware UTC datetimes as ...Z and never writes microseconds with these options.
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS
_PLATFORMS = {p.value: p for p in Platform}
_EVENT_TYPES = {t.value: t for t in EventType}


class Stage(StrEnum):
    """Buying stage, the hidden truth the stage score tries to recover (DESIGN.md, "Scores")."""

    AWARENESS = "awareness"
    INVESTIGATION = "investigation"
    DECISION = "decision"
    ACTION = "action"


_STAGES = {s.value: s for s in Stage}


def format_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` for an aware datetime (converted to UTC, sub-seconds dropped)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: world times must be aware (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """The inverse of ``format_time``; also accepts any ISO 8601 time with an offset."""
    if len(text) == 20 and text[19] == "Z":  # our own format: already UTC, whole seconds
        return datetime.fromisoformat(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no offset: world times are UTC, e.g. 2026-06-01T09:30:00Z")
    return moment.astimezone(UTC).replace(microsecond=0)


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageChange:
    """From ``at`` on, the person is in ``stage`` (until the next change)."""

    stage: Stage
    at: datetime


@dataclass(slots=True)
class Hidden:
    """Ground truth about a person that no platform knows.

    ``fit`` (0–1) is how well the person matches the seller's buyer persona; ``intent`` (0–1) how
    much they are in the market; ``email_engagement`` (0–1) how readily they open email.
    ``machine_opens``: their mail client pre-fetches images (Apple Mail Privacy Protection), so
    every delivered email shows an open seconds later. ``link_scanner``: a security gateway clicks
    every link of their email. ``stages`` is the buying-stage history, oldest first.
    """

    persona: str
    fit: float
    intent: float
    email_engagement: float
    machine_opens: bool = False
    link_scanner: bool = False
    stages: list[StageChange] = field(default_factory=list)

    def stage_at(self, moment: datetime) -> Stage | None:
        """The buying stage at ``moment``, or None before the first recorded stage."""
        index = bisect.bisect_right([change.at for change in self.stages], moment)
        return self.stages[index - 1].stage if index else None


@dataclass(slots=True)
class Person:
    """One real person, known to one to three platforms.

    ``email`` is the canonical address; ``platform_emails`` holds the spelling a platform has when
    it differs (in practice only in case: a form typed ``Ana.Ruiz@Acme.io``). Unknown attributes
    are None, as in real data.
    """

    id: str
    email: str
    first_name: str | None
    last_name: str | None
    job_title: str | None
    seniority: str | None
    company: str | None
    industry: str | None
    company_size: int | None
    country: str | None
    created_at: datetime
    updated_at: datetime
    platforms: list[Platform]
    platform_emails: dict[Platform, str] = field(default_factory=dict)
    hidden: Hidden | None = None

    def email_on(self, platform: Platform | str) -> str:
        """The address as ``platform`` stores it."""
        return self.platform_emails.get(Platform(platform), self.email)


@dataclass(slots=True)
class Campaign:
    """A marketing email sent from one platform. ``links`` are the URLs in its body."""

    id: str
    platform: Platform
    name: str
    subject: str
    sent_at: datetime
    links: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Event:
    """One thing a person did (or a machine did on their behalf) on one platform.

    ``id`` is unique in the world, so emulators can derive stable platform ids from it.
    ``campaign`` is set on email events, ``url`` on page views and clicks, ``machine`` on opens
    and clicks made by software (image pre-fetching, link scanners). ``properties`` holds the
    rest (``amount``, ``order_id``, ``deal_id``, ``form``, ``bounce`` …) and is written flat on
    the event's line, after the fixed keys. Treat events as immutable.
    """

    id: str
    person: str
    platform: Platform
    type: EventType
    at: datetime
    campaign: str | None = None
    url: str | None = None
    machine: bool = False
    properties: dict[str, Any] | None = None


_EVENT_KEYS = frozenset({"kind", "id", "person", "platform", "type", "at", "campaign", "url", "machine"})


# --- the world --------------------------------------------------------------------------------


class World:
    """Persons, campaigns and events, with the lookups the emulators need.

    Events are kept per person in time order; ``iter_events`` walks them in file order (person by
    person). Build a world with the constructor (events in any order), ``World.read`` or the
    generator; grow it with ``add_persons``/``add_campaigns``/``add_events`` (what ``apply_delta``
    uses).
    """

    __slots__ = (
        "_campaigns",
        "_campaigns_by_id",
        "_campaigns_by_platform",
        "_event_count",
        "_events_by_campaign",
        "_events_by_person",
        "_events_by_platform",
        "_persons",
        "_persons_by_id",
        "_top_event_number",
        "now",
        "seed",
        "start",
        "version",
    )

    def __init__(
        self,
        *,
        seed: int | None,
        start: datetime,
        now: datetime,
        persons: Iterable[Person] = (),
        campaigns: Iterable[Campaign] = (),
        events: Iterable[Event] = (),
        version: int = FORMAT_VERSION,
        next_event_number: int | None = None,
    ) -> None:
        """``next_event_number``, when the caller knows it (the generator numbers ``e1`` … ``eN``),
        saves a scan of every event id the first time ``extend_world`` needs a fresh one."""
        if start.tzinfo is None or now.tzinfo is None:
            raise ValueError("world start and now must be aware datetimes (UTC)")
        self.seed = seed
        self.start = start
        self.now = now
        self.version = version
        self._persons: list[Person] = []
        self._persons_by_id: dict[str, Person] = {}
        self._events_by_person: dict[str, list[Event]] = {}
        self._events_by_platform: dict[Platform, list[Event]] | None = None  # built on first use
        self._events_by_campaign: dict[str, list[Event]] | None = None  # built on first use
        self._campaigns: list[Campaign] = []
        self._campaigns_by_id: dict[str, Campaign] = {}
        self._campaigns_by_platform: dict[Platform, list[Campaign]] = {p: [] for p in Platform}
        self._event_count = 0
        self._top_event_number: int | None = None  # found on first use
        self.add_persons(persons)
        self.add_campaigns(campaigns)
        self.add_events(events)
        if next_event_number is not None:
            self._top_event_number = next_event_number - 1

    # --- lookups ---

    @property
    def persons(self) -> list[Person]:
        """Every person, in id order of creation (p1, p2, …). Do not modify the list."""
        return self._persons

    @property
    def campaigns(self) -> list[Campaign]:
        """Every campaign, by send time. Do not modify the list."""
        return self._campaigns

    @property
    def event_count(self) -> int:
        return self._event_count

    @property
    def next_event_number(self) -> int:
        """``n`` such that ``e<n>`` and every later number are free event ids."""
        if self._top_event_number is None:
            self._top_event_number = _top_event_number(self.iter_events())
        return self._top_event_number + 1

    def person(self, person_id: str) -> Person:
        """The person with this id (KeyError when unknown)."""
        return self._persons_by_id[person_id]

    def find_person(self, person_id: str) -> Person | None:
        return self._persons_by_id.get(person_id)

    def campaign(self, campaign_id: str) -> Campaign:
        return self._campaigns_by_id[campaign_id]

    def campaigns_on(self, platform: Platform | str) -> list[Campaign]:
        """The campaigns one platform sent, by send time."""
        return self._campaigns_by_platform[Platform(platform)]

    def persons_on(self, platform: Platform | str) -> list[Person]:
        wanted = Platform(platform)
        return [person for person in self._persons if wanted in person.platforms]

    def events_of(self, person_id: str, platform: Platform | str | None = None) -> list[Event]:
        """One person's events in time order, optionally only those on one platform."""
        events = self._events_by_person.get(person_id, [])
        if platform is None:
            return events
        wanted = Platform(platform)
        return [event for event in events if event.platform is wanted]

    def events_on(self, platform: Platform | str) -> list[Event]:
        """Every event on one platform, person by person, each person's in time order."""
        if self._events_by_platform is None:
            by_platform: dict[Platform, list[Event]] = {p: [] for p in Platform}
            for event in self.iter_events():
                by_platform[event.platform].append(event)
            self._events_by_platform = by_platform
        return self._events_by_platform[Platform(platform)]

    def events_for_campaign(self, campaign_id: str) -> list[Event]:
        """Every event about one campaign (sends, opens, clicks …), person by person."""
        if self._events_by_campaign is None:
            by_campaign: dict[str, list[Event]] = {}
            for event in self.iter_events():
                if event.campaign is not None:
                    by_campaign.setdefault(event.campaign, []).append(event)
            self._events_by_campaign = by_campaign
        return self._events_by_campaign.get(campaign_id, [])

    def iter_events(self) -> Iterator[Event]:
        """Every event in file order: person by person, each person's in time order."""
        for person in self._persons:
            yield from self._events_by_person[person.id]

    # --- growth ---

    def add_persons(self, persons: Iterable[Person]) -> None:
        for person in persons:
            if person.id in self._persons_by_id:
                raise ValueError(f"duplicate person id {person.id!r}")
            self._persons.append(person)
            self._persons_by_id[person.id] = person
            self._events_by_person[person.id] = []

    def add_campaigns(self, campaigns: Iterable[Campaign]) -> None:
        added = False
        for campaign in campaigns:
            if campaign.id in self._campaigns_by_id:
                raise ValueError(f"duplicate campaign id {campaign.id!r}")
            self._campaigns.append(campaign)
            self._campaigns_by_id[campaign.id] = campaign
            self._campaigns_by_platform[campaign.platform].append(campaign)
            added = True
        if added:
            self._campaigns.sort(key=_campaign_order)
            for same_platform in self._campaigns_by_platform.values():
                same_platform.sort(key=_campaign_order)

    def add_events(self, events: Iterable[Event]) -> None:
        """Add events of known persons. Each person's list stays in time order (stable)."""
        added = events if isinstance(events, list) else list(events)
        by_person = self._events_by_person
        unsorted: set[str] = set()
        with pause_gc():
            for event in added:
                person_events = by_person.get(event.person)
                if person_events is None:
                    raise ValueError(f"event {event.id!r} names unknown person {event.person!r}")
                if person_events and person_events[-1].at > event.at:
                    unsorted.add(event.person)
                person_events.append(event)
        for person_id in unsorted:
            by_person[person_id].sort(key=_event_time)
        self._event_count += len(added)
        if added:
            self._events_by_platform = None  # rebuilt in file order when next asked for
            self._events_by_campaign = None
            if self._top_event_number is not None:
                self._top_event_number = max(self._top_event_number, _top_event_number(added))

    # --- JSON Lines ---

    def iter_lines(self) -> Iterator[bytes]:
        """The world file, one line at a time (no newline)."""
        yield orjson.dumps(
            {
                "kind": "world",
                "version": self.version,
                "seed": self.seed,
                "contacts": len(self._persons),
                "campaigns": len(self._campaigns),
                "events": self._event_count,
                "start": self.start,
                "now": self.now,
            },
            option=_JSON_OPTIONS,
        )
        for campaign in self._campaigns:
            yield _campaign_line(campaign)
        for person in self._persons:
            yield _person_line(person)
            for event in self._events_by_person[person.id]:
                yield _event_line(event)

    def dumps(self) -> bytes:
        """The whole world file as bytes (ends with a newline)."""
        buffer = io.BytesIO()
        self._write_to(buffer)
        return buffer.getvalue()

    def write(self, path: str | Path) -> None:
        """Write the world file to ``path``."""
        with open(path, "wb") as out:
            self._write_to(out)

    def _write_to(self, out: BinaryIO) -> None:
        # Joined a few thousand lines at a time: holding every line of a big world as its own
        # bytes object first costs far more memory and time than the JSON encoding itself.
        chunk: list[bytes] = []
        with pause_gc():
            for line in self.iter_lines():
                chunk.append(line)
                if len(chunk) >= 4096:
                    chunk.append(b"")
                    out.write(b"\n".join(chunk))
                    chunk.clear()
            if chunk:
                chunk.append(b"")
                out.write(b"\n".join(chunk))

    @classmethod
    def read(cls, path: str | Path) -> World:
        """Read a world file. Malformed content raises ``ConfigError`` naming the file and line."""
        with open(path, "rb") as source, pause_gc():
            return _read_lines(source, name=str(path))

    @classmethod
    def loads(cls, data: bytes | str, *, name: str = "<world>") -> World:
        text = data.encode() if isinstance(data, str) else data
        with pause_gc():
            return _read_lines(text.splitlines(), name=name)


@contextmanager
def pause_gc() -> Iterator[None]:
    """Hold the cyclic garbage collector while building or writing millions of small objects.

    None of them form cycles, and without this every collection walks the whole (growing) world,
    which made writing a 5,000-person world several times slower. The previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _top_event_number(events: Iterable[Event]) -> int:
    """The largest ``n`` of the ``e<n>`` ids among ``events`` (0 when there is none)."""
    top = 0
    for event in events:
        event_id = event.id
        if event_id[:1] == "e" and event_id[1:].isdigit():
            number = int(event_id[1:])
            if number > top:
                top = number
    return top


def _campaign_order(campaign: Campaign) -> tuple[datetime, str]:
    return (campaign.sent_at, campaign.id)


def _event_time(event: Event) -> datetime:
    return event.at


# --- writing ----------------------------------------------------------------------------------


def _campaign_line(campaign: Campaign) -> bytes:
    return orjson.dumps(
        {
            "kind": "campaign",
            "id": campaign.id,
            "platform": campaign.platform,
            "name": campaign.name,
            "subject": campaign.subject,
            "sent_at": campaign.sent_at,
            "links": campaign.links,
        },
        option=_JSON_OPTIONS,
    )


def _person_line(person: Person) -> bytes:
    line: dict[str, Any] = {
        "kind": "person",
        "id": person.id,
        "email": person.email,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "job_title": person.job_title,
        "seniority": person.seniority,
        "company": person.company,
        "industry": person.industry,
        "company_size": person.company_size,
        "country": person.country,
        "created_at": person.created_at,
        "updated_at": person.updated_at,
        "platforms": person.platforms,
        # Platforms in their canonical order, whatever order the dict was filled in.
        "platform_emails": {
            p.value: person.platform_emails[p] for p in Platform if p in person.platform_emails
        },
    }
    hidden = person.hidden
    if hidden is not None:
        line["hidden"] = {
            "persona": hidden.persona,
            "fit": hidden.fit,
            "intent": hidden.intent,
            "email_engagement": hidden.email_engagement,
            "machine_opens": hidden.machine_opens,
            "link_scanner": hidden.link_scanner,
            "stages": [{"stage": change.stage, "at": change.at} for change in hidden.stages],
        }
    return orjson.dumps(line, option=_JSON_OPTIONS)


def _event_line(event: Event) -> bytes:
    line: dict[str, Any] = {
        "kind": "event",
        "id": event.id,
        "person": event.person,
        "platform": event.platform,
        "type": event.type,
        "at": event.at,
    }
    if event.campaign is not None:
        line["campaign"] = event.campaign
    if event.url is not None:
        line["url"] = event.url
    if event.machine:
        line["machine"] = True
    if event.properties:
        clash = _EVENT_KEYS.intersection(event.properties)
        if clash:
            raise ValueError(f"event {event.id}: properties may not use reserved keys {sorted(clash)}")
        line.update(event.properties)
    return orjson.dumps(line, option=_JSON_OPTIONS)


# --- reading ----------------------------------------------------------------------------------


class _LineError(Exception):
    """A problem with one line; turned into a ConfigError with the file and line number."""


def _read_lines(lines: Iterable[bytes], *, name: str) -> World:
    header: dict[str, Any] | None = None
    persons: list[Person] = []
    person_ids: dict[str, Person] = {}
    campaigns: list[Campaign] = []
    campaign_ids: set[str] = set()
    events: list[Event] = []
    event_ids: set[str] = set()
    # Events that name a person or campaign not seen yet (a hand-written file may put them first),
    # checked once everything is read.
    forward_references: list[tuple[Event, int]] = []
    number = 0

    def fail(message: str, line: int | None = None) -> ConfigError:
        return ConfigError(message, file=name, key=f"line {line if line is not None else number}")

    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise fail(f"not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise fail(f"expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("kind")
        try:
            if kind == "event":
                event = _parse_event(obj, number)
                if event.id in event_ids:
                    raise _LineError(f"duplicate event id {event.id!r}")
                event_ids.add(event.id)
                events.append(event)
                owner = person_ids.get(event.person)
                if owner is None or (event.campaign is not None and event.campaign not in campaign_ids):
                    forward_references.append((event, number))
                elif event.platform not in owner.platforms:
                    raise _LineError(_not_on_platform(event, owner))
            elif kind == "person":
                person = _parse_person(obj)
                if person.id in person_ids:
                    raise _LineError(f"duplicate person id {person.id!r}")
                person_ids[person.id] = person
                persons.append(person)
            elif kind == "campaign":
                campaign = _parse_campaign(obj)
                if campaign.id in campaign_ids:
                    raise _LineError(f"duplicate campaign id {campaign.id!r}")
                campaign_ids.add(campaign.id)
                campaigns.append(campaign)
            elif kind == "world":
                if header is not None or persons or campaigns or events:
                    raise _LineError("the world header must be the first line, and only once")
                header = _parse_header(obj)
            elif kind is None:
                raise _LineError('missing "kind" (one of world, campaign, person, event)')
            else:
                raise _LineError(f"unknown kind {kind!r} (expected world, campaign, person or event)")
        except _LineError as exc:
            raise fail(str(exc)) from None

    for event, line in forward_references:
        owner = person_ids.get(event.person)
        if owner is None:
            raise fail(f"event {event.id!r} names unknown person {event.person!r}", line)
        if event.platform not in owner.platforms:
            raise fail(_not_on_platform(event, owner), line)
        if event.campaign is not None and event.campaign not in campaign_ids:
            raise fail(f"event {event.id!r} names unknown campaign {event.campaign!r}", line)

    if header is None:
        # A hand-written world (like DESIGN.md's example) may omit the header: span what it holds.
        times = [e.at for e in events] + [p.created_at for p in persons] + [c.sent_at for c in campaigns]
        if not times:
            raise ConfigError("empty world file (no header, no records)", file=name)
        header = {"version": FORMAT_VERSION, "seed": None, "start": min(times), "now": max(times)}
    else:
        for what, found in (
            ("contacts", len(persons)),
            ("campaigns", len(campaigns)),
            ("events", len(events)),
        ):
            expected = header.get(what)
            if expected is not None and expected != found:
                raise ConfigError(
                    f"header says {expected} {what} but the file holds {found} (truncated or edited?)",
                    file=name,
                )
    return World(
        seed=header["seed"],
        start=header["start"],
        now=header["now"],
        version=header["version"],
        persons=persons,
        campaigns=campaigns,
        events=events,
    )


def _not_on_platform(event: Event, owner: Person) -> str:
    return f"event {event.id!r} is on {event.platform}, but {owner.id} is not on that platform"


def _field(obj: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], *, required: bool = True) -> Any:
    value = obj.get(key)
    if value is None:
        if required:
            raise _LineError(f'missing "{key}"')
        return None
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise _LineError(f'"{key}" must be {_describe(kinds)}, got {value!r}')
    return value


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _describe(kinds: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "an object",
    }
    return " or ".join(names.get(kind, kind.__name__) for kind in _as_tuple(kinds))


def _time_field(obj: Mapping[str, Any], key: str, *, required: bool = True) -> datetime | None:
    text = _field(obj, key, str, required=required)
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise _LineError(f'"{key}" must be a UTC time like 2026-06-01T09:30:00Z, got {text!r}') from None


def _platform(value: str, key: str = "platform") -> Platform:
    platform = _PLATFORMS.get(value)
    if platform is None:
        raise _LineError(f'"{key}" must be one of {", ".join(_PLATFORMS)}, got {value!r}')
    return platform


def _parse_header(obj: Mapping[str, Any]) -> dict[str, Any]:
    version = _field(obj, "version", int)
    if version != FORMAT_VERSION:
        raise _LineError(
            f"world format version {version} is not supported (this leadsync reads {FORMAT_VERSION})"
        )
    header = {
        "version": version,
        "seed": _field(obj, "seed", int, required=False),
        "start": _time_field(obj, "start"),
        "now": _time_field(obj, "now"),
    }
    for count in ("contacts", "campaigns", "events"):
        header[count] = _field(obj, count, int, required=False)
    if header["start"] > header["now"]:
        raise _LineError('"start" is after "now"')
    return header


def _parse_campaign(obj: Mapping[str, Any]) -> Campaign:
    links = _field(obj, "links", list, required=False) or []
    if not all(isinstance(link, str) for link in links):
        raise _LineError('"links" must be a list of strings')
    return Campaign(
        id=_field(obj, "id", str),
        platform=_platform(_field(obj, "platform", str)),
        name=_field(obj, "name", str, required=False) or "",
        subject=_field(obj, "subject", str, required=False) or "",
        sent_at=_time_field(obj, "sent_at"),  # type: ignore[arg-type]
        links=links,
    )


def _parse_person(obj: Mapping[str, Any]) -> Person:
    platforms_raw = _field(obj, "platforms", list)
    if not platforms_raw or not all(isinstance(p, str) for p in platforms_raw):
        raise _LineError('"platforms" must be a non-empty list of platform names')
    platforms = [_platform(p, "platforms") for p in platforms_raw]
    if len(set(platforms)) != len(platforms):
        raise _LineError('"platforms" lists a platform twice')
    emails_raw = _field(obj, "platform_emails", dict, required=False) or {}
    platform_emails: dict[Platform, str] = {}
    for key, value in emails_raw.items():
        platform = _platform(key, "platform_emails")
        if not isinstance(value, str):
            raise _LineError(f'"platform_emails.{key}" must be a string')
        platform_emails[platform] = value
    size = _field(obj, "company_size", int, required=False)
    created_at = _time_field(obj, "created_at")
    hidden_raw = _field(obj, "hidden", dict, required=False)
    return Person(
        id=_field(obj, "id", str),
        email=_field(obj, "email", str),
        first_name=_field(obj, "first_name", str, required=False),
        last_name=_field(obj, "last_name", str, required=False),
        job_title=_field(obj, "job_title", str, required=False),
        seniority=_field(obj, "seniority", str, required=False),
        company=_field(obj, "company", str, required=False),
        industry=_field(obj, "industry", str, required=False),
        company_size=size,
        country=_field(obj, "country", str, required=False),
        created_at=created_at,  # type: ignore[arg-type]
        updated_at=_time_field(obj, "updated_at", required=False) or created_at,  # type: ignore[arg-type]
        platforms=platforms,
        platform_emails=platform_emails,
        hidden=_parse_hidden(hidden_raw) if hidden_raw is not None else None,
    )


def _parse_hidden(obj: Mapping[str, Any]) -> Hidden:
    stages: list[StageChange] = []
    for entry in _field(obj, "stages", list, required=False) or []:
        if not isinstance(entry, dict):
            raise _LineError('"hidden.stages" must be a list of {"stage", "at"} objects')
        stage = _STAGES.get(entry.get("stage"))  # type: ignore[arg-type]
        if stage is None:
            raise _LineError(f'"hidden.stages" has unknown stage {entry.get("stage")!r}')
        stages.append(StageChange(stage, _time_field(entry, "at")))  # type: ignore[arg-type]
    return Hidden(
        persona=_field(obj, "persona", str, required=False) or "unknown",
        fit=float(_field(obj, "fit", (int, float))),
        intent=float(_field(obj, "intent", (int, float))),
        email_engagement=float(_field(obj, "email_engagement", (int, float), required=False) or 0.0),
        machine_opens=_field(obj, "machine_opens", bool, required=False) or False,
        link_scanner=_field(obj, "link_scanner", bool, required=False) or False,
        stages=stages,
    )


def _parse_event(obj: dict[str, Any], line: int) -> Event:
    """The common, well-formed event quickly; anything unusual goes through the checked path."""
    try:
        event_id = obj["id"]
        person = obj["person"]
        campaign = obj.get("campaign")
        url = obj.get("url")
        machine = obj.get("machine", False)
        at = obj["at"]
        if (
            type(event_id) is str
            and type(person) is str
            and (campaign is None or type(campaign) is str)
            and (url is None or type(url) is str)
            and type(machine) is bool
            and type(at) is str
            and len(at) == 20
            and at[19] == "Z"
        ):
            known = 6 + (campaign is not None) + (url is not None) + ("machine" in obj)
            properties = {k: v for k, v in obj.items() if k not in _EVENT_KEYS} if len(obj) > known else None
            return Event(
                event_id,
                person,
                _PLATFORMS[obj["platform"]],
                _EVENT_TYPES[obj["type"]],
                datetime.fromisoformat(at),
                campaign,
                url,
                machine,
                properties,
            )
    except (KeyError, TypeError, ValueError):
        pass
    return _parse_event_checked(obj, line)


def _parse_event_checked(obj: dict[str, Any], line: int) -> Event:
    type_name = _field(obj, "type", str)
    event_type = _EVENT_TYPES.get(type_name)
    if event_type is None:
        raise _LineError(f'"type" {type_name!r} is not an event type (see connectors.records.EventType)')
    # Hand-written worlds may leave ids out: "L<line>" is unique in the file and never clashes
    # with the generator's "e<n>".
    event_id = _field(obj, "id", str, required=False) or f"L{line}"
    properties = {key: value for key, value in obj.items() if key not in _EVENT_KEYS}
    return Event(
        id=event_id,
        person=_field(obj, "person", str),
        platform=_platform(_field(obj, "platform", str)),
        type=event_type,
        at=_time_field(obj, "at"),  # type: ignore[arg-type]
        campaign=_field(obj, "campaign", str, required=False),
        url=_field(obj, "url", str, required=False),
        machine=_field(obj, "machine", bool, required=False) or False,
        properties=properties or None,
    )
