"""Data freshness and coverage for a report: which sources fed each service, how recent the
data is, and which gaps limit what the metrics can say.

Gap rules, per service (the report shows them next to the numbers they weaken):
- no commits recorded → lead time cannot be measured
- no pull/merge requests → no lead-time breakdown
- no production deployment in the window → rates and times have no data
- no incidents ever → change failure rate counts rollbacks only
- nothing recorded in the 7 days before the window end → the data may be stale

What counts as a deployment, per service (`deployment_source`), shown on every report so a
reader knows what the frequency measures: release tags of a local clone (`release_tags`, read
as releases: a library's cadence is not a deployment pipeline), a deploy log (`deploy_log`), a
GitHub Actions workflow's successful runs (`workflow`), the GitHub/GitLab deployments API
(`deployments_api`), or events sent by import, `insights record` and the API (`events`).

Commit counts come from what the collectors store, which for local clones is the history of
branches and tags only (`collect/localgit.py`): pull-request heads of a mirror are not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from insights.config import ServiceConfig, SourceConfig, TenantConfig
from insights.metrics.result import Window
from insights.store.repository import DeliveryFrames

STALE_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class DeploymentSource:
    """What counts as a production deployment of one service, and how to speak of it."""

    kind: str
    description: str

    @property
    def noun(self) -> str:
        """`release` for release tags, `deployment` otherwise."""
        return "release" if self.kind == "release_tags" else "deployment"


def deployment_source(service: ServiceConfig | None) -> DeploymentSource:
    """What counts as a deployment of `service` (None: a service only known from events).

    >>> deployment_source(None).description
    'deployment events sent by the pipeline (import, insights record or the API)'
    """
    source = service.source if service is not None else None
    if source is None or source.kind == "events":
        return DeploymentSource(
            "events", "deployment events sent by the pipeline (import, insights record or the API)"
        )
    if source.kind == "localgit":
        if source.deploy_log is not None:
            return DeploymentSource(
                "deploy_log", f"each successful entry of the deploy log {source.deploy_log.name}"
            )
        return DeploymentSource("release_tags", _release_tags(source))
    host = "GitHub" if source.kind == "github" else "GitLab"
    if source.kind == "github" and source.workflow:
        return DeploymentSource(
            "workflow", f"each successful run of the {host} Actions workflow {source.workflow}"
        )
    where = ", ".join(source.environments) if source.environments else "production environments"
    return DeploymentSource("deployments_api", f"each successful {host} deployment to {where}")


def _release_tags(source: SourceConfig) -> str:
    """Which tags are releases, in words: "each tag matching v*", "each version tag (v1.2.3,
    1.2)", with the exclusions and the pre-release rule of localgit's tag selection."""
    include = [*source.tag_include, *([source.tag_pattern] if source.tag_pattern else [])]
    text = f"each tag matching {' or '.join(include)}" if include else "each version tag"
    if source.tag_exclude:
        text += f", except {' or '.join(source.tag_exclude)}"
    if not source.tag_prereleases:
        text += " (not pre-releases)"
    return text


def deployment_sources(tenant_config: TenantConfig, services: list[str]) -> dict[str, str]:
    """Service → deployment source kind, for `MetricReport.deployment_sources`."""
    return {name: deployment_source(tenant_config.service(name)).kind for name in services}


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
    deployments_counted: DeploymentSource = field(default_factory=lambda: deployment_source(None))
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
            deployments_counted=deployment_source(configured),
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
    noun = cov.deployments_counted.noun
    if cov.deployments == 0:
        gaps.append(
            f"no {noun} in this window"
            if noun == "release"
            else "no production deployment in this window"
        )
    if incidents.empty:
        gaps.append("no incidents ever recorded: failures are rollbacks only")
    last = cov.last_seen
    if last is None or window.end - last > STALE_AFTER:
        gaps.append("nothing recorded in the last 7 days of the window: data may be stale")
    cov.gaps.extend(gaps)
    return cov
