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

from sync_pipelines.contract.models import FieldType

__all__ = [
    "ExactDecimalText",
    "arrow_type",
    "cast_column",
    "column_type",
    "column_type_for_arrow",
    "compatible",
    "decimal_array",
    "decimal_from_text",
    "fit_numbers",
    "orderable_arrow_type",
    "orderable_sql_type",
    "widened_type",
]

_TZ_TYPES = (FieldType.TIMESTAMP, FieldType.DATETIME_TZ)
_JSON_TYPES = (FieldType.JSON, FieldType.ARRAY)
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
NAIVE_TIMESTAMP = pa.timestamp("us")
# exact decimals where a dialect needs a fixed precision (PostgreSQL's NUMERIC is unbounded):
# the column starts at (precision, scale) and widens to what the data needs, up to the maxima
DECIMAL_PRECISION, DECIMAL_SCALE = 38, 9
_DECIMAL_LIMITS = {"duckdb": (38, 38), "mysql": (65, 30)}
"""The largest ``(precision, scale)`` of a dialect's DECIMAL."""
_DECIMAL_START = {"duckdb": (38, 9), "mysql": (65, 30)}
KEY_STRING_LENGTH = 255


class _DecimalTextDDL(sa.types.UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "DECIMAL_TEXT"


class ExactDecimalText(sa.types.TypeDecorator):
    """SQLite's exact decimal: the number's text in a column of TEXT affinity (``DECIMAL_TEXT``).

    SQLite's NUMERIC keeps 15 significant digits; the text keeps them all and still takes part
    in SQLite's arithmetic.
    """

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        return dialect.type_descriptor(_DecimalTextDDL())

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        number = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
        return format(number, "f")

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> decimal.Decimal | None:
        return None if value is None else decimal.Decimal(str(value))


def arrow_type(field_type: FieldType) -> pa.DataType | None:
    """The Arrow type a field's values are converted to (``None``: numbers keep their type)."""
    return {
        FieldType.STRING: pa.string(),
        FieldType.INTEGER: pa.int64(),
        FieldType.NUMBER: None,
        FieldType.FLOAT: pa.float64(),
        FieldType.BOOLEAN: pa.bool_(),
        FieldType.TIMESTAMP: UTC_TIMESTAMP,
        FieldType.DATETIME_TZ: UTC_TIMESTAMP,
        FieldType.DATETIME_NTZ: NAIVE_TIMESTAMP,
        FieldType.DATE: pa.date32(),
        FieldType.TIME_NTZ: pa.time64("us"),
        FieldType.TIME_TZ: pa.string(),
        FieldType.JSON: pa.string(),
        FieldType.ARRAY: pa.string(),
        FieldType.BINARY: pa.binary(),
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
        return number_column_type(dialect, None)
    if field_type is FieldType.FLOAT:
        return sa.Double()
    if field_type is FieldType.BINARY:
        return mysql.LONGBLOB() if dialect == "mysql" else sa.LargeBinary()
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


def _digits(data_type: pa.DataType | None) -> tuple[int, int] | None:
    """``(integer digits, scale)`` that values of an Arrow type may need (``None``: unknown)."""
    if data_type is None:
        return None
    if pa.types.is_decimal(data_type):
        return data_type.precision - data_type.scale, data_type.scale
    if pa.types.is_integer(data_type):
        signed = pa.types.is_signed_integer(data_type)
        return len(str(2 ** (data_type.bit_width - signed))), 0
    return None


def _sized(
    dialect: str, current: tuple[int, int], needed: tuple[int, int] | None
) -> tuple[int, int]:
    """The ``(precision, scale)`` holding both ``current`` and ``needed``, within the limits."""
    precision, scale = current
    if needed is None:
        return current
    max_precision, max_scale = _DECIMAL_LIMITS[dialect]
    new_scale = min(max(scale, needed[1]), max_scale)
    integer = min(max(precision - scale, needed[0]), max_precision - new_scale)
    return integer + new_scale, new_scale


def number_column_type(dialect: str, data_type: pa.DataType | None) -> sa.types.TypeEngine:
    """An exact decimal column for numbers of ``data_type`` (``None``: not known yet).

    PostgreSQL's NUMERIC is unbounded, SQLite's is kept as text (:class:`ExactDecimalText`);
    DuckDB's and MySQL's DECIMAL are sized to the data, up to 38 and 65 digits.
    """
    if dialect == "sqlite":
        return ExactDecimalText()
    if dialect not in _DECIMAL_LIMITS:
        return sa.Numeric()
    return sa.Numeric(*_sized(dialect, _DECIMAL_START[dialect], _digits(data_type)))


def widened_type(
    existing: sa.types.TypeEngine, data_type: pa.DataType | None, dialect: str
) -> sa.types.TypeEngine | None:
    """The wider type an existing column must become to hold values of ``data_type`` exactly
    (an integer column receiving decimals or floats, a decimal one receiving more digits);
    ``None``: it holds them as it is (or the dialect cannot alter a column's type).
    """
    if data_type is None or dialect == "sqlite" or isinstance(existing, sa.Float):
        return None
    decimal_data = pa.types.is_decimal(data_type)
    if isinstance(existing, sa.Integer) and not isinstance(existing, sa.Boolean):
        if pa.types.is_floating(data_type):
            return sa.Double()
        if decimal_data and data_type.scale > 0:
            return number_column_type(dialect, data_type)
        return None
    if not isinstance(existing, sa.Numeric) or existing.precision is None or not decimal_data:
        return None
    current = (existing.precision, existing.scale or 0)
    if dialect not in _DECIMAL_LIMITS:
        needed = _digits(data_type)
        fits = needed is None or (needed[1] <= current[1] and needed[0] <= current[0] - current[1])
        return None if fits else sa.Numeric()
    sized = _sized(dialect, current, _digits(data_type))
    return None if sized == current else sa.Numeric(*sized)


def _decimal_limit(target: sa.types.TypeEngine) -> tuple[int, int] | None:
    if isinstance(target, sa.Float) or not isinstance(target, sa.Numeric):
        return None
    if target.precision is None:
        return None
    return target.precision, target.scale or 0


def fit_numbers(batch: pa.RecordBatch, table: sa.Table, label: str) -> pa.RecordBatch:
    """Numbers cast exactly to the destination's fixed-precision DECIMAL columns.

    Raises:
        DestinationTypeConflictError: a value does not fit its column (named, with the value):
            never rounded.
    """
    from sync_pipelines.engine.errors import DestinationTypeConflictError

    arrays = []
    for name, array in zip(batch.schema.names, batch.columns, strict=True):
        limit = _decimal_limit(table.c[name].type) if name in table.c else None
        numeric = pa.types.is_decimal(array.type) or pa.types.is_integer(array.type)
        textual = pa.types.is_string(array.type)
        if limit is not None and (numeric or textual):
            precision, scale = limit
            target = (pa.decimal128 if precision <= 38 else pa.decimal256)(precision, scale)
            try:
                array = array.cast(target) if array.type != target else array
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                value = _first_misfit(array, precision, scale)
                raise DestinationTypeConflictError(
                    f"column {name!r} of destination table {label} is DECIMAL({precision}, "
                    f"{scale}), which cannot hold the value {value} exactly (at most "
                    f"{precision - scale} digits before and {scale} after the point)"
                ) from None
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _first_misfit(array: pa.Array, precision: int, scale: int) -> str:
    for value in array.to_pylist():
        if value is None:
            continue
        number = decimal.Decimal(str(value))
        if not number.is_finite():
            return str(value)
        sign, digits, exponent = number.normalize().as_tuple()
        needed_scale = max(0, -int(exponent))
        integer = max(0, len(digits) + int(exponent))
        if needed_scale > scale or integer > precision - scale:
            return str(value)
    return "(unknown)"


def column_type_for_arrow(
    data_type: pa.DataType, dialect: str, *, key: bool = False
) -> sa.types.TypeEngine:
    """A destination column type for a column written as read (the object declares no fields)."""
    if pa.types.is_boolean(data_type):
        return column_type(FieldType.BOOLEAN, dialect)
    if pa.types.is_integer(data_type):
        return column_type(FieldType.INTEGER, dialect)
    if pa.types.is_floating(data_type):
        return sa.Double()
    if pa.types.is_decimal(data_type):
        return number_column_type(dialect, data_type)
    if pa.types.is_timestamp(data_type):
        tz = FieldType.TIMESTAMP if data_type.tz else FieldType.DATETIME_NTZ
        return column_type(tz, dialect)
    if pa.types.is_date(data_type):
        return column_type(FieldType.DATE, dialect)
    if pa.types.is_time(data_type):
        return column_type(FieldType.TIME_NTZ, dialect)
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return column_type(FieldType.BINARY, dialect)
    if pa.types.is_struct(data_type) or pa.types.is_list(data_type):
        return column_type(FieldType.JSON, dialect)
    return column_type(FieldType.STRING, dialect, key=key)


def field_type_for_arrow(data_type: pa.DataType) -> FieldType | None:
    """The field type a column written as read is closest to (``None``: keep as read)."""
    if pa.types.is_timestamp(data_type):
        return FieldType.TIMESTAMP if data_type.tz else FieldType.DATETIME_NTZ
    if pa.types.is_struct(data_type) or pa.types.is_list(data_type):
        return FieldType.JSON
    if pa.types.is_decimal(data_type):
        return FieldType.NUMBER
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
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
        # Unix epoch seconds (SQLite keeps timestamps as numbers), to the microsecond
        if pa.types.is_integer(data_type):
            micros = pc.multiply_checked(array.cast(pa.int64()), 1_000_000)
        else:
            micros = pc.round(pc.multiply(array.cast(pa.float64()), 1e6)).cast(pa.int64())
        naive = micros.cast(NAIVE_TIMESTAMP)
        return naive.cast(UTC_TIMESTAMP) if aware else naive
    return array.cast(UTC_TIMESTAMP if aware else NAIVE_TIMESTAMP)


def decimal_array(values: list[Any]) -> pa.Array:
    """Exact decimals as the narrowest Arrow decimal holding them all (text beyond 76 digits).

    Raises:
        ValueError: a value is not a finite number (NaN and infinities have no exact decimal).
    """
    numbers: list[decimal.Decimal | None] = []
    integer = scale = 0
    for value in values:
        if value is None:
            numbers.append(None)
            continue
        if isinstance(value, float):
            value = repr(value)  # the shortest text that reads back as the same double
        number = (
            value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value).strip())
        )
        if not number.is_finite():
            raise ValueError(f"{value} is not a finite number, which an exact decimal cannot hold")
        _, digits, exponent = number.as_tuple()
        scale = max(scale, -int(exponent))
        integer = max(integer, len(digits) + int(exponent))
        numbers.append(number)
    precision = max(1, integer + scale)
    if precision > 76:
        return pa.array([None if n is None else format(n, "f") for n in numbers], pa.string())
    kind = pa.decimal128 if precision <= 38 else pa.decimal256
    return pa.array(numbers, type=kind(precision, scale))


