"""Whole-point shares that add up exactly to a whole-point score.

A score is shown as an integer, and so is every contribution to it; rounding each share on its own
would leave the sum a point or two off. ``apportion`` rounds each share to the nearest integer, then
moves the difference onto the shares whose rounding lost (or gained) the most: the largest-remainder
method, so every share moves by at most one point and the shares always sum to the score.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apportion"]


def apportion(shares: np.ndarray, totals: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Integer ``persons x parts`` whose rows sum to ``totals``; absent parts stay 0.

    ``shares`` rows should already sum to about ``totals`` (within half a point per part).
    """
    rounded = np.where(present, np.rint(shares), 0.0)
    deficit = totals - rounded.sum(axis=1)
    rows = np.flatnonzero(deficit)
    if rows.size:
        residual = (shares - rounded)[rows]
        d = deficit[rows]
        # ascending order of this key puts first the parts that should take the correction
        key = np.where(d[:, None] > 0, -residual, residual)
        key[~present[rows]] = np.inf
        order = np.argsort(key, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :], axis=1)
        if np.any(np.abs(d) > present[rows].sum(axis=1)):
            raise ValueError("shares do not add up to the totals")  # a bug, not bad input
        rounded[rows] += (rank < np.abs(d)[:, None]) * np.sign(d)[:, None]
    return rounded.astype(np.int64)
