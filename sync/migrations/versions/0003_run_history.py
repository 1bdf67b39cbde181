"""run history: each run's step (pull, score, push), what triggered it and who ran it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 04:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("syncrun", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step", sa.String(), server_default="pull", nullable=False))
        batch_op.add_column(sa.Column("trigger", sa.String(), server_default="command", nullable=False))
        batch_op.add_column(sa.Column("worker", sa.String(), nullable=True))
        batch_op.create_index("ix_syncrun_started_at", ["started_at"], unique=False)
    # runs recorded before this revision named their step in ``command`` (pull or push)
    op.execute("UPDATE syncrun SET step = command WHERE command IN ('pull', 'score', 'push')")


def downgrade() -> None:
    with op.batch_alter_table("syncrun", schema=None) as batch_op:
        batch_op.drop_index("ix_syncrun_started_at")
        batch_op.drop_column("worker")
        batch_op.drop_column("trigger")
        batch_op.drop_column("step")
