"""Leader election between replicas: only the elected process runs the scheduler.

APScheduler 3 shares a job store badly between processes (duplicate and missed runs, per its
FAQ), so replicas elect one leader through the database they already share:

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) taken on a dedicated
  connection that is kept open for the process lifetime. When the process dies its connection
  closes and PostgreSQL frees the lock at once; a follower's next poll takes it.
- SQLite (one host, several processes): a lease row in `leader_leases` that the leader renews
  every poll; a follower takes over once the lease has expired (`lease_seconds` after the
  leader's last renewal).

`Leadership` runs the poll loop in a thread and calls `on_elected` / `on_lost`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine, and_, create_engine, delete, insert, or_, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from insights.store.models import LeaderLease
from insights.timeutil import now

log = logging.getLogger(__name__)

DEFAULT_LOCK_NAME = "scheduler"


def holder_id() -> str:
    """Who holds a lock: host, process id and a random suffix (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_try_advisory_lock` derived from the lock name."""
    digest = hashlib.blake2b(f"insights:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LeaderLock(Protocol):
    """A lock at most one process holds at a time."""

    name: str
    holder: str

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process holds it afterwards."""
        ...

    def still_held(self) -> bool:
        """Confirm (and, for leases, renew) that this process still holds the lock."""
        ...

    def release(self) -> None:
        """Give the lock up so a follower can take it at its next poll."""
        ...


class AdvisoryLock:
    """PostgreSQL session-level advisory lock on a connection kept open outside the pool.

    The connection comes from its own NullPool engine in autocommit mode: returning it to a
    shared pool would keep the session (and the lock) alive after we think we let go.
    """

    def __init__(self, engine: Engine, name: str = DEFAULT_LOCK_NAME) -> None:
        self.name = name
        self.holder = holder_id()
        self.key = advisory_key(name)
        self._engine = create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._conn: Connection | None = None
        self._held = False

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def try_acquire(self) -> bool:
        try:
            got = self._connection().execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            )
            self._held = bool(got.scalar())
        except SQLAlchemyError as exc:
            log.warning("leader lock %s: database unavailable: %s", self.name, _first_line(exc))
            self._drop_connection()
            self._held = False
        return self._held

    def still_held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        try:
            # The lock lives exactly as long as this session, so a live session that still
            # shows the lock in pg_locks means we still hold it.
            held = self._conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = pg_backend_pid() AND granted"
                    " AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                {"key": self.key},
            ).scalar()
        except SQLAlchemyError as exc:
            log.warning("leader lock %s: connection lost: %s", self.name, _first_line(exc))
            self._drop_connection()
            held = 0
        self._held = bool(held)
        return self._held

    def release(self) -> None:
        if self._conn is not None and self._held:
            # Closing the connection below frees the lock anyway if unlocking fails.
            with contextlib.suppress(SQLAlchemyError):
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        self._held = False
        self._drop_connection()
        self._engine.dispose()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None


class LeaseLock:
    """A lease row in `leader_leases`: the holder renews it; anyone may take an expired one.

    Taking and renewing are one conditional UPDATE (or the first INSERT), so two processes
    can never both see success for the same lease period.
    """

    def __init__(
        self, engine: Engine, name: str = DEFAULT_LOCK_NAME, lease_seconds: float = 15.0
    ) -> None:
        self.name = name
        self.holder = holder_id()
        self.lease = timedelta(seconds=lease_seconds)
        self._engine = engine
        self._held = False

    def try_acquire(self) -> bool:
        table = LeaderLease.__table__
        current = now()
        try:
            with self._engine.begin() as conn:
                taken = conn.execute(
                    update(table)
                    .where(
                        and_(
                            table.c.name == self.name,
                            or_(table.c.holder == self.holder, table.c.expires_at < current),
                        )
                    )
                    .values(holder=self.holder, expires_at=current + self.lease)
                ).rowcount
            if not taken:
                with self._engine.begin() as conn:
                    conn.execute(
                        insert(table).values(
                            name=self.name, holder=self.holder, expires_at=current + self.lease
                        )
                    )
            self._held = True
        except IntegrityError:
            self._held = False  # someone else holds a live lease
        except SQLAlchemyError as exc:
            log.warning("leader lease %s: database unavailable: %s", self.name, _first_line(exc))
            self._held = False
        return self._held

    def still_held(self) -> bool:
        if not self._held:
            return False
        return self.try_acquire()

    def release(self) -> None:
        if not self._held:
            return
        table = LeaderLease.__table__
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    delete(table).where(
                        and_(table.c.name == self.name, table.c.holder == self.holder)
                    )
                )
        except SQLAlchemyError as exc:
            log.warning("leader lease %s: could not release: %s", self.name, _first_line(exc))
        self._held = False


def lock_for(
    engine: Engine, name: str = DEFAULT_LOCK_NAME, lease_seconds: float = 15.0
) -> LeaderLock:
    """The right lock for the database: an advisory lock on PostgreSQL, a lease elsewhere."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, name)
    return LeaseLock(engine, name, lease_seconds)


class Leadership:
    """Polls a `LeaderLock` in a thread; calls `on_elected` when won, `on_lost` when lost.

    A follower tries to take the lock every `poll_seconds`; the leader checks (and renews) it
    at the same pace. Callbacks run in the poll thread; an exception in one is logged and the
    lock is given up, so a broken leader does not keep the others out.
    """

    def __init__(
        self,
        lock: LeaderLock,
        on_elected: Callable[[], None],
        on_lost: Callable[[], None],
        poll_seconds: float = 5.0,
    ) -> None:
        self.lock = lock
        self.poll_seconds = poll_seconds
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.is_leader = False

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"leader-{self.lock.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop polling, step down (calling `on_lost`) and release the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(10.0, self.poll_seconds * 2))
        if self.is_leader:
            self._step_down()
        self.lock.release()

    def poll_once(self) -> None:
        """One round of the loop: keep or lose leadership, or try to win it."""
        if self.is_leader:
            if not self.lock.still_held():
                log.warning("lost leadership of %s (%s)", self.lock.name, self.lock.holder)
                self._step_down()
            return
        if self.lock.try_acquire():
            self.is_leader = True
            log.info("elected leader of %s (%s)", self.lock.name, self.lock.holder)
            try:
                self._on_elected()
            except Exception:
                log.exception("starting as leader failed; giving leadership up")
                self._step_down()
                self.lock.release()

    def _step_down(self) -> None:
        self.is_leader = False
        try:
            self._on_lost()
        except Exception:
            log.exception("stepping down as leader failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_seconds)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
