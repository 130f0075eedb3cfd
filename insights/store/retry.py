"""Transactions that are retried when the database aborts them for a conflict, not a fault.

PostgreSQL aborts one of two transactions that wait on each other's rows (deadlock, SQLSTATE
40P01) or that cannot be serialized (40001). Neither is the client's mistake nor an outage, and
re-running the whole transaction succeeds: `run_in_transaction` does that, a bounded number of
times with a small jittered backoff, so concurrent overlapping batches all land and no client
sees the conflict. Writers also take row locks in one order (sorted natural keys, see
`TenantRepository._upsert`), which makes such conflicts rare in the first place.

A connection failure is not retried here: it stays an `OperationalError`, which the API answers
with 503 "database unavailable". Retries used up (a pathological storm) raise `DatabaseBusy`.

    body = run_in_transaction(engine, lambda session: store(session, events))
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from insights.store.db import unit_of_work

log = logging.getLogger("insights.store")

T = TypeVar("T")
ATTEMPTS = 8
BASE_DELAY = 0.02  # seconds; doubled per attempt, capped, with ±50% jitter
MAX_DELAY = 0.5
RETRIED_SQLSTATES = {"40P01": "deadlock", "40001": "serialization failure"}


class DatabaseBusy(Exception):
    """The database kept aborting the transaction for conflicts after every retry."""


def conflict_kind(exc: BaseException) -> str | None:
    """'deadlock' or 'serialization failure' when `exc` is one (retrying helps), else None.

    `exc` is SQLAlchemy's wrapper, or psycopg's own error from the COPY paths, which talk to
    the driver directly.
    """
    error = getattr(exc, "orig", None) or exc
    sqlstate = getattr(error, "sqlstate", None)
    return RETRIED_SQLSTATES.get(str(sqlstate)) if sqlstate else None


def run_in_transaction(
    engine: Engine,
    work: Callable[..., T],
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`work(session)` in one transaction, re-run from scratch after a deadlock or
    serialization failure (each attempt's writes are rolled back before the next)."""
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work(engine) as session:
                return work(session)
        except (DBAPIError, psycopg.Error) as exc:
            kind = conflict_kind(exc)
            if kind is None:
                raise
            if attempt == attempts:
                log.error("transaction aborted by %s %d times; giving up", kind, attempts)
                raise DatabaseBusy(f"{kind} after {attempts} attempts") from None
            delay = min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            log.info("transaction aborted by %s (attempt %d); retrying", kind, attempt)
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises
