"""Idempotent claims of queued work in `job_runs`: a job runs at most once to success.

A queued job carries a `run_key` (`sync:acme/checkout@2026-01-05T10:00:00Z`). Its first
attempt inserts the `job_runs` row; `run_key` is unique, so a duplicate enqueue of the same
key finds the row and does nothing. A later attempt of the same job (a retry after a failure,
or after the queue found its worker dead) takes the row over, unless the run already ended
well: a finished run is never done twice, a dead worker's run is never lost.

Example:
    run_id = claim_attempt(engine, "sync", "acme", key, attempt=job.attempts, detail={})
    if run_id is None:
        return  # already done, or a live attempt holds it
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from insights.ops.runs import claim_run
from insights.store.db import unit_of_work
from insights.store.models import JobRun
from insights.timeutil import now

DONE = ("success", "partial", "skipped")


def claim_attempt(
    engine: Engine,
    job: str,
    tenant: str | None,
    key: str,
    *,
    attempt: int,
    detail: dict[str, Any],
) -> int | None:
    """The run id this attempt may work under, or None when it must not run.

    `attempt` is the queue's count of earlier attempts (0 the first time). A first attempt
    that finds the key `running` is a duplicate delivery of a live job: it steps aside. A
    retry finds its predecessor failed, abandoned, or `running` on a worker the queue has
    declared dead, and takes over.
    """
    run_id = claim_run(engine, job, tenant, key, {**detail, "attempt": attempt})
    if run_id is not None:
        return run_id
    with unit_of_work(engine) as session:
        run = session.scalars(
            select(JobRun).where(JobRun.run_key == key).with_for_update()
        ).one_or_none()
        if run is None or run.outcome in DONE:
            return None
        if run.outcome == "running" and attempt == 0:
            return None
        previous = dict(run.detail or {})
        # `running` here means its worker died mid-run (the queue hands a job out again only
        # after its worker's heartbeat stopped)
        before = "worker died" if run.outcome == "running" else run.outcome
        run.outcome = "running"
        run.finished_at = None
        run.started_at = now()
        run.detail = {
            **{k: v for k, v in previous.items() if k != "error"},
            **detail,
            "attempt": attempt,
            "previous_attempt": {"outcome": before, "error": previous.get("error")},
        }
        return run.id
