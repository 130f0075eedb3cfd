"""Closed windows' metric results served from stored snapshots, invalidated by the writes that
reach them.

Two kinds of stored reads, both in `metric_snapshots`:
- documents (scope kind `read:<kind>`): a closed window's JSON document, returned as stored by
  `GET /api/v1/metrics`;
- window results (scope kind `window:<kind>`): one closed window's metrics and verdict sample,
  so a report computes from rows only the windows whose results are not stored (the window
  still open, usually), and its previous window and baseline come from here.

Each is tagged with the tenant's *data version* (`registry_state`, key `data-version:<tenant
id>`) read before it was computed. The version goes up in the same transaction as every write
that can change a metric (`pipeline.store_events`, the one path every source writes through;
`TenantRepository.delete_deployments`/`delete_incidents`/`clear_service_records`; registry
changes), and that transaction records the write's *reach* (`metric_writes`): per service, the
earliest time from which results may differ (`store/write_reach.py`; for a registry change,
every service from the beginning). A stored read of a window ending at `end` stays valid while
every write after its version reaches no earlier than `end` for a service of its scope: a
deployment recorded today leaves last month's results alone, a late incident blamed on a
deployment of last month invalidates that month and what follows.

A read computed from data read before a concurrent write carries the older version, so that
write's reach is checked against it. Reaches are kept for the last `KEEP` versions; an older
stored read is stale.

A window still open keeps its document too (its metrics are a function of the stored rows,
not of the clock): every write into it reaches before its end, so the document serves the
reads between two writes of the scope's services (a dashboard polling the current week) and
the next write's read computes again. Window results are kept for closed windows only.

Example:
    version = data_version(session, tenant_id)
    body = cached(session, tenant_id, scope, window, version, service_ids)  # None: compute
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights.metrics.result import Scope, Window
from insights.store.models import MetricSnapshot, MetricWrite, RegistryState
from insights.timeutil import now

PREFIX = "read:"
WINDOW_PREFIX = "window:"
KEEP = 1000  # versions whose reach is kept
BEGINNING = datetime(1, 1, 1, tzinfo=UTC)  # a reach before any window: everything is stale


def _key(tenant_id: int) -> str:
    return f"data-version:{tenant_id}"


def data_version(session: Session, tenant_id: int) -> int:
    """The tenant's data version (0 before its first write)."""
    value = session.scalar(select(RegistryState.value).where(RegistryState.key == _key(tenant_id)))
    return int(value) if value else 0


def bump(
    session: Session, tenant_id: int, reach: Mapping[int | None, datetime] | None = None
) -> None:
    """Invalidate the stored reads this write reaches (call inside the writing transaction,
    last: it holds the tenant's version row lock until commit, so increments never collide).
    `reach`: per service id, the earliest time whose results may change (None as the key:
    every service); omitted: every stored read of the tenant is stale."""
    key = _key(tenant_id)
    row = session.get(RegistryState, key, with_for_update=True)
    if row is not None:
        version = int(row.value) + 1
        row.value, row.updated_at = str(version), now()
        session.flush()
    else:
        try:
            with session.begin_nested():
                session.add(RegistryState(key=key, value="1", updated_at=now()))
        except IntegrityError:  # a concurrent first write created it: bump that one
            bump(session, tenant_id, reach)
            return
        version = 1
    reach = {None: BEGINNING} if reach is None else reach
    session.add_all(
        MetricWrite(tenant_id=tenant_id, version=version, service_id=s, affected_from=at)
        for s, at in reach.items()
    )
    session.execute(
        delete(MetricWrite).where(
            MetricWrite.tenant_id == tenant_id, MetricWrite.version <= version - KEEP
        )
    )
    session.flush()


def reach_since(
    session: Session, tenant_id: int, version: int, current: int, service_ids: Collection[int]
) -> datetime | None:
    """The earliest time that writes after `version` reach in `service_ids` (None: none
    reaches them; `BEGINNING` when `version` is older than the kept reaches)."""
    if version >= current:
        return None
    if current - version >= KEEP:
        return BEGINNING
    w = MetricWrite
    return session.scalar(
        select(func.min(w.affected_from)).where(
            w.tenant_id == tenant_id,
            w.version > version,
            or_(w.service_id.is_(None), w.service_id.in_(list(service_ids))),
        )
    )


