"""CLI commands for running the service: `scheduler`, `runs`, `digest`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Any

import typer

from insights.cli import command, console, err_console
from insights.cli.common import (
    FromOption,
    TeamOption,
    TenantOption,
    ToOption,
    WindowOption,
    open_database,
    resolve_target,
    resolve_window,
    settings,
)
from insights.errors import UserError


def configure_logging() -> None:
    """INFO lines from our modules on stderr; libraries only from WARNING up."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("insights").setLevel(logging.INFO)


@command()
def scheduler(
    poll_seconds: float = typer.Option(
        5.0,
        "--poll-seconds",
        min=0.05,
        metavar="SECONDS",
        help="How often a follower tries to become leader.",
    ),
    lease_seconds: float = typer.Option(
        30.0,
        "--lease-seconds",
        min=1.0,
        metavar="SECONDS",
        help="SQLite only: how long a leader's lease lasts.",
    ),
    misfire_grace: int = typer.Option(
        6 * 3600,
        "--misfire-grace",
        min=1,
        metavar="SECONDS",
        help="Seconds after its time a missed run still runs (once) on restart.",
    ),
) -> None:
    """Run the scheduler alone (no API) until stopped; replicas elect one leader.

    Per tenant in insights.toml: sync on schedule.sync_cron, weekly report and digests on
    schedule.report_cron, both in the tenant's time zone. Every run is in `insights runs`.

    Example: insights scheduler --poll-seconds 5
    """
    from insights.ops.scheduler import SchedulerService

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
    logging.getLogger("insights.ops.scheduler").info(
        "scheduler started (%s, %d job(s) configured)",
        service.leadership.lock.holder,
        len(service.specs),
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()
        logging.getLogger("insights.ops.scheduler").info("scheduler stopped")


@command()
def runs(
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", metavar="NAME", help="Only this tenant's runs (default: all)."
    ),
    limit: int = typer.Option(
        20, "--limit", "-n", metavar="N", help="How many runs, newest first."
    ),
    output: str = typer.Option(
        "table", "--format", "-f", metavar="table|json", help="Output format."
    ),
    as_json: bool = typer.Option(False, "--json", hidden=True, help="Same as --format json."),
) -> None:
    """Show recent scheduled and manual runs: start, duration, outcome, counts.

    Example: insights runs --tenant acme --limit 10
    """
    from rich.table import Table

    from insights.ops.runs import recent_runs
    from insights.timeutil import iso

    if output not in ("table", "json"):
        raise UserError(f"--format {output!r}: use table or json")
    engine = open_database()
    rows = recent_runs(engine, tenant, limit)
    if as_json or output == "json":
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


@command()
def digest(
    tenant: str | None = TenantOption,
    team: str | None = TeamOption,
    window: str | None = WindowOption,
    start: str | None = FromOption,
    end: str | None = ToOption,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the Slack JSON payload instead of sending it."
    ),
) -> None:
    """Build the weekly reports and send each team its Slack digest (Block Kit).

    The webhook URL comes from the env var named by the team's slack_webhook_env, else the
    tenant's slack.webhook_url_env. Every team gets one line: `sent`, or why not (no webhook
    configured, not an http(s) URL, unreachable, refused); any team not sent makes the exit
    code 1. The reports are written first, so a failed send loses nothing.

    Example: insights digest --tenant acme --team payments --window 2026-W05 --dry-run
    """
    from insights.ops.runs import recorded_run
    from insights.ops.weekly import build_week, deliver_digests, team_digests
    from insights.timeutil import now

    name, _ = resolve_target(tenant)
    span = resolve_window(window, start, end)
    s = settings()
    engine = open_database(s)
    from insights.store.registry import tenant_config as registered

    tenant_config = registered(engine, s, name)
    if dry_run:
        build = build_week(engine, s, tenant_config, span, now(), write=False)
        payloads = team_digests(build, s, team)
        if not payloads:
            raise UserError(f"tenant {name}: no teams to send digests to")
        out = payloads[0][1] if team else dict(payloads)
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return

    def work() -> dict[str, Any]:
        build = build_week(engine, s, tenant_config, span, now())
        sent = deliver_digests(tenant_config, team_digests(build, s, team))
        failures = sum(v != "sent" for v in sent.values())
        return {"window": build.window, "digests": sent, "failures": failures}

    result = recorded_run(engine, "digest", name, None, work)
    if result.outcome == "failed":
        raise UserError(result.detail["error"])
    if not result.detail["digests"]:
        raise UserError(f"tenant {name}: no teams to send digests to")
    for team_name, outcome in result.detail["digests"].items():
        line = f"team {team_name}: {outcome}"
        (console if outcome == "sent" else err_console).print(line, markup=False)
    if result.detail["failures"]:
        raise typer.Exit(1)
