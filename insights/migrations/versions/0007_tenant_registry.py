"""Tenant registry: tenant/team/service configuration, encrypted secrets, audit, token budget.

- `tenants.config`, `teams.config`, `services.config`: the registered configuration (what
  insights.toml or the admin API said), so every process reads one source of truth.
- `registry_state`: the content hash of the last auto-applied insights.toml.
- `tenant_secrets`: per-tenant credentials, Fernet ciphertext only.
- `audit_log`: who changed what in the registry, and when (never secret values).
- `token_reservations`: model tokens reserved before a call and settled after it, so the
  monthly budget holds when many workers narrate at once.
- PostgreSQL only: the work queue's tables (procrastinate's own schema, `procrastinate_*`), so
  the queue's schema changes with ours and no worker races another on DDL.

Revision ID: 0007
Revises: 0002
Create Date: 2026-12-01 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0007"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ADD COLUMN, not a batch rebuild: on SQLite a rebuild drops `tenants`, and with
    # foreign keys on that would cascade into every tenant's rows
    for table in ("tenants", "teams", "services"):
        op.add_column(table, sa.Column("config", sa.JSON(), nullable=True))
    op.create_table(
        "registry_state",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "tenant_secrets",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("slot", sa.String(length=300), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "slot"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=True),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant", "at"])
    op.create_table(
        "token_reservations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_token_reservations_tenant_month", "token_reservations", ["tenant_id", "month"]
    )
    if op.get_bind().dialect.name == "postgresql":
        _create_queue_schema()


def _create_queue_schema() -> None:
    from importlib import resources

    schema = (resources.files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8")
    # through the DB-API cursor with no parameters: the schema's `%` are literal (RAISE … %)
    cursor = op.get_bind().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(schema)


_DROP_QUEUE_SCHEMA = r"""
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'procrastinate\_%'
  LOOP EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(r.relname) || ' CASCADE'; END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\_%'
  LOOP EXECUTE 'DROP FUNCTION IF EXISTS ' || r.sig || ' CASCADE'; END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'c')
        AND t.typname LIKE 'procrastinate\_%'
  LOOP EXECUTE 'DROP TYPE IF EXISTS ' || quote_ident(r.typname) || ' CASCADE'; END LOOP;
END $$;
"""


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        cursor = op.get_bind().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(_DROP_QUEUE_SCHEMA)
    op.drop_index("ix_token_reservations_tenant_month", table_name="token_reservations")
    op.drop_table("token_reservations")
    op.drop_index("ix_audit_log_tenant_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("tenant_secrets")
    op.drop_table("registry_state")
    for table in ("services", "teams", "tenants"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN config")
