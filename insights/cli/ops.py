"""CLI commands for running the service: `scheduler`, `runs`, `digest`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Any

import typer
from rich.table import Table

from insights.cli import app, console, err_console
from insights.cli.common import TenantOption, open_database, settings
from insights.errors import UserError
from insights.runs import recent_runs, recorded_run
from insights.timeutil import iso, now


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


@app.command()
def digest(
    tenant: str = TenantOption,
    team: str | None = typer.Option(None, "--team", help="Only this team (default: every team)."),
    window: str | None = typer.Option(
        None, "--window", "-w", help="2026-W05, 2026-01 or FROM..TO (default: last full week)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the Slack JSON payload instead of sending it."
    ),
) -> None:
    """Build the weekly reports and send each team its Slack digest (Block Kit).

    The webhook URL comes from the env var named by the team's slack_webhook_env, else the
    tenant's slack.webhook_url_env. A failed send is reported; the report file stays.

    Example: insights digest --tenant acme --team payments --window 2026-W05 --dry-run
    """
    from insights.weekly import build_week, deliver_digests, team_digests

    s = settings()
    engine = open_database(s)
    from insights.store.registry import tenant_config as registered

    tenant_config = registered(engine, s, tenant)
    if dry_run:
        build = build_week(engine, s, tenant_config, window, now(), write=False)
        payloads = team_digests(build, s, team)
        if not payloads:
            raise UserError(f"tenant {tenant}: no teams to send digests to")
        out = payloads[0][1] if team else dict(payloads)
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return

    def work() -> dict[str, Any]:
        build = build_week(engine, s, tenant_config, window, now())
        sent = deliver_digests(tenant_config, team_digests(build, s, team))
        failures = sum(v.startswith("failed") for v in sent.values())
        return {"window": build.window, "digests": sent, "failures": failures}

    result = recorded_run(engine, "digest", tenant, None, work)
    if result.outcome == "failed":
        raise UserError(result.detail["error"])
    for name, outcome in result.detail["digests"].items():
        line = f"team {name}: {outcome}"
        (console if outcome == "sent" else err_console).print(line, markup=False)
    if result.detail["failures"]:
        raise typer.Exit(1)
