"""Range leases: holders of the key ranges of a run's backfill, split into key-range runs.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backfill_range_leases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("range_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("key_range", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("runner_id", sa.String(length=255), nullable=True),
        sa.Column("runner_host", sa.String(length=255), nullable=True),
        sa.Column("runner_pid", sa.Integer(), nullable=True),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_seconds", sa.Float(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["sync_runs.id"]),
        sa.ForeignKeyConstraint(["sync_id"], ["syncs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("backfill_range_leases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_backfill_range_leases_run_range", ["run_id", "range_index"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("backfill_range_leases", schema=None) as batch_op:
        batch_op.drop_index("ix_backfill_range_leases_run_range")
    op.drop_table("backfill_range_leases")
