"""The admin API (`/api/v1/admin`): manage the tenant registry over HTTP.

Authenticated by its own token, `INSIGHTS_ADMIN_TOKEN` (at least 32 characters, from the
environment), never by a tenant's API token: a tenant token gets 403 here, and the admin token
is not a tenant token either. Unset, the admin API answers 403 "disabled".

Every change is written to the audit log (`insights audit`) with the actor (the
`X-Insights-Actor` header, default `admin-api`), the action, the target and the changed field
names; credential values never appear in a response, a log line or the audit log. Credentials
are write-only: `PUT …/secrets/{slot}` stores one encrypted, reads show only whether a slot is
set.

Example:
    curl -X PUT -H "Authorization: Bearer $INSIGHTS_ADMIN_TOKEN" \\
      -d '{"timezone": "Europe/Berlin", "services": [{"name": "checkout"}]}' \\
      http://127.0.0.1:8000/api/v1/admin/tenants/acme
"""

from __future__ import annotations

import hmac
import os
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select

from insights.api.auth import BearerCredentials
from insights.config import ServiceConfig, TeamConfig, TenantConfig
from insights.store import registry, secrets
from insights.store.db import unit_of_work
from insights.store.models import AuditEntry, Service, Tenant
from insights.timeutil import iso

ADMIN_TOKEN_ENV = "INSIGHTS_ADMIN_TOKEN"
MIN_ADMIN_TOKEN = 32
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _admin(
    credentials: BearerCredentials,
    actor: Annotated[
        str | None, Header(alias="X-Insights-Actor", max_length=200, include_in_schema=False)
    ] = None,
) -> str:
    """FastAPI dependency: the actor of an authenticated admin request."""
    expected = os.environ.get(ADMIN_TOKEN_ENV, "")
    if len(expected) < MIN_ADMIN_TOKEN:
        raise HTTPException(403, f"admin API disabled: set {ADMIN_TOKEN_ENV} (≥ 32 characters)")
    if credentials is None or not _same(credentials, expected):
        raise HTTPException(
            403 if credentials is not None else 401,
            "admin token required (Authorization: Bearer $INSIGHTS_ADMIN_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return f"admin-api:{actor}" if actor else "admin-api"


def _same(credentials: HTTPAuthorizationCredentials, expected: str) -> bool:
    return credentials.scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.credentials.encode(), expected.encode()
    )


Actor = Annotated[str, Depends(_admin)]
TenantName = Annotated[str, Path(max_length=128, description="Tenant name.")]
ChildName = Annotated[str, Path(max_length=128)]

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class TenantBody(TenantConfig):
    """A tenant's whole configuration (the `[[tenants]]` table of insights.toml); the name
    comes from the path. Teams and services not listed are removed."""

    name: str | None = None  # type: ignore[assignment]


class ServiceBody(ServiceConfig):
    name: str | None = None  # type: ignore[assignment]


class TeamBody(TeamConfig):
    name: str | None = None  # type: ignore[assignment]


class SecretBody(BaseModel):
    value: str = Field(min_length=1, max_length=secrets.MAX_SECRET_BYTES)


class ChangeOut(BaseModel):
    action: str
    kind: str
    tenant: str
    name: str
    fields: list[str]


class ChangesOut(BaseModel):
    changes: list[ChangeOut]


class TenantSummary(BaseModel):
    name: str
    timezone: str
    registered: bool
    services: int


class SlotStatus(BaseModel):
    stored: bool
    env: str | None
    env_set: bool
    set: bool


class TenantOut(BaseModel):
    config: dict[str, Any]
    secrets: dict[str, SlotStatus]


class AuditOut(BaseModel):
    at: str
    actor: str
    action: str
    tenant: str | None
    target: str
    detail: dict[str, Any]


def _check_name(name: str, what: str) -> None:
    if not NAME.match(name):
        raise HTTPException(422, f"{what} {name!r}: use letters, digits, '.', '_' or '-'")


def _changes(changes: list[registry.Change]) -> ChangesOut:
    return ChangesOut(changes=[ChangeOut(**c.as_dict()) for c in changes if c.action != "kept"])


