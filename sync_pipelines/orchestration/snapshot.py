"""What the definitions are built from: the sync API's objects, destinations, syncs and sources
(:class:`SyncCatalog`), and its serializable snapshot (:class:`SyncApiSnapshot`).

:mod:`sync_pipelines.orchestration.state` caches it as the code location's state, so loading
reads the sync API once (and not at all in run workers, or while the API is down).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dagster_shared.record import record
from dagster_shared.serdes import whitelist_for_serdes

from sync_pipelines.contract.models import Destination, Source, Sync, SyncObject
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.orchestration._names import slug
from sync_pipelines.orchestration.translator import ProviderCollectionProps, SyncObjectProps

StreamKey = tuple[int, str, str]
"""A provider stream: ``(destination id, namespace, provider)``."""
TableKey = tuple[int, str, str]
"""A destination table: ``(destination id, namespace, table name)``."""


def stream_key(sync: Sync) -> StreamKey | None:
    """The stream an API-provider sync writes to (``None`` for a database sync)."""
    if sync.provider is None or sync.namespace is None:
        return None
    return sync.destination_id, sync.namespace, sync.provider


@dataclass(frozen=True)
class ProviderStream:
    """The API-provider syncs of one provider into one namespace of one destination.

    Each end customer has one sync; each collection any of them reads is a table, and an asset.
    """

    destination: Destination
    provider: str
    namespace: str
    syncs: tuple[Sync, ...]
    key_prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    """By collection name: the prefix of its asset key (see :meth:`SyncCatalog.key_prefixes`)."""

    @property
    def key(self) -> StreamKey:
        """``(destination id, namespace, provider)``."""
        return self.destination.id, self.namespace, self.provider

    def collections(self) -> list[ProviderCollectionProps]:
        """The translator's view of each collection, sorted by name."""
        names = sorted({c.partition(":")[2] for s in self.syncs for c in s.collection_ids})
        return [
            ProviderCollectionProps(
                provider=self.provider,
                collection=name,
                namespace=self.namespace,
                destination=self.destination,
                syncs=tuple(s for s in self.syncs if f"{self.provider}:{name}" in s.collection_ids),
                key_prefix=self.key_prefixes.get(name, ()),
            )
            for name in names
        ]


