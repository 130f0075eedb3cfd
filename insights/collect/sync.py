"""The sync framework every collector runs in: cursors, raw payloads, resumable batches.

A collector reads its cursor, fetches what changed since, and hands each batch to
`SyncContext.commit()`, which writes the raw payloads, the normalized records and the new cursor
in ONE transaction. A sync killed at any point (even `kill -9`) therefore resumes from the last
committed cursor with nothing lost and nothing duplicated: rows committed before the kill carry
the cursor that says so, rows of the interrupted batch were rolled back with their cursor, and
upserts are idempotent on natural keys, so re-reading part of a batch only counts "unchanged".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy import Engine, select, text

from insights.collect.events import AnyEvent
from insights.config import OrgConfig, ServiceConfig, TenantConfig
from insights.errors import UserError
from insights.model import CommitRows
from insights.store.db import unit_of_work
from insights.store.models import Deployment
from insights.store.repository import TenantRepository, UpsertCounts

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What one collector run did for one service: records new/updated/unchanged per kind."""

    tenant: str
    service: str
    source: str
    counts: dict[str, UpsertCounts] = field(default_factory=dict)
    batches: int = 0
    requests: int = 0
    seconds: float = 0.0
    stopped_early: str | None = None  # why the run stopped before the end (rate limit, …)
    error: str | None = None  # why the source failed (one line); batches before it are kept
    warnings: list[str] = field(default_factory=list)  # e.g. a tag pattern that matched nothing
    removed: dict[str, int] = field(default_factory=dict)  # records the source no longer has
    # records the event model refused (out-of-range time, negative duration, …), per kind
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """`ok`, `stopped early` (cursor kept, retry later) or `failed`."""
        if self.error:
            return "failed"
        return "stopped early" if self.stopped_early else "ok"

    def add(self, kind: str, counts: UpsertCounts) -> None:
        self.counts.setdefault(kind, UpsertCounts())
        self.counts[kind] += counts

    @property
    def records(self) -> int:
        """Records read in this run (new + updated + unchanged, all kinds)."""
        return sum(c.total for c in self.counts.values())


# Called after every committed batch with the service's report so far and the batch kind.
BatchCallback = Callable[[SyncReport, str], None]


