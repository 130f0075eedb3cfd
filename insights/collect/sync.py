"""The sync framework every collector runs in: cursors, raw payloads, resumable batches.

A collector reads its cursor, fetches what changed since, and hands each batch to
`SyncContext.commit()`, which writes the raw payloads, the normalized records and the new cursor
in ONE transaction. A sync killed at any point therefore resumes from the last committed
cursor with nothing lost and nothing duplicated (upserts are idempotent on natural keys).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from sqlalchemy import Engine

from insights.collect.events import AnyEvent
from insights.config import OrgConfig, ServiceConfig, TenantConfig
from insights.errors import UserError
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository, UpsertCounts


@dataclass
class SyncReport:
    """What one collector run did for one service."""

    tenant: str
    service: str
    source: str
    counts: dict[str, UpsertCounts] = field(default_factory=dict)
    batches: int = 0
    requests: int = 0
    seconds: float = 0.0
    stopped_early: str | None = None  # why the run stopped before the end (rate limit, …)

    def add(self, kind: str, counts: UpsertCounts) -> None:
        self.counts.setdefault(kind, UpsertCounts())
        self.counts[kind] += counts


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
    ) -> None:
        self.engine = engine
        self.tenant = tenant
        self.service = service
        self.source = source
        self.repo_key = repo_key
        self.report = SyncReport(tenant.name, service.name, source)
        self._progress = progress

    def cursor(self, kind: str) -> dict[str, Any] | None:
        """The last committed cursor for `kind` of this (tenant, source, repo)."""
        with unit_of_work(self.engine) as session:
            repo = TenantRepository.open(session, self.tenant.name, create=True)
            return repo.get_cursor(self.source, self.repo_key, kind)

    def commit(
        self,
        kind: str,
        events: Sequence[AnyEvent],
        cursor: dict[str, Any] | None = None,
        raw: Sequence[tuple[str, dict[str, Any]]] = (),
        etag: str | None = None,
    ) -> None:
        """Store raw payloads, records and the new cursor for `kind` together, or nothing."""
        from insights.pipeline import store_events

        with unit_of_work(self.engine) as session:
            repo = TenantRepository.open(session, self.tenant.name, create=True)
            repo.ensure_service(
                self.service.name, self.service.team, self.service.production_pattern
            )
            if raw:
                repo.save_raw(self.source, self.repo_key, kind, raw, etag)
            result = store_events(repo, events, create_services=True, tenant_config=self.tenant)
            if cursor is not None:
                repo.set_cursor(self.source, self.repo_key, kind, cursor)
        for event_kind, counts in result.counts.items():
            if counts.total:
                self.report.add(event_kind, counts)
        self.report.batches += 1
        if self._progress:
            self._progress(f"{self.service.name}: {kind} batch {self.report.batches}")


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


def run_sync(
    engine: Engine,
    org: OrgConfig,
    tenant: str | None = None,
    service: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[SyncReport]:
    """Run the collector of every configured service (optionally one tenant / one service)."""
    _load_collectors()
    tenants = [org.tenant(tenant)] if tenant else org.tenants
    reports: list[SyncReport] = []
    matched = False
    for tenant_config in tenants:
        for service_config in tenant_config.services:
            if service and service_config.name != service:
                continue
            matched = True
            kind = service_config.source.kind
            if kind == "events":
                continue
            factory = COLLECTORS.get(kind)
            if factory is None:
                raise UserError(f"service {service_config.name!r}: unknown source kind {kind!r}")
            collector = factory(service_config, tenant_config)
            ctx = SyncContext(
                engine, tenant_config, service_config, kind, collector.repo_key(), progress
            )
            started = time.perf_counter()
            collector.sync(ctx)
            ctx.report.seconds = time.perf_counter() - started
            reports.append(ctx.report)
    if service and not matched:
        raise UserError(f"--service {service}: not configured in insights.toml")
    return reports


def _load_collectors() -> None:
    """Import the collector modules so they register themselves."""
    import importlib

    for module in ("localgit", "github", "gitlab"):
        try:
            importlib.import_module(f"insights.collect.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"insights.collect.{module}":
                raise
