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
- An incident is an issue of type incident, or one with the incident label (any case);
  severity is its `severity` field unless UNKNOWN, else a `sev1`/`severity:high`/`P1`-style
  label; the deployment reference follows the same label/body rule as GitHub. It is resolved at
  `closed_at` only while its state is closed (a reopened issue is open again), and an issue
  moved to another project (`moved_to_id`) is no longer this service's incident.
- A pipeline is a deployment when it is a successful pipeline on the project's default branch
  named like the service's `workflow`, or with a succeeded job of that name (the deploy job);
  its id is `pipeline-<id>`.
- Webhook bodies write times as `2021-04-28 21:50:00 +0200` or `… UTC`; `gitlab_time` reads
  them as ISO-8601, so hook objects go through the same functions as REST objects.

The collector (`insights.collect.gitlab`) and the webhook (`insights.collect.webhooks`) both
map through these functions.
"""

from __future__ import annotations

import re
from typing import Any

from insights.collect.github_map import environment_name, has_label
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
# the statuses a Deployment Hook reports (anything else is not a deployment state we read)
HOOK_STATUSES = frozenset(
    {"success", "failed", "canceled", "skipped", "running", "created", "blocked"}
)
_REVIEW_SYSTEM_NOTES = ("approved this merge request", "requested changes")
_GITLAB_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*(Z|UTC|[+-]\d{2}:?\d{2})?$"
)


def gitlab_time(value: str | None) -> str | None:
    """GitLab hook times (`2021-04-28 21:50:00 +0200`, `… UTC`, ISO-8601) as ISO-8601.

    >>> gitlab_time("2021-04-28 21:50:00 +0200")
    '2021-04-28T21:50:00+02:00'
    """
    if value is None:
        return None
    match = _GITLAB_TIME.match(str(value).strip())
    if match is None:
        return value  # left for the event validation to reject, naming the field
    day, clock, zone = match.groups()
    if zone in (None, "UTC", "Z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    return f"{day}T{clock}{zone}"


def label_titles(items: Any) -> list[str]:
    """Label names of an issue: REST gives strings, hooks give objects with a `title`."""
    if not isinstance(items, list):
        return []
    names = [item.get("title") if isinstance(item, dict) else item for item in items]
    return [str(name) for name in names if isinstance(name, str | int) and str(name)]


def is_incident(issue: dict[str, Any], labels: list[str], incident_label: str) -> bool:
    """An issue of type incident (REST `issue_type`, hook `type`), or one with the label."""
    kind = str(issue.get("issue_type") or issue.get("type") or "")
    return kind.casefold() == "incident" or has_label(labels, incident_label)


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
        merge_sha=merge_sha(merge_request),
        commits=tuple(c["id"] for c in commits),
        reverts=reverted_change_ref(description=merge_request.get("description")),
    )


def map_merge_request_hook(service: str, attributes: dict[str, Any]) -> ChangeEvent:
    """A Merge Request Hook's `object_attributes` → a change; merged at the `merge` action's
    `updated_at` (the hook has no `merged_at` before GitLab 16), merge sha by `merge_sha`."""
    merged = attributes.get("state") == "merged"
    merged_at = None
    if merged and attributes.get("action") == "merge":
        merged_at = gitlab_time(attributes.get("merged_at") or attributes["updated_at"])
    return ChangeEvent(
        service=service,
        id=str(attributes["iid"]),
        title=attributes.get("title"),
        opened_at=gitlab_time(attributes["created_at"]),
        merged_at=merged_at,
        merge_sha=merge_sha(attributes) if merged else None,
        reverts=reverted_change_ref(description=attributes.get("description")),
    )


def map_incident(
    service: str, issue: dict[str, Any], incident_label: str | None = None
) -> IncidentEvent | None:
    """A GitLab incident (issue of type incident, or labelled) → an incident.

    With `incident_label` given, an issue that is not an incident, or that moved to another
    project, maps to None (the REST incident list only returns incidents, so the collector
    passes no label for it).
    """
    labels = label_titles(issue.get("labels", []))
    if incident_label is not None and (
        issue.get("moved_to_id") or not is_incident(issue, labels, incident_label)
    ):
        return None
    severity = issue.get("severity")
    if not severity or str(severity).upper() == "UNKNOWN":
        severity = severity_label(labels)
    closed = str(issue.get("state", "closed" if issue.get("closed_at") else "")) == "closed"
    return IncidentEvent(
        service=service,
        id=str(issue["iid"]),
        opened_at=gitlab_time(issue["created_at"]),
        resolved_at=gitlab_time(issue.get("closed_at")) if closed else None,
        severity=str(severity).lower() if severity else None,
        deployment_id=deployment_reference(labels, issue.get("description") or ""),
        title=issue.get("title"),
    )


def merge_sha(merge_request: dict[str, Any]) -> str | None:
    """The commit a merged MR put on its target: merge commit, else squash commit, else its
    head (fast-forward merges; a hook names the head `last_commit.id`)."""
    return (
        merge_request.get("merge_commit_sha")
        or merge_request.get("squash_commit_sha")
        or merge_request.get("sha")
        or (merge_request.get("last_commit") or {}).get("id")
    )


def is_deploy_pipeline(hook: dict[str, Any], workflow: str, default_branch: str | None) -> bool:
    """Whether a Pipeline Hook counts as a deployment: a successful pipeline on the project's
    default branch (not a tag) that is named `workflow` (GitLab 16.1+ pipeline names) or has a
    job named `workflow` that succeeded (the deploy job)."""
    pipeline = hook.get("object_attributes") or {}
    if pipeline.get("status") != "success" or pipeline.get("tag"):
        return False
    if default_branch is not None and pipeline.get("ref") != default_branch:
        return False
    if str(pipeline.get("name") or "") == workflow:
        return True
    jobs = hook.get("builds") or []
    return any(
        isinstance(job, dict) and job.get("name") == workflow and job.get("status") == "success"
        for job in jobs
    )


def map_pipeline(
    service: str, pipeline: dict[str, Any], environment: str | None
) -> DeploymentEvent:
    """A successful deploy pipeline (hook `object_attributes`) → a deployment `pipeline-<id>`."""
    return DeploymentEvent(
        service=service,
        id=f"pipeline-{pipeline['id']}",
        environment=environment_name(environment or "production"),
        sha=pipeline["sha"],
        status=DeploymentStatus.SUCCESS,
        started_at=gitlab_time(pipeline.get("created_at")),
        finished_at=gitlab_time(pipeline.get("finished_at")),
    )
