"""Running a sync inside Dagster and turning its result into metadata and check results.

Shared by the object assets (``MaterializeResult`` with check results) and ``run_sync_op``
(``AssetMaterialization``). Metadata never holds a secret: connections are not described at all,
and the engine's error messages already mask passwords.
"""

from __future__ import annotations

import datetime as dt
import decimal
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    Config,
    DagsterInstance,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    PreviewWarning,
    TableColumn,
    TableSchema,
)
from dagster._core.definitions.metadata import TableMetadataSet
from pydantic import Field

from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
from sync_pipelines.common.typed_values import decode_value
from sync_pipelines.contract.errors import ConflictError, NotFoundError
from sync_pipelines.contract.models import (
    CursorPosition,
    RunStatus,
    Sync,
    SyncMode,
    SyncStatus,
)
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.orchestration._names import REQUESTED_RUN_TAG
from sync_pipelines.orchestration.launch import tag_run_with_sync

if TYPE_CHECKING:
    from sync_pipelines.engine import SyncResult

OBJECT_ID_METADATA = "sync_pipelines/object_id"
"""Asset spec metadata: the object whose syncs materialize the asset (set by ``@sync_assets``)."""


class SyncAssetConfig(Config):
    """Run options of an object asset's materialization (all optional in the Launchpad)."""

    full_refresh: bool = Field(
        default=False,
        description="Re-read the whole source and replace the end customer's rows.",
    )
    batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE, gt=0, description="Rows per batch (commit + checkpoint)."
    )
    allow_mass_delete: bool = Field(
        default=False,
        description="Let the delete check delete more than the sync's max_delete_fraction.",
    )


ROW_COUNT_CHECK = "row_count_matches_source"
CURSOR_CHECK = "cursor_never_goes_backwards"
CURSOR_POSITION_METADATA = "cursor_after_position"


