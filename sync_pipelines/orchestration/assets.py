"""One asset per object (the destination table), partitioned by end customer.

Materializing a partition runs that end customer's sync; the ``MaterializeResult`` carries the
run's counts, cursors and timing, the table's schema and row count, and the results of the two
checks (row count against the source, cursor never going backwards).
"""

from collections.abc import Iterable, Iterator

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult

from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
from sync_pipelines.orchestration.asset_decorator import sync_assets
from sync_pipelines.orchestration.execution import SyncAssetConfig
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.snapshot import SyncCatalog
from sync_pipelines.orchestration.state import load_sync_catalog
from sync_pipelines.orchestration.translator import SyncObjectProps, SyncTranslator

__all__ = ["DEFAULT_BATCH_SIZE", "SyncAssetConfig", "build_sync_assets", "object_assets"]


def build_sync_assets(
    *,
    sync_api: SyncApiResource | None = None,
    catalog: SyncCatalog | None = None,
    objects: Iterable[int | str] | None = None,
    translator: SyncTranslator | None = None,
) -> list[AssetsDefinition]:
    """One asset per object of the sync API: the destination table, one partition per end
    customer (each made with :func:`sync_assets`, its body ``sync_api.run``).

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
    @sync_assets(sync_object=props, translator=translator)
    def _sync_object(
        context: AssetExecutionContext, config: SyncAssetConfig, sync_api: SyncApiResource
    ) -> Iterator[MaterializeResult]:
        yield from sync_api.run(context, config=config)

    return _sync_object
