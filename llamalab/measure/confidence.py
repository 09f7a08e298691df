"""95 % confidence intervals for a mean score: Wilson's for right/wrong (0/1) scores, a seeded
percentile bootstrap for fractional ones (no normality assumed; scores stay within [0, 1])."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A mean score with its 95 % interval [low, high] and how the interval was computed."""

    mean: float
    low: float
    high: float
    method: str  # "wilson" or "bootstrap"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def interval(scores: list[float]) -> Interval:
    """Wilson when every score is 0 or 1, else the bootstrap; `scores` must not be empty."""
    if all(s in (0.0, 1.0) for s in scores):
        return wilson(int(sum(scores)), len(scores))
    return bootstrap(scores)


def wilson(right: int, n: int, z: float = Z95) -> Interval:
    """Wilson score interval for `right` successes of `n` (well-behaved at 0 %, 100 % and small n,
    where the normal approximation p ± z·√(p(1−p)/n) collapses to a point)."""
    p = right / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if right == 0 else max(0.0, centre - half)  # exact at the ends, no rounding error
    high = 1.0 if right == n else min(1.0, centre + half)
    return Interval(p, low, high, "wilson")


def bootstrap(scores: list[float], resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """Percentile bootstrap of the mean (seeded: the same scores give the same interval). With one
    score nothing is known about the spread: the interval is [0, 1]."""
    import numpy as np

    x = np.asarray(scores, dtype=float)
    if len(x) < 2:
        return Interval(float(x.mean()), 0.0, 1.0, "bootstrap")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return Interval(float(x.mean()), float(low), float(high), "bootstrap")
