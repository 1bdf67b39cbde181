"""Events as columns: the input of the batch scorer.

Scoring millions of events one ``EventRecord`` at a time is too slow in Python, so the engine reads
numpy columns, one entry per event, grouped by nothing in particular (the engine sorts):

=========  ========  ===========================================================================
column     dtype     meaning
=========  ========  ===========================================================================
person     int64     index of the person in the ``profiles`` sequence given to ``score_many``
kind       int8      ``EVENT_TYPES.index(event.type)``
at         float64   UTC time, seconds since 1970-01-01
campaign   int64     campaign code (equal codes = same campaign), -1 when none
url        int64     index into ``urls`` (the page of a view, the link of a click), -1 when none
flags      uint8     ``MACHINE`` (platform says bot), ``HARD_BOUNCE`` (bounce type hard), and on a
                     meeting or a call its outcome (``OUTCOME_FLAGS``; none: a meeting scheduled,
                     rescheduled or of unknown outcome, a completed call)
=========  ========  ===========================================================================

``EventColumns.from_records`` builds them from ``EventRecord``s; the store can build them straight
from a query with ``EventColumnsBuilder`` or numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from leadsync.connectors.records import CallOutcome, EventRecord, EventType, MeetingOutcome

__all__ = [
    "EVENT_TYPES",
    "HARD_BOUNCE",
    "MACHINE",
    "OUTCOME_FLAGS",
    "OUTCOME_TYPES",
    "EventColumns",
    "EventColumnsBuilder",
    "epoch_seconds",
    "is_hard_bounce",
    "outcome_flag",
]

#: Event type codes: the position in this tuple.
EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
_CODE = {t: i for i, t in enumerate(EVENT_TYPES)}

MACHINE = 1
HARD_BOUNCE = 2

#: Per event type whose ``properties["outcome"]`` scoring reads, each normalised outcome
#: (``connectors.records.MeetingOutcome``, ``CallOutcome``) that has a flag of its own.
OUTCOME_FLAGS: dict[EventType, dict[str, int]] = {
    EventType.MEETING_BOOKED: {
        MeetingOutcome.COMPLETED.value: 4,
        MeetingOutcome.NO_SHOW.value: 8,
        MeetingOutcome.CANCELLED.value: 16,
    },
    EventType.CALL: {CallOutcome.NOT_CONNECTED.value: 32},
}
OUTCOME_TYPES = frozenset(OUTCOME_FLAGS)


def epoch_seconds(moment: datetime) -> float:
    """UTC seconds since the epoch. A naive datetime is taken as UTC (records are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def is_hard_bounce(properties: dict[str, Any]) -> bool:
    """A bounce is hard when ``bounce_type`` says so (Mailchimp ``type``, HubSpot ``category``).

    Connectors put the platform's word in ``properties["bounce_type"]`` (``hard``/``soft``,
    ``HARD_BOUNCE``/``SOFT_BOUNCE``) or set ``properties["hard"] = True``. Unknown means soft: a
    hard bounce disqualifies, and wrongly disqualifying a live address costs more than missing one.
    """
    if properties.get("hard") is True:
        return True
    kind = properties.get("bounce_type")
    return isinstance(kind, str) and "hard" in kind.lower()


def outcome_flag(kind: EventType | str, properties: dict[str, Any]) -> int:
    """The flag of a meeting's or call's ``properties["outcome"]`` (as connectors normalise it); 0
    for a meeting scheduled, rescheduled or of unknown outcome (it scores as booked), a completed
    call, and any other event."""
    outcome = properties.get("outcome")
    flags = OUTCOME_FLAGS.get(EventType(kind))
    return flags.get(outcome, 0) if flags is not None and isinstance(outcome, str) else 0


@dataclass(frozen=True, slots=True)
class EventColumns:
    person: np.ndarray
    kind: np.ndarray
    at: np.ndarray
    campaign: np.ndarray
    url: np.ndarray
    flags: np.ndarray
    urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.person)
        for name in ("kind", "at", "campaign", "url", "flags"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} entries, person has {n}")
        if n and int(self.url.max(initial=-1)) >= len(self.urls):
            raise ValueError("url codes point past the end of urls")
        if n and not 0 <= int(self.kind.min()) <= int(self.kind.max()) < len(EVENT_TYPES):
            raise ValueError(f"event type codes must be in 0..{len(EVENT_TYPES) - 1}")

    def __len__(self) -> int:
        return len(self.person)

    @classmethod
    def empty(cls) -> EventColumns:
        return cls(
            person=np.zeros(0, np.int64),
            kind=np.zeros(0, np.int8),
            at=np.zeros(0, np.float64),
            campaign=np.zeros(0, np.int64),
            url=np.zeros(0, np.int64),
            flags=np.zeros(0, np.uint8),
        )

    @classmethod
    def from_records(cls, per_person: Iterable[Iterable[EventRecord]]) -> EventColumns:
        """Columns for ``per_person[i]`` = the events of person ``i``."""
        builder = EventColumnsBuilder()
        for index, events in enumerate(per_person):
            for event in events:
                builder.add_record(index, event)
        return builder.build()

    def take(self, index: np.ndarray) -> EventColumns:
        """The events at ``index`` (an index array or a boolean mask), same ``urls``."""
        return EventColumns(
            person=self.person[index],
            kind=self.kind[index],
            at=self.at[index],
            campaign=self.campaign[index],
            url=self.url[index],
            flags=self.flags[index],
            urls=self.urls,
        )

    def for_persons(self, persons: Sequence[int] | np.ndarray, n_persons: int) -> EventColumns:
        """The events of ``persons`` only, renumbered so that ``persons[j]`` becomes person ``j``.

        ``n_persons`` is the number of persons the current numbering covers.
        """
        persons = np.asarray(persons, dtype=np.int64)
        new_index = np.full(n_persons, -1, dtype=np.int64)
        new_index[persons] = np.arange(len(persons), dtype=np.int64)
        mapped = new_index[self.person]
        keep = mapped >= 0
        sub = self.take(keep)
        return EventColumns(
            person=mapped[keep],
            kind=sub.kind,
            at=sub.at,
            campaign=sub.campaign,
            url=sub.url,
            flags=sub.flags,
            urls=self.urls,
        )

    def sorted_by_person(self) -> EventColumns:
        """The same events ordered by person (stable), ready for ``person_range``."""
        return self.take(np.argsort(self.person, kind="stable"))

    def person_range(self, start: int, stop: int) -> EventColumns:
        """The events of persons ``start`` to ``stop - 1`` (columns sorted by person), renumbered
        from 0, with only the URLs they use: scoring classifies every URL of ``urls`` once per
        call, and a slice of a large store uses few of them."""
        lo, hi = np.searchsorted(self.person, [start, stop])
        url = self.url[lo:hi]
        used, code = np.unique(url, return_inverse=True)
        if used.size and used[0] < 0:  # -1 (no URL) stays -1
            code, used = code - 1, used[1:]
        return EventColumns(  # int64 whatever the width held (a store re-score holds int32)
            person=(self.person[lo:hi] - start).astype(np.int64, copy=False),
            kind=self.kind[lo:hi],
            at=self.at[lo:hi],
            campaign=self.campaign[lo:hi].astype(np.int64, copy=False),
            url=code.reshape(-1).astype(np.int64),
            flags=self.flags[lo:hi],
            urls=tuple(self.urls[u] for u in used.tolist()),
        )


