"""Lifecycle (subscriber … customer) from rules over the scores, and disqualifiers.

A level is reached when any of its conditions holds; a person gets the deepest level reached, or
subscriber. A condition combines score thresholds (affinity, engagement, stage) and "one of these
events, within N days".

Hysteresis: a person whose previous lifecycle was at or above a level keeps that level while the
score thresholds hold minus the model's ``margin`` (promotion at T, demotion only below T − margin;
scoring-research.md §2.5 [S114]). Event windows do not stretch.

Disqualifiers (hard bounce, spam report, unsubscribe, competitor, student, …) hold the lifecycle at
their ``max_lifecycle`` instead of only subtracting points (§6.1 item 5). Levels marked
``blockable = false`` (customer: a purchase is a fact) are never held back.
"""

from __future__ import annotations

import numpy as np

from leadsync.config.scoring_model import LIFECYCLE_LEVELS
from leadsync.scoring.compiled import CompiledModel
from leadsync.scoring.engagement import EngagementParts

__all__ = ["LIFECYCLE_LEVELS", "disqualifications", "lifecycle_level"]

_FAR_PAST = -np.finfo(np.float64).max


def _recent(parts: EngagementParts, channels: np.ndarray, within: float, now: float) -> np.ndarray:
    """Whether each person has a human event on one of ``channels`` in the last ``within`` seconds."""
    cutoff = now - within if np.isfinite(within) else _FAR_PAST
    return (parts.last_seen[:, channels] >= cutoff).any(axis=1)


def disqualifications(
    compiled: CompiledModel, parts: EngagementParts, matched: np.ndarray, now: float
) -> np.ndarray:
    """``persons x disqualifiers`` booleans."""
    n = parts.points.shape[0]
    out = np.zeros((n, len(compiled.disqualifiers)), dtype=bool)
    for dq in compiled.disqualifiers:
        if dq.channels is not None:
            out[:, dq.index] = _recent(parts, dq.channels, dq.within, now)
        else:
            out[:, dq.index] = matched[:, list(dq.rules)].any(axis=1)
    return out


def lifecycle_level(
    compiled: CompiledModel,
    *,
    affinity: np.ndarray,
    engagement: np.ndarray,
    stage: np.ndarray,
    parts: EngagementParts,
    disqualified: np.ndarray,
    previous: np.ndarray,
    now: float,
) -> np.ndarray:
    """Lifecycle index per person (``LIFECYCLE_LEVELS[i]``); ``previous`` is -1 where unknown."""
    n = len(affinity)
    margin = compiled.model.lifecycle.margin
    level = np.zeros(n, dtype=np.int8)
    for target, alternatives in compiled.lifecycle:  # deepest first
        slack = np.where(previous >= target, margin, 0)
        reached = np.zeros(n, dtype=bool)
        for cond in alternatives:
            ok = np.ones(n, dtype=bool)
            if cond.min_affinity is not None:
                ok &= affinity >= cond.min_affinity - slack
            if cond.min_engagement is not None:
                ok &= engagement >= cond.min_engagement - slack
            if cond.min_stage is not None:
                ok &= stage >= cond.min_stage
            if cond.channels is not None:
                ok &= _recent(parts, cond.channels, cond.within, now)
            reached |= ok
        level[(level == 0) & reached] = target

    if compiled.disqualifiers:
        caps = np.array([dq.max_level for dq in compiled.disqualifiers], dtype=np.int8)
        cap = np.where(disqualified, caps[None, :], len(LIFECYCLE_LEVELS)).min(axis=1)
        held = compiled.blockable[level] & (level > cap)
        level = np.where(held, cap, level).astype(np.int8)
    return level
