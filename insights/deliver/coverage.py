"""Data freshness and coverage for a report: which sources fed each service, how recent the
data is, and which gaps limit what the metrics can say.

Gap rules, per service (the report shows them next to the numbers they weaken):
- no commits recorded → lead time cannot be measured
- no pull/merge requests → no lead-time breakdown
- no production deployment in the window → rates and times have no data
- no incidents ever → change failure rate counts rollbacks only
- nothing recorded in the 7 days before the window end → the data may be stale
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from insights.config import TenantConfig
from insights.metrics.result import Window
from insights.store.repository import DeliveryFrames

STALE_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class ServiceCoverage:
    """What one service contributed to a window, and how fresh its data is."""

    service: str
    team: str | None
    source: str
    last_commit: datetime | None
    last_change: datetime | None
    last_deployment: datetime | None
    last_incident: datetime | None
    commits: int
    changes: int
    deployments: int
    incidents: int
    gaps: list[str] = field(default_factory=list)

    @property
    def last_seen(self) -> datetime | None:
        times = [
            t
            for t in (self.last_commit, self.last_change, self.last_deployment, self.last_incident)
            if t is not None
        ]
        return max(times) if times else None


def _last(frame: pd.DataFrame, column: str, before: datetime) -> datetime | None:
    values = frame[column].dropna()
    values = values[values < pd.Timestamp(before)]
    return None if values.empty else values.max().to_pydatetime()


def _in(frame: pd.DataFrame, column: str, window: Window) -> pd.DataFrame:
    values = frame[column]
    return frame[(values >= pd.Timestamp(window.start)) & (values < pd.Timestamp(window.end))]


def coverage(
    frames: DeliveryFrames, tenant_config: TenantConfig, window: Window
) -> dict[str, ServiceCoverage]:
    """Coverage of every service in `frames` for `window` (records after it are ignored)."""
    out = {}
    for row in frames.services.itertuples(index=False):
        name = row.service
        commits = frames.commits[frames.commits.service == name]
        changes = frames.changes[frames.changes.service == name]
        incidents = frames.incidents[frames.incidents.service == name]
        deployments = frames.deployments[
            (frames.deployments.service == name)
            & (frames.deployments.status == "success")
            & frames.deployments.environment.map(
                lambda env, p=row.production_pattern: re.search(p, env) is not None
            ).astype(bool)
        ]
        configured = tenant_config.service(name)
        cov = ServiceCoverage(
            service=name,
            team=row.team,
            # incident tools follow the service's own source: "events + pagerduty"
            source=" + ".join(
                [configured.source.kind, *(s.kind for s in configured.incidents)]
                if configured
                else ["events"]
            ),
            last_commit=_last(commits, "committed_at", window.end),
            last_change=_last(changes, "opened_at", window.end),
            last_deployment=_last(deployments, "finished_at", window.end),
            last_incident=_last(incidents, "opened_at", window.end),
            commits=len(_in(commits, "committed_at", window)),
            changes=len(_in(changes, "merged_at", window)),
            deployments=len(_in(deployments, "finished_at", window)),
            incidents=len(_in(incidents, "opened_at", window)),
        )
        out[name] = _with_gaps(cov, commits, changes, incidents, window)
    return out


def _with_gaps(
    cov: ServiceCoverage,
    commits: pd.DataFrame,
    changes: pd.DataFrame,
    incidents: pd.DataFrame,
    window: Window,
) -> ServiceCoverage:
    gaps = []
    if commits.empty:
        gaps.append("no commits recorded: lead time cannot be measured")
    if changes.empty:
        gaps.append("no pull requests recorded: no lead-time breakdown")
    if cov.deployments == 0:
        gaps.append("no production deployment in this window")
    if incidents.empty:
        gaps.append("no incidents ever recorded: failures are rollbacks only")
    last = cov.last_seen
    if last is None or window.end - last > STALE_AFTER:
        gaps.append("nothing recorded in the last 7 days of the window: data may be stale")
    cov.gaps.extend(gaps)
    return cov
