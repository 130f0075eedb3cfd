"""`POST /webhooks/pagerduty/{tenant}` and `POST /webhooks/jira/{tenant}`: incident tools push.

The tenant is the path segment; a delivery must be signed with the secret of one of the
tenant's sources of that kind (`webhook_secret_env` on the source, else the tenant's):
- PagerDuty webhooks v3: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>`, several
  comma-separated while a secret rotates; any one matching is enough.
- Jira admin webhooks with a secret (Cloud, and Data Center 10+):
  `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
Signatures are checked in constant time before the body is parsed. Missing or wrong: 401. A
tenant that does not exist or has no source of that kind with a secret: 404 (one answer, so
the endpoint does not reveal which tenants exist).

PagerDuty follows the lifecycle: `incident.triggered` opens, `incident.resolved` resolves at
the event's `occurred_at`, `incident.reopened` (or any status but resolved) makes it unresolved
again, `incident.annotated` links the deployment a note names; the incident goes to the service
whose source lists its PagerDuty service id. Jira: `jira:issue_created` / `jira:issue_updated`
upsert the issue while it is an incident of a service (its project, one of `issue_types`);
an update that moves or retypes it away, or `jira:issue_deleted`, removes it.

A delivery id seen before (PagerDuty's `event.id`, Jira's `X-Atlassian-Webhook-Identifier`) is
acknowledged and ignored; the delivery id, the raw payload and the records are written in one
transaction (nothing when anything fails).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights import pipeline
from insights.boundedjson import JsonInputError, loads
from insights.collect.hostcommon import deployment_reference
from insights.collect.jira_map import is_incident, map_issue
from insights.collect.pagerduty_map import LIFECYCLE_EVENTS, map_incident, webhook_incident
from insights.config import ServiceConfig, SourceConfig, TenantConfig, secret
from insights.errors import UserError
from insights.model import IncidentEvent, describe_validation_error
from insights.store.db import unit_of_work
from insights.store.models import Incident, WebhookDelivery
from insights.store.repository import TenantRepository, get_tenant
from insights.store.retry import run_in_transaction
from insights.timeutil import iso, now

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger("insights.api")

NOT_CONFIGURED = "webhooks are not configured for this tenant"
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored, or a replayed delivery acknowledged (`status: duplicate`)."},
    202: {"description": "Verified but nothing to store (`status: ignored`, with the reason)."},
    400: {"description": "Body is not JSON."},
    401: {"description": "Missing or wrong signature."},
    404: {"description": "Unknown tenant, or no source of this kind with a webhook secret."},
    413: {"description": "Body larger than INSIGHTS_MAX_BODY_BYTES."},
    422: {"description": "Payload lacks a field (named) or names no configured service."},
}


@dataclass(frozen=True)
class _Source:
    service: ServiceConfig
    source: SourceConfig
    secret: str


def _sources(request: Request, tenant: str, kind: str) -> list[_Source]:
    """The tenant's sources of `kind` that have a webhook secret set; 404 without any."""
    from insights.store.registry import tenant_config

    config: TenantConfig = tenant_config(
        request.app.state.engine, request.app.state.settings, tenant
    )
    found = []
    for service in config.services:
        for source in [service.source, *service.incidents]:
            env = source.webhook_secret_env or config.webhook_secret_env
            if source.kind != kind or not env:
                continue
            try:  # an env var, or a secret stored encrypted in the registry
                value = secret(env, f"tenant {tenant} {kind} webhook secret")
            except UserError as exc:
                log.warning("webhook for tenant %s: %s", tenant, exc)
                continue
            found.append(_Source(service, source, value))
    if not found:
        raise HTTPException(404, NOT_CONFIGURED)
    with unit_of_work(request.app.state.engine) as session:
        if get_tenant(session, tenant) is None:
            raise HTTPException(404, NOT_CONFIGURED)
    return found


def _hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def pagerduty_signature(secret: str, body: bytes) -> str:
    """The `X-PagerDuty-Signature` value PagerDuty sends for `body`."""
    return f"v1={_hmac(secret, body)}"