_PLAIN_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"


def decimal_from_text(text: pa.Array, *, plain: bool | None = None) -> pa.Array:
    """Decimal text (``-12.3400``) as exact decimals, without Python per value when every
    value is plain (no exponent): the narrowest Arrow decimal holding them all.

    ``plain``: whether every value is known to be plain, else checked.

    Raises:
        ValueError: a value is not a finite number.
    """
    text = text.cast(pa.string())
    if plain is None:
        plain = pc.all(pc.match_substring_regex(text, _PLAIN_DECIMAL)).as_py()
    if plain:
        dot = pc.find_substring(text, ".")
        length = pc.utf8_length(text)
        whole = pc.equal(dot, -1)
        scale = pc.max(pc.if_else(whole, 0, pc.subtract(pc.subtract(length, dot), 1))).as_py()
        integer = pc.subtract(
            pc.if_else(whole, length, dot), pc.starts_with(text, "-").cast(pa.int32())
        )
        integer = pc.max(integer).as_py()
        if scale is None:  # every value is NULL
            return text.cast(pa.decimal128(1, 0))
        precision = max(1, integer + scale)
        if precision <= 76:
            kind = pa.decimal128 if precision <= 38 else pa.decimal256
            return text.cast(kind(precision, scale))
    return decimal_array(text.to_pylist())


