"""changed_person.version: 0 while a re-score holds the mark, so it clears only marks no page took back

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changedperson", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("changedperson", schema=None) as batch_op:
        batch_op.drop_column("version")
