"""Syncs (database and API-provider), their cursor position, rate limit and health."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    computed_field,
    field_validator,
    model_validator,
)

from sync_pipelines.common.frequency import (
    FrequencyUnits,
    interval_seconds,
    parse_shorthand,
    to_shorthand,
)
from sync_pipelines.contract.models.credentials import CredentialInput
from sync_pipelines.contract.models.custom_join import check_read_only_select
from sync_pipelines.contract.models.enums import (
    DeleteMode,
    HealthStatus,
    NullCursor,
    SyncMode,
    SyncStatus,
)
from sync_pipelines.contract.models.objects import FieldMapping
from sync_pipelines.contract.models.primitives import (
    _MAX_INTERVAL_SECONDS,
    MAX_AGE_DAYS,
    MAX_COLLECTIONS,
    MAX_CUSTOM_JOIN_CHARS,
    MAX_FIELD_MAPPINGS,
    MAX_LOOKBACK,
    MAX_RATE_LIMIT_INTERVAL,
    MAX_WORKERS,
    CustomerId,
    Id,
    JsonObject,
    Name,
    _Body,
    _coerce_customer_id,
    _Resource,
    _Schedule,
    first_duplicate,
    invalid,
)


class RateLimit(_Body):
    """Sequin's rate limit: ``allowed_requests`` per ``interval`` seconds."""

    allowed_requests: int = Field(gt=0, le=1_000_000)
    interval: float = Field(
        gt=0, le=MAX_RATE_LIMIT_INTERVAL, allow_inf_nan=False, description="seconds"
    )
    max_concurrent_requests: int | None = Field(default=None, gt=0, le=10_000)


class Health(_Resource):
    """Sequin's health object, derived from the sync's recent runs."""

    status: HealthStatus
    notes: list[str] = Field(default_factory=list)
    time: dt.datetime | None = None


class BackfillRange(_Resource):
    """One key range of a parallel backfill: the keys after ``after_key`` up to ``upto_key``,
    committed up to ``last_key``. Keys are typed (see :mod:`sync_pipelines.common.typed_values`)."""

    after_key: dict[str, Any] | None = None
    """The range starts after this key (``None``: at the first key)."""
    upto_key: dict[str, Any] | None = None
    """The range ends at this key, included (``None``: at the last key, however many come)."""
    last_key: dict[str, Any] | None = None
    """The primary key of the range's last committed row (``None``: none committed yet)."""
    done: bool = False
    """Every row of the range is committed."""


class BackfillState(_Resource):
    """A first load (or full refresh) read in primary-key chunks, as far as it is committed.

    Both values are typed (see :mod:`sync_pipelines.common.typed_values`).
    """

    watermark: dict[str, Any] | None = None
    """The cursor at the backfill's start (capped by the commit horizon): where incremental
    runs continue once every chunk is committed (``None``: the source had no cursor yet)."""
    last_key: dict[str, Any] | None = None
    """The primary key of the last committed row (``None``: no chunk committed yet)."""
    ranges: list[BackfillRange] | None = Field(default=None, max_length=1024)
    """A parallel backfill's key ranges, each with its own progress (``None``: one range,
    read in key order up to ``last_key``)."""


class CursorPosition(_Resource):
    """Where the last committed batch ended: typed (see :mod:`sync_pipelines.common.typed_values`).

    A provider sync keeps one position per collection in ``collections``; a backfill in progress
    keeps its chunk position in ``backfill`` (``cursor`` is then ``None``).
    """

    cursor: dict[str, Any] | None = None
    primary_key: dict[str, Any] | None = None
    backfill: BackfillState | None = None
    # Documented as objects of objects: generated clients cannot follow the recursion.
    collections: Annotated[
        dict[str, CursorPosition] | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "object", "additionalProperties": {"type": "object"}},
                    {"type": "null"},
                ],
                "description": "collection id -> its CursorPosition",
            }
        ),
    ] = None


class _SyncSchedule(_Schedule):
    sync_frequency: str | None = Field(
        default=None,
        max_length=32,
        description='Sequin shorthand: "continuous" or e.g. "30m", "4h", "1d"',
    )
    continuous: bool | None = None

    @model_validator(mode="after")
    def _apply_shorthand(self) -> _SyncSchedule:
        if self.sync_frequency is None:
            return self
        try:
            parsed = parse_shorthand(self.sync_frequency)
        except ValueError as error:
            raise invalid("sync_frequency", f"sync_frequency: {error}") from None
        if parsed is None:
            self.continuous = True
        else:
            if self.frequency is not None and (self.frequency, self.frequency_units) != parsed:
                raise invalid(
                    "sync_frequency", "sync_frequency contradicts frequency/frequency_units"
                )
            if interval_seconds(*parsed) > _MAX_INTERVAL_SECONDS:
                raise invalid(
                    "sync_frequency", "sync_frequency: the interval must be at most a year"
                )
            self.frequency, self.frequency_units = parsed
            self.continuous = False
        return self