def _to_number(array: pa.Array) -> pa.Array:
    data_type = array.type
    if pa.types.is_decimal(data_type) or pa.types.is_integer(data_type):
        return array
    if pa.types.is_null(data_type):
        return array.cast(pa.decimal128(1, 0))
    if pa.types.is_boolean(data_type):
        raise ValueError("booleans are not numbers")
    if pa.types.is_floating(data_type):
        # the shortest text that reads back as the same double: 0.1, not 0.1000000000000000055
        if not pc.all(pc.or_kleene(pc.is_finite(array), pc.is_null(array))).as_py():
            value = array.filter(pc.invert(pc.is_finite(array)))[0].as_py()
            raise ValueError(f"{value} is not a finite number, which an exact decimal cannot hold")
        text = array.cast(pa.string())  # finite: digits, a point, maybe an exponent
        return decimal_from_text(text, plain=not pc.any(pc.match_substring(text, "e")).as_py())
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return decimal_from_text(pc.utf8_trim_whitespace(array))
    return decimal_array(array.to_pylist())


def _to_float(array: pa.Array) -> pa.Array:
    if pa.types.is_decimal(array.type):
        return pa.array([None if v is None else float(v) for v in array.to_pylist()], pa.float64())
    return array.cast(pa.float64())


def _to_binary(array: pa.Array) -> pa.Array:
    data_type = array.type
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return array.cast(pa.binary())
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return array.cast(pa.string()).cast(pa.binary())
    if pa.types.is_null(data_type):
        return array.cast(pa.binary())
    raise TypeError(f"{data_type} values are not bytes")