@dataclass(frozen=True)
class SyncCatalog:
    """The organization's objects, destinations and syncs at one moment.

    Definitions are built from it once; the schedules and the sensor ask the sync API again
    whenever they run, so syncs created, paused or deleted later are seen.
    """

    objects: Sequence[SyncObject]
    destinations: Sequence[Destination]
    syncs: Sequence[Sync]
    sources: Sequence[Source] = ()

    @classmethod
    def load(cls, client: SyncApi) -> SyncCatalog:
        """Read everything the definitions are built from (secrets come back masked)."""
        return cls(
            objects=client.list_objects(),
            destinations=client.list_destinations(),
            syncs=client.list_syncs(),
            sources=client.list_sources(),
        )

    def source_named(self, display_name: str) -> Source | None:
        """The source with this display name, if any."""
        return next((s for s in self.sources if s.display_name == display_name), None)

    def object_named(self, display_name: str) -> SyncObject | None:
        """The object with this display name, if any."""
        return next((o for o in self.objects if o.display_name == display_name), None)

    def _provider_syncs(self) -> dict[StreamKey, list[Sync]]:
        destinations = {d.id for d in self.destinations}
        grouped: dict[StreamKey, list[Sync]] = {}
        for sync in self.syncs:
            key = stream_key(sync)
            if key is not None and key[0] in destinations:
                grouped.setdefault(key, []).append(sync)
        return grouped

    def key_prefixes(self) -> dict[TableKey, tuple[str, ...]]:
        """The asset key prefix of each destination table whose namespace and name another
        destination also has: the destination's name (slugged; with its id when two
        destinations share a name). Other tables get none, so their keys stay
        ``[namespace, table]`` and do not change as long as no other destination has the table.
        """
        on: dict[tuple[str, str], set[int]] = {}
        for obj in self.objects:
            on.setdefault((obj.namespace, obj.table_name), set()).add(obj.destination_id)
        for (destination_id, namespace, _), syncs in self._provider_syncs().items():
            for sync in syncs:
                for collection_id in sync.collection_ids:
                    table = collection_id.partition(":")[2]
                    on.setdefault((namespace, table), set()).add(destination_id)
        names = {d.id: slug(d.display_name) for d in self.destinations}
        taken = Counter(names.values())

        def prefix(destination_id: int) -> tuple[str, ...]:
            name = names.get(destination_id, "destination")
            return (name if taken[name] == 1 else f"{name}_{destination_id}",)

        return {
            (destination_id, namespace, table): prefix(destination_id)
            for (namespace, table), destination_ids in on.items()
            if len(destination_ids) > 1
            for destination_id in destination_ids
        }

    def provider_streams(self) -> list[ProviderStream]:
        """The API-provider syncs, grouped by the stream (destination namespace) they fill."""
        destinations = {d.id: d for d in self.destinations}
        prefixes = self.key_prefixes()
        return [
            ProviderStream(
                destinations[key[0]],
                key[2],
                key[1],
                tuple(syncs),
                {
                    table: prefix
                    for (destination_id, namespace, table), prefix in prefixes.items()
                    if (destination_id, namespace) == key[:2]
                },
            )
            for key, syncs in sorted(self._provider_syncs().items())
        ]

    def object_props(self, objects: Iterable[int | str] | None = None) -> list[SyncObjectProps]:
        """The translator's view of each object (all, or those named by id or display name).

        Raises:
            KeyError: a selected object does not exist.
        """
        destinations = {d.id: d for d in self.destinations}
        chosen = list(self.objects)
        if objects is not None:
            wanted = list(objects)
            by_id = {o.id: o for o in self.objects}
            by_name = {o.display_name: o for o in self.objects}
            chosen = []
            for ref in wanted:
                found = by_id.get(ref) if isinstance(ref, int) else by_name.get(ref)
                if found is None:
                    raise KeyError(f"no object {ref!r} in the sync API")
                chosen.append(found)
        prefixes = self.key_prefixes()
        return [
            SyncObjectProps(
                object=obj,
                destination=destinations[obj.destination_id],
                syncs=tuple(s for s in self.syncs if s.object_id == obj.id),
                key_prefix=prefixes.get((obj.destination_id, obj.namespace, obj.table_name), ()),
            )
            for obj in chosen
            if obj.destination_id in destinations
        ]


@whitelist_for_serdes
@record
class SyncApiSnapshot:
    """The sync API's objects, destinations, syncs and sources at one moment (secrets masked).

    Attributes:
        api: which sync API (its URL, or ``embedded``).
        fetched_at: when it was read (UNIX seconds).
        catalog_json: the resources, as the API returns them (JSON).
    """

    api: str
    fetched_at: float
    catalog_json: str

    @classmethod
    def of(cls, api: str, catalog: SyncCatalog) -> SyncApiSnapshot:
        """A snapshot of ``catalog``, read now."""
        data = {
            name: [item.model_dump(mode="json") for item in getattr(catalog, name)]
            for name in ("objects", "destinations", "syncs", "sources")
        }
        return cls(api=api, fetched_at=time.time(), catalog_json=json.dumps(data, sort_keys=True))

    def catalog(self) -> SyncCatalog:
        """The resources of the snapshot."""
        data = json.loads(self.catalog_json)
        return SyncCatalog(
            objects=[SyncObject.model_validate(o) for o in data["objects"]],
            destinations=[Destination.model_validate(d) for d in data["destinations"]],
            syncs=[Sync.model_validate(s) for s in data["syncs"]],
            sources=[Source.model_validate(s) for s in data.get("sources", [])],
        )