class SyncCreate(_SyncSchedule):
    """``POST /sync``: the seed's fields, Fabra's later aliases and Sequin's fields."""

    display_name: Name
    source_id: Id
    object_id: Id
    destination_id: Id | None = None
    end_customer_id: CustomerId | None = None
    namespace: Name | None = None
    table_name: Name | None = None
    custom_join: str | None = Field(default=None, max_length=MAX_CUSTOM_JOIN_CHARS)
    cursor_field: Name | None = Field(
        default=None, validation_alias=AliasChoices("cursor_field", "source_cursor_field")
    )
    primary_key: Name | None = Field(
        default=None, validation_alias=AliasChoices("primary_key", "source_primary_key")
    )
    field_mappings: list[FieldMapping] = Field(max_length=MAX_FIELD_MAPPINGS)
    sync_mode: SyncMode | None = None
    max_age_days: int | None = Field(default=None, gt=0, le=MAX_AGE_DAYS)
    lookback: int | None = Field(
        default=None,
        ge=0,
        le=MAX_LOOKBACK,
        description="re-read this many seconds (or cursor units) each run",
    )
    null_cursor: NullCursor = Field(
        default=NullCursor.INCLUDE,
        description="rows whose cursor is NULL: include (read every run), fail or skip",
    )
    deletes: DeleteMode | None = Field(
        default=None,
        description="rows whose key left the source: ignore, soft (_deleted_at) or hard "
        "(default: the object's, else ignore)",
    )
    max_delete_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="refuse a delete check that would delete more of the rows (default 0.5)",
    )
    delete_check_every: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="check for deletes every N runs (default 1)"
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=MAX_WORKERS,
        description="threads loading a backfill's key ranges in parallel (1 to 32)",
    )
    rate_limit: RateLimit | None = None
    metadata: JsonObject = Field(default_factory=dict)
    external_id: str | None = Field(default=None, max_length=255)
    status: SyncStatus = SyncStatus.ACTIVE

    _customer_id = field_validator("end_customer_id", mode="before")(_coerce_customer_id)

    @field_validator("custom_join")
    @classmethod
    def _read_only(cls, value: str | None) -> str | None:
        if value is not None:
            check_read_only_select(value)
        return value

    @model_validator(mode="after")
    def _source_table(self) -> SyncCreate:
        if self.custom_join and (self.namespace or self.table_name):
            # The seed's own example sends both; the query wins and the table names the stream.
            pass
        elif not self.custom_join and not (self.namespace and self.table_name):
            missing = "table_name" if self.namespace else "namespace"
            raise invalid(missing, f"{missing} is required unless custom_join is given")
        twice = first_duplicate(m.destination_field_name for m in self.field_mappings)
        if twice is not None:
            raise invalid("field_mappings", f"field_mappings: {twice!r} is mapped more than once")
        return self


MUTABLE_SYNC_FIELDS = frozenset(
    {
        "display_name",
        "status",
        "field_mappings",
        "cursor_field",
        "max_age_days",
        "lookback",
        "null_cursor",
        "deletes",
        "max_delete_fraction",
        "delete_check_every",
        "workers",
        "rate_limit",
        "metadata",
        "external_id",
        "collection_ids",
        "provider_config",
    }
)
"""What ``PATCH /sync/{id}`` may change besides the schedule; the rest is fixed at creation."""


class SyncUpdate(_SyncSchedule):
    """``PATCH /sync/{id}``: status (pause/resume), schedule, mappings and Sequin fields."""

    display_name: Name | None = None
    status: SyncStatus | None = None
    field_mappings: list[FieldMapping] | None = Field(default=None, max_length=MAX_FIELD_MAPPINGS)
    cursor_field: Name | None = Field(
        default=None, validation_alias=AliasChoices("cursor_field", "source_cursor_field")
    )
    max_age_days: int | None = Field(default=None, gt=0, le=MAX_AGE_DAYS)
    lookback: int | None = Field(default=None, ge=0, le=MAX_LOOKBACK)
    null_cursor: NullCursor | None = None
    deletes: DeleteMode | None = None
    max_delete_fraction: float | None = Field(default=None, gt=0, le=1)
    delete_check_every: int | None = Field(default=None, ge=1, le=2**31 - 1)
    workers: int | None = Field(default=None, ge=1, le=MAX_WORKERS)
    rate_limit: RateLimit | None = None
    metadata: JsonObject | None = None
    external_id: str | None = Field(default=None, max_length=255)
    collection_ids: list[Name] | None = Field(default=None, max_length=MAX_COLLECTIONS)
    provider_config: JsonObject | None = None
    # Immutable after creation: given, they are rejected with a message naming the field.
    credential_id: int | None = None
    source_id: int | None = None
    object_id: int | None = None
    destination_id: int | None = None
    end_customer_id: str | None = None
    provider: str | None = None
    credential: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _immutable(self) -> SyncUpdate:
        for name in (
            "credential_id",
            "source_id",
            "object_id",
            "destination_id",
            "end_customer_id",
            "provider",
            "credential",
        ):
            if getattr(self, name) is not None:
                raise invalid(name, f"{name} cannot be changed after the sync is created")
        return self


