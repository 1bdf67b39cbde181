"""Sorting events by group, then time, fast.

``np.lexsort`` over several keys is the slowest step of a 2-million-event re-score, so when the
group codes and the time (in milliseconds from the earliest event) fit together into 63 bits they are
packed into one int64 key and sorted once. Events of the same group within the same millisecond keep
their input order (a stable sort); otherwise the order is that of ``np.lexsort``. Either way a
person's events sort the same whether they are scored alone or among 100,000 others.
"""

from __future__ import annotations

import numpy as np

__all__ = ["group_time_order"]


def _bits(values: np.ndarray) -> int:
    top = int(values.max(initial=0))
    return max(top, 1).bit_length()


def group_time_order(group: np.ndarray, at: np.ndarray, tie: np.ndarray | None = None) -> np.ndarray:
    """Indices that sort by ``group`` (non-negative int64), then ``at``, then ``tie`` (0/1)."""
    if not len(group):
        return np.zeros(0, dtype=np.int64)
    # each time rounds to its own absolute millisecond, so the order never depends on which other
    # events (or persons) are in the batch; only the offset is shared, and integer subtraction is exact
    millis = np.rint(at * 1000.0).astype(np.int64)
    millis -= millis.min()
    tie_bits = 0 if tie is None else 1
    time_bits = _bits(millis)
    if _bits(group) + time_bits + tie_bits <= 62:
        key = (group << (time_bits + tie_bits)) | (millis << tie_bits)
        if tie is not None:
            key |= tie.astype(np.int64)
        return np.argsort(key, kind="stable")
    keys = (at, group) if tie is None else (tie, at, group)
    return np.lexsort(keys)
