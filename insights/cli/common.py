"""The CLI's one option vocabulary and the one place that resolves tenant, scope and window.

Every command spells the same idea the same way: `--tenant/-t NAME`, `--scope SCOPE`,
`--service/-s NAME`, `--team NAME`, `--window/-w WINDOW`, `--from TIME --to TIME`,
`--format/-f FORMAT`. `resolve_target()` turns tenant + scope options into (tenant, Scope), so
`--scope tenant:acme` (as `gate` prints it) means the same as `--tenant acme`.

Heavy modules (pydantic settings, SQLAlchemy) are imported inside the functions: this module
is loaded for `insights --help`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from insights.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from insights.config import Settings
    from insights.metrics.result import Scope, Window
    from insights.store.repository import TenantRepository

DEFAULT_TENANT = "default"

TenantOption = typer.Option(
    None,
    "--tenant",
    "-t",
    envvar="INSIGHTS_TENANT",
    metavar="NAME",
    show_default=False,
    help="Tenant to act on (default: default).",
)
ScopeOption = typer.Option(
    None,
    "--scope",
    metavar="SCOPE",
    help="service:NAME, team:NAME or tenant[:NAME] (default: tenant).",
)
ServiceOption = typer.Option(
    None,
    "--service",
    "-s",
    metavar="NAME",
    help="Only this service (same as --scope service:NAME).",
)
TeamOption = typer.Option(
    None, "--team", metavar="NAME", help="Only this team (same as --scope team:NAME)."
)
WindowOption = typer.Option(
    None,
    "--window",
    "-w",
    metavar="WINDOW",
    help="ISO week (2026-W05), month (2026-01), quarter (2026-Q1), year (2026) or FROM..TO "
    "dates; default: the last full week.",
)
FromOption = typer.Option(
    None, "--from", metavar="TIME", help="Window start: a date or ISO time (UTC if no offset)."
)
ToOption = typer.Option(None, "--to", metavar="TIME", help="Window end, excluded.")


def settings() -> Settings:
    """Settings from the environment; a bad value is a one-line error naming its variable
    (never the value: some of them are secrets)."""
    from pydantic import ValidationError

    from insights.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        name = "INSIGHTS_" + "_".join(str(p) for p in err["loc"]).upper()
        raise UserError(f"{name}: {err['msg']}") from None


def open_database(
    s: Settings | None = None, *, migrate_sqlite: bool = True, follow_config: bool = True
) -> Engine:
    """The configured database, ready to use.

    A SQLite file is brought to the current schema on first use (zero-setup laptops);
    PostgreSQL is migrated only by `insights init`, so replicas never race on migrations.
    Either way the tenant registry then follows insights.toml: a file whose content changed
    since it was last applied is applied now (never pruned), so configuration and database do
    not drift.
    """
    from insights.store.db import engine_for, migrate, schema_is_current
    from insights.store.registry import sync_file

    s = s or settings()
    engine = engine_for(s.database_url)
    if not schema_is_current(engine):
        if engine.dialect.name != "sqlite" or not migrate_sqlite:
            raise UserError("database schema is not current: run `insights init` first")
        migrate(engine)
    if follow_config:
        sync_file(engine, s)
    return engine


def resolve_tenant(tenant: str | None) -> str:
    """The tenant option's value, `default` when neither --tenant nor INSIGHTS_TENANT is set."""
    name = (tenant or "").strip()
    return name or DEFAULT_TENANT


def resolve_target(
    tenant: str | None,
    scope: str | None = None,
    service: str | None = None,
    team: str | None = None,
) -> tuple[str, Scope]:
    """(tenant, scope) from the tenant option and at most one of --scope/--service/--team.

    `tenant:acme` names the tenant inside the scope; with --tenant as well, both must agree.

    >>> resolve_target(None, "tenant:acme")
    ('acme', Scope(kind='tenant', name='acme'))
    """
    from insights.metrics.result import Scope
    from insights.metrics.scope import parse_scope

    given = [f"--{k}" for k, v in (("scope", scope), ("service", service), ("team", team)) if v]
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)}: give only one of --scope, --service, --team")
    text = scope or (f"service:{service}" if service else f"team:{team}" if team else "tenant")
    kind, _, name = text.strip().partition(":")
    if kind == "tenant" and name:
        name = name.strip()
        if tenant and tenant.strip() != name:
            raise UserError(f"--scope {text}: names tenant {name!r} but --tenant is {tenant!r}")
        return name, Scope(kind="tenant", name=name)
    chosen = resolve_tenant(tenant)
    return chosen, parse_scope(text, chosen)


def resolve_window(window: str | None, start: str | None, end: str | None) -> Window:
    """The window from --window or --from/--to (not both); the default is last full week."""
    from insights.metrics.windows import aligned, parse_time_bound, parse_window
    from insights.timeutil import now

    if start is None and end is None:
        return parse_window(window, now())
    if window is not None:
        raise UserError("--window: give either --window or --from/--to, not both")
    if start is None or end is None:
        raise UserError("--from/--to: give both ends of the window")
    return aligned(parse_time_bound(start, "--from"), parse_time_bound(end, "--to"))


def open_tenant_for_write(session: Session, s: Settings, tenant: str) -> TenantRepository:
    """The repository of a tenant that `import` / `record` may write to.

    A mistyped tenant in a CI step must not quietly become a new tenant nobody looks at, so
    an unknown tenant is refused with how to create it. Two cases are not typos and are
    created on first write: `default` while the database has no tenant at all (the
    zero-setup laptop), and a tenant that insights.toml configures.
    """
    from insights.store.repository import (
        TenantRepository,
        ensure_tenant,
        get_tenant,
        list_tenants,
        storable_name,
    )

    if not storable_name(tenant):
        ensure_tenant(session, tenant)  # refuses it with the one-line reason
    if get_tenant(session, tenant) is None:
        fresh = tenant == DEFAULT_TENANT and not list_tenants(session)
        configured = tenant in s.organisation().by_name
        if not (fresh or configured):
            raise UserError(
                f"--tenant {tenant}: no such tenant (create it with `insights tenant create "
                f"{tenant}`, or name it in insights.toml)"
            )
    return TenantRepository.open(session, tenant, create=True)


def ci_run_id() -> str | None:
    """The CI run this process belongs to, from the variables CI systems set, or None.

    GitHub Actions' GITHUB_RUN_ID stays the same when a job or step is re-run (only
    GITHUB_RUN_ATTEMPT changes), as do GitLab's CI_PIPELINE_ID and the others here: a retry of
    the same run is the same deployment, a new run is a new one.
    """
    for name in (
        "GITHUB_RUN_ID",
        "CI_PIPELINE_ID",
        "BUILDKITE_BUILD_ID",
        "CIRCLE_WORKFLOW_ID",
        "BUILD_BUILDID",  # Azure Pipelines
        "BUILD_TAG",  # Jenkins: job name + build number
    ):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None