class Sync(_Resource):
    """A sync as the API shows it."""

    id: int
    organization_id: int
    display_name: str
    source_id: int | None
    destination_id: int
    object_id: int | None
    end_customer_id: str
    provider: str | None = None
    collection_ids: list[str] = Field(default_factory=list)
    credential_id: int | None = None
    provider_config: dict[str, Any] = Field(default_factory=dict)
    namespace: str | None
    table_name: str | None
    custom_join: str | None
    cursor_field: str | None
    primary_key: str | None
    field_mappings: list[FieldMapping]
    sync_mode: SyncMode
    frequency: int | None
    frequency_units: FrequencyUnits | None
    continuous: bool
    max_age_days: int | None
    lookback: int | None
    null_cursor: NullCursor = NullCursor.INCLUDE
    deletes: DeleteMode | None = None
    """``None``: the object's default (else ignore)."""
    max_delete_fraction: float | None = None
    """``None``: 0.5."""
    delete_check_every: int | None = None
    """``None``: every run."""
    workers: int = 1
    """Threads loading a backfill's key ranges in parallel."""
    rate_limit: RateLimit | None
    metadata: dict[str, Any]
    external_id: str | None
    status: SyncStatus
    health: Health
    backfill_completed_at: dt.datetime | None
    cursor_position: CursorPosition | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sync_frequency(self) -> str | None:
        """Sequin's shorthand for the schedule: ``"continuous"``, ``"4h"``, ..."""
        if self.continuous:
            return "continuous"
        if self.frequency is None or self.frequency_units is None:
            return None
        return to_shorthand(self.frequency, self.frequency_units)


class ProviderSyncCreate(_SyncSchedule):
    """``POST /sync`` with a ``provider``: Sequin's API-provider sync.

    Each collection (``provider:object``, e.g. ``stripe:customer``) lands in its own table
    ``<namespace>.<object>`` on the destination.
    """

    provider: Name
    display_name: Name = Field(validation_alias=AliasChoices("display_name", "name"))
    destination_id: Id
    namespace: Name | None = None
    collection_ids: list[Name] = Field(min_length=1, max_length=MAX_COLLECTIONS)
    credential: CredentialInput | None = None
    credential_id: Id | None = None
    rate_limit: RateLimit | None = None
    provider_config: JsonObject = Field(default_factory=dict)
    max_age_days: int | None = Field(default=None, gt=0, le=MAX_AGE_DAYS)
    metadata: JsonObject = Field(default_factory=dict)
    external_id: str | None = Field(default=None, max_length=255)
    end_customer_id: CustomerId | None = None
    status: SyncStatus = SyncStatus.ACTIVE

    _customer_id = field_validator("end_customer_id", mode="before")(_coerce_customer_id)

    @model_validator(mode="after")
    def _credential_and_collections(self) -> ProviderSyncCreate:
        if (self.credential is None) == (self.credential_id is None):
            raise invalid("credential", "give exactly one of credential and credential_id")
        for collection in self.collection_ids:
            provider, _, name = collection.partition(":")
            if provider != self.provider or not name:
                raise invalid(
                    "collection_ids",
                    f"collection_ids: {collection!r} is not a {self.provider} collection; "
                    f"use '{self.provider}:<object>'",
                )
        if len(set(self.collection_ids)) != len(self.collection_ids):
            raise invalid("collection_ids", "collection_ids: a collection is listed twice")
        return self


def _sync_body_kind(value: Any) -> str:
    provider = (
        value.get("provider") if isinstance(value, dict) else getattr(value, "provider", None)
    )
    return "provider_sync" if provider is not None else "database_sync"


AnySyncCreate = Annotated[
    Annotated[SyncCreate, Tag("database_sync")]
    | Annotated[ProviderSyncCreate, Tag("provider_sync")],
    Discriminator(_sync_body_kind),
]
"""``POST /sync``'s body: a database sync, or with ``provider`` an API-provider sync."""
