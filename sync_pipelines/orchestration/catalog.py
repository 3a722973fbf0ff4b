"""A snapshot of the sync API taken when a code location loads: objects, destinations, syncs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sync_pipelines.api.protocol import SyncApi
from sync_pipelines.models import Destination, Sync, SyncObject
from sync_pipelines.orchestration.translator import SyncObjectProps


@dataclass(frozen=True)
class SyncCatalog:
    """The organization's objects, destinations and syncs at one moment.

    Definitions are built from it once; the schedules and the sensor ask the sync API again
    whenever they run, so syncs created, paused or deleted later are seen.
    """

    objects: Sequence[SyncObject]
    destinations: Sequence[Destination]
    syncs: Sequence[Sync]

    @classmethod
    def load(cls, client: SyncApi) -> SyncCatalog:
        """Read everything the definitions are built from."""
        return cls(
            objects=client.list_objects(),
            destinations=client.list_destinations(),
            syncs=client.list_syncs(),
        )

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
        return [
            SyncObjectProps(
                object=obj,
                destination=destinations[obj.destination_id],
                syncs=tuple(s for s in self.syncs if s.object_id == obj.id),
            )
            for obj in chosen
            if obj.destination_id in destinations
        ]
