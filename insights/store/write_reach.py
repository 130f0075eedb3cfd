"""How far back a write reaches: the earliest time from which a service's metric results may
differ because some of its records were written or deleted.

`reach(repo, service_id, keys)` answers for the records named by `keys` (commit shas, change,
deployment and incident ids) in the database as it is now; a writer asks before and after its
write and keeps the earlier answer (`pipeline.store_events`), a delete asks before it. Stored
reads of windows ending at or before the answer stay valid (`store/read_cache.py`). The bound
follows the rules of `metrics/` (each item: which results a record can change):

- a successful production deployment finished at f (any other changes no metric by itself):
  its own results, every later one (rollbacks, first shipments, first runs of a sha), the
  production deployment before it in its environment (rolled back, recovered by it) and in
  its service (the incidents opened after f were blamed on that one), and, whatever its
  environment, the deployments blamed for incidents linked to its id (they fall back to the
  last one before the incident opened): min(f, those deployments' finish, those incidents'
  opening);
- an incident opened at o: the deployment it is blamed on (its link, or the last production
  deployment before o), later deployments (rework during it), the window counting it;
- a change: the window it is deployed in, no earlier than the first deployment listing its
  merge sha or one of its commits, and the window of its opening (recorded counts);
- a commit: every deployment listing it (its lead time), the window of its commit time.

Where no bound follows from the listed rows, the answer is `BEGINNING` (every window): a
service whose shipped commits come from the commit graph (for commits and changes: any
deployment's ancestry may reach them), a service with reverts (the reverted deployment may lie
anywhere), a production pattern that is not a regex, a record without a time (it counts as
before every window end).

Example:
    before = reach(repo, service.id, keys)
    repo.upsert_deployments(service.id, events)
    at = earliest(before, reach(repo, service.id, keys))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, and_, func, select

from insights.store.models import Change, Commit, Deployment, DeploymentCommit, Incident, Service
from insights.store.read_cache import BEGINNING
from insights.store.repository import TenantRepository
from insights.store.window_read import _Reader


@dataclass
class Keys:
    """The records a write touches, by natural key within one service."""

    shas: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    # every sha was inserted by this write, the earliest committed then: their stored times
    # need no query (a bulk ingest's batch, asked after its one COPY)
    inserted_from: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.shas or self.changes or self.deployments or self.incidents)


def earliest(*times: datetime | None) -> datetime | None:
    """The earliest of `times` that are known (None: none is)."""
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _chunks(values: Sequence[str] | Sequence[int], size: int = 5000) -> Iterable[list[Any]]:
    """`values` without repeats, sorted, in slices of at most `size`."""
    ordered: list[Any] = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def reach(repo: TenantRepository, service_id: int, keys: Keys) -> datetime | None:
    """The earliest time whose results of `service_id` the records `keys` name can change, as
    the database stands now (None: they change nothing that is stored now)."""
    if not keys:
        return None
    session = repo.session
    service = session.get(Service, service_id)
    if service is None:
        return BEGINNING
    try:
        return _reach(repo, service, keys)
    except _Unbounded:
        return BEGINNING


class _Unbounded(Exception):
    """No bound follows from the rows (reverts, a pattern that is not a regex)."""


def _reach(repo: TenantRepository, service: Service, keys: Keys) -> datetime | None:
    session, t, service_id = repo.session, repo.tenant_id, service.id
    known: list[_Reader] = []

    def facts() -> _Reader:
        """The service's production filter, read only when a stored row needs it (a batch of
        new commits needs none)."""
        if not known:
            reader = _Reader(repo, [service.name], [service])
            if not reader.production_pairs() or reader.has_reverts():
                raise _Unbounded
            known.append(reader)
        return known[0]

    d, i = Deployment, Incident
    mine = and_(d.tenant_id == t, d.service_id == service_id)

    def before(at: datetime | None, environment: str | None = None) -> datetime | None:
        """When the last production deployment before `at` finished (in `environment`)."""
        if at is None:
            return None
        reader = facts()
        where = [reader.prod(), d.service_id == service_id, d.finished_at < at]
        if environment is not None:
            if environment not in reader.prod_envs.get(service_id, []):
                return None
            where.append(d.environment == environment)
        return session.scalar(select(func.max(d.finished_at)).where(*where))

    def graph() -> bool:
        return (
            session.scalar(select(d.id).where(mine, d.commits_listed.is_(False)).limit(1))
            is not None
        )

    def first_listing(shas: Sequence[str]) -> datetime | None:
        """When the first deployment of the service listing one of `shas` finished.

        Two lookups by index (the links by sha, then those deployments by id) rather than a
        join: while a table fills faster than it is analyzed, PostgreSQL planned the join as a
        loop over every deployment of the service (0.2 s a batch of 1,000 events, most of an
        API write)."""
        dc = DeploymentCommit
        found: list[datetime | None] = []
        for chunk in _chunks(shas):
            ids = [
                int(x)
                for x in session.scalars(
                    select(dc.deployment_id).where(
                        dc.tenant_id == t, repo._in(dc.sha, chunk, String)
                    )
                )
            ]
            for part in _chunks(ids):
                found.append(
                    session.scalar(
                        select(func.min(d.finished_at)).where(
                            mine, repo._in(d.id, part, BigInteger)
                        )
                    )
                )
        return earliest(*found)

    times: list[datetime | None] = []
    for chunk in _chunks(keys.deployments):
        # only successful production deployments count for the metrics: one to staging, or
        # one that failed, reaches nothing by its own time (asked before and after, a status
        # or environment that changes either way still counts)
        rows = session.execute(
            select(d.environment, func.min(d.finished_at))
            .where(mine, facts().prod(), repo._in(d.external_id, chunk, String))
            .group_by(d.environment)
        ).all()
        for environment, finished in rows:
            times += [finished, before(finished, environment), before(finished)]
        opened = session.scalar(
            select(func.min(i.opened_at)).where(
                i.tenant_id == t,
                i.service_id == service_id,
                repo._in(i.deployment_external_id, chunk, String),
            )
        )
        times += [opened, before(opened)]
    for chunk in _chunks(keys.incidents):
        of_these = and_(
            i.tenant_id == t, i.service_id == service_id, repo._in(i.external_id, chunk, String)
        )
        opened, unknown = session.execute(
            select(func.min(i.opened_at), func.count().filter(i.opened_at.is_(None))).where(
                of_these
            )
        ).one()
        if unknown:
            return BEGINNING
        linked = sorted(
            {
                str(x)
                for x in session.scalars(
                    select(i.deployment_external_id).where(
                        of_these, i.deployment_external_id.is_not(None)
                    )
                )
            }
        )
        blamed = (
            session.scalar(
                select(func.min(d.finished_at)).where(mine, repo._in(d.external_id, linked, String))
            )
            if linked
            else None
        )
        times += [opened, before(opened), blamed]
    if keys.changes or keys.shas:
        is_graph: bool | None = None
        c = Change
        for chunk in _chunks(keys.changes):
            rows = session.execute(
                select(c.opened_at, c.merge_sha, c.commits).where(
                    c.tenant_id == t,
                    c.service_id == service_id,
                    repo._in(c.external_id, chunk, String),
                )
            ).all()
            if not rows:
                continue
            facts()
            is_graph = graph() if is_graph is None else is_graph
            if is_graph or any(r[0] is None for r in rows):
                return BEGINNING
            shas = [h for r in rows for h in [r[1], *(r[2] or [])] if h is not None]
            times += [min(r[0] for r in rows), first_listing(shas)]
        for chunk in _chunks(keys.shas):
            if keys.inserted_from is not None:
                committed, count, unknown = keys.inserted_from, len(chunk), 0
            else:
                committed, count, unknown = session.execute(
                    select(
                        func.min(Commit.committed_at),
                        func.count(),
                        func.count().filter(Commit.committed_at.is_(None)),
                    ).where(
                        Commit.tenant_id == t,
                        Commit.service_id == service_id,
                        repo._in(Commit.sha, chunk, String),
                    )
                ).one()
            if not count:  # none stored: as if absent (the other side of the write asks)
                continue
            facts()
            is_graph = graph() if is_graph is None else is_graph
            if is_graph or unknown:
                return BEGINNING
            times += [committed, first_listing(chunk)]
    return earliest(*times)


def keys_of(events: Iterable[Any]) -> Keys:
    """The natural keys of a batch of events of one service."""
    from insights.model import ChangeEvent, CommitEvent, DeploymentEvent, IncidentEvent

    keys = Keys()
    for event in events:
        if isinstance(event, CommitEvent):
            keys.shas.append(event.sha)
        elif isinstance(event, ChangeEvent):
            keys.changes.append(event.id)
        elif isinstance(event, DeploymentEvent):
            keys.deployments.append(event.id)
        elif isinstance(event, IncidentEvent):
            keys.incidents.append(event.id)
    return keys
