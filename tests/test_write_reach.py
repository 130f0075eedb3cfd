"""Stored reads stay valid after writes that cannot reach them, and every write path that can
change a closed window's results changes the next read of it (`store/write_reach.py`,
`store/read_cache.py`), on SQLite and PostgreSQL. Each read is checked against the
whole-history computation."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from insights import pipeline
from insights.deliver.text import render_json
from insights.metrics.result import Scope
from insights.metrics.windows import week
from insights.model import parse_event
from insights.store import read_cache
from insights.store.db import unit_of_work
from insights.store.models import MetricSnapshot, MetricWrite
from insights.store.repository import TenantRepository
from insights.timeutil import now

BASE = datetime(2025, 9, 1, tzinfo=UTC)  # a Monday: ISO 2025-W36
WEEKS = 15  # one deployment a week, weeks 0..14; none after
READ = week(*(BASE + timedelta(weeks=WEEKS - 1)).isocalendar()[:2])  # the last deployed week
SCOPE = Scope(kind="service", name="checkout")
_tenants = itertools.count()


def at(weeks: float, hours: float = 0) -> str:
    return (BASE + timedelta(weeks=weeks, hours=hours)).isoformat().replace("+00:00", "Z")


def sha(name: str) -> str:
    return name.encode().hex().ljust(40, "0")[:40]


def history() -> list[dict]:
    events: list[dict] = []
    for k in range(WEEKS):
        for part, hour in (("a", 0), ("b", 9)):
            events.append(
                {
                    "type": "commit",
                    "service": "checkout",
                    "sha": sha(f"c{k}{part}"),
                    "committed_at": at(k, hour),
                }
            )
        listed = [sha(f"c{k}a"), sha(f"c{k}b")]
        if k == WEEKS - 1:
            listed.append(sha("late"))  # a commit whose record arrives later
        events.append(
            {
                "type": "deployment",
                "service": "checkout",
                "id": f"d{k}",
                "sha": sha(f"c{k}b"),
                "environment": "production",
                "status": "success",
                "finished_at": at(k, 34),
                "commits": listed,
            }
        )
    events.append(
        {
            "type": "incident",
            "service": "checkout",
            "id": "INC-1",
            "opened_at": at(WEEKS - 2, 40),
            "resolved_at": at(WEEKS - 2, 44),
            "deployment_id": f"d{WEEKS - 2}",
        }
    )
    return events


def store(engine, events: list[dict]) -> str:
    tenant = f"t{next(_tenants)}"
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, tenant, create=True)
        repo.ensure_service("checkout", team="core")
        pipeline.store_events(repo, [parse_event(e) for e in events], create_services=True)
    return tenant


def write(engine, tenant: str, *events: dict) -> None:
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, tenant)
        pipeline.store_events(repo, [parse_event(e) for e in events], create_services=False)


def read(engine, tenant: str, window=READ) -> str:
    """The served document, after checking it is the whole history's."""
    with unit_of_work(engine) as session:
        served = pipeline.metrics_document(session, tenant, SCOPE, window)
    with unit_of_work(engine) as session:
        full = pipeline.compute_report(session, tenant, SCOPE, window, 1, whole_history=True)
    assert served == render_json(full)
    return served


def stored_at(engine, tenant: str) -> list[datetime]:
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, tenant)
        return list(
            session.scalars(
                select(MetricSnapshot.computed_at)
                .where(MetricSnapshot.tenant_id == repo.tenant_id)
                .order_by(MetricSnapshot.scope_kind, MetricSnapshot.window_start)
            )
        )


def test_a_deployment_recorded_today_keeps_the_stored_reads_of_last_year(db):
    tenant = store(db.engine, history())
    first = read(db.engine, tenant)
    kept = stored_at(db.engine, tenant)
    assert len(kept) == 14  # the document and the 13 windows it tested
    today = now()
    write(
        db.engine,
        tenant,
        {
            "type": "deployment",
            "service": "checkout",
            "id": "today",
            "sha": sha("today"),
            "environment": "production",
            "status": "success",
            "finished_at": today.isoformat(),
            "commits": [],
        },
    )
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, tenant)
        reach = session.scalar(
            select(func.min(MetricWrite.affected_from)).where(
                MetricWrite.tenant_id == repo.tenant_id,
                MetricWrite.version == read_cache.data_version(session, repo.tenant_id),
            )
        )
    # it reaches back to the deployment before it (d14: a rollback would fail that one)
    assert reach == datetime.fromisoformat(at(WEEKS - 1, 34))
    assert READ.end > reach  # so the stored document of that week is stale ...
    assert read(db.engine, tenant) == first  # ... and recomputed to the same bytes
    # a second deployment today reaches back only to the first one: nothing stored is stale
    before = stored_at(db.engine, tenant)
    write(
        db.engine,
        tenant,
        {
            "type": "deployment",
            "service": "checkout",
            "id": "today-2",
            "sha": sha("today-2"),
            "environment": "production",
            "status": "success",
            "finished_at": (today + timedelta(seconds=1)).isoformat(),
            "commits": [],
        },
    )
    assert read(db.engine, tenant) == first
    assert stored_at(db.engine, tenant) == before  # served as stored, nothing recomputed


