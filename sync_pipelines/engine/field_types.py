"""Object field types as Arrow types, destination column types, and exact conversions.

Each :class:`FieldType` has one Arrow type that batches are converted to before writing
(microsecond timestamps in UTC, decimals kept exact, JSON as text) and one column type per
destination dialect.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from sync_pipelines.models import FieldType

__all__ = [
    "arrow_type",
    "cast_column",
    "column_type",
    "column_type_for_arrow",
    "compatible",
    "orderable_arrow_type",
    "orderable_sql_type",
]

_TZ_TYPES = (FieldType.TIMESTAMP, FieldType.DATETIME_TZ)
_JSON_TYPES = (FieldType.JSON, FieldType.ARRAY)
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
NAIVE_TIMESTAMP = pa.timestamp("us")
# exact decimals where a dialect needs a fixed precision (PostgreSQL's NUMERIC is unbounded)
DECIMAL_PRECISION, DECIMAL_SCALE = 38, 9
KEY_STRING_LENGTH = 255


def arrow_type(field_type: FieldType) -> pa.DataType | None:
    """The Arrow type a field's values are converted to (``None``: numbers keep their type)."""
    return {
        FieldType.STRING: pa.string(),
        FieldType.INTEGER: pa.int64(),
        FieldType.NUMBER: None,
        FieldType.BOOLEAN: pa.bool_(),
        FieldType.TIMESTAMP: UTC_TIMESTAMP,
        FieldType.DATETIME_TZ: UTC_TIMESTAMP,
        FieldType.DATETIME_NTZ: NAIVE_TIMESTAMP,
        FieldType.DATE: pa.date32(),
        FieldType.TIME_NTZ: pa.time64("us"),
        FieldType.TIME_TZ: pa.string(),
        FieldType.JSON: pa.string(),
        FieldType.ARRAY: pa.string(),
    }[field_type]


def column_type(field_type: FieldType, dialect: str, *, key: bool = False) -> sa.types.TypeEngine:
    """The destination column type of a field on a dialect (``key``: part of the primary key)."""
    textual = field_type is FieldType.STRING
    if textual or field_type is FieldType.TIME_TZ and dialect != "postgresql":
        if key or dialect == "mysql" and not textual:
            return sa.String(KEY_STRING_LENGTH)
        return mysql.LONGTEXT() if dialect == "mysql" else sa.Text()
    if field_type is FieldType.INTEGER:
        return sa.BigInteger()
    if field_type is FieldType.NUMBER:
        if dialect in ("postgresql", "sqlite"):
            return sa.Numeric()
        return sa.Numeric(DECIMAL_PRECISION, DECIMAL_SCALE)
    if field_type is FieldType.BOOLEAN:
        return sa.Boolean()
    if field_type in _TZ_TYPES or field_type is FieldType.DATETIME_NTZ:
        if dialect == "mysql":
            return mysql.DATETIME(fsp=6)
        return sa.DateTime(timezone=field_type in _TZ_TYPES)
    if field_type is FieldType.DATE:
        return sa.Date()
    if field_type is FieldType.TIME_NTZ:
        return mysql.TIME(fsp=6) if dialect == "mysql" else sa.Time()
    if field_type is FieldType.TIME_TZ:  # postgresql
        return sa.Time(timezone=True)
    if field_type in _JSON_TYPES:
        if dialect == "postgresql":
            return postgresql.JSONB()
        if dialect == "sqlite":
            return sa.Text()
        return sa.JSON()
    raise ValueError(f"unknown field type {field_type!r}")


def column_type_for_arrow(
    data_type: pa.DataType, dialect: str, *, key: bool = False
) -> sa.types.TypeEngine:
    """A destination column type for a column written as read (the object declares no fields)."""
    if pa.types.is_boolean(data_type):
        return column_type(FieldType.BOOLEAN, dialect)
    if pa.types.is_integer(data_type):
        return column_type(FieldType.INTEGER, dialect)
    if pa.types.is_floating(data_type):
        return sa.Float(53) if dialect != "mysql" else mysql.DOUBLE()
    if pa.types.is_decimal(data_type):
        return column_type(FieldType.NUMBER, dialect)
    if pa.types.is_timestamp(data_type):
        tz = FieldType.TIMESTAMP if data_type.tz else FieldType.DATETIME_NTZ
        return column_type(tz, dialect)
    if pa.types.is_date(data_type):
        return column_type(FieldType.DATE, dialect)
    if pa.types.is_time(data_type):
        return column_type(FieldType.TIME_NTZ, dialect)
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return sa.LargeBinary()
    if pa.types.is_struct(data_type) or pa.types.is_list(data_type):
        return column_type(FieldType.JSON, dialect)
    return column_type(FieldType.STRING, dialect, key=key)


