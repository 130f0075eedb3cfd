"""The work queue: syncs and weekly runs as jobs, on procrastinate (PostgreSQL) or inline.

`INSIGHTS_QUEUE` picks the mode:
- `inline` (default; the only choice on SQLite): the scheduler runs the job in its own process,
  as before. One process, no broker: the embedded laptop setup.
- `procrastinate`: the elected scheduler only enqueues; `insights worker` processes run the
  jobs. The queue lives in the same PostgreSQL (tables `procrastinate_*`, migration 0007), so
  enqueuing is transactional with our data and there is no broker to run. See
  docs/operations.md for why this queue.

Rules every job follows, whichever mode:
- One sync of a service at a time: a sync job holds the queue lock `sync:<tenant>/<service>`;
  a second one waits for the first instead of running beside it.
- A job's `run_key` is claimed in `job_runs` (insights/ops/claims.py): a job finished once is
  never done again, a duplicate enqueue of a waiting job is refused by its queueing lock.
- A failure is recorded in `job_runs` (`insights runs`) and retried with exponential backoff
  (5 s, 25 s, 125 s, then given up), except user errors (a missing token, a bad config) which
  no retry can fix.
- A job whose worker dies (kill -9, node lost) is handed out again once that worker's heartbeat
  is older than the stall timeout (insights/ops/worker.py); the retry takes the claim over.

Example:
    enqueue_tenant_sync(engine, settings, tenant_config, fire_time)   # one job per service
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from functools import cache
from typing import Any, Literal

import procrastinate
from procrastinate import exceptions as queue_errors
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from insights.config import OrgConfig, Settings, TenantConfig
from insights.errors import UserError
from insights.ops.claims import claim_attempt
from insights.ops.runs import finish_run, run_key
from insights.store.db import engine_for
from insights.timeutil import iso, now, parse_time

log = logging.getLogger(__name__)

QUEUE_ENV = "INSIGHTS_QUEUE"
Mode = Literal["inline", "procrastinate"]
SYNC_QUEUE = "sync"
REPORT_QUEUE = "reports"


class Retryable(Exception):
    """A job failure worth another attempt (not a user error)."""


RETRY = procrastinate.RetryStrategy(
    max_attempts=4, exponential_wait=5, retry_exceptions={Retryable}
)


def queue_mode(settings: Settings) -> Mode:
    """The configured mode; `procrastinate` on SQLite is a UserError naming the variable."""
    value = os.environ.get(QUEUE_ENV, "inline").strip().lower() or "inline"
    if value not in ("inline", "procrastinate"):
        raise UserError(f"{QUEUE_ENV}={value!r}: use inline or procrastinate")
    if value == "procrastinate" and not settings.database_url.startswith("postgresql"):
        raise UserError(f"{QUEUE_ENV}=procrastinate needs PostgreSQL (INSIGHTS_DATABASE_URL)")
    return value  # type: ignore[return-value]


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL."""
    url = make_url(database_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# Tasks are defined once on a connector-less app; `queue_app` binds it to a database.
tasks = procrastinate.App(connector=procrastinate.PsycopgConnector())


def queue_app(database_url: str) -> procrastinate.App:
    """The app a worker runs (asyncio connector; the worker opens and closes it). One worker
    process serves one database, so the task app's connector is replaced in place."""
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(database_url))
    # what App.replace_connector does, for the process lifetime instead of a `with` block
    tasks.connector = connector
    tasks.job_manager.connector = connector
    return tasks


@cache
def _enqueue_app(database_url: str) -> procrastinate.App:
    """The app the scheduler enqueues with: a small synchronous pool, open for the process.
    It holds no tasks: jobs are deferred by task name and queue (the worker has the tasks)."""
    connector = procrastinate.SyncPsycopgConnector(
        conninfo=conninfo(database_url), min_size=1, max_size=2
    )
    return procrastinate.App(connector=connector).open()


@cache
def _worker_settings() -> Settings:
    return Settings()


# --- the jobs --------------------------------------------------------------------------------


def _finish(engine: Engine, run_id: int, key: str, exc: BaseException | None, counts: Any) -> None:
    if exc is None:
        outcome = "partial" if isinstance(counts, dict) and counts.get("failures") else "success"
        finish_run(engine, run_id, outcome, counts if isinstance(counts, dict) else {})
        return
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = first if isinstance(exc, UserError) else f"{type(exc).__name__}: {first}"
    finish_run(engine, run_id, "failed", {"error": text[:500]})
    log.warning("run %s failed: %s", key, text[:200])


def _run_claimed(
    engine: Engine,
    job: str,
    tenant: str,
    key: str,
    attempt: int,
    work: Any,
) -> str:
    run_id = claim_attempt(
        engine, job, tenant, key, attempt=attempt, detail={"worker": f"pid {os.getpid()}"}
    )
    if run_id is None:
        log.info("run %s already done or held by a live attempt: skipped", key)
        return "skipped"
    try:
        counts = work()
    except UserError as exc:
        _finish(engine, run_id, key, exc, None)
        return "failed"  # no retry can fix a user's configuration
    except Exception as exc:
        _finish(engine, run_id, key, exc, None)
        raise Retryable(f"{key}: {type(exc).__name__}") from exc
    _finish(engine, run_id, key, None, counts)
    return "success"


