"""Machine activity: opens and clicks that no person made.

Privacy proxies (Apple Mail Privacy Protection, Gmail's image proxy) fetch the tracking pixel when a
message is delivered, and security gateways (SafeLinks, Mimecast, Proofpoint, Barracuda) follow every
link before the recipient sees it (scoring-research.md §5.5 [S144,S97f,S97g,S129]). Counting them
inflates engagement, so the engine drops three kinds of events before anything is counted:

* **flagged**: the platform marked the event ``machine`` (HubSpot bot filtering, SendGrid
  ``sg_machine_open`` [S15,S128]);
* **fast opens**: an open at most ``open_after_send_seconds`` after the latest ``email_sent`` of
  the same campaign to the same person;
* **scanner clicks**: a burst of clicks on one email (same person and campaign), each within
  ``scanner_window_seconds`` of the previous one, touching at least ``scanner_min_links`` distinct
  links. Every click of such a burst is dropped.

Events without a campaign are only filtered by the flag: without the email there is no delivery
time and no "every link of one email".
"""

from __future__ import annotations

import numpy as np

from leadsync.config.scoring_model import MachineSettings
from leadsync.connectors.records import EventType
from leadsync.scoring.columns import EVENT_TYPES, MACHINE, EventColumns
from leadsync.scoring.ordering import group_time_order

__all__ = ["fast_opens", "machine_mask", "scanner_clicks"]

_SENT = EVENT_TYPES.index(EventType.EMAIL_SENT)
_OPEN = EVENT_TYPES.index(EventType.EMAIL_OPEN)
_CLICK = EVENT_TYPES.index(EventType.EMAIL_CLICK)


def machine_mask(events: EventColumns, settings: MachineSettings) -> np.ndarray:
    """True for each event judged machine activity."""
    mask = np.zeros(len(events), dtype=bool)
    if not len(events):
        return mask
    if settings.honour_platform_flag:
        mask |= (events.flags & MACHINE) != 0
    mask |= fast_opens(events, settings.open_after_send_seconds)
    mask |= scanner_clicks(events, settings.scanner_min_links, settings.scanner_window_seconds)
    return mask


def _email_key(events: EventColumns, sel: np.ndarray) -> np.ndarray:
    """One non-negative integer per (person, campaign) for the selected events."""
    person, campaign = events.person[sel], events.campaign[sel]
    width = int(campaign.max(initial=0)) + 1
    if width.bit_length() + int(person.max(initial=0)).bit_length() > 62:
        # campaign codes too large to pack (hashes, say): renumber them 0..k-1 first
        campaign = np.unique(campaign, return_inverse=True)[1].reshape(-1)
        width = int(campaign.max(initial=0)) + 1
    return person * width + campaign


def fast_opens(events: EventColumns, seconds: float) -> np.ndarray:
    out = np.zeros(len(events), dtype=bool)
    kind = events.kind
    sel = np.flatnonzero(((kind == _OPEN) | (kind == _SENT)) & (events.campaign >= 0))
    if not sel.size:
        return out
    key = _email_key(events, sel)
    at = events.at[sel]
    is_open = kind[sel] == _OPEN
    # by email, then time; at equal times the send sorts first (False < True)
    order = group_time_order(key, at, is_open)
    key, at, is_open = key[order], at[order], is_open[order]
    position = np.where(is_open, -1, np.arange(len(order)))
    last_sent = np.maximum.accumulate(position)
    has_sent = last_sent >= 0
    last_sent = np.where(has_sent, last_sent, 0)
    fast = is_open & has_sent & (key[last_sent] == key) & (at - at[last_sent] <= seconds)
    out[sel[order[fast]]] = True
    return out


def scanner_clicks(events: EventColumns, min_links: int, window: float) -> np.ndarray:
    out = np.zeros(len(events), dtype=bool)
    sel = np.flatnonzero((events.kind == _CLICK) & (events.campaign >= 0))
    if sel.size < min_links:
        return out
    key = _email_key(events, sel)
    at = events.at[sel]
    link = events.url[sel] + 1  # -1 (unknown link) becomes 0
    order = group_time_order(key, at)
    key, at, link = key[order], at[order], link[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (key[1:] != key[:-1]) | (at[1:] - at[:-1] > window)
    burst = np.cumsum(starts) - 1
    width = len(events.urls) + 1
    pairs = np.unique(burst * width + link)
    distinct = np.bincount(pairs // width, minlength=int(burst[-1]) + 1)
    scanner = distinct[burst] >= min_links
    out[sel[order[scanner]]] = True
    return out
