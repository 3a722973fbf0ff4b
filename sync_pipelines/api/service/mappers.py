"""Store rows as wire models."""

from __future__ import annotations

import sqlalchemy as sa

from sync_pipelines.common.time import aware
from sync_pipelines.contract.models import (
    NullCursor,
    RunStats,
    Sync,
    SyncRun,
)


def sync_model(row: sa.Row) -> Sync:
    return Sync(
        id=row.id,
        organization_id=row.organization_id,
        display_name=row.display_name,
        source_id=row.source_id,
        destination_id=row.destination_id,
        object_id=row.object_id,
        end_customer_id=row.end_customer_id,
        provider=row.provider,
        collection_ids=row.collection_ids or [],
        credential_id=row.credential_id,
        provider_config=row.provider_config or {},
        namespace=row.namespace,
        table_name=row.table_name,
        custom_join=row.custom_join,
        cursor_field=row.cursor_field,
        primary_key=row.primary_key,
        field_mappings=row.field_mappings,
        sync_mode=row.sync_mode,
        frequency=row.frequency,
        frequency_units=row.frequency_units,
        continuous=row.continuous,
        max_age_days=row.max_age_days,
        lookback=row.lookback,
        null_cursor=row.null_cursor or NullCursor.INCLUDE,
        deletes=row.deletes,
        max_delete_fraction=row.max_delete_fraction,
        delete_check_every=row.delete_check_every,
        workers=row.workers or 1,
        rate_limit=row.rate_limit,
        metadata=row.metadata,
        external_id=row.external_id,
        status=row.status,
        health=row.health,
        backfill_completed_at=aware(row.backfill_completed_at),
        cursor_position=row.cursor_position,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def run_model(row: sa.Row) -> SyncRun:
    return SyncRun(
        id=row.id,
        sync_id=row.sync_id,
        status=row.status,
        full_refresh=row.full_refresh,
        requested_at=aware(row.requested_at),
        started_at=aware(row.started_at),
        completed_at=aware(row.completed_at),
        duration_seconds=row.duration_seconds,
        rows_read=row.rows_read,
        rows_inserted=row.rows_inserted,
        rows_updated=row.rows_updated,
        rows_deleted=row.rows_deleted,
        rows_unchanged=row.rows_unchanged,
        rows_written=row.rows_written,
        batches=row.batches,
        cursor_before=row.cursor_before,
        cursor_after=row.cursor_after,
        error=row.error,
        runner_id=row.runner_id,
        lease_expires_at=aware(row.lease_expires_at),
        runner_host=row.runner_host,
        runner_pid=row.runner_pid,
        lease_seconds=row.lease_seconds,
        heartbeat_at=aware(row.heartbeat_at),
    )


def zero_stats() -> dict[str, int]:
    """A new run's counters, all zero."""
    return RunStats().model_dump()
