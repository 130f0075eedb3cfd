"""CLI commands that put data in: `init`, `import`, `record …`, `tenant create|list`.

Exit codes of `import`: 0 every line stored; 3 the valid lines were stored and the malformed
ones (listed by line number on stderr) skipped; 2 nothing was written (a bad file, --strict
with a malformed line, no valid line at all, an unknown tenant).

`record` and `import` write only to a tenant that exists (or that insights.toml configures,
or `default` on a fresh database): a mistyped `--tenant` is refused, never silently created.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from insights.cli import app, command, console, err_console, sub_app
from insights.cli.common import (
    TenantOption,
    ci_run_id,
    open_database,
    open_tenant_for_write,
    resolve_tenant,
    settings,
)
from insights.errors import UserError

if TYPE_CHECKING:
    from insights.collect.events import ParsedEvents
    from insights.pipeline import StoreResult
    from insights.store.repository import TenantRepository

# `import` exit code when the good lines were kept and malformed ones skipped.
EXIT_PARTIAL = 3

record_app = sub_app("Record one delivery event (for CI steps).")
tenant_app = sub_app("Create and list tenants.")
app.add_typer(record_app, name="record")
app.add_typer(tenant_app, name="tenant")


@command()
def init() -> None:
    """Create or upgrade the database schema and load tenants/services from insights.toml.

    Example: INSIGHTS_DATABASE_URL=postgresql://app@db/insights insights init
    """
    from insights.store.db import engine_for, migrate, unit_of_work
    from insights.store.repository import ensure_tenant

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


def _summary_table(result: StoreResult, title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in ("kind", "new", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, counts in result.counts.items():
        if counts.total:
            table.add_row(kind, str(counts.new), str(counts.updated), str(counts.unchanged))
    return table


def _parse_input(raw: bytes, name: str) -> ParsedEvents:
    """NDJSON lines, or one JSON array of event objects (what the API also accepts); both go
    through the bounded JSON parser of the input boundary."""
    from insights.boundedjson import JsonInputError, loads
    from insights.collect.events import parse_lines, parse_objects

    if raw.lstrip()[:1] == b"[":
        try:
            items = loads(raw)
        except JsonInputError as exc:
            raise UserError(
                f"{name}: starts with '[' but is not a JSON array ({exc}); give NDJSON "
                "(one event object a line) or a JSON array"
            ) from None
        if not isinstance(items, list):
            raise UserError(f"{name}: not a JSON array of events")
        return parse_objects(items)
    return parse_lines(raw.splitlines())


@command("import")
def import_(
    file: str = typer.Argument(
        ..., metavar="FILE", help="NDJSON file (or a JSON array) of canonical events; - for stdin."
    ),
    tenant: str | None = TenantOption,
    strict: bool = typer.Option(
        False, "--strict", help="Reject the whole file if any line is malformed."
    ),
) -> None:
    """Import canonical events (commit, change, deployment, incident): NDJSON or a JSON array.

    Malformed lines are reported with their line number and skipped (exit 3: the good lines
    are stored); with --strict, or when no line is valid, nothing is written (exit 2).
    Importing the same file twice changes nothing.

    Example: insights import events.ndjson --tenant acme
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from insights import pipeline
    from insights.store.db import unit_of_work

    tenant_name = resolve_tenant(tenant)
    if file == "-":
        raw = sys.stdin.buffer.read()
        name = "stdin"
    else:
        path = Path(file)
        if not path.is_file():
            raise UserError(f"{file}: file not found")
        raw = path.read_bytes()
        name = path.name
    parsed = _parse_input(raw, name)
    unit = "item" if raw.lstrip()[:1] == b"[" else "line"
    for error in parsed.errors[:50]:
        where = f"{unit} {error.line}: " if error.line is not None else ""
        err_console.print(f"{name}: {where}{error.message}", markup=False)
    if len(parsed.errors) > 50:
        err_console.print(f"{name}: … and {len(parsed.errors) - 50} more malformed {unit}s")
    if parsed.errors and strict:
        raise UserError(
            f"{name}: {len(parsed.errors)} malformed {unit}(s); --strict: nothing imported"
        )
    if not parsed.events:
        raise UserError(f"{name}: no valid events; nothing imported")
    s = settings()
    engine = open_database(s)
    from insights.store.registry import tenant_config as registered

    tenant_config = registered(engine, s, tenant_name)
    with (
        Progress(
            TextColumn("importing"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} events"),
            TimeElapsedColumn(),
            console=err_console.get(),
            transient=True,
            disable=len(parsed.events) < 20_000 or not err_console.is_terminal,
        ) as progress,
        unit_of_work(engine) as session,
    ):
        task = progress.add_task("import", total=len(parsed.events))
        repo = open_tenant_for_write(session, s, tenant_name)
        result = pipeline.store_events(
            repo,
            parsed.events,
            create_services=True,
            tenant_config=tenant_config,
            progress=lambda n: progress.advance(task, n),
        )
    for service in result.new_services:
        console.print(f"new service: {service}")
    console.print(_summary_table(result, f"{name} → tenant {tenant_name}"))
    console.print(
        f"{result.stored} events stored, {len(parsed.errors)} malformed {unit}(s) skipped"
    )
    if parsed.errors:
        raise typer.Exit(EXIT_PARTIAL)


