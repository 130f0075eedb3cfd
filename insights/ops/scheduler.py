"""The scheduler: per tenant, sync on `schedule.sync_cron`, weekly report on `report_cron`.

APScheduler 3 with its SQLAlchemy job store on the app database (table `apscheduler_jobs`,
created by migration 0002). Only the elected leader (`insights.ops.leader`) runs a scheduler, so
several replicas can share one PostgreSQL. Rules:

- Cron expressions are evaluated in the tenant's `timezone`; five fields as in crontab, or six
  with seconds first (`*/2 * * * * *`, useful for fast test schedules).
- `coalesce=True`, `max_instances=1`, `misfire_grace_time`: after downtime a missed fire runs
  once on restart (if within the grace time), not once per missed fire; a fire that comes
  while the job's previous run still runs is skipped (APScheduler logs it), not queued.
- Jobs kept in the store keep their next fire time across restarts; a job is replaced only when
  its cron, time zone or target changed.
- Every fire is recorded in `job_runs` under `run_key = job id @ scheduled fire time` before it
  runs; a fire already claimed (by another process) is skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from insights.config import OrgConfig, Settings
from insights.errors import UserError
from insights.ops.leader import Leadership, lock_for
from insights.ops.runs import RunResult, abandon_stale_runs, recorded_run, run_key
from insights.store.db import engine_for
from insights.timeutil import iso, now

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
DEFAULT_MISFIRE_GRACE = 6 * 3600  # a weekly report missed overnight still goes out
REGISTRY_REFRESH_SECONDS = 60.0


def parse_cron(expr: str, timezone: str, where: str) -> CronTrigger:
    """A CronTrigger for a crontab expression; six fields mean seconds come first.

    Example: `parse_cron("0 8 * * mon", "Europe/Berlin", where)` fires Mondays 08:00 Berlin
    time; `parse_cron("*/2 * * * * *", "UTC", where)` every two seconds. `where` names the
    config key in the error message.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"{where}: unknown time zone {timezone!r}") from None
    fields = expr.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expr, timezone=zone)
        if len(fields) == 6:
            second, minute, hour, day, month, day_of_week = fields
            return CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=day_of_week,
                timezone=zone,
            )
    except ValueError as exc:
        raise UserError(f"{where}: invalid cron expression {expr!r}: {exc}") from None
    raise UserError(f"{where}: cron expression {expr!r} needs 5 fields (or 6 with seconds)")


@dataclass(frozen=True)
class JobSpec:
    """A job the configuration asks for: `id` is `<kind>:<tenant>`."""

    id: str
    func: str
    tenant: str
    trigger: CronTrigger


def desired_jobs(org: OrgConfig) -> list[JobSpec]:
    """The sync and weekly jobs of every tenant in `insights.toml`."""
    specs: list[JobSpec] = []
    for tenant in org.tenants:
        where = f"tenant {tenant.name}: schedule"
        specs.append(
            JobSpec(
                f"sync:{tenant.name}",
                "insights.ops.scheduler:sync_job",
                tenant.name,
                parse_cron(tenant.schedule.sync_cron, tenant.timezone, f"{where}.sync_cron"),
            )
        )
        specs.append(
            JobSpec(
                f"weekly:{tenant.name}",
                "insights.ops.scheduler:weekly_job",
                tenant.name,
                parse_cron(tenant.schedule.report_cron, tenant.timezone, f"{where}.report_cron"),
            )
        )
    return specs


# --- what the jobs run -----------------------------------------------------------------------


@dataclass
class Runtime:
    """What job functions need; set by `SchedulerService` when it becomes leader.

    Jobs are stored pickled by reference (`insights.ops.scheduler:sync_job`) with only the tenant
    name as argument, so the engine and settings come from here, not from the job store.
    """

    engine: Engine
    settings: Settings
    org: OrgConfig
    # True: `org` was handed in (tests); False: re-read from the tenant registry per job
    fixed: bool = True

    def tenant_org(self) -> OrgConfig:
        """The configuration a job runs with: the registry as it is now, not at election."""
        if self.fixed:
            return self.org
        from insights.store.registry import organisation

        return organisation(self.engine, self.settings)


