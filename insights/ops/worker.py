"""`insights worker`: run queued jobs (syncs, weekly reports) until stopped.

Each worker process runs procrastinate's worker on the queues it is given and, beside it, a
reaper: every `reap_seconds` it hands out again the jobs whose worker's heartbeat is older
than `stalled_seconds` (that worker was killed or lost its node). Several reapers may see the
same stalled job; the queue lets only one retry through, and the job's claim in `job_runs`
keeps a finished job from running twice (insights/ops/claims.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import procrastinate

from insights.config import Settings
from insights.ops.queue import REPORT_QUEUE, SYNC_QUEUE, queue_app

log = logging.getLogger(__name__)

QUEUES = (SYNC_QUEUE, REPORT_QUEUE)


async def reap_stalled_jobs(
    app: procrastinate.App, stalled_seconds: float, reap_seconds: float
) -> None:
    """Forever: put jobs of dead workers back in the queue (their next attempt takes over)."""
    while True:
        try:
            for job in await app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=stalled_seconds
            ):
                try:
                    await app.job_manager.retry_job(job)
                    log.warning("job %s (%s) of a dead worker: retried", job.id, job.task_name)
                except procrastinate.exceptions.ConnectorException:
                    pass  # another worker's reaper retried it first
        except procrastinate.exceptions.ConnectorException as exc:
            log.warning("reaper: %s", str(exc).splitlines()[0] if str(exc) else "db error")
        await asyncio.sleep(reap_seconds)


def run_worker(
    settings: Settings,
    *,
    queues: Sequence[str] = QUEUES,
    concurrency: int = 1,
    name: str | None = None,
    heartbeat_seconds: float = 10.0,
    stalled_seconds: float = 30.0,
    reap_seconds: float = 10.0,
    wait: bool = True,
) -> None:
    """Run jobs until SIGTERM/SIGINT (or, with `wait=False`, until the queues are empty)."""
    app = queue_app(settings.database_url)

    async def main() -> None:
        async with app.open_async():
            reaper = asyncio.create_task(reap_stalled_jobs(app, stalled_seconds, reap_seconds))
            try:
                await app.run_worker_async(
                    queues=list(queues),
                    concurrency=concurrency,
                    name=name,
                    wait=wait,
                    update_heartbeat_interval=heartbeat_seconds,
                    stalled_worker_timeout=stalled_seconds,
                    delete_jobs="never",
                    install_signal_handlers=True,
                )
            finally:
                reaper.cancel()

    asyncio.run(main())
