"""Verdicts: did a figure move beyond normal variation, against the previous window or baseline?

Each figure of a window is compared with the previous window and with the baseline (the
`BASELINE_WINDOWS` windows before it, pooled), by a test suited to what it measures, two-sided
at `LEVEL`:
- deployment frequency: deployments are a Poisson count over the window's length; given the
  total of both sides, the current count is Binomial(total, t_current / (t_current + t_other))
  when the rate did not change (the exact conditional test for two Poisson rates).
- change failure rate, rework rate (per deployment), share of days with a deployment (per day):
  Fisher's exact test on the 2×2 table (failed / not failed × current / other).
- lead time, recovery time: the Mann-Whitney U rank test on the two samples of durations (no
  assumption about their shape; it detects one side tending to be longer). The verdict names a
  direction only when the medians moved the same way as the ranks. The rank test needs
  independent samples, and the commits one deployment ships are not (they share its wait), so
  lead time is tested on one value per deployment: the median lead time of its commits
  (`per_deployment_medians`). Each failed deployment gives one recovery time.
Verdict: "improved" or "worsened" when p < LEVEL (in the metric's good or bad direction),
"no clear change" otherwise, and "too little data" when a side has fewer than `MIN_SAMPLES`
samples (durations) or deployments (rates), or — for counts — when even the most lopsided split
of the total could not reach LEVEL (2·min(s, 1 − s)^total ≥ LEVEL, s the current window's share
of the time: 0 vs 3 deployments in two weeks is 2·0.5³ = 0.25). Windows that ended before the
scope's first production deployment hold no data (not zeros): they are left out of the
baseline, and a previous window among them gives "too little data".

Example: 2 of 20 deployments failed this week, 1 of 18 last week → Fisher p = 1.0 →
"no clear change"; 0 of 15 vs 9 of 15 → p = 0.0007 → "improved".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from insights.metrics.result import Comparison, MetricVerdict, VerdictName, Verdicts

LEVEL = 0.05
MIN_SAMPLES = 5
BASELINE_WINDOWS = 12

POISSON_TEST = "conditional binomial (Poisson rates)"
FISHER_TEST = "Fisher exact"
RANK_TEST = "Mann-Whitney U"

_EMPTY = np.empty(0)


@dataclass(frozen=True)
class WindowSample:
    """What the tests need of one window, or of several pooled (`pool`).

    `days`: calendar days counted by the day share (a part day counts as one);
    `exposure_days`: the exact length, the denominator of a deployment rate."""

    deployments: int = 0
    failed: int = 0
    rework: int = 0
    active_days: int = 0
    days: int = 0
    exposure_days: float = 0.0
    lead_hours: np.ndarray = field(default_factory=lambda: _EMPTY)  # one per deployment
    recovery_hours: np.ndarray = field(default_factory=lambda: _EMPTY)
    windows: int = 1


def sample_json(sample: WindowSample) -> dict | None:
    """`sample` as JSON to store (floats round-trip exactly); None when it holds a NaN or an
    infinity, which JSON columns do not take."""
    hours = np.concatenate([sample.lead_hours, sample.recovery_hours, [sample.exposure_days]])
    if not np.isfinite(hours).all():
        return None
    return {
        "deployments": sample.deployments,
        "failed": sample.failed,
        "rework": sample.rework,
        "active_days": sample.active_days,
        "days": sample.days,
        "exposure_days": float(sample.exposure_days),
        "lead_hours": [float(h) for h in sample.lead_hours],
        "recovery_hours": [float(h) for h in sample.recovery_hours],
        "windows": sample.windows,
    }


def sample_from_json(data: dict) -> WindowSample:
    """The sample `sample_json` stored."""
    return WindowSample(
        deployments=int(data["deployments"]),
        failed=int(data["failed"]),
        rework=int(data["rework"]),
        active_days=int(data["active_days"]),
        days=int(data["days"]),
        exposure_days=float(data["exposure_days"]),
        lead_hours=np.array(data["lead_hours"], dtype=float),
        recovery_hours=np.array(data["recovery_hours"], dtype=float),
        windows=int(data["windows"]),
    )


def per_deployment_medians(deployments: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """The median of `hours` of each distinct value of `deployments` (any order).

    >>> per_deployment_medians(np.array([1, 1, 2, 1]), np.array([3.0, 1.0, 5.0, 2.0]))
    array([2., 5.])
    """
    if hours.size == 0:
        return _EMPTY
    order = np.lexsort((hours, deployments))
    keys, values = deployments[order], hours[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, keys.size])
    return (values[starts + (sizes - 1) // 2] + values[starts + sizes // 2]) / 2


def pool(samples: Sequence[WindowSample]) -> WindowSample:
    """One sample of several windows: counts and days added, durations concatenated."""
    if not samples:
        return WindowSample(windows=0)
    return WindowSample(
        deployments=sum(s.deployments for s in samples),
        failed=sum(s.failed for s in samples),
        rework=sum(s.rework for s in samples),
        active_days=sum(s.active_days for s in samples),
        days=sum(s.days for s in samples),
        exposure_days=sum(s.exposure_days for s in samples),
        lead_hours=np.concatenate([s.lead_hours for s in samples]),
        recovery_hours=np.concatenate([s.recovery_hours for s in samples]),
        windows=sum(s.windows for s in samples),
    )


def _p(value: float) -> float:
    """A p-value for the output: NaN (a degenerate sample) is no evidence of a change."""
    value = float(value)
    return 1.0 if value != value else min(value, 1.0)


def _verdict(p_value: float, better: bool, level: float) -> VerdictName:
    if p_value >= level:
        return "no clear change"
    return "improved" if better else "worsened"


def rate_test(
    current: int,
    current_days: float,
    other: int,
    other_days: float,
    *,
    windows: int = 1,
    level: float = LEVEL,
) -> Comparison:
    """Deployment frequency: more deployments per day is better.

    >>> rate_test(2, 7, 20, 7).verdict, rate_test(9, 7, 12, 7).verdict
    ('worsened', 'no clear change')
    """
    total = current + other
    base = dict(test=POISSON_TEST, current_samples=current, other_samples=other, windows=windows)
    if current_days <= 0 or other_days <= 0 or total == 0:
        return Comparison(verdict="too little data", **base)
    share = current_days / (current_days + other_days)
    # The most lopsided split of `total` has probability min(s, 1 − s)^total under no change;
    # its two-sided p-value is at most twice that (exactly twice for equal windows).
    if 2 * min(share, 1 - share) ** total >= level:
        return Comparison(verdict="too little data", **base)
    p_value = _binomial_p(current, total, share)
    better = current / current_days > other / other_days
    return Comparison(verdict=_verdict(p_value, better, level), p_value=round(p_value, 6), **base)


def proportion_test(
    current: int,
    current_trials: int,
    other: int,
    other_trials: int,
    *,
    higher_is_better: bool,
    windows: int = 1,
    level: float = LEVEL,
) -> Comparison:
    """A share (failed deployments, rework, days with a deployment) by Fisher's exact test.

    >>> proportion_test(0, 15, 9, 15, higher_is_better=False).verdict
    'improved'
    """
    base = dict(
        test=FISHER_TEST,
        current_samples=current_trials,
        other_samples=other_trials,
        windows=windows,
    )
    if current_trials < MIN_SAMPLES or other_trials < MIN_SAMPLES:
        return Comparison(verdict="too little data", **base)
    p_value = _fisher_p(current, current_trials - current, other, other_trials - other)
    higher = current / current_trials > other / other_trials
    better = higher if higher_is_better else not higher
    return Comparison(verdict=_verdict(p_value, better, level), p_value=round(p_value, 6), **base)


def duration_test(
    current: np.ndarray, other: np.ndarray, *, windows: int = 1, level: float = LEVEL
) -> Comparison:
    """Lead or recovery times (shorter is better) by the Mann-Whitney U rank test."""
    base = dict(test=RANK_TEST, current_samples=int(current.size), other_samples=int(other.size))
    if current.size < MIN_SAMPLES or other.size < MIN_SAMPLES:
        return Comparison(verdict="too little data", windows=windows, **base)
    statistic, p_value = _rank_test(current, other)
    # U of the current side above n·m/2: the current durations tend to be the longer ones.
    longer = statistic > current.size * other.size / 2
    median_longer = float(np.median(current)) > float(np.median(other))
    if p_value < level and longer != median_longer:
        # Ranks and medians disagree (a change of shape, not of level): name no direction.
        p_value = max(p_value, level)
    verdict = _verdict(p_value, not longer, level)
    return Comparison(verdict=verdict, p_value=round(p_value, 6), windows=windows, **base)


# The tests' p-values by their inputs: a window is compared with the same neighbours again and
# again (each read of a scope's trend, each scope of a report), and one scipy test costs
# about a millisecond. scipy is imported lazily: `insights --help` loads this module.
@lru_cache(maxsize=4096)
def _binomial_p(successes: int, trials: int, share: float) -> float:
    from scipy import stats

    return _p(stats.binomtest(successes, trials, share).pvalue)


@lru_cache(maxsize=4096)
def _fisher_p(a: int, b: int, c: int, d: int) -> float:
    from scipy import stats

    return _p(stats.fisher_exact([[a, b], [c, d]]).pvalue)


def _rank_test(current: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """Mann-Whitney U of `current` against `other` (two-sided): (U of current, p-value)."""
    as_bytes = [np.ascontiguousarray(x, dtype=np.float64).tobytes() for x in (current, other)]
    return _rank_test_of(*as_bytes)


@lru_cache(maxsize=256)
def _rank_test_of(current: bytes, other: bytes) -> tuple[float, float]:
    from scipy import stats

    result = stats.mannwhitneyu(
        np.frombuffer(current), np.frombuffer(other), alternative="two-sided"
    )
    return float(result.statistic), _p(result.pvalue)


def compare(current: WindowSample, other: WindowSample, level: float = LEVEL) -> dict:
    """Every figure of `current` against `other`: metric name → Comparison."""
    windows = other.windows
    if windows == 0:
        return {name: _no_data(test) for name, test in _TESTS.items()}
    return {
        "deployment_frequency": rate_test(
            current.deployments,
            current.exposure_days,
            other.deployments,
            other.exposure_days,
            windows=windows,
            level=level,
        ),
        "deployment_days_share": proportion_test(
            current.active_days,
            current.days,
            other.active_days,
            other.days,
            higher_is_better=True,
            windows=windows,
            level=level,
        ),
        "lead_time": duration_test(
            current.lead_hours, other.lead_hours, windows=windows, level=level
        ),
        "change_failure_rate": proportion_test(
            current.failed,
            current.deployments,
            other.failed,
            other.deployments,
            higher_is_better=False,
            windows=windows,
            level=level,
        ),
        "recovery_time": duration_test(
            current.recovery_hours, other.recovery_hours, windows=windows, level=level
        ),
        "rework_rate": proportion_test(
            current.rework,
            current.deployments,
            other.rework,
            other.deployments,
            higher_is_better=False,
            windows=windows,
            level=level,
        ),
    }


_TESTS = {
    "deployment_frequency": POISSON_TEST,
    "deployment_days_share": FISHER_TEST,
    "lead_time": RANK_TEST,
    "change_failure_rate": FISHER_TEST,
    "recovery_time": RANK_TEST,
    "rework_rate": FISHER_TEST,
}


def _no_data(test: str) -> Comparison:
    return Comparison(verdict="too little data", test=test, windows=0)


def verdicts(
    current: WindowSample,
    previous: WindowSample | None,
    baseline: WindowSample | None,
    level: float = LEVEL,
) -> Verdicts:
    """The Verdicts of a window against its previous window and its baseline (either None:
    not compared; a sample with `windows == 0`: no data there, "too little data")."""
    against_previous = compare(current, previous, level) if previous is not None else {}
    against_baseline = compare(current, baseline, level) if baseline is not None else {}
    return Verdicts(
        level=level,
        **{
            name: MetricVerdict(
                previous=against_previous.get(name), baseline=against_baseline.get(name)
            )
            for name in _TESTS
        },
    )
