"""Rebuilding one service: its records re-derived from what was kept or from its source.

- GitHub/GitLab services: every change, deployment and incident of the service is deleted
  and derived again from the kept raw payloads, in one transaction and without a request:
  first the collector's (`raw_events`), then the kept webhook deliveries of its repository in
  the order they arrived (later deliveries win, as they did when they came). Commits stay.
- Local-git services: the collector's cursors are dropped and the clone is synced again, so
  every deployment is recomputed from the tags the configuration selects now (reconciliation
  removes the rest).
- `events` services keep nothing to rebuild from: that is a UserError.
- A service's incident tools (`incidents`: PagerDuty, Jira) are re-derived from their kept
  payloads too, since clearing the service removed their incidents as well.

Example: rebuild_service(engine, tenant_config, tenant_config.service("checkout"))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from insights.collect.sync import SyncContext, make_collector, sync_service
from insights.collect.webhook_store import apply_mapped
from insights.collect.webhooks import PayloadError, github_event, gitlab_event
from insights.config import INCIDENT_KINDS, ServiceConfig, TenantConfig
from insights.errors import UserError
from insights.model import EventError
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository


@dataclass
class RebuildReport:
    """What a rebuild removed and derived again, per record kind."""

    tenant: str
    service: str
    source: str
    removed: dict[str, int] = field(default_factory=dict)
    derived: dict[str, int] = field(default_factory=dict)
    deliveries: int = 0  # kept webhook deliveries replayed
    skipped: int = 0  # kept payloads and deliveries the current mapping rejects
    warnings: list[str] = field(default_factory=list)


def rebuild_service(engine: Engine, tenant: TenantConfig, service: ServiceConfig) -> RebuildReport:
    """Re-derive one service's records (see the module docstring for what each source does)."""
    kind = service.source.kind
    if kind == "events":
        raise UserError(
            f"service {service.name!r}: source kind 'events' keeps no raw data to rebuild from"
            " (re-import its events instead)"
        )
    collector = make_collector(tenant, service)
    report = RebuildReport(tenant.name, service.name, kind)
    if kind == "localgit":
        with unit_of_work(engine) as session:
            repo = TenantRepository.open(session, tenant.name, create=True)
            repo.delete_cursors(kind, collector.repo_key())
        synced = sync_service(engine, tenant, service, collector=collector)
        report.removed = dict(synced.removed)
        report.derived = {k: c.total for k, c in synced.counts.items() if c.total}
        report.warnings = list(synced.warnings)
        return report
    ctx = SyncContext(engine, tenant, service, kind, collector.repo_key())
    derived = collector.raw_events(ctx)  # type: ignore[attr-defined]
    # kept payloads the event model refuses are skipped there, each named in a warning
    report.skipped += sum(ctx.report.skipped.values())
    report.warnings += ctx.report.warnings
    for view in service.sources():
        if view.source.kind in INCIDENT_KINDS:  # their incidents are cleared below too
            tool = make_collector(tenant, view)
            tool_ctx = SyncContext(engine, tenant, view, view.source.kind, tool.repo_key())
            for name, events in tool.raw_events(tool_ctx).items():  # type: ignore[attr-defined]
                derived.setdefault(f"{view.source.kind}:{name}", []).extend(events)
            report.skipped += sum(tool_ctx.report.skipped.values())
            report.warnings += tool_ctx.report.warnings
    with unit_of_work(engine) as session:
        from insights.pipeline import store_events

        repo = TenantRepository.open(session, tenant.name)
        row = repo.require_service(service.name)
        report.removed = repo.clear_service_records(row.id)
        events = [event for batch in derived.values() for event in batch]
        stored = store_events(repo, events, create_services=False)
        totals = {k: c.total for k, c in stored.counts.items() if c.total}
        for raw in repo.raw_payloads_like(kind, str(service.source.repo or ""), "webhook:"):
            event_name = raw.kind.removeprefix("webhook:")
            try:
                if kind == "github":
                    mapped = github_event(event_name, raw.payload, service)
                else:
                    mapped = gitlab_event(raw.payload, service)
                if mapped.ignored:
                    continue
                applied = apply_mapped(repo, service.name, mapped)
            except (PayloadError, EventError):
                report.skipped += 1
                continue
            report.deliveries += 1
            for name, count in applied.counts.items():
                totals[name] = totals.get(name, 0) + count
        report.derived = totals
    return report
