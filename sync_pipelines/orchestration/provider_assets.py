"""One asset per API-provider collection table, partitioned by end customer.

The provider syncs of one provider into one namespace of one destination (a *stream*) share one
``multi_asset``: materializing an end customer's partition runs that customer's provider sync,
which fills every collection it reads, and reports a materialization per collection table.
"""

from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)
from dagster._core.definitions.metadata import TableMetadataSet

from sync_pipelines.contract.models import Sync
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.orchestration._names import slug
from sync_pipelines.orchestration.assets import SyncAssetConfig
from sync_pipelines.orchestration.execution import (
    SyncOutcome,
    destination_table_schema,
    execute_sync,
)
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.snapshot import ProviderStream, StreamKey, SyncCatalog, stream_key
from sync_pipelines.orchestration.translator import SyncTranslator


def stream_slug(key: StreamKey) -> str:
    """A stream as one Dagster name: ``<provider>__<namespace>__destination_<id>``."""
    destination_id, namespace, provider = key
    return f"{slug(provider)}__{slug(namespace)}__destination_{destination_id}"


def provider_stream_assets(
    catalog: SyncCatalog, translator: SyncTranslator
) -> dict[StreamKey, AssetsDefinition]:
    """The asset of each API-provider stream of the catalog, by stream key."""
    return {stream.key: _stream_asset(stream, translator) for stream in catalog.provider_streams()}


def find_provider_sync(client: SyncApi, key: StreamKey, end_customer_id: str) -> Sync:
    """The provider sync of one end customer in a stream (its asset partition).

    Raises:
        Failure: there is none.
    """
    for sync in client.list_syncs(end_customer_id=end_customer_id):
        if stream_key(sync) == key:
            return sync
    destination_id, namespace, provider = key
    raise Failure(
        description=(
            f"no {provider} sync into {namespace} on destination {destination_id} for end "
            f"customer {end_customer_id!r}: create one (POST /sync) before materializing it"
        )
    )


def _stream_asset(stream: ProviderStream, translator: SyncTranslator) -> AssetsDefinition:
    collections = stream.collections()
    partitions = DynamicPartitionsDefinition(name=f"{stream_slug(stream.key)}__end_customers")
    specs = {
        props.collection_id: translator.get_collection_asset_spec(props).replace_attributes(
            partitions_def=partitions, skippable=True
        )
        for props in collections
    }
    key = stream.key

    @multi_asset(
        name=f"sync_{stream_slug(key)}",
        specs=list(specs.values()),
        pool=translator.get_pool(collections[0], next(iter(specs.values())).key),
        backfill_policy=BackfillPolicy.multi_run(1),
        description=(
            f"{stream.provider} syncs into {stream.namespace} on "
            f"{stream.destination.display_name}, one partition per end customer."
        ),
    )
    def _sync_stream(
        context: AssetExecutionContext, config: SyncAssetConfig, sync_api: SyncApiResource
    ) -> Iterator[MaterializeResult]:
        client = sync_api.get_client()
        sync = find_provider_sync(client, key, context.partition_key)
        outcome = execute_sync(
            context,
            client,
            sync,
            full_refresh=config.full_refresh,
            batch_size=config.batch_size,
        )
        for collection in getattr(outcome.result, "collections", ()):
            spec = specs.get(collection.collection_id)
            if spec is None:
                context.log.warning(
                    f"{collection.collection_id} has no asset yet: reload the code location"
                )
                continue
            yield MaterializeResult(
                asset_key=spec.key, metadata=collection_metadata(outcome, collection)
            )

    return _sync_stream


def collection_metadata(outcome: SyncOutcome, collection: Any) -> dict[str, Any]:
    """A collection table's materialization metadata: Dagster's table metadata (name, the
    partition's and the whole table's row counts, the destination's column types), then the
    run's counts, the sync and the run."""
    table = TableMetadataSet(
        table_name=collection.destination_table,
        partition_row_count=collection.row_count,
        row_count=collection.table_row_count,
        # the types as the destination spells them; the provider field's type describes each
        column_schema=(
            destination_table_schema(collection.columns) if collection.columns else None
        ),
    )
    metadata: dict[str, Any] = {
        **table,
        "sync_id": outcome.sync.id,
        "run_id": outcome.result.run_id,
        "end_customer_id": outcome.sync.end_customer_id,
        "collection_id": collection.collection_id,
        "full_refresh": outcome.full_refresh,
        "rows_read": collection.rows_read,
        "rows_inserted": collection.rows_inserted,
        "rows_updated": collection.rows_updated,
        "rows_deleted": collection.rows_deleted,
        "rows_unchanged": collection.rows_unchanged,
        "batches": collection.batches,
        "caught_up": collection.caught_up,
        "backfilled": collection.backfilled,
        "provider_requests": outcome.result.requests,
        "duration_seconds": MetadataValue.float(round(outcome.result.duration_seconds, 3)),
    }
    return metadata
