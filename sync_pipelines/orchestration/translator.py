"""How objects become Dagster assets: keys, groups, tags, kinds, schema and freshness."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from dagster import AssetKey, AssetSpec, FreshnessPolicy, TableColumn, TableSchema

from sync_pipelines.common.frequency import interval
from sync_pipelines.contract.models import ConnectionType, Destination, Sync, SyncObject, SyncStatus
from sync_pipelines.orchestration._names import key_slug, slug

CONTINUOUS_INTERVAL = dt.timedelta(minutes=5)
"""The interval a continuous sync is expected to keep (for its freshness policy)."""
SINGLE_WRITER_DESTINATIONS = frozenset({ConnectionType.DUCKDB, ConnectionType.SQLITE})
"""Databases one process writes at a time: all their objects share one pool."""


@dataclass(frozen=True)
class SyncObjectProps:
    """What the translator knows of an object: the object, its destination and its syncs.

    Attributes:
        object: the object (the destination table).
        destination: the destination it lives on.
        syncs: the object's syncs, one per end customer (paused ones included).
        key_prefix: what the default asset key starts with: nothing, or the destination's name
            when another destination has a table of the same namespace and name (so two
            warehouses' ``analytics.events`` are two assets).
    """

    object: SyncObject
    destination: Destination
    syncs: Sequence[Sync] = field(default_factory=tuple)
    key_prefix: tuple[str, ...] = ()

    @property
    def table_name(self) -> str:
        """``namespace.table_name`` on the destination."""
        return f"{self.object.namespace}.{self.object.table_name}"


@dataclass(frozen=True)
class ProviderCollectionProps:
    """What the translator knows of an API provider's collection: its table and its syncs.

    Attributes:
        provider: e.g. ``stripe``.
        collection: the collection's object, e.g. ``customer`` (``stripe:customer``).
        namespace: the destination namespace the provider syncs write to.
        destination: the destination.
        syncs: the provider syncs writing the table, one per end customer.
        key_prefix: what the default asset key starts with (see
            :attr:`SyncObjectProps.key_prefix`).
    """

    provider: str
    collection: str
    namespace: str
    destination: Destination
    syncs: Sequence[Sync] = field(default_factory=tuple)
    key_prefix: tuple[str, ...] = ()

    @property
    def collection_id(self) -> str:
        """``provider:collection``."""
        return f"{self.provider}:{self.collection}"

    @property
    def table_name(self) -> str:
        """``namespace.collection`` on the destination."""
        return f"{self.namespace}.{self.collection}"


class SyncTranslator:
    """Turns an object into the :class:`~dagster.AssetSpec` of its destination table.

    Subclass it and override :meth:`get_asset_spec` to change keys, groups, tags, owners or
    freshness; call ``super()`` and ``replace_attributes``/``merge_attributes`` to keep the rest.

    Example:
        .. code-block:: python

            class PrefixedTranslator(SyncTranslator):
                def get_asset_spec(self, props: SyncObjectProps) -> AssetSpec:
                    spec = super().get_asset_spec(props)
                    return spec.replace_attributes(key=spec.key.with_prefix("raw"))
    """

    def get_asset_spec(self, props: SyncObjectProps) -> AssetSpec:
        """The asset spec of one object.

        Args:
            props: the object, its destination and its syncs.

        Returns:
            The spec: key ``[namespace, table_name]`` (after ``props.key_prefix``, the
            destination's name, when another destination has the same table), group from the
            destination's name,
            ``kinds`` from its connection type, the table's column schema and name, and a
            freshness policy from the syncs' frequency. The partitions (end customers) are added
            by :func:`~sync_pipelines.orchestration.build_sync_assets`.
        """
        obj = props.object
        connection_type = props.destination.connection.connection_type
        return AssetSpec(
            key=AssetKey([*props.key_prefix, obj.namespace, obj.table_name]),
            description=(
                f"{obj.display_name}: the {props.table_name} table on "
                f"{props.destination.display_name}, one partition per end customer "
                f"(column {obj.end_customer_id_field}), kept in step by sync-pipelines."
            ),
            group_name=slug(props.destination.display_name),
            kinds={ConnectionType(connection_type).value},
            tags={"sync_pipelines/sync_mode": obj.sync_mode.value},
            metadata={
                "dagster/table_name": props.table_name,
                "dagster/column_schema": object_table_schema(obj),
                "object_id": obj.id,
                "destination": props.destination.display_name,
                "end_customer_id_field": obj.end_customer_id_field,
            },
            freshness_policy=default_freshness_policy(props),
        )

    def get_collection_asset_spec(self, props: ProviderCollectionProps) -> AssetSpec:
        """The asset spec of one API provider collection's table.

        Args:
            props: the collection, its destination and the provider syncs writing it.

        Returns:
            The spec: key ``[namespace, collection]``, group from the destination's name,
            ``kinds`` from the provider and the destination, and a freshness policy from the
            syncs' frequency. The partitions (end customers) are added when the asset is built.
        """
        connection_type = ConnectionType(props.destination.connection.connection_type).value
        every = most_frequent_interval(props.syncs)
        return AssetSpec(
            key=AssetKey([*props.key_prefix, props.namespace, props.collection]),
            description=(
                f"The {props.collection_id} collection: the {props.table_name} table on "
                f"{props.destination.display_name}, one partition per end customer, kept in "
                "step by sync-pipelines."
            ),
            group_name=slug(props.destination.display_name),
            kinds={slug(props.provider), connection_type},
            tags={"sync_pipelines/provider": slug(props.provider)},
            metadata={
                "dagster/table_name": props.table_name,
                "collection_id": props.collection_id,
                "destination": props.destination.display_name,
            },
            freshness_policy=freshness_policy_for(every),
        )

    def get_pool(
        self, props: SyncObjectProps | ProviderCollectionProps, key: AssetKey
    ) -> str | None:
        """The concurrency pool of the object's asset (``dagster.yaml`` sets its limit).

        Objects on single-writer databases (DuckDB, SQLite) share one pool per destination, so
        two runs never hold the file at once; other objects get one pool each. With a limit of
        one, each sync (an object's partition) runs once at a time.

        Args:
            props: the object, its destination and its syncs.
            key: the asset key :meth:`get_asset_spec` gave.
        """
        if props.destination.connection.connection_type in SINGLE_WRITER_DESTINATIONS:
            return f"sync_pipelines/destination_{props.destination.id}"
        return f"sync_pipelines/{key_slug(key)}"


def object_table_schema(obj: SyncObject) -> TableSchema:
    """The destination table's columns: the end customer column, then the synced fields."""
    columns = [
        TableColumn(
            obj.end_customer_id_field, "string", description="end customer id, set by the sync"
        )
    ]
    for object_field in obj.object_fields:
        if object_field.omit:
            continue
        columns.append(
            TableColumn(
                object_field.name,
                object_field.type.value,
                description=object_field.description,
            )
        )
    return TableSchema(columns=columns)


def most_frequent_interval(syncs: Sequence[Sync]) -> dt.timedelta | None:
    """The shortest interval among active syncs (continuous ones count as a few minutes)."""
    intervals = []
    for sync in syncs:
        if sync.status is not SyncStatus.ACTIVE:
            continue
        if sync.continuous:
            intervals.append(CONTINUOUS_INTERVAL)
        elif sync.frequency is not None and sync.frequency_units is not None:
            intervals.append(interval(sync.frequency, sync.frequency_units))
    return min(intervals, default=None)


def expected_interval(props: SyncObjectProps) -> dt.timedelta | None:
    """How often the object is refreshed: its frequency, else its most frequent active sync."""
    obj = props.object
    if obj.frequency is not None and obj.frequency_units is not None:
        return interval(obj.frequency, obj.frequency_units)
    return most_frequent_interval(props.syncs)


def freshness_policy_for(every: dt.timedelta | None) -> FreshnessPolicy | None:
    """Warn after 1.5 and fail after 2 intervals without a materialization."""
    if every is None:
        return None
    return FreshnessPolicy.time_window(fail_window=every * 2, warn_window=every * 1.5)


def default_freshness_policy(props: SyncObjectProps) -> FreshnessPolicy | None:
    """The freshness policy of an object's asset, from :func:`expected_interval`."""
    return freshness_policy_for(expected_interval(props))
