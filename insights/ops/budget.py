"""The monthly token budget, exact when many workers narrate for one tenant at once.

Rule (as for one process): a model call is made only while the tenant's tokens this UTC month
are below `monthly_token_budget`; the call that crosses it is the last. With workers in
parallel, "tokens this month" also counts every call in flight elsewhere, so N workers never
overshoot more than one worker does:

1. `reserve` (its own short transaction, one tenant at a time by an advisory lock): spent =
   stored narratives + live reservations; refused when spent ≥ budget, else a reservation of
   the call's estimated tokens is committed, so every other worker sees it at once.
2. The call runs, without any lock held.
3. `settle`: the reservation is set to the tokens really used (committed, visible to all) and
   deleted in the caller's session, which also writes the narrative row: when the caller
   commits, the narrative replaces the reservation in one step. A caller that rolls back
   leaves the reservation counting until it expires (`RESERVATION_TTL`): never under-counted.

On SQLite (one process, embedded) the check runs in the caller's session: there is no other
worker to see.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.orm import Session

from insights.store.db import unit_of_work
from insights.store.models import Narrative, Tenant, TokenReservation
from insights.timeutil import now

RESERVATION_TTL = timedelta(hours=1)
_LOCK_NAMESPACE = zlib.crc32(b"insights.budget") & 0x7FFFFFFF


@dataclass(frozen=True)
class Reservation:
    """`spent` counts stored and in-flight tokens; `id` is None when nothing was reserved."""

    refused: bool
    spent: int
    id: int | None = None


def _month(at: datetime) -> tuple[datetime, datetime, str]:
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end, f"{start:%Y-%m}"


def _spent(session: Session, tenant_id: int, at: datetime) -> int:
    start, end, month = _month(at)
    stored = session.scalar(
        select(func.coalesce(func.sum(Narrative.tokens_in + Narrative.tokens_out), 0)).where(
            Narrative.tenant_id == tenant_id,
            Narrative.created_at >= start,
            Narrative.created_at < end,
        )
    )
    held = session.scalar(
        select(func.coalesce(func.sum(TokenReservation.tokens), 0)).where(
            TokenReservation.tenant_id == tenant_id,
            TokenReservation.month == month,
            TokenReservation.created_at >= now() - RESERVATION_TTL,
        )
    )
    return int(stored or 0) + int(held or 0)


def reserve(
    session: Session, tenant_id: int, budget: int, tokens: int, at: datetime
) -> Reservation:
    """Reserve `tokens` for one call unless the month's budget is already reached."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    if engine.dialect.name != "postgresql":
        spent = _spent(session, tenant_id, at)
        return Reservation(refused=spent >= budget, spent=spent)
    with unit_of_work(engine) as other:
        if other.get(Tenant, tenant_id) is None:
            # created by the caller's open transaction: no other worker can see it yet
            spent = _spent(session, tenant_id, at)
            return Reservation(refused=spent >= budget, spent=spent)
        other.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :id)"),
            {"ns": _LOCK_NAMESPACE, "id": tenant_id & 0x7FFFFFFF},
        )
        # the caller's own unsettled narratives are still counted at their reservation
        spent = _spent(other, tenant_id, at)
        if spent >= budget:
            return Reservation(refused=True, spent=spent)
        row = TokenReservation(
            tenant_id=tenant_id, month=_month(at)[2], tokens=tokens, created_at=now()
        )
        other.add(row)
        other.flush()
        return Reservation(refused=False, spent=spent, id=row.id)


def settle(session: Session, reservation: Reservation, tokens_used: int) -> None:
    """Replace the reservation by the real usage (call after writing the narrative row)."""
    if reservation.id is None:
        return
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    with unit_of_work(engine) as other:
        other.execute(
            update(TokenReservation)
            .where(TokenReservation.id == reservation.id)
            .values(tokens=tokens_used)
        )
    session.execute(delete(TokenReservation).where(TokenReservation.id == reservation.id))
