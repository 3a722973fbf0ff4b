"""Runs count the rows read again unchanged apart from the rows updated.

Revision ID: 0003_fid_write
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_fid_write"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rows_unchanged", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("rows_unchanged")
