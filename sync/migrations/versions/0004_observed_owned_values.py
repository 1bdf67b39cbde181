"""attributes.digest, observed, observed_at: the platform's own values of leadsync's fields and tags,
and a digest of what scoring reads (echoes of leadsync's writes are no change)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attributes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("observed", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("observed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attributes", schema=None) as batch_op:
        batch_op.drop_column("observed_at")
        batch_op.drop_column("observed")
        batch_op.drop_column("digest")
