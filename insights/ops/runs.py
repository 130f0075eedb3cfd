"""Job runs: every scheduled or manual run recorded in `job_runs` (start, end, outcome, counts).

A scheduled run is claimed by inserting its `run_key` (job id + scheduled fire time) before it
does any work. `run_key` is unique, so when two processes ever fire the same job for the same
time (a leader hand-over mid-run, a clock jump) only the first insert wins and the second
process skips the run: belt and braces behind the leader lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from insights.errors import UserError
from insights.store.db import unit_of_work
from insights.store.models import JobRun, Tenant
from insights.store.repository import ensure_tenant, get_tenant
from insights.timeutil import iso, now

log = logging.getLogger(__name__)

OUTCOMES = ("running", "success", "partial", "failed", "skipped", "abandoned")


def run_key(job_id: str, fire_time: datetime) -> str:
    """`sync:acme@2026-01-05T10:00:00Z`: the identity of one scheduled fire of one job."""
    return f"{job_id}@{iso(fire_time)}"


def claim_run(
    engine: Engine, job: str, tenant: str | None, key: str | None, detail: dict[str, Any]
) -> int | None:
    """Record a run as started; None when `key` was already claimed (then do not run)."""
    try:
        with unit_of_work(engine) as session:
            tenant_id = ensure_tenant(session, tenant)[0].id if tenant else None
            run = JobRun(
                tenant_id=tenant_id,
                job=job,
                run_key=key,
                started_at=now(),
                outcome="running",
                detail=detail,
            )
            session.add(run)
            session.flush()
            return run.id
    except IntegrityError:
        return None


def finish_run(engine: Engine, run_id: int, outcome: str, detail: dict[str, Any]) -> None:
    """Record how a run ended; `detail` is merged into what the claim stored."""
    with unit_of_work(engine) as session:
        run = session.get(JobRun, run_id)
        assert run is not None
        run.finished_at = now()
        run.outcome = outcome
        run.detail = {**(run.detail or {}), **detail}


@dataclass
class RunResult:
    """What `recorded_run` did: `run_id` None means another process had already claimed it."""

    run_id: int | None
    outcome: str
    detail: dict[str, Any]


def recorded_run(
    engine: Engine,
    job: str,
    tenant: str | None,
    key: str | None,
    work: Callable[[], dict[str, Any]],
    detail: dict[str, Any] | None = None,
) -> RunResult:
    """Claim `key`, run `work` and record its outcome; a second claim of a key does nothing.

    `work` returns the counts to store; a non-zero `failures` count among them (deliveries
    that did not go out) makes the run `partial`. An exception is recorded as `failed` with
    its first line (our errors never carry secrets) and is not re-raised: the scheduler keeps
    going.
    """
    run_id = claim_run(engine, job, tenant, key, detail or {})
    if run_id is None:
        log.info("run %s already claimed by another process: skipped", key)
        return RunResult(None, "skipped", {})
    try:
        counts = work()
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, UserError):
            log.exception("run %s failed", key or job)
        text = message if isinstance(exc, UserError) else f"{type(exc).__name__}: {message}"
        result = {"error": text[:500]}
        finish_run(engine, run_id, "failed", result)
        return RunResult(run_id, "failed", result)
    outcome = "partial" if counts.get("failures") else "success"
    finish_run(engine, run_id, outcome, counts)
    return RunResult(run_id, outcome, counts)


def abandon_stale_runs(engine: Engine, older_than: timedelta) -> int:
    """Mark scheduled runs still `running` that started before `older_than` ago as
    `abandoned`.

    A new leader calls this: such runs belonged to a leader that died mid-run. Manual runs
    (no `run_key`, e.g. `insights digest`) are left alone: their process may still be working.
    """
    with unit_of_work(engine) as session:
        result = session.execute(
            update(JobRun)
            .where(
                JobRun.outcome == "running",
                JobRun.run_key.is_not(None),
                JobRun.started_at < now() - older_than,
            )
            .values(outcome="abandoned", finished_at=now())
        )
        return result.rowcount or 0


@dataclass
class RunRow:
    """One line of `insights runs`."""

    id: int
    tenant: str | None
    job: str
    run_key: str | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "job": self.job,
            "run_key": self.run_key,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "seconds": (
                round((self.finished_at - self.started_at).total_seconds(), 3)
                if self.finished_at
                else None
            ),
            "outcome": self.outcome,
            "detail": self.detail,
        }


def recent_runs(engine: Engine, tenant: str | None = None, limit: int = 20) -> list[RunRow]:
    """The latest runs, newest first; `tenant` narrows to one tenant (which must exist)."""
    if limit < 1:
        raise UserError(f"--limit {limit}: must be at least 1")
    with unit_of_work(engine) as session:
        query = (
            select(JobRun, Tenant.name)
            .outerjoin(Tenant, Tenant.id == JobRun.tenant_id)
            .order_by(JobRun.started_at.desc(), JobRun.id.desc())
            .limit(limit)
        )
        if tenant is not None:
            found = get_tenant(session, tenant)
            if found is None:
                raise UserError(f"--tenant {tenant}: no such tenant")
            query = query.where(JobRun.tenant_id == found.id)
        return [
            RunRow(r.id, name, r.job, r.run_key, r.started_at, r.finished_at, r.outcome, r.detail)
            for r, name in session.execute(query)
        ]


def health_summary(engine: Engine, since: timedelta = timedelta(hours=24)) -> dict[str, Any]:
    """For the unauthenticated /healthz: per job kind the latest run's outcome and times, and
    how many runs failed recently. No tenant names and no details leave through here."""
    with unit_of_work(engine) as session:
        latest: dict[str, Any] = {}
        for run in session.scalars(
            select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(200)
        ):
            latest.setdefault(
                run.job,
                {
                    "outcome": run.outcome,
                    "started_at": iso(run.started_at),
                    "finished_at": iso(run.finished_at),
                },
            )
        failed = session.scalar(
            select(func.count())
            .select_from(JobRun)
            .where(JobRun.outcome.in_(("failed", "partial")), JobRun.started_at >= now() - since)
        )
    return {"last_runs": latest, "failed_last_24h": int(failed or 0)}
