"""Applying a ``syncs.yaml`` to the sync API: an upsert by name (syncs by object and end
customer), so applying it again creates nothing new."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sync_pipelines.contract.errors import SyncApiError
from sync_pipelines.contract.models import (
    MASK,
    REVEAL_SECRETS,
    Destination,
    Source,
    SyncObject,
)
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.orchestration._upsert import SyncFieldConflict, upsert_sync
from sync_pipelines.orchestration.syncs_file.entries import (
    AppliedSyncs,
    DestinationEntry,
    Located,
    ObjectEntry,
    SourceEntry,
    SyncsFile,
    SyncsFileError,
)

logger = logging.getLogger("sync_pipelines.orchestration")


def apply_syncs_file(client: SyncApi, syncs_file: SyncsFile) -> AppliedSyncs:
    """Upsert a file's entries into the sync API; applying it twice changes nothing.

    Sources, destinations and objects are matched by name (``display_name``), syncs by object
    and end customer. A sync's mutable fields that the file sets and that differ are updated
    (only those: a sync paused through the API stays paused unless the file sets ``status``).
    A source, destination or object whose stored definition differs from the file is left as it
    is, with a warning (the client cannot change them).

    Args:
        client: the sync API.
        syncs_file: a file from :func:`load_syncs_yaml`.

    Returns:
        The ids of every entry, and what was created or updated.

    Raises:
        SyncsFileError: the sync API rejects an entry, or an existing sync differs in a field
            that cannot change (its source, table, query, primary key or mode).
    """
    applied = AppliedSyncs()
    try:
        _apply(client, syncs_file, applied)
    except _EntryRejected as rejected:
        raise rejected.error from None
    return applied


class _EntryRejected(Exception):
    def __init__(self, error: SyncsFileError) -> None:
        self.error = error


def _rejected(syncs_file: SyncsFile, entry: Located, error: SyncApiError) -> _EntryRejected:
    details = error.details or [{"field": None, "message": error.message}]
    first = details[0]
    message = first.get("message") or error.message
    return _EntryRejected(
        syncs_file.error(entry, f"the sync API refused it: {message}", first.get("field"))
    )


def _apply(client: SyncApi, syncs_file: SyncsFile, applied: AppliedSyncs) -> None:
    sources = _by_name(client.list_sources())
    for entry in syncs_file.sources:
        found = sources.get(entry.name)
        if found is None:
            created = _create(syncs_file, entry, lambda e=entry: client.create_source(e.body))
            applied.created.append(entry.entry)
            applied.source_ids[entry.name] = created.id
            continue
        if found.end_customer_id != entry.body.end_customer_id:
            raise _EntryRejected(
                syncs_file.error(
                    entry,
                    f"source {found.id} of that name already exists for end customer "
                    f"{found.end_customer_id!r}; a source's end customer cannot change (rename "
                    "the entry or delete the source)",
                    "end_customer_id",
                )
            )
        _warn_if_connection_differs(syncs_file, entry, found)
        applied.source_ids[entry.name] = found.id

    destinations = _by_name(client.list_destinations())
    for entry in syncs_file.destinations:
        found = destinations.get(entry.name)
        if found is None:
            created = _create(syncs_file, entry, lambda e=entry: client.create_destination(e.body))
            applied.created.append(entry.entry)
            applied.destination_ids[entry.name] = created.id
            continue
        _warn_if_connection_differs(syncs_file, entry, found)
        applied.destination_ids[entry.name] = found.id

    objects = _by_name(client.list_objects())
    for entry in syncs_file.objects:
        destination_id = applied.destination_ids[entry.destination]
        found = objects.get(entry.name)
        if found is None:
            body = entry.body.model_copy(update={"destination_id": destination_id})
            created = _create(syncs_file, entry, lambda b=body: client.create_object(b))
            applied.created.append(entry.entry)
            applied.object_ids[entry.name] = created.id
            continue
        if found.destination_id != destination_id:
            raise _EntryRejected(
                syncs_file.error(
                    entry,
                    f"object {found.id} of that name already exists on destination "
                    f"{found.destination_id}; an object cannot move (rename the entry)",
                    "destination",
                )
            )
        _warn_if_object_differs(syncs_file, entry, found)
        applied.object_ids[entry.name] = found.id

    customers = {s.name: s.body.end_customer_id for s in syncs_file.sources}
    for entry in syncs_file.syncs:
        body = entry.body.model_copy(
            update={
                "source_id": applied.source_ids[entry.source],
                "object_id": applied.object_ids[entry.object],
            }
        )
        try:
            upserted = upsert_sync(
                client,
                body,
                end_customer_id=entry.body.end_customer_id or customers[entry.source],
                given=entry.given | {"display_name"},
            )
        except SyncFieldConflict as conflict:
            field = "source" if conflict.field == "source_id" else conflict.field
            raise _EntryRejected(syncs_file.error(entry, conflict.message, field)) from None
        except SyncApiError as error:
            raise _rejected(syncs_file, entry, error) from None
        if upserted.action == "created":
            applied.created.append(entry.entry)
        elif upserted.action == "updated":
            applied.updated.append(entry.entry)
        applied.sync_ids[entry.name] = upserted.sync.id


def _by_name(items: Sequence[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        found.setdefault(item.display_name, item)
    return found


def _create(syncs_file: SyncsFile, entry: Located, create: Any) -> Any:
    try:
        return create()
    except SyncApiError as error:
        raise _rejected(syncs_file, entry, error) from None


def _comparable_connection(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A connection without its secrets, URLs normalized (for noticing a changed definition)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if value is None:
            continue
        if key == "url":
            with contextlib.suppress(ArgumentError):
                value = make_url(value).render_as_string(hide_password=True)
        elif isinstance(value, dict):
            value = {
                k: v
                for k, v in value.items()
                if k not in {"password", "credentials"} and v is not None and v != MASK
            }
        out[key] = value
    return out


def _warn_if_connection_differs(
    syncs_file: SyncsFile, entry: SourceEntry | DestinationEntry, found: Source | Destination
) -> None:
    wanted = _comparable_connection(entry.body.connection_spec())
    stored = _comparable_connection(found.connection.model_dump(mode="json", exclude={"id"}))
    if wanted != stored:
        logger.warning(
            "%s: %s: its connection differs from the sync API's (%s %d), which is kept; "
            "delete it there or rename the entry to apply the file's",
            syncs_file.path,
            entry.entry,
            "source" if isinstance(found, Source) else "destination",
            found.id,
        )


def _warn_if_object_differs(syncs_file: SyncsFile, entry: ObjectEntry, found: SyncObject) -> None:
    wanted = entry.body.model_dump(
        mode="json",
        include={"namespace", "table_name", "end_customer_id_field", "object_fields"},
        context=REVEAL_SECRETS,
    )
    stored = found.model_dump(
        mode="json", include={"namespace", "table_name", "end_customer_id_field", "object_fields"}
    )
    if wanted != stored:
        logger.warning(
            "%s: %s: differs from the sync API's object %d, which is kept",
            syncs_file.path,
            entry.entry,
            found.id,
        )
