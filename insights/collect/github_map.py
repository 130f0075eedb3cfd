"""GitHub REST JSON → canonical events: pure functions, no I/O (re-run them on raw payloads).

Rules:
- A deployment's latest status decides: success → success, failure/error → failure,
  queued/pending/in_progress (or no status yet) → in_progress. `inactive` only means a newer
  deployment replaced this one: it stays a success if it ever succeeded, else cancelled.
- A successful deployment finishes at its success status; it starts when it was created.
- A change (merged PR) has its first commit (earliest author date), opened, first review
  (earliest submitted review by someone other than the author), first approval, merge time
  and merge sha.
- An incident is an issue (not a pull request) with the incident label (any case); it names
  its deployment by a `deployment:<id>` label or a `Deployment: <id>` line in its body, and its
  severity by a `sev1`/`severity:high`/`P1`-style label. It is resolved at `closed_at` only
  while its `state` is closed: a reopened issue keeps a stale `closed_at`, and is open again.
- A workflow run is a deployment when it is a successful run of the service's `workflow`
  (file name, path or id) on the repository's default branch; its id is `run-<id>`.

The collector (`insights.collect.github`) feeds these functions the REST objects; the webhook
(`insights.collect.webhooks`) feeds them the same objects taken out of a delivery, so both
paths read labels, severities, deployment links and reviews identically.
"""

from __future__ import annotations

import re
from typing import Any

from insights.collect.hostcommon import deployment_reference, severity_label
from insights.metrics.revert_markers import reverted_change_ref
from insights.model import (
    ChangeEvent,
    CommitEvent,
    DeploymentEvent,
    DeploymentStatus,
    IncidentEvent,
)
from insights.timeutil import parse_time

_STATE = {
    "success": DeploymentStatus.SUCCESS,
    "failure": DeploymentStatus.FAILURE,
    "error": DeploymentStatus.FAILURE,
    "queued": DeploymentStatus.IN_PROGRESS,
    "pending": DeploymentStatus.IN_PROGRESS,
    "in_progress": DeploymentStatus.IN_PROGRESS,
}
DEPLOYMENT_STATES = frozenset(_STATE)
_CONCLUSION = {
    "success": DeploymentStatus.SUCCESS,
    "failure": DeploymentStatus.FAILURE,
    "timed_out": DeploymentStatus.FAILURE,
    "startup_failure": DeploymentStatus.FAILURE,
    "cancelled": DeploymentStatus.CANCELLED,
    "skipped": DeploymentStatus.CANCELLED,
}
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9._/-]+")


def environment_name(name: str) -> str:
    """An environment name as our event format accepts it ("Production EU" → "Production-EU")."""
    cleaned = _BAD_NAME_CHARS.sub("-", name.strip()).strip("-._/")
    return cleaned[:128] or "unknown"


def deployment_outcome(
    statuses: list[dict[str, Any]],
) -> tuple[DeploymentStatus, str | None]:
    """(status, finished_at) of a deployment from its statuses (any order).

    >>> deployment_outcome([{"id": 2, "state": "inactive", "created_at": "2026-01-06T00:00:00Z"},
    ...                     {"id": 1, "state": "success", "created_at": "2026-01-05T10:00:00Z"}])
    (<DeploymentStatus.SUCCESS: 'success'>, '2026-01-05T10:00:00Z')
    """
    ordered = sorted(statuses, key=lambda s: (s["created_at"], s["id"]), reverse=True)
    if not ordered:
        return DeploymentStatus.IN_PROGRESS, None
    if ordered[0].get("state") == "inactive":  # replaced by a newer deployment
        succeeded = next((s for s in ordered if s.get("state") == "success"), None)
        if succeeded is not None:
            return DeploymentStatus.SUCCESS, succeeded["created_at"]
        return DeploymentStatus.CANCELLED, ordered[0]["created_at"]
    mapped = _STATE.get(str(ordered[0].get("state")), DeploymentStatus.IN_PROGRESS)
    finished = None if mapped is DeploymentStatus.IN_PROGRESS else ordered[0]["created_at"]
    return mapped, finished


def _shas(commits: list[dict[str, Any]] | None) -> tuple[str, ...] | None:
    return None if commits is None else tuple(c["sha"] for c in commits)


def map_deployment(
    service: str,
    deployment: dict[str, Any],
    statuses: list[dict[str, Any]],
    shipped: list[dict[str, Any]] | None,
) -> DeploymentEvent:
    """A GitHub deployment and its statuses; `shipped` is the compare's commits, if known."""
    status, finished = deployment_outcome(statuses)
    return DeploymentEvent(
        service=service,
        id=str(deployment["id"]),
        environment=environment_name(str(deployment.get("environment") or "production")),
        sha=deployment["sha"],
        status=status,
        started_at=deployment["created_at"],
        finished_at=finished,
        commits=_shas(shipped) if status is DeploymentStatus.SUCCESS else None,
    )


def map_workflow_run(
    service: str,
    run: dict[str, Any],
    environment: str | None,
    shipped: list[dict[str, Any]] | None,
) -> DeploymentEvent:
    """A GitHub Actions workflow run counted as a deployment (id `run-<id>`)."""
    status = _CONCLUSION.get(str(run.get("conclusion")), DeploymentStatus.IN_PROGRESS)
    done = status is not DeploymentStatus.IN_PROGRESS
    return DeploymentEvent(
        service=service,
        id=f"run-{run['id']}",
        environment=environment_name(environment or "production"),
        sha=run["head_sha"],
        status=status,
        started_at=run.get("run_started_at") or run["created_at"],
        finished_at=run["updated_at"] if done else None,
        commits=_shas(shipped) if status is DeploymentStatus.SUCCESS else None,
    )


