"""`POST /webhooks/github/{tenant}` and `POST /webhooks/gitlab/{tenant}`.

The tenant is the path segment; the delivery proves it came from that tenant's Git host with
the tenant's webhook secret (`webhook_secret_env` in insights.toml): GitHub signs the raw body
(`X-Hub-Signature-256: sha256=<HMAC-SHA256 hex>`), GitLab sends the secret as `X-Gitlab-Token`.
Both are compared in constant time, before the body is parsed. A missing or wrong signature is
401; a tenant that does not exist or has no webhook secret is 404 (the same answer, so the
endpoint does not reveal which tenants exist).

A delivery id seen before (`X-GitHub-Delivery`, `X-Gitlab-Event-UUID`) is acknowledged and
ignored. The delivery id, the raw payload and the mapped events are written in one
transaction; the repository must belong to a service the tenant already has (422 otherwise,
and the delivery is not recorded, so GitHub's redelivery works once the service exists).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights import pipeline
from insights.boundedjson import JsonInputError, loads
from insights.collect.webhooks import (
    Mapped,
    PayloadError,
    github_event,
    github_repository,
    gitlab_event,
    gitlab_project,
)
from insights.config import TenantConfig, secret
from insights.errors import UserError
from insights.model import EventError, parse_event
from insights.store.db import unit_of_work
from insights.store.models import WebhookDelivery
from insights.store.partial import fill_from_stored
from insights.store.repository import TenantRepository, get_tenant
from insights.store.retry import run_in_transaction
from insights.timeutil import now

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger("insights.api")

NOT_CONFIGURED = "webhooks are not configured for this tenant"
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored, or a replayed delivery acknowledged (`status: duplicate`)."},
    202: {"description": "Verified but nothing to store (`status: ignored`, with the reason)."},
    400: {"description": "Body is not JSON, or a required header is missing."},
    401: {"description": "Missing or wrong signature / token."},
    404: {"description": "Unknown tenant or no webhook secret configured for it."},
    413: {"description": "Body larger than INSIGHTS_MAX_BODY_BYTES."},
    422: {"description": "Payload lacks a field (named) or names an unknown repository."},
}


@dataclass(frozen=True)
class Delivery:
    """A verified delivery, ready to map and store."""

    source: str  # github | gitlab
    tenant: str
    tenant_config: TenantConfig
    delivery_id: str | None
    event: str
    payload: dict[str, Any]


def _webhook_secret(request: Request, tenant: str) -> tuple[TenantConfig, str]:
    config: TenantConfig = request.app.state.org.tenant(tenant)
    if config.webhook_secret_env is None:
        raise HTTPException(404, NOT_CONFIGURED)
    try:
        value = secret(config.webhook_secret_env, f"tenant {tenant} webhook secret")
    except UserError as exc:
        log.warning("webhook for tenant %s refused: %s", tenant, exc)
        raise HTTPException(404, NOT_CONFIGURED) from None
    with unit_of_work(request.app.state.engine) as session:
        if get_tenant(session, tenant) is None:
            raise HTTPException(404, NOT_CONFIGURED)
    return config, value


def github_signature(secret_value: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    digest = hmac.new(secret_value.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail)


def _payload(body: bytes, content_type: str) -> dict[str, Any]:
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            text = parse_qs(body.decode("utf-8")).get("payload", [""])[0]
        else:
            text = body.decode("utf-8")
        data = loads(text)  # bounded: depth, numbers, Unicode (as every API body)
    except UnicodeDecodeError:
        raise HTTPException(400, "body: not a JSON payload (not UTF-8)") from None
    except JsonInputError as exc:
        raise HTTPException(400, f"body: not a JSON payload ({exc})") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "body: must be a JSON object")
    return data


def _service_for(repo: TenantRepository, config: TenantConfig, project: str) -> tuple[str, str]:
    """(service name, incident label) for a repository path; 422 when no service has it.

    A service matches when its `source.repo` is the repository (case-insensitive), else when
    it is named like the repository's last path segment.
    """
    for service in config.services:
        repo_path = service.source.repo
        if repo_path and repo_path.lower() == project.lower() and repo.service(service.name):
            return service.name, service.source.incident_label
    name = project.rstrip("/").rsplit("/", 1)[-1]
    if repo.service(name) is not None:
        configured = config.service(name)
        return name, configured.source.incident_label if configured else "incident"
    raise HTTPException(
        422,
        f"repository {project!r}: no service of tenant {repo.tenant.name!r} has it as "
        "source.repo or name (add it to insights.toml and run `insights init`)",
    )


def _map(delivery: Delivery, label: str) -> Mapped:
    if delivery.source == "github":
        return github_event(delivery.event, delivery.payload, incident_label=label)
    return gitlab_event(delivery.payload, incident_label=label)


def _store(session: Session, delivery: Delivery) -> tuple[int, dict[str, Any], dict[str, int]]:
    repo = TenantRepository.open(session, delivery.tenant)
    if delivery.delivery_id is not None:
        seen = session.scalar(
            repo.scoped(WebhookDelivery).where(
                WebhookDelivery.source == delivery.source,
                WebhookDelivery.delivery_id == delivery.delivery_id,
            )
        )
        if seen is not None:
            return 200, {"status": "duplicate", "delivery": delivery.delivery_id}, {}
        session.add(
            WebhookDelivery(
                tenant_id=repo.tenant_id,
                source=delivery.source,
                delivery_id=delivery.delivery_id,
                received_at=now(),
            )
        )
        session.flush()  # a concurrent replay blocks here, then fails on the unique key
    try:
        if delivery.source == "github":
            project = github_repository(delivery.payload)
        else:
            project = gitlab_project(delivery.payload)
        service, label = _service_for(repo, delivery.tenant_config, project)
        mapped = _map(delivery, label)
    except PayloadError as exc:
        raise HTTPException(422, {"field": exc.path, "error": str(exc)}) from None
    if mapped.ignored:
        return 202, {"status": "ignored", "reason": mapped.ignored}, {}
    events = []
    for data in mapped.events:
        data = {k: v for k, v in data.items() if v is not None}
        data = fill_from_stored(repo, {**data, "service": service})
        try:
            events.append(parse_event(data))
        except EventError as exc:
            raise HTTPException(
                422, {"field": exc.message.partition(":")[0], "error": exc.message}
            ) from None
    stored = pipeline.store_events(repo, events, create_services=False)
    if delivery.delivery_id is not None:
        repo.save_raw(
            delivery.source,
            project,
            f"webhook:{delivery.event}",
            [(delivery.delivery_id, delivery.payload)],
        )
    body = {
        "status": "stored",
        "service": service,
        "events": [{"type": e.type, "id": getattr(e, "id", None)} for e in events],
    }
    return 200, body, {kind: c.total for kind, c in stored.counts.items() if c.total}


def _handle(request: Request, delivery: Delivery) -> JSONResponse:
    metrics = request.app.state.metrics
    try:
        # a deadlock with a concurrent delivery re-runs the transaction (store/retry.py)
        status, body, per_type = run_in_transaction(
            request.app.state.engine, lambda session: _store(session, delivery)
        )
    except IntegrityError:
        if delivery.delivery_id is None:
            raise
        status, body, per_type = 200, {"status": "duplicate", "delivery": delivery.delivery_id}, {}
    except HTTPException:
        metrics.webhooks.labels(delivery.source, "rejected").inc()
        raise
    metrics.webhooks.labels(delivery.source, body["status"]).inc()
    for kind, count in per_type.items():
        metrics.events.labels(kind, "webhook").inc(count)
    return JSONResponse(body, status_code=status)


@router.post("/github/{tenant}", summary="GitHub webhook receiver", responses=RESPONSES)
async def github_webhook(
    tenant: str,
    request: Request,
    x_github_event: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header()] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Events: `deployment_status`, `pull_request`, `issues` (others are acknowledged)."""
    body = await request.body()
    config, secret_value = await run_in_threadpool(_webhook_secret, request, tenant)
    if not x_hub_signature_256:
        raise _unauthorized("missing X-Hub-Signature-256 header")
    expected = github_signature(secret_value, body)
    if not hmac.compare_digest(expected.encode(), x_hub_signature_256.strip().encode()):
        raise _unauthorized("X-Hub-Signature-256 does not match the payload")
    if not x_github_event:
        raise HTTPException(400, "missing X-GitHub-Event header")
    payload = _payload(body, request.headers.get("content-type", ""))
    if x_github_event == "ping":
        return JSONResponse({"status": "pong"})
    delivery_id = (x_github_delivery or "").strip()[:200] or None
    delivery = Delivery("github", tenant, config, delivery_id, x_github_event, payload)
    return await run_in_threadpool(_handle, request, delivery)


@router.post("/gitlab/{tenant}", summary="GitLab webhook receiver", responses=RESPONSES)
async def gitlab_webhook(
    tenant: str,
    request: Request,
    x_gitlab_token: Annotated[str | None, Header()] = None,
    x_gitlab_event: Annotated[str | None, Header()] = None,
    x_gitlab_event_uuid: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Events: `Deployment Hook`, `Merge Request Hook`, `Issue Hook` (others acknowledged)."""
    body = await request.body()
    config, secret_value = await run_in_threadpool(_webhook_secret, request, tenant)
    if not x_gitlab_token:
        raise _unauthorized("missing X-Gitlab-Token header")
    if not hmac.compare_digest(secret_value.encode(), x_gitlab_token.encode()):
        raise _unauthorized("X-Gitlab-Token does not match the tenant's webhook secret")
    payload = _payload(body, request.headers.get("content-type", ""))
    delivery_id = (x_gitlab_event_uuid or "").strip()[:200] or None
    event = str(payload.get("object_kind") or x_gitlab_event or "unknown")
    delivery = Delivery("gitlab", tenant, config, delivery_id, event, payload)
    return await run_in_threadpool(_handle, request, delivery)
