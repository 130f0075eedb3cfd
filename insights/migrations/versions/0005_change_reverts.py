"""Changes remember which change they revert (`changes.reverts`), for the revert failure rule.

GitHub's revert button names the reverted pull request only in the head branch
(`revert-<n>-…`), GitLab only in the description ("This reverts merge request !n"); neither is
stored otherwise, so the mapping keeps the number it found.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("reverts", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("reverts")
