"""PagerDuty REST API v2 and webhook v3 JSON → incidents: pure functions, no I/O.

One mapping for both paths (the collector's `GET /incidents` rows and the webhooks' `event.data`
share the incident shape), re-run by `remap` on the stored payloads.

Rules:
- id = the PagerDuty incident id (`PT4KHLK`); title = `title` (else `summary`).
- opened = `created_at`.
- resolved = when it reached resolved: `resolved_at`, else `last_status_change_at` while the
  status is `resolved`; a webhook's `incident.resolved` carries it as the event's `occurred_at`.
  Any status other than `resolved` (triggered, acknowledged, a reopen) means unresolved.
- severity = the priority's name (`P1` → `p1`) when the account uses priorities, else the
  urgency (`high`, `low`).
- deployment = the deployment a note, the description or the title names (`Deployment: 1234`
  on a line of its own, the same rule as GitHub/GitLab incident bodies).
"""

from __future__ import annotations

from typing import Any

from insights.collect.hostcommon import deployment_reference
from insights.model import IncidentEvent

# webhook v3 incident event types that change what we store (others are acknowledged)
LIFECYCLE_EVENTS = frozenset(
    {
        "incident.triggered",
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.escalated",
        "incident.reassigned",
        "incident.delegated",
        "incident.priority_updated",
        "incident.resolved",
        "incident.reopened",
        "incident.annotated",
    }
)


def severity(incident: dict[str, Any]) -> str | None:
    """`p1` from a priority named P1, else the urgency.

    >>> severity({"priority": {"summary": "P2"}, "urgency": "high"})
    'p2'
    >>> severity({"priority": None, "urgency": "low"})
    'low'
    """
    priority = incident.get("priority") or {}
    name = priority.get("summary") or priority.get("name")
    if name:
        return str(name).strip().lower()
    urgency = incident.get("urgency")
    return str(urgency).lower() if urgency else None


def resolved_at(incident: dict[str, Any], occurred_at: str | None = None) -> str | None:
    """When a resolved incident reached resolved; None while it is not resolved."""
    if incident.get("status") != "resolved":
        return None
    return incident.get("resolved_at") or occurred_at or incident.get("last_status_change_at")


def deployment_of(incident: dict[str, Any], notes: list[dict[str, Any]]) -> str | None:
    """The deployment a note (oldest first), the description or the title names."""
    for note in notes:
        found = deployment_reference([], str(note.get("content") or ""))
        if found:
            return found
    text = "\n".join(str(incident.get(k) or "") for k in ("description", "title", "summary"))
    return deployment_reference([], text)


def map_incident(
    service: str,
    incident: dict[str, Any],
    notes: list[dict[str, Any]] = (),  # type: ignore[assignment]
    occurred_at: str | None = None,
) -> IncidentEvent:
    """A PagerDuty incident (with its notes, when fetched) → an incident of `service`."""
    return IncidentEvent(
        service=service,
        id=str(incident["id"]),
        opened_at=incident["created_at"],
        resolved_at=resolved_at(incident, occurred_at),
        severity=severity(incident),
        deployment_id=deployment_of(incident, list(notes)),
        title=incident.get("title") or incident.get("summary"),
    )


def webhook_incident(payload: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """(event type, occurred_at, incident) of a v3 webhook body `{"event": {…, "data": …}}`;
    KeyError/TypeError when the body is not shaped like one."""
    event = payload["event"]
    data = event["data"]
    if not isinstance(data, dict):
        raise TypeError("event.data must be an object")
    return str(event["event_type"]), event.get("occurred_at"), data
