"""Index lookups for the incidents a window-bounded metric read needs
(`insights/store/window_read.py`), which scanned the scope's incidents (13–20 ms per read on
one service with 10⁵ incidents, whatever the window):
- `incidents (tenant_id, service_id, deployment_external_id)`: those linked to a loaded
  deployment;
- `incidents (tenant_id, service_id, opened_at)` where `resolved_at IS NULL`: those still
  open;
- PostgreSQL, `incidents (tenant_id, service_id, (resolved_at - opened_at))`: each service's
  longest incident, one probe, so that "resolved after the span's start" is bounded by
  `opened_at` (an incident open at the start opened at most that long before it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 11:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the text of `insights.store.models.INCIDENT_DURATION` when this revision was written
INCIDENT_DURATION = "(resolved_at - opened_at)"


def upgrade() -> None:
    op.create_index(
        "ix_incidents_deployment",
        "incidents",
        ["tenant_id", "service_id", "deployment_external_id"],
    )
    op.create_index(
        "ix_incidents_open",
        "incidents",
        ["tenant_id", "service_id", "opened_at"],
        postgresql_where=sa.text("resolved_at IS NULL"),
        sqlite_where=sa.text("resolved_at IS NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_incidents_duration",
            "incidents",
            ["tenant_id", "service_id", sa.text(INCIDENT_DURATION)],
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_incidents_duration", table_name="incidents")
    op.drop_index("ix_incidents_open", table_name="incidents")
    op.drop_index("ix_incidents_deployment", table_name="incidents")
