"""The upsert shortcuts (insert-first for new keys, plain JSON lists, UTC times on SQLite)
give exactly the counts and stored values of the full compare-then-write path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select, text

from insights.model import CommitEvent
from insights.pipeline import store_events
from insights.store.db import unit_of_work
from insights.store.models import Commit
from insights.store.repository import (
    COPY_MIN_ROWS,
    TenantRepository,
    _plain_list_json,
    _sqlite_utc,
)

START = datetime(2026, 1, 5, 10, tzinfo=UTC)


def commit(n: int, message: str = "change", parents: list[str] | None = None) -> CommitEvent:
    return CommitEvent(
        service="api",
        sha=f"{n:040x}",
        committed_at=START + timedelta(minutes=n),
        parents=[f"{n - 1:040x}"] if parents is None and n else (parents or []),
        message=f"{message} {n}",
    )


def store(db, events) -> tuple[int, int, int]:
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme", create=True)
        counts = store_events(repo, events, create_services=True).counts["commit"]
    return counts.new, counts.updated, counts.unchanged


def stored_messages(db) -> dict[str, str]:
    with unit_of_work(db.engine) as session:
        return {c.sha: c.message for c in session.scalars(select(Commit))}


def test_batch_starting_with_a_new_key_still_counts_updated_and_unchanged(db):
    for size in (10, COPY_MIN_ROWS * 2):  # executemany and COPY paths
        db_offset = 10_000 * size
        old = [commit(db_offset + n) for n in range(0, size, 2)]  # even numbers stored
        assert store(db, old) == (len(old), 0, 0)
        batch = [commit(db_offset + n) for n in range(1, size, 2)]  # odd numbers: new
        batch.append(commit(db_offset, message="reworded"))  # updated
        batch += old[1:]  # unchanged
        assert store(db, batch) == (size // 2, 1, len(old) - 1)
        messages = stored_messages(db)
        assert messages[f"{db_offset:040x}"] == f"reworded {db_offset}"
        assert messages[f"{db_offset + 1:040x}"] == f"change {db_offset + 1}"
        assert sum(1 for sha in messages if int(sha, 16) >= db_offset) == size


def test_first_ingest_of_new_keys_counts_every_row_new_once(db):
    events = [commit(n) for n in range(COPY_MIN_ROWS + 5)]
    assert store(db, events + events[:3]) == (len(events), 0, 0)
    assert store(db, events) == (0, 0, len(events))


def test_parent_lists_are_stored_as_json_dumps_writes_them(db):
    events = [commit(1, parents=[]), commit(2), commit(3, parents=["ABCDEF12"])]
    events.append(commit(4, parents=[f"{2:040x}", f"{3:040x}"]))
    store(db, events)
    with unit_of_work(db.engine) as session:
        column = "parents::text" if db.engine.dialect.name == "postgresql" else "parents"
        raw = dict(session.execute(text(f"SELECT sha, {column} FROM commits")).all())
    for event in events:
        assert json.loads(raw[event.sha]) == list(event.parents)
    if db.engine.dialect.name == "sqlite":
        assert raw[f"{4:040x}"] == json.dumps([f"{2:040x}", f"{3:040x}"])
        assert raw[f"{1:040x}"] == "[]"


def test_json_list_shortcut_leaves_anything_to_escape_to_json_dumps():
    process = _plain_list_json(json.dumps)
    for value in ([], ["ab12"], ["ab", "CD"], ["é"], ['quo"te'], ["a b"], [1, 2], ["a", None]):
        assert process(value) == json.dumps(value)
    assert process({"k": ["v"]}) == json.dumps({"k": ["v"]})


def test_sqlite_utc_text_is_the_same_for_utc_and_other_offsets():
    instant = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
    shifted = instant.astimezone(timezone(timedelta(hours=-7)))
    assert _sqlite_utc(instant) == _sqlite_utc(shifted) == "2026-03-01 12:30:05.000000"
    assert _sqlite_utc(instant.replace(microsecond=7)) == "2026-03-01 12:30:05.000007"
    assert _sqlite_utc(datetime(999, 1, 2, tzinfo=UTC)) == "0999-01-02 00:00:00.000000"


def test_big_batches_of_every_kind_read_back_as_stored(db):
    """Batches past COPY_MIN_ROWS go through COPY on PostgreSQL (binary format where every
    column has one): awkward text (tabs, newlines, backslashes, quotes, non-ASCII), missing
    optional fields, other time offsets and booleans read back exactly, on either backend."""
    import pandas as pd

    from insights.model import ChangeEvent, DeploymentEvent, IncidentEvent

    odd = 'tab\there\nnew line \\N back\\slash "quoted" ünïcødé ✓ \r'
    size = COPY_MIN_ROWS + 7
    plus_five = timezone(timedelta(hours=5, minutes=30))
    commits = [
        CommitEvent(
            service="api",
            sha=f"{n:040x}",
            committed_at=(START + timedelta(minutes=n)).astimezone(plus_five),
            authored_at=None if n % 3 else START,
            author=None if n % 2 else f"{odd} {n}",
            message=f"{odd} {n}",
            parents=[f"{n + 1:040x}"],
        )
        for n in range(size)
    ]
    deployments = [
        DeploymentEvent(
            service="api",
            id=f"{odd} d{n}",
            sha=f"{n:040x}",
            started_at=None if n % 2 else START,
            finished_at=START + timedelta(hours=n),
            status="failure" if n % 5 == 0 else "success",
            commits=[f"{n:040x}"] if n % 4 else None,
        )
        for n in range(size)
    ]
    changes = [
        ChangeEvent(
            service="api",
            id=f"c{n}",
            title=odd,
            opened_at=START,
            merged_at=None if n % 2 else START + timedelta(hours=1),
            commits=[f"{n:040x}"],
        )
        for n in range(size)
    ]
    incidents = [
        IncidentEvent(
            service="api",
            id=f"i{n}",
            opened_at=START,
            resolved_at=None if n % 2 else START + timedelta(hours=2),
            severity=odd if n % 3 == 0 else None,
        )
        for n in range(size)
    ]
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme", create=True)
        store_events(repo, [*commits, *deployments, *changes, *incidents], create_services=True)
    with unit_of_work(db.engine) as session:
        stored = {c.sha: c for c in session.scalars(select(Commit))}
        for event in commits:
            row = stored[event.sha]
            assert (row.committed_at, row.authored_at) == (event.committed_at, event.authored_at)
            assert (row.author, row.message, row.parents) == (
                event.author,
                event.message,
                list(event.parents),
            )
        frames = TenantRepository.open(session, "acme").delivery_frames()
    assert len(frames.deployments) == len(frames.changes) == len(frames.incidents) == size
    by_id = frames.deployments.set_index("external_id")
    for event in deployments:
        row = by_id.loc[event.id]
        assert row["status"] == event.status.value
        assert bool(row["commits_listed"]) is (event.commits is not None)
        assert bool(pd.isna(row["started_at"])) is (event.started_at is None)
    assert set(frames.incidents["severity"].dropna()) == {odd}
