"""`change_commits`: each stored change's listed commits as rows, the index a window-bounded
read finds the changes a window ships by (`store/window_read.py`). They follow the change's
`commits` on every write, go with it, and migration 0010 fills them from changes stored
before it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select, text

from insights import pipeline
from insights.model import parse_event
from insights.store.db import downgrade, migrate, unit_of_work
from insights.store.models import Change, ChangeCommit
from insights.store.repository import TenantRepository

A, B, C = "a" * 40, "b" * 40, "c" * 40


def change(number: str, commits: list[str], **fields) -> dict:
    return {
        "type": "change",
        "service": "checkout",
        "id": number,
        "title": f"change {number}",
        "opened_at": "2026-03-02T09:00:00Z",
        "merged_at": "2026-03-02T12:00:00Z",
        "merge_sha": commits[-1] if commits else None,
        "commits": commits,
        **fields,
    }


def write(db, *events: dict) -> None:
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme", create=True)
        pipeline.store_events(repo, [parse_event(e) for e in events], create_services=True)


def listed(db) -> set[tuple[str, str]]:
    """(change external id, sha) of every stored row."""
    with unit_of_work(db.engine) as session:
        rows = session.execute(
            select(Change.external_id, ChangeCommit.sha).join(
                Change, Change.id == ChangeCommit.change_id
            )
        ).all()
    return {(str(i), str(s)) for i, s in rows}


def test_a_changes_rows_follow_its_listed_commits_on_every_write(db):
    write(db, change("1", [A, B]), change("2", [C]), change("3", []))
    assert listed(db) == {("1", A), ("1", B), ("2", C)}
    # a later delivery lists other commits: the rows are replaced, the others stay
    write(db, change("1", [B, C]))
    assert listed(db) == {("1", B), ("1", C), ("2", C)}
    # the same change again, and a change whose title alone changed: nothing else moves
    write(db, change("1", [B, C]), change("2", [C], title="renamed"))
    assert listed(db) == {("1", B), ("1", C), ("2", C)}
    write(db, change("2", []))
    assert listed(db) == {("1", B), ("1", C)}


def test_a_changes_rows_go_with_it(db):
    write(db, change("1", [A, B]))
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        removed = repo.clear_service_records(repo.require_service("checkout").id)
    assert removed["changes"] == 1
    assert listed(db) == set()


def test_migration_0010_fills_the_rows_of_changes_stored_before_it(db):
    write(db, change("1", [A, B]), change("2", [C]))
    downgrade(db.engine, "0009")
    with db.engine.begin() as conn:  # a change stored by 0009's code: no rows of its own
        tenant, service = conn.execute(text("SELECT tenant_id, service_id FROM changes")).first()
        conn.execute(
            insert(Change.__table__),
            {
                "tenant_id": tenant,
                "service_id": service,
                "external_id": "3",
                "opened_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
                "commits": [A, "not a sha but stored" * 4, C, C],
            },
        )
    migrate(db.engine)
    assert listed(db) == {("1", A), ("1", B), ("2", C), ("3", A), ("3", C)}