def run_service_sync(
    engine: Engine, settings: Settings, tenant: str, service: str, key: str, attempt: int = 0
) -> str:
    """Sync one service of one tenant under `key`; the config is read from the registry now."""
    from insights.collect.sync import run_sync
    from insights.store.registry import organisation

    def work() -> dict[str, Any]:
        config = organisation(engine, settings).tenant(tenant)
        if config.service(service) is None:
            raise UserError(f"service {tenant}/{service}: no longer in the registry")
        reports = run_sync(engine, OrgConfig(tenants=[config]), tenant, service)
        return {
            "service": service,
            "records": sum(r.records for r in reports),
            "stopped_early": any(r.stopped_early for r in reports),
        }

    return _run_claimed(engine, "sync-service", tenant, key, attempt, work)


def run_tenant_weekly(
    engine: Engine, settings: Settings, tenant: str, at: datetime, key: str, attempt: int = 0
) -> str:
    """Compute, narrate, write and deliver one tenant's weekly reports under `key`.

    Reports and narratives are idempotent (files rewritten, narratives cached), so a retry
    redoes them; each team's digest is claimed on its own (`digest:<tenant>/<team>@<fire>`) so
    a retry never sends one again — a send whose worker died mid-way is not repeated either
    (at most once: a duplicate in the team channel is worse than a late report link)."""
    from insights.ops.weekly import _email, build_week, deliver_digests, team_digests
    from insights.store.registry import organisation

    def work() -> dict[str, Any]:
        config = organisation(engine, settings).tenant(tenant)
        build = build_week(engine, settings, config, None, at)
        digests: dict[str, str] = {}
        for team, payload in team_digests(build, settings):
            digest_key = run_key(f"digest:{tenant}/{team}", at)
            run_id = claim_attempt(engine, "digest", tenant, digest_key, attempt=0, detail={})
            if run_id is None:
                digests[team] = "already sent"
                continue
            digests[team] = deliver_digests(config, [(team, payload)])[team]
            failed = digests[team].startswith("failed")
            finish_run(engine, run_id, "failed" if failed else "success", {"digest": digests[team]})
        mail = _email(build)
        failures = sum(v.startswith("failed") for v in digests.values())
        return {
            "window": build.window,
            "reports": len(build.items),
            "digests": digests,
            "email": mail,
            "failures": failures + mail.startswith("failed"),
        }

    return _run_claimed(engine, "weekly-tenant", tenant, key, attempt, work)


@tasks.task(name="insights.sync_service", queue=SYNC_QUEUE, pass_context=True, retry=RETRY)
def sync_service_task(context: Any, tenant: str, service: str, key: str) -> str:
    s = _worker_settings()
    return run_service_sync(
        engine_for(s.database_url), s, tenant, service, key, context.job.attempts
    )


@tasks.task(name="insights.weekly_tenant", queue=REPORT_QUEUE, pass_context=True, retry=RETRY)
def weekly_tenant_task(context: Any, tenant: str, at: str, key: str) -> str:
    s = _worker_settings()
    return run_tenant_weekly(
        engine_for(s.database_url), s, tenant, parse_time(at), key, context.job.attempts
    )


# --- enqueuing (the scheduler's side) -------------------------------------------------------


def _defer(settings: Settings, task: Any, lock: str | None, key: str, **kwargs: Any) -> bool:
    """Enqueue once per key: False when a job with this key is already waiting."""
    app = _enqueue_app(settings.database_url)
    try:
        app.configure_task(
            task.name, allow_unknown=True, queue=task.queue, lock=lock, queueing_lock=key
        ).defer(key=key, **kwargs)
    except queue_errors.AlreadyEnqueued:
        return False
    return True


def enqueue_tenant_sync(
    engine: Engine, settings: Settings, tenant: TenantConfig, fire: datetime | None = None
) -> dict[str, Any]:
    """One sync job per fetched service of `tenant` (inline mode: run them now, in turn)."""
    fire = fire or now()
    services = [s.name for s in tenant.services if s.source.kind != "events"]
    mode = queue_mode(settings)
    outcomes: dict[str, str] = {}
    for service in services:
        key = run_key(f"sync:{tenant.name}/{service}", fire)
        if mode == "inline":
            outcomes[service] = run_service_sync(engine, settings, tenant.name, service, key)
        else:
            lock = f"sync:{tenant.name}/{service}"
            queued = _defer(
                settings, sync_service_task, lock, key, tenant=tenant.name, service=service
            )
            outcomes[service] = "enqueued" if queued else "already enqueued"
    failures = sum(v == "failed" for v in outcomes.values())
    return {"mode": mode, "services": outcomes, "failures": failures}


def enqueue_tenant_weekly(
    engine: Engine, settings: Settings, tenant: TenantConfig, at: datetime
) -> dict[str, Any]:
    """The tenant's weekly job (inline mode: run it now)."""
    key = run_key(f"weekly:{tenant.name}", at)
    mode = queue_mode(settings)
    if mode == "inline":
        outcome = run_tenant_weekly(engine, settings, tenant.name, at, key)
    else:
        queued = _defer(settings, weekly_tenant_task, None, key, tenant=tenant.name, at=iso(at))
        outcome = "enqueued" if queued else "already enqueued"
    return {"mode": mode, "weekly": outcome, "failures": int(outcome == "failed")}
