"""A collection's records as destination rows: typed columns, the cursor column, the raw JSON.

Each collection is written like a database sync's object: an in-memory
:class:`~sync_pipelines.contract.models.SyncObject` (``<namespace>.<collection>``, end customer
column
``end_customer_id``, primary key, updated-at cursor, typed fields and ``raw``) planned with
:func:`~sync_pipelines.engine.plan.plan_sync`, so the engine's writer upserts provider rows exactly
as it upserts database rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from sync_pipelines.contract.models import FieldType, ObjectField, Sync, SyncMode, SyncObject
from sync_pipelines.engine import field_types
from sync_pipelines.engine.mapping import map_batch
from sync_pipelines.engine.plan import SyncPlan, plan_sync
from sync_pipelines.providers.errors import ProviderDataError
from sync_pipelines.providers.rest import RAW_COLUMN, FieldSpec, RestCollection, TimeFormat

__all__ = [
    "END_CUSTOMER_COLUMN",
    "CollectionTable",
    "Record",
    "format_time",
    "parse_time",
    "truncate_time",
    "value_at",
]

END_CUSTOMER_COLUMN = "end_customer_id"


def value_at(data: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted path of a JSON value (``""``: the value itself)."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return default
    return data


def parse_time(value: Any, fmt: TimeFormat = "auto") -> dt.datetime | None:
    """A provider's timestamp as an aware UTC datetime (``None`` stays ``None``).

    Raises:
        ValueError: the value is not a timestamp of that format.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if fmt == "auto":
        is_number = isinstance(value, int | float) or (
            isinstance(value, str) and value.strip().isdigit()
        )
        fmt = "unix" if is_number else "iso8601"
    if fmt in ("unix", "unix_ms"):
        seconds = float(value) / (1000 if fmt == "unix_ms" else 1)
        whole = int(seconds)
        micros = round((seconds - whole) * 1_000_000)
        return dt.datetime.fromtimestamp(whole, dt.UTC) + dt.timedelta(microseconds=micros)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp")
    parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def truncate_time(value: dt.datetime, fmt: TimeFormat) -> dt.datetime:
    """``value`` at the resolution a parameter of format ``fmt`` can express."""
    if fmt == "unix":
        return value.replace(microsecond=0)
    if fmt == "unix_ms":
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def format_time(value: dt.datetime, fmt: TimeFormat) -> str:
    """A query parameter's text for a time: ``2024-05-01T12:00:00Z``, Unix seconds or ms."""
    value = value.astimezone(dt.UTC)
    if fmt == "unix":
        return str(int(value.timestamp()))
    if fmt == "unix_ms":
        return str(int(value.timestamp()) * 1000 + value.microsecond // 1000)
    text = value.replace(tzinfo=None).isoformat(
        timespec="microseconds" if value.microsecond else "seconds"
    )
    return text + "Z"


@dataclass(frozen=True)
class Record:
    """One record to write: the provider's JSON and when it last changed."""

    data: dict[str, Any]
    key: Any
    changed_at: dt.datetime


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _convert(value: Any, spec: FieldSpec) -> Any:
    kind = spec.type
    if value is None:
        return None
    if kind in (FieldType.JSON, FieldType.ARRAY):
        return _json_text(value)
    if kind is FieldType.STRING:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return _json_text(value)
        return str(value)
    if kind is FieldType.INTEGER:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if kind is FieldType.NUMBER:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        return decimal.Decimal(str(value))
    if kind is FieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if value in (0, 1):
            return bool(value)
        raise ValueError(f"{value!r} is not a boolean")
    if kind in (FieldType.TIMESTAMP, FieldType.DATETIME_TZ):
        return parse_time(value, spec.format)
    if kind is FieldType.DATETIME_NTZ:
        parsed = parse_time(value, spec.format)
        return parsed.replace(tzinfo=None) if parsed else None
    if kind is FieldType.DATE:
        if isinstance(value, str) and len(value.strip()) == 10:
            return dt.date.fromisoformat(value.strip())
        parsed = parse_time(value, spec.format)
        return parsed.date() if parsed else None
    if kind is FieldType.TIME_NTZ:
        return dt.time.fromisoformat(str(value))
    return str(value)  # TIME_TZ is kept as text


def _arrow_array(values: list[Any], kind: FieldType) -> pa.Array:
    if kind is FieldType.NUMBER:
        if all(v is None for v in values):
            return pa.nulls(len(values))
        return pa.array(values)
    return pa.array(values, type=field_types.arrow_type(kind))


class CollectionTable:
    """The destination table of one collection of one sync, and its rows."""

    def __init__(self, collection_id: str, collection: RestCollection, sync: Sync) -> None:
        self.collection_id = collection_id
        self.name = collection_id.partition(":")[2]
        self.collection = collection
        self.specs = collection.field_specs()
        self.key_column = collection.primary_key.rsplit(".", 1)[-1]
        self.cursor_column = collection.cursor_name
        now = dt.datetime.now(dt.UTC)
        self.object = SyncObject(
            id=0,
            organization_id=sync.organization_id,
            display_name=f"{sync.display_name}: {collection_id}",
            destination_id=sync.destination_id,
            target_type="single_existing",
            namespace=sync.namespace or collection_id.partition(":")[0],
            table_name=collection.table_name or self.name,
            end_customer_id_field=END_CUSTOMER_COLUMN,
            sync_mode=SyncMode.INCREMENTAL_UPDATE,
            cursor_field=self.cursor_column,
            primary_key=self.key_column,
            frequency=None,
            frequency_units=None,
            object_fields=[
                *(
                    ObjectField(name=name, type=spec.type, optional=name != self.key_column)
                    for name, spec in self.specs.items()
                ),
                ObjectField(name=RAW_COLUMN, type=FieldType.JSON, optional=True),
            ],
            created_at=now,
            updated_at=now,
        )
        self.plan: SyncPlan = plan_sync(sync, self.object)

    @property
    def label(self) -> str:
        """``namespace.table`` of the destination."""
        return self.plan.destination_label

    def _data_error(self, message: str) -> ProviderDataError:
        provider = self.collection_id.partition(":")[0]
        return ProviderDataError(f"{self.collection_id}: {message}", provider=provider)

    def key_of(self, data: dict[str, Any]) -> Any:
        """A record's primary key, typed like its column.

        Raises:
            ProviderDataError: the record has no primary key.
        """
        value = value_at(data, self.collection.primary_key)
        if value is None:
            raise self._data_error(f"a record has no primary key {self.collection.primary_key!r}")
        try:
            return _convert(value, self.specs[self.key_column])
        except (ValueError, TypeError, ArithmeticError) as error:
            raise self._data_error(f"primary key {value!r} does not fit: {error}") from None

    def changed_at(self, data: dict[str, Any], key: Any) -> dt.datetime:
        """When a record last changed, from its updated-at field.

        Raises:
            ProviderDataError: the field is missing or not a timestamp.
        """
        value = value_at(data, self.collection.updated_at)
        try:
            parsed = parse_time(value, self.collection.updated_at_format)
        except (ValueError, TypeError, OverflowError) as error:
            raise self._data_error(
                f"record {key!r} has {self.collection.updated_at} = {value!r}: {error}"
            ) from None
        if parsed is None:
            raise self._data_error(f"record {key!r} has no {self.collection.updated_at!r}")
        return parsed

    def record(self, data: dict[str, Any], changed_at: dt.datetime | None = None) -> Record:
        """A record to write (``changed_at`` defaults to its updated-at field)."""
        key = self.key_of(data)
        return Record(data, key, changed_at or self.changed_at(data, key))

    def batch(self, records: Sequence[Record]) -> pa.RecordBatch:
        """Destination rows of records, end customer column first, as the engine maps them.

        Raises:
            ProviderDataError: a value does not fit its column's type (names record and field).
        """
        arrays: list[pa.Array] = []
        names: list[str] = []
        for name, spec in self.specs.items():
            if name == self.cursor_column:
                values: list[Any] = [r.changed_at for r in records]
            elif name == self.key_column:
                values = [r.key for r in records]
            else:
                path = spec.path or name
                values = []
                for r in records:
                    raw = value_at(r.data, path)
                    try:
                        values.append(_convert(raw, spec))
                    except (ValueError, TypeError, ArithmeticError, OverflowError) as error:
                        raise self._data_error(
                            f"record {r.key!r}: {path} = {raw!r} is not {spec.type.value}: {error}"
                        ) from None
            arrays.append(_arrow_array(values, spec.type))
            names.append(name)
        arrays.append(pa.array([_json_text(r.data) for r in records], type=pa.string()))
        names.append(RAW_COLUMN)
        return map_batch(pa.RecordBatch.from_arrays(arrays, names=names), self.plan)
