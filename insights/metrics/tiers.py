"""DORA performance tiers: one table of thresholds, from the 2023 Accelerate State of DevOps report.

Source: Google Cloud / DORA, "Accelerate State of DevOps Report 2023", table "Software delivery
performance levels" (elite / high / medium / low). The report gives each level as a range
("between once per day and once per week", "less than one day", ...) and, for change failure
rate, the level's typical value (5 %, 10 %, 15 %, 64 %). We turn these into upper/lower bounds:

| tier   | deployments per week | lead time     | change failure rate | recovery time  |
|--------|----------------------|---------------|---------------------|----------------|
| elite  | >= 7 (daily+)        | < 24 h        | <= 5 %              | < 1 h          |
| high   | >= 1 (weekly+)       | < 168 h       | <= 10 %             | < 24 h         |
| medium | >= 12/52 (monthly+)  | < 720 h       | <= 15 %             | < 168 h        |
| low    | fewer                | longer        | higher              | longer         |

Overall tier: the weakest tier among the metrics that have one (a team is held back by its
weakest key); None when no metric has data.
"""

from __future__ import annotations

from dataclasses import dataclass

from insights.metrics.result import TierName, Tiers

REPORT_YEAR = 2023
REPORT = "Accelerate State of DevOps Report 2023 (DORA)"
ORDER: tuple[TierName, ...] = ("elite", "high", "medium", "low")


@dataclass(frozen=True)
class Bounds:
    """Bounds for elite, high and medium; anything beyond the medium bound is low."""

    elite: float
    high: float
    medium: float
    higher_is_better: bool


THRESHOLDS: dict[str, Bounds] = {
    # deployments per week: daily or more / weekly or more / monthly or more
    "deployment_frequency": Bounds(7.0, 1.0, 12.0 / 52.0, higher_is_better=True),
    # hours from commit to production: < 1 day / < 1 week / < 1 month (30 days)
    "lead_time": Bounds(24.0, 168.0, 720.0, higher_is_better=False),
    # failed deployments / deployments (inclusive upper bounds: the report's typical values)
    "change_failure_rate": Bounds(0.05, 0.10, 0.15, higher_is_better=False),
    # hours to recover from a failed deployment: < 1 hour / < 1 day / < 1 week
    "recovery_time": Bounds(1.0, 24.0, 168.0, higher_is_better=False),
}


def tier_of(metric: str, value: float | None) -> TierName | None:
    """The DORA tier of `value` for `metric` (a key of THRESHOLDS); None without a value.

    >>> tier_of("lead_time", 30.0)
    'high'
    """
    if value is None:
        return None
    b = THRESHOLDS[metric]
    for name, bound in zip(ORDER, (b.elite, b.high, b.medium), strict=False):
        if b.higher_is_better and value >= bound:
            return name
        if not b.higher_is_better:
            inclusive = metric == "change_failure_rate"
            if value < bound or (inclusive and value <= bound):
                return name
    return "low"


def overall(tiers: list[TierName | None]) -> TierName | None:
    """The weakest of the known tiers; None when none is known."""
    known = [t for t in tiers if t is not None]
    return max(known, key=ORDER.index) if known else None


def tiers_for(
    deployments_per_week: float | None,
    lead_time_median_hours: float | None,
    change_failure_rate: float | None,
    recovery_median_hours: float | None,
) -> Tiers:
    """Tier per metric and overall. Frequency has no tier for a window without deployments."""
    per_metric = {
        "deployment_frequency": tier_of("deployment_frequency", deployments_per_week),
        "lead_time": tier_of("lead_time", lead_time_median_hours),
        "change_failure_rate": tier_of("change_failure_rate", change_failure_rate),
        "recovery_time": tier_of("recovery_time", recovery_median_hours),
    }
    return Tiers(**per_metric, overall=overall(list(per_metric.values())))
