"""Store: idempotent upserts, tenant scoping and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select

from insights.errors import NotFound
from insights.model import parse_event
from insights.pipeline import store_events
from insights.store.db import downgrade, migrate, unit_of_work
from insights.store.models import Deployment, DeploymentCommit, Incident
from insights.store.repository import TenantRepository

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def events(service: str = "checkout") -> list:
    raw = [
        {"type": "commit", "service": service, "sha": "aaaa0001", "committed_at": T0.isoformat()},
        {
            "type": "commit",
            "service": service,
            "sha": "aaaa0002",
            "committed_at": (T0 + timedelta(hours=1)).isoformat(),
            "parents": ["aaaa0001"],
        },
        {
            "type": "change",
            "service": service,
            "id": 7,
            "title": "Add cart",
            "opened_at": T0.isoformat(),
            "merged_at": (T0 + timedelta(hours=3)).isoformat(),
            "merge_sha": "aaaa0002",
            "commits": ["aaaa0001", "aaaa0002"],
        },
        {
            "type": "deployment",
            "service": service,
            "id": "d-1",
            "sha": "aaaa0002",
            "finished_at": (T0 + timedelta(hours=4)).isoformat(),
            "commits": ["aaaa0002", "aaaa0001"],
        },
        {
            "type": "incident",
            "service": service,
            "id": "INC-1",
            "opened_at": (T0 + timedelta(hours=5)).isoformat(),
            "deployment_id": "d-1",
        },
    ]
    return [parse_event(e) for e in raw]


def store(db, tenant: str, batch: list) -> dict:
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, tenant, create=True)
        result = store_events(repo, batch, create_services=True)
    return {k: (c.new, c.updated, c.unchanged) for k, c in result.counts.items()}


def test_upsert_twice_changes_nothing(db):
    first = store(db, "acme", events())
    assert first == {
        "commit": (2, 0, 0),
        "change": (1, 0, 0),
        "deployment": (1, 0, 0),
        "incident": (1, 0, 0),
    }
    second = store(db, "acme", events())
    assert second == {
        "commit": (0, 0, 2),
        "change": (0, 0, 1),
        "deployment": (0, 0, 1),
        "incident": (0, 0, 1),
    }
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        assert repo.counts() == {
            "commits": 2,
            "changes": 1,
            "deployments": 1,
            "deployment_commits": 2,
            "incidents": 1,
        }


def test_upsert_updates_changed_fields_in_place(db):
    store(db, "acme", events())
    resolved = parse_event(
        {
            "type": "incident",
            "service": "checkout",
            "id": "INC-1",
            "opened_at": (T0 + timedelta(hours=5)).isoformat(),
            "resolved_at": (T0 + timedelta(hours=6)).isoformat(),
            "deployment_id": "d-1",
        }
    )
    assert store(db, "acme", [resolved])["incident"] == (0, 1, 0)
    with unit_of_work(db.engine) as session:
        rows = session.scalars(select(Incident)).all()
        assert len(rows) == 1
        assert rows[0].resolved_at == T0 + timedelta(hours=6)
        assert rows[0].resolved_at.tzinfo is not None


def test_deployment_commit_list_is_replaced_not_appended(db):
    store(db, "acme", events())
    relisted = parse_event(
        {
            "type": "deployment",
            "service": "checkout",
            "id": "d-1",
            "sha": "aaaa0002",
            "finished_at": (T0 + timedelta(hours=4)).isoformat(),
            "commits": ["aaaa0002"],
        }
    )
    assert store(db, "acme", [relisted])["deployment"] == (0, 1, 0)
    with unit_of_work(db.engine) as session:
        shas = session.scalars(select(DeploymentCommit.sha)).all()
    assert shas == ["aaaa0002"]


def test_last_duplicate_in_one_batch_wins(db):
    first, second = (
        parse_event(
            {
                "type": "deployment",
                "service": "checkout",
                "id": "d-9",
                "sha": "aaaa0002",
                "status": status,
                "finished_at": T0.isoformat(),
            }
        )
        for status in ("failure", "success")
    )
    assert store(db, "acme", [first, second])["deployment"] == (1, 0, 0)
    with unit_of_work(db.engine) as session:
        assert session.scalars(select(Deployment.status)).all() == ["success"]


def test_times_come_back_as_utc_whatever_offset_came_in(db):
    event = parse_event(
        {
            "type": "commit",
            "service": "checkout",
            "sha": "bbbb0001",
            "committed_at": "2026-01-05T12:00:00+02:00",
        }
    )
    store(db, "acme", [event])
    with unit_of_work(db.engine) as session:
        frames = TenantRepository.open(session, "acme").delivery_frames()
    stamp = frames.commits.loc[0, "committed_at"]
    assert stamp == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert str(stamp.tz) == "UTC"


def test_repository_never_returns_another_tenants_rows(db):
    store(db, "acme", events())
    store(db, "globex", events("billing"))
    with unit_of_work(db.engine) as session:
        acme = TenantRepository.open(session, "acme")
        globex = TenantRepository.open(session, "globex")
        assert [s.name for s in acme.services()] == ["checkout"]
        assert [s.name for s in globex.services()] == ["billing"]
        assert acme.service("billing") is None
        frames = acme.delivery_frames()
        assert set(frames.deployments["service"]) == {"checkout"}
        assert len(frames.commits) == 2
        assert len(frames.deployment_commits) == 2
        assert acme.counts()["deployments"] == 1
        assert len(session.scalars(acme.scoped(Deployment)).all()) == 1


def test_same_natural_keys_in_two_tenants_are_separate_rows(db):
    store(db, "acme", events())
    store(db, "globex", events())
    with unit_of_work(db.engine) as session:
        assert len(session.scalars(select(Deployment)).all()) == 2
        for name in ("acme", "globex"):
            assert TenantRepository.open(session, name).counts()["commits"] == 2


def test_unknown_tenant_is_a_clear_error(db):
    with unit_of_work(db.engine) as session, pytest.raises(NotFound, match="tenant 'nope'"):
        TenantRepository.open(session, "nope")


def test_unknown_service_is_rejected_when_creation_is_off(db):
    store(db, "acme", events())
    with (
        unit_of_work(db.engine) as session,
        pytest.raises(NotFound, match="service 'ghost'"),
    ):
        repo = TenantRepository.open(session, "acme")
        store_events(repo, events("ghost"), create_services=False)


def test_failed_batch_leaves_nothing_behind(db):
    store(db, "acme", events())
    with pytest.raises(NotFound), unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        store_events(repo, events("checkout")[:1] + events("new-svc"), create_services=True)
        store_events(repo, events("ghost"), create_services=False)
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        assert [s.name for s in repo.services()] == ["checkout"]


def test_cursor_and_raw_payload_upserts(db):
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme", create=True)
        assert repo.get_cursor("github", "o/r", "deployments") is None
        repo.set_cursor("github", "o/r", "deployments", {"updated_after": "x"})
        repo.set_cursor("github", "o/r", "deployments", {"updated_after": "y"})
        repo.save_raw("github", "o/r", "deployments", [("1", {"id": 1})], etag='"e1"')
        repo.save_raw("github", "o/r", "deployments", [("1", {"id": 1, "v": 2})])
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        assert repo.get_cursor("github", "o/r", "deployments") == {"updated_after": "y"}
        raws = repo.raw_payloads("github", "o/r", "deployments")
        assert [r.payload for r in raws] == [{"id": 1, "v": 2}]


def test_migrations_go_down_to_nothing_and_back_up(db):
    downgrade(db.engine, "base")
    tables = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    migrate(db.engine)
    tables = set(inspect(db.engine).get_table_names())
    assert {"tenants", "services", "deployments", "deployment_commits", "incidents"} <= tables
    store(db, "acme", events())
