"""The bulk rows written in the database's own format (`insights.store.bulk_rows`).

Commits stored from their compact form (`CommitRows`, the local-git ingest) equal the same
commits stored as events through the general upsert: every column, the surrogate ids' order and
the new / updated / unchanged counts, on SQLite and PostgreSQL, whether none, some or all of a
batch was stored before. Shipped-commit links COPYed in the binary format read back as listed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from insights.model import CommitRow, CommitRows, DeploymentEvent
from insights.pipeline import store_commit_rows, store_events
from insights.store import bulk_rows
from insights.store.db import unit_of_work
from insights.store.models import Deployment, DeploymentCommit
from insights.store.repository import COPY_MIN_ROWS, TenantRepository, _sqlite_utc

START = 1_767_225_600  # 2026-01-01T00:00:00Z


def row(n: int, message: str | None = "change", author: str | None = "Ada") -> CommitRow:
    sha = f"{(n * 2654435761) % 2**160:040x}"  # shas in another order than n
    parents = [f"{((n - 1) * 2654435761) % 2**160:040x}"] if n % 7 else []
    if n % 11 == 0:
        parents.append(f"{n:040x}")  # a merge
    text_ = None if message is None else f"{message} {n} — ünïcödé".encode()
    name = None if author is None else author.encode()
    return (sha.encode(), " ".join(parents).encode(), name, START + n * 61, START + n * 67, text_)


def _tenant_rows(db, tenant: str, query: str) -> list[tuple]:
    """The rows of `query` (with `:tenant` bound to the tenant's name) as tuples."""
    with unit_of_work(db.engine) as session:
        return [tuple(r) for r in session.execute(text(query), {"tenant": tenant})]


def stored(db, tenant: str) -> list[tuple]:
    """The tenant's commits, every column but the ids, in id order (so the order the rows
    were inserted in counts too)."""
    parents = "parents::text" if db.dialect == "postgresql" else "parents"
    return _tenant_rows(
        db,
        tenant,
        f"SELECT sha, authored_at, committed_at, author, message, {parents} FROM commits "
        "JOIN tenants t ON t.id = tenant_id WHERE t.name = :tenant ORDER BY commits.id",
    )


def write(db, tenant: str, rows: list[CommitRow]) -> tuple[int, int, int]:
    """Store `rows` for tenant `compact` as CommitRows, for any other tenant as events."""
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, tenant, create=True)
        batch = CommitRows("api", rows)
        if tenant == "compact":
            result = store_commit_rows(repo, batch)
        else:
            result = store_events(repo, batch.events(), create_services=True)
    counts = result.counts["commit"]
    return counts.new, counts.updated, counts.unchanged


def invalidated(db, tenant: str) -> list[tuple]:
    """What the tenant's writes told the read cache: per version, whether a service or every
    one, and from when (`insights.store.write_reach`)."""
    return _tenant_rows(
        db,
        tenant,
        "SELECT version, service_id IS NULL, affected_from FROM metric_writes "
        "JOIN tenants t ON t.id = tenant_id WHERE t.name = :tenant ORDER BY version, service_id",
    )


def both(db, rows: list[CommitRow]) -> tuple[int, int, int]:
    """Store `rows` both ways; the counts, every stored row and what the read cache was told
    must be the same."""
    counts = write(db, "compact", rows)
    assert write(db, "events", rows) == counts
    assert stored(db, "compact") == stored(db, "events")
    assert invalidated(db, "compact") == invalidated(db, "events")
    return counts


@pytest.fixture(params=[12, COPY_MIN_ROWS + 50, 5000 + 321], ids=["small", "copy", "two-slices"])
def size(request) -> int:
    return request.param


def test_first_ingest_stores_what_the_event_path_stores(db, size):
    rows = [row(n, author=None if n % 13 == 0 else "Ada") for n in range(size)]
    rows[3] = row(3, message=None)
    assert both(db, rows) == (size, 0, 0)
    assert both(db, rows) == (0, 0, size)  # all stored: the general upsert, both ways


