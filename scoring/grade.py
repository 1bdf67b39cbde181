"""Grade: an affinity letter (A–D) and an engagement digit (1–4), "A1" best, "D4" worst.

The two-dimensional grid is what Marketo practitioners (A1–D4) and HubSpot (A1–C3) use
(scoring-research.md §1 [S74,S9]). Bands come from the model's lower bounds. Hysteresis: a person
whose previous band was better keeps it until the score falls below that band's bound minus
``margin``, so a score wobbling around a bound does not flip the grade every run [S114].
"""

from __future__ import annotations

import numpy as np

__all__ = ["band", "grade_code", "grade_name", "parse_grade"]

LETTERS = "ABCD"


def band(score: np.ndarray, bounds: tuple[int, int, int], previous: np.ndarray, margin: int) -> np.ndarray:
    """Band index (0 best … 3 worst) per person; ``previous`` is -1 where unknown."""
    bounds_arr = np.asarray(bounds)
    computed = (score[:, None] < bounds_arr[None, :]).sum(axis=1)
    better = (previous >= 0) & (previous < computed)
    held = better & (score >= bounds_arr[np.clip(previous, 0, 2)] - margin)
    return np.where(held, previous, computed).astype(np.int8)


def grade_code(letter: np.ndarray, digit: np.ndarray) -> np.ndarray:
    return (letter.astype(np.int16) * 4 + digit).astype(np.int8)


def grade_name(code: int) -> str:
    return f"{LETTERS[code // 4]}{code % 4 + 1}"


def parse_grade(grade: str | None) -> tuple[int, int]:
    """(letter band, digit band) of "B3", or (-1, -1) when unknown."""
    if not grade or len(grade) != 2 or grade[0] not in LETTERS or grade[1] not in "1234":
        return -1, -1
    return LETTERS.index(grade[0]), int(grade[1]) - 1
