"""Write-back mapping: leadsync's logical fields to HubSpot contact properties (DESIGN.md "Write-back").

Pure helpers; the connector does the I/O. Property definitions follow hubspot.md §3
(``PropertyCreate``: name, label, type, fieldType, groupName; enumeration needs options).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "GROUP_LABEL",
    "STAGES",
    "encode_value",
    "field_definitions",
    "group_name",
    "is_forward",
    "lifecycle_value",
    "retriable_category",
]

STAGES = ("awareness", "investigation", "decision", "action")
GROUP_LABEL = "leadsync scores"
# logical field -> (type, fieldType, label, description)
FIELDS: dict[str, tuple[str, str, str, str]] = {
    "affinity": ("number", "number", "Affinity score", "Fit with the buyer persona, 0-100 (leadsync)"),
    "engagement": (
        "number",
        "number",
        "Engagement score",
        "Recent engagement, 0-100, fading with time (leadsync)",
    ),
    "stage": (
        "enumeration",
        "select",
        "Buying stage",
        "Awareness, investigation, decision or action (leadsync)",
    ),
    "grade": (
        "string",
        "text",
        "Lead grade",
        "Affinity band A-D and engagement band 1-4, e.g. B2 (leadsync)",
    ),
    "lifecycle": ("string", "text", "leadsync lifecycle", "The lifecycle stage leadsync computed (leadsync)"),
    "reason": ("string", "textarea", "Score explanation", "The top contributions to the scores (leadsync)"),
    "scored_at": ("datetime", "date", "Scored at", "When leadsync computed these scores"),
}
# hubspot.md §5: 207 item errors worth sending again (the rest are quarantined).
RETRIABLE_CATEGORIES = {"RATE_LIMITS", "INTERNAL_ERROR", "LOCKED", "TIMEOUT", "SERVICE_UNAVAILABLE"}


def group_name(prefix: str) -> str:
    return prefix.rstrip("_") or "leadsync"


def field_definitions(prefix: str) -> list[dict[str, Any]]:
    group = group_name(prefix)
    defs = []
    for logical, (type_, field_type, label, description) in FIELDS.items():
        body: dict[str, Any] = {
            "name": f"{prefix}{logical}",
            "label": label,
            "type": type_,
            "fieldType": field_type,
            "groupName": group,
            "description": description,
            "formField": False,
            "displayOrder": -1,
        }
        if type_ == "number":
            body["numberDisplayHint"] = "unformatted"
        if type_ == "enumeration":
            body["options"] = [
                {"label": s.title(), "value": s, "displayOrder": i, "hidden": False}
                for i, s in enumerate(STAGES)
            ]
        defs.append(body)
    return defs


def encode_value(logical: str, value: Any) -> str:
    """hubspot.md §2: every property value is a string; ``""`` clears it."""
    if value is None:
        return ""
    if logical == "scored_at":
        when = (
            value
            if isinstance(value, datetime)
            else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        )
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return str(int(when.timestamp() * 1000))  # datetime properties take epoch milliseconds
    if logical in ("affinity", "engagement"):
        number = round(float(value), 2)
        return str(int(number)) if number.is_integer() else str(number)
    return str(value)


def properties_for(fields: Mapping[str, Any], prefix: str) -> dict[str, str]:
    return {f"{prefix}{name}": encode_value(name, value) for name, value in fields.items() if name in FIELDS}


# hubspot.md §3: the default internal values of ``lifecyclestage``; leadsync's levels
# (config.scoring_model.LIFECYCLE_LEVELS) spell the two qualified stages with underscores.
LIFECYCLE_VALUES = {
    "marketing_qualified_lead": "marketingqualifiedlead",
    "sales_qualified_lead": "salesqualifiedlead",
}


def lifecycle_value(level: str) -> str:
    """The HubSpot ``lifecyclestage`` value for one of leadsync's lifecycle levels."""
    return LIFECYCLE_VALUES.get(level, level)


def is_forward(current: str | None, target: str, order: Sequence[str]) -> bool:
    """hubspot.md §3: lifecyclestage only moves forward in the account's stage order."""
    if target not in order:
        return False
    if not current:
        return True
    if current not in order:
        return False  # a custom stage we cannot place: never risk a backward move
    return order.index(target) > order.index(current)


def retriable_category(category: str | None) -> bool:
    return (category or "").upper() in RETRIABLE_CATEGORIES
