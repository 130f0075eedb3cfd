"""`Idempotency-Key`: a retried POST with the same key and body gets the stored answer.

The key is stored in the same transaction as the events it wrote, so a crash leaves neither.
Same key with a different body is a 422 (the client reused a key by mistake). Only requests
that were applied (2xx) consume a key; a refused request can be retried with the same key.
Two concurrent requests with one key: the database's unique constraint lets one win, the
other answers with the winner's stored response.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights.api.auth import Caller
from insights.store.db import unit_of_work
from insights.store.models import IdempotencyKey
from insights.store.retry import run_in_transaction
from insights.timeutil import now

KEY_MAX = 200
REPLAYED_HEADER = "Idempotent-Replayed"

Work = Callable[[Session], tuple[int, dict[str, Any]]]


def request_hash(method: str, path: str, query: str, body: bytes) -> str:
    """What "the same request" means: method, path, query string and exact body bytes."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(part + b"\0")
    digest.update(body)
    return digest.hexdigest()


def _stored(session: Session, caller: Caller, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.tenant_id == caller.tenant_id, IdempotencyKey.key == key
        )
    )


def _replay(row: IdempotencyKey, digest: str, key: str) -> JSONResponse:
    if row.request_hash != digest:
        raise HTTPException(
            status_code=422,
            detail=f"Idempotency-Key {key!r}: already used with a different request",
        )
    return JSONResponse(
        row.response, status_code=row.status_code, headers={REPLAYED_HEADER: "true"}
    )


def run_idempotent(
    engine: Engine, caller: Caller, key: str | None, digest: str, work: Work
) -> JSONResponse:
    """Run `work` in one transaction, honouring `key`; returns the response to send."""
    if key is not None and (not 1 <= len(key) <= KEY_MAX or "\x00" in key):
        raise HTTPException(
            status_code=422, detail=f"Idempotency-Key: must be 1-{KEY_MAX} characters, no NUL"
        )

    def attempt(session: Session) -> JSONResponse:
        if key is not None:
            row = _stored(session, caller, key)
            if row is not None:
                return _replay(row, digest, key)
        status, body = work(session)
        if key is not None and 200 <= status < 300:
            session.add(
                IdempotencyKey(
                    tenant_id=caller.tenant_id,
                    key=key,
                    request_hash=digest,
                    status_code=status,
                    response=body,
                    created_at=now(),
                )
            )
            session.flush()
        return JSONResponse(body, status_code=status)

    try:
        # a deadlock with a concurrent batch re-runs the whole transaction (store/retry.py)
        return run_in_transaction(engine, attempt)
    except IntegrityError:
        if key is None:
            raise
        # a concurrent request with the same key committed first; answer as it did
        with unit_of_work(engine) as session:
            row = _stored(session, caller, key)
            if row is None:
                raise
            return _replay(row, digest, key)
