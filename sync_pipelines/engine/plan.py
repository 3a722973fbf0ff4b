"""What one run of a sync does, resolved from the sync and its object.

:func:`plan_sync` applies the defaults (cursor and primary key from the mappings, all columns when
nothing is mapped) once, so that reading, mapping and writing agree on names and types.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_pipelines.contract.models import (
    DeleteMode,
    FieldType,
    NullCursor,
    ObjectField,
    Sync,
    SyncMode,
    SyncObject,
)
from sync_pipelines.engine.errors import SourceSchemaError

__all__ = ["DELETED_AT", "FieldPlan", "SyncPlan", "plan_sync"]

DELETED_AT = "_deleted_at"
"""The column a ``soft`` deletes sync stamps on rows whose key left the source (NULL while the
key is there; a batch that writes the key clears it)."""


@dataclass(frozen=True)
class FieldPlan:
    """One written column: read from ``source``, written to ``destination`` as ``type``.

    ``type`` is ``None`` when the object declares no fields: the column is written as read.
    """

    source: str
    destination: str
    type: FieldType | None


@dataclass(frozen=True)
class SyncPlan:
    """A sync resolved for the engine: source relation, keys, columns and destination."""

    sync_id: int
    sync_name: str
    mode: SyncMode
    source_namespace: str | None
    source_table: str | None
    custom_join: str | None
    cursor: str | None
    """Source cursor column (``None`` for full_overwrite without one)."""
    primary_key: str | None
    """Source primary key column."""
    fields: tuple[FieldPlan, ...] | None
    """Mapped columns; ``None`` writes every source column under its own name."""
    customer_field: str
    customer_id: str
    destination_namespace: str
    destination_table: str
    object_fields: tuple[ObjectField, ...]
    max_age_days: int | None
    lookback: int | None
    null_cursor: NullCursor = NullCursor.INCLUDE
    """Rows whose cursor is NULL: read every run in their own pass, refused, or left out."""
    deletes: DeleteMode = DeleteMode.IGNORE
    """Destination rows whose key left the source: kept, stamped ``_deleted_at``, or deleted
    (always ``ignore`` for full_overwrite, whose swap replaces the rows)."""
    max_delete_fraction: float = 0.5
    """A delete check that would delete more of the end customer's rows fails instead."""
    delete_check_every: int = 1
    """Check for deletes in every N-th run."""

    @property
    def source_label(self) -> str:
        """The source relation for messages."""
        if self.custom_join:
            return "custom_join query"
        if self.source_namespace:
            return f"source table {self.source_namespace}.{self.source_table}"
        return f"source table {self.source_table}"

    @property
    def destination_label(self) -> str:
        """``namespace.table`` of the destination."""
        return f"{self.destination_namespace}.{self.destination_table}"

    def destination_name(self, source_column: str | None) -> str | None:
        """The destination column a source column is written to (``None``: not written)."""
        if source_column is None:
            return None
        if self.fields is None:
            return source_column
        for field in self.fields:
            if field.source == source_column:
                return field.destination
        return None

    @property
    def destination_primary_key(self) -> str | None:
        """The destination column of the primary key."""
        return self.destination_name(self.primary_key)

    @property
    def destination_cursor(self) -> str | None:
        """The destination column of the cursor (``None`` when the cursor is not written)."""
        return self.destination_name(self.cursor)

    @property
    def object_field_types(self) -> dict[str, FieldType]:
        """Declared object fields (omitted ones included) by name."""
        return {field.name: field.type for field in self.object_fields}


def _mapped_source(sync: Sync, object_field: str | None) -> str | None:
    if object_field is None:
        return None
    for mapping in sync.field_mappings:
        if mapping.destination_field_name == object_field:
            return mapping.source_field_name
    return object_field


def plan_sync(sync: Sync, obj: SyncObject) -> SyncPlan:
    """Resolve a sync and its object into a :class:`SyncPlan`.

    Raises:
        SourceSchemaError: the primary key is not written to the destination.
    """
    types = {field.name: field.type for field in obj.object_fields}
    if sync.field_mappings:
        fields: tuple[FieldPlan, ...] | None = tuple(
            FieldPlan(
                m.source_field_name, m.destination_field_name, types.get(m.destination_field_name)
            )
            for m in sync.field_mappings
        )
    elif obj.object_fields:
        fields = tuple(
            FieldPlan(field.name, field.name, field.type)
            for field in obj.object_fields
            if not field.omit
        )
    else:
        fields = None
    mode = SyncMode(sync.sync_mode or obj.sync_mode)
    plan = SyncPlan(
        sync_id=sync.id,
        sync_name=sync.display_name,
        mode=mode,
        source_namespace=sync.namespace,
        source_table=sync.table_name,
        custom_join=sync.custom_join,
        cursor=sync.cursor_field or _mapped_source(sync, obj.cursor_field),
        primary_key=sync.primary_key or _mapped_source(sync, obj.primary_key),
        fields=fields,
        customer_field=obj.end_customer_id_field,
        customer_id=sync.end_customer_id,
        destination_namespace=obj.namespace,
        destination_table=obj.table_name,
        object_fields=tuple(obj.object_fields),
        max_age_days=sync.max_age_days,
        lookback=sync.lookback,
        null_cursor=NullCursor(sync.null_cursor),
        deletes=(
            DeleteMode.IGNORE
            if mode is SyncMode.FULL_OVERWRITE
            else DeleteMode(sync.deletes or obj.deletes or DeleteMode.IGNORE)
        ),
        max_delete_fraction=(
            sync.max_delete_fraction if sync.max_delete_fraction is not None else 0.5
        ),
        delete_check_every=sync.delete_check_every or 1,
    )
    if plan.primary_key and plan.destination_primary_key is None:
        raise SourceSchemaError(
            f"primary key column {plan.primary_key!r} of the {plan.source_label} is not mapped "
            f"to a field of {plan.destination_label}"
        )
    if plan.destination_primary_key == plan.customer_field:
        raise SourceSchemaError(
            f"primary key column {plan.primary_key!r} is mapped onto {plan.customer_field!r}, "
            "the end customer column"
        )
    return plan
