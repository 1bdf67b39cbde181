"""markclaims: the count of change-mark claims, so that a pull marks each person once (issue 20)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "markclaims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("claims", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO markclaims (id, claims) VALUES (1, 0)")  # the one row, counted from 0


def downgrade() -> None:
    op.drop_table("markclaims")
