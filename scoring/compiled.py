"""A validated ``ScoringModel`` turned into lookup arrays for the vectorised engine.

Every event falls into one *channel*: its event type, except that a hard bounce has its own
channel (``email_hard_bounce``), so does a meeting or call with an outcome of its own
(``meeting_completed``, ``meeting_no_show``, ``meeting_cancelled``, ``call_not_connected``; a model
without a rule for one weighs those events as their type, in points and in signal lists) and a
page view whose URL matches a page category goes to ``page:<name>``. Channels carry the per-kind numbers (points, half-life, caps) as arrays indexed by
channel code, so the engine never looks at the model inside a loop over events.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from leadsync.config.scoring_model import (
    HARD_BOUNCE,
    LIFECYCLE_LEVELS,
    OUTCOME_KEYS,
    PAGE_PREFIX,
    STAGES,
    AffinityRule,
    EventRule,
    ScoringModel,
)
from leadsync.connectors.records import EventType
from leadsync.scoring.columns import EVENT_TYPES, OUTCOME_FLAGS

__all__ = ["AffinityMatcher", "CompiledModel", "Condition", "DisqualifierSpec", "StageSpec", "compile_model"]

DAY = 86_400.0
_NO_CAP = np.iinfo(np.int64).max


def _label(name: str, label: str | None) -> str:
    return label if label else name.replace("_", " ")


def _channel_label(key: str, rule: EventRule | None) -> str:
    if rule is not None and rule.label:
        return rule.label
    if key.startswith(PAGE_PREFIX):
        return f"{key.removeprefix(PAGE_PREFIX).replace('_', ' ')} page"
    return key.replace("_", " ")


@dataclass(frozen=True, slots=True)
class AffinityMatcher:
    index: int
    name: str
    label: str
    attribute: str
    points: int
    group: int  # -1: not in a group
    negate: bool
    persona: bool
    patterns: tuple[re.Pattern[str], ...]
    values: frozenset[str]
    low: float
    high: float

    def matches_text(self, value: str | None) -> bool:
        """Whether a string attribute matches (before ``negate``). None never matches."""
        if value is None:
            return False
        if self.patterns:
            return any(p.search(value) for p in self.patterns)
        text = value.strip().lower()
        if self.attribute == "email_domain":
            parts = text.split(".")
            return any(".".join(parts[i:]) in self.values for i in range(len(parts)))
        return text in self.values


@dataclass(frozen=True, slots=True)
class StageSpec:
    stage: int
    channels: np.ndarray  # bool[C]
    window: float  # seconds
    min_count: int


@dataclass(frozen=True, slots=True)
class Condition:
    min_affinity: int | None
    min_engagement: int | None
    min_stage: int | None
    channels: np.ndarray | None  # bool[C]
    within: float  # seconds; inf when no window


@dataclass(frozen=True, slots=True)
class DisqualifierSpec:
    index: int
    name: str
    label: str
    channels: np.ndarray | None
    within: float
    rules: tuple[int, ...]
    max_level: int


@dataclass(frozen=True, slots=True)
class CompiledModel:
    model: ScoringModel
    fingerprint: str
    # channels
    channel_keys: tuple[str, ...]
    channel_labels: tuple[str, ...]
    points: np.ndarray  # float64[C]
    half_life: np.ndarray  # seconds, inf = no decay
    cap_count: np.ndarray  # int64, huge = no cap
    cap_window: np.ndarray  # seconds, inf = no cap
    max_points: np.ndarray  # inf = none
    scored: np.ndarray  # bool[C]: has non-zero points (appears in contributions)
    type_channel: np.ndarray  # int64[n event types]
    hard_bounce_channel: int
    outcome_channels: tuple[tuple[int, int, int], ...]  # (event type code, outcome flag, channel)
    page_channels: tuple[int, ...]
    page_patterns: tuple[tuple[re.Pattern[str], ...], ...]
    # scores
    affinity: tuple[AffinityMatcher, ...]
    affinity_base: int
    stages: tuple[StageSpec, ...]  # deepest first
    lifecycle: tuple[tuple[int, tuple[Condition, ...]], ...]  # (level, alternatives), deepest first
    blockable: np.ndarray  # bool[len(LIFECYCLE_LEVELS)]
    disqualifiers: tuple[DisqualifierSpec, ...]

    @property
    def n_channels(self) -> int:
        return len(self.channel_keys)

    def classify_url(self, url: str) -> int:
        """The channel of a page view at ``url``."""
        for channel, patterns in zip(self.page_channels, self.page_patterns, strict=True):
            if any(p.search(url) for p in patterns):
                return channel
        return int(self.type_channel[EVENT_TYPES.index(EventType.PAGE_VIEW)])


_BY_FINGERPRINT: dict[str, CompiledModel] = {}
_BY_IDENTITY: dict[int, tuple[ScoringModel, CompiledModel]] = {}


def compile_model(model: ScoringModel) -> CompiledModel:
    """Compile, memoised (compiling is deterministic, so this stays pure).

    Models are frozen, so the same object always compiles the same; an equal model loaded again
    (same fingerprint) reuses the compiled form too.
    """
    known = _BY_IDENTITY.get(id(model))
    if known is not None and known[0] is model:
        return known[1]
    key = model.fingerprint
    compiled = _BY_FINGERPRINT.get(key)
    if compiled is None:
        compiled = _compile(model)
    if len(_BY_FINGERPRINT) > 32:
        _BY_FINGERPRINT.clear()
        _BY_IDENTITY.clear()
    _BY_FINGERPRINT[key] = compiled
    _BY_IDENTITY[id(model)] = (model, compiled)  # holds the model, so its id cannot be reused
    return compiled


def _compile(model: ScoringModel) -> CompiledModel:
    eng = model.engagement
    keys: list[str] = [t.value for t in EVENT_TYPES] + [HARD_BOUNCE, *OUTCOME_KEYS]
    keys += [f"{PAGE_PREFIX}{name}" for name in eng.pages]
    index = {k: i for i, k in enumerate(keys)}
    rules: dict[str, EventRule] = dict(eng.events)
    rules.update({f"{PAGE_PREFIX}{name}": page for name, page in eng.pages.items()})
    # An outcome the model does not name is weighed as its event type (see the module docstring).
    inherit = {key: kind.value for key, (kind, _) in OUTCOME_KEYS.items() if key not in eng.events}
    for key, parent in inherit.items():
        if parent in eng.events:
            rules[key] = eng.events[parent]

    n = len(keys)
    points = np.zeros(n)
    half_life = np.full(n, math.inf)
    cap_count = np.full(n, _NO_CAP, dtype=np.int64)
    cap_window = np.full(n, math.inf)
    max_points = np.full(n, math.inf)
    labels = []
    for i, k in enumerate(keys):
        rule = rules.get(k)
        labels.append(_channel_label(k, None if k in inherit else rule))
        if rule is None:
            continue
        points[i] = rule.points
        if rule.half_life_days is not None:
            half_life[i] = rule.half_life_days * DAY
        if rule.cap is not None:
            cap_count[i] = rule.cap.count
            cap_window[i] = rule.cap.window_days * DAY
        if rule.max_points is not None:
            max_points[i] = rule.max_points

    def mask(signal_keys: list[str] | None) -> np.ndarray | None:
        if signal_keys is None:
            return None
        m = np.zeros(n, dtype=bool)
        m[[index[k] for k in signal_keys]] = True
        m[[index[k] for k, parent in inherit.items() if parent in signal_keys]] = True
        return m

    stages = []
    for stage_index in range(len(STAGES) - 1, 0, -1):
        rule = getattr(model.stage, STAGES[stage_index])
        if rule is not None:
            stages.append(StageSpec(stage_index, mask(rule.signals), rule.window_days * DAY, rule.min_count))

    lifecycle = []
    blockable = np.ones(len(LIFECYCLE_LEVELS), dtype=bool)
    for level in range(len(LIFECYCLE_LEVELS) - 1, 0, -1):
        rule = getattr(model.lifecycle, LIFECYCLE_LEVELS[level])
        if rule is None:
            continue
        blockable[level] = rule.blockable
        alternatives = tuple(
            Condition(
                min_affinity=c.min_affinity,
                min_engagement=c.min_engagement,
                min_stage=None if c.min_stage is None else STAGES.index(c.min_stage),
                channels=mask(c.events),
                within=math.inf if c.within_days is None else c.within_days * DAY,
            )
            for c in rule.when
        )
        lifecycle.append((level, alternatives))

    matchers = _affinity_matchers(model.affinity.rules)
    by_name = {m.name: m.index for m in matchers}
    disqualifiers = tuple(
        DisqualifierSpec(
            index=i,
            name=dq.name,
            label=_label(dq.name, dq.label),
            channels=mask(dq.events),
            within=math.inf if dq.within_days is None else dq.within_days * DAY,
            rules=tuple(by_name[r] for r in dq.rules or ()),
            max_level=LIFECYCLE_LEVELS.index(dq.max_lifecycle),
        )
        for i, dq in enumerate(model.disqualifiers)
    )

    type_channel = np.array([index[t.value] for t in EVENT_TYPES], dtype=np.int64)
    return CompiledModel(
        model=model,
        fingerprint=model.fingerprint,
        channel_keys=tuple(keys),
        channel_labels=tuple(labels),
        points=points,
        half_life=half_life,
        cap_count=cap_count,
        cap_window=cap_window,
        max_points=max_points,
        scored=points != 0,
        type_channel=type_channel,
        hard_bounce_channel=index[HARD_BOUNCE],
        outcome_channels=tuple(
            (EVENT_TYPES.index(kind), OUTCOME_FLAGS[kind][outcome], index[key])
            for key, (kind, outcome) in OUTCOME_KEYS.items()
        ),
        page_channels=tuple(index[f"{PAGE_PREFIX}{name}"] for name in eng.pages),
        page_patterns=tuple(
            tuple(re.compile(p, re.IGNORECASE) for p in page.patterns) for page in eng.pages.values()
        ),
        affinity=matchers,
        affinity_base=model.affinity.base,
        stages=tuple(stages),
        lifecycle=tuple(lifecycle),
        blockable=blockable,
        disqualifiers=disqualifiers,
    )


def _affinity_matchers(rules: list[AffinityRule]) -> tuple[AffinityMatcher, ...]:
    groups: dict[str, int] = {}
    out = []
    for i, rule in enumerate(rules):
        out.append(
            AffinityMatcher(
                index=i,
                name=rule.name,
                label=_label(rule.name, rule.label),
                attribute=rule.attribute,
                points=rule.points,
                group=-1 if rule.group is None else groups.setdefault(rule.group, len(groups)),
                negate=rule.negate,
                persona=rule.counts_as_persona,
                patterns=tuple(re.compile(p, re.IGNORECASE) for p in rule.patterns or ()),
                values=frozenset(v.strip().lower() for v in rule.values or ()),
                low=-math.inf if rule.min is None else rule.min,
                high=math.inf if rule.max is None else rule.max,
            )
        )
    return tuple(out)