def map_commits(service: str, commits: list[dict[str, Any]]) -> list[CommitEvent]:
    """Commits as the compare and pulls/{n}/commits endpoints return them."""
    return [
        CommitEvent(
            service=service,
            sha=c["sha"],
            committed_at=c["commit"]["committer"]["date"],
            authored_at=c["commit"]["author"]["date"],
            parents=tuple(p["sha"] for p in c.get("parents", [])),
            author=(c.get("author") or {}).get("login") or c["commit"]["author"].get("name"),
            message=c["commit"].get("message"),
        )
        for c in commits
    ]


def map_pull(
    service: str,
    pull: dict[str, Any],
    commits: list[dict[str, Any]],
    reviews: list[dict[str, Any]],
) -> ChangeEvent:
    """A merged pull request with its commits and reviews → a change."""
    first_review, approved = review_times(pull, reviews)
    first_commit = min(
        (c["commit"]["author"]["date"] for c in commits), key=parse_time, default=None
    )
    return ChangeEvent(
        service=service,
        id=str(pull["number"]),
        title=pull.get("title"),
        opened_at=pull["created_at"],
        first_commit_at=first_commit,
        first_review_at=first_review,
        approved_at=approved,
        merged_at=pull.get("merged_at"),
        merge_sha=pull.get("merge_commit_sha"),
        commits=tuple(c["sha"] for c in commits),
        reverts=reverted_change_ref(head_branch=(pull.get("head") or {}).get("ref")),
    )


def map_pull_event(service: str, pull: dict[str, Any]) -> ChangeEvent:
    """A pull request as a `pull_request` webhook carries it (no commits, no reviews): the
    change's title, opening and, once merged, merge time and sha."""
    merged = bool(pull.get("merged_at"))
    return ChangeEvent(
        service=service,
        id=str(pull["number"]),
        title=pull.get("title"),
        opened_at=pull["created_at"],
        merged_at=pull.get("merged_at"),
        merge_sha=pull.get("merge_commit_sha") if merged else None,
        reverts=reverted_change_ref(head_branch=(pull.get("head") or {}).get("ref")),
    )


def map_review(
    service: str, pull: dict[str, Any], first_review: str, approved: str | None
) -> ChangeEvent:
    """The change a `pull_request_review` webhook touches: its review times (from
    `review_times` on that one review) and what the pull request says of itself."""
    return ChangeEvent(
        service=service,
        id=str(pull["number"]),
        title=pull.get("title"),
        opened_at=pull["created_at"],
        first_review_at=first_review,
        approved_at=approved,
    )


def review_times(
    pull: dict[str, Any], reviews: list[dict[str, Any]]
) -> tuple[str | None, str | None]:
    """(first review, first approval) of a pull request: submitted reviews (not pending) by
    someone other than the pull request's author; review states compare in any case (the REST
    API says `APPROVED`, webhooks say `approved`)."""
    author = (pull.get("user") or {}).get("login")
    submitted = [
        r
        for r in reviews
        if r.get("submitted_at")
        and str(r.get("state", "")).upper() != "PENDING"
        and (r.get("user") or {}).get("login") != author
    ]
    first_review = min((r["submitted_at"] for r in submitted), key=parse_time, default=None)
    approvals = [r["submitted_at"] for r in submitted if str(r.get("state")).upper() == "APPROVED"]
    return first_review, min(approvals, key=parse_time, default=None)


def label_names(items: Any) -> list[str]:
    """Label names of an issue or pull request (objects with `name`, or plain strings)."""
    if not isinstance(items, list):
        return []
    names = [item.get("name") if isinstance(item, dict) else item for item in items]
    return [str(name) for name in names if isinstance(name, str | int) and str(name)]


def has_label(labels: list[str], wanted: str) -> bool:
    """Whether `wanted` is among the labels, in any case (`Incident` is `incident`)."""
    return wanted.casefold() in (label.casefold() for label in labels)


def map_issue(
    service: str, issue: dict[str, Any], incident_label: str | None = None
) -> IncidentEvent | None:
    """An incident issue → an incident; pull requests (also in the issues list) → None, and so
    is an issue without `incident_label` when one is given."""
    if "pull_request" in issue:
        return None
    labels = label_names(issue.get("labels", []))
    if incident_label is not None and not has_label(labels, incident_label):
        return None
    closed = issue.get("state") == "closed"
    return IncidentEvent(
        service=service,
        id=str(issue["number"]),
        opened_at=issue["created_at"],
        resolved_at=issue.get("closed_at") if closed else None,
        severity=severity_label(labels),
        deployment_id=deployment_reference(labels, issue.get("body") or ""),
        title=issue.get("title"),
    )


def is_deploy_run(run: dict[str, Any], workflow: str, default_branch: str | None) -> bool:
    """Whether a workflow run counts as a deployment: a successful run of `workflow` (its file
    name like `deploy.yml`, its path, or its numeric id) on the default branch."""
    if run.get("conclusion") != "success":
        return False
    if default_branch is not None and run.get("head_branch") != default_branch:
        return False
    path = str(run.get("path") or "")
    names = {path, path.rsplit("/", 1)[-1], str(run.get("workflow_id", ""))}
    return workflow in names
