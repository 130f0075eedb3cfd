"""MetricReport objects built by hand for narration and report tests (no database needed).

`make_report(**overrides)` returns a realistic weekly team report with a previous window and
12 windows of history; keyword overrides replace fields of the current window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from insights.metrics.result import (
    Comparison,
    LeadTimeBreakdownHours,
    LeadTimeHours,
    MetricReport,
    MetricVerdict,
    RecordedData,
    RecoveryTimeHours,
    Scope,
    SlowChange,
    Tiers,
    Verdicts,
    Window,
    WindowMetrics,
)

MONDAY = datetime(2026, 2, 2, tzinfo=UTC)  # start of ISO week 2026-W06


def week(offset: int = 0) -> Window:
    """ISO week `offset` weeks before 2026-W06."""
    start = MONDAY - timedelta(weeks=offset)
    year, number, _ = start.isocalendar()
    return Window(start=start, end=start + timedelta(days=7), label=f"{year}-W{number:02d}")


def window_metrics(offset: int, **overrides: Any) -> WindowMetrics:
    """One window of plausible metrics; lead time grows slowly with age (an improving team)."""
    deployments = 6 + (offset % 3)
    values: dict[str, Any] = {
        "window": week(offset),
        "deployment_count": deployments,
        "deployments_per_day": round(deployments / 7, 4),
        "deployments_per_week": float(deployments),
        "deployment_days_share": 4 / 7,
        "deployment_weeks_share": 1.0,
        "lead_time_hours": LeadTimeHours(
            median=20.46 + offset * 1.3, p75=30.2 + offset, p90=55.55 + offset, samples=40
        ),
        "change_failure_rate": 1 / deployments,
        "failed_deployments": 1,
        "recovery_time_hours": RecoveryTimeHours(median=2.25, p90=3.5, samples=1),
        "rework_rate": 1 / deployments,
        "rework_deployments": 1,
        "lead_time_breakdown_hours": LeadTimeBreakdownHours(
            coding=6.0, pickup=3.1, review=5.0 + offset, deploy=1.2, samples=12
        ),
        "incidents_opened": 1,
        "incidents_without_deployment": 0,
        "tier": Tiers(
            deployment_frequency="high",
            lead_time="high",
            change_failure_rate="medium",
            recovery_time="high",
            overall="high",
        ),
    }
    values.update(overrides)
    return WindowMetrics(**values)


def make_report(
    *,
    scope: Scope | None = None,
    previous: WindowMetrics | bool | None = True,
    slowest: list[SlowChange] | None = None,
    history_windows: int = 12,
    recorded: RecordedData | None = None,
    deployment_sources: dict[str, str] | None = None,
    **overrides: Any,
) -> MetricReport:
    """A weekly report for team `payments`; `previous=None` makes a first-ever window."""
    current = window_metrics(0, **overrides)
    history = [window_metrics(i) for i in range(history_windows - 1, 0, -1)] + [current]
    prev = window_metrics(1) if previous is True else previous or None
    if slowest is None:
        slowest = [
            SlowChange(
                service="checkout",
                id="42",
                title="Refactor payment retries",
                lead_time_hours=120.25,
                coding=30.0,
                pickup=50.5,
                review=30.0,
                deploy=9.75,
            ),
            SlowChange(service="billing", id="7", title=None, lead_time_hours=80.0, review=60.0),
        ]
    days = {
        (current.window.start + timedelta(days=d)).date().isoformat(): (d % 3) for d in range(7)
    }
    return MetricReport(
        **current.model_dump(),
        tenant="acme",
        scope=scope or Scope(kind="team", name="payments"),
        previous=prev,
        history=history,
        slowest_changes=slowest,
        deployments_by_day=days,
        services=["checkout", "billing"],
        recorded=recorded or RecordedData(),
        deployment_sources=deployment_sources or {},
    )


def verdicts_of(default: str = "no clear change", **by_metric: str) -> Verdicts:
    """Verdicts against the previous window (and the same against the baseline), `default`
    for every metric not named: `verdicts_of(lead_time="worsened")`."""
    names = (
        "deployment_frequency",
        "deployment_days_share",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
        "rework_rate",
    )

    def comparison(verdict: str, windows: int) -> Comparison:
        return Comparison(
            verdict=verdict,
            test="constructed",
            current_samples=10,
            other_samples=10 * windows,
            windows=windows,
        )

    return Verdicts(
        **{
            name: MetricVerdict(
                previous=comparison(by_metric.get(name, default), 1),
                baseline=comparison(by_metric.get(name, default), 12),
            )
            for name in names
        }
    )
