"""The contract between the pipeline and a platform connector.

A connector talks to one configured source (one HubSpot portal, one Mailchimp account, one
ActiveCampaign account). It never touches the database: ``pull`` yields batches of normalised
records together with the cursor that covers them, and the pipeline commits both in one
transaction; ``push`` takes score updates the pipeline has already diffed and reports, per
contact, what was written and what failed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from leadsync.connectors.errors import BadRecord
from leadsync.connectors.records import ContactRecord, EventRecord, Platform
from leadsync.connectors.retry import RetryPolicy

__all__ = [
    "CheckResult",
    "Connector",
    "ProfileField",
    "PullBatch",
    "PushFailure",
    "PushReport",
    "ScoreUpdate",
    "SourceSettings",
    "StreamTally",
    "WRITEBACK_FIELDS",
]

# The logical fields leadsync writes back; each connector maps them to platform-native fields
# (DESIGN.md "Write-back"), named with the configured prefix.
WRITEBACK_FIELDS: tuple[str, ...] = (
    "affinity",
    "engagement",
    "stage",
    "grade",
    "lifecycle",
    "reason",
    "scored_at",
)


@dataclass(frozen=True)
class SourceSettings:
    """What a connector needs to know about its source, secrets already resolved.

    ``secret_names`` maps each secret to where it came from (an environment variable name), so that
    errors can say which variable to fix without ever showing the value.
    """

    name: str
    platform: Platform
    base_url: str | None
    secrets: Mapping[str, str] = field(repr=False)
    secret_names: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    field_prefix: str = "leadsync_"
    lifecycle_writeback: bool = True
    timeout_s: float = 30.0
    streams: tuple[str, ...] | None = None  # the selected streams (config ``streams``); None: all
    interval_s: float = 900.0  # how often the source is pulled (config ``interval`` or the schedule's)

    def __repr__(self) -> str:  # secrets never appear, even in debug output
        return f"SourceSettings(name={self.name!r}, platform={self.platform.value!r}, base_url={self.base_url!r})"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a credentials/connectivity probe."""

    ok: bool
    detail: str
    account: str | None = None


@dataclass
class PullBatch:
    """Records from one page (or a few) of one stream, and the cursor to commit with them.

    ``cursor`` is JSON-serialisable state that lets the next run resume after this batch; None
    means "do not move the cursor" (for example in the middle of an unsorted stream).

    Progress (for the CLI's bars, see ``StreamTally``): ``read`` is how many ``unit`` this batch
    read from the platform (kept or not), ``expected`` how many the whole stream run will read as
    far as the platform has said (its search ``total``, ``total_items``, ``meta.total``), None
    when it gives no total.
    """

    stream: str
    contacts: list[ContactRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)
    cursor: Any = None
    read: int = 0
    expected: int | None = None
    unit: str = "records"


@dataclass
class StreamTally:
    """Counts what one stream run has read, to give each batch its ``read`` and ``expected``."""

    unit: str = "records"
    read: int = 0

    def count(self, batch: PullBatch, read: int, remaining: int | None) -> PullBatch:
        """``read`` units in ``batch``, and ``remaining`` more to come (None: the platform did not say)."""
        self.read += read
        batch.read, batch.unit = read, self.unit
        batch.expected = None if remaining is None else self.read + remaining
        return batch


@dataclass(frozen=True)
class ScoreUpdate:
    """What to write for one identity. ``fields`` holds only the logical fields that changed.

    ``lifecycle`` is the platform lifecycle stage to move forward to (HubSpot) or None, and
    ``lifecycle_seen`` the stage the platform held when the identity was last pulled (None: unknown,
    the connector reads it);
    ``tags_add`` / ``tags_remove`` are leadsync's own tags (stage and lifecycle tags).
    """

    remote_id: str
    email: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    lifecycle: str | None = None
    lifecycle_seen: str | None = None
    tags_add: tuple[str, ...] = ()
    tags_remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushFailure:
    remote_id: str
    reason: str
    retriable: bool = False


