"""A small synthetic population as records, for tests that need many varied persons."""

from __future__ import annotations

import random
from datetime import timedelta

from leadsync.connectors.records import EventRecord, EventType, Profile

from .helpers import NOW, event

TITLES = ["CEO", "VP Sales", "Director of IT", "Product Manager", "Engineer", "Student", "Owner", None]
INDUSTRIES = ["Computer Software", "Retail", "Financial Services", "Education", None]
COUNTRIES = ["US", "GB", "DE", "BR", None]
DOMAINS = ["acme.io", "globex.com", "initech.com", "gmail.com", "mit.edu", "competitor.example"]
URLS = [
    "https://example.com/",
    "https://example.com/blog/a",
    "https://example.com/pricing",
    "https://example.com/product/x",
    "https://example.com/docs/start",
    "https://example.com/careers",
    "https://example.com/demo",
]
OTHER = [
    EventType.FORM_SUBMIT,
    EventType.CONTENT_DOWNLOAD,
    EventType.WEBINAR_ATTENDED,
    EventType.DEMO_REQUEST,
    EventType.TRIAL_STARTED,
    EventType.MEETING_BOOKED,
    EventType.CART_ABANDONED,
    EventType.PURCHASE,
    EventType.DEAL_WON,
    EventType.SOCIAL_INTERACTION,
    EventType.EMAIL_UNSUBSCRIBE,
    EventType.EMAIL_SPAM_REPORT,
]


def population(n: int, seed: int) -> list[tuple[Profile, list[EventRecord]]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        person = Profile(
            email=f"p{i}@{rng.choice(DOMAINS)}",
            job_title=rng.choice(TITLES),
            industry=rng.choice(INDUSTRIES),
            company_size=rng.choice([None, 5, 30, 120, 600, 4000]),
            country=rng.choice(COUNTRIES),
        )
        events: list[EventRecord] = []
        activity = rng.expovariate(1 / 8)
        for c in range(int(activity)):
            sent = NOW - timedelta(days=rng.uniform(0, 200))
            campaign = f"c{rng.randrange(30)}"
            events.append(event("email_sent", sent, campaign=campaign))
            if rng.random() < 0.5:
                events.append(
                    event("email_open", sent + timedelta(minutes=rng.uniform(5, 600)), campaign=campaign)
                )
            if rng.random() < 0.15:
                at = sent + timedelta(minutes=rng.uniform(10, 900))
                events.append(event("email_click", at, campaign=campaign, url=rng.choice(URLS)))
            if rng.random() < 0.03:
                kind = "hard" if rng.random() < 0.5 else "soft"
                events.append(
                    event("email_bounce", sent + timedelta(seconds=30), campaign=campaign, bounce_type=kind)
                )
            if c % 3 == 0:
                at = NOW - timedelta(days=rng.uniform(0, 120))
                events.append(event("page_view", at, url=rng.choice(URLS)))
        for _ in range(int(activity // 6)):
            events.append(event(rng.choice(OTHER), NOW - timedelta(days=rng.uniform(0, 300))))
        if rng.random() < 0.05:  # a platform-flagged bot open
            events.append(event("email_open", NOW - timedelta(days=3), campaign="c1", machine=True))
        rng.shuffle(events)
        out.append((person, events))
    return out


def spearman(a: list[float], b: list[float]) -> float:
    import numpy as np

    def ranks(x: list[float]) -> np.ndarray:
        values = np.asarray(x, dtype=float)
        order = np.argsort(values, kind="stable")
        r = np.empty(len(values))
        r[order] = np.arange(len(values))
        _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        return (np.bincount(inverse, weights=r) / counts)[inverse]

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])
