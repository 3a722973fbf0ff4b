"""API-provider syncs: credentials, the shared rate limiter, provider columns on syncs.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("property_names", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rate_limit_permits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rate_limit_permits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rate_limit_permits_credential_granted",
            ["credential_id", "granted_at"],
            unique=False,
        )

    with op.batch_alter_table("syncs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("collection_ids", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("credential_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("provider_config", sa.JSON(none_as_null=True), nullable=True))
        batch_op.alter_column("source_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.alter_column("object_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_foreign_key(
            "fk_syncs_credential_id_credentials", "credentials", ["credential_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("syncs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_syncs_credential_id_credentials", type_="foreignkey")
        batch_op.alter_column("object_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.alter_column("source_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("provider_config")
        batch_op.drop_column("credential_id")
        batch_op.drop_column("collection_ids")
        batch_op.drop_column("provider")

    with op.batch_alter_table("rate_limit_permits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limit_permits_credential_granted")

    op.drop_table("rate_limit_permits")
    op.drop_table("credentials")