def test_batch_with_some_commits_stored_counts_like_the_event_path(db, size):
    old = [row(n) for n in range(0, size, 3)]
    assert both(db, old) == (len(old), 0, 0)
    batch = [row(n) for n in range(size) if n != 3]
    batch.append(row(3, message="reworded"))
    first = min(batch)
    if first in old:  # the first sha (in sha order) new: the insert, not the probe, meets them
        batch.remove(first)
    new = sum(1 for r in batch if r[0] not in {o[0] for o in old})
    assert both(db, batch) == (new, 1, len(batch) - new - 1)
    assert {r[0]: r[4] for r in stored(db, "compact")}[row(3)[0].decode()] == "reworded 3 — ünïcödé"


def test_a_sha_twice_in_one_batch_keeps_the_last_like_the_event_path(db):
    rows = [row(n) for n in range(COPY_MIN_ROWS + 1)]
    rows.append(row(5, message="second"))
    assert both(db, rows) == (COPY_MIN_ROWS + 1, 0, 0)
    assert {r[0]: r[4] for r in stored(db, "compact")}[row(5)[0].decode()] == "second 5 — ünïcödé"


def test_sqlite_time_text_equals_the_stored_form_of_an_aware_time():
    for seconds in (0, 1, 951_782_400, START, 4_102_444_800, 1_234_567_890):
        assert bulk_rows.sqlite_time(seconds) == _sqlite_utc(datetime.fromtimestamp(seconds, UTC))


def test_links_of_a_batch_read_back_as_listed_and_are_replaced_when_relisted(db):
    shas = [f"{n:040x}" for n in range(COPY_MIN_ROWS * 2)]

    def deploy(name: str, commits: list[str]) -> DeploymentEvent:
        return DeploymentEvent(
            service="api",
            id=name,
            sha=commits[0],
            finished_at=datetime(2026, 1, 5, tzinfo=UTC),
            commits=commits,
        )

    def links() -> dict[str, list[str]]:
        with unit_of_work(db.engine) as session:
            rows = session.execute(
                select(Deployment.external_id, DeploymentCommit.sha)
                .join(Deployment, Deployment.id == DeploymentCommit.deployment_id)
                .order_by(Deployment.external_id, DeploymentCommit.sha)
            )
            found: dict[str, list[str]] = {}
            for name, sha in rows:
                found.setdefault(name, []).append(sha)
            return found

    def store(events: list[DeploymentEvent]) -> None:
        with unit_of_work(db.engine) as session:
            store_events(
                TenantRepository.open(session, "acme", create=True), events, create_services=True
            )

    store([deploy("v1", shas[:150]), deploy("v2", shas[150:]), deploy("v3", shas[:3])])
    assert links() == {"v1": shas[:150], "v2": shas[150:], "v3": shas[:3]}
    store([deploy("v1", shas[100:]), deploy("v2", shas[150:])])  # v1 relisted, v2 the same
    assert links() == {"v1": shas[100:], "v2": shas[150:], "v3": shas[:3]}


def test_a_first_ingest_after_a_deployment_listing_its_commits_reaches_that_deployment(db, size):
    """The commits a stored deployment lists arrive later, in one bulk batch: what the batch
    reaches (the deployment's finish: its lead time changes) is the event path's."""
    rows = [row(n) for n in range(size)]
    listed = (rows[7][0].decode(), rows[size - 1][0].decode())
    for tenant in ("compact", "events"):
        with unit_of_work(db.engine) as session:
            repo = TenantRepository.open(session, tenant, create=True)
            deployment = DeploymentEvent(
                service="api",
                id="d-1",
                environment="production",
                sha=listed[0],
                status="success",
                finished_at=datetime(2025, 6, 1, tzinfo=UTC),
                commits=listed,
            )
            store_events(repo, [deployment], create_services=True)
    assert both(db, rows) == (size, 0, 0)
    reached = [at for _, every, at in invalidated(db, "compact") if not every]
    last = reached[-1] if isinstance(reached[-1], datetime) else datetime.fromisoformat(reached[-1])
    assert last.replace(tzinfo=last.tzinfo or UTC) == datetime(2025, 6, 1, tzinfo=UTC)
