"""Jira REST API v2 issue JSON → incidents: pure functions, no I/O (collector, webhook, remap).

Rules:
- id = the issue key (`OPS-12`, what people quote); title = `fields.summary`.
- opened = `fields.created`; resolved = `fields.resolutiondate` (Jira clears it when an issue
  is reopened, so a reopen reopens).
- severity = the priority's name, lower-cased (`Highest`, `P1` → `highest`, `p1`).
- deployment = the configured `deployment_field` (a custom field holding a deployment id,
  text or an option/object with a `value`/`name`), else a `deployment:<id>` label, else a
  `Deployment: <id>` line of the description (the rule GitHub and GitLab incidents follow).
- An issue is an incident of the service while it is in the configured project and, when
  `issue_types` is set, has one of those types; otherwise (moved, retyped, deleted) it stops
  being one (`is_incident`).
"""

from __future__ import annotations

from typing import Any

from insights.collect.hostcommon import deployment_reference
from insights.model import IncidentEvent

FIELDS = (
    "summary",
    "created",
    "updated",
    "resolutiondate",
    "priority",
    "labels",
    "description",
    "issuetype",
    "project",
    "status",
)


def _text(value: Any) -> str | None:
    """A field value as text: a string, or an option/user/object's `value`/`name`."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("value") or value.get("name") or value.get("displayName")
    elif isinstance(value, list):
        value = next((_text(v) for v in value if _text(v)), None)
    text = str(value).strip() if value is not None else ""
    return text or None


def deployment_of(fields: dict[str, Any], deployment_field: str | None = None) -> str | None:
    """The deployment an issue names (see the module rules)."""
    if deployment_field:
        named = _text(fields.get(deployment_field))
        if named:
            return named
    labels = [str(label) for label in fields.get("labels") or []]
    description = fields.get("description")
    return deployment_reference(labels, description if isinstance(description, str) else "")


def is_incident(issue: dict[str, Any], project: str | None, issue_types: list[str]) -> bool:
    """Is the issue (still) in `project` and of one of `issue_types` (any type if empty)?"""
    fields = issue.get("fields") or {}
    key = str((fields.get("project") or {}).get("key") or str(issue.get("key", "")).split("-")[0])
    if project and key.upper() != project.upper():
        return False
    kind = str((fields.get("issuetype") or {}).get("name") or "")
    return not issue_types or kind.lower() in {t.lower() for t in issue_types}


def map_issue(
    service: str, issue: dict[str, Any], deployment_field: str | None = None
) -> IncidentEvent:
    """A Jira issue → an incident of `service`."""
    fields = issue["fields"]
    priority = _text(fields.get("priority"))
    return IncidentEvent(
        service=service,
        id=str(issue["key"]),
        opened_at=fields["created"],
        resolved_at=fields.get("resolutiondate"),
        severity=priority.lower() if priority else None,
        deployment_id=deployment_of(fields, deployment_field),
        title=fields.get("summary"),
    )
