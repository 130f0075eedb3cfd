"""Indexes for window-bounded metric reads (`insights/store/window_read.py`).

A metrics read loads the rows its windows need, plus small facts from outside them; these
indexes make each fact a short index lookup instead of a scan of the scope's history:

- `deployments (tenant_id, service_id, sha)`: the first production run of a sha (redeploys,
  rollbacks);
- `deployment_commits (tenant_id, sha)`: the other deployments that list a commit (a commit
  counts once, at its first shipment);
- `commits (tenant_id, service_id, committed_at)`: the counts of recorded commits;
- `changes (tenant_id, service_id, merged_at)`: the changes merged since the span's start;
- partial `commits (tenant_id, service_id) WHERE message LIKE '%This reverts commit %'` and
  `changes (tenant_id, service_id) WHERE reverts IS NOT NULL OR title LIKE 'Revert "%'`:
  whether a scope has reverts at all, without reading its messages.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVERT_COMMITS = sa.text("message LIKE '%This reverts commit %'")
REVERT_CHANGES = sa.text("reverts IS NOT NULL OR title LIKE 'Revert \"%'")


def upgrade() -> None:
    op.create_index("ix_deployments_service_sha", "deployments", ["tenant_id", "service_id", "sha"])
    op.create_index("ix_deployment_commits_sha", "deployment_commits", ["tenant_id", "sha"])
    op.create_index(
        "ix_commits_service_committed", "commits", ["tenant_id", "service_id", "committed_at"]
    )
    op.create_index(
        "ix_changes_service_merged", "changes", ["tenant_id", "service_id", "merged_at"]
    )
    op.create_index(
        "ix_commits_reverts",
        "commits",
        ["tenant_id", "service_id"],
        postgresql_where=REVERT_COMMITS,
        sqlite_where=REVERT_COMMITS,
    )
    op.create_index(
        "ix_changes_reverts",
        "changes",
        ["tenant_id", "service_id"],
        postgresql_where=REVERT_CHANGES,
        sqlite_where=REVERT_CHANGES,
    )


def downgrade() -> None:
    op.drop_index("ix_changes_reverts", table_name="changes")
    op.drop_index("ix_commits_reverts", table_name="commits")
    op.drop_index("ix_changes_service_merged", table_name="changes")
    op.drop_index("ix_commits_service_committed", table_name="commits")
    op.drop_index("ix_deployment_commits_sha", table_name="deployment_commits")
    op.drop_index("ix_deployments_service_sha", table_name="deployments")
