"""``@sync_assets``: the asset of an object, with a body you write (as ``@dlt_assets`` and
``@sling_assets`` do).

.. code-block:: python

    from dagster import AssetExecutionContext
    from sync_pipelines.orchestration import SyncApiResource, SyncAssetConfig, sync_assets

    @sync_assets(sync_object="Events", sync_api=SyncApiResource())
    def events(context: AssetExecutionContext, sync_api: SyncApiResource, config: SyncAssetConfig):
        yield from sync_api.run(context, config=config)
        context.log.info("synced; refresh the dashboards here")
"""

from collections.abc import Callable, Mapping
from typing import Any

from dagster import (
    AssetsDefinition,
    BackfillPolicy,
    DynamicPartitionsDefinition,
    multi_asset,
)

from sync_pipelines.orchestration._names import key_slug, partitions_def_name
from sync_pipelines.orchestration.execution import OBJECT_ID_METADATA, sync_check_specs
from sync_pipelines.orchestration.translator import SyncObjectProps, SyncTranslator


def sync_assets(
    *,
    sync_object: SyncObjectProps | int | str,
    sync_api: Any = None,
    translator: SyncTranslator | None = None,
    name: str | None = None,
    op_tags: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """The asset of one object (its destination table), partitioned by end customer, around a
    body that runs its syncs (typically ``yield from sync_api.run(context, config=config)``).

    The translator is the one place to change what the asset is (key, group, tags, owners,
    freshness, pool); the decorator adds the end customers' dynamic partitions (named after
    the key, e.g. ``analytics__events__end_customers``), the two checks
    (``row_count_matches_source``, ``cursor_never_goes_backwards``) and a single-run backfill
    policy, so each end customer is its own run.

    Args:
        sync_object: the object: its props (from a :class:`SyncCatalog`), or its id or display
            name, read from ``sync_api``'s cached snapshot.
        sync_api: the :class:`SyncApiResource` to read the object from (only for an id or a
            name).
        translator: customizes the asset spec (default: :class:`SyncTranslator`).
        name: the op's name (default: ``sync_<key>``).
        op_tags: tags of the op.

    Returns:
        A decorator that makes the body a :class:`~dagster.AssetsDefinition`.

    Raises:
        KeyError: the object does not exist.
        ValueError: an id or a name without ``sync_api``.
    """
    props = _props(sync_object, sync_api)
    translator = translator or SyncTranslator()
    spec = translator.get_asset_spec(props)
    partitions = DynamicPartitionsDefinition(name=partitions_def_name(spec.key))
    spec = spec.replace_attributes(partitions_def=partitions).merge_attributes(
        metadata={OBJECT_ID_METADATA: props.object.id}
    )
    return multi_asset(
        name=name or f"sync_{key_slug(spec.key)}",
        specs=[spec],
        check_specs=sync_check_specs(spec.key, partitions),
        pool=translator.get_pool(props, spec.key),
        backfill_policy=BackfillPolicy.multi_run(1),
        description=spec.description,
        op_tags=op_tags,
    )


def _props(sync_object: SyncObjectProps | int | str, sync_api: Any) -> SyncObjectProps:
    if isinstance(sync_object, SyncObjectProps):
        return sync_object
    if sync_api is None:
        raise ValueError(f"sync_assets(sync_object={sync_object!r}) needs sync_api to find it")
    from sync_pipelines.orchestration.state import load_sync_catalog

    (props,) = load_sync_catalog(sync_api).object_props([sync_object])
    return props
