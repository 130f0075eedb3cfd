"""Deployment frequency: production deployments per day and week, and how regular they are.

Rules: deployments are counted at `finished_at` in [start, end). Per day = count / days of the
window; per week = count / (days / 7). Share of days (weeks) = days (weeks, counted from the
window start in 7-day steps) with at least one deployment / days (weeks) in the window, a part
day or week counting as one. Without deployments: count 0, per day/week 0, and the shares 0
too: days are their denominator, so "no day had a deployment" is known (DESIGN.md), unlike
rates over deployments, which have no denominator and stay None.

Example: 3 deployments on 2 days of an ISO week → 3.0 per week, deployment_days_share 2/7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from insights.metrics.result import Window

DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class Frequency:
    count: int
    per_day: float
    per_week: float
    days_share: float
    weeks_share: float


def window_days(window: Window) -> float:
    return (window.end - window.start).total_seconds() / 86_400


def counted_days(window: Window) -> int:
    """Days of the window as the day share counts them (a part day counts as one)."""
    return math.ceil(window_days(window))


def _day_index(finished_ns: np.ndarray, window: Window) -> np.ndarray:
    start_ns = int(window.start.timestamp()) * 10**9 + window.start.microsecond * 1000
    return (finished_ns - start_ns) // DAY_NS


def active_days(finished_ns: np.ndarray, window: Window) -> int:
    """Days of `window` (counted from its start) with at least one deployment."""
    return int(np.unique(_day_index(finished_ns, window)).size)


def deployment_frequency(finished_ns: np.ndarray, window: Window) -> Frequency:
    """Frequency figures for deployments finished at `finished_ns` (UTC epoch ns) in `window`."""
    days = window_days(window)
    count = int(finished_ns.size)
    if count == 0:
        return Frequency(0, 0.0, 0.0, 0.0, 0.0)
    day_index = _day_index(finished_ns, window)
    active = np.unique(day_index).size
    active_weeks = np.unique(day_index // 7).size
    return Frequency(
        count=count,
        per_day=round(count / days, 4),
        per_week=round(count / (days / 7), 4),
        days_share=round(active / counted_days(window), 4),
        weeks_share=round(active_weeks / math.ceil(days / 7), 4),
    )
