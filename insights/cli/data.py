"""CLI commands that put data in: `init`, `import`, `record …`, `tenant create|list`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from insights import pipeline
from insights.cli import app, console, err_console
from insights.cli.common import TenantOption, open_database, settings
from insights.collect.events import parse_lines
from insights.errors import UserError
from insights.model import EventError, parse_event
from insights.store.db import engine_for, migrate, unit_of_work
from insights.store.partial import fill_from_stored
from insights.store.repository import TenantRepository, ensure_tenant, list_tenants
from insights.timeutil import iso, now

record_app = typer.Typer(help="Record one delivery event (for CI steps).", no_args_is_help=True)
tenant_app = typer.Typer(help="Create and list tenants.", no_args_is_help=True)
app.add_typer(record_app, name="record")
app.add_typer(tenant_app, name="tenant")


@app.command()
def init() -> None:
    """Create or upgrade the database schema and load tenants/services from insights.toml.

    Example: INSIGHTS_DATABASE_URL=postgresql://app@db/insights insights init
    """
    s = settings()
    engine = engine_for(s.database_url)
    migrate(engine)
    from insights.store.registry import organisation

    with unit_of_work(engine) as session:
        ensure_tenant(session, "default")
    org = organisation(engine, s)  # applies insights.toml when it changed
    console.print(f"database ready: {engine.url.render_as_string(hide_password=True)}")
    if org.tenants:
        console.print(f"tenants configured: {', '.join(t.name for t in org.tenants)}")


def _summary_table(result: pipeline.StoreResult, title: str) -> Table:
    table = Table(title=title)
    for column in ("kind", "new", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, counts in result.counts.items():
        if counts.total:
            table.add_row(kind, str(counts.new), str(counts.updated), str(counts.unchanged))
    return table


@app.command("import")
def import_(
    file: str = typer.Argument(..., help="NDJSON file of canonical events, or - for stdin."),
    tenant: str = TenantOption,
    strict: bool = typer.Option(
        False, "--strict", help="Reject the whole file if any line is malformed."
    ),
) -> None:
    """Import canonical NDJSON events (commit, change, deployment, incident).

    Malformed lines are reported with their line number and skipped; with --strict nothing is
    written. Importing the same file twice changes nothing.

    Example: insights import events.ndjson --tenant acme
    """
    if file == "-":
        parsed = parse_lines(sys.stdin.buffer)  # bytes: a bad UTF-8 line is a line error
        name = "stdin"
    else:
        path = Path(file)
        if not path.is_file():
            raise UserError(f"{file}: file not found")
        with path.open("rb") as handle:
            parsed = parse_lines(handle)
        name = path.name
    for error in parsed.errors[:50]:
        err_console.print(f"{name}: {error}", markup=False)
    if len(parsed.errors) > 50:
        err_console.print(f"{name}: … and {len(parsed.errors) - 50} more malformed lines")
    if parsed.errors and strict:
        raise UserError(
            f"{name}: {len(parsed.errors)} malformed line(s); --strict: nothing imported"
        )
    s = settings()
    engine = open_database(s)
    from insights.store.registry import tenant_config as registered

    tenant_config = registered(engine, s, tenant)
    with (
        Progress(
            TextColumn("importing"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} events"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=len(parsed.events) < 20_000 or not err_console.is_terminal,
        ) as progress,
        unit_of_work(engine) as session,
    ):
        task = progress.add_task("import", total=len(parsed.events))
        repo = TenantRepository.open(session, tenant, create=True)
        result = pipeline.store_events(
            repo,
            parsed.events,
            create_services=True,
            tenant_config=tenant_config,
            progress=lambda n: progress.advance(task, n),
        )
    for service in result.new_services:
        console.print(f"new service: {service}")
    console.print(_summary_table(result, f"{name} → tenant {tenant}"))
    console.print(f"{result.stored} events stored, {len(parsed.errors)} malformed line(s) skipped")
    if parsed.errors:
        raise typer.Exit(2)


def _record(tenant: str, data: dict[str, Any], merge_incident: bool = False) -> None:
    data = {k: v for k, v in data.items() if v is not None}
    s = settings()
    engine = open_database(s)
    from insights.store.registry import tenant_config as registered

    tenant_config = registered(engine, s, tenant)
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, tenant, create=True)
        if merge_incident:
            data = fill_from_stored(repo, data)
        try:
            event = parse_event(data)
        except EventError as exc:
            raise UserError(f"record {data['type']}: {exc.message}") from None
        result = pipeline.store_events(
            repo, [event], create_services=True, tenant_config=tenant_config
        )
    for service in result.new_services:
        console.print(f"new service: {service}")
    counts = result.counts[event.type]
    verb = "recorded" if counts.new else "updated" if counts.updated else "unchanged"
    console.print(f"{verb} {event.type} {getattr(event, 'id', None) or event.service}")


def _when(value: str | None, default_now: bool = False) -> str | datetime | None:
    if value == "now" or (value is None and default_now):
        return now()
    return value


@record_app.command("deployment")
def record_deployment(
    service: str = typer.Option(..., "--service", "-s", help="Service name."),
    sha: str = typer.Option(..., "--sha", help="Commit sha that was deployed."),
    id: str | None = typer.Option(
        None, "--id", help="Deployment id (default: environment:sha:finished-time)."
    ),
    environment: str = typer.Option("production", "--environment", "-e"),
    status: str = typer.Option("success", "--status", help="success|failure|in_progress|cancelled"),
    started_at: str | None = typer.Option(None, "--started-at", help="ISO-8601 time."),
    finished_at: str | None = typer.Option(
        None, "--finished-at", help="ISO-8601 time or 'now' (default: now when finished)."
    ),
    commit: list[str] = typer.Option(
        [], "--commit", help="A shipped commit sha (repeatable; default: from the commit graph)."
    ),
    tenant: str = TenantOption,
) -> None:
    """Record a deployment. Example: insights record deployment -s checkout --sha $GITHUB_SHA"""
    finished = _when(finished_at, default_now=status in ("success", "failure", "cancelled"))
    if id is None:
        stamp = iso(finished) if isinstance(finished, datetime) else finished
        id = f"{environment}:{sha[:12]}:{stamp}"
    _record(
        tenant,
        {
            "type": "deployment",
            "service": service,
            "id": id,
            "sha": sha,
            "environment": environment,
            "status": status,
            "started_at": _when(started_at),
            "finished_at": finished,
            "commits": commit or None,
        },
    )


@record_app.command("incident")
def record_incident(
    service: str = typer.Option(..., "--service", "-s", help="Service name."),
    id: str = typer.Option(..., "--id", help="Incident id, e.g. INC-42."),
    opened_at: str | None = typer.Option(
        None, "--opened-at", help="ISO-8601 time or 'now' (default: now for a new incident)."
    ),
    resolved_at: str | None = typer.Option(None, "--resolved-at", help="ISO-8601 time or 'now'."),
    severity: str | None = typer.Option(None, "--severity"),
    deployment_id: str | None = typer.Option(
        None, "--deployment-id", help="Deployment that caused it."
    ),
    title: str | None = typer.Option(None, "--title"),
    tenant: str = TenantOption,
) -> None:
    """Open or update an incident. Example: insights record incident -s checkout --id INC-3
    --resolved-at now"""
    _record(
        tenant,
        {
            "type": "incident",
            "service": service,
            "id": id,
            "opened_at": _when(opened_at),
            "resolved_at": _when(resolved_at),
            "severity": severity,
            "deployment_id": deployment_id,
            "title": title,
        },
        merge_incident=True,
    )


@record_app.command("commit")
def record_commit(
    service: str = typer.Option(..., "--service", "-s", help="Service name."),
    sha: str = typer.Option(..., "--sha"),
    committed_at: str = typer.Option(..., "--committed-at", help="ISO-8601 time."),
    authored_at: str | None = typer.Option(None, "--authored-at"),
    parent: list[str] = typer.Option([], "--parent", help="Parent sha (repeatable)."),
    author: str | None = typer.Option(None, "--author"),
    message: str | None = typer.Option(None, "--message"),
    tenant: str = TenantOption,
) -> None:
    """Record a commit. Example: insights record commit -s checkout --sha abc123 --committed-at
    2026-01-05T10:00:00Z"""
    _record(
        tenant,
        {
            "type": "commit",
            "service": service,
            "sha": sha,
            "committed_at": _when(committed_at),
            "authored_at": _when(authored_at),
            "parents": parent,
            "author": author,
            "message": message,
        },
    )


@tenant_app.command("create")
def tenant_create(
    name: str = typer.Argument(..., help="Tenant name."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA time zone for schedules."),
) -> None:
    """Create a tenant. Example: insights tenant create acme --timezone Europe/Berlin"""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"--timezone {timezone!r}: not an IANA time zone") from None
    engine = open_database()
    with unit_of_work(engine) as session:
        _, created = ensure_tenant(session, name, timezone)
    console.print(f"tenant {name}: {'created' if created else 'already exists'}")


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants with their services."""
    engine = open_database()
    table = Table("tenant", "timezone", "services")
    with unit_of_work(engine) as session:
        for t in list_tenants(session):
            services = TenantRepository(session, t).services()
            table.add_row(t.name, t.timezone, ", ".join(s.name for s in services) or "-")
    console.print(table)
