"""Partial updates: fields an incoming event leaves out keep the values already stored.

A CI step resolving an incident sends only its id and `resolved_at` (`insights record incident`
or the API); a GitHub `pull_request` webhook knows nothing of the first review the collector
found. Upserts replace whole rows, so callers fill such gaps from the stored row first; nothing
already stored is lost.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select

from insights.store.models import Change, Deployment, DeploymentCommit, Incident
from insights.store.repository import TenantRepository
from insights.timeutil import parse_time

# event field -> stored column, per event type
_FIELDS: dict[str, tuple[type, dict[str, str]]] = {
    "incident": (
        Incident,
        {
            "opened_at": "opened_at",
            "resolved_at": "resolved_at",
            "severity": "severity",
            "deployment_id": "deployment_external_id",
            "title": "title",
        },
    ),
    "change": (
        Change,
        {
            "title": "title",
            "opened_at": "opened_at",
            "first_commit_at": "first_commit_at",
            "first_review_at": "first_review_at",
            "approved_at": "approved_at",
            "merged_at": "merged_at",
            "merge_sha": "merge_sha",
            "commits": "commits",
            "reverts": "reverts",
        },
    ),
    "deployment": (Deployment, {"started_at": "started_at", "finished_at": "finished_at"}),
}


def lookup_key(value: Any) -> bool:
    """Whether `value` can be looked up as a name or id: a short string or integer without NUL
    (PostgreSQL refuses NUL in a query parameter: that was a 500 instead of the model's 422)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = str(value) if isinstance(value, str) or value.bit_length() <= 664 else ""
    if not 0 < len(text) <= 200 or "\x00" in text:
        return False
    try:
        text.encode("utf-8")  # a lone surrogate cannot be sent to the database either
    except UnicodeEncodeError:
        return False
    return True


def fill_from_stored(
    repo: TenantRepository,
    data: dict[str, Any],
    stated: Collection[str] = (),
    earliest: Collection[str] = (),
) -> dict[str, Any]:
    """`data` (a canonical event dict) with its missing or null fields taken from storage.

    Only incidents, changes and deployments that already exist are filled; anything else is
    returned unchanged. Fields in `stated` are what the source says, null included (a reopened
    issue has no resolution time): they are never filled. For time fields in `earliest` the
    earlier of the stored and the new value wins (a change's first review).
    """
    spec = _FIELDS.get(str(data.get("type")))
    service_name = data.get("service")
    external_id = data.get("id")
    if spec is None or not lookup_key(service_name) or not lookup_key(external_id):
        return data  # nothing stored can match; the event model rejects what is malformed
    model, fields = spec
    service = repo.service(service_name)
    if service is None:
        return data
    stored = repo.session.scalar(
        repo.scoped(model).where(
            model.service_id == service.id,  # type: ignore[attr-defined]
            model.external_id == str(external_id).strip(),  # type: ignore[attr-defined]
        )
    )
    if stored is None:
        return data
    merged = dict(data)
    for field, column in fields.items():
        value = getattr(stored, column)
        if field in stated:
            continue
        if merged.get(field) is None and value not in (None, []):
            merged[field] = value
        elif field in earliest and isinstance(value, datetime):
            mine = merged[field]
            mine_at = mine if isinstance(mine, datetime) else parse_time(str(mine))
            merged[field] = min(value, mine_at)
    if isinstance(stored, Deployment) and stored.commits_listed and merged.get("commits") is None:
        # the source listed the shipped commits; an event without a list keeps them
        merged["commits"] = list(
            repo.session.scalars(
                select(DeploymentCommit.sha).where(
                    DeploymentCommit.tenant_id == repo.tenant_id,
                    DeploymentCommit.deployment_id == stored.id,
                )
            )
        )
    return merged