_runtime: Runtime | None = None


def _current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("scheduler runtime not set: jobs run only inside SchedulerService")
    return _runtime


def run_tenant_sync(
    rt: Runtime, tenant: str, scheduled_at: datetime | None = None
) -> dict[str, Any]:
    """Sync every configured service of `tenant`; returns the counts and outcome per service.

    Every source is tried; `failures` counts the sources that failed, which makes the run
    `partial` (the others' data is stored) rather than `failed`. With
    `INSIGHTS_QUEUE=procrastinate` the scheduler only enqueues one job per service for the
    workers (insights/ops/queue.py) and records what it enqueued."""
    from insights.collect.sync import run_sync
    from insights.ops.queue import enqueue_tenant_sync, queue_mode

    if queue_mode(rt.settings) != "inline":
        config = rt.tenant_org().tenant(tenant)
        return enqueue_tenant_sync(rt.engine, rt.settings, config, scheduled_at)

    reports = run_sync(rt.engine, rt.tenant_org(), tenant=tenant, keep_going=True)
    services: dict[str, Any] = {}
    for report in reports:
        services[report.service] = {
            "source": report.source,
            "outcome": report.outcome,
            "error": report.error,
            "batches": report.batches,
            "seconds": round(report.seconds, 3),
            "stopped_early": report.stopped_early,
            "skipped": dict(report.skipped),  # invalid records, each named in a warning
            **{
                kind: {"new": c.new, "updated": c.updated, "unchanged": c.unchanged}
                for kind, c in report.counts.items()
            },
        }
    return {"services": services, "failures": sum(r.error is not None for r in reports)}


def run_tenant_weekly(rt: Runtime, tenant: str, scheduled_at: datetime) -> dict[str, Any]:
    """Compute the last complete week before the fire time, write the reports and send the
    digests of `tenant` (the window follows the fire time, so a late run reports the same
    week)."""
    from insights.ops.queue import enqueue_tenant_weekly, queue_mode
    from insights.ops.weekly import run_weekly

    if queue_mode(rt.settings) != "inline":
        return enqueue_tenant_weekly(
            rt.engine, rt.settings, rt.tenant_org().tenant(tenant), scheduled_at
        )
    return run_weekly(rt.engine, rt.settings, rt.tenant_org().tenant(tenant), at=scheduled_at)


def _fire(
    job_id: str, tenant: str, scheduled_at: datetime, coalesced: int, work: Callable[[], Any]
) -> RunResult:
    rt = _current()
    detail: dict[str, Any] = {"scheduled_at": iso(scheduled_at), "holder": _holder}
    if coalesced:
        detail["coalesced_fires"] = coalesced
    result = recorded_run(
        rt.engine, job_id.split(":", 1)[0], tenant, run_key(job_id, scheduled_at), work, detail
    )
    if result.run_id is not None:
        log.info("ran %s scheduled at %s: %s", job_id, iso(scheduled_at), result.outcome)
    return result


def sync_job(tenant: str, scheduled_at: datetime | None = None, coalesced: int = 0) -> None:
    """Scheduled sync of one tenant (the job store refers to this function by name).

    `FireTimeExecutor` passes `scheduled_at` and how many earlier missed fires this run stands
    for (`coalesced`); a call without them runs for the current time.
    """
    at = scheduled_at or now()
    _fire(f"sync:{tenant}", tenant, at, coalesced, lambda: run_tenant_sync(_current(), tenant, at))


def weekly_job(tenant: str, scheduled_at: datetime | None = None, coalesced: int = 0) -> None:
    """Scheduled weekly compute + report + digest of one tenant."""
    at = scheduled_at or now()
    _fire(
        f"weekly:{tenant}", tenant, at, coalesced, lambda: run_tenant_weekly(_current(), tenant, at)
    )


# --- APScheduler plumbing --------------------------------------------------------------------


class _FireTimeJob:
    """A job as `run_job` sees it, with its scheduled fire time passed as `scheduled_at` and
    the number of earlier fires coalesced into it as `coalesced`."""

    def __init__(self, job: Any, run_time: datetime, coalesced: int) -> None:
        self._job = job
        self.id = job.id
        self._jobstore_alias = job._jobstore_alias
        self.misfire_grace_time = job.misfire_grace_time
        self.func = job.func
        self.args = job.args
        self.kwargs = {**job.kwargs, "scheduled_at": run_time, "coalesced": coalesced}

    def __str__(self) -> str:
        return str(self._job)


