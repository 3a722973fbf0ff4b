"""One asset per object (the destination table), partitioned by end customer.

Materializing a partition runs that end customer's sync; the ``MaterializeResult`` carries the
run's counts, cursors and timing, the table's schema and row count, and the results of the two
checks (row count against the source, cursor never going backwards).
"""

from collections.abc import Iterable, Iterator

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    DynamicPartitionsDefinition,
    MaterializeResult,
    multi_asset,
)
from pydantic import Field

from sync_pipelines.orchestration._names import (
    key_slug,
    partitions_def_name,
)
from sync_pipelines.orchestration.catalog import SyncCatalog
from sync_pipelines.orchestration.execution import (
    check_results,
    execute_sync,
    find_sync,
    previous_materialization_metadata,
    sync_check_specs,
    sync_metadata,
)
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.state import load_sync_catalog
from sync_pipelines.orchestration.translator import SyncObjectProps, SyncTranslator

DEFAULT_BATCH_SIZE = 50_000


class SyncAssetConfig(Config):
    """Run options of an object asset's materialization (all optional in the Launchpad)."""

    full_refresh: bool = Field(
        default=False,
        description="Re-read the whole source and replace the end customer's rows.",
    )
    batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE, gt=0, description="Rows per batch (commit + checkpoint)."
    )


def build_sync_assets(
    *,
    sync_api: SyncApiResource | None = None,
    catalog: SyncCatalog | None = None,
    objects: Iterable[int | str] | None = None,
    translator: SyncTranslator | None = None,
) -> list[AssetsDefinition]:
    """One asset per object of the sync API: the destination table, one partition per end
    customer.

    Each asset has a :class:`~dagster.DynamicPartitionsDefinition` of its own (named after its
    key, e.g. ``analytics__events__end_customers``) whose partitions are the end customers of
    the object's syncs; the ``sync_scheduler`` sensor and ``create_sync_op`` add them. It needs
    the ``sync_api`` resource (:class:`SyncApiResource`) when it runs.

    Args:
        sync_api: the sync API whose objects become assets, read once per code location load
            and cached (unless ``catalog`` is given; see
            :mod:`sync_pipelines.orchestration.state`).
        catalog: a snapshot of the sync API already read.
        objects: only these objects, by id or display name (default: every object).
        translator: customizes the asset specs (keys, groups, tags, freshness, pool).

    Returns:
        The assets, one :class:`~dagster.AssetsDefinition` per object, each with its checks.

    Raises:
        ValueError: neither ``sync_api`` nor ``catalog`` is given.
        KeyError: a selected object does not exist.
    """
    if catalog is None:
        if sync_api is None:
            raise ValueError("build_sync_assets needs sync_api or catalog")
        catalog = load_sync_catalog(sync_api)
    built = object_assets(catalog, translator or SyncTranslator(), objects)
    return list(built.values())


def object_assets(
    catalog: SyncCatalog,
    translator: SyncTranslator,
    objects: Iterable[int | str] | None = None,
) -> dict[int, AssetsDefinition]:
    """The asset of each object, by object id."""
    return {
        props.object.id: _object_asset(props, translator) for props in catalog.object_props(objects)
    }


def _object_asset(props: SyncObjectProps, translator: SyncTranslator) -> AssetsDefinition:
    spec = translator.get_asset_spec(props)
    partitions = DynamicPartitionsDefinition(name=partitions_def_name(spec.key))
    spec = spec.replace_attributes(partitions_def=partitions)
    object_id = props.object.id
    key = spec.key

    @multi_asset(
        name=f"sync_{key_slug(key)}",
        specs=[spec],
        check_specs=sync_check_specs(key, partitions),
        pool=translator.get_pool(props, key),
        backfill_policy=BackfillPolicy.multi_run(1),
        description=spec.description,
    )
    def _sync_object(
        context: AssetExecutionContext, config: SyncAssetConfig, sync_api: SyncApiResource
    ) -> Iterator[MaterializeResult]:
        client = sync_api.get_client()
        end_customer_id = context.partition_key
        sync = find_sync(client, object_id=object_id, end_customer_id=end_customer_id)
        previous = previous_materialization_metadata(context.instance, key, end_customer_id)
        outcome = execute_sync(
            context,
            client,
            sync,
            full_refresh=config.full_refresh,
            batch_size=config.batch_size,
        )
        yield MaterializeResult(
            asset_key=key,
            metadata=sync_metadata(outcome),
            check_results=check_results(outcome, previous),
        )

    return _sync_object
