"""`compute_report` and `compute_all` on real SQLite and PostgreSQL databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from metrics_support import commit, dep, frames, incident
from sqlalchemy import func, select

from insights import pipeline
from insights.errors import NotFound, UserError
from insights.metrics.compute import compute
from insights.metrics.scope import parse_scope
from insights.metrics.windows import parse_window
from insights.model import parse_event
from insights.store.db import unit_of_work
from insights.store.models import MetricSnapshot
from insights.store.repository import TenantRepository

NOW = datetime(2026, 3, 1, tzinfo=UTC)
W02 = parse_window("2026-W02", NOW)

EVENTS = [
    commit("aa01", "01-05 08:00"),
    commit("bb02", "01-05 09:00", ("aa01",)),
    commit("cc03", "01-05 10:00", ("bb02",)),
    commit("dd04", "01-05 11:00", ("cc03",)),
    dep("d0", "aa01", "2025-12-29T12:00:00Z"),
    dep("d1", "bb02", "01-05 12:00"),
    dep("d2", "dd04", "01-06 13:00"),
    dep("d3", "bb02", "01-06 13:30"),
    incident("INC-1", "01-07 10:00", "01-07 12:00", deployment_id="d1"),
    dep("p1", "ee05", "01-06 09:00", service="payments", commits=[]),
    dep("s1", "ee05", "01-06 08:00", service="search", env="staging"),
]


def store(db, events=EVENTS, tenant="acme"):
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, tenant, create=True)
        repo.ensure_service("checkout", team="payments-team")
        repo.ensure_service("payments", team="payments-team")
        repo.ensure_service("search", team="discovery")
        pipeline.store_events(repo, [parse_event(e) for e in events], create_services=True)


def test_compute_report_matches_the_pure_computation(db):
    store(db)
    with unit_of_work(db.engine) as session:
        report = pipeline.compute_report(session, "acme", parse_scope("service:checkout"), W02)
    pure = compute(frames([e for e in EVENTS if e["service"] == "checkout"]), W02)
    assert report.deployment_count == pure.deployment_count == 3
    assert report.lead_time_hours == pure.lead_time_hours
    assert report.failed_deployments == pure.failed_deployments == 2  # rollback + incident
    assert report.change_failure_rate == pure.change_failure_rate
    assert report.previous is not None and report.previous.window.label == "2026-W01"
    assert report.previous.deployment_count == 1
    assert [w.window.label for w in report.history][-2:] == ["2026-W01", "2026-W02"]
    assert len(report.history) == 12
    assert report.history[-1].deployment_count == 3
    assert report.deployments_by_day == {
        "2026-01-05": 1,
        "2026-01-06": 2,
        "2026-01-07": 0,
        "2026-01-08": 0,
        "2026-01-09": 0,
        "2026-01-10": 0,
        "2026-01-11": 0,
    }
    assert report.services == ["checkout"]


def test_team_and_tenant_scopes_cover_their_services(db):
    store(db)
    with unit_of_work(db.engine) as session:
        team = pipeline.compute_report(session, "acme", parse_scope("team:payments-team"), W02)
        tenant = pipeline.compute_report(session, "acme", parse_scope("tenant"), W02, history=3)
    assert team.services == ["checkout", "payments"]
    assert team.deployment_count == 4
    assert tenant.scope.name == "acme"
    assert tenant.deployment_count == 4  # search only deployed to staging
    assert len(tenant.history) == 3


def test_compute_all_stores_one_snapshot_per_service_team_and_tenant(db):
    store(db)
    with unit_of_work(db.engine) as session:
        reports = pipeline.compute_all(session, "acme", W02)
    scopes = [(r.scope.kind, r.scope.name) for r in reports]
    assert scopes == [
        ("service", "checkout"),
        ("service", "payments"),
        ("service", "search"),
        ("team", "discovery"),
        ("team", "payments-team"),
        ("tenant", "acme"),
    ]
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        snap = repo.snapshot("service", "checkout", W02.start, W02.end)
        assert snap is not None
        assert snap.data["deployment_count"] == 3
        assert snap.data["previous"]["deployment_count"] == 1
    with unit_of_work(db.engine) as session:  # computing again replaces, never duplicates
        pipeline.compute_all(session, "acme", W02)
        count = session.execute(select(func.count()).select_from(MetricSnapshot)).scalar_one()
        assert count == 6


def test_unknown_service_team_or_tenant_is_not_found(db):
    store(db)
    with unit_of_work(db.engine) as session:
        for scope in ("service:nope", "team:nope"):
            with pytest.raises(NotFound, match="nope"):
                pipeline.compute_report(session, "acme", parse_scope(scope), W02)
        with pytest.raises(NotFound, match="ghost"):
            pipeline.compute_report(session, "ghost", parse_scope("tenant"), W02)
        with pytest.raises(UserError, match="history"):
            pipeline.compute_report(session, "acme", parse_scope("tenant"), W02, history=0)


def test_tenant_without_data_reports_an_empty_window(db):
    with unit_of_work(db.engine) as session:
        TenantRepository.open(session, "empty", create=True)
    with unit_of_work(db.engine) as session:
        report = pipeline.compute_report(session, "empty", parse_scope("tenant"), W02)
    assert report.deployment_count == 0
    assert report.change_failure_rate is None
    assert report.previous is not None and report.previous.lead_time_hours.median is None


def test_out_of_order_and_duplicate_events_stored_give_the_same_report(db):
    store(db, EVENTS, tenant="ordered")
    messy = [*reversed(EVENTS), *EVENTS[4:9]]  # reversed, then deployments/incident again
    store(db, messy, tenant="messy")
    with unit_of_work(db.engine) as session:
        a = pipeline.compute_report(session, "ordered", parse_scope("tenant"), W02, history=2)
        b = pipeline.compute_report(session, "messy", parse_scope("tenant"), W02, history=2)
    assert a.model_dump(exclude={"tenant", "scope"}) == b.model_dump(exclude={"tenant", "scope"})
    assert a.deployment_count == 4
