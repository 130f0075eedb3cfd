"""Shared CLI plumbing: settings, opening the database, the --tenant option."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from sqlalchemy import Engine

from insights.config import Settings
from insights.errors import UserError
from insights.store.db import engine_for, migrate, schema_is_current

TenantOption = typer.Option(
    "default", "--tenant", "-t", envvar="INSIGHTS_TENANT", help="Tenant to act on."
)


def settings() -> Settings:
    """Settings from the environment; a bad value is a one-line error naming its variable
    (never the value: some of them are secrets)."""
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
