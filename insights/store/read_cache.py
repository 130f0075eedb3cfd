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

A read looks up its document and its earlier windows' results in one query, and their
validity in one (`stored_reads`); what it computes is kept in one upsert (`store`).

Example:
    version = data_version(session, tenant_id)
    found = stored_reads(session, tenant_id, scope, window, earlier, version, service_ids)
    if found.body is None:  # compute, from found.windows and the rows of the rest
        store(session, tenant_id, scope, [document(window, version, body)])
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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
    return _reaches(session, tenant_id, [version], current, service_ids)[version]


def _reaches(
    session: Session,
    tenant_id: int,
    versions: Collection[int],
    current: int,
    service_ids: Collection[int],
) -> dict[int, datetime | None]:
    """`reach_since` for each of `versions`, in one query (a filtered minimum each)."""
    out: dict[int, datetime | None] = {}
    asked = []
    for version in sorted(set(versions)):
        if version >= current:
            out[version] = None
        elif current - version >= KEEP:
            out[version] = BEGINNING
        else:
            asked.append(version)
    if asked:
        w = MetricWrite
        found = session.execute(
            select(*(func.min(w.affected_from).filter(w.version > v) for v in asked)).where(
                w.tenant_id == tenant_id,
                w.version > asked[0],
                or_(w.service_id.is_(None), w.service_id.in_(list(service_ids))),
            )
        ).one()
        out.update(zip(asked, found, strict=True))
    return out


@dataclass(frozen=True)
class StoredReads:
    """What a read finds stored and valid: the document of its window (None: compute it) and
    the results of earlier closed windows, by (start, end)."""

    body: str | None
    windows: dict[tuple[datetime, datetime], dict]


def stored_reads(
    session: Session,
    tenant_id: int,
    scope: Scope,
    window: Window | None,
    windows: Sequence[Window],
    version: int,
    service_ids: Collection[int],
) -> StoredReads:
    """The stored document of `window` (none asked: None) and the stored results of those of
    `windows` that are closed, each if no write since its version reaches it: one query for
    the rows, one for the reach of the writes since their versions."""
    closed = [w for w in windows if w.end <= now()]
    spans = {(w.start, w.end) for w in closed}
    if window is not None:
        spans.add((window.start, window.end))
    if not spans:
        return StoredReads(None, {})
    s = MetricSnapshot
    kinds = [WINDOW_PREFIX + scope.kind, *([PREFIX + scope.kind] if window is not None else [])]
    rows = session.execute(
        select(s.scope_kind, s.window_start, s.window_end, s.data).where(
            s.tenant_id == tenant_id,
            s.scope_kind.in_(kinds),
            s.scope_name == scope.name,
            tuple_(s.window_start, s.window_end).in_(sorted(spans)),
        )
    ).all()
    found = [
        (kind, (start, end), data)
        for kind, start, end, data in rows
        if isinstance(data, dict) and isinstance(data.get("version"), int)
    ]
    reaches = _reaches(session, tenant_id, [d["version"] for *_, d in found], version, service_ids)
    body: str | None = None
    results: dict[tuple[datetime, datetime], dict] = {}
    wanted = {(w.start, w.end) for w in closed}
    for kind, (start, end), data in found:
        reach = reaches[data["version"]]
        if reach is not None and reach < end:  # a write since reaches it: stale
            continue
        if (
            kind == PREFIX + scope.kind
            and window is not None
            and (start, end)
            == (
                window.start,
                window.end,
            )
        ):
            body = data["body"] if isinstance(data.get("body"), str) else None
        elif kind == WINDOW_PREFIX + scope.kind and (start, end) in wanted:
            results[(start, end)] = data
    return StoredReads(body, results)


@dataclass(frozen=True)
class Stored:
    """One entry to keep: a document (`kind` PREFIX, `data` {"body": …}) or a closed window's
    results (`kind` WINDOW_PREFIX)."""

    kind: str
    window: Window
    version: int
    data: dict


def document(window: Window, version: int, body: str) -> Stored:
    """A window's JSON document, to keep with `store`."""
    return Stored(PREFIX, window, version, {"body": body})


def window_entry(window: Window, version: int, results: dict) -> Stored | None:
    """One window's results to keep with `store` (None for a window still open: only closed
    windows keep results)."""
    if window.end > now():
        return None
    return Stored(WINDOW_PREFIX, window, version, results)


def store(session: Session, tenant_id: int, scope: Scope, entries: Sequence[Stored]) -> None:
    """Keep `entries` (documents and window results) for the next reads, replacing what is
    stored: one upsert (a concurrent read of the same window may have stored it first;
    either is valid for its own version)."""
    from insights.store.repository import _insert

    if not entries:
        return
    table = MetricSnapshot.__table__
    at = now()
    stmt = _insert(session, table).values(
        [
            {
                "tenant_id": tenant_id,
                "scope_kind": e.kind + scope.kind,
                "scope_name": scope.name,
                "window_start": e.window.start,
                "window_end": e.window.end,
                "data": {"version": e.version, **e.data},
                "computed_at": at,
            }
            for e in entries
        ]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "scope_kind", "scope_name", "window_start", "window_end"],
            set_={"data": stmt.excluded.data, "computed_at": stmt.excluded.computed_at},
        )
    )
