"""Big batches take the bulk write path (COPY on PostgreSQL) and keep the upsert contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from insights.model import CommitEvent, DeploymentEvent
from insights.pipeline import store_events
from insights.store.db import unit_of_work
from insights.store.models import Commit
from insights.store.repository import COPY_MIN_ROWS, TenantRepository

START = datetime(2026, 1, 5, 10, tzinfo=UTC)


def commit_events(count: int, message: str = "change") -> list[CommitEvent]:
    return [
        CommitEvent(
            service="api",
            sha=f"{n:040x}",
            committed_at=START + timedelta(minutes=n),
            parents=[f"{n - 1:040x}"] if n else [],
            message=f"{message} {n}",
        )
        for n in range(count)
    ]


def store(db, events) -> dict[str, tuple[int, int, int]]:
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme", create=True)
        result = store_events(repo, events, create_services=True)
    return {k: (c.new, c.updated, c.unchanged) for k, c in result.counts.items() if c.total}


def test_big_batch_counts_new_then_updated_and_unchanged(db):
    count = COPY_MIN_ROWS * 3
    assert store(db, commit_events(count)) == {"commit": (count, 0, 0)}
    changed = commit_events(count)
    changed[:100] = commit_events(100, message="reworded")
    assert store(db, changed) == {"commit": (0, 100, count - 100)}
    with unit_of_work(db.engine) as session:
        rows = {c.sha: c for c in session.scalars(select(Commit))}
    assert len(rows) == count
    first, last = rows[f"{0:040x}"], rows[f"{count - 1:040x}"]
    assert first.message == "reworded 0" and first.parents == []
    assert last.message == f"change {count - 1}"
    assert last.parents == [f"{count - 2:040x}"]
    assert last.committed_at == START + timedelta(minutes=count - 1)


def test_big_deployment_commit_lists_are_replaced_not_appended(db):
    shas = [f"{n:040x}" for n in range(COPY_MIN_ROWS * 2)]
    deployment = DeploymentEvent(
        service="api", id="d1", sha=shas[-1], finished_at=START, commits=shas
    )
    assert store(db, [deployment]) == {"deployment": (1, 0, 0)}
    fewer = deployment.model_copy(update={"commits": tuple(shas[:COPY_MIN_ROWS])})
    assert store(db, [fewer]) == {"deployment": (0, 1, 0)}
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        assert repo.counts()["deployment_commits"] == COPY_MIN_ROWS
