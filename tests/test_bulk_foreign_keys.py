"""Bulk tables (commits, shipped-commit links) have no foreign key on PostgreSQL (migration
0006), so deleting a tenant or a service deletes their rows explicitly: nothing of the deleted
one is left behind, nothing of another is touched, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, inspect, select

from insights.model import parse_event
from insights.pipeline import store_events
from insights.store import registry
from insights.store.db import unit_of_work
from insights.store.models import Commit, DeploymentCommit, Tenant
from insights.store.repository import TenantRepository

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _store(engine, tenant: str, service: str = "api") -> None:
    raw = [
        {"type": "commit", "service": service, "sha": "c0ffee01", "committed_at": T0.isoformat()},
        {"type": "commit", "service": service, "sha": "c0ffee02", "committed_at": T0.isoformat()},
        {
            "type": "deployment",
            "service": service,
            "id": "d-1",
            "sha": "c0ffee02",
            "finished_at": T0.isoformat(),
            "commits": ["c0ffee01", "c0ffee02"],
        },
    ]
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, tenant, create=True)
        store_events(repo, [parse_event(e) for e in raw], create_services=True)


def _bulk_rows(engine) -> dict[str, int]:
    """Rows of each bulk table, by tenant name (rows of no tenant under None)."""
    with unit_of_work(engine) as session:
        names = dict(session.execute(select(Tenant.id, Tenant.name)).all())
        counts: dict[str, int] = {}
        for model in (Commit, DeploymentCommit):
            for tenant_id, count in session.execute(
                select(model.tenant_id, func.count()).group_by(model.tenant_id)
            ):
                key = f"{model.__tablename__}:{names.get(tenant_id)}"
                counts[key] = counts.get(key, 0) + count
    return counts


def test_deleting_a_tenant_removes_its_commits_and_shipped_links_only(db) -> None:
    _store(db.engine, "acme")
    _store(db.engine, "globex")
    with unit_of_work(db.engine) as session:
        assert registry.delete_tenant(session, "acme", actor="test")
    assert _bulk_rows(db.engine) == {"commits:globex": 2, "deployment_commits:globex": 2}


def test_deleting_a_service_removes_its_commits_and_shipped_links_only(db) -> None:
    _store(db.engine, "acme", "api")
    _store(db.engine, "acme", "web")
    _store(db.engine, "globex", "api")
    with unit_of_work(db.engine) as session:
        assert registry.delete_child(session, "acme", "service", "api", actor="test")
    with unit_of_work(db.engine) as session:
        counts = TenantRepository.open(session, "acme").counts()
        assert (counts["commits"], counts["deployment_commits"]) == (2, 2)  # web's
        kept = TenantRepository.open(session, "globex").counts()
        assert (kept["commits"], kept["deployment_commits"]) == (2, 2)


def test_postgresql_bulk_tables_carry_no_foreign_key(pg_db) -> None:
    """The per-row trigger is what made a bulk ingest slow; the schema must not bring it back."""
    with pg_db.engine.connect() as conn:
        schema = inspect(conn)
        assert schema.get_foreign_keys("commits") == []
        assert schema.get_foreign_keys("deployment_commits") == []
