"""How far back each write reaches (`metric_writes`): stored metric reads of windows that end
before it stay valid after the write (`insights/store/read_cache.py`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

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


def downgrade() -> None:
    op.drop_index("ix_metric_writes_tenant_version", table_name="metric_writes")
    op.drop_table("metric_writes")