def _deployment(id_: str, weeks: float, sha_name: str) -> dict:
    return {
        "type": "deployment",
        "service": "checkout",
        "id": id_,
        "sha": sha(sha_name),
        "environment": "production",
        "status": "success",
        "finished_at": at(weeks),
        "commits": [],
    }


def _incident(id_: str, weeks: float, **extra) -> dict:
    return {"type": "incident", "service": "checkout", "id": id_, "opened_at": at(weeks), **extra}


def _events(*events: dict) -> Callable:
    return lambda engine, tenant: write(engine, tenant, *events)


def _repo_call(call: Callable) -> Callable:
    def run(engine, tenant: str) -> None:
        with unit_of_work(engine) as session:
            repo = TenantRepository.open(session, tenant)
            call(repo, repo.require_service("checkout").id)

    return run


def _pattern(engine, tenant: str) -> None:
    from insights.config import ServiceConfig
    from insights.store import registry

    with unit_of_work(engine) as session:
        registry.put_child(
            session,
            tenant,
            "service",
            ServiceConfig(name="checkout", team="core", production_pattern="^prod-eu$"),
            "test",
        )


LATE = {
    # a rollback weeks later (no deployment between): the last deployment of the week failed
    "rollback": _events(_deployment("r1", WEEKS + 3, "c13b")),
    # an unlinked incident weeks later is blamed on the last deployment before it
    "unlinked incident": _events(_incident("INC-2", WEEKS + 5)),
    # an incident opened months later, linked to the week's deployment
    "linked incident": _events(_incident("INC-3", WEEKS + 20, deployment_id="d14")),
    # an incident of the week before resolved later than it was: its recovery time changes
    "resolved later": _events(
        {
            **_incident("INC-1", 0, resolved_at=at(WEEKS + 2), deployment_id="d13"),
            "opened_at": at(WEEKS - 2, 40),
        }
    ),
    # the record of a commit the week's deployment listed, committed after it (lead time 0)
    "late commit": _events(
        {"type": "commit", "service": "checkout", "sha": sha("late"), "committed_at": at(30)}
    ),
    # a change opened later whose merge commit the week's deployment shipped
    "late change": _events(
        {
            "type": "change",
            "service": "checkout",
            "id": "42",
            "title": "late",
            "opened_at": at(WEEKS - 2),
            "first_commit_at": at(WEEKS - 2),
            "merged_at": at(WEEKS - 1, 20),
            "merge_sha": sha(f"c{WEEKS - 1}b"),
            "commits": [sha(f"c{WEEKS - 1}a")],
        }
    ),
    # an earlier deployment that first ships a commit the week's deployment listed
    "earlier shipment": _events(
        {**_deployment("e1", 2.5, "e1"), "commits": [sha(f"c{WEEKS - 1}a")]}
    ),
    "deleted deployment": _repo_call(lambda repo, s: repo.delete_deployments(s, ["d14"])),
    "deleted incident": _repo_call(lambda repo, s: repo.delete_incidents(s, ["INC-1"])),
    "rebuild": _repo_call(lambda repo, s: repo.clear_service_records(s)),
    "production pattern": _pattern,
}


@pytest.mark.parametrize("late", list(LATE))
def test_a_late_write_changes_the_next_read_of_a_closed_week(db, late):
    tenant = store(db.engine, history())
    nxt = week(*(READ.end + timedelta(days=1)).isocalendar()[:2])
    before = read(db.engine, tenant)
    following = read(db.engine, tenant, nxt)  # its baseline holds the week: stored
    LATE[late](db.engine, tenant)
    assert read(db.engine, tenant) != before
    read(db.engine, tenant, nxt)  # checked against the whole history
    assert following is not None


def test_a_late_deployment_that_is_no_successful_production_one_keeps_the_stored_reads(db):
    """A deployment to staging, or a failed one, inside a closed week changes no metric: the
    stored reads stay valid (served as stored, equal to the whole history). The same
    deployment later promoted to production, or turned successful, reaches the week."""
    tenant = store(db.engine, history())
    before = read(db.engine, tenant)
    kept = stored_at(db.engine, tenant)
    staging = {**_deployment("s1", WEEKS - 1.5, "s1"), "environment": "staging"}
    failed = {**_deployment("f1", WEEKS - 1.4, "f1"), "status": "failure"}
    write(db.engine, tenant, staging, failed)
    assert read(db.engine, tenant) == before
    assert stored_at(db.engine, tenant) == kept  # nothing was recomputed
    write(db.engine, tenant, {**staging, "environment": "production"})
    promoted = read(db.engine, tenant)
    assert promoted != before
    write(db.engine, tenant, {**failed, "status": "success"})
    assert read(db.engine, tenant) != promoted


def test_reaches_are_kept_for_a_bounded_number_of_versions(sqlite_db):
    tenant = store(sqlite_db.engine, history())
    with unit_of_work(sqlite_db.engine) as session:
        repo = TenantRepository.open(session, tenant)
        version = read_cache.data_version(session, repo.tenant_id)
        for _ in range(3):
            read_cache.bump(session, repo.tenant_id, {})
        current = read_cache.data_version(session, repo.tenant_id)
        assert read_cache.reach_since(session, repo.tenant_id, version, current, [1]) is None
        assert (
            read_cache.reach_since(session, repo.tenant_id, current - read_cache.KEEP, current, [])
            == read_cache.BEGINNING
        )
