"""How far back each write reaches (`metric_writes`): stored metric reads of windows that end
before it stay valid after the write (`insights/store/read_cache.py`). And three deployment
indexes that turn the scope facts of a window-bounded read (`insights/store/window_read.py`)
from scans of the scope's deployments into index lookups:

- `(tenant_id, service_id, status, environment)`: which environments a service deployed to
  successfully (a loose index scan: one probe per environment);
- PostgreSQL, partial `WHERE commits_listed IS false`: the deployments without listed commits
  (the commit-graph rule), usually none;
- PostgreSQL, partial on `models.POISONED_DEPLOYMENTS`: rows the engine's screen skips,
  usually none.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# the text of `insights.store.models.POISONED_DEPLOYMENTS` when this revision was written
POISONED = (
    "finished_at < '1970-01-01 00:00:00+00' OR finished_at > '2100-01-01 00:00:00+00'"
    " OR started_at < '1970-01-01 00:00:00+00' OR started_at > '2100-01-01 00:00:00+00'"
    " OR finished_at < started_at"
)

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_writes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.BigInteger(),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("service_id", sa.BigInteger(), nullable=True),
        sa.Column("affected_from", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_metric_writes_tenant_version", "metric_writes", ["tenant_id", "version"])
    op.create_index(
        "ix_deployments_service_status_env",
        "deployments",
        ["tenant_id", "service_id", "status", "environment"],
    )
    op.create_index(
        "ix_deployments_unlisted",
        "deployments",
        ["tenant_id", "service_id"],
        postgresql_where=sa.text("commits_listed IS false"),
    )
    op.create_index(
        "ix_deployments_poisoned",
        "deployments",
        ["tenant_id", "service_id"],
        postgresql_where=sa.text(POISONED),
    )


def downgrade() -> None:
    op.drop_index("ix_deployments_poisoned", table_name="deployments")
    op.drop_index("ix_deployments_unlisted", table_name="deployments")
    op.drop_index("ix_deployments_service_status_env", table_name="deployments")
    op.drop_index("ix_metric_writes_tenant_version", table_name="metric_writes")
    op.drop_table("metric_writes")
