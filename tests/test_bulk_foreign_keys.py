"""Bulk tables' foreign keys: one composite key per row, tenant-consistent, still cascading."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from insights.model import parse_event
from insights.pipeline import store_events
from insights.store.db import unit_of_work
from insights.store.models import Commit, Deployment, DeploymentCommit, Service, Tenant
from insights.store.repository import TenantRepository

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _store(engine, tenant: str) -> None:
    raw = [
        {"type": "commit", "service": "api", "sha": "c0ffee01", "committed_at": T0.isoformat()},
        {
            "type": "deployment",
            "service": "api",
            "id": "d-1",
            "sha": "c0ffee01",
            "finished_at": T0.isoformat(),
            "commits": ["c0ffee01"],
        },
    ]
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, tenant, create=True)
        store_events(repo, [parse_event(e) for e in raw], create_services=True)


def _ids(engine, tenant: str) -> tuple[int, int, int]:
    with unit_of_work(engine) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == tenant))
        service_id = session.scalar(select(Service.id).where(Service.tenant_id == tenant_id))
        deployment_id = session.scalar(
            select(Deployment.id).where(Deployment.tenant_id == tenant_id)
        )
    return tenant_id, service_id, deployment_id


def test_deleting_a_tenant_removes_its_commits_and_shipped_links_only(db) -> None:
    _store(db.engine, "acme")
    _store(db.engine, "globex")
    acme, _, _ = _ids(db.engine, "acme")
    with unit_of_work(db.engine) as session:
        session.execute(delete(Tenant).where(Tenant.id == acme))
    with unit_of_work(db.engine) as session:
        assert TenantRepository.open(session, "globex").counts()["commits"] == 1
        assert TenantRepository.open(session, "globex").counts()["deployment_commits"] == 1
        left = [
            session.scalar(select(model.tenant_id).where(model.tenant_id == acme))
            for model in (Commit, DeploymentCommit)
        ]
    assert left == [None, None]


@pytest.mark.parametrize("table", ["commits", "deployment_commits"])
def test_a_bulk_row_cannot_name_another_tenants_parent(pg_db, table: str) -> None:
    """PostgreSQL: the composite key rejects a row whose tenant is not its parent's tenant."""
    _store(pg_db.engine, "acme")
    _store(pg_db.engine, "globex")
    acme, _, _ = _ids(pg_db.engine, "acme")
    _, globex_service, globex_deployment = _ids(pg_db.engine, "globex")
    if table == "commits":
        row = insert(Commit).values(
            tenant_id=acme, service_id=globex_service, sha="bad", committed_at=T0, parents=[]
        )
    else:
        row = insert(DeploymentCommit).values(
            tenant_id=acme, deployment_id=globex_deployment, sha="bad"
        )
    with pytest.raises(IntegrityError, match="foreign key"), unit_of_work(pg_db.engine) as s:
        s.execute(row)
