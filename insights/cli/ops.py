"""CLI commands for running the service: `scheduler`, `runs`, `digest`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Any

import typer
from rich.table import Table

from insights.cli import app, console
from insights.cli.common import open_database, settings
from insights.runs import recent_runs
from insights.timeutil import iso


def configure_logging() -> None:
    """INFO lines from our modules on stderr; libraries only from WARNING up."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("insights").setLevel(logging.INFO)


@app.command()
def scheduler(
    poll_seconds: float = typer.Option(
        5.0, "--poll-seconds", min=0.05, help="How often a follower tries to become leader."
    ),
    lease_seconds: float = typer.Option(
        30.0, "--lease-seconds", min=1.0, help="SQLite only: how long a leader's lease lasts."
    ),
    misfire_grace: int = typer.Option(
        6 * 3600,
        "--misfire-grace",
        min=1,
        help="Seconds after its time a missed run still runs (once) on restart.",
    ),
) -> None:
    """Run the scheduler alone (no API) until stopped; replicas elect one leader.

    Per tenant in insights.toml: sync on schedule.sync_cron, weekly report and digests on
    schedule.report_cron, both in the tenant's time zone. Every run is in `insights runs`.

    Example: insights scheduler --poll-seconds 5
    """
    from insights.scheduler import SchedulerService

    s = settings()
    open_database(s)
    configure_logging()
    service = SchedulerService(
        s, poll_seconds=poll_seconds, lease_seconds=lease_seconds, misfire_grace=misfire_grace
    )
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    service.start()
    logging.getLogger("insights.scheduler").info(
        "scheduler started (%s, %d job(s) configured)",
        service.leadership.lock.holder,
        len(service.specs),
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()
        logging.getLogger("insights.scheduler").info("scheduler stopped")


@app.command()
def runs(
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", help="Only this tenant's runs (default: all)."
    ),
    limit: int = typer.Option(20, "--limit", "-n", help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show recent scheduled and manual runs: start, duration, outcome, counts.

    Example: insights runs --tenant acme --limit 10
    """
    engine = open_database()
    rows = recent_runs(engine, tenant, limit)
    if as_json:
        console.print_json(json.dumps([r.as_dict() for r in rows]))
        return
    table = Table(title=f"last {limit} runs" + (f" of {tenant}" if tenant else ""))
    for column in ("started", "tenant", "job", "scheduled for", "seconds", "outcome", "detail"):
        table.add_column(column)
    for row in rows:
        d = row.as_dict()
        detail = {k: v for k, v in row.detail.items() if k not in ("scheduled_at", "holder")}
        table.add_row(
            iso(row.started_at) or "",
            row.tenant or "",
            row.job,
            str(row.detail.get("scheduled_at") or "manual"),
            "" if d["seconds"] is None else f"{d['seconds']:.2f}",
            row.outcome,
            json.dumps(detail)[:120],
        )
    console.print(table)