def field_type_for_arrow(data_type: pa.DataType) -> FieldType | None:
    """The field type a column written as read is closest to (``None``: keep as read)."""
    if pa.types.is_timestamp(data_type):
        return FieldType.TIMESTAMP if data_type.tz else FieldType.DATETIME_NTZ
    if pa.types.is_struct(data_type) or pa.types.is_list(data_type):
        return FieldType.JSON
    return None


# --- conversions ---------------------------------------------------------------------------


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _parse_timestamps(array: pa.Array, *, aware: bool) -> pa.Array:
    """ISO-8601 strings to microsecond timestamps; strings without offset are UTC."""
    array = array.cast(pa.string())
    try:
        naive = pc.cast(array, NAIVE_TIMESTAMP)
        return pc.assume_timezone(naive, "UTC") if aware else naive
    except pa.ArrowInvalid:
        pass
    try:
        parsed = pc.cast(array, UTC_TIMESTAMP)
        return parsed if aware else parsed.cast(NAIVE_TIMESTAMP)
    except pa.ArrowInvalid:
        pass
    values = []
    for text in array.to_pylist():
        if text is None:
            values.append(None)
            continue
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        values.append(value)
    parsed = pa.array(values, type=UTC_TIMESTAMP)
    return parsed if aware else parsed.cast(NAIVE_TIMESTAMP)


def _to_timestamp(array: pa.Array, *, aware: bool) -> pa.Array:
    data_type = array.type
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return _parse_timestamps(array, aware=aware)
    if pa.types.is_timestamp(data_type):
        if data_type.tz is None and aware:
            return pc.assume_timezone(array.cast(pa.timestamp(data_type.unit)), "UTC").cast(
                UTC_TIMESTAMP
            )
        if data_type.tz is not None and not aware:
            # the instant in UTC, as wall-clock time
            return array.cast(UTC_TIMESTAMP).cast(NAIVE_TIMESTAMP)
        return array.cast(UTC_TIMESTAMP if aware else NAIVE_TIMESTAMP)
    if pa.types.is_date(data_type):
        naive = array.cast(NAIVE_TIMESTAMP)
        return pc.assume_timezone(naive, "UTC") if aware else naive
    return array.cast(UTC_TIMESTAMP if aware else NAIVE_TIMESTAMP)


