"""Why a person has their scores: contributions, the short reason, and the full explanation.

Every point of affinity and engagement comes from a ``Contribution`` (a rule, or an event kind with
its count and last time seen), and the contributions of each score add up to it exactly. The 0–100
mapping (clamp for affinity, the curve for engagement) scales every contribution by the same factor,
and ``scoring.apportion`` rounds the shares so that their sum is the score, not merely close to it.

The *reason* comes in two forms: JSON with the top contributions, and one sentence that fits a
platform text field (Mailchimp text merge fields hold 255 characters). The sentence uses absolute
dates, not "3 days ago", so that it only changes when something happened, and write-back does not
rewrite every contact every day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import orjson

__all__ = [
    "REASON_LIMIT",
    "Contribution",
    "build_sentence",
    "item_text",
    "reason_json",
    "reason_payload",
    "render_explanation",
    "round_points",
]


class Scored(Protocol):
    """What the reason and the explanation read of a score (``scoring.engine.ScoreResult`` has it;
    a protocol, so that this module does not import the engine that imports it)."""

    email: str
    affinity: int
    engagement: int
    engagement_points: float
    stage: str
    grade: str
    lifecycle: str
    disqualified: bool
    disqualified_reason: str | None
    disqualifiers: tuple[str, ...]
    composite: int
    contributions: tuple[Contribution, ...]
    sentence: str
    machine_filtered: int
    scored_at: datetime
    model_name: str
    model_version: int
    model_fingerprint: str


#: Mailchimp text merge fields hold 255 characters; HubSpot and ActiveCampaign hold more.
REASON_LIMIT = 255


class Contribution(NamedTuple):
    """One rule's part of a score.

    ``points`` is its whole-point share of the 0–100 score; the shares of one score sum to it.
    ``raw_points`` is what the model's rule gave before the 0–100 mapping (decayed and capped for
    engagement). ``count``: events counted (after caps), 1 for an affinity rule; ``capped``:
    events left out by a cap; ``value``: the attribute value an affinity rule matched.
    A named tuple: immutable, and cheap to build a million of.
    """

    score: Literal["affinity", "engagement"]
    rule: str
    label: str
    points: int
    raw_points: float
    count: int
    last_seen: datetime | None = None
    capped: int = 0
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "rule": self.rule,
            "points": self.points,
            "raw_points": round_points(np.array([self.raw_points]))[0],
            "count": self.count,
            "last_seen": None
            if self.last_seen is None
            else self.last_seen.isoformat().replace("+00:00", "Z"),
        }


def round_points(points: np.ndarray) -> list[float]:
    """Raw points as stored and shown: three decimals, rounded by numpy for a whole column at once
    (a re-score rounds about eight a person). On a tie in the decimal digits numpy and Python's
    ``round`` can differ in the last place (1.0745: numpy 1.074, ``round`` 1.075), so every path
    rounds through here."""
    return np.round(points.astype(np.float64, copy=False), 3).tolist()


def item_text(label: str, points: int, count: int | None = None, day: str | None = None) -> str:
    """One item of the sentence: ``VP title +20`` or ``pricing page +18 (4x, 2026-06-03)``."""
    if count is None:
        return f"{label} {points:+d}"
    when = f", {day}" if day else ""
    return f"{label} {points:+d} ({count}x{when})"


def build_sentence(
    *,
    grade: str,
    lifecycle: str,
    stage: str,
    affinity: int,
    engagement: int,
    engagement_items: Sequence[str],
    affinity_items: Sequence[str],
    held: str | None,
    limit: int = REASON_LIMIT,
) -> str:
    """One line such as ``B2 marketing_qualified_lead, decision stage. Engagement 63: demo request +30 (1x, 2026-06-01);
    … Fit 55: VP title +20; … Disqualified: unsubscribed.``, at most ``limit`` characters.

    Items come most important first (see ``item_text``). When the line is too long, the least
    important items go first, alternating between the two lists; a last resort cuts the text.
    """
    eng, fit = list(engagement_items), list(affinity_items)
    head = f"{grade} {lifecycle}, {stage} stage."  # the lifecycle by its one name (leads, explain, README)
    tail = f" {held}" if held else ""

    def render() -> str:
        eng_text = "; ".join(eng) if eng else "no recent activity"
        fit_text = "; ".join(fit) if fit else "no matching attributes"
        return f"{head} Engagement {engagement}: {eng_text}. Fit {affinity}: {fit_text}.{tail}"

    text = render()
    while len(text) > limit and (eng or fit):
        (eng if len(eng) >= len(fit) else fit).pop()
        text = render()
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text


def reason_payload(result: Scored, top: int) -> dict[str, Any]:
    """The JSON reason: scores and the top ``top`` non-zero contributions of each score."""
    tops = []
    for score in ("engagement", "affinity"):
        picked = [c for c in result.contributions if c.score == score and c.points != 0][:top]
        tops.extend(c.as_dict() for c in picked)
    return {
        "affinity": result.affinity,
        "engagement": result.engagement,
        "stage": result.stage,
        "grade": result.grade,
        "lifecycle": result.lifecycle,
        "disqualified": list(result.disqualifiers),
        "top": tops,
        "model": {"name": result.model_name, "version": result.model_version},
    }


def reason_json(result: Scored, top: int) -> str:
    return orjson.dumps(reason_payload(result, top)).decode()


def render_explanation(result: Scored) -> str:
    """Every contribution of both scores, with the sums, for ``leadsync explain``."""
    lines = [
        f"{result.email}: scored as of {result.scored_at.isoformat()} with model {result.model_name!r} "
        f"version {result.model_version} ({result.model_fingerprint[:12]})",
        f"grade {result.grade}, lifecycle {result.lifecycle}, stage {result.stage}, composite {result.composite}",
    ]
    for score, total in (("affinity", result.affinity), ("engagement", result.engagement)):
        parts = [c for c in result.contributions if c.score == score]
        header = f"{score} {total}"
        if score == "engagement":
            header += f" (engagement points {result.engagement_points:.2f} before the 0-100 mapping)"
        lines.append("")
        lines.append(header)
        for c in parts:
            if score == "affinity":
                detail = f"{c.value!r}" if c.value is not None else ""
            else:
                when = c.last_seen.date().isoformat() if c.last_seen else "-"
                capped = f", {c.capped} over cap" if c.capped else ""
                detail = f"{c.count} event{'s' if c.count != 1 else ''}{capped}, last {when}"
            lines.append(f"  {c.points:+4d}  {c.label:<28} raw {c.raw_points:+9.2f}  {detail}".rstrip())
        lines.append(f"  {sum(c.points for c in parts):4d}  = {score}")
    if result.disqualified:
        lines.append("")
        lines.append(f"disqualified: {result.disqualified_reason}")
    if result.machine_filtered:
        lines.append(f"machine activity ignored: {result.machine_filtered} event(s)")
    lines.append("")
    lines.append(f"reason: {result.sentence}")
    return "\n".join(lines)
