"""Objects: the destination tables a sync writes, with their fields and schedule."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import (
    AliasChoices,
    Field,
    computed_field,
    model_validator,
)

from sync_pipelines.common.frequency import (
    FrequencyUnits,
)
from sync_pipelines.contract.models.enums import (
    ORDERABLE_FIELD_TYPES,
    DeleteMode,
    FieldType,
    SyncMode,
    TargetType,
)
from sync_pipelines.contract.models.primitives import (
    MAX_OBJECT_FIELDS,
    Id,
    Name,
    Text,
    _Body,
    _Resource,
    _Schedule,
    first_duplicate,
    invalid,
)


class ObjectField(_Body):
    """One column of an object. ``omit``: exists but is not synced; ``optional``: nullable."""

    name: Name
    type: FieldType
    optional: bool = False
    omit: bool = False
    display_name: Annotated[str, Field(max_length=255)] | None = None
    description: Text | None = None


class FieldMapping(_Body):
    """Maps a source column onto an object field."""

    source_field_name: Name
    destination_field_name: Name


class ObjectCreate(_Schedule):
    """``POST /object``: a target table on a destination."""

    display_name: Name
    destination_id: Id
    target_type: TargetType = TargetType.SINGLE_EXISTING
    namespace: Name
    table_name: Name
    end_customer_id_field: Name = Field(
        validation_alias=AliasChoices("end_customer_id_field", "customer_id_column")
    )
    sync_mode: SyncMode | None = None
    cursor_field: Name | None = None
    primary_key: Name | None = None
    recurring: bool | None = None
    object_fields: list[ObjectField] = Field(default_factory=list, max_length=MAX_OBJECT_FIELDS)
    deletes: DeleteMode | None = Field(
        default=None, description="default of its syncs' deletes: ignore, soft or hard"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ObjectCreate:
        fields = {f.name: f for f in self.object_fields}
        duplicate = first_duplicate(f.name for f in self.object_fields)
        if duplicate is not None:
            raise invalid("object_fields", f"object_fields: field {duplicate!r} is defined twice")
        if self.end_customer_id_field in fields:
            raise invalid(
                "end_customer_id_field",
                f"end_customer_id_field {self.end_customer_id_field!r} is set by the sync; "
                "it must not also be an object field",
            )
        if self.sync_mode is None:
            if self.cursor_field is None:
                self.sync_mode = SyncMode.FULL_OVERWRITE
            elif self.primary_key is None:
                self.sync_mode = SyncMode.INCREMENTAL_APPEND
            else:
                self.sync_mode = SyncMode.INCREMENTAL_UPDATE
        for role in ("cursor_field", "primary_key"):
            name = getattr(self, role)
            if name is not None and fields and name not in fields:
                raise invalid(role, f"{role} {name!r} is not one of the object_fields")
        if (
            self.cursor_field
            and fields
            and fields[self.cursor_field].type not in (ORDERABLE_FIELD_TYPES)
        ):
            raise invalid(
                "cursor_field",
                f"cursor_field {self.cursor_field!r} has type "
                f"{fields[self.cursor_field].type.value}, which cannot order a cursor; use a "
                "date, timestamp, integer or number field",
            )
        if self.sync_mode is SyncMode.INCREMENTAL_UPDATE and not self.primary_key:
            raise invalid("primary_key", "primary_key is required for sync_mode incremental_update")
        if self.sync_mode is not SyncMode.FULL_OVERWRITE and not self.cursor_field:
            raise invalid(
                "cursor_field", f"cursor_field is required for sync_mode {self.sync_mode.value}"
            )
        return self


class ObjectUpdate(_Schedule):
    """``PATCH /object/{id}``: fields may be added; keys and table stay."""

    display_name: Name | None = None
    object_fields: list[ObjectField] | None = Field(default=None, max_length=MAX_OBJECT_FIELDS)

    @model_validator(mode="after")
    def _distinct_fields(self) -> ObjectUpdate:
        duplicate = first_duplicate(f.name for f in self.object_fields or ())
        if duplicate is not None:
            raise invalid("object_fields", f"object_fields: field {duplicate!r} is defined twice")
        return self


class SyncObject(_Resource):
    """An object as the API shows it (``customer_id_column`` mirrors Fabra 0.1.0)."""

    id: int
    organization_id: int
    display_name: str
    destination_id: int
    target_type: TargetType
    namespace: str
    table_name: str
    end_customer_id_field: str
    sync_mode: SyncMode
    cursor_field: str | None
    primary_key: str | None
    frequency: int | None
    frequency_units: FrequencyUnits | None
    object_fields: list[ObjectField]
    created_at: dt.datetime
    updated_at: dt.datetime
    deletes: DeleteMode | None = None
    """Default of its syncs' ``deletes`` (``None``: ignore)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def customer_id_column(self) -> str:
        """Fabra 0.1.0's name for :attr:`end_customer_id_field`."""
        return self.end_customer_id_field
