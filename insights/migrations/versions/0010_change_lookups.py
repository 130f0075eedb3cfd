"""Index lookups for the changes a window-bounded metric read needs
(`insights/store/window_read.py`): those whose merge sha, or one of whose listed commits, a
deployment of the window ships. Without them each read scanned the scope's changes and parsed
every change's JSON list of commits (a second on 10⁵ changes, whatever the window):

- `changes (tenant_id, service_id, merge_sha)`: the changes merged as a shipped sha;
- `change_commits (change_id, sha)`, indexed by `(tenant_id, sha)`: each change's listed
  commits as rows (the JSON list stays as it is), filled here from the stored changes; a
  change's rows go with it (foreign key, cascade);
- `changes` and `incidents (tenant_id, service_id, opened_at)`: a window's recorded counts;
- PostgreSQL, partial on `models.POISONED_CHANGES` / `POISONED_INCIDENTS`: rows the engine's
  screen skips, usually none (as 0009 for deployments).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the texts of `insights.store.models.POISONED_CHANGES` and `POISONED_INCIDENTS` when this
# revision was written
POISONED_CHANGES = (
    "opened_at < '1970-01-01 00:00:00+00' OR opened_at > '2100-01-01 00:00:00+00'"
    " OR first_commit_at < '1970-01-01 00:00:00+00' OR first_commit_at > '2100-01-01 00:00:00+00'"
    " OR first_review_at < '1970-01-01 00:00:00+00' OR first_review_at > '2100-01-01 00:00:00+00'"
    " OR approved_at < '1970-01-01 00:00:00+00' OR approved_at > '2100-01-01 00:00:00+00'"
    " OR merged_at < '1970-01-01 00:00:00+00' OR merged_at > '2100-01-01 00:00:00+00'"
    " OR merged_at < opened_at"
)
POISONED_INCIDENTS = (
    "opened_at < '1970-01-01 00:00:00+00' OR opened_at > '2100-01-01 00:00:00+00'"
    " OR resolved_at < '1970-01-01 00:00:00+00' OR resolved_at > '2100-01-01 00:00:00+00'"
    " OR resolved_at < opened_at"
)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SHA = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_index("ix_changes_merge_sha", "changes", ["tenant_id", "service_id", "merge_sha"])
    op.create_table(
        "change_commits",
        sa.Column(
            "change_id",
            BIG_ID,
            sa.ForeignKey("changes.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("sha", SHA, primary_key=True),
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("service_id", BIG_ID, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        array = "CASE WHEN json_typeof(c.commits) = 'array' THEN c.commits ELSE '[]' END"
        elements = f"json_array_elements_text({array})"
    else:
        elements = "json_each(CASE WHEN json_type(c.commits) = 'array' THEN c.commits END)"
    # what `upsert_changes` writes: each distinct listed sha (a value longer than a sha, from
    # before the event model checked them, is left out)
    op.execute(
        "INSERT INTO change_commits (change_id, sha, tenant_id, service_id)"
        f" SELECT DISTINCT c.id, e.value, c.tenant_id, c.service_id FROM changes c, {elements} e"
        " WHERE e.value IS NOT NULL AND length(e.value) <= 64"
    )
    op.create_index("ix_change_commits_sha", "change_commits", ["tenant_id", "sha"])
    for table in ("changes", "incidents"):
        op.create_index(
            f"ix_{table}_service_opened", table, ["tenant_id", "service_id", "opened_at"]
        )
    if op.get_bind().dialect.name == "postgresql":
        for table, poisoned in (("changes", POISONED_CHANGES), ("incidents", POISONED_INCIDENTS)):
            op.create_index(
                f"ix_{table}_poisoned",
                table,
                ["tenant_id", "service_id"],
                postgresql_where=sa.text(poisoned),
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_incidents_poisoned", table_name="incidents")
        op.drop_index("ix_changes_poisoned", table_name="changes")
    op.drop_index("ix_incidents_service_opened", table_name="incidents")
    op.drop_index("ix_changes_service_opened", table_name="changes")
    op.drop_index("ix_change_commits_sha", table_name="change_commits")
    op.drop_table("change_commits")
    op.drop_index("ix_changes_merge_sha", table_name="changes")
