"""API tokens: issue, revoke and resolve a Bearer token to its tenant.

Only the SHA-256 of a token is stored (`api_tokens.token_hash`); the token itself is shown once
when it is created. A request's tenant comes from its token and nothing else, so a body or a
path can never name another tenant's data.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from insights.errors import NotFound, UserError
from insights.store.db import unit_of_work
from insights.store.models import ApiToken, Tenant
from insights.store.repository import get_tenant
from insights.timeutil import now

TOKEN_PREFIX = "ins_"

_bearer = HTTPBearer(
    auto_error=False, description="An API token from `insights tenant token create`."
)


@dataclass(frozen=True)
class Caller:
    """The authenticated tenant of a request."""

    tenant_id: int
    tenant: str


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, tenant: str, name: str) -> str:
    """Issue a new token for `tenant` and return it; only its hash is stored.

    A token is `ins_` followed by 43 URL-safe characters (256 random bits).
    """
    found = get_tenant(session, tenant)
    if found is None:
        raise NotFound(f"tenant {tenant!r}: not found (create it with `insights tenant create`)")
    name = name.strip()
    if not name or len(name) > 128:
        raise UserError(f"--name {name!r}: must be 1-128 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(tenant_id=found.id, name=name, token_hash=hash_token(token), created_at=now())
    )
    session.flush()
    return token


def revoke_tokens(session: Session, tenant: str, name: str) -> int:
    """Revoke the tenant's live tokens called `name`; returns how many were revoked."""
    found = get_tenant(session, tenant)
    if found is None:
        raise NotFound(f"tenant {tenant!r}: not found")
    result = session.execute(
        update(ApiToken)
        .where(
            ApiToken.tenant_id == found.id,
            ApiToken.name == name,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=now())
    )
    return result.rowcount or 0


def list_tokens(session: Session, tenant: str) -> list[ApiToken]:
    found = get_tenant(session, tenant)
    if found is None:
        raise NotFound(f"tenant {tenant!r}: not found")
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.tenant_id == found.id).order_by(ApiToken.created_at)
        )
    )


def resolve_token(session: Session, token: str) -> Caller | None:
    """The tenant a live (not revoked) token belongs to, or None."""
    row = session.execute(
        select(Tenant.id, Tenant.name)
        .join(ApiToken, ApiToken.tenant_id == Tenant.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    ).first()
    return None if row is None else Caller(tenant_id=row[0], tenant=row[1])


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """FastAPI dependency: 401 unless the request carries a live Bearer token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing Bearer token (Authorization: Bearer <token>)")
    with unit_of_work(request.app.state.engine) as session:
        caller = resolve_token(session, credentials.credentials)
    if caller is None:
        raise _unauthorized("invalid or revoked token")
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
# the raw Authorization credentials, for routes that also accept another proof (signed links)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
