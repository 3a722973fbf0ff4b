"""Deletes without CDC: a sync's (or its object's default) deletes mode, threshold and interval.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deletes", sa.String(length=16), nullable=True))
    with op.batch_alter_table("syncs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deletes", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("max_delete_fraction", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("delete_check_every", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("syncs", schema=None) as batch_op:
        batch_op.drop_column("delete_check_every")
        batch_op.drop_column("max_delete_fraction")
        batch_op.drop_column("deletes")
    with op.batch_alter_table("objects", schema=None) as batch_op:
        batch_op.drop_column("deletes")
