"""CLI command `insights worker`: run queued syncs and weekly reports (INSIGHTS_QUEUE)."""

from __future__ import annotations

import typer

from insights.cli import app
from insights.cli.common import open_database, settings
from insights.errors import UserError


@app.command()
def worker(
    queue: list[str] = typer.Option(
        ["sync", "reports"], "--queue", "-q", help="Queues to take jobs from (repeatable)."
    ),
    concurrency: int = typer.Option(
        1, "--concurrency", min=1, max=64, help="Jobs run at once in this process (threads)."
    ),
    stalled_seconds: float = typer.Option(
        30.0,
        "--stalled-seconds",
        min=1.0,
        help="A worker silent this long is dead: its jobs are handed out again.",
    ),
    heartbeat_seconds: float = typer.Option(
        10.0, "--heartbeat-seconds", min=0.1, help="How often this worker says it is alive."
    ),
    once: bool = typer.Option(False, "--once", help="Stop when the queues are empty."),
) -> None:
    """Run queued jobs until stopped (SIGTERM finishes the current job first).

    Needs INSIGHTS_QUEUE=procrastinate and PostgreSQL; the scheduler then only enqueues.
    Start as many workers as you like: one sync of a service runs at a time, a job runs once
    to success, and a dead worker's jobs are retried by the others.

    Example: INSIGHTS_QUEUE=procrastinate insights worker --concurrency 2
    """
    from insights.ops.queue import queue_mode
    from insights.ops.worker import run_worker

    s = settings()
    if queue_mode(s) != "procrastinate":
        raise UserError("insights worker needs INSIGHTS_QUEUE=procrastinate (and PostgreSQL)")
    open_database(s)
    unknown = sorted(set(queue) - {"sync", "reports"})
    if unknown:
        raise UserError(f"--queue {unknown[0]}: use sync or reports")
    from insights.cli.ops import configure_logging

    configure_logging()
    run_worker(
        s,
        queues=queue,
        concurrency=concurrency,
        heartbeat_seconds=min(heartbeat_seconds, stalled_seconds / 2),
        stalled_seconds=stalled_seconds,
        reap_seconds=max(0.5, stalled_seconds / 3),
        wait=not once,
    )