@dataclass(frozen=True)
class ProfileField:
    """One profile field of the platform (``leadsync fields``): ``name`` is what a profile-field
    mapping names (a HubSpot property, a Mailchimp merge tag, an ActiveCampaign perstag); ``filled``
    of ``sampled`` contacts hold a value; ``owned``: one of leadsync's own fields."""

    name: str
    label: str
    type: str
    filled: int
    sampled: int
    owned: bool = False
    group: str | None = None  # HubSpot property group, Mailchimp audience id

    @property
    def fill_rate(self) -> float | None:
        return self.filled / self.sampled if self.sampled else None


@dataclass
class PushReport:
    written: list[str] = field(default_factory=list)
    failed: list[PushFailure] = field(default_factory=list)
    requests: int = 0


class Connector(ABC):
    """One platform. Subclasses declare their streams as data and use the shared core
    (``connectors.http``, ``retry``, ``ratelimit``, ``pagination``, ``streams``)."""

    platform: ClassVar[Platform]

    def __init__(self, settings: SourceSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.transport = transport
        # Contacts of this run whose only change since the last pull was leadsync's own write, as
        # the pipeline found them in the store (``note_echoes``): no follow-up reads for them.
        self.echoes: set[str] = set()

    @abstractmethod
    def check(self) -> CheckResult:
        """Probe credentials and reachability; raise ``AuthError`` naming the source and variable."""

    @abstractmethod
    def streams(self) -> Sequence[str]:
        """The stream names this source pulls, in the order to pull them."""

    def selected_streams(self) -> list[str]:
        """The streams to pull: the config's selection (``streams = [...]``), in pull order."""
        chosen = self.settings.streams
        return [stream for stream in self.streams() if chosen is None or stream in chosen]

    def note_echoes(self, remote_ids: Iterable[str]) -> None:
        """The pipeline's word that these contacts, pulled in this run, changed only by leadsync's
        own write (issue 23): a connector makes no follow-up reads for them."""
        self.echoes.update(remote_ids)

    @abstractmethod
    def pull(self, stream: str, cursor: Any, *, full: bool = False) -> Iterator[PullBatch]:
        """Yield batches of ``stream`` since ``cursor`` (None or ``full`` = from the beginning)."""

    def fetch_contact(self, remote_id: str) -> PullBatch | None:
        """One contact and its recent events, read now (the webhook fast path, issue 22), as a
        batch with no cursor: the scheduled pull stays the one that moves the cursors, and re-reads
        the same records under the same source ids. None when the platform does not know it."""
        raise NotImplementedError(f"{type(self).__name__} cannot read one contact")

    @abstractmethod
    def ensure_fields(self) -> None:
        """Create the write-back fields (properties, merge fields, custom fields) on first use."""

    @abstractmethod
    def push(self, updates: Sequence[ScoreUpdate]) -> PushReport:
        """Write updates in the largest batches the platform allows; report per contact."""

    @abstractmethod
    def read_fields(self, remote_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """What the platform now holds in leadsync's fields for these contacts, by logical field
        name (``affinity``, ``engagement``, ``grade`` ...), as strings. Used to verify a push."""

    def request_counts(self) -> dict[str, int]:
        """Requests sent so far (every attempt, retries included), 429 answers and retries, over the
        retry policies this connector holds: every request goes through one (``connectors.retry``).
        The run history reads them before and after each stream and push."""
        totals = {"requests": 0, "throttled": 0, "retries": 0}
        for value in vars(self).values():
            if isinstance(value, RetryPolicy):
                totals["requests"] += value.stats.attempts
                totals["throttled"] += value.stats.rate_limited
                totals["retries"] += value.stats.retries
        return totals

    def read_owned(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``read_fields`` plus, on platforms where leadsync tags, ``"tags"``: the sorted names of
        leadsync's tags each contact carries now (``leadsync undo`` checks them before writing)."""
        return {remote_id: dict(values) for remote_id, values in self.read_fields(remote_ids).items()}

    def profile_fields(self, sample: int = 500) -> list[ProfileField]:
        """The platform's contact profile fields with their type, and how many of (at most)
        ``sample`` recently changed contacts hold a value in each."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its profile fields")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release HTTP clients."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