def _time_text(micros: int) -> str:
    """A signed time of day or duration as MySQL writes TIME: ``[-]HH:MM:SS[.ffffff]``."""
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    text = f"{sign}{hours:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


def _interval_text(value: Any) -> str:
    """A month-day-nanosecond interval as ISO 8601 (``P1Y2M3DT4H5M6.789S``), each part signed."""
    months, days, nanoseconds = value.months, value.days, value.nanoseconds
    years, months = int(months / 12), months - 12 * int(months / 12)
    micros = int(nanoseconds / 1000)
    sign = -1 if micros < 0 else 1
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    date = "".join(f"{n}{u}" for n, u in ((years, "Y"), (months, "M"), (days, "D")) if n)
    time = "".join(f"{sign * n}{u}" for n, u in ((hours, "H"), (minute, "M")) if n)
    if second or fraction:
        text = f"{second}.{fraction:06d}".rstrip("0").rstrip(".") if fraction else str(second)
        time += f"{'-' if sign < 0 else ''}{text}S"
    if not date and not time:
        return "PT0S"
    return f"P{date}" + (f"T{time}" if time else "")


def _durations_as_text(array: pa.Array) -> pa.Array:
    """Durations (MySQL TIME beyond a day or negative) and intervals as exact text."""
    if pa.types.is_interval(array.type):
        return pa.array(
            [None if v is None else _interval_text(v) for v in array.to_pylist()], pa.string()
        )
    micros = array.cast(pa.duration("us")).cast(pa.int64()).to_pylist()
    return pa.array([None if v is None else _time_text(v) for v in micros], pa.string())


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
    if pa.types.is_duration(data_type) or pa.types.is_interval(data_type):
        return _durations_as_text(array)
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
        micros = array.cast(pa.duration("us")).cast(pa.int64())
        outside = pc.or_(pc.less(micros, 0), pc.greater_equal(micros, 86_400_000_000))
        if pc.any(outside).as_py():
            value = _time_text(micros.filter(outside)[0].as_py())
            raise ValueError(
                f"the TIME value {value} is not a time of day (00:00:00 to 23:59:59.999999); "
                "declare the field as string to keep it as text"
            )
        return micros.cast(pa.time64("us"))
    values = [None if v is None else dt.time.fromisoformat(str(v)) for v in array.to_pylist()]
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
        if pa.types.is_large_binary(data_type):
            return array.cast(pa.binary())
        if pa.types.is_duration(data_type) or pa.types.is_interval(data_type):
            return _durations_as_text(array)
        return array
    if field_type in _TZ_TYPES:
        return _to_timestamp(array, aware=True)
    if field_type is FieldType.DATETIME_NTZ:
        return _to_timestamp(array, aware=False)
    if field_type is FieldType.NUMBER:
        return _to_number(array)
    if field_type is FieldType.FLOAT:
        return _to_float(array)
    if field_type is FieldType.BINARY:
        return _to_binary(array)
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
    FieldType.NUMBER: {"number", "string"},  # text keeps every digit (SQLite's DECIMAL_TEXT)
    FieldType.FLOAT: {"number"},
    FieldType.BINARY: {"binary"},
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
    return category not in ("boolean", "json", "binary") and not isinstance(sql_type, sa.ARRAY)


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
