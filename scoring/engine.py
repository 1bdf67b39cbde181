"""The scoring entry points: ``score_many`` (columns, all persons at once) and ``score_person``.

Both run the same vectorised core; ``score_person`` is ``score_many`` over one person, so the two
cannot disagree. Pure: no I/O, no clock (``now`` is an argument, and scores can be computed as of any
date: later events are ignored), no database.

Scores are whole numbers: affinity and engagement are ``int`` in 0–100, because they are written to
platform fields and compared between runs (a float that decays every second would be "changed" on
every run), and because whole-point contributions can be made to sum exactly to them.
``engagement_points`` keeps the unrounded total before the 0–100 mapping, for ranking ties.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from leadsync.config.scoring_model import LIFECYCLE_LEVELS, STAGES, ScoringModel
from leadsync.connectors.records import EventRecord, Profile
from leadsync.scoring.affinity import attribute_value, match_rules
from leadsync.scoring.apportion import apportion
from leadsync.scoring.columns import EventColumns
from leadsync.scoring.compiled import CompiledModel, compile_model
from leadsync.scoring.engagement import (
    EngagementParts,
    aggregate,
    assign_channels,
    engagement_curve,
    keep_events,
)
from leadsync.scoring.explain import Contribution, build_sentence, item_text, reason_json, round_points
from leadsync.scoring.grade import band, grade_name, parse_grade
from leadsync.scoring.lifecycle import disqualifications, lifecycle_level
from leadsync.scoring.machine import machine_mask
from leadsync.scoring.stage import buying_stage

__all__ = ["ENGINE_VERSION", "BatchResult", "Previous", "ScoreResult", "score_many", "score_person"]

#: Bumped when the scoring code changes results for the same model; store it next to the model
#: fingerprint so that either change re-scores everyone.
ENGINE_VERSION = "1"


class _HasPrevious(Protocol):
    @property
    def lifecycle(self) -> str | None: ...

    @property
    def grade(self) -> str | None: ...

    @property
    def engagement(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Previous:
    """What the last run computed, for hysteresis. A ``ScoreResult`` works as well."""

    lifecycle: str | None = None
    grade: str | None = None
    engagement: float | None = None


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """One person's scores.

    ``affinity`` and ``engagement`` are whole numbers 0–100; the ``contributions`` with
    ``score == "affinity"`` sum exactly to ``affinity``, those with ``score == "engagement"`` to
    ``engagement``. ``contributions`` lists all of them, engagement first, each score's most
    important (largest share) first. ``sentence`` is the short reason (≤ 255 characters).
    """

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
    top: int = field(default=3, repr=False)

    def reason_json(self) -> str:
        """The top contributions as JSON (see ``scoring.explain.reason_payload``)."""
        return reason_json(self, self.top)

    def as_previous(self) -> Previous:
        return Previous(lifecycle=self.lifecycle, grade=self.grade, engagement=self.engagement)


def _epoch(now: datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.timestamp()


def score_person(
    profile: Profile,
    events: Iterable[EventRecord],
    model: ScoringModel,
    *,
    now: datetime,
    previous: _HasPrevious | None = None,
) -> ScoreResult:
    """Score one person from their records. Same core, same results as ``score_many``."""
    columns = EventColumns.from_records([events])
    return score_many([profile], columns, model, now=now, previous=[previous]).result(0)


def score_many(
    profiles: Sequence[Profile],
    events: EventColumns,
    model: ScoringModel,
    *,
    now: datetime,
    previous: Sequence[_HasPrevious | None] | None = None,
) -> BatchResult:
    """Score ``profiles``; ``events.person`` indexes into ``profiles``.

    ``previous[i]`` (optional) is what the last run gave person ``i``, for hysteresis.
    """
    now_ts = _epoch(now)
    compiled = compile_model(model)
    n = len(profiles)
    if len(events) and (int(events.person.min()) < 0 or int(events.person.max()) >= n):
        raise ValueError(f"events refer to persons outside 0..{n - 1}")
    if previous is not None and len(previous) != n:
        raise ValueError(f"previous has {len(previous)} entries for {n} profiles")

    channel = assign_channels(events, compiled)
    machine = machine_mask(events, model.machine)
    kept = keep_events(events, channel, machine, n, compiled.n_channels, now_ts)
    parts = aggregate(kept, compiled, n, now_ts)
    stage = buying_stage(kept, compiled, n, now_ts)

    # affinity: rule points (and the base) clamped to 0–100; shares scaled by the same factor
    matched = match_rules(profiles, compiled)
    rule_points = np.array([r.points for r in compiled.affinity] + [compiled.affinity_base], dtype=np.float64)
    base_column = np.full((n, 1), compiled.affinity_base != 0)
    aff_present = np.concatenate([matched, base_column], axis=1)
    aff_raw = aff_present * rule_points[None, :]
    aff_total = aff_raw.sum(axis=1)
    affinity = np.clip(aff_total, 0, 100).astype(np.int64)
    factor = np.divide(affinity, aff_total, out=np.zeros(n), where=aff_total > 0)
    aff_shares = apportion(aff_raw * factor[:, None], affinity, aff_present)

    # engagement: the curve's factor applied to every channel's points
    eng = model.engagement
    points_total = parts.total
    curved = engagement_curve(points_total, eng.curve, eng.scale)
    prev_letter, prev_digit, prev_level, prev_engagement = _previous_arrays(previous, n)
    # Hysteresis, as for the grade: engagement decays by the minute, so its whole number would tick
    # with nothing done, each tick a history row and a platform write (an unchanged re-sync must
    # write nothing). The last whole number stays until the exact value is a whole point from it.
    engagement = np.where(
        np.abs(curved - prev_engagement) < 1, prev_engagement, np.floor(curved + 0.5)
    ).astype(np.int64)
    eng_present = compiled.scored[None, :] & (parts.kept > 0)
    factor = np.divide(curved, points_total, out=np.zeros(n), where=points_total > 0)
    eng_shares = apportion(parts.points * factor[:, None], engagement, eng_present)

    grade_settings = model.grade
    letter = band(affinity, grade_settings.affinity_bands, prev_letter, grade_settings.margin)
    digit = band(engagement, grade_settings.engagement_bands, prev_digit, grade_settings.margin)

    dq = disqualifications(compiled, parts, matched, now_ts)
    level = lifecycle_level(
        compiled,
        affinity=affinity,
        engagement=engagement,
        stage=stage,
        parts=parts,
        disqualified=dq,
        previous=prev_level,
        now=now_ts,
    )

    comp = model.composite
    persona = np.array([r.persona for r in compiled.affinity], dtype=bool)
    matches = (matched & persona[None, :]).sum(axis=1)
    composite = (
        comp.stage_weight * (stage.astype(np.int64) + 1)
        + comp.attribute_weight * np.minimum(matches, comp.attribute_cap)
        + np.minimum(engagement, comp.engagement_cap)
    )
    return BatchResult(
        profiles=profiles,
        compiled=compiled,
        now=now,
        affinity=affinity,
        engagement=engagement,
        engagement_points=points_total,
        stage=stage,
        letter=letter,
        digit=digit,
        lifecycle=level,
        disqualified_by=dq,
        composite=composite,
        machine_filtered=kept.machine_filtered,
        _aff_shares=aff_shares,
        _aff_raw=aff_raw,
        _aff_present=aff_present,
        _eng_shares=eng_shares,
        _eng_present=eng_present,
        _parts=parts,
    )


def _previous_arrays(
    previous: Sequence[_HasPrevious | None] | None, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grade bands and lifecycle level (-1 where unknown) and engagement (NaN where unknown)."""
    letter = np.full(n, -1, dtype=np.int64)
    digit = np.full(n, -1, dtype=np.int64)
    level = np.full(n, -1, dtype=np.int64)
    engagement = np.full(n, np.nan)
    if previous is None:
        return letter, digit, level, engagement
    levels = {name: i for i, name in enumerate(LIFECYCLE_LEVELS)}
    for i, prev in enumerate(previous):
        if prev is None:
            continue
        letter[i], digit[i] = parse_grade(prev.grade)
        level[i] = levels.get(prev.lifecycle or "", -1)
        if prev.engagement is not None:
            engagement[i] = prev.engagement
    return letter, digit, level, engagement