@dataclass
class EventColumnsBuilder:
    """Accumulates events one at a time, interning campaigns and URLs."""

    _person: list[int] = field(default_factory=list)
    _kind: list[int] = field(default_factory=list)
    _at: list[float] = field(default_factory=list)
    _campaign: list[int] = field(default_factory=list)
    _url: list[int] = field(default_factory=list)
    _flags: list[int] = field(default_factory=list)
    _campaigns: dict[str, int] = field(default_factory=dict)
    _urls: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        person: int,
        kind: EventType | str,
        at: datetime | float,
        *,
        campaign: str | None = None,
        url: str | None = None,
        machine: bool = False,
        hard_bounce: bool = False,
        outcome: int = 0,
    ) -> None:
        """``outcome``: a meeting's or call's outcome flag (``outcome_flag``), 0 for anything else."""
        self._person.append(person)
        self._kind.append(_CODE[EventType(kind)])
        self._at.append(epoch_seconds(at) if isinstance(at, datetime) else float(at))
        self._campaign.append(
            -1 if campaign is None else self._campaigns.setdefault(campaign, len(self._campaigns))
        )
        self._url.append(-1 if url is None else self._urls.setdefault(url, len(self._urls)))
        self._flags.append((MACHINE if machine else 0) | (HARD_BOUNCE if hard_bounce else 0) | outcome)

    def add_record(self, person: int, event: EventRecord) -> None:
        props = event.properties
        campaign = props.get("campaign")
        url = props.get("url")
        self.add(
            person,
            event.type,
            event.occurred_at,
            campaign=None if campaign is None else str(campaign),
            url=None if url is None else str(url),
            machine=bool(props.get("machine")),
            hard_bounce=event.type == EventType.EMAIL_BOUNCE and is_hard_bounce(props),
            outcome=outcome_flag(event.type, props) if event.type in OUTCOME_TYPES else 0,
        )

    def build(self) -> EventColumns:
        return EventColumns(
            person=np.asarray(self._person, dtype=np.int64),
            kind=np.asarray(self._kind, dtype=np.int8),
            at=np.asarray(self._at, dtype=np.float64),
            campaign=np.asarray(self._campaign, dtype=np.int64),
            url=np.asarray(self._url, dtype=np.int64),
            flags=np.asarray(self._flags, dtype=np.uint8),
            urls=tuple(self._urls),
        )