def sync_check_specs(
    key: AssetKey, partitions_def: PartitionsDefinition | None = None
) -> list[AssetCheckSpec]:
    """The checks every object asset carries, evaluated with each materialization.

    With ``partitions_def`` (the asset's end customers) each end customer has its own check
    status. Partitioned checks are a preview feature of Dagster 1.13; its warning is silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return _check_specs(key, partitions_def)


def _check_specs(key: AssetKey, partitions_def: PartitionsDefinition | None) -> list:
    return [
        AssetCheckSpec(
            ROW_COUNT_CHECK,
            asset=key,
            partitions_def=partitions_def,
            description=(
                "The destination rows of the end customer equal the source rows up to the sync's "
                "cursor (at least as many for incremental_append)."
            ),
        ),
        AssetCheckSpec(
            CURSOR_CHECK,
            asset=key,
            partitions_def=partitions_def,
            description=(
                "The sync's cursor after the run is not before the cursor of the previous run "
                "(a full refresh may start over)."
            ),
        ),
    ]


@dataclass(frozen=True)
class SyncOutcome:
    """A completed run and the row counts measured after it.

    Attributes:
        sync: the sync as it was before the run.
        result: the engine's :class:`~sync_pipelines.engine.SyncResult`.
        full_refresh: whether the run re-read everything.
        destination_rows: the end customer's rows in the destination table (``None``: unknown).
        source_rows: the source rows up to the cursor after the run (``None``: unknown).
        count_error: why the counts are unknown.
        table_rows: every end customer's rows in the destination table (``None``: unknown).
    """

    sync: Sync
    result: SyncResult
    full_refresh: bool
    destination_rows: int | None
    source_rows: int | None
    count_error: str | None = None
    table_rows: int | None = None


def find_sync(client: SyncApi, *, object_id: int, end_customer_id: str) -> Sync:
    """The sync of an object for one end customer (its asset partition).

    Raises:
        Failure: there is none (the partition names an end customer without a sync).
    """
    found = client.list_syncs(object_id=object_id, end_customer_id=end_customer_id)
    if not found:
        raise Failure(
            description=(
                f"no sync of object {object_id} for end customer {end_customer_id!r}: create one "
                "(POST /sync, syncs.yaml or sync_job) before materializing this partition"
            )
        )
    return found[0]


def run_object_syncs(
    context: AssetExecutionContext,
    client: SyncApi,
    *,
    full_refresh: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allow_mass_delete: bool = False,
) -> Iterator[MaterializeResult]:
    """Run the end customer's sync (the partition) of each selected object asset; yield its
    materialization with the checks' results.

    Raises:
        Failure: an asset is not an object asset, the partition has no sync, or the run failed.
    """
    partition = context.partition_key
    for spec in context.assets_def.specs:
        if spec.key not in context.selected_asset_keys:
            continue
        object_id = spec.metadata.get(OBJECT_ID_METADATA)
        if object_id is None:
            raise Failure(
                description=f"{spec.key.to_user_string()} is not an object asset: build it with "
                "@sync_assets to run its syncs with SyncApiResource.run"
            )
        object_id = int(getattr(object_id, "value", object_id))
        sync = find_sync(client, object_id=object_id, end_customer_id=partition)
        previous = previous_materialization_metadata(context.instance, spec.key, partition)
        outcome = execute_sync(
            context,
            client,
            sync,
            full_refresh=full_refresh,
            batch_size=batch_size,
            allow_mass_delete=allow_mass_delete,
        )
        yield MaterializeResult(
            asset_key=spec.key,
            metadata=sync_metadata(outcome),
            check_results=check_results(outcome, previous),
        )


def execute_sync(
    context: Any,
    client: SyncApi,
    sync: Sync,
    *,
    full_refresh: bool,
    batch_size: int,
    allow_mass_delete: bool = False,
    workers: int | None = None,
) -> SyncOutcome:
    """Run ``sync`` with its runner (the SQL engine, or the API-provider runner for a provider
    sync), logging each batch to ``context.log``.

    Args:
        context: the op or asset execution context.
        client: the sync API.
        sync: the sync to run.
        full_refresh: re-read everything.
        batch_size: rows per batch.
        allow_mass_delete: let the delete check delete more than ``max_delete_fraction``.
        workers: threads loading a backfill's key ranges (default: the sync's ``workers``).

    A run launched for a ``POST /sync/{id}/run`` request (its ``REQUESTED_RUN_TAG``) starts
    that requested sync API run, if it is still pending.

    Raises:
        Failure: the sync is paused, already running, or the run failed (it is marked failed in
            the sync API with the same message).
    """
    from sync_pipelines.engine import SyncRunError
    from sync_pipelines.run_any import run_any_sync

    if sync.status is SyncStatus.PAUSED:
        raise Failure(description=f"sync {sync.id} ({sync.display_name!r}) is paused; resume it")
    tag_run_with_sync(context, sync)
    requested = context.run.tags.get(REQUESTED_RUN_TAG)
    run_id = _pending_request(context, client, sync, int(requested) if requested else None)

    def log_progress(progress: Any) -> None:
        context.log.info(
            f"sync {progress.sync_id} run {progress.run_id}: batch {progress.batch}, "
            f"{progress.batch_rows} rows ({progress.rows_read} read, {progress.rows_written} "
            f"written, {progress.elapsed_seconds:.1f}s); last checkpoint "
            f"{describe_cursor(progress.cursor)}"
        )

    context.log.info(
        f"sync {sync.id} ({sync.display_name!r}) for end customer {sync.end_customer_id!r}: "
        f"starting{' a full refresh' if full_refresh else ''} from cursor "
        f"{describe_cursor(None if full_refresh else sync.cursor_position)}"
    )
    try:
        result = run_any_sync(
            sync,
            client,
            full_refresh=full_refresh,
            batch_size=batch_size,
            run_id=run_id,
            runner_id=f"dagster:{context.run.run_id}",
            on_progress=log_progress,
            count_rows=True,
            allow_mass_delete=allow_mass_delete,
            workers=workers,
        )
    except ValueError as error:
        raise Failure(description=str(error), metadata={"sync_id": sync.id}) from None
    except ConflictError as error:
        raise Failure(
            description=f"sync {sync.id} could not start: {error}",
            metadata={"sync_id": sync.id},
        ) from None
    except SyncRunError as error:
        raise Failure(
            description=str(error),
            metadata={"sync_id": sync.id, "run_id": error.run_id},
        ) from None
    if not full_refresh and run_id is not None:
        full_refresh = client.get_run(result.run_id).full_refresh  # a requested full refresh
    destination_rows = result.destination_row_count
    source_rows = result.source_row_count
    count_error = None
    if destination_rows is None or source_rows is None:
        count_error = "the engine did not count the rows"
    context.log.info(
        f"sync {sync.id} run {result.run_id}: {result.rows_read} rows read, "
        f"{result.rows_inserted} inserted, {result.rows_updated} updated, "
        f"{result.rows_unchanged} unchanged, {result.rows_deleted} deleted in "
        f"{result.duration_seconds:.2f}s; cursor {describe_cursor(result.cursor_after)}"
    )
    return SyncOutcome(
        sync=sync,
        result=result,
        full_refresh=full_refresh,
        destination_rows=destination_rows,
        source_rows=source_rows,
        count_error=count_error,
        table_rows=getattr(result, "table_row_count", None),
    )


def _pending_request(
    context: Any, client: SyncApi, sync: Sync, requested_run_id: int | None
) -> int | None:
    """The requested run to start, if it is still pending (a re-executed run starts anew)."""
    if requested_run_id is None:
        return None
    try:
        run = client.get_run(requested_run_id)
    except NotFoundError:
        run = None
    if run is None or run.sync_id != sync.id or run.status is not RunStatus.REQUESTED:
        context.log.info(
            f"requested run {requested_run_id} of sync {sync.id} is no longer pending; "
            "starting a new run"
        )
        return None
    context.log.info(f"starting requested run {requested_run_id} of sync {sync.id}")
    return requested_run_id


# --- metadata ------------------------------------------------------------------------------


def describe_cursor(position: CursorPosition | None) -> str:
    """A cursor position for people: its cursor value (and key), or ``none``."""
    if position is None or position.cursor is None:
        return "none"
    text = _text(decode_value(position.cursor))
    if position.primary_key is not None:
        text += f" (key {_text(decode_value(position.primary_key))})"
    return text


def _text(value: Any) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return str(value)


def _cursor_value(position: CursorPosition | None) -> str | None:
    if position is None or position.cursor is None:
        return None
    return _text(decode_value(position.cursor))


def destination_table_schema(columns: Sequence[Any]) -> TableSchema:
    """The destination table's columns with their types as the destination spells them (the
    object field's type, when declared, is the column's description)."""
    return TableSchema(
        columns=[
            TableColumn(
                column.name,
                column.type,
                description=f"{column.field_type} field" if column.field_type else None,
            )
            for column in columns
        ]
    )


def sync_metadata(outcome: SyncOutcome) -> dict[str, Any]:
    """The materialization's metadata: Dagster's table metadata (name, the partition's and the
    whole table's row counts, the destination's column types), then counts, cursors, timing
    and ids."""
    result = outcome.result
    table = TableMetadataSet(
        table_name=result.destination_table,
        partition_row_count=outcome.destination_rows,
        row_count=outcome.table_rows,
        column_schema=destination_table_schema(result.columns) if result.columns else None,
    )
    metadata: dict[str, Any] = {
        **table,
        "sync_id": outcome.sync.id,
        "run_id": result.run_id,
        "end_customer_id": outcome.sync.end_customer_id,
        "sync_mode": outcome.sync.sync_mode.value,
        "full_refresh": outcome.full_refresh,
        "rows_read": result.rows_read,
        "rows_inserted": result.rows_inserted,
        "rows_updated": result.rows_updated,
        "rows_unchanged": result.rows_unchanged,
        "rows_deleted": result.rows_deleted,
        "rows_written": result.rows_written,
        "batches": result.batches,
        "cursor_before": MetadataValue.text(_cursor_value(result.cursor_before) or "none"),
        "cursor_after": MetadataValue.text(_cursor_value(result.cursor_after) or "none"),
        CURSOR_POSITION_METADATA: MetadataValue.json(
            result.cursor_after.model_dump(mode="json", exclude_none=True)
            if result.cursor_after
            else {}
        ),
        "duration_seconds": MetadataValue.float(round(result.duration_seconds, 3)),
        "rows_per_second": MetadataValue.float(round(result.rows_per_second, 1)),
    }
    return metadata


# --- checks --------------------------------------------------------------------------------


def check_results(outcome: SyncOutcome, previous_metadata: Mapping[str, Any] | None) -> list:
    """The two checks' results for one materialization.

    Args:
        outcome: the run.
        previous_metadata: the metadata of the partition's previous materialization, if any.
    """
    return [_row_count_check(outcome), _cursor_check(outcome, previous_metadata)]


def _row_count_check(outcome: SyncOutcome) -> AssetCheckResult:
    sync = outcome.sync
    if outcome.destination_rows is None or outcome.source_rows is None:
        return AssetCheckResult(
            check_name=ROW_COUNT_CHECK,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=f"the rows could not be counted: {outcome.count_error or 'unknown'}",
            metadata={"end_customer_id": sync.end_customer_id},
        )
    destination, source = outcome.destination_rows, outcome.source_rows
    metadata = {
        "end_customer_id": sync.end_customer_id,
        "destination_rows": destination,
        "source_rows_up_to_cursor": source,
        "cursor": MetadataValue.text(_cursor_value(outcome.result.cursor_after) or "none"),
    }
    if sync.max_age_days is not None:
        return AssetCheckResult(
            check_name=ROW_COUNT_CHECK,
            passed=True,
            description=(
                f"not compared: max_age_days={sync.max_age_days} leaves older source rows out"
            ),
            metadata=metadata,
        )
    if sync.sync_mode is SyncMode.INCREMENTAL_APPEND:
        passed = destination >= source
        expectation = "at least"
    else:
        passed = destination == source
        expectation = "exactly"
    return AssetCheckResult(
        check_name=ROW_COUNT_CHECK,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{destination} destination rows for end customer {sync.end_customer_id!r}, "
            f"expected {expectation} {source} (the source rows up to the cursor)"
        ),
        metadata=metadata,
    )


def _ordering_key(position: CursorPosition | dict | None) -> tuple[Any, Any] | None:
    if isinstance(position, dict):
        position = CursorPosition.model_validate(position) if position else None
    if position is None or position.cursor is None:
        return None
    return decode_value(position.cursor), decode_value(position.primary_key)


def _before(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    """Whether keyset ``a`` is strictly before ``b`` (a missing key compares as equal)."""
    if a[0] != b[0]:
        return a[0] < b[0]
    if a[1] is None or b[1] is None:
        return False
    return a[1] < b[1]


def _cursor_check(
    outcome: SyncOutcome, previous_metadata: Mapping[str, Any] | None
) -> AssetCheckResult:
    result = outcome.result
    after = _ordering_key(result.cursor_after)
    metadata = {
        "cursor_before": MetadataValue.text(_cursor_value(result.cursor_before) or "none"),
        "cursor_after": MetadataValue.text(_cursor_value(result.cursor_after) or "none"),
    }
    if outcome.full_refresh:
        return AssetCheckResult(
            check_name=CURSOR_CHECK,
            passed=True,
            description="a full refresh starts the cursor over",
            metadata=metadata,
        )
    previous = []
    before = _ordering_key(result.cursor_before)
    if before is not None:
        previous.append(("this run's starting cursor", before))
    recorded = (previous_metadata or {}).get(CURSOR_POSITION_METADATA)
    recorded_key = _ordering_key(getattr(recorded, "value", recorded) or None)
    if recorded_key is not None:
        previous.append(("the previous materialization's cursor", recorded_key))
    for label, earlier in previous:
        if after is None:
            return AssetCheckResult(
                check_name=CURSOR_CHECK,
                passed=False,
                description=f"the cursor was reset: it is empty after {label}",
                metadata=metadata,
            )
        try:
            went_back = _before(after, earlier)
        except TypeError:
            went_back = False
        if went_back:
            return AssetCheckResult(
                check_name=CURSOR_CHECK,
                passed=False,
                description=f"the cursor went backwards: {after[0]} is before {label} {earlier[0]}",
                metadata=metadata,
            )
    return AssetCheckResult(
        check_name=CURSOR_CHECK,
        passed=True,
        description="the cursor did not go backwards",
        metadata=metadata,
    )


def previous_materialization_metadata(
    instance: DagsterInstance, key: AssetKey, partition: str
) -> Mapping[str, Any] | None:
    """The metadata of a partition's latest materialization (before the current one)."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    return materialization.metadata if materialization else None
