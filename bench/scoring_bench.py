"""Scoring benchmark: re-score a synthetic population in memory (no sandbox, no store).

    .venv/bin/python -m bench.scoring_bench [--persons 100000] [--events 2000000] [--seed 7]

Builds ``persons`` profiles and ``events`` event columns (a realistic mix: sends, opens, clicks,
page views by URL, forms, hand-raisers, purchases, bounces and unsubscribes; some opens seconds after
delivery, some scanner bursts, some platform-flagged bot events), then times:

* ``full``: ``score_many`` over everyone plus the short reason of every person (what a full
  re-score hands to write-back), a batch of ``sync.scorebatch.BATCH`` persons at a time as the store's
  re-score does (events sorted by person once, then sliced): the same scores and reasons as one
  call over everyone, with a peak memory that does not grow with the number of persons;
* ``incremental``: the same for the persons changed since the last run (1 %), including cutting
  their events out of the columns.

The figures are seconds on the machine that runs it: ``full_seconds`` is the wall-clock time of the
best of ``repeat`` warm runs (``full_cpu_seconds`` its CPU time, which other processes on a busy
machine do not inflate; ``load_average_1m`` says how busy it was), ``full_cold_seconds`` the first
run (model compilation included).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from leadsync.config.scoring_model import load_model
from leadsync.connectors.records import EventType, Profile
from leadsync.scoring import EVENT_TYPES, EventColumns, score_many
from leadsync.scoring.columns import HARD_BOUNCE, MACHINE
from leadsync.sync.scorebatch import BATCH

__all__ = ["NOW", "run", "synthetic_population"]

NOW = datetime(2026, 7, 1, tzinfo=UTC)
DAY = 86_400.0

_TITLES = [
    "CEO",
    "Chief Financial Officer",
    "CTO",
    "Founder",
    "VP Marketing",
    "VP Finance",
    "Head of Growth",
    "Vice President, Sales",
    "Director of IT",
    "Marketing Director",
    "Engineering Manager",
    "Product Manager",
    "Team Lead",
    "Software Engineer",
    "Data Analyst",
    "Consultant",
    "Designer",
    "Accountant",
    "Marketing Specialist",
    "Sales Associate",
    "Student",
    "Intern",
    "Office Manager",
    "Operations Coordinator",
    "Principal Engineer",
    "Owner",
    "President",
    None,
    None,
    None,
]
_SENIORITY = [None, None, None, "executive", "vp", "director", "manager", "senior", "entry"]
_INDUSTRIES = [
    "Computer Software",
    "SaaS",
    "Information Technology",
    "Internet",
    "Financial Services",
    "Manufacturing",
    "Retail",
    "Healthcare",
    "Education",
    "Marketing and Advertising",
    "Telecommunications",
    "Construction",
    "Hospitality",
    "Government",
    None,
]
_COUNTRIES = ["US", "US", "US", "GB", "CA", "DE", "FR", "NL", "AU", "ES", "IT", "BR", "IN", "JP", None]
_FREE = ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "gmx.de"]
_SPECIAL = ["mit.edu", "ox.ac.uk", "competitor.example"]
_PATHS = [
    "/",
    "/blog/post-{}",
    "/pricing",
    "/plans",
    "/product/feature-{}",
    "/features",
    "/docs/guide-{}",
    "/api",
    "/careers",
    "/jobs",
    "/demo",
    "/case-studies/{}",
    "/about",
    "/contact-sales",
    "/solutions/{}",
]

# event mix (share of all events), roughly what a B2B marketing database holds
_MIX = {
    EventType.EMAIL_SENT: 0.27,
    EventType.EMAIL_OPEN: 0.19,
    EventType.EMAIL_CLICK: 0.06,
    EventType.PAGE_VIEW: 0.30,
    EventType.SOCIAL_INTERACTION: 0.04,
    EventType.FORM_SUBMIT: 0.025,
    EventType.CONTENT_DOWNLOAD: 0.025,
    EventType.WEBINAR_ATTENDED: 0.01,
    EventType.DEMO_REQUEST: 0.006,
    EventType.TRIAL_STARTED: 0.005,
    EventType.MEETING_BOOKED: 0.004,
    EventType.CART_ABANDONED: 0.004,
    EventType.PURCHASE: 0.003,
    EventType.DEAL_WON: 0.002,
    EventType.EMAIL_BOUNCE: 0.008,
    EventType.EMAIL_UNSUBSCRIBE: 0.005,
    EventType.EMAIL_SPAM_REPORT: 0.001,
}
_EMAIL_KINDS = {
    EventType.EMAIL_SENT,
    EventType.EMAIL_OPEN,
    EventType.EMAIL_CLICK,
    EventType.EMAIL_BOUNCE,
    EventType.EMAIL_UNSUBSCRIBE,
    EventType.EMAIL_SPAM_REPORT,
}


def synthetic_population(
    persons: int, events: int, seed: int, *, campaigns: int = 200
) -> tuple[list[Profile], EventColumns]:
    rng = np.random.default_rng(seed)
    company_domains = [f"company{i}.com" for i in range(max(persons // 40, 10))]
    domain_pick = rng.random(persons)
    profiles = []
    titles = rng.integers(0, len(_TITLES), persons)
    seniority = rng.integers(0, len(_SENIORITY), persons)
    industries = rng.integers(0, len(_INDUSTRIES), persons)
    countries = rng.integers(0, len(_COUNTRIES), persons)
    sizes = np.round(rng.lognormal(4.5, 1.8, persons)).astype(int)
    companies = rng.integers(0, len(company_domains), persons)
    for i in range(persons):
        if domain_pick[i] < 0.2:
            domain = _FREE[i % len(_FREE)]
        elif domain_pick[i] < 0.21:
            domain = _SPECIAL[i % len(_SPECIAL)]
        else:
            domain = company_domains[companies[i]]
        profiles.append(
            Profile(
                email=f"person{i}@{domain}",
                job_title=_TITLES[titles[i]],
                seniority=_SENIORITY[seniority[i]],
                industry=_INDUSTRIES[industries[i]],
                company_size=None if i % 11 == 0 else int(sizes[i]),
                country=_COUNTRIES[countries[i]],
            )
        )

    # activity is skewed: a few people do most things
    weight = rng.lognormal(0.0, 1.2, persons)
    person = rng.choice(persons, size=events, p=weight / weight.sum()).astype(np.int64)
    kinds = list(_MIX)
    share = np.array([_MIX[k] for k in kinds])
    picked = rng.choice(len(kinds), size=events, p=share / share.sum())
    code = np.array([EVENT_TYPES.index(k) for k in kinds], dtype=np.int8)
    kind = code[picked]
    # recent activity is denser than old activity
    at = NOW.timestamp() - np.floor(rng.exponential(90.0, events).clip(0, 730) * DAY)
    is_email = np.isin(kind, [EVENT_TYPES.index(k) for k in _EMAIL_KINDS])
    campaign = np.where(is_email, rng.integers(0, campaigns, events), -1).astype(np.int64)

    urls: list[str] = []
    for path in _PATHS:
        urls.extend(f"https://example.com{path.format(j)}" for j in range(40 if "{}" in path else 1))
    page_or_click = np.isin(
        kind, [EVENT_TYPES.index(EventType.PAGE_VIEW), EVENT_TYPES.index(EventType.EMAIL_CLICK)]
    )
    url = np.where(page_or_click, rng.integers(0, len(urls), events), -1).astype(np.int64)

    flags = np.zeros(events, dtype=np.uint8)
    opens = np.flatnonzero(kind == EVENT_TYPES.index(EventType.EMAIL_OPEN))
    flags[opens[rng.random(opens.size) < 0.03]] |= MACHINE
    bounces = np.flatnonzero(kind == EVENT_TYPES.index(EventType.EMAIL_BOUNCE))
    flags[bounces[rng.random(bounces.size) < 0.3]] |= HARD_BOUNCE

    # a quarter of the opens are machine opens 0-2 s after a send of the same person and campaign
    sends = np.flatnonzero(kind == EVENT_TYPES.index(EventType.EMAIL_SENT))
    fake = opens[: opens.size // 4]
    source = rng.choice(sends, size=fake.size)
    person[fake] = person[source]
    campaign[fake] = campaign[source]
    at[fake] = at[source] + rng.uniform(0, 2, fake.size)
    # scanner bursts: some clicks become three clicks on distinct links within seconds of a send
    clicks = np.flatnonzero(kind == EVENT_TYPES.index(EventType.EMAIL_CLICK))
    burst = clicks[: clicks.size // 10 // 3 * 3].reshape(-1, 3)
    source = rng.choice(sends, size=len(burst))
    for k in range(3):
        person[burst[:, k]] = person[source]
        campaign[burst[:, k]] = campaign[source]
        at[burst[:, k]] = at[source] + 1.0 + k
        url[burst[:, k]] = (np.arange(len(burst)) * 3 + k) % len(urls)

    return profiles, EventColumns(
        person=person, kind=kind, at=at, campaign=campaign, url=url, flags=flags, urls=tuple(urls)
    )


class _Clock:
    """Wall-clock and CPU seconds of one block."""

    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def _full(profiles: list[Profile], columns: EventColumns, model: Any) -> dict[str, float]:
    score_wall = filtered = 0.0
    with _Clock() as total:
        by_person = columns.sorted_by_person()
        for start in range(0, len(profiles), BATCH):
            stop = min(start + BATCH, len(profiles))
            with _Clock() as scoring:
                result = score_many(profiles[start:stop], by_person.person_range(start, stop), model, now=NOW)
            result.sentences()
            score_wall += scoring.wall
            filtered += float(result.machine_filtered.sum())
    return {"wall": total.wall, "cpu": total.cpu, "score_wall": score_wall, "filtered": filtered}


def run(
    persons: int = 100_000,
    events: int = 2_000_000,
    seed: int = 7,
    *,
    repeat: int = 3,
    changed: float = 0.01,
    model: str = "default",
) -> dict[str, Any]:
    """Time a full re-score and a re-score of ``changed`` (share) of the persons."""
    scoring_model = load_model(model)
    with _Clock() as build:
        profiles, columns = synthetic_population(persons, events, seed)

    cold = _full(profiles, columns, scoring_model)
    best = min((_full(profiles, columns, scoring_model) for _ in range(repeat)), key=lambda f: f["wall"])

    rng = np.random.default_rng(seed + 1)
    subset = np.sort(rng.choice(persons, size=max(1, int(persons * changed)), replace=False))
    incremental = []
    for _ in range(repeat):
        with _Clock() as clock:
            sub_columns = columns.for_persons(subset, persons)
            sub_profiles = [profiles[i] for i in subset]
            score_many(sub_profiles, sub_columns, scoring_model, now=NOW).sentences()
        incremental.append(clock)
    fastest = min(incremental, key=lambda c: c.wall)

    return {
        "model": scoring_model.name,
        "persons": persons,
        "events": events,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "build_seconds": round(build.wall, 3),
        "full_cold_seconds": round(cold["wall"], 3),
        "full_seconds": round(best["wall"], 3),
        "full_cpu_seconds": round(best["cpu"], 3),
        "full_score_seconds": round(best["score_wall"], 3),
        "full_reason_seconds": round(best["wall"] - best["score_wall"], 3),
        "changed_persons": int(subset.size),
        "changed_events": len(sub_columns),
        "incremental_seconds": round(fastest.wall, 3),
        "incremental_cpu_seconds": round(fastest.cpu, 3),
        "machine_filtered": int(best["filtered"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    figures = run(args.persons, args.events, args.seed, repeat=args.repeat, model=args.model)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
