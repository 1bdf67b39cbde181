"""The platform is the truth for leadsync's own fields and tags (contract 3, issues 19 and 23).

A pull reads what each contact holds in the fields and tags leadsync owns (``ContactRecord.owned``)
and the ingest keeps it per identity (``Attributes.observed``, stamped ``observed_at``). The push
plan compares the new scores with those values (``sync.writeback.plan_writes``), so a value another
writer changed, or a store rebuilt from nothing, converges instead of drifting.

The same reading tells an echo of our own write from news. Our writes move each platform's
modification stamp, so the next incremental pull brings back every contact leadsync wrote:

* its scoring inputs (``content_digest``: email, attributes, the raw properties kept) are the same
  as stored, so it is not re-scored (nothing scoring reads has changed);
* it is an *echo* when, moreover, leadsync wrote to it after the store last observed it and what
  the platform now holds in leadsync's fields is what leadsync wrote: its stamp moved because of
  that write, so it needs no follow-up reads either (ActiveCampaign tracking logs).

Pure functions; the ingest does the I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from leadsync.connectors.records import ContactRecord
from leadsync.sync.identity import ATTRIBUTE_FIELDS

__all__ = [
    "LIFECYCLE_TAG",
    "OWNED_TAGS",
    "PENDING",
    "STAGE_TAG",
    "TRIGGER_FIELDS",
    "ECHO_STATE_FIELDS",
    "content_digest",
    "is_echo",
    "same_value",
]

# Fields whose change alone justifies a write; the rest (the reason, scored_at) ride along with them.
# The reason quotes points that decay by the minute: on its own, a new wording is not worth a write
# (an unchanged re-sync must write nothing), and it goes out with the next change of a score.
TRIGGER_FIELDS = ("affinity", "engagement", "stage", "grade", "lifecycle")
STAGE_TAG = "tag:stage"
LIFECYCLE_TAG = "tag:lifecycle"
PENDING = "pending"  # see ``sync.writeback.PENDING``
OWNED_TAGS = "tags"  # the key of ``ContactRecord.owned`` listing leadsync's tags on the contact
_NUMERIC = ("affinity", "engagement")
# The ``writeback_state`` rows ``is_echo`` reads.
ECHO_STATE_FIELDS = (*TRIGGER_FIELDS, STAGE_TAG, LIFECYCLE_TAG, PENDING)


# The platform's lifecycle stage is left out: scoring does not read it (the affinity attributes are
# ``config.scoring_model.Attribute``), and leadsync itself moves HubSpot's forward.
_DIGESTED = tuple(name for name in ATTRIBUTE_FIELDS if name != "lifecycle_stage")


def content_digest(email: str, contact: ContactRecord, raw: Any) -> str:
    """A hash of one identity's content as scoring may read it (``raw`` already made JSON-safe), and
    of nothing leadsync's own writes change: not ``owned``, ``updated_at`` or the lifecycle stage."""
    payload = [
        email,
        [getattr(contact, name) for name in _DIGESTED],
        contact.created_at.isoformat() if contact.created_at else None,
        raw,
    ]
    try:
        text = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    except TypeError:  # orjson.JSONEncodeError: integers beyond 64 bits and the like
        text = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.blake2b(text, digest_size=16).hexdigest()


def same_value(field: str, held: Any, wanted: Any) -> bool:
    """Whether the platform's value is leadsync's, as each platform stores it: scores compare as
    numbers ("15" and "15.0"), ``scored_at`` as a time (epoch ms on HubSpot, a date on Mailchimp,
    the account's timezone on ActiveCampaign), and text cut at 255 bytes (Mailchimp, mailchimp.md
    §5) as the same text."""
    if held == wanted:
        return True
    if held is None or wanted is None:
        return False
    if field in _NUMERIC:
        try:
            return float(held) == float(wanted)
        except (TypeError, ValueError):
            return False
    if field == "scored_at":
        return _same_time(str(held), str(wanted))
    held_bytes, wanted_bytes = str(held).encode(), str(wanted).encode()
    return held_bytes == wanted_bytes or (
        len(held_bytes) >= _TEXT_CUT - 4 and wanted_bytes[: len(held_bytes)] == held_bytes
    )


_TEXT_CUT = 255


def _moment(text: str) -> datetime | None:
    text = text.strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _same_time(held: str, wanted: str) -> bool:
    a, b = _moment(held), _moment(wanted)
    if a is None or b is None:
        return held == wanted
    if len(held.strip()) == 10 or len(wanted.strip()) == 10:  # a date field holds the day only
        return a.astimezone(UTC).date() == b.astimezone(UTC).date()
    return abs((a - b).total_seconds()) < 1


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_echo(
    owned: Mapping[str, Any] | None,
    pushed: Mapping[str, tuple[str | None, datetime]],
    observed_at: datetime | None,
) -> bool:
    """Whether a re-read contact whose scoring inputs did not change is an echo of leadsync's write.

    ``pushed``: field -> (value, when) of leadsync's last successful write to this identity
    (``writeback_state``); ``observed_at``: when the store last read the contact before this pull.
    An echo needs a write after that reading, and the platform holding what was written in every
    score field written (and the stage and lifecycle tags, where the platform has tags): a value that
    differs means someone else wrote after us, and that is news.
    """
    if owned is None or not pushed or PENDING in pushed:
        return False  # never written, or a write whose outcome is unknown (``sync.writeback.PENDING``)
    last = max(_utc(when) for _, when in pushed.values())  # type: ignore[type-var]
    seen = _utc(observed_at)
    if seen is not None and last is not None and last <= seen:
        return False  # nothing written since we last read it: the stamp moved for another reason
    for field in TRIGGER_FIELDS:
        if field in pushed and field in owned and not same_value(field, owned[field], pushed[field][0]):
            return False
    tags = owned.get(OWNED_TAGS)
    if tags is not None:
        for key in (STAGE_TAG, LIFECYCLE_TAG):
            value = pushed.get(key, (None, None))[0]
            if value and value not in tags:
                return False
    return True