def _validated(model: type[Any], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise HTTPException(422, f"{where}: {err['msg']}") from None


def _require_tenant(session: Any, tenant: str) -> TenantConfig:
    config = registry.load_tenant(session, tenant)
    if config is None:
        raise HTTPException(404, f"tenant {tenant!r}: not found")
    return config


@router.get("/tenants", summary="Every tenant in the registry")
def list_tenants(request: Request, _: Actor) -> list[TenantSummary]:
    with unit_of_work(request.app.state.engine) as session:
        grouped = select(Service.tenant_id, func.count()).group_by(Service.tenant_id)
        counts: dict[int, int] = {row[0]: row[1] for row in session.execute(grouped)}
        return [
            TenantSummary(
                name=t.name,
                timezone=t.timezone,
                registered=t.config is not None,
                services=counts.get(t.id, 0),
            )
            for t in session.scalars(select(Tenant).order_by(Tenant.name))
        ]


@router.get(
    "/tenants/{tenant}",
    summary="A tenant's configuration and which credentials are set (never their values)",
    responses={404: {"description": "No such tenant."}},
)
def get_tenant(request: Request, _: Actor, tenant: TenantName) -> TenantOut:
    with unit_of_work(request.app.state.engine) as session:
        config = _require_tenant(session, tenant)
        status = secrets.secret_status(session, tenant)
    return TenantOut(
        config=config.model_dump(mode="json"),
        secrets={slot: SlotStatus(**state) for slot, state in status.items()},
    )


@router.put(
    "/tenants/{tenant}",
    summary="Create or replace a tenant's configuration (declarative, like `insights apply`)",
    responses={422: {"description": "Invalid configuration (the message names the field)."}},
)
def put_tenant(request: Request, actor: Actor, tenant: TenantName, body: TenantBody) -> ChangesOut:
    _check_name(tenant, "tenant")
    if body.name not in (None, tenant):
        raise HTTPException(422, f"name {body.name!r}: does not match the path ({tenant!r})")
    desired = _validated(TenantConfig, {**body.model_dump(mode="json"), "name": tenant})
    with unit_of_work(request.app.state.engine) as session:
        return _changes(registry.put_tenant(session, desired, actor))


@router.delete(
    "/tenants/{tenant}",
    status_code=204,
    summary="Delete a tenant with all its data, tokens and credentials",
    responses={404: {"description": "No such tenant."}},
)
def delete_tenant(request: Request, actor: Actor, tenant: TenantName) -> Response:
    with unit_of_work(request.app.state.engine) as session:
        if not registry.delete_tenant(session, tenant, actor):
            raise HTTPException(404, f"tenant {tenant!r}: not found")
    return Response(status_code=204)


def _put_child(
    request: Request,
    actor: str,
    tenant: str,
    kind: Literal["team", "service"],
    name: str,
    model: type[ServiceConfig] | type[TeamConfig],
    body: BaseModel,
) -> ChangesOut:
    """Create or replace one team or service of an existing tenant, named by the path."""
    _check_name(name, kind)
    wanted = _validated(model, {**body.model_dump(mode="json"), "name": name})
    with unit_of_work(request.app.state.engine) as session:
        _require_tenant(session, tenant)
        return _changes(registry.put_child(session, tenant, kind, wanted, actor))


def _delete_child(
    request: Request, actor: str, tenant: str, kind: Literal["team", "service"], name: str
) -> Response:
    """Delete one team or service of an existing tenant; 404 when either is missing."""
    with unit_of_work(request.app.state.engine) as session:
        _require_tenant(session, tenant)
        if not registry.delete_child(session, tenant, kind, name, actor):
            raise HTTPException(404, f"{kind} {name!r}: not found in tenant {tenant!r}")
    return Response(status_code=204)


@router.put(
    "/tenants/{tenant}/services/{service}",
    summary="Create or replace one service (its team, production pattern and source)",
    responses={404: {"description": "No such tenant."}},
)
def put_service(
    request: Request, actor: Actor, tenant: TenantName, service: ChildName, body: ServiceBody
) -> ChangesOut:
    return _put_child(request, actor, tenant, "service", service, ServiceConfig, body)


@router.delete(
    "/tenants/{tenant}/services/{service}",
    status_code=204,
    summary="Delete a service and its delivery history",
    responses={404: {"description": "No such tenant or service."}},
)
def delete_service(
    request: Request, actor: Actor, tenant: TenantName, service: ChildName
) -> Response:
    return _delete_child(request, actor, tenant, "service", service)


@router.put(
    "/tenants/{tenant}/teams/{team}",
    summary="Create or replace one team (its Slack webhook reference)",
    responses={404: {"description": "No such tenant."}},
)
def put_team(
    request: Request, actor: Actor, tenant: TenantName, team: ChildName, body: TeamBody
) -> ChangesOut:
    return _put_child(request, actor, tenant, "team", team, TeamConfig, body)


@router.delete(
    "/tenants/{tenant}/teams/{team}",
    status_code=204,
    summary="Delete a team (its services stay, without a team)",
    responses={404: {"description": "No such tenant or team."}},
)
def delete_team(request: Request, actor: Actor, tenant: TenantName, team: ChildName) -> Response:
    return _delete_child(request, actor, tenant, "team", team)


@router.put(
    "/tenants/{tenant}/secrets/{slot}",
    status_code=204,
    summary="Store a credential encrypted (write-only: it is never returned)",
    responses={
        404: {"description": "No such tenant, or the slot is not a credential field."},
        422: {"description": "INSIGHTS_SECRET_KEYS unset or the value is empty/too long."},
    },
)
def put_secret(
    request: Request,
    actor: Actor,
    tenant: TenantName,
    slot: Annotated[str, Path(max_length=300)],
    body: SecretBody,
) -> Response:
    with unit_of_work(request.app.state.engine) as session:
        _require_tenant(session, tenant)
        secrets.set_secret(session, tenant, slot, body.value, actor)
    return Response(status_code=204)


@router.delete(
    "/tenants/{tenant}/secrets/{slot}",
    status_code=204,
    summary="Delete a stored credential (the slot falls back to its env var reference)",
    responses={404: {"description": "No such tenant or stored credential."}},
)
def delete_secret(
    request: Request,
    actor: Actor,
    tenant: TenantName,
    slot: Annotated[str, Path(max_length=300)],
) -> Response:
    with unit_of_work(request.app.state.engine) as session:
        _require_tenant(session, tenant)
        if not secrets.delete_secret(session, tenant, slot, actor):
            raise HTTPException(404, f"secret {slot!r}: not stored for tenant {tenant!r}")
    return Response(status_code=204)


@router.get("/audit", summary="Registry changes, newest first (who, what, when)")
def audit_log(
    request: Request,
    _: Actor,
    tenant: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if tenant is not None:
        query = query.where(AuditEntry.tenant == tenant)
    with unit_of_work(request.app.state.engine) as session:
        return [
            AuditOut(
                at=iso(e.at) or "",
                actor=e.actor,
                action=e.action,
                tenant=e.tenant,
                target=e.target,
                detail=e.detail or {},
            )
            for e in session.scalars(query)
        ]
