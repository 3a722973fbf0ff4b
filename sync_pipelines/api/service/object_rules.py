"""Objects: the destination tables syncs write."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sync_pipelines.api import tables as t
from sync_pipelines.api.service.base import ServiceBase
from sync_pipelines.common.time import aware
from sync_pipelines.contract.errors import (
    ConflictError,
    ValidationFailedError,
)
from sync_pipelines.contract.models import (
    ObjectCreate,
    ObjectField,
    ObjectUpdate,
    SyncObject,
)


class Objects(ServiceBase):
    """Objects: the destination tables syncs write."""

    def create_object(self, org: int, body: ObjectCreate) -> SyncObject:
        """Define a target table on a destination."""
        now = self.clock()
        with self.engine.begin() as c:
            self._referenced(c, t.destinations, org, body.destination_id, "destination_id")
            writers = self._table_writers(
                c, org, body.destination_id, body.namespace, [body.table_name]
            )
            if writers:
                raise ConflictError(
                    f"destination {body.destination_id} already has a writer of "
                    f"{body.namespace}.{body.table_name} ({'; '.join(writers)}): a table has one "
                    "object; choose another namespace or table_name"
                )
            object_id = c.execute(
                t.objects.insert().values(
                    organization_id=org,
                    display_name=body.display_name,
                    destination_id=body.destination_id,
                    target_type=body.target_type.value,
                    namespace=body.namespace,
                    table_name=body.table_name,
                    end_customer_id_field=body.end_customer_id_field,
                    sync_mode=body.sync_mode.value,
                    cursor_field=body.cursor_field,
                    primary_key=body.primary_key,
                    frequency=body.frequency,
                    frequency_units=body.frequency_units and body.frequency_units.value,
                    object_fields=[f.model_dump(mode="json") for f in body.object_fields],
                    deletes=body.deletes and body.deletes.value,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        return self.get_object(org, object_id)

    def get_object(self, org: int, object_id: int) -> SyncObject:
        """One object."""
        with self.engine.connect() as c:
            return self._object(self._row(c, t.objects, org, object_id, "object"))

    def list_objects(self, org: int) -> list[SyncObject]:
        """The organization's objects."""
        with self.engine.connect() as c:
            return [self._object(row) for row in c.execute(self._live(t.objects, org))]

    def update_object(self, org: int, object_id: int, body: ObjectUpdate) -> SyncObject:
        """Rename, reschedule, or add fields to an object (existing fields stay)."""
        with self.engine.begin() as c:
            current = self._object(self._row(c, t.objects, org, object_id, "object"))
            values: dict[str, Any] = {"updated_at": self.clock()}
            if body.display_name is not None:
                values["display_name"] = body.display_name
            if body.frequency is not None:
                values["frequency"] = body.frequency
                values["frequency_units"] = body.frequency_units.value
            if body.object_fields is not None:
                new = {f.name: f for f in body.object_fields}
                for old in current.object_fields:
                    if old.name not in new:
                        raise ValidationFailedError.for_field(
                            "object_fields", f"field {old.name!r} cannot be removed"
                        )
                    if new[old.name].type != old.type:
                        raise ValidationFailedError.for_field(
                            "object_fields", f"field {old.name!r} cannot change its type"
                        )
                values["object_fields"] = [f.model_dump(mode="json") for f in body.object_fields]
            c.execute(t.objects.update().where(t.objects.c.id == object_id).values(**values))
        return self.get_object(org, object_id)

    def delete_object(self, org: int, object_id: int) -> None:
        """Soft-delete an object that no active sync writes to."""
        with self.engine.connect() as c:
            self._row(c, t.objects, org, object_id, "object")
            used = self._active_syncs_using(c, t.syncs.c.object_id, object_id)
        if used:
            raise ConflictError(f"object {object_id} is used by syncs {used}; delete them first")
        self._soft_delete(t.objects, org, object_id, "object")

    @staticmethod
    def _object(row: sa.Row) -> SyncObject:
        return SyncObject(
            id=row.id,
            organization_id=row.organization_id,
            display_name=row.display_name,
            destination_id=row.destination_id,
            target_type=row.target_type,
            namespace=row.namespace,
            table_name=row.table_name,
            end_customer_id_field=row.end_customer_id_field,
            sync_mode=row.sync_mode,
            cursor_field=row.cursor_field,
            primary_key=row.primary_key,
            frequency=row.frequency,
            frequency_units=row.frequency_units,
            object_fields=[ObjectField.model_validate(f) for f in row.object_fields],
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
            deletes=row.deletes,
        )

    def _object_any(self, org: int, object_id: int) -> SyncObject:
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(t.objects).where(
                    t.objects.c.id == object_id, t.objects.c.organization_id == org
                )
            ).first()
        return self._object(row)
