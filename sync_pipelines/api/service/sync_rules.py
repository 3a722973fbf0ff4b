"""Syncs (database and API-provider): create, read, update, delete."""

from __future__ import annotations

import sqlalchemy as sa

from sync_pipelines.api import tables as t
from sync_pipelines.api.service.base import ServiceBase
from sync_pipelines.api.service.health import no_runs_health
from sync_pipelines.api.service.mappers import sync_model
from sync_pipelines.api.service.sync_checks import database_sync_row, provider_sync_row
from sync_pipelines.common.time import aware
from sync_pipelines.contract.errors import (
    ConflictError,
    NotFoundError,
    ValidationFailedError,
    validated,
)
from sync_pipelines.contract.models import (
    MUTABLE_SYNC_FIELDS,
    ProviderSyncCreate,
    Sync,
    SyncCreate,
    SyncUpdate,
)

_PROVIDER_ONLY_FIELDS = {"provider", "collection_ids", "credential_id", "provider_config"}


class Syncs(ServiceBase):
    """Syncs (database and API-provider): create, read, update, delete."""

    def create_sync(self, org: int, body: SyncCreate | ProviderSyncCreate) -> Sync:
        """Bind a source table or query to an object for one end customer, or (with a
        ``provider``) an API provider's collections to a destination."""
        if isinstance(body, ProviderSyncCreate):
            return self._create_provider_sync(org, body)
        now = self.clock()
        with self.engine.begin() as c:
            source = self._referenced(c, t.sources, org, body.source_id, "source_id")
            obj = self._object(self._referenced(c, t.objects, org, body.object_id, "object_id"))
            if body.destination_id is not None and body.destination_id != obj.destination_id:
                raise ValidationFailedError.for_field(
                    "destination_id",
                    f"object {obj.id} belongs to destination {obj.destination_id}, "
                    f"not {body.destination_id}",
                )
            values = database_sync_row(body, obj, source.end_customer_id)
            existing = c.scalar(
                sa.select(t.syncs.c.id).where(
                    t.syncs.c.object_id == obj.id,
                    t.syncs.c.end_customer_id == values["end_customer_id"],
                    t.syncs.c.deleted_at.is_(None),
                )
            )
            if existing is not None:
                raise ConflictError(
                    f"sync {existing} already syncs object {obj.id} for end customer "
                    f"{values['end_customer_id']!r}",
                    [{"field": "object_id", "message": "duplicate (object_id, end_customer_id)"}],
                )
            sync_id = c.execute(
                t.syncs.insert().values(
                    organization_id=org,
                    source_id=source.id,
                    destination_id=obj.destination_id,
                    object_id=obj.id,
                    health=no_runs_health(now),
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            ).inserted_primary_key[0]
        return self.get_sync(org, sync_id)

    def _create_provider_sync(self, org: int, body: ProviderSyncCreate) -> Sync:
        now = self.clock()
        with self.engine.begin() as c:
            self._referenced(c, t.destinations, org, body.destination_id, "destination_id")
            if body.credential_id is not None:
                try:
                    credential = self._credential_row(c, org, body.credential_id)
                except NotFoundError as error:
                    raise ValidationFailedError.for_field("credential_id", error.message) from None
                if credential.provider != body.provider:
                    raise ValidationFailedError.for_field(
                        "credential_id",
                        f"credential {credential.id} is for {credential.provider}, "
                        f"not {body.provider}",
                    )
                credential_id = credential.id
            else:
                credential_id = self._insert_credential(
                    c, org, body.provider, body.credential, f"{body.display_name} credential"
                )
            row = provider_sync_row(body)
            collections = [cid.partition(":")[2] for cid in row["collection_ids"]]
            writers = self._table_writers(
                c, org, body.destination_id, row["namespace"], collections, provider=body.provider
            )
            if writers:
                raise ConflictError(
                    f"destination {body.destination_id} already has writers of tables these "
                    f"collections would write into {row['namespace']} ({'; '.join(writers)}): "
                    "choose another namespace"
                )
            sync_id = c.execute(
                t.syncs.insert().values(
                    organization_id=org,
                    credential_id=credential_id,
                    health=no_runs_health(now),
                    created_at=now,
                    updated_at=now,
                    **row,
                )
            ).inserted_primary_key[0]
        return self.get_sync(org, sync_id)

    def get_sync(self, org: int, sync_id: int) -> Sync:
        """One sync."""
        with self.engine.connect() as c:
            return sync_model(self._row(c, t.syncs, org, sync_id, "sync"))

    def list_syncs(
        self,
        org: int,
        *,
        end_customer_id: str | None = None,
        external_id: str | None = None,
        status: str | None = None,
        object_id: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> list[Sync]:
        """The organization's syncs, filtered."""
        query = self._live(t.syncs, org)
        for column, value in (
            (t.syncs.c.end_customer_id, end_customer_id),
            (t.syncs.c.external_id, external_id),
            (t.syncs.c.status, status),
            (t.syncs.c.object_id, object_id),
        ):
            if value is not None:
                query = query.where(column == value)
        with self.engine.connect() as c:
            found = [sync_model(row) for row in c.execute(query)]
        for key, value in (metadata or {}).items():
            found = [s for s in found if str(s.metadata.get(key)) == value]
        return found

    def update_sync(self, org: int, sync_id: int, body: SyncUpdate) -> Sync:
        """Pause/resume, reschedule, or change mappings and Sequin fields of a sync."""
        with self.engine.begin() as c:
            current = sync_model(self._row(c, t.syncs, org, sync_id, "sync"))
            create_model = ProviderSyncCreate if current.provider else SyncCreate
            data = current.model_dump(include=set(create_model.model_fields) - {"sync_frequency"})
            data.update(body.model_dump(include=body.model_fields_set & MUTABLE_SYNC_FIELDS))
            if body.sync_frequency is not None or body.frequency is not None:
                data.update(
                    frequency=body.frequency,
                    frequency_units=body.frequency_units,
                    continuous=bool(body.continuous),
                )
            if current.provider:
                values = provider_sync_row(validated(ProviderSyncCreate, data))
            else:
                data = {k: v for k, v in data.items() if k not in _PROVIDER_ONLY_FIELDS}
                obj = self._object(self._row(c, t.objects, org, current.object_id, "object"))
                checked = validated(SyncCreate, data)
                values = database_sync_row(checked, obj, current.end_customer_id)
            values["updated_at"] = self.clock()
            c.execute(t.syncs.update().where(t.syncs.c.id == sync_id).values(**values))
        return self.get_sync(org, sync_id)

    def delete_sync(self, org: int, sync_id: int) -> None:
        """Soft-delete a sync: it stops running; its runs and destination rows stay."""
        with self.engine.begin() as c:
            sync = self._row(c, t.syncs, org, sync_id, "sync")
            if sync.lease_run_id is not None and aware(sync.lease_expires_at) > self.clock():
                raise ConflictError(f"sync {sync_id} is running (run {sync.lease_run_id})")
        self._soft_delete(t.syncs, org, sync_id, "sync")
