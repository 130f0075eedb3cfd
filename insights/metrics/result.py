"""Metric results: the stable output keys of DESIGN.md ("Metric output"), as pydantic models.

`insights metrics --format json`, `GET /api/v1/metrics`, snapshots, the facts document and the
reports all serialise these models, so a key is named in exactly one place. Times are hours,
rates are fractions in [0, 1]; a value that cannot be known from the data is `None` (JSON null),
never 0 or NaN.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ScopeKind = Literal["service", "team", "tenant"]
TierName = Literal["elite", "high", "medium", "low"]
VerdictName = Literal["improved", "worsened", "no clear change", "too little data"]


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class LeadTimeHours(_Result):
    median: float | None = None
    p75: float | None = None
    p90: float | None = None
    samples: int = 0


class RecoveryTimeHours(_Result):
    median: float | None = None
    p90: float | None = None
    samples: int = 0


class LeadTimeBreakdownHours(_Result):
    """Medians of the stages of a change: first commit → opened → first review → merged →
    deployed."""

    coding: float | None = None
    pickup: float | None = None
    review: float | None = None
    deploy: float | None = None
    samples: int = 0


class Tiers(_Result):
    """DORA performance tier per metric and overall (None: not enough data to say)."""

    deployment_frequency: TierName | None = None
    lead_time: TierName | None = None
    change_failure_rate: TierName | None = None
    recovery_time: TierName | None = None
    overall: TierName | None = None


class Window(_Result):
    """A half-open UTC interval [start, end) and its label (`2026-W05`, `2026-01`, or dates)."""

    start: datetime
    end: datetime
    label: str


class Scope(_Result):
    kind: ScopeKind
    name: str


class SlowChange(_Result):
    """One of the slowest changes of the window; `title` is untrusted text from the source."""

    service: str
    id: str
    title: str | None
    lead_time_hours: float
    coding: float | None = None
    pickup: float | None = None
    review: float | None = None
    deploy: float | None = None


class FailureSignals(_Result):
    """Failed deployments of the window with each signal. A deployment with several (an
    incident and a revert) is in several counts but is one failed deployment."""

    incident: int = 0
    rollback: int = 0
    revert: int = 0


class Interval(_Result):
    """A confidence interval (`metrics/uncertainty.py`); a bound is None when the samples
    cannot bound it. `samples`: what the figure rests on (durations, deployments, days, or the
    deployment count itself for counts)."""

    low: float | None = None
    high: float | None = None
    samples: int = 0


class QuantileIntervals(_Result):
    median: Interval = Field(default_factory=Interval)
    p90: Interval = Field(default_factory=Interval)


class Intervals(_Result):
    """An interval for each figure of a window, all at `level` (0.95)."""

    level: float = 0.95
    deployment_count: Interval = Field(default_factory=Interval)
    deployments_per_week: Interval = Field(default_factory=Interval)
    deployment_days_share: Interval = Field(default_factory=Interval)
    lead_time_hours: QuantileIntervals = Field(default_factory=QuantileIntervals)
    change_failure_rate: Interval = Field(default_factory=Interval)
    recovery_time_hours: QuantileIntervals = Field(default_factory=QuantileIntervals)
    rework_rate: Interval = Field(default_factory=Interval)


class Comparison(_Result):
    """One figure of this window against another sample (`metrics/verdicts.py`): the verdict,
    the test behind it, its p-value (None when there was too little data to test) and the
    sample sizes of both sides (`windows`: how many windows the other side pools)."""

    verdict: VerdictName
    test: str
    p_value: float | None = None
    current_samples: int = 0
    other_samples: int = 0
    windows: int = 1


class MetricVerdict(_Result):
    """A metric's verdicts against the previous window and against the pooled baseline
    (None: not compared, e.g. the baseline of a history window)."""

    previous: Comparison | None = None
    baseline: Comparison | None = None


class Verdicts(_Result):
    """Per metric (the facts document's names), whether it moved beyond normal variation."""

    level: float = 0.05
    deployment_frequency: MetricVerdict = Field(default_factory=MetricVerdict)
    deployment_days_share: MetricVerdict = Field(default_factory=MetricVerdict)
    lead_time: MetricVerdict = Field(default_factory=MetricVerdict)
    change_failure_rate: MetricVerdict = Field(default_factory=MetricVerdict)
    recovery_time: MetricVerdict = Field(default_factory=MetricVerdict)
    rework_rate: MetricVerdict = Field(default_factory=MetricVerdict)


class WindowMetrics(_Result):
    """The DORA metrics of one scope over one window."""

    window: Window
    deployment_count: int = 0
    deployments_per_day: float = 0.0
    deployments_per_week: float = 0.0
    # 0 (not None) without deployments: days are the denominator (DESIGN.md).
    deployment_days_share: float = 0.0
    deployment_weeks_share: float = 0.0
    lead_time_hours: LeadTimeHours = Field(default_factory=LeadTimeHours)
    change_failure_rate: float | None = None
    failed_deployments: int = 0
    failed_by: FailureSignals = Field(default_factory=FailureSignals)
    # failed deployments that were rolled back (the rest failed by incident only)
    rolled_back_deployments: int = 0
    recovery_time_hours: RecoveryTimeHours = Field(default_factory=RecoveryTimeHours)
    rework_rate: float | None = None
    rework_deployments: int = 0
    lead_time_breakdown_hours: LeadTimeBreakdownHours = Field(
        default_factory=LeadTimeBreakdownHours
    )
    incidents_opened: int = 0
    incidents_without_deployment: int = 0
    tier: Tiers = Field(default_factory=Tiers)
    intervals: Intervals = Field(default_factory=Intervals)
    verdicts: Verdicts | None = None


class RecordedData(_Result):
    """What the store holds for a report's services up to the window end (commits, pull/merge
    requests, incidents) and the commits made in the window: what advice may assume exists."""

    commits: int = 0
    changes: int = 0
    incidents: int = 0
    commits_in_window: int = 0


class MetricReport(WindowMetrics):
    """Metrics of a window plus what a report needs around them: the previous window for
    deltas, a history of windows for trend charts (oldest first, ending with this one), the
    slowest changes, per-day deployment counts, what is recorded, and what counts as a
    deployment per service (`deployment_sources`: service → `release_tags`, `deploy_log`,
    `workflow`, `deployments_api` or `events`; empty when the caller did not say)."""

    tenant: str
    scope: Scope
    previous: WindowMetrics | None = None
    history: list[WindowMetrics] = Field(default_factory=list)
    slowest_changes: list[SlowChange] = Field(default_factory=list)
    deployments_by_day: dict[str, int] = Field(default_factory=dict)
    services: list[str] = Field(default_factory=list)
    recorded: RecordedData = Field(default_factory=RecordedData)
    deployment_sources: dict[str, str] = Field(default_factory=dict)
