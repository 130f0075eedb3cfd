"""Bulk tables without foreign keys (PostgreSQL): commits and shipped-commit links.

PostgreSQL checks a foreign key with a per-row trigger (an index probe and a row lock on the
parent). `commits` and `deployment_commits` are the bulk tables: a git/git ingest writes
85,361 commits and 80,277 links, and the checks were about a third of the server's work
(see docs/sync.md). Their rows are only ever written by `TenantRepository` for a service or
deployment it has just read in the same transaction, so the key adds no protection there;
what it did add, the cascade when a tenant, service or deployment is deleted, is now done
explicitly (`insights.store.registry.delete_history`, `TenantRepository.delete_deployments`),
and a test checks that no row is left behind.

SQLite keeps its keys: dropping one there rebuilds the table, and its checks are cheap.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("commits_service_fkey", "commits", type_="foreignkey")
    op.drop_constraint(
        "deployment_commits_deployment_fkey", "deployment_commits", type_="foreignkey"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # rows left by a deletion outside the application would block the keys: remove them first
    op.execute(
        "DELETE FROM deployment_commits l WHERE NOT EXISTS "
        "(SELECT 1 FROM deployments d WHERE d.tenant_id = l.tenant_id AND d.id = l.deployment_id)"
    )
    op.execute(
        "DELETE FROM commits c WHERE NOT EXISTS "
        "(SELECT 1 FROM services s WHERE s.tenant_id = c.tenant_id AND s.id = c.service_id)"
    )
    op.create_foreign_key(
        "commits_service_fkey",
        "commits",
        "services",
        ["tenant_id", "service_id"],
        ["tenant_id", "id"],
        ondelete="CASCADE",
    )
    op.create_foreign_key(
        "deployment_commits_deployment_fkey",
        "deployment_commits",
        "deployments",
        ["tenant_id", "deployment_id"],
        ["tenant_id", "id"],
        ondelete="CASCADE",
    )