def _to_number(array: pa.Array) -> pa.Array:
    data_type = array.type
    if pa.types.is_decimal(data_type) or pa.types.is_integer(data_type):
        return array
    if pa.types.is_floating(data_type):
        # the shortest decimal that reads back as the same float: 0.1, not 0.1000000000000000055
        try:
            return pc.cast(
                pc.cast(array, pa.string()), pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return array
    if pa.types.is_null(data_type):
        return array.cast(pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE))
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        try:
            return pc.cast(array, pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # more digits than the fixed scale: keep them all
    values = [None if v is None else decimal.Decimal(str(v).strip()) for v in array.to_pylist()]
    return pa.array(values)


def _to_json_text(array: pa.Array) -> pa.Array:
    data_type = array.type
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return array.cast(pa.string())
    if pa.types.is_null(data_type):
        return array.cast(pa.string())
    return pa.array([_json_text(v) for v in array.to_pylist()], type=pa.string())


def _to_string(array: pa.Array) -> pa.Array:
    data_type = array.type
    if pa.types.is_struct(data_type) or pa.types.is_list(data_type):
        return _to_json_text(array)
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return pa.array(
            [None if v is None else v.decode("utf-8") for v in array.to_pylist()], pa.string()
        )
    return array.cast(pa.string())


def _to_time(array: pa.Array) -> pa.Array:
    data_type = array.type
    if pa.types.is_time(data_type):
        return array.cast(pa.time64("us"))
    if pa.types.is_duration(data_type):  # MySQL TIME arrives as timedelta
        return array.cast(pa.duration("us")).cast(pa.int64()).cast(pa.time64("us"))
    values = [
        None if v is None else dt.time.fromisoformat(str(v)) for v in array.to_pylist()
    ]
    return pa.array(values, type=pa.time64("us"))


def _to_time_tz(array: pa.Array) -> pa.Array:
    data_type = array.type
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return array.cast(pa.string())
    return pa.array(
        [None if v is None else v.isoformat() for v in array.to_pylist()], type=pa.string()
    )


def _to_date(array: pa.Array) -> pa.Array:
    data_type = array.type
    if pa.types.is_timestamp(data_type):
        if data_type.tz is not None:
            array = array.cast(UTC_TIMESTAMP).cast(NAIVE_TIMESTAMP)
        return array.cast(pa.date32())
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        try:
            return array.cast(pa.date32())
        except pa.ArrowInvalid:
            return _parse_timestamps(array, aware=False).cast(pa.date32())
    return array.cast(pa.date32())


def _to_boolean(array: pa.Array) -> pa.Array:
    data_type = array.type
    if pa.types.is_decimal(data_type):
        array = array.cast(pa.int64())
    return array.cast(pa.bool_())


def cast_column(array: pa.Array | pa.ChunkedArray, field_type: FieldType | None) -> pa.Array:
    """Convert read values to a field type exactly (``None``: JSON-like values to text only).

    Raises:
        pyarrow.ArrowInvalid / ValueError / TypeError: a value does not fit the type.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage  # e.g. ADBC's PostgreSQL numeric: opaque text
    if field_type is None:
        data_type = array.type
        if pa.types.is_struct(data_type) or pa.types.is_list(data_type):
            return _to_json_text(array)
        if pa.types.is_large_string(data_type):
            return array.cast(pa.string())
        return array
    if field_type in _TZ_TYPES:
        return _to_timestamp(array, aware=True)
    if field_type is FieldType.DATETIME_NTZ:
        return _to_timestamp(array, aware=False)
    if field_type is FieldType.NUMBER:
        return _to_number(array)
    if field_type in _JSON_TYPES:
        return _to_json_text(array)
    if field_type is FieldType.STRING:
        return _to_string(array)
    if field_type is FieldType.DATE:
        return _to_date(array)
    if field_type is FieldType.TIME_NTZ:
        return _to_time(array)
    if field_type is FieldType.TIME_TZ:
        return _to_time_tz(array)
    if field_type is FieldType.BOOLEAN:
        return _to_boolean(array)
    if field_type is FieldType.INTEGER and (
        pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
    ):
        return array.cast(pa.int64())
    return array.cast(pa.int64())


# --- compatibility of existing columns -------------------------------------------------------

_CATEGORIES: tuple[tuple[type[sa.types.TypeEngine], str], ...] = (
    (sa.Boolean, "boolean"),
    (sa.Integer, "integer"),
    (sa.Numeric, "number"),  # Float is a Numeric
    (sa.DateTime, "datetime"),
    (sa.Date, "date"),
    (sa.Time, "time"),
    (sa.JSON, "json"),
    (sa.String, "string"),  # Text, Enum, ...
    (sa.LargeBinary, "binary"),
)
_ACCEPTS: dict[FieldType, set[str]] = {
    FieldType.STRING: {"string", "json"},
    FieldType.INTEGER: {"integer", "number"},
    FieldType.NUMBER: {"number"},
    FieldType.BOOLEAN: {"boolean", "integer"},
    FieldType.TIMESTAMP: {"datetime", "string"},
    FieldType.DATETIME_TZ: {"datetime", "string"},
    FieldType.DATETIME_NTZ: {"datetime", "string"},
    FieldType.DATE: {"date", "datetime", "string"},
    FieldType.TIME_NTZ: {"time", "string"},
    FieldType.TIME_TZ: {"time", "string"},
    FieldType.JSON: {"json", "string"},
    FieldType.ARRAY: {"json", "string"},
}


def _category(sql_type: sa.types.TypeEngine) -> str | None:
    for kind, name in _CATEGORIES:
        if isinstance(sql_type, kind):
            return name
    name = type(sql_type).__name__.upper()
    if "JSON" in name:
        return "json"
    if "TIMESTAMP" in name or "DATETIME" in name:
        return "datetime"
    return None


def compatible(field_type: FieldType, existing: sa.types.TypeEngine) -> bool:
    """Whether values of a field type can be written into an existing column type."""
    category = _category(existing)
    return category is None or category in _ACCEPTS[field_type]


def orderable_sql_type(sql_type: sa.types.TypeEngine) -> bool:
    """Whether a reflected column type can order a cursor."""
    category = _category(sql_type)
    return category not in ("boolean", "json", "binary") and not isinstance(
        sql_type, sa.ARRAY
    )


def orderable_arrow_type(data_type: pa.DataType) -> bool:
    """Whether values of an Arrow type can order a cursor."""
    return not (
        pa.types.is_boolean(data_type)
        or pa.types.is_struct(data_type)
        or pa.types.is_list(data_type)
        or pa.types.is_large_list(data_type)
        or pa.types.is_map(data_type)
        or pa.types.is_binary(data_type)
        or pa.types.is_large_binary(data_type)
    )