class FireTimeExecutor(ThreadPoolExecutor):
    """Thread pool executor that tells the job which fire time it is running for.

    Our jobs coalesce, so a submission carries one fire time (the latest when several were
    missed); that time is what the run is recorded under. The job still holds its first
    pending fire time, so the fires in between are the ones coalesced into this run.
    """

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        latest = run_times[-1]
        coalesced = max(0, len(job._get_run_times(latest)) - 1)
        super()._do_submit_job(_FireTimeJob(job, latest, coalesced), [latest])


def create_scheduler(engine: Engine, misfire_grace: int = DEFAULT_MISFIRE_GRACE) -> Any:
    """A BackgroundScheduler on the app database with our job defaults (not started)."""
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        executors={"default": FireTimeExecutor(max_workers=4)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": misfire_grace,
        },
        timezone="UTC",
    )


def reconcile_jobs(scheduler: Any, specs: list[JobSpec], misfire_grace: int) -> None:
    """Make the job store hold exactly `specs`, keeping the next fire time of unchanged jobs."""
    wanted = {spec.id: spec for spec in specs}
    for job in scheduler.get_jobs(jobstore="default"):
        if job.id not in wanted:
            log.info("removing job %s (no longer configured)", job.id)
            scheduler.remove_job(job.id)
    for spec in specs:
        existing = scheduler.get_job(spec.id)
        if (
            existing is not None
            and repr(existing.trigger) == repr(spec.trigger)
            and existing.func_ref == spec.func
            and tuple(existing.args) == (spec.tenant,)
        ):
            scheduler.modify_job(
                spec.id, misfire_grace_time=misfire_grace, coalesce=True, max_instances=1
            )
            continue
        scheduler.add_job(
            spec.func,
            trigger=spec.trigger,
            args=(spec.tenant,),
            id=spec.id,
            name=spec.id,
            replace_existing=True,
            misfire_grace_time=misfire_grace,
            coalesce=True,
            max_instances=1,
        )


_holder: str | None = None


