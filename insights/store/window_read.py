"""Window-bounded delivery frames: the rows a span of windows' metrics need, not the history.

`window_frames(repo, services, start, end)` loads what `metrics.compute.prepare` needs so that
every production deployment finished in [start, end) gets exactly the results a whole-history
preparation gives it (failed, rolled back, rework, recovery, the lead time of what it ships,
the changes it deploys). `start` is the start of the oldest window a report reads (the
baseline's first window), `end` the end of its current window. It loads:

- core: every production deployment finished in [start, end), with its listed commits and the
  commit rows of those shas (their `committed_at`, however old);
- next: per service + environment, the first production deployment finished at or after `end`
  (it decides whether the last core one was rolled back);
- around the core, real rows only, each a small query: per service + environment the last
  production deployment before `start` (the first core one's predecessor: `env_pos`, rollback,
  `is_rollback`); per service its first production deployment (`first_deployment_ns`); per sha
  that a loaded deployment runs, the first production deployment of it (redeploys and
  rollbacks); per sha a core deployment lists, the earlier production deployments listing it
  (a commit counts once, at its first shipment, in any production environment);
- incidents: those opened in [start, T] where T is the service's first production deployment
  at or after `end` (an unlinked incident opened later cannot be blamed on a core deployment),
  those still open at `start`, and those linked to a loaded deployment; plus the deployments
  they are blamed on (their link, or the last production deployment before they opened);
- changes: the merged ones whose merge sha, or one of whose listed commits, a core deployment
  lists (index lookups: `changes.merge_sha`, `change_commits.sha`); a change deploys with its
  merge sha's first shipment, else its last listed commit's, so one deployed inside the span
  is among them, whenever it was merged; then every production deployment listing any of
  their commits (but those only their core link lists), so when each change was deployed is
  the whole history's answer.
- reverts: every revert commit (with the sha its message reverts) and every reverting change
  of the scope (partial indexes: usually few), the changes they revert (by id, and every
  change carrying the reverted title), and every production deployment listing a revert
  commit, a reverted sha or a commit of those changes: which deployment first shipped a
  reverted change, and when its revert reached production, wherever either lies;
- commits: the rows of the shas loaded deployments list (`committed_at`, however old); no
  `parents`, which only the commit-graph rule reads.

Rows outside the core keep their real values, and the metrics read only windows inside
[start, end), so any result a row outside the core gets for itself is never shown.

Where the rows cannot be bounded exactly this way, the answer is None and the caller reads the
whole history (`TenantRepository.delivery_frames`): a service whose shipped commits come from
the commit graph (a deployment without listed commits that is not the first of its
environment: the graph rule needs every earlier deployment's ancestry), or a production
pattern that is not a regex (the whole-history path reports it).

`pipeline.compute_report` uses it for `insights metrics` and `GET /api/v1/metrics`, over the
span from the first window whose stored results are missing or stale (`store/read_cache.py`)
to the end of the asked one; the report's `recorded` counts come from the database
(`recorded_before`, `recorded_between`), since they cover the whole history before the window
end. The reads go through the session's connection (Core rows) and combine what they can: the
core deployments, those at the span's edges and the scope's first in one query
(`deployments_around`); the incidents in one; the changes in one; the check for reverts and
for rows the screen skips in one for four tables; keys by service as one array parameter each
(`pairs_in`). Reports of every scope at once (`compute_all`, `insights report`) still prepare
the whole history once.

Example:
    bounded = window_frames(repo, ["checkout"], baseline_start, window.end)
    frames = bounded.frames or repo.delivery_frames(["checkout"])
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    DateTime,
    String,
    and_,
    bindparam,
    exists,
    false,
    func,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
    union,
)
from sqlalchemy.orm import aliased

from insights.metrics.revert_markers import reverted_sha, reverted_title
from insights.store.models import (
    POISONED_CHANGES,
    POISONED_DEPLOYMENTS,
    POISONED_INCIDENTS,
    REVERT_CHANGES,
    REVERT_COMMITS,
    Change,
    ChangeCommit,
    Commit,
    Deployment,
    DeploymentCommit,
    Incident,
    Service,
    Team,
)
from insights.store.repository import (
    CHANGE_COLUMNS,
    DeliveryFrames,
    TenantRepository,
    set_local,
)
from insights.timeutil import EARLIEST, LATEST

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Bounded:
    """The frames of a bounded read, or why there are none (`reason`: whole history needed)."""

    frames: DeliveryFrames | None
    reason: str | None = None


def _chunks(values: Sequence[Any], size: int = 5000) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _Reader:
    def __init__(
        self,
        repo: TenantRepository,
        services: Sequence[str],
        service_rows: Sequence[Service] | None = None,
    ) -> None:
        self.repo = repo
        self.session = repo.session
        repo.session.flush()  # the reads below go through the connection (no autoflush)
        # Core execution: the ORM's per-statement layer costs more than these small reads
        self.conn = repo.session.connection()
        self.t = repo.tenant_id
        rows = (
            list(service_rows)
            if service_rows is not None
            else list(self.session.scalars(repo.scoped(Service).where(Service.name.in_(services))))
        )
        self.service_rows = rows
        self.names = {s.id: s.name for s in rows}
        self.ids = list(self.names)
        self.prod_envs: dict[int, list[str]] = {}
        self._prod: Any = None
        self._poisoned: set[str] | None = None

    # -- the production filter, in SQL -------------------------------------------------------

    def production_pairs(self) -> bool:
        """Which (service, environment) pairs are production; False: a pattern is no regex."""
        patterns = {s.id: s.production_pattern for s in self.service_rows}
        for service_id, environment in self.environments():
            try:
                if re.search(patterns[service_id], environment) is not None:
                    self.prod_envs.setdefault(service_id, []).append(environment)
            except re.error:
                return False
        return True

    def environments(self) -> list[tuple[int, str]]:
        """(service id, environment) of every successful deployment of the scope, distinct.
        On PostgreSQL a loose index scan (0009's status + environment index): one probe per
        environment instead of reading every deployment."""
        if self.session.get_bind().dialect.name != "postgresql":
            d = Deployment
            return [
                (int(s), str(e))
                for s, e in self.conn.execute(
                    select(d.service_id, d.environment)
                    .where(d.tenant_id == self.t, d.service_id.in_(self.ids), d.status == "success")
                    .distinct()
                ).all()
            ]
        rows = self.conn.execute(
            text(_ENVIRONMENTS), {"tenant": self.t, "services": list(self.ids)}
        ).all()
        return [(int(s), str(e)) for s, e in rows]

    def prod(self, d: Any = Deployment) -> Any:
        """Successful production deployments the engine keeps (as `screen` + `production`)."""
        if d is Deployment:  # built once: every query of the read filters by it
            if self._prod is None:
                self._prod = self._production(d)
            return self._prod
        return self._production(d)

    def _production(self, d: Any) -> Any:
        return _production_filter(d, self.t, self._envs_key())

    def _envs_key(self) -> tuple[tuple[int, tuple[str, ...]], ...]:
        return tuple((s, tuple(envs)) for s, envs in self.prod_envs.items())

    # -- guards --------------------------------------------------------------------------------

    def graph_derived(self) -> bool:
        """Does a production deployment that is not its environment's first lack listed commits?"""
        d = Deployment
        unlisted = self.conn.execute(
            select(d.service_id, d.environment, func.count(), func.min(d.finished_at))
            .where(self.prod(), d.commits_listed.is_(False))
            .group_by(d.service_id, d.environment)
        ).all()
        for service_id, environment, count, first_unlisted in unlisted:
            if count > 1:
                return True
            earliest = self.conn.scalar(
                select(func.count()).where(
                    self.prod(),
                    d.service_id == service_id,
                    d.environment == environment,
                    d.finished_at <= first_unlisted,
                )
            )
            if earliest != 1:  # the unlisted one is not alone first in its environment
                return True
        return False

    def has_reverts(self) -> bool:
        """Is there a revert commit or a reverting change in the scope? (One query: two
        probes of the partial indexes whose predicates these are, literally.)"""
        found = self.conn.execute(select(*self._reverts_found())).one()
        return bool(found[0] or found[1])

    def has_reverts_screened(self) -> bool:
        """`has_reverts`, and in the same query which tables hold rows the screen skips
        (what `poisoned` then loads)."""
        dialect = self.session.get_bind().dialect.name
        counts = _poisoned_counts(dialect, self.t, tuple(self.ids))
        found = self.conn.execute(select(*self._reverts_found(), *counts)).one()
        self._poisoned = {m.__name__ for m, f in zip(_SCREENED_MODELS, found[2:], strict=True) if f}
        return bool(found[0] or found[1])

    def _reverts_found(self) -> tuple[Any, Any]:
        commits = select(Commit.id).where(
            Commit.tenant_id == self.t, Commit.service_id.in_(self.ids), text(REVERT_COMMITS)
        )
        changes = select(Change.id).where(
            Change.tenant_id == self.t,
            Change.service_id.in_(self.ids),
            text(f"({REVERT_CHANGES})"),
        )
        return exists(commits), exists(changes)

    # -- deployments ------------------------------------------------------------------------

    def _deployment_rows(self, condition: Any) -> list[tuple]:
        return list(
            self.conn.execute(select(*_DEPLOYMENT_COLUMNS).where(self.prod(), condition)).all()
        )

    def deployments_around(self, start: datetime, end: datetime) -> list[tuple]:
        """In one query: every production deployment finished in [start, end) (the core),
        and per (service, environment) those at the last finish time before `start` and at
        the first at or after `end`, and per service those at its first finish time. Each
        time is an index lookup (a subquery on an alias: no correlation with the outer
        rows). The rows at or after `end` are the successors of each environment's last core
        deployment (`nxt`: rolled back or not). The statement is built once per tenant and
        production environments (`_around_statement`)."""
        if not self.prod_envs:
            return []
        statement = _around_statement(self.t, self._envs_key())
        return list(self.conn.execute(statement, {"around_start": start, "around_end": end}).all())

    def first_runs(self, pairs: set[tuple[int, str]]) -> list[tuple]:
        """For (service id, sha) pairs: the production deployments at the first finish time of
        that sha in that service (all rows tied at it)."""
        d = Deployment
        out: list[tuple] = []
        for chunk in _chunks(sorted(pairs)):
            firsts = (
                select(d.service_id, d.sha, func.min(d.finished_at))
                .where(self.prod(), self.pairs_in(d.service_id, d.sha, chunk))
                .group_by(d.service_id, d.sha)
            )
            out += self._deployment_rows(tuple_(d.service_id, d.sha, d.finished_at).in_(firsts))
        return out

    def listers(
        self, pairs: set[tuple[int, str]], before: datetime | None = None
    ) -> tuple[list[tuple], list[tuple[int, str]]]:
        """Production deployments (finished before `before`, if given) listing any of the
        (service id, sha) pairs, and those links."""
        d, dc = Deployment, DeploymentCommit
        links: list[tuple[int, str]] = []
        for chunk in _chunks(sorted(pairs)):
            links += [
                (int(i), str(h))
                for i, h in self.conn.execute(
                    select(dc.deployment_id, dc.sha)
                    .join(d, and_(d.id == dc.deployment_id, d.tenant_id == dc.tenant_id))
                    .where(
                        dc.tenant_id == self.t,
                        self.pairs_in(d.service_id, dc.sha, chunk),
                        self.prod(),
                        d.commits_listed.is_(True),
                        *([d.finished_at < before] if before is not None else []),
                    )
                ).all()
            ]
        ids = sorted({i for i, _ in links})
        rows: list[tuple] = []
        for chunk in _chunks(ids):
            rows += self._deployment_rows(Deployment.id.in_(list(chunk)))
        return rows, links

    def core_statements(self) -> tuple[Any, Any]:
        """`_core_statements` of this scope (parameters `core_start`, `core_end`)."""
        return _core_statements(self.t, self._envs_key(), tuple(self.ids))

    def open_at(self) -> tuple[Any, ...]:
        """`_open_at` for this scope: incidents open at the parameter `open_start`."""
        return _open_at(self.session.get_bind().dialect.name, self.t, tuple(self.ids))

    def _poisoned_where(self, model: Any) -> Any:
        dialect = self.session.get_bind().dialect.name
        return _poisoned_where(model, dialect, self.t, tuple(self.ids))

    def poisoned(self, model: Any, columns: Sequence[Any]) -> list:
        """Rows of `model` the engine's screen skips (a time outside the accepted range, a
        negative duration): loaded so that it warns about them as the whole-history read
        does; they count for nothing. (Deployments, changes and incidents on PostgreSQL: the
        text of their partial index, so it answers; commits: the time index.) Whether any
        table has such rows is one query for all four; usually none has."""
        if self._poisoned is None:
            dialect = self.session.get_bind().dialect.name
            found = self.conn.execute(
                select(*_poisoned_counts(dialect, self.t, tuple(self.ids)))
            ).one()
            self._poisoned = {m.__name__ for m, f in zip(_SCREENED_MODELS, found, strict=True) if f}
        if model.__name__ not in self._poisoned:
            return []
        return list(self.conn.execute(select(*columns).where(self._poisoned_where(model))).all())

    def pairs_in(self, service: Any, key: Any, pairs: Iterable[tuple[int, str]]) -> Any:
        """(`service`, `key`) among (service id, key) `pairs`: per service one `key = ANY`
        (PostgreSQL: one array parameter, planned per call) or `IN` list."""
        by_service: dict[int, list[str]] = defaultdict(list)
        for service_id, value in pairs:
            by_service[service_id].append(value)
        return or_(
            false(),
            *(
                and_(service == s, self.repo._in(key, sorted(keys), String))
                for s, keys in sorted(by_service.items())
            ),
        )

    def links(self, ids: Sequence[int]) -> list[tuple[int, str]]:
        dc = DeploymentCommit
        out: list[tuple[int, str]] = []
        for chunk in _chunks(sorted(ids)):
            out += [
                (int(i), str(h))
                for i, h in self.conn.execute(
                    select(dc.deployment_id, dc.sha).where(
                        dc.tenant_id == self.t, dc.deployment_id.in_(list(chunk))
                    )
                ).all()
            ]
        return out

    def by_external_id(self, pairs: set[tuple[int, str]]) -> list[tuple]:
        d = Deployment
        out: list[tuple] = []
        items = sorted(pairs)
        for chunk in _chunks(items, 1000):
            out += self._deployment_rows(self.pairs_in(d.service_id, d.external_id, chunk))
        return out

    def last_before(self, service_id: int, at: datetime) -> list[tuple]:
        d = Deployment
        latest = self.conn.scalar(
            select(func.max(d.finished_at)).where(
                self.prod(), d.service_id == service_id, d.finished_at < at
            )
        )
        if latest is None:
            return []
        return self._deployment_rows(and_(d.service_id == service_id, d.finished_at == latest))


def _production_filter(d: Any, t: int, envs: tuple[tuple[int, tuple[str, ...]], ...]) -> Any:
    """Successful production deployments of tenant `t` the engine keeps (as `screen` +
    `production`), `envs` the production environments per service id."""
    if not envs:
        return false()
    return and_(
        d.tenant_id == t,
        d.status == "success",
        d.finished_at.is_not(None),
        d.finished_at >= EARLIEST,
        d.finished_at <= LATEST,
        or_(
            d.started_at.is_(None),
            and_(d.started_at >= EARLIEST, d.started_at <= d.finished_at),
        ),
        or_(*(and_(d.service_id == s, d.environment.in_(list(e))) for s, e in envs)),
    )


@functools.lru_cache(maxsize=256)
def _open_at(dialect: str, t: int, ids: tuple[int, ...]) -> tuple[Any, ...]:
    """Conditions of the incidents of services `ids` opened before the parameter
    `open_start` and still open then: not resolved (a partial index, 0011), or resolved
    after it. On PostgreSQL the latter per service also opened no earlier than `open_start`
    less its longest incident (one probe of the duration index, 0011): implied, so the same
    rows, but bounded by `opened_at` instead of every incident resolved since the start.
    Built once per scope, as `_around_statement`."""
    i = Incident
    start = bindparam("open_start", type_=DateTime(timezone=True))
    before = i.opened_at < start
    if dialect != "postgresql":
        return (and_(before, or_(i.resolved_at.is_(None), i.resolved_at > start)),)
    other = aliased(Incident)
    conditions = [and_(before, i.resolved_at.is_(None))]
    for s in ids:
        longest = (
            select(func.max(other.resolved_at - other.opened_at))
            .where(other.tenant_id == t, other.service_id == s)
            .scalar_subquery()
        )
        conditions.append(
            and_(i.service_id == s, before, i.resolved_at > start, i.opened_at >= start - longest)
        )
    return tuple(conditions)


@functools.lru_cache(maxsize=256)
def _around_statement(t: int, envs: tuple[tuple[int, tuple[str, ...]], ...]) -> Any:
    """`_Reader.deployments_around`' query for tenant `t` and its production environments,
    with the span's ends as the parameters `around_start` and `around_end` (building it
    costs more than running it; SQLAlchemy's compiled cache then serves every later read)."""
    d = Deployment
    bounds = (
        bindparam("around_start", type_=DateTime(timezone=True)),
        bindparam("around_end", type_=DateTime(timezone=True)),
    )
    picks = [
        and_(
            d.service_id.in_([s for s, _ in envs]),
            d.finished_at >= bounds[0],
            d.finished_at < bounds[1],
        )
    ]
    for service_id, environments in envs:
        for environment in environments:
            for bound, before in zip(bounds, (True, False), strict=True):
                a = aliased(Deployment)
                side = a.finished_at < bound if before else a.finished_at >= bound
                pick = func.max(a.finished_at) if before else func.min(a.finished_at)
                at = (
                    select(pick)
                    .where(
                        _production_filter(a, t, envs),
                        a.service_id == service_id,
                        a.environment == environment,
                        side,
                    )
                    .scalar_subquery()
                )
                mine = and_(d.service_id == service_id, d.environment == environment)
                picks.append(and_(mine, d.finished_at == at))
        a = aliased(Deployment)
        first = (
            select(func.min(a.finished_at))
            .where(_production_filter(a, t, envs), a.service_id == service_id)
            .scalar_subquery()
        )
        picks.append(and_(d.service_id == service_id, d.finished_at == first))
    return select(*_DEPLOYMENT_COLUMNS).where(_production_filter(d, t, envs), or_(*picks))


@functools.lru_cache(maxsize=1024)
def _poisoned_where(model: Any, dialect: str, t: int, ids: tuple[int, ...]) -> Any:
    """Rows of `model` of tenant `t`'s services `ids` that the engine's screen skips."""
    times, pairs = _SCREENED[model.__name__]
    bad = [or_(getattr(model, c) < EARLIEST, getattr(model, c) > LATEST) for c in times]
    bad += [getattr(model, later) < getattr(model, earlier) for later, earlier in pairs]
    if dialect == "postgresql" and model.__name__ in _POISONED_TEXT:
        bad = [text(f"({_POISONED_TEXT[model.__name__]})")]
    return and_(model.tenant_id == t, model.service_id.in_(list(ids)), or_(*bad))


@functools.lru_cache(maxsize=256)
def _poisoned_counts(dialect: str, t: int, ids: tuple[int, ...]) -> tuple[Any, ...]:
    """How many rows of each screened table the screen skips: one column each, to select
    in one query (counts, not EXISTS: under EXISTS the planner expects an early match and
    scans)."""
    return tuple(
        select(func.count()).where(_poisoned_where(m, dialect, t, ids)).scalar_subquery()
        for m in _SCREENED_MODELS
    )


# what the engine's screen checks per table: times in the accepted range, durations not
# negative (a commit by `committed_at` only, which an index answers; `authored_at` is not read)
_SCREENED: dict[str, tuple[tuple[str, ...], list[tuple[str, str]]]] = {
    "Deployment": (("started_at", "finished_at"), [("finished_at", "started_at")]),
    "Incident": (("opened_at", "resolved_at"), [("resolved_at", "opened_at")]),
    "Change": (
        ("opened_at", "first_commit_at", "first_review_at", "approved_at", "merged_at"),
        [("merged_at", "opened_at")],
    ),
    "Commit": (("committed_at",), []),
}

# on PostgreSQL the predicates of the partial indexes (0009, 0010), literally, so they answer
_POISONED_TEXT = {
    "Deployment": POISONED_DEPLOYMENTS,
    "Change": POISONED_CHANGES,
    "Incident": POISONED_INCIDENTS,
}

_ENVIRONMENTS = """
WITH RECURSIVE envs(service_id, environment) AS (
    SELECT s.id, (SELECT min(d.environment) FROM deployments d
                  WHERE d.tenant_id = :tenant AND d.service_id = s.id AND d.status = 'success')
    FROM unnest(CAST(:services AS bigint[])) AS s(id)
  UNION ALL
    SELECT e.service_id, (SELECT min(d.environment) FROM deployments d
                          WHERE d.tenant_id = :tenant AND d.service_id = e.service_id
                            AND d.status = 'success' AND d.environment > e.environment)
    FROM envs e WHERE e.environment IS NOT NULL
)
SELECT service_id, environment FROM envs WHERE environment IS NOT NULL
"""

_SCREENED_MODELS = (Deployment, Incident, Change, Commit)

_DEPLOYMENT_COLUMNS = (
    Deployment.id,
    Deployment.service_id,
    Deployment.external_id,
    Deployment.environment,
    Deployment.sha,
    Deployment.status,
    Deployment.started_at,
    Deployment.finished_at,
    Deployment.commits_listed,
)
_INCIDENT_COLUMNS = (
    Incident.id,
    Incident.service_id,
    Incident.external_id,
    Incident.opened_at,
    Incident.resolved_at,
    Incident.severity,
    Incident.deployment_external_id,
    Incident.title,
)


def window_frames(
    repo: TenantRepository,
    services: Sequence[str],
    start: datetime,
    end: datetime,
    service_rows: Sequence[Service] | None = None,
) -> Bounded:
    """The delivery frames of `services` that metrics of windows inside [start, end) need
    (rules in the module docstring); `frames` None with a `reason` when only the whole
    history gives exact results. `service_rows`: those services' rows, when the caller has
    them."""
    import pandas as pd

    # times come back with `timezone.utc`, which pandas converts in bulk (a named zone such as
    # the server's `Etc/UTC` is converted row by row); the reads by key below plan per call
    # (`TenantRepository._in`), and without parallel workers (each statement is index
    # lookups: starting workers costs more); for this transaction only (PostgreSQL)
    set_local(
        repo.session,
        TimeZone="UTC",
        plan_cache_mode="force_custom_plan",
        max_parallel_workers_per_gather="0",
    )
    reader = _Reader(repo, services, service_rows)
    if not reader.production_pairs():
        return Bounded(None, "a production pattern is not a regex")
    if reader.graph_derived():
        return Bounded(None, "shipped commits come from the commit graph")
    reverting = reader.has_reverts_screened()
    t, ids = reader.t, reader.ids
    conn = reader.conn

    deployments: dict[int, tuple] = {}

    def add(rows: Iterable[tuple]) -> None:
        for row in rows:
            deployments.setdefault(int(row[0]), row)

    around = reader.deployments_around(start, end)
    add(around)
    nxt = [row for row in around if row[7] >= end]
    # the core's links with their commits' times, in one pass (Core rows: no ORM per row)
    core_statement, changes_statement = reader.core_statements()
    core_bounds = {"core_start": start, "core_end": end}
    core_rows = conn.execute(core_statement, core_bounds).all()
    core_links = [(int(r[0]), str(r[1])) for r in core_rows]
    core_pairs = {(int(r[2]), str(r[1])) for r in core_rows}
    core_commits = {
        (int(r[2]), str(r[1])): (r[2], r[1], r[3], r[4]) for r in core_rows if r[5] is not None
    }
    # a commit counts at its first shipment: the earlier deployments listing a core commit
    # (only commits listed more than once can have any)
    shared = {(int(r[2]), str(r[1])) for r in core_rows if r[6] > 1}
    listed_once = core_pairs - shared
    listers, lister_links = reader.listers(shared, start) if shared else ([], [])
    add(listers)

    # incidents: opened in [start, T_service], still open at start, linked to a loaded one
    top: dict[int, datetime | None] = dict.fromkeys(ids)
    for row in nxt:
        s, f = int(row[1]), row[7]
        top[s] = f if top[s] is None else min(top[s], f)  # type: ignore[type-var]
    i = Incident
    opened_in = or_(
        false(),
        *(
            and_(i.service_id == s, i.opened_at >= start, *([i.opened_at <= f] if f else []))
            for s, f in top.items()
        ),
    )
    # and those linked to a loaded deployment: one statement, index lookups (migrations
    # 0010, 0011), per 5,000 links (SQLite's limit of parameters)
    linked_to = sorted({(int(r[1]), str(r[2])) for r in deployments.values()})
    incident_rows: dict[int, Any] = {}
    for n, chunk in enumerate(_chunks(linked_to) if linked_to else [[]]):
        found_by = [reader.pairs_in(i.service_id, i.deployment_external_id, chunk)]
        if n == 0:
            found_by += [opened_in, *reader.open_at()]
        for r in conn.execute(
            select(*_INCIDENT_COLUMNS).where(
                i.tenant_id == t, i.service_id.in_(ids), or_(*found_by)
            ),
            {"open_start": start} if n == 0 else {},
        ).all():
            incident_rows.setdefault(int(r[0]), r)
    # the deployments they are blamed on: their link, else the last one before they opened
    links_to = {(int(r[1]), str(r[6])) for r in incident_rows.values() if r[6] is not None}
    wanted = links_to - set(linked_to)
    add(reader.by_external_id(wanted))
    known = {(int(r[1]), str(r[2])) for r in deployments.values()}
    for r in incident_rows.values():
        if r[6] is not None and (int(r[1]), str(r[6])) in known:
            continue
        if r[3] < start:  # later ones: the contiguous rows from the last before `start` on
            add(reader.last_before(int(r[1]), r[3]))

    # changes: those whose merge sha or one of whose listed commits a core deployment lists
    # (a change deploys with its merge sha's first shipment, else its last listed commit's:
    # one deployed inside the span is one of these; merged changes no deployment ships are
    # no lead time, and reverts come below), by index (`_changes_shipping`)
    c = Change
    change_rows: dict[tuple[int, str], Any] = {}
    if core_pairs:
        for r in conn.execute(changes_statement, core_bounds).all():
            change_rows.setdefault((int(r[0]), str(r[1])), r)

    # reverts: every revert commit and reverting change of the scope (partial indexes), the
    # changes they revert (by id, or every change of the reverted title), and below every
    # deployment listing one of their commits or a reverted sha: which deployment first
    # shipped a reverted change, and when its revert reached production, are whole-history
    # answers wherever those deployments lie
    revert_commits: dict[tuple[int, str], tuple] = {}
    revert_targets: dict[tuple[int, str], str | None] = {}
    if reverting:
        for r in conn.execute(
            select(*committed_columns(), Commit.message).where(
                Commit.tenant_id == t, Commit.service_id.in_(ids), text(REVERT_COMMITS)
            )
        ).all():
            key = (int(r[0]), str(r[1]))
            revert_commits[key] = tuple(r[:4])
            revert_targets[key] = reverted_sha(r[4])
        for r in conn.execute(
            select(*CHANGE_COLUMNS).where(
                c.tenant_id == t, c.service_id.in_(ids), text(f"({REVERT_CHANGES})")
            )
        ).all():
            change_rows.setdefault((int(r[0]), str(r[1])), r)
        by_id = {
            (int(r[0]), str(r[10]))
            for r in change_rows.values()
            if r[10] is not None and str(r[10])
        }
        by_title = {
            (int(r[0]), title)
            for r in change_rows.values()
            if isinstance(r[2], str) and (title := reverted_title(r[2])) is not None
        }
        for chunk in _chunks(sorted(by_id), 1000):
            for r in conn.execute(
                select(*CHANGE_COLUMNS).where(
                    c.tenant_id == t, reader.pairs_in(c.service_id, c.external_id, chunk)
                )
            ).all():
                change_rows.setdefault((int(r[0]), str(r[1])), r)
        for chunk in _chunks(sorted(by_title), 1000):
            for r in conn.execute(
                select(*CHANGE_COLUMNS).where(
                    c.tenant_id == t, reader.pairs_in(c.service_id, c.title, chunk)
                )
            ).all():
                change_rows.setdefault((int(r[0]), str(r[1])), r)

    # every deployment listing a commit of those changes (when the change was deployed)
    asked = {
        (s, str(h))
        for (s, _), r in change_rows.items()
        for h in [r[8], *(r[9] or [])]
        if h is not None  # (a core deployment listing it may be a redeploy: ships nothing)
    }
    asked |= set(revert_commits)
    asked |= {(s, h) for (s, _), h in revert_targets.items() if h is not None}
    asked -= listed_once  # the core link that lists it is its only one, loaded already
    change_listers, change_links = reader.listers(asked) if asked else ([], [])
    add(change_listers)

    # rows stored before validation: the screen skips them, with its warning (a commit is
    # checked by `committed_at` only, which an index answers; `authored_at` is not read)
    for r in reader.poisoned(Deployment, _DEPLOYMENT_COLUMNS):
        deployments.setdefault(int(r[0]), r)
    for r in reader.poisoned(Incident, _INCIDENT_COLUMNS):
        incident_rows.setdefault(int(r[0]), r)
    for r in reader.poisoned(Change, CHANGE_COLUMNS):
        change_rows.setdefault((int(r[0]), str(r[1])), r)

    # the first production run of every loaded sha (redeploys, rollbacks)
    add(reader.first_runs({(int(r[1]), str(r[4])) for r in deployments.values()}))

    links = sorted(set(core_links) | set(lister_links) | set(change_links))
    shipped_pairs = {(int(deployments[d][1]), h) for d, h in links}

    names = reader.names
    team_ids = sorted({s.team_id for s in reader.service_rows if s.team_id is not None})
    team_names = (
        dict(
            conn.execute(
                select(Team.id, Team.name).where(Team.tenant_id == t, Team.id.in_(team_ids))
            ).all()
        )
        if team_ids
        else {}
    )
    as_service = _ServiceColumn(names)
    service_frame = pd.DataFrame(
        {
            "service": as_service([s.id for s in reader.service_rows]),
            "team": [team_names.get(s.team_id) if s.team_id else None for s in reader.service_rows],
            "production_pattern": [s.production_pattern for s in reader.service_rows],
        }
    )
    deployment_frame = _frame(
        list(deployments.values()),
        [
            "deployment_id",
            "service",
            "external_id",
            "environment",
            "sha",
            "status",
            "started_at",
            "finished_at",
            "commits_listed",
        ],
        ("started_at", "finished_at"),
        as_service,
    )
    link_frame = _frame(links, ["deployment_id", "sha"], (), as_service)
    # commit rows (when they were committed) of the shas loaded deployments list; `parents`
    # only serve the commit-graph rule, which a bounded read never needs
    committed = committed_columns()
    of_commits = and_(Commit.tenant_id == t, Commit.service_id.in_(ids))
    commit_rows = list(core_commits.values())
    for r in reader.poisoned(Commit, committed):
        if (int(r[0]), str(r[1])) not in core_commits:
            commit_rows.append(r)
    for chunk in _chunks(sorted(shipped_pairs - core_pairs), 1000):
        commit_rows += conn.execute(
            select(*committed).where(
                of_commits, reader.pairs_in(Commit.service_id, Commit.sha, chunk)
            )
        ).all()
    commit_rows += list(revert_commits.values())
    commit_rows = list({(int(r[0]), str(r[1])): r for r in commit_rows}.values())
    commit_frame = _frame(
        commit_rows,
        ["service", "sha", "committed_at", "authored_at"],
        ("committed_at", "authored_at"),
        as_service,
    )
    commit_frame = commit_frame.assign(
        parents=pd.Series([[]] * len(commit_frame), index=commit_frame.index, dtype=object),
        reverts=pd.Series(
            [revert_targets.get((int(r[0]), str(r[1]))) for r in commit_rows],
            index=commit_frame.index,
            dtype=object,
        ),
    )
    change_frame = _frame(
        list(change_rows.values()),
        [
            "service",
            "external_id",
            "title",
            "opened_at",
            "first_commit_at",
            "first_review_at",
            "approved_at",
            "merged_at",
            "merge_sha",
            "commits",
            "reverts",
        ],
        ("opened_at", "first_commit_at", "first_review_at", "approved_at", "merged_at"),
        as_service,
    )
    incident_frame = _frame(
        [r[1:] for r in incident_rows.values()],
        [
            "service",
            "external_id",
            "opened_at",
            "resolved_at",
            "severity",
            "deployment_external_id",
            "title",
        ],
        ("opened_at", "resolved_at"),
        as_service,
    )
    frames = DeliveryFrames(
        service_frame, deployment_frame, link_frame, commit_frame, change_frame, incident_frame
    )
    return Bounded(frames)


def committed_columns() -> tuple[Any, ...]:
    """A commit row as the bounded frames hold it: service id, sha, committed and authored
    times (plain DateTime: pandas converts them in bulk)."""
    return (
        Commit.service_id,
        Commit.sha,
        type_coerce(Commit.committed_at, DateTime()),
        type_coerce(Commit.authored_at, DateTime()),
    )


@functools.lru_cache(maxsize=256)
def _core_statements(
    t: int, envs: tuple[tuple[int, tuple[str, ...]], ...], ids: tuple[int, ...]
) -> tuple[Any, Any]:
    """For tenant `t`, services `ids` and their production environments `envs`, with the
    span's ends as the parameters `core_start` and `core_end`: the core statement (per link
    of a production deployment finished in the span: deployment id, sha, service id, the
    commit's times and id, and how many links of the tenant list that sha), and the merged
    changes those links ship (`_changes_shipping`). Built once per scope, as
    `_around_statement` (building and keying these two cost milliseconds per read)."""
    d, dc = Deployment, DeploymentCommit
    core = (
        select(dc.deployment_id, dc.sha, d.service_id)
        .join(d, and_(d.id == dc.deployment_id, d.tenant_id == dc.tenant_id))
        .where(
            dc.tenant_id == t,
            _production_filter(d, t, envs),
            d.service_id.in_(list(ids)),
            d.finished_at >= bindparam("core_start", type_=DateTime(timezone=True)),
            d.finished_at < bindparam("core_end", type_=DateTime(timezone=True)),
        )
        .subquery("core_links")
    )
    other = aliased(DeploymentCommit)
    listed = (
        select(func.count()).where(other.tenant_id == t, other.sha == core.c.sha).scalar_subquery()
    )
    found = and_(
        Commit.tenant_id == t, Commit.service_id == core.c.service_id, Commit.sha == core.c.sha
    )
    links = select(
        core.c.deployment_id,
        core.c.sha,
        core.c.service_id,
        type_coerce(Commit.committed_at, DateTime()),
        type_coerce(Commit.authored_at, DateTime()),
        Commit.id,
        listed,
    ).select_from(core.outerjoin(Commit, found))
    return links, _changes_shipping(t, core)


def _changes_shipping(t: int, core: Any) -> Any:
    """The merged changes whose merge sha, or one of whose listed commits, a `core` link
    lists, each once: the ids by two joins of the core links in the database (index lookups
    of `changes (tenant_id, service_id, merge_sha)` and `change_commits (tenant_id, sha)`; no
    key travels as a parameter), then their rows."""
    c, cc = Change, ChangeCommit
    by_merge = select(c.id).join(
        core, and_(c.tenant_id == t, c.service_id == core.c.service_id, c.merge_sha == core.c.sha)
    )
    listing = select(cc.change_id).join(
        core, and_(cc.tenant_id == t, cc.service_id == core.c.service_id, cc.sha == core.c.sha)
    )
    return select(*CHANGE_COLUMNS).where(
        c.tenant_id == t, c.merged_at.is_not(None), c.id.in_(union(by_merge, listing))
    )


class _ServiceColumn:
    """Service ids as the `service` column `metrics.compute` works with: one categorical of
    the scope's service names (given so, the engine converts nothing)."""

    def __init__(self, names: dict[int, str]) -> None:
        import pandas as pd

        categories = sorted(set(names.values()))
        self.dtype = pd.CategoricalDtype(categories)
        self.code = {i: categories.index(n) for i, n in names.items()}

    def __call__(self, ids: Iterable[Any]) -> pd.Categorical:
        import numpy as np
        import pandas as pd

        codes = np.fromiter((self.code[int(i)] for i in ids), dtype=np.int64)
        return pd.Categorical.from_codes(codes, dtype=self.dtype)


def _frame(
    rows: Sequence[Sequence[Any]],
    columns: list[str],
    times: Sequence[str],
    services: _ServiceColumn,
) -> pd.DataFrame:
    """Rows as a frame shaped like `TenantRepository.delivery_frames`' (UTC times), built
    column by column in the engine's working form: `service` (rows hold its id) as the
    scope's categorical, times in nanoseconds (one outside what nanoseconds hold stays as
    read, for the engine's screen), and an empty frame typed like a full one (text columns
    as strings) so that the engine converts nothing."""
    import pandas as pd
    from pandas.errors import OutOfBoundsDatetime

    from insights.metrics.compute import TEXT_COLUMNS

    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    data: dict[str, Any] = {}
    for column, column_values in zip(columns, values, strict=True):
        if column == "service":
            data[column] = services(column_values)
        elif column in times:
            data[column] = pd.Series(list(column_values), dtype=object)
            with suppress(OutOfBoundsDatetime, OverflowError):  # screened by the engine
                data[column] = pd.to_datetime(data[column], utc=True)
                data[column] = data[column].astype(_NS_UTC)
        elif not rows and column in TEXT_COLUMNS:
            data[column] = pd.Series([], dtype="str")
        else:
            data[column] = list(column_values)
    return pd.DataFrame(data)


_NS_UTC = "datetime64[ns, UTC]"

_RECORDED = (
    (Commit, Commit.committed_at),
    (Change, Change.opened_at),
    (Incident, Incident.opened_at),
)


def recorded_counts(
    repo: TenantRepository, services: Sequence[str], start: datetime, end: datetime
) -> tuple[int, int, int, int]:
    """(commits, changes, incidents) stored for `services` before `end`, and commits made in
    [start, end): what `metrics.compute.recorded` counts, counted by the database."""
    (before,) = recorded_before(repo, services, [end])
    return (*before, recorded_between(repo, services, start, end)[0])


def _ids(repo: TenantRepository, services: Sequence[str], ids: Sequence[int] | None) -> list[int]:
    if ids is not None:
        return list(ids)
    return list(repo.service_ids(services).values()) if services else []


def recorded_before(
    repo: TenantRepository,
    services: Sequence[str],
    ends: Sequence[datetime],
    ids: Sequence[int] | None = None,
) -> list[tuple[int, int, int]]:
    """Per time of `ends`: the (commits, changes, incidents) stored for `services` (whose
    ids the caller may give) before it (by commit time and opening), one pass over each
    table for all of them."""
    ids = _ids(repo, services, ids)
    t, s = repo.tenant_id, repo.session.connection()
    columns = []
    for model, column in _RECORDED:
        counts = s.execute(
            select(*(func.count().filter(column < end) for end in ends)).where(
                model.tenant_id == t, model.service_id.in_(ids), column < max(ends)
            )
        ).one()
        columns.append([int(n or 0) for n in counts])
    return [(a, b, c) for a, b, c in zip(*columns, strict=True)]


def recorded_between(
    repo: TenantRepository,
    services: Sequence[str],
    start: datetime,
    end: datetime,
    ids: Sequence[int] | None = None,
) -> tuple[int, int, int]:
    """(commits, changes, incidents) of `services` (whose ids the caller may give) committed
    or opened in [start, end): an index range each, so a window's counts follow from the
    previous window's."""
    ids = _ids(repo, services, ids)
    t = repo.tenant_id
    a, b, c = (
        repo.session.connection()
        .execute(
            select(
                *(
                    select(func.count())
                    .where(
                        model.tenant_id == t,
                        model.service_id.in_(ids),
                        column >= start,
                        column < end,
                    )
                    .scalar_subquery()
                    for model, column in _RECORDED
                )
            )
        )
        .one()
    )
    return int(a or 0), int(b or 0), int(c or 0)
