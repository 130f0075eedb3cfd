"""Closed windows' metric documents served from stored snapshots, invalidated by new data.

A metrics read of a window that has ended (`window.end <= now`) stores its JSON document as a
metric snapshot (`metric_snapshots`, scope kind `read:<kind>`) tagged with the tenant's *data
version*. The next read of the same scope and window returns those bytes without loading the
tenant's history, as long as the version is unchanged.

The data version (`registry_state`, key `data-version:<tenant id>`) goes up in the same
transaction as every write that can change a metric: stored delivery records (new or updated,
late or not: `pipeline.store_events`, the one path every source writes through), records a
source no longer has (`TenantRepository.delete_deployments`/`delete_incidents`/
`clear_service_records`) and registry changes (a service's team or production pattern).
A snapshot computed from data read before a concurrent write carries the older version, so it
is never served after that write commits.
Windows still open are always computed.

Example:
    version = data_version(session, tenant_id)
    body = cached(session, tenant_id, scope, window, version)     # None: compute, then `store`
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights.metrics.result import Scope, Window
from insights.store.models import MetricSnapshot, RegistryState
from insights.timeutil import now

PREFIX = "read:"


def _key(tenant_id: int) -> str:
    return f"data-version:{tenant_id}"


def data_version(session: Session, tenant_id: int) -> int:
    """The tenant's data version (0 before its first write)."""
    value = session.scalar(select(RegistryState.value).where(RegistryState.key == _key(tenant_id)))
    return int(value) if value else 0


def bump(session: Session, tenant_id: int) -> None:
    """Invalidate every stored read of the tenant (call inside the writing transaction, last:
    it holds the tenant's version row lock until commit, so increments never collide)."""
    key = _key(tenant_id)
    row = session.get(RegistryState, key, with_for_update=True)
    if row is not None:
        row.value, row.updated_at = str(int(row.value) + 1), now()
        session.flush()
        return
    try:
        with session.begin_nested():
            session.add(RegistryState(key=key, value="1", updated_at=now()))
    except IntegrityError:  # a concurrent first write created it: bump that one
        bump(session, tenant_id)


def cached(
    session: Session, tenant_id: int, scope: Scope, window: Window, version: int
) -> str | None:
    """The stored document of a closed window at `version`, or None."""
    if window.end > now():
        return None
    data = session.scalar(
        select(MetricSnapshot.data).where(
            MetricSnapshot.tenant_id == tenant_id,
            MetricSnapshot.scope_kind == PREFIX + scope.kind,
            MetricSnapshot.scope_name == scope.name,
            MetricSnapshot.window_start == window.start,
            MetricSnapshot.window_end == window.end,
        )
    )
    if not data or data.get("version") != version:
        return None
    body = data.get("body")
    return body if isinstance(body, str) else None


def store(
    session: Session, tenant_id: int, scope: Scope, window: Window, version: int, body: str
) -> None:
    """Keep `body` for the next read of this closed window (no-op for an open window)."""
    if window.end > now():
        return
    kind = PREFIX + scope.kind
    session.execute(
        delete(MetricSnapshot).where(
            MetricSnapshot.tenant_id == tenant_id,
            MetricSnapshot.scope_kind == kind,
            MetricSnapshot.scope_name == scope.name,
            MetricSnapshot.window_start == window.start,
            MetricSnapshot.window_end == window.end,
        )
    )
    try:
        with session.begin_nested():
            session.add(
                MetricSnapshot(
                    tenant_id=tenant_id,
                    scope_kind=kind,
                    scope_name=scope.name,
                    window_start=window.start,
                    window_end=window.end,
                    data={"version": version, "body": body},
                    computed_at=now(),
                )
            )
    except IntegrityError:
        pass  # a concurrent read stored the same window first
