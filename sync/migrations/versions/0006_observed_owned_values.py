"""attributes.digest, observed, observed_at: the platform's own values of leadsync's fields and tags,
and a digest of what scoring reads (echoes of leadsync's writes are no change)

Revision ID: 0006
Revises: 0002 (on branch i19b; the contract's chain is 0003 runs, 0004 i20, 0005 i22 -> 0006)
Create Date: 2026-12-04 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0002"
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
