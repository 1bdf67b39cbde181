"""Buying stage: awareness, investigation, decision, action.

A person is in the deepest stage with at least ``min_count`` of its signal events (event kinds or
page categories) inside that stage's recency window, evaluated from the deepest stage up, as
Demandbase evaluates journey stages (scoring-research.md §3.1 [S110]); awareness otherwise. Only a
purchase or a won deal can signal action (the model loader refuses anything else). Machine activity
never signals anything.

There is no hysteresis here: a stage changes only when a new signal arrives or an old one leaves its
window, so it cannot flip back and forth between two runs with the same events.
"""

from __future__ import annotations

import numpy as np

from leadsync.config.scoring_model import STAGES
from leadsync.scoring.compiled import CompiledModel
from leadsync.scoring.engagement import KeptEvents

__all__ = ["STAGES", "buying_stage"]


def buying_stage(kept: KeptEvents, compiled: CompiledModel, n_persons: int, now: float) -> np.ndarray:
    """Stage index per person (``STAGES[i]``)."""
    stage = np.zeros(n_persons, dtype=np.int8)
    age = now - kept.at
    for spec in compiled.stages:  # deepest first
        signal = spec.channels[kept.channel] & (age <= spec.window)
        count = np.bincount(kept.person[signal], minlength=n_persons)
        stage[(stage == 0) & (count >= spec.min_count)] = spec.stage
    return stage