def _valid(
    session: Session,
    tenant_id: int,
    stored_version: Any,
    current: int,
    service_ids: Collection[int],
    end: datetime,
) -> bool:
    if not isinstance(stored_version, int):
        return False
    reach = reach_since(session, tenant_id, stored_version, current, service_ids)
    return reach is None or reach >= end


def cached(
    session: Session,
    tenant_id: int,
    scope: Scope,
    window: Window,
    version: int,
    service_ids: Collection[int],
) -> str | None:
    """The stored document of `window`, if no write since reaches it; or None."""
    data = session.scalar(
        select(MetricSnapshot.data).where(
            MetricSnapshot.tenant_id == tenant_id,
            MetricSnapshot.scope_kind == PREFIX + scope.kind,
            MetricSnapshot.scope_name == scope.name,
            MetricSnapshot.window_start == window.start,
            MetricSnapshot.window_end == window.end,
        )
    )
    if not data:
        return None
    if not _valid(session, tenant_id, data.get("version"), version, service_ids, window.end):
        return None
    body = data.get("body")
    return body if isinstance(body, str) else None


def _put(
    session: Session, tenant_id: int, kind: str, scope: Scope, window: Window, data: dict
) -> None:
    """Store `data` for the window, replacing what is stored (one upsert: a concurrent read
    of the same window may have stored it first; either is valid for its own version)."""
    from insights.store.repository import _insert

    table = MetricSnapshot.__table__
    stmt = _insert(session, table).values(
        tenant_id=tenant_id,
        scope_kind=kind,
        scope_name=scope.name,
        window_start=window.start,
        window_end=window.end,
        data=data,
        computed_at=now(),
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "scope_kind", "scope_name", "window_start", "window_end"],
            set_={"data": stmt.excluded.data, "computed_at": stmt.excluded.computed_at},
        )
    )


def store(
    session: Session, tenant_id: int, scope: Scope, window: Window, version: int, body: str
) -> None:
    """Keep `body` for the next read of `window`."""
    _put(session, tenant_id, PREFIX + scope.kind, scope, window, {"version": version, "body": body})


def window_results(
    session: Session,
    tenant_id: int,
    scope: Scope,
    windows: Sequence[Window],
    version: int,
    service_ids: Collection[int],
) -> dict[tuple[datetime, datetime], dict]:
    """The stored results of those of `windows` (closed) that no write since reaches, by
    (start, end): each `{"metrics": …, "sample": …}` as `store_window_results` kept it."""
    closed = [w for w in windows if w.end <= now()]
    if not closed:
        return {}
    s = MetricSnapshot
    rows = session.execute(
        select(s.window_start, s.window_end, s.data).where(
            s.tenant_id == tenant_id,
            s.scope_kind == WINDOW_PREFIX + scope.kind,
            s.scope_name == scope.name,
            tuple_(s.window_start, s.window_end).in_([(w.start, w.end) for w in closed]),
        )
    ).all()
    found = {(a, b): data for a, b, data in rows if isinstance(data, dict)}
    if not found:
        return {}
    versions = {d.get("version") for d in found.values()}
    if not all(isinstance(v, int) for v in versions):
        return {}
    oldest = min(versions)  # type: ignore[type-var]
    reach = reach_since(session, tenant_id, oldest, version, service_ids)
    out = {}
    for (start, end), data in found.items():
        if reach is None or reach >= end:  # the writes after the oldest version count
            fresh = True
        elif data["version"] == oldest:
            fresh = False
        else:  # a newer entry: only the writes after its own version count
            fresh = _valid(session, tenant_id, data["version"], version, service_ids, end)
        if fresh:
            out[(start, end)] = data
    return out


def store_window_results(
    session: Session,
    tenant_id: int,
    scope: Scope,
    window: Window,
    version: int,
    results: dict,
) -> None:
    """Keep one closed window's results (no-op for an open window)."""
    if window.end > now():
        return
    _put(
        session,
        tenant_id,
        WINDOW_PREFIX + scope.kind,
        scope,
        window,
        {"version": version, **results},
    )
