"""`POST /webhooks/github/{tenant}` and `POST /webhooks/gitlab/{tenant}`.

The tenant is the path segment; the delivery proves it came from that tenant's Git host with
the tenant's webhook secret (`webhook_secret_env` in insights.toml): GitHub signs the raw body
(`X-Hub-Signature-256: sha256=<HMAC-SHA256 hex>`), GitLab sends the secret as `X-Gitlab-Token`.
Both are compared in constant time, before the body is parsed. A missing or wrong signature is
401; a tenant that does not exist or has no webhook secret is 404 (the same answer, so the
endpoint does not reveal which tenants exist).

A delivery id seen before (`X-GitHub-Delivery`, `X-Gitlab-Event-UUID`) is acknowledged and
ignored. The delivery id, the raw payload and the mapped events are written in one
transaction. Every verified delivery is answered 2xx unless its payload is malformed (4xx):
an untracked kind, a payload without a repository, or a repository no service has is 202
`ignored` with the reason, and counted in `insights_webhook_ignored{source,reason}`. The raw
payload of every delivery of a tracked kind is kept (also when it stored nothing); one for a
repository without a service is kept without recording its delivery id, so a redelivery works
once the service exists.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights.boundedjson import JsonInputError, loads
from insights.collect.webhook_store import apply_mapped
from insights.collect.webhooks import (
    NO_REPOSITORY,
    UNKNOWN_REPOSITORY,
    UNTRACKED_EVENT,
    Mapped,
    PayloadError,
    github_event,
    github_repository,
    gitlab_event,
    gitlab_project,
    is_tracked,
)
from insights.config import ServiceConfig, SourceConfig, TenantConfig, secret
from insights.errors import UserError
from insights.model import EventError
from insights.store.db import unit_of_work
from insights.store.models import WebhookDelivery
from insights.store.repository import TenantRepository, get_tenant
from insights.store.retry import run_in_transaction
from insights.timeutil import now

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger("insights.api")

NOT_CONFIGURED = "webhooks are not configured for this tenant"
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Stored (`status: stored`, incidents `removed`), or a replayed delivery"
        " acknowledged (`status: duplicate`)."
    },
    202: {
        "description": "Verified but nothing to store (`status: ignored`, with the `reason`):"
        " untracked event, no repository, repository without a service, or nothing tracked."
    },
    400: {"description": "Body is not JSON, or a required header is missing."},
    401: {"description": "Missing or wrong signature / token."},
    404: {"description": "Unknown tenant or no webhook secret configured for it."},
    413: {"description": "Body larger than INSIGHTS_MAX_BODY_BYTES."},
    422: {"description": "Payload lacks a field the mapping needs (named)."},
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
    from insights.store.registry import tenant_config

    config = tenant_config(request.app.state.engine, request.app.state.settings, tenant)
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


def _service_for(
    repo: TenantRepository, config: TenantConfig, project: str
) -> ServiceConfig | None:
    """The service a repository path belongs to, or None when no service has it.

    A service matches when its `source.repo` is the repository (case-insensitive), else when
    it is named like the repository's last path segment.
    """
    for service in config.services:
        repo_path = service.source.repo
        if repo_path and repo_path.lower() == project.lower() and repo.service(service.name):
            return service
    name = project.rstrip("/").rsplit("/", 1)[-1]
    if repo.service(name) is not None:
        return config.service(name) or ServiceConfig(name=name, source=SourceConfig())
    return None


def _map(delivery: Delivery, service: ServiceConfig) -> Mapped:
    if delivery.source == "github":
        return github_event(delivery.event, delivery.payload, service)
    return gitlab_event(delivery.payload, service)


def _raw_id(delivery: Delivery) -> str:
    if delivery.delivery_id is not None:
        return delivery.delivery_id
    canonical = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Outcome:
    """The answer to one delivery and what it did, for the response and the counters."""

    status: int
    body: dict[str, Any]
    per_type: dict[str, int]
    reason: str | None = None


def _ignored(why: str, reason: str) -> Outcome:
    return Outcome(202, {"status": "ignored", "reason": why}, {}, reason)


def _store(session: Session, delivery: Delivery) -> Outcome:
    repo = TenantRepository.open(session, delivery.tenant)
    try:
        if delivery.source == "github":
            project = github_repository(delivery.payload)
        else:
            project = gitlab_project(delivery.payload)
    except PayloadError as exc:
        raise HTTPException(422, {"field": exc.path, "error": str(exc)}) from None
    if project is None:
        where = "repository" if delivery.source == "github" else "project"
        return _ignored(f"{delivery.event} delivery without a {where}", NO_REPOSITORY)
    if delivery.delivery_id is not None:
        seen = session.scalar(
            repo.scoped(WebhookDelivery).where(
                WebhookDelivery.source == delivery.source,
                WebhookDelivery.delivery_id == delivery.delivery_id,
            )
        )
        if seen is not None:
            return Outcome(200, {"status": "duplicate", "delivery": delivery.delivery_id}, {})
    raw = [(_raw_id(delivery), delivery.payload)]
    kind = f"webhook:{delivery.event}"[:32]  # the raw_payloads key columns' widths
    where_kept = project[:512]
    service = _service_for(repo, delivery.tenant_config, project)
    if service is None:
        # kept for a rebuild once the service exists; the delivery id stays unrecorded
        repo.save_raw(delivery.source, where_kept, kind, raw)
        return _ignored(
            f"repository {project!r}: no service of tenant {repo.tenant.name!r} has it as "
            "source.repo or name (add it to insights.toml and run `insights init`)",
            UNKNOWN_REPOSITORY,
        )
    if delivery.delivery_id is not None:
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
        mapped = _map(delivery, service)
    except PayloadError as exc:
        raise HTTPException(422, {"field": exc.path, "error": str(exc)}) from None
    repo.save_raw(delivery.source, where_kept, kind, raw)
    if mapped.ignored:
        return _ignored(mapped.ignored, mapped.reason or "not_tracked")
    outcome = _apply(repo, service.name, mapped)
    outcome.body = {"status": outcome.body["status"], "service": service.name, **outcome.body}
    return outcome


def _apply(repo: TenantRepository, service: str, mapped: Mapped) -> Outcome:
    try:
        applied = apply_mapped(repo, service, mapped)
    except EventError as exc:
        raise HTTPException(
            422, {"field": exc.message.partition(":")[0], "error": exc.message}
        ) from None
    if not applied.events and not applied.removed:
        return _ignored("not an incident, and none was stored under that id", "not_tracked")
    body: dict[str, Any] = {
        "status": "stored" if applied.events else "removed",
        "events": [{"type": e.type, "id": getattr(e, "id", None)} for e in applied.events],
    }
    if applied.removed:
        body["removed"] = [{"type": kind, "id": key} for kind, key in applied.removed]
    return Outcome(200, body, applied.counts)


def _handle(request: Request, delivery: Delivery) -> JSONResponse:
    metrics = request.app.state.metrics
    if not is_tracked(delivery.source, delivery.event):
        source = "GitHub" if delivery.source == "github" else "GitLab"
        outcome = _ignored(f"{source} event {delivery.event!r} is not tracked", UNTRACKED_EVENT)
    else:
        try:
            # a deadlock with a concurrent delivery re-runs the transaction (store/retry.py)
            outcome = run_in_transaction(
                request.app.state.engine, lambda session: _store(session, delivery)
            )
        except IntegrityError:
            if delivery.delivery_id is None:
                raise
            duplicate = {"status": "duplicate", "delivery": delivery.delivery_id}
            outcome = Outcome(200, duplicate, {})
        except HTTPException:
            metrics.webhooks.labels(delivery.source, "rejected").inc()
            raise
    metrics.webhooks.labels(delivery.source, outcome.body["status"]).inc()
    if outcome.reason is not None:
        metrics.webhooks_ignored.labels(delivery.source, outcome.reason).inc()
    for kind, count in outcome.per_type.items():
        metrics.events.labels(kind, "webhook").inc(count)
    return JSONResponse(outcome.body, status_code=outcome.status)


@router.post("/github/{tenant}", summary="GitHub webhook receiver", responses=RESPONSES)
async def github_webhook(
    tenant: str,
    request: Request,
    x_github_event: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header()] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Events: `deployment_status`, `workflow_run`, `pull_request`, `pull_request_review`,
    `issues` (others are acknowledged with 202)."""
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
    """Events: `Deployment Hook`, `Pipeline Hook`, `Merge Request Hook`, `Issue Hook` and
    work item hooks (others acknowledged with 202)."""
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
