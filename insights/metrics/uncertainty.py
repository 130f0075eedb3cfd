"""Confidence intervals for every figure of a window: how far the true value may be from it.

A team-week is a small sample (18 deployments, one failure), so every figure comes with an
interval at `LEVEL` (95 %) and the sample size it rests on. Rules:
- Median and p90 of durations (lead time, recovery time): distribution-free, from order
  statistics. The number of samples below the true q-quantile is Binomial(n, q), so the ranks
  l = F⁻¹(α/2) and u = F⁻¹(1 − α/2) + 1 of that binomial give P(X(l) ≤ ξq ≤ X(u)) ≥ 1 − α
  whatever the distribution. A bound whose rank falls outside 1..n is None: these samples
  cannot bound it (the p90 of 10 samples has no upper bound at 95 %). It assumes independent
  samples: commits shipped by one deployment are not, so a lead-time interval over many
  commits per deployment is narrower than the truth (the verdicts test per deployment).
- Change failure rate, rework rate (per deployment) and the share of days with a deployment
  (per day): Wilson score intervals, which stay inside [0, 1] and are sensible at 0/n.
- Deployment count: the exact (Garwood) Poisson interval; per week is that interval divided by
  the window's length in weeks.
- No samples (no deployments, no recoveries): both bounds None, samples 0.

Example: 1 failed deployment out of 18 → change failure rate 0.056, 95 % Wilson interval
0.0099–0.258 (18 samples); the median of 10 lead times lies between the 2nd and 9th smallest.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from insights.metrics.result import Interval, QuantileIntervals

LEVEL = 0.95
DIGITS = 4


def _round(value: float) -> float:
    return round(float(value), DIGITS)


@lru_cache(maxsize=4096)  # pure, and the same (n, q) recurs across windows and scopes
def quantile_ranks(n: int, q: float, level: float = LEVEL) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) of the order statistics bounding the q-quantile of n samples with
    coverage ≥ `level` (None: no rank in 1..n is far enough out).

    >>> quantile_ranks(10, 0.5), quantile_ranks(20, 0.5)
    ((2, 9), (6, 15))
    """
    from scipy import stats  # lazily: `insights --help` loads this module

    if n <= 0:
        return None, None
    alpha = 1 - level
    # P(B ≤ l − 1) < α/2 for B ~ Binomial(n, q), the count of samples below the quantile.
    low = int(stats.binom.ppf(alpha / 2, n, q))
    # P(B ≥ u) ≤ α/2 ⇔ F(u − 1) ≥ 1 − α/2.
    high = int(stats.binom.ppf(1 - alpha / 2, n, q)) + 1
    return (low if low >= 1 else None), (high if high <= n else None)


def quantile_interval(samples: np.ndarray, q: float, level: float = LEVEL) -> Interval:
    """Distribution-free interval for the q-quantile of `samples` (NaN ignored)."""
    values = np.sort(samples[~np.isnan(samples)])
    n = int(values.size)
    low, high = quantile_ranks(n, q, level)
    return Interval(
        low=None if low is None else _round(values[low - 1]),
        high=None if high is None else _round(values[high - 1]),
        samples=n,
    )


def duration_intervals(samples: np.ndarray, level: float = LEVEL) -> QuantileIntervals:
    """Median and p90 intervals of duration samples (hours)."""
    return QuantileIntervals(
        median=quantile_interval(samples, 0.5, level), p90=quantile_interval(samples, 0.9, level)
    )


@lru_cache(maxsize=8)
def _z(level: float) -> float:
    from scipy import stats  # lazily: `insights --help` loads this module

    return float(stats.norm.ppf(1 - (1 - level) / 2))


def wilson(successes: int, trials: int, level: float = LEVEL) -> Interval:
    """Wilson score interval for a proportion (None bounds without trials): the closed form
    of `scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`, without the p-value that
    call computes first (a test keeps the two equal).

    >>> wilson(0, 10)
    Interval(low=0.0, high=0.2775, samples=10)
    """
    if trials <= 0:
        return Interval()
    z = _z(level)
    p = successes / trials
    denominator = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(
        low=_round(max(center - half, 0.0)), high=_round(min(center + half, 1.0)), samples=trials
    )


@lru_cache(maxsize=4096)
def poisson_bounds(count: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson mean given one observed `count`.

    >>> [round(b, 3) for b in poisson_bounds(1)]
    [0.025, 5.572]
    """
    from scipy import stats  # lazily: `insights --help` loads this module

    alpha = 1 - level
    low = 0.0 if count == 0 else float(stats.gamma.ppf(alpha / 2, count))
    high = float(stats.gamma.ppf(1 - alpha / 2, count + 1))
    return low, high


def count_intervals(count: int, weeks: float, level: float = LEVEL) -> tuple[Interval, Interval]:
    """Intervals for the deployment count of a window and for its deployments per week.

    `samples` is the count itself: a Poisson rate is as precise as the events it rests on."""
    low, high = poisson_bounds(count, level)
    per_week = Interval(low=_round(low / weeks), high=_round(high / weeks), samples=count)
    return Interval(low=_round(low), high=_round(high), samples=count), per_week
