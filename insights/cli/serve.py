"""CLI for the HTTP API: `insights serve` and `insights tenant token create|list|revoke`."""

from __future__ import annotations

import typer

from insights.cli import command, console, err_console, sub_app
from insights.cli.common import open_database, settings
from insights.cli.data import tenant_app

token_app = sub_app("API tokens of a tenant (shown once; only a hash is stored).")
tenant_app.add_typer(token_app, name="token")


@command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="ADDRESS", help="Interface to listen on."
    ),
    port: int = typer.Option(8000, "--port", metavar="PORT", help="TCP port."),
    log_level: str = typer.Option(
        "info", "--log-level", metavar="LEVEL", help="uvicorn log level."
    ),
    scheduler: str = typer.Option(
        "on",
        "--scheduler",
        envvar="INSIGHTS_SCHEDULER",
        metavar="on|off",
        help="on: also run the scheduler (one leader among replicas); off: API only.",
    ),
) -> None:
    """Run the HTTP API (events, metrics, reports, webhooks; OpenAPI at /docs) and the
    scheduler (see `insights scheduler`).

    Example: INSIGHTS_DATABASE_URL=postgresql://app@db/insights insights serve --host 0.0.0.0
    """
    import uvicorn

    from insights.api.app import create_app, preload_for_serving
    from insights.ops.scheduler import SchedulerService, attach_to_app, scheduler_enabled

    s = settings()
    open_database(s)  # schema must be current before the first request
    api = create_app(s)
    if scheduler_enabled(scheduler):
        from insights.cli.ops import configure_logging

        configure_logging()
        attach_to_app(api, SchedulerService(s))
    preload_for_serving()
    uvicorn.run(api, host=host, port=port, log_level=log_level, access_log=False)


@command("create", on=token_app)
def token_create(
    tenant: str = typer.Argument(..., metavar="TENANT", help="Tenant the token acts for."),
    name: str = typer.Option(
        "ci", "--name", metavar="NAME", help="A label to recognise (and revoke) it by."
    ),
) -> None:
    """Create an API token and print it once (store it as a CI secret).

    Example: insights tenant token create acme --name github-actions
    """
    from insights.api.auth import create_token
    from insights.store.db import unit_of_work

    with unit_of_work(open_database()) as session:
        token = create_token(session, tenant, name)
    err_console.print(f"token {name!r} for tenant {tenant} (shown once, only its hash is kept):")
    console.print(token, markup=False)


@command("list", on=token_app)
def token_list(tenant: str = typer.Argument(..., metavar="TENANT", help="Tenant.")) -> None:
    """List a tenant's tokens (names and dates; tokens themselves are never stored)."""
    from rich.table import Table

    from insights.api.auth import list_tokens
    from insights.store.db import unit_of_work
    from insights.timeutil import iso

    table = Table("name", "created", "revoked")
    with unit_of_work(open_database()) as session:
        for token in list_tokens(session, tenant):
            table.add_row(token.name, iso(token.created_at), iso(token.revoked_at) or "-")
    console.print(table)


@command("revoke", on=token_app)
def token_revoke(
    tenant: str = typer.Argument(..., metavar="TENANT", help="Tenant."),
    name: str = typer.Option(..., "--name", metavar="NAME", help="Name of the token(s) to revoke."),
) -> None:
    """Revoke a tenant's tokens of that name; requests with them get 401 from now on."""
    from insights.api.auth import revoke_tokens
    from insights.errors import NotFound
    from insights.store.db import unit_of_work

    with unit_of_work(open_database()) as session:
        count = revoke_tokens(session, tenant, name)
    if count == 0:
        raise NotFound(f"token {name!r}: no live token of that name in tenant {tenant!r}")
    console.print(f"revoked {count} token(s) named {name!r} of tenant {tenant}")
