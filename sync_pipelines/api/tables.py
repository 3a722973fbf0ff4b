"""The sync API's tables (SQLAlchemy Core). Migrations in ``migrations/`` create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON(none_as_null=True)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS),
    ]


organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("created_at", _TS, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organization_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("revoked_at", _TS),
)

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organization_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("connection_type", sa.String(32), nullable=False),
    sa.Column("masked", _JSON, nullable=False),
    sa.Column("sealed", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organization_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(255)),
    sa.Column("property_names", _JSON, nullable=False),
    sa.Column("sealed", sa.Text, nullable=False),
    *_timestamps(),
)

# The shared rate limiter: one row per request a credential was allowed to make.
rate_limit_permits = sa.Table(
    "rate_limit_permits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("credential_id", sa.ForeignKey("credentials.id"), nullable=False),
    sa.Column("granted_at", _TS, nullable=False),
    sa.Column("released_at", _TS),
    sa.Column("expires_at", _TS, nullable=False),
    sa.Index("ix_rate_limit_permits_credential_granted", "credential_id", "granted_at"),
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organization_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("end_customer_id", sa.String(255), nullable=False),
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=False),
    *_timestamps(),
)

destinations = sa.Table(
    "destinations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organization_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=False),
    *_timestamps(),
)

objects = sa.Table(
    "objects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organization_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("destination_id", sa.ForeignKey("destinations.id"), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("namespace", sa.String(255), nullable=False),
    sa.Column("table_name", sa.String(255), nullable=False),
    sa.Column("end_customer_id_field", sa.String(255), nullable=False),
    sa.Column("sync_mode", sa.String(32), nullable=False),
    sa.Column("cursor_field", sa.String(255)),
    sa.Column("primary_key", sa.String(255)),
    sa.Column("frequency", sa.Integer),
    sa.Column("frequency_units", sa.String(16)),
    sa.Column("object_fields", _JSON, nullable=False),
    sa.Column("deletes", sa.String(16)),
    *_timestamps(),
)

syncs = sa.Table(
    "syncs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organization_id", sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("source_id", sa.ForeignKey("sources.id")),
    sa.Column("destination_id", sa.ForeignKey("destinations.id"), nullable=False),
    sa.Column("object_id", sa.ForeignKey("objects.id")),
    sa.Column("end_customer_id", sa.String(255), nullable=False),
    sa.Column("provider", sa.String(64)),
    sa.Column("collection_ids", _JSON),
    sa.Column(
        "credential_id",
        sa.ForeignKey("credentials.id", name="fk_syncs_credential_id_credentials"),
    ),
    sa.Column("provider_config", _JSON),
    sa.Column("namespace", sa.String(255)),
    sa.Column("table_name", sa.String(255)),
    sa.Column("custom_join", sa.Text),
    sa.Column("cursor_field", sa.String(255)),
    sa.Column("primary_key", sa.String(255)),
    sa.Column("field_mappings", _JSON, nullable=False),
    sa.Column("sync_mode", sa.String(32), nullable=False),
    sa.Column("frequency", sa.Integer),
    sa.Column("frequency_units", sa.String(16)),
    sa.Column("continuous", sa.Boolean, nullable=False),
    sa.Column("max_age_days", sa.Integer),
    sa.Column("lookback", sa.Integer),
    sa.Column("null_cursor", sa.String(16)),
    sa.Column("deletes", sa.String(16)),
    sa.Column("max_delete_fraction", sa.Float),
    sa.Column("delete_check_every", sa.Integer),
    sa.Column("workers", sa.Integer),
    sa.Column("rate_limit", _JSON),
    sa.Column("metadata", _JSON, nullable=False),
    sa.Column("external_id", sa.String(255)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("health", _JSON, nullable=False),
    sa.Column("backfill_completed_at", _TS),
    sa.Column("cursor_position", _JSON),
    sa.Column("lease_run_id", sa.Integer),
    sa.Column("lease_expires_at", _TS),
    *_timestamps(),
    sa.Index(
        "uq_syncs_active_object_customer",
        "object_id",
        "end_customer_id",
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    ),
    sa.Index("ix_syncs_org_external_id", "organization_id", "external_id"),
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sync_id", sa.ForeignKey("syncs.id"), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("full_refresh", sa.Boolean, nullable=False),
    sa.Column("requested_at", _TS),
    sa.Column("started_at", _TS),
    sa.Column("completed_at", _TS),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("rows_read", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_inserted", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_updated", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_deleted", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_unchanged", sa.BigInteger, nullable=False, default=0, server_default="0"),
    sa.Column("rows_written", sa.BigInteger, nullable=False, default=0),
    sa.Column("batches", sa.Integer, nullable=False, default=0),
    sa.Column("cursor_before", _JSON),
    sa.Column("cursor_after", _JSON),
    sa.Column("error", sa.Text),
    sa.Column("runner_id", sa.String(255)),
    sa.Column("lease_expires_at", _TS),
    sa.Column("runner_host", sa.String(255)),
    sa.Column("runner_pid", sa.Integer),
    sa.Column("lease_seconds", sa.Float),
    sa.Column("heartbeat_at", _TS),
)

backfill_range_leases = sa.Table(
    "backfill_range_leases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.ForeignKey("sync_runs.id"), nullable=False),
    sa.Column("sync_id", sa.ForeignKey("syncs.id"), nullable=False),
    sa.Column("range_index", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("key_range", _JSON, nullable=False),
    sa.Column("runner_id", sa.String(255)),
    sa.Column("runner_host", sa.String(255)),
    sa.Column("runner_pid", sa.Integer),
    sa.Column("rows_read", sa.BigInteger, nullable=False, default=0),
    sa.Column("started_at", _TS, nullable=False),
    sa.Column("completed_at", _TS),
    sa.Column("heartbeat_at", _TS),
    sa.Column("lease_seconds", sa.Float),
    sa.Column("lease_expires_at", _TS),
    sa.Column("error", sa.Text),
    sa.Index("ix_backfill_range_leases_run_range", "run_id", "range_index"),
)
"""Range leases: one row per holder of a key range of a run's backfill (see range_leases.py)."""
