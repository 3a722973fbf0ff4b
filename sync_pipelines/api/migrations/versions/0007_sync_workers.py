"""A sync's ``workers``: threads loading a backfill's key ranges in parallel.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("syncs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workers", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("syncs", schema=None) as batch_op:
        batch_op.drop_column("workers")
