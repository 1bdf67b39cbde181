"""Affinity: fit with the buyer persona, from attributes only (it never decays).

Rules match title patterns, seniority, industry, company-size ranges, country and the email
domain (free mail, competitors and academic addresses usually score negative). Within a rule
``group`` only the first matching rule in file order counts. Affinity is ``base`` plus the points of
the matching rules, clamped to 0–100.

Each rule is evaluated once per *distinct* attribute value, not once per person: 100,000 profiles
share a few thousand titles and domains.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from leadsync.connectors.records import Profile
from leadsync.scoring.compiled import AffinityMatcher, CompiledModel

__all__ = ["attribute_value", "match_rules", "rule_matches"]


def _domain(email: str | None) -> str | None:
    domain = (email or "").rpartition("@")[2].strip().lower()
    return domain or None


def _clean(value: str | int | None) -> str | int | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def attribute_value(profile: Profile, attribute: str) -> str | int | None:
    """The attribute a rule reads; ``email_domain`` is the part after the last ``@``, lowercased."""
    if attribute == "email_domain":
        return _domain(profile.email)
    return _clean(getattr(profile, attribute))


def _attribute_column(profiles: Sequence[Profile], attribute: str) -> list[str | int | None]:
    if attribute == "email_domain":
        return [_domain(p.email) for p in profiles]
    raw = [getattr(p, attribute) for p in profiles]
    # clean each distinct value once
    cleaned = {v: _clean(v) for v in set(raw)}
    return [cleaned[v] for v in raw]


class _Column:
    """One attribute for all persons: distinct values and each person's index into them."""

    def __init__(self, values: Sequence[str | int | None], numeric: bool) -> None:
        if numeric:
            self.size = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
            return
        codes: dict[str | int | None, int] = {}
        self.index = np.fromiter((codes.setdefault(v, len(codes)) for v in values), np.int64, len(values))
        self.distinct = list(codes)
        self.present = np.array([v is not None for v in self.distinct], dtype=bool)[self.index]

    def matches(self, rule: AffinityMatcher) -> np.ndarray:
        if rule.attribute == "company_size":
            present = ~np.isnan(self.size)
            with np.errstate(invalid="ignore"):
                hit = (self.size >= rule.low) & (self.size <= rule.high)
        else:
            distinct = [rule.matches_text(None if v is None else str(v)) for v in self.distinct]
            hit = np.array(distinct, dtype=bool)[self.index]
            present = self.present
        return present & (hit != rule.negate)


def rule_matches(rule: AffinityMatcher, values: Sequence[str | int | None]) -> np.ndarray:
    """Whether ``rule`` matches each value (``negate`` applied; a missing value never matches)."""
    return _Column(values, rule.attribute == "company_size").matches(rule)


def match_rules(profiles: Sequence[Profile], compiled: CompiledModel) -> np.ndarray:
    """``persons x rules`` booleans: the rules that count (first match within a group)."""
    n, rules = len(profiles), compiled.affinity
    matched = np.zeros((n, len(rules)), dtype=bool)
    if not rules or not n:
        return matched
    columns = {
        attribute: _Column(_attribute_column(profiles, attribute), attribute == "company_size")
        for attribute in {r.attribute for r in rules}
    }
    taken: dict[int, np.ndarray] = {}
    for rule in rules:
        hit = columns[rule.attribute].matches(rule)
        if rule.group >= 0:
            done = taken.setdefault(rule.group, np.zeros(n, dtype=bool))
            hit &= ~done
            done |= hit
        matched[:, rule.index] = hit
    return matched