def _importance(shares: np.ndarray, raw: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Column order per row: present parts by |share|, then |raw points|, then column; absent last."""
    key = -(np.abs(shares) * 2.0**32 + np.minimum(np.abs(raw), 2.0**31))
    key = np.where(present, key, np.inf)
    return np.argsort(key, axis=1, kind="stable")


_CHUNK = 1024  # rows built together by BatchResult.result
_GRADE_NAMES = [grade_name(code) for code in range(16)]

_DAYS: dict[int, str] = {}


def _day(ts: float) -> str:
    day = int(ts // 86_400)
    text = _DAYS.get(day)
    if text is None:
        text = _DAYS[day] = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
    return text


def _iso_times(ts: np.ndarray) -> list[str]:
    """``datetime.fromtimestamp(t, UTC).isoformat()`` with ``Z`` for ``+00:00`` (how
    ``Contribution.as_dict`` writes ``last_seen``) for every ``t``, rounding to the microsecond
    as ``fromtimestamp`` does (half to even) and without microseconds when they are zero."""
    fraction, seconds = np.modf(ts)
    micros = np.rint(fraction * 1e6).astype(np.int64)
    seconds = seconds.astype(np.int64) + np.floor_divide(micros, 1_000_000)
    micros = np.mod(micros, 1_000_000)
    texts = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()
    return [
        f"{text}Z" if us == 0 else f"{text}.{us:06d}Z"
        for text, us in zip(texts, micros.tolist(), strict=True)
    ]


@dataclass(eq=False)
class BatchResult:
    """Scores of many persons as arrays (index ``i`` = ``profiles[i]``); ``result(i)`` for one.

    Codes: ``stage[i]`` indexes ``STAGES``, ``lifecycle[i]`` indexes ``LIFECYCLE_LEVELS``,
    ``letter``/``digit`` are the grade bands (0 = A / 1). ``disqualified_by`` is
    ``persons x model.disqualifiers``.
    """

    profiles: Sequence[Profile]
    compiled: CompiledModel
    now: datetime
    affinity: np.ndarray
    engagement: np.ndarray
    engagement_points: np.ndarray
    stage: np.ndarray
    letter: np.ndarray
    digit: np.ndarray
    lifecycle: np.ndarray
    disqualified_by: np.ndarray
    composite: np.ndarray
    machine_filtered: np.ndarray
    _aff_shares: np.ndarray
    _aff_raw: np.ndarray
    _aff_present: np.ndarray
    _eng_shares: np.ndarray
    _eng_present: np.ndarray
    _parts: EngagementParts
    _orders: tuple[np.ndarray, np.ndarray] | None = None
    _chunk: tuple[int, list[ScoreResult]] | None = None

    def __len__(self) -> int:
        return len(self.profiles)

    @property
    def disqualified(self) -> np.ndarray:
        return self.disqualified_by.any(axis=1)

    def stage_name(self, i: int) -> str:
        return STAGES[int(self.stage[i])]

    def grade(self, i: int) -> str:
        return grade_name(int(self.letter[i]) * 4 + int(self.digit[i]))

    def lifecycle_name(self, i: int) -> str:
        return LIFECYCLE_LEVELS[int(self.lifecycle[i])]

    def names(self, rows: Sequence[int] | np.ndarray) -> tuple[list[str], list[str], list[str]]:
        """Stage, grade and lifecycle names of ``rows``, read a column at a time (``stage_name(i)``
        and the others index numpy once a person, which cost more than scoring them)."""
        index = np.asarray(rows, dtype=np.int64)
        codes = (self.letter[index].astype(np.int64) * 4 + self.digit[index]).tolist()
        return (
            [STAGES[k] for k in self.stage[index].tolist()],
            [_GRADE_NAMES[code] for code in codes],
            [LIFECYCLE_LEVELS[k] for k in self.lifecycle[index].tolist()],
        )

    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        if self._orders is None:
            self._orders = (
                _importance(self._eng_shares, self._parts.points, self._eng_present),
                _importance(self._aff_shares, self._aff_raw, self._aff_present),
            )
        return self._orders

    def sentence(self, i: int) -> str:
        """The short reason of person ``i`` (≤ 255 characters)."""
        return self.sentences([i])[0]

    def sentences(self, rows: Sequence[int] | np.ndarray | None = None) -> list[str]:
        """The short reasons of ``rows`` (default: everyone), built from whole columns at once."""
        index = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        eng_order, aff_order = self._order()
        top = self.compiled.model.explain.top
        parts = self._parts

        def items(order: np.ndarray, shares: np.ndarray, present: np.ndarray) -> tuple[list[int], np.ndarray]:
            """The parts a sentence names, each person's most important first: up to ``top``,
            stopping at the first absent or zero one. Flat, row by row: (row offsets, columns)."""
            cols = order[index, :top]
            named = np.take_along_axis(present[index], cols, axis=1) & (
                np.take_along_axis(shares[index], cols, axis=1) != 0
            )
            local, slot = np.nonzero(np.logical_and.accumulate(named, axis=1))
            offsets = np.searchsorted(local, np.arange(len(index) + 1)).tolist()
            return offsets, np.stack([index[local], cols[local, slot]])

        e_off, (e_rows, e_cols) = items(eng_order, self._eng_shares, self._eng_present)
        days = np.floor_divide(parts.last_seen[e_rows, e_cols], 86_400).astype(np.int64)
        day_numbers, day_of = np.unique(days, return_inverse=True)
        day_texts = [_day(number * 86_400.0) for number in day_numbers.tolist()]
        channel_labels = self.compiled.channel_labels
        e_items = [
            item_text(channel_labels[c], share, count, day_texts[d])
            for c, share, count, d in zip(
                e_cols.tolist(),
                self._eng_shares[e_rows, e_cols].tolist(),
                parts.counted[e_rows, e_cols].tolist(),
                day_of.tolist(),
                strict=True,
            )
        ]
        a_off, (a_rows, a_cols) = items(aff_order, self._aff_shares, self._aff_present)
        rule_labels = [r.label for r in self.compiled.affinity] + ["base"]
        a_items = [
            item_text(rule_labels[j], share)
            for j, share in zip(a_cols.tolist(), self._aff_shares[a_rows, a_cols].tolist(), strict=True)
        ]
        stages, grades, lifecycles = self.names(index)
        affinity = self.affinity[index].tolist()
        engagement = self.engagement[index].tolist()
        held: dict[int, str] = {}
        dq_labels = [dq.label for dq in self.compiled.disqualifiers]
        for row in np.flatnonzero(self.disqualified_by[index].any(axis=1)).tolist():
            hits = np.flatnonzero(self.disqualified_by[index[row]]).tolist()
            held[row] = f"Disqualified: {', '.join(dq_labels[h] for h in hits)}."
        return [
            build_sentence(
                grade=grades[r],
                lifecycle=lifecycles[r],
                stage=stages[r],
                affinity=affinity[r],
                engagement=engagement[r],
                engagement_items=e_items[e_off[r] : e_off[r + 1]],
                affinity_items=a_items[a_off[r] : a_off[r + 1]],
                held=held.get(r),
            )
            for r in range(len(index))
        ]

    def contributions(self, i: int) -> tuple[Contribution, ...]:
        return self.result(i).contributions

    def result(self, i: int) -> ScoreResult:
        """Person ``i``'s full result. Built a chunk of rows at a time, so a loop over ``i`` is fast."""
        if not 0 <= i < len(self):
            raise IndexError(f"person {i} not in 0..{len(self) - 1}")
        chunk = i // _CHUNK
        if self._chunk is None or self._chunk[0] != chunk:
            rows = np.arange(chunk * _CHUNK, min((chunk + 1) * _CHUNK, len(self)))
            self._chunk = (chunk, self._build(rows))
        return self._chunk[1][i - chunk * _CHUNK]

    def results(self) -> list[ScoreResult]:
        return [self.result(i) for i in range(len(self))]

    def _flat(self, order: np.ndarray, present: np.ndarray, rows: np.ndarray) -> tuple[list[int], ...]:
        """Present parts of ``rows`` in importance order: (row offsets, global rows, columns)."""
        ranked = np.take_along_axis(present[rows], order[rows], axis=1)
        local, position = np.nonzero(ranked)  # row-major: by row, then importance
        columns = order[rows[local], position]
        offsets = np.searchsorted(local, np.arange(len(rows) + 1))
        return offsets.tolist(), rows[local], columns

    def contribution_dicts(self, rows: Sequence[int] | np.ndarray) -> list[list[dict[str, Any]]]:
        """``[c.as_dict() for c in self.result(i).contributions]`` for each ``i`` in ``rows``, built
        straight from the arrays: what the store keeps for every person of a re-score, without
        building their ``ScoreResult`` and ``Contribution`` objects first."""
        rows = np.asarray(rows, dtype=np.int64)
        eng_order, aff_order = self._order()
        parts = self._parts
        e_off, e_rows, e_cols = self._flat(eng_order, self._eng_present, rows)
        e_key = [self.compiled.channel_keys[c] for c in e_cols.tolist()]
        e_share = self._eng_shares[e_rows, e_cols].tolist()
        e_raw = round_points(parts.points[e_rows, e_cols])
        e_counted = parts.counted[e_rows, e_cols].tolist()
        e_last = _iso_times(parts.last_seen[e_rows, e_cols])
        names = [rule.name for rule in self.compiled.affinity] + ["base"]
        a_off, a_rows, a_cols = self._flat(aff_order, self._aff_present, rows)
        a_name = [names[j] for j in a_cols.tolist()]
        a_share = self._aff_shares[a_rows, a_cols].tolist()
        a_raw = round_points(self._aff_raw[a_rows, a_cols])
        out = []
        for k in range(len(rows)):
            items = [
                {
                    "score": "engagement",
                    "rule": e_key[m],
                    "points": e_share[m],
                    "raw_points": e_raw[m],
                    "count": e_counted[m],
                    "last_seen": e_last[m],
                }
                for m in range(e_off[k], e_off[k + 1])
            ]
            items += [
                {
                    "score": "affinity",
                    "rule": a_name[m],
                    "points": a_share[m],
                    "raw_points": a_raw[m],
                    "count": 1,
                    "last_seen": None,
                }
                for m in range(a_off[k], a_off[k + 1])
            ]
            out.append(items)
        return out

    def _build(self, rows: np.ndarray) -> list[ScoreResult]:
        eng_order, aff_order = self._order()
        parts = self._parts
        model = self.compiled.model
        sentences = self.sentences(rows)

        e_off, e_rows, e_cols = self._flat(eng_order, self._eng_present, rows)
        e_key = [self.compiled.channel_keys[c] for c in e_cols.tolist()]
        e_label = [self.compiled.channel_labels[c] for c in e_cols.tolist()]
        e_share = self._eng_shares[e_rows, e_cols].tolist()
        e_raw = parts.points[e_rows, e_cols].tolist()
        e_counted = parts.counted[e_rows, e_cols].tolist()
        e_kept = parts.kept[e_rows, e_cols].tolist()
        e_last = [datetime.fromtimestamp(t, UTC) for t in parts.last_seen[e_rows, e_cols].tolist()]

        rules = self.compiled.affinity
        a_off, a_rows, a_cols = self._flat(aff_order, self._aff_present, rows)
        a_share = self._aff_shares[a_rows, a_cols].tolist()
        a_raw = self._aff_raw[a_rows, a_cols].tolist()
        a_info = []
        for r, j in zip(a_rows.tolist(), a_cols.tolist(), strict=True):
            if j < len(rules):
                value = attribute_value(self.profiles[r], rules[j].attribute)
                a_info.append((rules[j].name, rules[j].label, None if value is None else str(value)))
            else:
                a_info.append(("base", "base", None))

        specs = self.compiled.disqualifiers
        held = self.disqualified_by[rows]
        held_rows = {k: np.flatnonzero(held[k]).tolist() for k in np.flatnonzero(held.any(axis=1)).tolist()}
        codes = (self.letter[rows].astype(np.int64) * 4 + self.digit[rows]).tolist()
        scalars = zip(
            rows.tolist(),
            self.affinity[rows].tolist(),
            self.engagement[rows].tolist(),
            self.engagement_points[rows].tolist(),
            self.stage[rows].tolist(),
            codes,
            self.lifecycle[rows].tolist(),
            self.composite[rows].tolist(),
            self.machine_filtered[rows].tolist(),
            strict=True,
        )
        out = []
        for k, (row, affinity, engagement, points, stage, code, level, composite, filtered) in enumerate(
            scalars
        ):
            # positional arguments: Contribution(score, rule, label, points, raw_points, count,
            # last_seen, capped, value); this loop runs once per person of a full re-score
            contributions = [
                Contribution(
                    "engagement",
                    e_key[m],
                    e_label[m],
                    e_share[m],
                    e_raw[m],
                    e_counted[m],
                    e_last[m],
                    e_kept[m] - e_counted[m],
                    None,
                )
                for m in range(e_off[k], e_off[k + 1])
            ]
            contributions += [
                Contribution("affinity", *a_info[m][:2], a_share[m], a_raw[m], 1, None, 0, a_info[m][2])
                for m in range(a_off[k], a_off[k + 1])
            ]
            hits = [specs[h] for h in held_rows[k]] if k in held_rows else []
            reason = None
            if hits:
                cap = LIFECYCLE_LEVELS[min(dq.max_level for dq in hits)]
                reason = f"{', '.join(dq.label for dq in hits)} (lifecycle held at {cap} at most)"
            out.append(
                ScoreResult(
                    email=self.profiles[row].email,
                    affinity=affinity,
                    engagement=engagement,
                    engagement_points=points,
                    stage=STAGES[stage],
                    grade=grade_name(code),
                    lifecycle=LIFECYCLE_LEVELS[level],
                    disqualified=bool(hits),
                    disqualified_reason=reason,
                    disqualifiers=tuple(dq.name for dq in hits),
                    composite=composite,
                    contributions=tuple(contributions),
                    sentence=sentences[k],
                    machine_filtered=filtered,
                    scored_at=self.now,
                    model_name=model.name,
                    model_version=model.version,
                    model_fingerprint=self.compiled.fingerprint,
                    top=model.explain.top,
                )
            )
        return out