class SyncContext:
    """What a collector may do: read its cursors and commit batches atomically."""

    def __init__(
        self,
        engine: Engine,
        tenant: TenantConfig,
        service: ServiceConfig,
        source: str,
        repo_key: str,
        progress: Callable[[str], None] | None = None,
        on_batch: BatchCallback | None = None,
    ) -> None:
        self.engine = engine
        self.tenant = tenant
        self.service = service
        self.source = source
        self.repo_key = repo_key
        self.report = SyncReport(tenant.name, service.name, source)
        self._progress = progress
        self._on_batch = on_batch
        self._service_ready = False

    def warn(self, message: str) -> None:
        """Note something the user should fix (shown after the sync, and logged)."""
        log.warning("%s/%s: %s", self.tenant.name, self.service.name, message)
        self.report.warnings.append(message)

    def skip(self, kind: str, what: str, problem: str) -> None:
        """Refuse one record the source sent (it failed the event model) and go on: a warning
        naming it, counted in the report's `skipped` under `kind`."""
        self.report.skipped[kind] = self.report.skipped.get(kind, 0) + 1
        self.warn(f"skipped invalid {what}: {problem}")

    def stored_deployments(self) -> dict[str, tuple[str, datetime | None]]:
        """(environment, finished_at) of each stored deployment of this service, by id."""
        with unit_of_work(self.engine) as session:
            repo = TenantRepository.open(session, self.tenant.name, create=True)
            service = repo.service(self.service.name)
            if service is None:
                return {}
            rows = session.execute(
                select(Deployment.external_id, Deployment.environment, Deployment.finished_at)
                .where(Deployment.tenant_id == repo.tenant_id)
                .where(Deployment.service_id == service.id)
            )
            return {external_id: (env, finished) for external_id, env, finished in rows}

    def cursor(self, kind: str) -> dict[str, Any] | None:
        """The last committed cursor for `kind` of this (tenant, source, repo)."""
        with unit_of_work(self.engine) as session:
            repo = TenantRepository.open(session, self.tenant.name, create=True)
            return repo.get_cursor(self.source, self.repo_key, kind)

    def commit(
        self,
        kind: str,
        events: Sequence[AnyEvent] | CommitRows,
        cursor: dict[str, Any] | None = None,
        raw: Sequence[tuple[str, dict[str, Any]]] = (),
        etag: str | None = None,
        removed_deployments: Sequence[str] = (),
        removed_incidents: Sequence[str] = (),
    ) -> None:
        """Store raw payloads, records and the new cursor for `kind` together, or nothing.

        `events` may be a `CommitRows` batch (a bulk commit ingest): stored with the same rows
        and counts as its events. `removed_deployments` are deployment ids the source no longer
        has (a deleted or no longer selected tag): they, their shipped-commit links and their
        raw payloads of `kind` are deleted in the same transaction; `removed_incidents` likewise
        for incidents (an issue that is no longer an incident).
        """
        from insights.pipeline import store_commit_rows, store_events

        with unit_of_work(self.engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                # Do not wait for this batch's WAL to reach disk: a server crash can lose
                # only the last batches, together with their cursor (same transaction), so
                # the next sync reads them again. Each batch writes megabytes of WAL, and
                # waiting for each flush was a large share of an ingest on a busy disk.
                session.execute(text("SET LOCAL synchronous_commit = off"))
            repo = TenantRepository.open(session, self.tenant.name, create=True)
            if not self._service_ready:
                repo.ensure_service(
                    self.service.name, self.service.team, self.service.production_pattern
                )
            for record, ids in (
                ("deployment", removed_deployments),
                ("incident", removed_incidents),
            ):
                if not ids:
                    continue
                service = repo.require_service(self.service.name)
                if record == "deployment":
                    gone = repo.delete_deployments(service.id, ids)
                else:
                    gone = repo.delete_incidents(service.id, ids)
                repo.delete_raw(self.source, self.repo_key, kind, ids)
                if gone:
                    self.report.removed[record] = self.report.removed.get(record, 0) + gone
            if raw:
                repo.save_raw(self.source, self.repo_key, kind, raw, etag)
            if isinstance(events, CommitRows):
                result = store_commit_rows(repo, events, tenant_config=self.tenant)
            else:
                result = store_events(repo, events, create_services=True, tenant_config=self.tenant)
            if cursor is not None:
                repo.set_cursor(self.source, self.repo_key, kind, cursor)
        self._service_ready = True
        for event_kind, counts in result.counts.items():
            if counts.total:
                self.report.add(event_kind, counts)
        self.report.batches += 1
        if self._progress:
            self._progress(f"{self.service.name}: {kind} batch {self.report.batches}")
        if self._on_batch:
            self._on_batch(self.report, kind)


class Collector(Protocol):
    """A source of delivery records for one service."""

    source: ClassVar[str]

    def repo_key(self) -> str:
        """Stable identifier of the repository/project, for cursors and raw payloads."""
        ...

    def sync(self, ctx: SyncContext) -> None:
        """Fetch what changed since the cursors and commit it batch by batch."""
        ...


CollectorFactory = Callable[[ServiceConfig, TenantConfig], Collector]
COLLECTORS: dict[str, CollectorFactory] = {}


def register(source: str) -> Callable[[CollectorFactory], CollectorFactory]:
    """Class decorator: make a collector available to `insights sync` under `source`."""

    def wrap(factory: CollectorFactory) -> CollectorFactory:
        COLLECTORS[source] = factory
        return factory

    return wrap


def sync_service(
    engine: Engine,
    tenant: TenantConfig,
    service: ServiceConfig,
    progress: Callable[[str], None] | None = None,
    on_batch: BatchCallback | None = None,
    collector: Collector | None = None,
) -> SyncReport:
    """Run the collector of one service (no insights.toml needed: build the configs in code).

    Example, one local clone::

        service = ServiceConfig(name="app", source=SourceConfig(kind="localgit", path=repo))
        sync_service(engine, TenantConfig(name="default", services=[service]), service)
    """
    if collector is None:
        collector = make_collector(tenant, service)
    ctx = SyncContext(
        engine, tenant, service, service.source.kind, collector.repo_key(), progress, on_batch
    )
    _timed(ctx, collector)
    return ctx.report


def _timed(ctx: SyncContext, collector: Collector) -> None:
    started = time.perf_counter()
    try:
        collector.sync(ctx)
    finally:
        ctx.report.seconds = time.perf_counter() - started


def make_collector(tenant: TenantConfig, service: ServiceConfig) -> Collector:
    """The collector for a service's source kind; bad settings (a missing path, …) raise a
    UserError here, before anything is fetched."""
    kind = service.source.kind
    _load_collector(kind)
    factory = COLLECTORS.get(kind)
    if factory is None:
        raise UserError(f"service {service.name!r}: unknown source kind {kind!r}")
    return factory(service, tenant)


def run_sync(
    engine: Engine,
    org: OrgConfig,
    tenant: str | None = None,
    service: str | None = None,
    progress: Callable[[str], None] | None = None,
    on_batch: BatchCallback | None = None,
    on_start: Callable[[TenantConfig, ServiceConfig], None] | None = None,
    keep_going: bool = False,
) -> list[SyncReport]:
    """Run the collector of every configured service (optionally one tenant / one service).

    Services whose source is `events` (pushed by import/record/API) have nothing to fetch and
    are skipped; a service's incident tools (`incidents`) run after its source, each as its
    own source. Returns one `SyncReport` per service source, in configuration order: counts per
    kind, seconds taken and the outcome.

    `keep_going` (what `insights sync` and the scheduler use): every selected source is
    tried, whatever happened to the others; a source that cannot be built (a missing token)
    or fails while fetching gets a report with `error` set, and what its earlier batches
    committed stays. Without it, every collector is built (its settings checked) before any
    runs, and the first error is raised — for callers that sync one source and want the
    exception.
    """
    tenants = [org.tenant(tenant)] if tenant else org.tenants
    selected = [(t, s) for t in tenants for s in t.services if service is None or s.name == service]
    if service and not selected:
        where = f" of tenant {tenant!r}" if tenant else ""
        raise UserError(f"--service {service}: not configured in insights.toml{where}")
    if not keep_going:
        runs = [(t, view, make_collector(t, view)) for t, s in selected for view in s.sources()]
        strict: list[SyncReport] = []
        for tenant_config, service_config, collector in runs:
            if on_start:
                on_start(tenant_config, service_config)
            strict.append(
                sync_service(engine, tenant_config, service_config, progress, on_batch, collector)
            )
        return strict
    reports: list[SyncReport] = []
    views = [(t, view) for t, s in selected for view in s.sources()]
    for tenant_config, service_config in views:
        if on_start:
            on_start(tenant_config, service_config)
        kind = service_config.source.kind
        try:
            collector = make_collector(tenant_config, service_config)
            ctx = SyncContext(
                engine,
                tenant_config,
                service_config,
                kind,
                collector.repo_key(),
                progress,
                on_batch,
            )
        except Exception as exc:  # bad settings of this source only: try the next one
            failed = SyncReport(tenant_config.name, service_config.name, kind)
            failed.error = _one_line(exc)
            reports.append(failed)
            continue
        try:
            _timed(ctx, collector)
        except Exception as exc:  # one source's outage must not starve the others
            ctx.report.error = _one_line(exc)
            log.warning(
                "sync %s/%s failed: %s", tenant_config.name, service_config.name, ctx.report.error
            )
        reports.append(ctx.report)
    return reports


def _one_line(exc: BaseException) -> str:
    """The first line of an error; our own errors name the input, others get their type
    (collector errors never carry tokens: clients are built from env vars, not URLs)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, UserError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load_collector(kind: str) -> None:
    """Import the module of source `kind` (it registers itself); only that one, since the Git
    host clients take about half a second to import."""
    import importlib

    if kind in COLLECTORS or not kind.isidentifier():
        return
    try:
        importlib.import_module(f"insights.collect.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name != f"insights.collect.{kind}":
            raise
