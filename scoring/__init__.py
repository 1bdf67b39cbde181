"""Scoring: pure functions from normalised records to affinity, engagement, stage, grade,
lifecycle and their explanation. No I/O, no clock, no database: ``now`` is always an argument.

Entry points: ``score_person`` (one person, ``EventRecord``s) and ``score_many`` (all persons,
``EventColumns``), which share one vectorised core.
"""

from leadsync.scoring.columns import EVENT_TYPES, EventColumns, EventColumnsBuilder
from leadsync.scoring.compiled import CompiledModel, compile_model
from leadsync.scoring.engine import (
    ENGINE_VERSION,
    BatchResult,
    Previous,
    ScoreResult,
    score_many,
    score_person,
)
from leadsync.scoring.explain import REASON_LIMIT, Contribution, render_explanation

__all__ = [
    "ENGINE_VERSION",
    "EVENT_TYPES",
    "REASON_LIMIT",
    "BatchResult",
    "CompiledModel",
    "Contribution",
    "EventColumns",
    "EventColumnsBuilder",
    "Previous",
    "ScoreResult",
    "compile_model",
    "render_explanation",
    "score_many",
    "score_person",
]