def jira_signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature` value a Jira admin webhook with a secret sends for `body`."""
    return f"sha256={_hmac(secret, body)}"


def _verified(
    sources: list[_Source], body: bytes, offered: list[str], sign: Callable[[str, bytes], str]
) -> list[_Source]:
    """The sources whose secret produced one of the `offered` signatures."""
    matching = []
    for source in sources:
        expected = sign(source.secret, body).encode()
        if any(hmac.compare_digest(expected, o.strip().encode()) for o in offered):
            matching.append(source)
    return matching


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = loads(body.decode("utf-8"))  # bounded: depth, numbers, Unicode (every API body)
    except UnicodeDecodeError:
        raise HTTPException(400, "body: not a JSON payload (not UTF-8)") from None
    except JsonInputError as exc:
        raise HTTPException(400, f"body: not a JSON payload ({exc})") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "body: must be a JSON object")
    return data


def _stored(repo: TenantRepository, service: str, incident_id: str) -> Incident | None:
    row = repo.service(service)
    if row is None:
        return None
    return repo.session.scalar(
        repo.scoped(Incident).where(
            Incident.service_id == row.id, Incident.external_id == incident_id
        )
    )


def _first_time(repo: TenantRepository, source: str, delivery_id: str | None) -> bool:
    """Record the delivery id; False when it was seen before."""
    if delivery_id is None:
        return True
    seen = repo.session.scalar(
        repo.scoped(WebhookDelivery).where(
            WebhookDelivery.source == source, WebhookDelivery.delivery_id == delivery_id
        )
    )
    if seen is not None:
        return False
    repo.session.add(
        WebhookDelivery(
            tenant_id=repo.tenant_id, source=source, delivery_id=delivery_id, received_at=now()
        )
    )
    repo.session.flush()  # a concurrent replay blocks here, then fails on the unique key
    return True


def _known_service(repo: TenantRepository, name: str) -> None:
    if repo.service(name) is None:
        raise HTTPException(
            422,
            f"service {name!r}: not in the database yet (run `insights init` or a sync first)",
        )


Outcome = tuple[int, dict[str, Any]]


def _pagerduty(
    session: Session, tenant: str, sources: list[_Source], payload: dict[str, Any]
) -> Outcome:
    try:
        event_type, occurred_at, data = webhook_incident(payload)
    except (KeyError, TypeError) as exc:
        raise HTTPException(422, {"field": "event", "error": f"not a v3 event: {exc}"}) from None
    delivery_id = str(payload["event"].get("id") or "")[:200] or None
    if event_type not in LIFECYCLE_EVENTS:
        return 202, {"status": "ignored", "reason": f"event {event_type} is not tracked"}
    is_note = data.get("type") == "incident_note"
    incident = (data.get("incident") or {}) if is_note else data
    service_id = str((incident.get("service") or {}).get("id") or "")
    targets = [s for s in sources if service_id and service_id in s.source.service_ids]
    if not targets and not is_note:
        raise HTTPException(
            422, f"PagerDuty service {service_id!r}: no service of {tenant!r} lists it"
        )
    repo = TenantRepository.open(session, tenant)
    if not _first_time(repo, "pagerduty", delivery_id):
        return 200, {"status": "duplicate", "delivery": delivery_id}
    events: list[IncidentEvent] = []
    names = list(dict.fromkeys(t.service.name for t in targets or sources))
    for name in names:
        stored = _stored(repo, name, str(incident.get("id")))
        if is_note:
            linked = deployment_reference([], str(data.get("content") or ""))
            if stored is None or not linked:
                continue
            events.append(_stored_event(name, stored).model_copy(update={"deployment_id": linked}))
            continue
        _known_service(repo, name)
        try:
            event = map_incident(name, incident, occurred_at=occurred_at)
        except (KeyError, ValidationError) as exc:
            raise HTTPException(422, {"field": "event.data", "error": _why(exc)}) from None
        update: dict[str, Any] = {}
        if stored is not None and event.deployment_id is None:
            update["deployment_id"] = stored.deployment_external_id  # a note named it before
        if event.resolved_at is not None and event_type != "incident.resolved" and stored:
            update["resolved_at"] = stored.resolved_at or event.resolved_at
        events.append(event.model_copy(update=update) if update else event)
    if not events:
        return 202, {"status": "ignored", "reason": "the note names no deployment"}
    pipeline.store_events(repo, events, create_services=False)
    if delivery_id:
        kind = f"webhook:{event_type.removeprefix('incident.')}"  # kind holds 32 chars
        repo.save_raw("pagerduty", "webhook", kind, [(delivery_id, payload)])
    return 200, {
        "status": "stored",
        "services": sorted({e.service for e in events}),
        "incident": events[0].id,
        "resolved_at": iso(events[0].resolved_at),
    }


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return describe_validation_error(exc)
    return f"missing field {exc}"


def _stored_event(service: str, row: Incident) -> IncidentEvent:
    return IncidentEvent(
        service=service,
        id=row.external_id,
        opened_at=row.opened_at,
        resolved_at=row.resolved_at,
        severity=row.severity,
        deployment_id=row.deployment_external_id,
        title=row.title,
    )


def _jira(
    session: Session,
    tenant: str,
    sources: list[_Source],
    payload: dict[str, Any],
    delivery_id: str | None,
) -> Outcome:
    event = str(payload.get("webhookEvent") or "")
    if event not in ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted"):
        return 202, {"status": "ignored", "reason": f"event {event or '?'} is not tracked"}
    issue = payload.get("issue")
    if (
        not isinstance(issue, dict)
        or not issue.get("key")
        or not isinstance(issue.get("fields"), dict)
    ):
        raise HTTPException(422, {"field": "issue", "error": "issue.key and issue.fields needed"})
    repo = TenantRepository.open(session, tenant)
    if not _first_time(repo, "jira", delivery_id):
        return 200, {"status": "duplicate", "delivery": delivery_id}
    stored_as, removed_from = [], []
    for target in sources:
        name = target.service.name
        config = target.source
        matches = event != "jira:issue_deleted" and is_incident(
            issue, config.project, config.issue_types
        )
        if matches:
            _known_service(repo, name)
            try:
                mapped = map_issue(name, issue, config.deployment_field)
            except (KeyError, ValidationError) as exc:
                raise HTTPException(422, {"field": "issue.fields", "error": _why(exc)}) from None
            pipeline.store_events(repo, [mapped], create_services=False)
            stored_as.append(name)
        else:
            service = repo.service(name)
            if service is not None and repo.delete_incidents(service.id, [str(issue["key"])]):
                removed_from.append(name)
    if delivery_id:
        repo.save_raw("jira", "webhook", f"webhook:{event}", [(delivery_id, payload)])
    if not stored_as and not removed_from:
        return 202, {"status": "ignored", "reason": "the issue is no incident of any service"}
    return 200, {
        "status": "stored" if stored_as else "removed",
        "issue": str(issue["key"]),
        "services": sorted(stored_as or removed_from),
    }


def _run(request: Request, source: str, work: Callable[[Session], Outcome]) -> JSONResponse:
    metrics = request.app.state.metrics
    try:
        # a deadlock or serialization failure re-runs the whole delivery (store/retry.py)
        status, body = run_in_transaction(request.app.state.engine, work)
    except IntegrityError:
        status, body = 200, {"status": "duplicate"}
    except HTTPException:
        metrics.webhooks.labels(source, "rejected").inc()
        raise
    metrics.webhooks.labels(source, body["status"]).inc()
    return JSONResponse(body, status_code=status)


@router.post("/pagerduty/{tenant}", summary="PagerDuty webhook (v3) receiver", responses=RESPONSES)
async def pagerduty_webhook(
    tenant: str,
    request: Request,
    x_pagerduty_signature: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Incident events: triggered, acknowledged, resolved, reopened, priority_updated, … ."""
    body = await request.body()
    sources = await run_in_threadpool(_sources, request, tenant, "pagerduty")
    if not x_pagerduty_signature:
        raise HTTPException(401, "missing X-PagerDuty-Signature header")
    offered = x_pagerduty_signature.split(",")
    verified = _verified(sources, body, offered, pagerduty_signature)
    if not verified:
        raise HTTPException(401, "X-PagerDuty-Signature does not match the payload")
    payload = _json(body)
    return await run_in_threadpool(
        _run, request, "pagerduty", lambda s: _pagerduty(s, tenant, verified, payload)
    )


@router.post("/jira/{tenant}", summary="Jira webhook receiver", responses=RESPONSES)
async def jira_webhook(
    tenant: str,
    request: Request,
    x_hub_signature: Annotated[str | None, Header()] = None,
    x_atlassian_webhook_identifier: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Events: `jira:issue_created`, `jira:issue_updated`, `jira:issue_deleted`."""
    body = await request.body()
    sources = await run_in_threadpool(_sources, request, tenant, "jira")
    if not x_hub_signature:
        raise HTTPException(401, "missing X-Hub-Signature header")
    verified = _verified(sources, body, [x_hub_signature], jira_signature)
    if not verified:
        raise HTTPException(401, "X-Hub-Signature does not match the payload")
    payload = _json(body)
    delivery_id = (x_atlassian_webhook_identifier or "").strip()[:200] or None
    return await run_in_threadpool(
        _run, request, "jira", lambda s: _jira(s, tenant, verified, payload, delivery_id)
    )