class SchedulerService:
    """Leader election plus, while leader, a running APScheduler with the configured jobs.

    Used by `insights scheduler` and by `insights serve` (FastAPI lifespan).
    """

    def __init__(
        self,
        settings: Settings,
        org: OrgConfig | None = None,
        poll_seconds: float = 5.0,
        lease_seconds: float = 30.0,
        misfire_grace: int = DEFAULT_MISFIRE_GRACE,
        registry_refresh_seconds: float = REGISTRY_REFRESH_SECONDS,
    ) -> None:
        self.settings = settings
        self.engine = engine_for(settings.database_url)
        # without an explicit org the tenant registry is the source of truth: read now (config
        # errors surface before anything starts) and again every registry_refresh_seconds
        self.fixed_org = org is not None
        self.org = org if org is not None else self._registry_org()
        self.specs = desired_jobs(self.org)
        self.registry_refresh_seconds = registry_refresh_seconds
        self.misfire_grace = misfire_grace
        self.lease_seconds = lease_seconds
        self.leadership = Leadership(
            lock_for(self.engine, lease_seconds=lease_seconds),
            self._elected,
            self._lost,
            poll_seconds,
        )
        self._scheduler: Any = None
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self.leadership.is_leader

    def start(self) -> None:
        self.leadership.start()

    def stop(self) -> None:
        self.leadership.stop()

    def _registry_org(self) -> OrgConfig:
        from insights.store.registry import organisation, registered_tenants

        org = organisation(self.engine, self.settings)
        desired_jobs(org)  # every tenant's schedule is checked, even one not scheduled
        # declared tenants are scheduled; one that only events created is scheduled once it
        # has services (`default` before any data has nothing to run)
        declared = registered_tenants(self.engine)
        return OrgConfig(tenants=[t for t in org.tenants if t.services or t.name in declared])

    def refresh(self, **_fire: Any) -> None:
        """Re-read the registry and make the job store match it (tenants added via the admin
        API or a changed insights.toml get their jobs without a restart)."""
        if self.fixed_org:
            return
        try:
            org = self._registry_org()
            specs = desired_jobs(org)
        except (UserError, SQLAlchemyError) as exc:
            log.warning("registry refresh skipped: %s", str(exc).splitlines()[0])
            return
        with self._lock:
            self.org, self.specs = org, specs
            if self._scheduler is not None:
                reconcile_jobs(self._scheduler, specs, self.misfire_grace)

    def _elected(self) -> None:
        global _runtime, _holder
        if not self.fixed_org:
            self.org = self._registry_org()
            self.specs = desired_jobs(self.org)
        _runtime = Runtime(self.engine, self.settings, self.org, fixed=self.fixed_org)
        _holder = self.leadership.lock.holder
        abandoned = abandon_stale_runs(self.engine, timedelta(seconds=self.lease_seconds))
        if abandoned:
            log.warning("marked %d run(s) of a previous leader as abandoned", abandoned)
        with self._lock:
            scheduler = create_scheduler(self.engine, self.misfire_grace)
            scheduler.start(paused=True)
            try:
                reconcile_jobs(scheduler, self.specs, self.misfire_grace)
            except Exception:
                scheduler.shutdown(wait=False)
                raise
            if not self.fixed_org:
                # in memory, not in the shared job store: only the leader refreshes
                scheduler.add_jobstore(MemoryJobStore(), "local")
                scheduler.add_job(
                    self.refresh,
                    "interval",
                    seconds=self.registry_refresh_seconds,
                    id="registry-refresh",
                    jobstore="local",
                    coalesce=True,
                    max_instances=1,
                )
            scheduler.resume()
            self._scheduler = scheduler
        for job in scheduler.get_jobs():
            log.info("job %s next runs at %s", job.id, iso(job.next_run_time))

    def _lost(self) -> None:
        with self._lock:
            if self._scheduler is not None:
                self._scheduler.shutdown(wait=True)
                self._scheduler = None

    def status(self) -> dict[str, Any]:
        """For /healthz: whether this replica leads, and when each job fires next."""
        jobs: dict[str, str | None] = {}
        with self._lock:
            if self._scheduler is not None:
                jobs = {
                    j.id: iso(j.next_run_time) for j in self._scheduler.get_jobs(jobstore="default")
                }
        return {"leader": self.is_leader, "jobs": jobs}


def scheduler_enabled(value: str | None) -> bool:
    """`INSIGHTS_SCHEDULER`: on (default) / off; anything else is a UserError naming it."""
    text = (value or "on").strip().lower()
    if text in ("on", "1", "true", "yes"):
        return True
    if text in ("off", "0", "false", "no"):
        return False
    raise UserError(f"INSIGHTS_SCHEDULER={value!r}: use on or off")


def attach_to_app(app: Any, service: SchedulerService) -> None:
    """Run `service` for the FastAPI app's lifetime (wraps the app's lifespan) and expose it
    as `app.state.scheduler` for /healthz."""
    from contextlib import asynccontextmanager

    import anyio

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> Any:
        service.start()
        a.state.scheduler = service
        try:
            async with inner(a) as state:
                yield state
        finally:
            await anyio.to_thread.run_sync(service.stop)

    app.router.lifespan_context = lifespan


def health(app_state: Any, engine: Engine) -> dict[str, Any]:
    """The scheduler part of /healthz: leadership, next fires, latest run per job kind."""
    from insights.ops.runs import health_summary

    service: SchedulerService | None = getattr(app_state, "scheduler", None)
    status: dict[str, Any] = {"enabled": service is not None}
    if service is not None:
        jobs = service.status()["jobs"]  # job ids name tenants: only counts leave here
        fires = sorted(t for t in jobs.values() if t)
        status |= {
            "leader": service.is_leader,
            "jobs": len(jobs),
            "next_fire_at": fires[0] if fires else None,
        }
    try:
        runs = health_summary(engine)
    except SQLAlchemyError:
        runs = {"last_runs": None}  # the database went away since the health query
    return {**status, **runs}
