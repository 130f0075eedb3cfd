"""CLI commands for the tenant registry: `apply`, `secrets …`, `audit`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from insights.cli import app, console, err_console
from insights.cli.common import open_database, settings
from insights.errors import UserError

secrets_app = typer.Typer(
    help="Per-tenant credentials, stored encrypted (INSIGHTS_SECRET_KEYS); write-only.",
    no_args_is_help=True,
)
app.add_typer(secrets_app, name="secrets")


@app.command()
def apply(
    file: Path = typer.Argument(..., help="The insights.toml to make the database match."),
    prune: bool = typer.Option(
        False, "--prune", help="Also delete registered tenants/teams/services the file lacks."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the diff, change nothing."),
) -> None:
    """Make the tenant registry in the database match FILE and print what changed.

    `+` created, `~` updated (with the fields), `-` deleted (only with --prune: a pruned
    service or tenant takes its delivery history with it), `=` in the database but not in the
    file. A second apply of the same file prints "no changes".

    Example: insights apply insights.toml --prune
    """
    from insights.config import load_org_config
    from insights.store import registry
    from insights.store.db import unit_of_work

    desired = load_org_config(file)
    s = settings()
    engine = open_database(s, follow_config=False)  # this command is the apply
    with unit_of_work(engine) as session:
        if dry_run:
            changes = registry.diff_org(session, desired, prune=prune)
        else:
            changes = registry.apply_org(session, desired, prune=prune, actor=f"cli:apply {file}")
            configured = registry.config_path(s)
            if configured is not None and configured.resolve() == file.resolve():
                registry.record_applied_file(session, file)
    for change in changes:
        console.print(change.line(), markup=False)
    made = [c for c in changes if c.action != "kept"]
    if not made:
        console.print("no changes")
    elif dry_run:
        console.print(f"{len(made)} change(s) would be made (--dry-run)")
    else:
        console.print(f"{len(made)} change(s) applied")


@app.command()
def audit(
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Only this tenant."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many entries, newest first."),
) -> None:
    """Show registry changes: when, who, what (never secret values).

    Example: insights audit --tenant acme -n 20
    """
    from sqlalchemy import select

    from insights.store.db import unit_of_work
    from insights.store.models import AuditEntry
    from insights.timeutil import iso

    engine = open_database()
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if tenant:
        query = query.where(AuditEntry.tenant == tenant)
    with unit_of_work(engine) as session:
        for entry in session.scalars(query):
            detail = json.dumps(entry.detail) if entry.detail else ""
            console.print(
                f"{iso(entry.at)}  {entry.actor}  {entry.action}  {entry.target}  {detail}",
                markup=False,
            )


@secrets_app.command("set")
def secrets_set(
    tenant: str = typer.Argument(..., help="Tenant."),
    slot: str = typer.Argument(
        ..., help="Credential slot, e.g. services.ledger.source.token_env (see `secrets list`)."
    ),
    from_env: str | None = typer.Option(
        None, "--from-env", help="Read the value from this environment variable, not stdin."
    ),
) -> None:
    """Store a credential encrypted; the value comes from stdin (or --from-env), never argv.

    Example: printf %s "$GITHUB_TOKEN" | insights secrets set acme services.ledger.source.token_env
    """
    import os

    from insights.store import secrets
    from insights.store.db import unit_of_work

    if from_env:
        value = os.environ.get(from_env, "")
        if not value:
            raise UserError(f"--from-env {from_env}: environment variable is not set")
    else:
        if sys.stdin.isatty():
            import getpass

            value = getpass.getpass(f"{slot}: ")
        else:
            value = sys.stdin.read()
        value = value.rstrip("\r\n")
    engine = open_database()
    with unit_of_work(engine) as session:
        secrets.set_secret(session, tenant, slot, value, actor="cli")
    console.print(f"secret {tenant}/{slot}: stored (encrypted)")


@secrets_app.command("unset")
def secrets_unset(
    tenant: str = typer.Argument(..., help="Tenant."),
    slot: str = typer.Argument(..., help="Credential slot."),
) -> None:
    """Delete a stored credential (the slot falls back to its environment variable)."""
    from insights.store import secrets
    from insights.store.db import unit_of_work

    engine = open_database()
    with unit_of_work(engine) as session:
        deleted = secrets.delete_secret(session, tenant, slot, actor="cli")
    console.print(f"secret {tenant}/{slot}: {'deleted' if deleted else 'was not stored'}")


@secrets_app.command("list")
def secrets_list(tenant: str = typer.Argument(..., help="Tenant.")) -> None:
    """Show each credential slot of a tenant and whether it is set (never the values)."""
    from insights.store import secrets
    from insights.store.db import unit_of_work

    engine = open_database()
    with unit_of_work(engine) as session:
        status = secrets.secret_status(session, tenant)
    for slot, state in sorted(status.items()):
        how = "stored" if state["stored"] else f"env {state['env']}" if state["env"] else "-"
        console.print(f"{slot}: {'set' if state['set'] else 'not set'} ({how})", markup=False)


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored credential with the first key of INSIGHTS_SECRET_KEYS.

    Rotation: put the new key first (`NEW,OLD`), run this, then drop OLD.
    """
    from insights.store import secrets
    from insights.store.db import unit_of_work

    engine = open_database()
    with unit_of_work(engine) as session:
        count = secrets.rotate(session, actor="cli")
    console.print(f"{count} secret(s) re-encrypted with the current key")


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new Fernet key for INSIGHTS_SECRET_KEYS (keep it out of the database)."""
    from insights.store.secrets import generate_key

    print(generate_key())
    err_console.print("put it first in INSIGHTS_SECRET_KEYS, then run `insights secrets rotate`")
