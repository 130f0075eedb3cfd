"""GitHub and GitLab webhook payloads → canonical event dicts (pure functions, no I/O).

The API verifies the delivery, finds the service from the repository, then calls these to
map the payload; the result goes through `insights.model.parse_event` like any other event.
Mapped events carry no `service` (the caller adds it) and leave out what the payload does not
say, so stored values (first review, commits) survive a webhook.

GitHub (`X-GitHub-Event`): `deployment_status` → deployment (id = deployment id; states
error/failure → failure, queued/pending/in_progress → in_progress, success → success,
inactive → ignored), `pull_request` → change (id = PR number; merge sha only when merged),
`issues` → incident when the issue carries the incident label (id = issue number).
GitLab (`object_kind`): `deployment` → deployment (sha from `commit_url`; failed → failure,
canceled/skipped → cancelled, created/running/blocked → in_progress), `merge_request` → change (id =
iid; merged at the `merge` action's `updated_at`), `issue` → incident when labelled or of type
incident (id = iid).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from insights.metrics.revert_markers import reverted_change_ref

_HEX = re.compile(r"^[0-9a-fA-F]{4,64}$")
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9._/-]+")
_SEVERITY = re.compile(r"^(sev|severity)[\s:_-]*\d+$", re.IGNORECASE)
_GITLAB_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*(Z|UTC|[+-]\d{2}:?\d{2})?$"
)

GITHUB_DEPLOYMENT_STATES = {
    "success": "success",
    "failure": "failure",
    "error": "failure",
    "in_progress": "in_progress",
    "queued": "in_progress",
    "pending": "in_progress",
}
GITLAB_DEPLOYMENT_STATES = {
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "skipped": "cancelled",
    "running": "in_progress",
    "created": "in_progress",
    "blocked": "in_progress",
}
FINISHED = ("success", "failure", "cancelled")


class PayloadError(ValueError):
    """A payload lacks a field the mapping needs; `str()` names the JSON path."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Mapped:
    """A delivery mapped to canonical event dicts, or why it carries nothing to store."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ignored: str | None = None


def _get(payload: Any, path: str, required: bool = True) -> Any:
    node = payload
    for part in path.split("."):
        if not isinstance(node, dict):
            raise PayloadError(path, "required (payload is not a JSON object there)")
        node = node.get(part)
        if node is None:
            if required:
                raise PayloadError(path, "required")
            return None
    return node


def _text(payload: Any, path: str, required: bool = True) -> str | None:
    value = _get(payload, path, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(path, "must be a string or an integer")
    return str(value)


def github_repository(payload: dict[str, Any]) -> str:
    """`owner/name` of the repository a GitHub delivery is about."""
    return str(_text(payload, "repository.full_name"))


def gitlab_project(payload: dict[str, Any]) -> str:
    """`group/project` of the project a GitLab delivery is about."""
    return str(_text(payload, "project.path_with_namespace"))


def environment_name(name: str) -> str:
    """An environment name as the event format accepts it ("Production EU" → "Production-EU"),
    the same rule the GitHub/GitLab collectors apply, so both write the same deployments."""
    cleaned = _BAD_NAME_CHARS.sub("-", name.strip()).strip("-._/")
    return cleaned[:128] or "unknown"


def _labels(items: Any, key: str) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i.get(key)) for i in items if isinstance(i, dict) and i.get(key) is not None]


def _severity(labels: list[str]) -> str | None:
    return next((label for label in labels if _SEVERITY.match(label)), None)


def _has_label(labels: list[str], wanted: str) -> bool:
    return wanted.lower() in (label.lower() for label in labels)


def github_event(event: str, payload: dict[str, Any], incident_label: str = "incident") -> Mapped:
    """Map one GitHub delivery (`X-GitHub-Event` name and JSON payload)."""
    if event == "deployment_status":
        state = _text(payload, "deployment_status.state")
        status = GITHUB_DEPLOYMENT_STATES.get(str(state))
        if status is None:
            return Mapped(ignored=f"deployment status {state!r} is not tracked")
        environment = _text(payload, "deployment_status.environment", required=False) or _text(
            payload, "deployment.environment"
        )
        return Mapped(
            [
                {
                    "type": "deployment",
                    "id": _text(payload, "deployment.id"),
                    "sha": _text(payload, "deployment.sha"),
                    "environment": environment_name(str(environment)),
                    "status": status,
                    "started_at": _text(payload, "deployment.created_at", required=False),
                    "finished_at": _text(payload, "deployment_status.created_at")
                    if status in FINISHED
                    else None,
                }
            ]
        )
    if event == "pull_request":
        merged_at = _text(payload, "pull_request.merged_at", required=False)
        return Mapped(
            [
                {
                    "type": "change",
                    "id": _text(payload, "pull_request.number"),
                    "title": _text(payload, "pull_request.title", required=False),
                    "opened_at": _text(payload, "pull_request.created_at"),
                    "merged_at": merged_at,
                    "merge_sha": _text(payload, "pull_request.merge_commit_sha", required=False)
                    if merged_at
                    else None,
                    "reverts": reverted_change_ref(
                        head_branch=_text(payload, "pull_request.head.ref", required=False)
                    ),
                }
            ]
        )
    if event == "issues":
        if _get(payload, "issue.pull_request", required=False) is not None:
            return Mapped(ignored="issue event of a pull request")
        labels = _labels(_get(payload, "issue.labels", required=False), "name")
        if not _has_label(labels, incident_label):
            return Mapped(ignored=f"issue without the {incident_label!r} label")
        return Mapped(
            [
                {
                    "type": "incident",
                    "id": _text(payload, "issue.number"),
                    "title": _text(payload, "issue.title", required=False),
                    "opened_at": _text(payload, "issue.created_at"),
                    "resolved_at": _text(payload, "issue.closed_at", required=False),
                    "severity": _severity(labels),
                }
            ]
        )
    return Mapped(ignored=f"GitHub event {event!r} is not tracked")


def gitlab_time(value: str | None) -> str | None:
    """GitLab hook times (`2021-04-28 21:50:00 +0200`, `… UTC`, ISO-8601) as ISO-8601.

    >>> gitlab_time("2021-04-28 21:50:00 +0200")
    '2021-04-28T21:50:00+02:00'
    """
    if value is None:
        return None
    match = _GITLAB_TIME.match(value.strip())
    if match is None:
        return value  # left for the event validation to reject, naming the field
    day, clock, zone = match.groups()
    if zone in (None, "UTC", "Z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    return f"{day}T{clock}{zone}"


def _gitlab_sha(payload: dict[str, Any]) -> str | None:
    url = _text(payload, "commit_url", required=False)
    tail = url.rstrip("/").rsplit("/", 1)[-1] if url else ""
    if _HEX.match(tail):
        return tail
    return _text(payload, "short_sha")


def gitlab_event(payload: dict[str, Any], incident_label: str = "incident") -> Mapped:
    """Map one GitLab delivery by its `object_kind`."""
    kind = payload.get("object_kind")
    if kind == "deployment":
        raw_status = _text(payload, "status")
        status = GITLAB_DEPLOYMENT_STATES.get(str(raw_status))
        if status is None:
            return Mapped(ignored=f"deployment status {raw_status!r} is not tracked")
        changed = gitlab_time(_text(payload, "status_changed_at", required=False))
        return Mapped(
            [
                {
                    "type": "deployment",
                    "id": _text(payload, "deployment_id"),
                    "sha": _gitlab_sha(payload),
                    "environment": environment_name(str(_text(payload, "environment"))),
                    "status": status,
                    "finished_at": (changed or None) if status in FINISHED else None,
                }
            ]
        )
    if kind == "merge_request":
        state = _text(payload, "object_attributes.state", required=False)
        action = _text(payload, "object_attributes.action", required=False)
        merged = state == "merged"
        merged_at = (
            gitlab_time(_text(payload, "object_attributes.updated_at"))
            if merged and action == "merge"
            else None
        )
        return Mapped(
            [
                {
                    "type": "change",
                    "id": _text(payload, "object_attributes.iid"),
                    "title": _text(payload, "object_attributes.title", required=False),
                    "opened_at": gitlab_time(_text(payload, "object_attributes.created_at")),
                    "merged_at": merged_at,
                    "merge_sha": _text(payload, "object_attributes.merge_commit_sha", False)
                    if merged
                    else None,
                    "reverts": reverted_change_ref(
                        description=_text(payload, "object_attributes.description", False)
                    ),
                }
            ]
        )
    if kind in ("issue", "work_item"):
        labels = _labels(payload.get("labels"), "title") or _labels(
            _get(payload, "object_attributes.labels", required=False), "title"
        )
        issue_type = str(
            _get(payload, "object_attributes.issue_type", required=False)
            or _get(payload, "object_attributes.type", required=False)
            or ""
        )
        if not _has_label(labels, incident_label) and issue_type.lower() != "incident":
            return Mapped(ignored=f"issue without the {incident_label!r} label")
        closed = _text(payload, "object_attributes.state", required=False) == "closed"
        return Mapped(
            [
                {
                    "type": "incident",
                    "id": _text(payload, "object_attributes.iid"),
                    "title": _text(payload, "object_attributes.title", required=False),
                    "opened_at": gitlab_time(_text(payload, "object_attributes.created_at")),
                    "resolved_at": gitlab_time(
                        _text(payload, "object_attributes.closed_at", required=False)
                    )
                    if closed
                    else None,
                    "severity": _severity(labels),
                }
            ]
        )
    return Mapped(ignored=f"GitLab event {kind!r} is not tracked")
