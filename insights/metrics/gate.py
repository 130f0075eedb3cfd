"""Quality gate rules for CI: compare one window's metrics with limits, say what breached.

Rules: `max_change_failure_rate` (fraction 0..1), `max_lead_time_hours` (median lead time),
`min_deployments_per_week`, `max_recovery_time_hours` (median recovery time).
A metric without data ("no data": no deployments, no lead-time or recovery samples) cannot breach
a maximum: the rule is reported as not evaluated. A window without deployments does breach
`min_deployments_per_week` (0 per week is a real frequency).
A breach says what it rests on (`Verdict.note`): "rests on only 3 deployments" when the figure
has fewer than `FEW_SAMPLES` samples, and "the 95% interval … includes the limit" when the
figure's confidence interval (`metrics/uncertainty.py`) reaches the limit, so one bad week of
3 deployments is not read like a month of evidence. The outcome is the same either way: a gate
compares the figure with its limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from insights.errors import UserError
from insights.metrics.result import Interval, WindowMetrics

# The verdicts' MIN_SAMPLES (metrics/verdicts.py imports scipy; the CLI loads this module for
# `--help`, so the number is repeated here and a test keeps the two equal).
FEW_SAMPLES = 5

Outcome = Literal["pass", "breach", "no data"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)?\s*$", re.IGNORECASE)
_HOURS_PER = {"m": 1 / 60, "min": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}


def parse_duration_hours(text: str, what: str) -> float:
    """`48h`, `2d`, `90m`, `1w` or a bare number of hours → hours.

    >>> parse_duration_hours("2d", "--max-lead-time")
    48.0
    """
    m = _DURATION.match(text)
    if not m:
        raise UserError(f"{what} {text!r}: use a duration like 48h, 2d, 90m or 1w")
    return float(m[1]) * _HOURS_PER[(m[2] or "h").lower()]


@dataclass(frozen=True)
class Limits:
    max_change_failure_rate: float | None = None
    max_lead_time_hours: float | None = None
    min_deployments_per_week: float | None = None
    max_recovery_time_hours: float | None = None

    def __post_init__(self) -> None:
        cfr = self.max_change_failure_rate
        if cfr is not None and not 0 <= cfr <= 1:
            raise UserError(f"--max-change-failure-rate {cfr}: must be between 0 and 1")
        for name in ("max_lead_time_hours", "min_deployments_per_week", "max_recovery_time_hours"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise UserError(f"--{name.replace('_', '-')} {value}: must not be negative")
        if all(getattr(self, f) is None for f in self.__dataclass_fields__):
            raise UserError(
                "gate: give at least one rule (--max-change-failure-rate, --max-lead-time, "
                "--min-deployments-per-week, --max-recovery-time)"
            )


@dataclass(frozen=True)
class Verdict:
    rule: str
    limit: str
    actual: str
    outcome: Outcome
    note: str | None = None

    @property
    def line(self) -> str:
        if self.outcome == "no data":
            return f"{self.rule}: no data in this window, not evaluated (limit {self.limit})"
        verb = "breached" if self.outcome == "breach" else "ok"
        return f"{self.rule} {verb}: {self.actual} (limit {self.limit})"


def _fmt(value: float, unit: str = "") -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") + unit


def _note(
    limit: float, unit: str, samples: int, noun: str | None, interval: Interval
) -> str | None:
    """What a breach rests on, when that is thin: few samples, an interval reaching the limit."""
    parts = []
    if noun is not None and samples < FEW_SAMPLES:
        parts.append(f"rests on only {samples} {noun if samples != 1 else noun.rstrip('s')}")
    low = 0.0 if interval.low is None else interval.low
    high = interval.high
    if interval.samples or noun is None:
        reaches = low <= limit and (high is None or limit <= high)
        if reaches:
            top = "open" if high is None else _fmt(high, unit)
            parts.append(
                f"the 95% interval {_fmt(low, unit)}–{top} includes the limit {_fmt(limit, unit)}"
            )
    return "; ".join(parts) or None


def evaluate(metrics: WindowMetrics, limits: Limits) -> list[Verdict]:
    """One verdict per rule that was given, in a fixed order."""
    out: list[Verdict] = []
    ci = metrics.intervals

    def check(
        rule: str,
        actual: float | None,
        limit: float,
        upper: bool,
        unit: str,
        samples: tuple[int, str | None, Interval],
    ) -> None:
        if actual is None:
            out.append(Verdict(rule, _fmt(limit, unit), "no data", "no data"))
            return
        breached = actual > limit if upper else actual < limit
        sign = "max " if upper else "min "
        out.append(
            Verdict(
                rule,
                sign + _fmt(limit, unit),
                _fmt(actual, unit),
                "breach" if breached else "pass",
                _note(limit, unit, *samples) if breached else None,
            )
        )

    if limits.max_change_failure_rate is not None:
        check(
            "change failure rate",
            metrics.change_failure_rate,
            limits.max_change_failure_rate,
            True,
            "",
            (metrics.deployment_count, "deployments", ci.change_failure_rate),
        )
    if limits.max_lead_time_hours is not None:
        check(
            "lead time (median)",
            metrics.lead_time_hours.median,
            limits.max_lead_time_hours,
            True,
            " h",
            (metrics.lead_time_hours.samples, "lead-time samples", ci.lead_time_hours.median),
        )
    if limits.min_deployments_per_week is not None:
        check(
            "deployments per week",
            metrics.deployments_per_week,
            limits.min_deployments_per_week,
            False,
            "",
            (metrics.deployment_count, None, ci.deployments_per_week),
        )
    if limits.max_recovery_time_hours is not None:
        check(
            "recovery time (median)",
            metrics.recovery_time_hours.median,
            limits.max_recovery_time_hours,
            True,
            " h",
            (
                metrics.recovery_time_hours.samples,
                "recoveries",
                ci.recovery_time_hours.median,
            ),
        )
    return out