def _record(
    tenant: str | None,
    data: dict[str, Any],
    *,
    fill: bool = False,
    defaults: dict[str, Any] | None = None,
    choose_id: Any = None,
) -> None:
    """Validate and store one event. `fill`: fields left out keep their stored values;
    `defaults`: applied after that, for fields still empty; `choose_id(repo, data)`: the id
    when the caller gave none."""
    from insights import pipeline
    from insights.model import EventError, parse_event
    from insights.store.db import unit_of_work
    from insights.store.partial import fill_from_stored

    tenant_name = resolve_tenant(tenant)
    data = {k: v for k, v in data.items() if v is not None}
    s = settings()
    engine = open_database(s)
    from insights.store.registry import tenant_config as registered

    tenant_config = registered(engine, s, tenant_name)
    with unit_of_work(engine) as session:
        repo = open_tenant_for_write(session, s, tenant_name)
        if choose_id is not None and "id" not in data:
            data["id"] = choose_id(repo, data)
        if fill:
            data = fill_from_stored(repo, data)
        for key, value in (defaults or {}).items():
            if data.get(key) is None:
                data[key] = value
        try:
            event = parse_event(data)
        except EventError as exc:
            raise UserError(f"record {data['type']}: {exc.message}") from None
        result = pipeline.store_events(
            repo, [event], create_services=True, tenant_config=tenant_config
        )
    # plain print: a CI step's `record` should not pay for importing rich
    for service in result.new_services:
        print(f"new service: {service}")
    counts = result.counts[event.type]
    verb = "recorded" if counts.new else "updated" if counts.updated else "unchanged"
    print(f"{verb} {event.type} {getattr(event, 'id', None) or event.service}")


def _when(value: str | None) -> str | datetime | None:
    from insights.timeutil import now

    return now() if value == "now" else value


def default_deployment_id(repo: TenantRepository, data: dict[str, Any]) -> str:
    """The id of a deployment recorded without --id, stable across retries of the same CI run.

    `ENV:SHA12:run-RUN` inside a CI run (GITHUB_RUN_ID, CI_PIPELINE_ID, …: a re-run job or
    retried step keeps the run id, a new pipeline gets a new one). Outside CI: the id of the
    last deployment recorded for this service and environment when it ran the same sha (a
    retry, or the same deployment moving from in_progress to success); otherwise a new
    `ENV:SHA12:TIME` — deploying a sha again after another one (a rollback) is a new
    deployment, and the finish time is only used to tell such deployments apart.
    """
    from sqlalchemy import select

    from insights.store.models import Deployment
    from insights.timeutil import iso, now

    sha = str(data.get("sha", "")).strip()
    environment = str(data.get("environment", "production")).strip()
    base = f"{environment}:{sha[:12]}"
    run = ci_run_id()
    if run:
        return f"{base}:run-{run}"
    service = repo.service(str(data.get("service", "")).strip())
    if service is not None:
        last = repo.session.execute(
            select(Deployment.external_id, Deployment.sha)
            .where(
                Deployment.tenant_id == repo.tenant_id,
                Deployment.service_id == service.id,
                Deployment.environment == environment,
            )
            .order_by(Deployment.id.desc())
            .limit(1)
        ).first()
        if last is not None and last.sha.lower() == sha.lower():
            return last.external_id
    return f"{base}:{iso(now())}"  # microseconds: A, B, A within a second stay three


