"""Tenant registry: tenant/team/service configuration, encrypted secrets, audit, token budget.

- `tenants.config`, `teams.config`, `services.config`: the registered configuration (what
  insights.toml or the admin API said), so every process reads one source of truth.
- `registry_state`: the content hash of the last auto-applied insights.toml.
- `tenant_secrets`: per-tenant credentials, Fernet ciphertext only.
- `audit_log`: who changed what in the registry, and when (never secret values).
- `token_reservations`: model tokens reserved before a call and settled after it, so the
  monthly budget holds when many workers narrate at once.

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


def downgrade() -> None:
    op.drop_index("ix_token_reservations_tenant_month", table_name="token_reservations")
    op.drop_table("token_reservations")
    op.drop_index("ix_audit_log_tenant_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("tenant_secrets")
    op.drop_table("registry_state")
    for table in ("services", "teams", "tenants"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN config")
