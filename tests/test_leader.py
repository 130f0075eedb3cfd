"""Leader election: one holder at a time, hand-over on release, death and lease expiry."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, select, text, update

from insights.ops.leader import AdvisoryLock, Leadership, LeaseLock, advisory_key, lock_for
from insights.store.models import LeaderLease
from insights.timeutil import now


def test_only_one_of_two_contenders_holds_the_lock(db):
    first, second = lock_for(db.engine), lock_for(db.engine)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.still_held()
        assert not second.still_held()
    finally:
        first.release()
        second.release()


def test_released_lock_is_taken_by_the_next_poll(db):
    first, second = lock_for(db.engine), lock_for(db.engine)
    try:
        assert first.try_acquire()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


def test_advisory_lock_is_freed_when_the_leaders_session_dies(pg_db):
    leader, follower = AdvisoryLock(pg_db.engine), AdvisoryLock(pg_db.engine)
    try:
        assert leader.try_acquire()
        assert not follower.try_acquire()
        # The leader's process "dies": its backend is terminated from outside.
        admin = create_engine(pg_db.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted AND database ="
                    " (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).all()
        admin.dispose()
        assert killed == [(True,)]
        assert not leader.still_held()
        assert follower.try_acquire()
        assert follower.still_held()
    finally:
        leader.release()
        follower.release()


def test_advisory_key_is_stable_and_signed_64_bit():
    key = advisory_key("scheduler")
    assert key == advisory_key("scheduler")
    assert key != advisory_key("other")
    assert -(2**63) <= key < 2**63


def test_expired_lease_is_taken_over_and_the_old_holder_knows(sqlite_db):
    leader = LeaseLock(sqlite_db.engine, lease_seconds=30)
    follower = LeaseLock(sqlite_db.engine, lease_seconds=30)
    assert leader.try_acquire()
    assert not follower.try_acquire()
    # The leader stops renewing (process frozen or dead) until its lease has run out.
    with sqlite_db.engine.begin() as conn:
        conn.execute(update(LeaderLease.__table__).values(expires_at=now()))
    time.sleep(0.01)
    assert follower.try_acquire()
    assert not leader.still_held()
    with sqlite_db.engine.connect() as conn:
        holder = conn.execute(select(LeaderLease.holder)).scalar_one()
    assert holder == follower.holder


def test_leader_renews_its_lease_on_every_check(sqlite_db):
    lock = LeaseLock(sqlite_db.engine, lease_seconds=30)
    assert lock.try_acquire()
    with sqlite_db.engine.connect() as conn:
        first = conn.execute(select(LeaderLease.expires_at)).scalar_one()
    time.sleep(0.01)
    assert lock.still_held()
    with sqlite_db.engine.connect() as conn:
        renewed = conn.execute(select(LeaderLease.expires_at)).scalar_one()
    assert renewed > first


def test_leadership_calls_back_on_election_and_hands_over_on_stop(db):
    events: list[str] = []
    a = Leadership(
        lock_for(db.engine), lambda: events.append("a+"), lambda: events.append("a-"), 0.05
    )
    b = Leadership(
        lock_for(db.engine), lambda: events.append("b+"), lambda: events.append("b-"), 0.05
    )
    a.poll_once()
    b.poll_once()
    assert (a.is_leader, b.is_leader) == (True, False)
    b.start()
    a.stop()
    deadline = time.monotonic() + 5
    while not b.is_leader and time.monotonic() < deadline:
        time.sleep(0.02)
    b.stop()
    assert events == ["a+", "a-", "b+", "b-"]


def test_failing_election_callback_gives_the_lock_up(db):
    def broken() -> None:
        raise RuntimeError("scheduler could not start")

    lost: list[bool] = []
    a = Leadership(lock_for(db.engine), broken, lambda: lost.append(True), 0.05)
    other = lock_for(db.engine)
    try:
        a.poll_once()
        assert not a.is_leader
        assert lost == [True]
        assert other.try_acquire()
    finally:
        other.release()
        a.stop()


@pytest.mark.parametrize("bad_url", ["postgresql+psycopg://nobody@127.0.0.1:1/none"])
def test_unreachable_database_means_not_leader_not_a_crash(bad_url):
    lock = AdvisoryLock(create_engine(bad_url))
    assert not lock.try_acquire()
    assert not lock.still_held()
    lock.release()