@command("deployment", on=record_app)
def record_deployment(
    service: str = typer.Option(..., "--service", "-s", metavar="NAME", help="Service name."),
    sha: str = typer.Option(..., "--sha", metavar="SHA", help="Commit sha that was deployed."),
    id: str | None = typer.Option(
        None,
        "--id",
        metavar="ID",
        help="Deployment id (default: stable per CI run, so a retried step records it once).",
    ),
    environment: str = typer.Option("production", "--environment", "-e", metavar="ENV"),
    status: str = typer.Option(
        "success", "--status", metavar="STATUS", help="success|failure|in_progress|cancelled"
    ),
    started_at: str | None = typer.Option(None, "--started-at", metavar="TIME", help="ISO-8601."),
    finished_at: str | None = typer.Option(
        None,
        "--finished-at",
        metavar="TIME",
        help="ISO-8601 time or 'now' (default: now when finished; a retry keeps the first).",
    ),
    commit: list[str] = typer.Option(
        [],
        "--commit",
        metavar="SHA",
        help="A shipped commit sha (repeatable; default: from the commit graph).",
    ),
    tenant: str | None = TenantOption,
) -> None:
    """Record a deployment; recording it again (a CI retry) changes nothing.

    Example: insights record deployment -s checkout --sha $GITHUB_SHA
    """
    from insights.timeutil import now

    finished = status in ("success", "failure", "cancelled")
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
            "finished_at": _when(finished_at),
            "commits": commit or None,
        },
        fill=True,
        defaults={"finished_at": now()} if finished else None,
        choose_id=default_deployment_id,
    )


@command("incident", on=record_app)
def record_incident(
    service: str = typer.Option(..., "--service", "-s", metavar="NAME", help="Service name."),
    id: str = typer.Option(..., "--id", metavar="ID", help="Incident id, e.g. INC-42."),
    opened_at: str | None = typer.Option(
        None,
        "--opened-at",
        metavar="TIME",
        help="ISO-8601 time or 'now' (default: now for a new incident).",
    ),
    resolved_at: str | None = typer.Option(
        None, "--resolved-at", metavar="TIME", help="ISO-8601 time or 'now'."
    ),
    severity: str | None = typer.Option(None, "--severity", metavar="LEVEL"),
    deployment_id: str | None = typer.Option(
        None, "--deployment-id", metavar="ID", help="Deployment that caused it."
    ),
    title: str | None = typer.Option(None, "--title", metavar="TEXT"),
    tenant: str | None = TenantOption,
) -> None:
    """Open or update an incident; fields left out keep their stored values.

    Example: insights record incident -s checkout --id INC-3 --resolved-at now
    """
    from insights.timeutil import now

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
        fill=True,
        defaults={"opened_at": now()},
    )


@command("commit", on=record_app)
def record_commit(
    service: str = typer.Option(..., "--service", "-s", metavar="NAME", help="Service name."),
    sha: str = typer.Option(..., "--sha", metavar="SHA"),
    committed_at: str = typer.Option(..., "--committed-at", metavar="TIME", help="ISO-8601."),
    authored_at: str | None = typer.Option(None, "--authored-at", metavar="TIME"),
    parent: list[str] = typer.Option(
        [], "--parent", metavar="SHA", help="Parent sha (repeatable)."
    ),
    author: str | None = typer.Option(None, "--author", metavar="NAME"),
    message: str | None = typer.Option(None, "--message", metavar="TEXT"),
    tenant: str | None = TenantOption,
) -> None:
    """Record a commit.

    Example: insights record commit -s checkout --sha abc123 --committed-at 2026-01-05T10:00:00Z
    """
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


@command("create", on=tenant_app)
def tenant_create(
    name: str = typer.Argument(..., metavar="NAME", help="Tenant name."),
    timezone: str = typer.Option(
        "UTC", "--timezone", metavar="ZONE", help="IANA time zone for schedules."
    ),
) -> None:
    """Create a tenant. Example: insights tenant create acme --timezone Europe/Berlin"""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from insights.store.db import unit_of_work
    from insights.store.repository import ensure_tenant

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"--timezone {timezone!r}: not an IANA time zone") from None
    engine = open_database()
    with unit_of_work(engine) as session:
        _, created = ensure_tenant(session, name, timezone)
    console.print(f"tenant {name}: {'created' if created else 'already exists'}")


@command("list", on=tenant_app)
def tenant_list() -> None:
    """List tenants with their services."""
    from rich.table import Table

    from insights.store.db import unit_of_work
    from insights.store.repository import TenantRepository, list_tenants

    engine = open_database()
    table = Table("tenant", "timezone", "services")
    with unit_of_work(engine) as session:
        for t in list_tenants(session):
            services = TenantRepository(session, t).services()
            table.add_row(t.name, t.timezone, ", ".join(s.name for s in services) or "-")
    console.print(table)
