"""Builders for metric tests: canonical events → `DeliveryFrames`, without or with a database."""

from __future__ import annotations

from typing import Any

import pandas as pd

from insights.config import DEFAULT_PRODUCTION_PATTERN
from insights.metrics.revert_markers import reverted_sha
from insights.model import ChangeEvent, CommitEvent, DeploymentEvent, IncidentEvent, parse_event
from insights.store.repository import DeliveryFrames


def t(text: str) -> str:
    """`"01-05 10:00"` → `"2026-01-05T10:00:00Z"` (all test times are January 2026 unless full)."""
    if "T" in text:
        return text
    day, clock = text.split()
    return f"2026-{day}T{clock}:00Z"


def commit(sha: str, at: str, parents: tuple[str, ...] = (), service: str = "checkout") -> dict:
    return {
        "type": "commit",
        "service": service,
        "sha": sha,
        "committed_at": t(at),
        "parents": list(parents),
    }


def dep(
    id: str,
    sha: str,
    at: str,
    *,
    commits: list[str] | None = None,
    env: str = "production",
    status: str = "success",
    service: str = "checkout",
) -> dict:
    event: dict[str, Any] = {
        "type": "deployment",
        "service": service,
        "id": id,
        "sha": sha,
        "environment": env,
        "status": status,
        "finished_at": t(at),
    }
    if commits is not None:
        event["commits"] = commits
    return event


def incident(
    id: str,
    opened: str,
    resolved: str | None = None,
    deployment_id: str | None = None,
    service: str = "checkout",
) -> dict:
    event: dict[str, Any] = {
        "type": "incident",
        "service": service,
        "id": id,
        "opened_at": t(opened),
    }
    if resolved:
        event["resolved_at"] = t(resolved)
    if deployment_id:
        event["deployment_id"] = deployment_id
    return event


def change(
    id: str,
    *,
    first_commit: str,
    opened: str,
    review: str | None,
    merged: str,
    merge_sha: str | None = None,
    commits: tuple[str, ...] = (),
    title: str = "a change",
    service: str = "checkout",
) -> dict:
    event: dict[str, Any] = {
        "type": "change",
        "service": service,
        "id": id,
        "title": title,
        "first_commit_at": t(first_commit),
        "opened_at": t(opened),
        "merged_at": t(merged),
        "commits": list(commits),
    }
    if review:
        event["first_review_at"] = t(review)
    if merge_sha:
        event["merge_sha"] = merge_sha
    return event


def frames(
    events: list[dict],
    services: dict[str, str] | None = None,
    teams: dict[str, str] | None = None,
) -> DeliveryFrames:
    """The frames `TenantRepository.delivery_frames` would return after storing `events`:
    duplicates (same service and id/sha) keep the last, a deployment keeps its first row id."""
    parsed = [parse_event(e) for e in events]
    names = sorted({e.service for e in parsed} | set(services or {}))
    patterns = {n: (services or {}).get(n, DEFAULT_PRODUCTION_PATTERN) for n in names}
    commits: dict[tuple[str, str], CommitEvent] = {}
    changes: dict[tuple[str, str], ChangeEvent] = {}
    deployments: dict[tuple[str, str], DeploymentEvent] = {}
    ids: dict[tuple[str, str], int] = {}
    incidents: dict[tuple[str, str], IncidentEvent] = {}
    for e in parsed:
        if isinstance(e, CommitEvent):
            commits[(e.service, e.sha)] = e
        elif isinstance(e, ChangeEvent):
            changes[(e.service, e.id)] = e
        elif isinstance(e, DeploymentEvent):
            deployments[(e.service, e.id)] = e
            ids.setdefault((e.service, e.id), len(ids) + 1)
        else:
            incidents[(e.service, e.id)] = e
    deps = list(deployments.items())
    return DeliveryFrames(
        services=pd.DataFrame(
            {
                "service": names,
                "team": [(teams or {}).get(n) for n in names],
                "production_pattern": [patterns[n] for n in names],
            }
        ),
        deployments=pd.DataFrame(
            {
                "deployment_id": [ids[k] for k, _ in deps],
                "service": [e.service for _, e in deps],
                "external_id": [e.id for _, e in deps],
                "environment": [e.environment for _, e in deps],
                "sha": [e.sha for _, e in deps],
                "status": [e.status.value for _, e in deps],
                "started_at": pd.to_datetime([e.started_at for _, e in deps], utc=True),
                "finished_at": pd.to_datetime([e.finished_at for _, e in deps], utc=True),
                "commits_listed": [e.commits is not None for _, e in deps],
            }
        ),
        deployment_commits=pd.DataFrame(
            [(ids[k], sha) for k, e in deps for sha in sorted(set(e.commits or ()))],
            columns=["deployment_id", "sha"],
        ),
        commits=pd.DataFrame(
            {
                "service": [e.service for e in commits.values()],
                "sha": [e.sha for e in commits.values()],
                "committed_at": pd.to_datetime(
                    [e.committed_at for e in commits.values()], utc=True
                ),
                "authored_at": pd.to_datetime([e.authored_at for e in commits.values()], utc=True),
                "parents": [list(e.parents) for e in commits.values()],
                "reverts": [reverted_sha(e.message) for e in commits.values()],
            }
        ),
        changes=pd.DataFrame(
            {
                "service": [e.service for e in changes.values()],
                "external_id": [e.id for e in changes.values()],
                "title": [e.title for e in changes.values()],
                "opened_at": pd.to_datetime([e.opened_at for e in changes.values()], utc=True),
                "first_commit_at": pd.to_datetime(
                    [e.first_commit_at for e in changes.values()], utc=True
                ),
                "first_review_at": pd.to_datetime(
                    [e.first_review_at for e in changes.values()], utc=True
                ),
                "approved_at": pd.to_datetime([e.approved_at for e in changes.values()], utc=True),
                "merged_at": pd.to_datetime([e.merged_at for e in changes.values()], utc=True),
                "merge_sha": [e.merge_sha for e in changes.values()],
                "commits": [list(e.commits) for e in changes.values()],
                "reverts": [e.reverts for e in changes.values()],
            }
        ),
        incidents=pd.DataFrame(
            {
                "service": [e.service for e in incidents.values()],
                "external_id": [e.id for e in incidents.values()],
                "opened_at": pd.to_datetime([e.opened_at for e in incidents.values()], utc=True),
                "resolved_at": pd.to_datetime(
                    [e.resolved_at for e in incidents.values()], utc=True
                ),
                "severity": [e.severity for e in incidents.values()],
                "deployment_external_id": [e.deployment_id for e in incidents.values()],
                "title": [e.title for e in incidents.values()],
            }
        ),
    )
