"""GitLab REST v4 JSON → canonical events: pure functions, no I/O (re-run them on raw payloads).

Rules:
- Deployment status: success → success, failed → failure, canceled/skipped → cancelled,
  created/running/blocked → in_progress. A deployment starts when its job started (else when
  it was created) and finishes at `finished_at` (older GitLab versions: `updated_at`).
- A change (merged MR): first commit = earliest authored date; first review = earliest note by
  someone other than the author that is a comment or an approval / change request (other
  system notes such as "added 1 commit" are not reviews); approved = earliest "approved this
  merge request" system note (the approvals endpoint carries no times); merge sha = the merge
  commit, else the squash commit, else the head sha (fast-forward merges).
- An incident is an issue of type incident; severity is its `severity` field unless UNKNOWN,
  else a `sev1`-style label; the deployment reference follows the same label/body rule as GitHub.
"""

from __future__ import annotations

from typing import Any

from insights.collect.github_map import environment_name
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

_STATUS = {
    "success": DeploymentStatus.SUCCESS,
    "failed": DeploymentStatus.FAILURE,
    "canceled": DeploymentStatus.CANCELLED,
    "skipped": DeploymentStatus.CANCELLED,
}
_REVIEW_SYSTEM_NOTES = ("approved this merge request", "requested changes")


def deployment_status(deployment: dict[str, Any]) -> DeploymentStatus:
    """Our status for a GitLab deployment status (unknown or unfinished → in_progress)."""
    return _STATUS.get(str(deployment.get("status")), DeploymentStatus.IN_PROGRESS)


def map_deployment(
    service: str, deployment: dict[str, Any], shipped: list[dict[str, Any]] | None
) -> DeploymentEvent:
    """A GitLab deployment; `shipped` is the compare's commits since the previous success."""
    status = deployment_status(deployment)
    job = deployment.get("deployable") or {}
    finished = None
    if status is not DeploymentStatus.IN_PROGRESS:
        finished = deployment.get("finished_at") or deployment["updated_at"]
    environment = (deployment.get("environment") or {}).get("name") or "production"
    return DeploymentEvent(
        service=service,
        id=str(deployment["id"]),
        environment=environment_name(str(environment)),
        sha=deployment["sha"],
        status=status,
        started_at=job.get("started_at") or deployment["created_at"],
        finished_at=finished,
        commits=(
            tuple(c["id"] for c in shipped)
            if shipped is not None and status is DeploymentStatus.SUCCESS
            else None
        ),
    )


def map_commits(service: str, commits: list[dict[str, Any]]) -> list[CommitEvent]:
    """Commits as the compare and merge request commits endpoints return them."""
    return [
        CommitEvent(
            service=service,
            sha=c["id"],
            committed_at=c.get("committed_date") or c["created_at"],
            authored_at=c.get("authored_date"),
            parents=tuple(c.get("parent_ids") or ()),
            author=c.get("author_name"),
            message=c.get("message") or c.get("title"),
        )
        for c in commits
    ]


def _is_review(note: dict[str, Any], author: str | None) -> bool:
    if (note.get("author") or {}).get("username") == author:
        return False
    if not note.get("system"):
        return True
    return str(note.get("body", "")).startswith(_REVIEW_SYSTEM_NOTES)


def map_merge_request(
    service: str,
    merge_request: dict[str, Any],
    commits: list[dict[str, Any]],
    notes: list[dict[str, Any]],
) -> ChangeEvent:
    """A merged MR with its commits and notes → a change."""
    author = (merge_request.get("author") or {}).get("username")
    reviews = [n["created_at"] for n in notes if _is_review(n, author)]
    approvals = [
        n["created_at"]
        for n in notes
        if n.get("system") and str(n.get("body", "")).startswith("approved this merge request")
    ]
    authored = [c.get("authored_date") or c["created_at"] for c in commits]
    return ChangeEvent(
        service=service,
        id=str(merge_request["iid"]),
        title=merge_request.get("title"),
        opened_at=merge_request["created_at"],
        first_commit_at=min(authored, key=parse_time, default=None),
        first_review_at=min(reviews, key=parse_time, default=None),
        approved_at=min(approvals, key=parse_time, default=None),
        merged_at=merge_request.get("merged_at"),
        merge_sha=(
            merge_request.get("merge_commit_sha")
            or merge_request.get("squash_commit_sha")
            or merge_request.get("sha")
        ),
        commits=tuple(c["id"] for c in commits),
        reverts=reverted_change_ref(description=merge_request.get("description")),
    )


def map_incident(service: str, issue: dict[str, Any]) -> IncidentEvent:
    """A GitLab incident (issue of type incident) → an incident."""
    labels = [str(label) for label in issue.get("labels", [])]
    severity = issue.get("severity")
    if not severity or str(severity).upper() == "UNKNOWN":
        severity = severity_label(labels)
    return IncidentEvent(
        service=service,
        id=str(issue["iid"]),
        opened_at=issue["created_at"],
        resolved_at=issue.get("closed_at"),
        severity=str(severity).lower() if severity else None,
        deployment_id=deployment_reference(labels, issue.get("description") or ""),
        title=issue.get("title"),
    )
