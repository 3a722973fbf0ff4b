"""Create-or-update of a sync by object and end customer (``create_sync_op`` and syncs.yaml)."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Any, Literal

from sync_pipelines.contract.models import MUTABLE_SYNC_FIELDS, Sync, SyncCreate, SyncUpdate
from sync_pipelines.contract.protocol import SyncApi

# The fields a PATCH may change that a database sync has; the others are fixed at creation.
UPDATABLE_FIELDS = tuple(sorted(MUTABLE_SYNC_FIELDS & set(SyncCreate.model_fields)))
FIXED_SYNC_FIELDS = ("namespace", "table_name", "custom_join", "primary_key", "sync_mode")
SCHEDULE_FIELDS = frozenset({"frequency", "frequency_units", "sync_frequency", "continuous"})


class SyncFieldConflict(ValueError):
    """An existing sync differs from the wanted one in a field that cannot change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class UpsertedSync:
    """The sync after an upsert, and whether it was ``created``, ``updated`` or ``unchanged``."""

    sync: Sync
    action: Literal["created", "updated", "unchanged"]


def upsert_sync(
    client: SyncApi, body: SyncCreate, *, end_customer_id: str, given: Set[str]
) -> UpsertedSync:
    """Create the sync of ``body``'s object for ``end_customer_id``, or bring the existing one in
    line with ``body``.

    Args:
        client: the sync API.
        body: the wanted sync (with its source and object ids).
        end_customer_id: the end customer (the body's, else its source's).
        given: the fields the caller sets; only these are compared and updated.

    Raises:
        SyncFieldConflict: the existing sync differs in a field that cannot change.
        sync_pipelines.contract.errors.SyncApiError: the sync API refused the body.
    """
    existing = client.list_syncs(object_id=body.object_id, end_customer_id=end_customer_id)
    if not existing:
        return UpsertedSync(client.create_sync(body), "created")
    sync = existing[0]
    changes = sync_changes(sync, body, given)
    if not changes:
        return UpsertedSync(sync, "unchanged")
    return UpsertedSync(client.update_sync(sync.id, SyncUpdate.model_validate(changes)), "updated")


def sync_changes(sync: Sync, body: SyncCreate, given: Set[str]) -> dict[str, Any]:
    """The ``PATCH`` body that brings ``sync`` in line with ``body`` (empty: nothing to do).

    Raises:
        SyncFieldConflict: a fixed field (source, table, query, key, mode) differs.
    """
    if sync.source_id != body.source_id:
        raise SyncFieldConflict(
            "source_id",
            f"sync {sync.id} already syncs object {sync.object_id} for end customer "
            f"{sync.end_customer_id!r} from source {sync.source_id}, not {body.source_id}; a "
            "sync's source cannot change (delete the sync to replace it)",
        )
    for name in FIXED_SYNC_FIELDS:
        wanted = getattr(body, name)
        if name in given and wanted is not None and wanted != getattr(sync, name):
            raise SyncFieldConflict(
                name,
                f"sync {sync.id} has {_shown(getattr(sync, name))}, not {_shown(wanted)}; "
                f"{name} cannot change after a sync is created (delete the sync to replace it)",
            )
    wanted_values = body.model_dump(mode="json", include=set(UPDATABLE_FIELDS))
    current = sync.model_dump(mode="json", include=set(UPDATABLE_FIELDS))
    changes: dict[str, Any] = {
        name: wanted_values[name]
        for name in UPDATABLE_FIELDS
        if name in given and wanted_values[name] != current[name]
    }
    if given & SCHEDULE_FIELDS:
        if body.continuous:
            if not sync.continuous:
                changes["sync_frequency"] = "continuous"
        elif body.frequency is not None and (
            sync.continuous
            or (sync.frequency, sync.frequency_units) != (body.frequency, body.frequency_units)
        ):
            changes["frequency"] = body.frequency
            changes["frequency_units"] = body.frequency_units.value
    return changes


def _shown(value: Any) -> str:
    return repr(getattr(value, "value", value))
