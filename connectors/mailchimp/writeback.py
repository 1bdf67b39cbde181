"""Write-back mapping: leadsync's logical fields as Mailchimp merge fields, its tags as member tags.

Pure helpers (no I/O): the connector does the requests. Facts cited as "mailchimp.md §N".

| logical    | merge field name (``name``) | tag          | type   |
| ---------- | --------------------------- | ------------ | ------ |
| affinity   | ``<prefix>affinity``        | ``LEADAFFIN``  | number |
| engagement | ``<prefix>engagement``      | ``LEADENGAGE`` | number |
| stage      | ``<prefix>stage``           | ``LEADSTAGE``  | text   |
| grade      | ``<prefix>grade``           | ``LEADGRADE``  | text   |
| lifecycle  | ``<prefix>lifecycle``       | ``LEADLIFECY`` | text   |
| reason     | ``<prefix>reason``          | ``LEADREASON`` | text (≤ 255 bytes, §5) |
| scored_at  | ``<prefix>scored_at``       | ``LEADSCORED`` | date (``YYYY-MM-DD``; Mailchimp has no date-time field, §5) |

Merge tags are at most 10 characters of letters, digits and ``_`` (§5, UNCONFIRMED but enforced
by many peers), so the tag is the first four letters of the prefix plus a code of at most six.
leadsync owns a merge field when its **name** starts with the prefix; it never writes another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "FIELD_CODES",
    "MAX_MERGE_FIELDS",
    "MAX_TAG_LENGTH",
    "FieldDef",
    "ValueRefused",
    "field_defs",
    "merge_value",
    "owned_tag",
    "tag_stem",
]

# mailchimp.md §5: 30 merge fields per audience; merge tags of at most ~10 characters.
MAX_MERGE_FIELDS = 30
MAX_TAG_LENGTH = 10
TEXT_MAX_BYTES = 255

FIELD_CODES: dict[str, tuple[str, str]] = {
    "affinity": ("AFFIN", "number"),
    "engagement": ("ENGAGE", "number"),
    "stage": ("STAGE", "text"),
    "grade": ("GRADE", "text"),
    "lifecycle": ("LIFECY", "text"),
    "reason": ("REASON", "text"),
    "scored_at": ("SCORED", "date"),
}


class ValueRefused(ValueError):
    """A value that cannot be written to its merge field type (the member is quarantined)."""


@dataclass(frozen=True)
class FieldDef:
    logical: str
    name: str
    tag: str
    type: str

    def create_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "tag": self.tag,
            "type": self.type,
            "required": False,
            "public": False,
        }
        if self.type == "date":
            body["options"] = {"date_format": "YYYY-MM-DD"}
        return body


def tag_stem(prefix: str) -> str:
    """The first four letters/digits of the prefix, upper-cased: ``leadsync_`` → ``LEAD``."""
    stem = re.sub(r"[^A-Za-z0-9]", "", prefix).upper()[:4]
    return stem or "LS"


def field_defs(prefix: str) -> dict[str, FieldDef]:
    stem = tag_stem(prefix)
    defs = {}
    for logical, (code, kind) in FIELD_CODES.items():
        tag = (stem + code)[:MAX_TAG_LENGTH]
        defs[logical] = FieldDef(logical, f"{prefix}{logical}", tag, kind)
    return defs


def owned_tag(name: str, prefix: str) -> bool:
    """A member tag leadsync created: its name starts with the prefix (``leadsync_stage:...``)."""
    return name.startswith(prefix)


def merge_value(definition: FieldDef, value: Any) -> Any:
    """The value to send for one merge field, or ValueRefused."""
    if value is None:
        return ""  # §4.2: unset is ""
    if definition.type == "number":
        if isinstance(value, bool):
            raise ValueRefused(f"{definition.logical}: {value!r} is not a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueRefused(f"{definition.logical}: {value!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueRefused(f"{definition.logical}: {value!r} is not a finite number")
        number = round(number, 2)
        return int(number) if number.is_integer() else number
    if definition.type == "date":
        if isinstance(value, datetime):
            return value.astimezone(UTC).date().isoformat() if value.tzinfo else value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
            except ValueError:
                raise ValueRefused(f"{definition.logical}: {value!r} is not a date") from None
        raise ValueRefused(f"{definition.logical}: {value!r} is not a date")
    if isinstance(value, (Mapping, list)):
        raise ValueRefused(f"{definition.logical}: a {type(value).__name__} cannot go in a text field")
    # §5: text is truncated to 255 bytes by Mailchimp; cut on a character boundary ourselves.
    return str(value).encode()[:TEXT_MAX_BYTES].decode(errors="ignore")
