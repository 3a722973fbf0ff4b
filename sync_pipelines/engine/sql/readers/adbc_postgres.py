"""PostgreSQL through ADBC: the binary COPY protocol straight into Arrow, and the conversions
that turn its columns into exact values or PostgreSQL's canonical text."""

from __future__ import annotations

import ipaddress
import struct
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from sync_pipelines.engine import field_types
from sync_pipelines.engine.sql.readers.page_session import PageSession
from sync_pipelines.engine.sql.readers.sqlalchemy_rows import positional

__all__ = ["available", "batches"]


_MONEY_SCALE = 2
"""Fractional digits of PostgreSQL's ``money`` (``lc_monetary``'s; 2 for nearly every locale)."""


class _UnreadableType(Exception):
    """The ADBC reader hands a PostgreSQL type as its binary wire form, which is not decoded."""


def _pg_type(field: pa.Field) -> str:
    metadata = field.metadata or {}
    name = metadata.get(b"ADBC:postgresql:typname") or metadata.get(b"POSTGRESQL:type")
    return (name or b"").decode()


def _pg_numeric(array: pa.Array, typmod: int) -> pa.Array:
    """PostgreSQL numeric text as exact decimals: ``numeric(p, s)`` as ``decimal(p, s)``.

    NaN and infinities stay text (no decimal holds them; a number field then refuses them).
    """
    text = array.cast(pa.string())
    finite = pc.match_substring_regex(text, r"^-?[0-9]+(\.[0-9]+)?$")
    if not pc.all(pc.or_kleene(finite, pc.is_null(text))).as_py():
        return text
    if typmod >= 4 and ((typmod - 4) >> 16) & 0xFFFF <= 76:
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        kind = pa.decimal128 if precision <= 38 else pa.decimal256
        return text.cast(kind(precision, scale))
    return field_types.decimal_from_text(text)


def _inet_text(wire: bytes, *, cidr: bool) -> str:
    """inet/cidr's binary form (family, bits, is_cidr, length, address) as PostgreSQL's text."""
    family, bits, _, _ = wire[:4]
    address = ipaddress.ip_address(wire[4:])
    full = 32 if family == 2 else 128
    return str(address) if bits == full and not cidr else f"{address}/{bits}"


def _timetz_text(wire: bytes) -> str:
    """timetz's binary form (microseconds, zone in seconds west of UTC) as PostgreSQL's text
    (``12:34:56.789+05:30``, ``00:00:00-08``)."""
    micros, zone = struct.unpack("!qi", wire)
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    if fraction:
        text += f".{fraction:06d}".rstrip("0")
    offset_minutes, offset_seconds = divmod(abs(zone), 60)
    offset_hours, offset_minute = divmod(offset_minutes, 60)
    text += f"{'+' if zone <= 0 else '-'}{offset_hours:02d}"
    if offset_minute or offset_seconds:
        text += f":{offset_minute:02d}"
    return text + (f":{offset_seconds:02d}" if offset_seconds else "")


_PG_WIRE_TEXT: dict[str, Callable[[bytes], str]] = {
    "inet": lambda wire: _inet_text(wire, cidr=False),
    "cidr": lambda wire: _inet_text(wire, cidr=True),
    "macaddr": lambda wire: ":".join(f"{b:02x}" for b in wire),
    "macaddr8": lambda wire: ":".join(f"{b:02x}" for b in wire),
    "timetz": _timetz_text,
}


def _pg_column(field: pa.Field, array: pa.Array) -> pa.Array:
    """One ADBC column as values or canonical text, never as wire bytes."""
    kind = _pg_type(field)
    if isinstance(array.type, pa.BaseExtensionType):
        storage = array.storage
        if kind == "numeric":
            typmod = int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1"))
            return _pg_numeric(storage, typmod)
        if kind == "uuid" or isinstance(array.type, pa.UuidType):
            return pa.array(
                [None if v is None else str(uuid.UUID(bytes=v)) for v in storage.to_pylist()],
                pa.string(),
            )
        if pa.types.is_string(storage.type) or pa.types.is_large_string(storage.type):
            return storage  # json, jsonb: their text
        decode = _PG_WIRE_TEXT.get(kind)
        if decode is None:
            raise _UnreadableType(f"column {field.name!r} has type {kind}")
        return pa.array(
            [None if v is None else decode(v) for v in storage.to_pylist()], pa.string()
        )
    if kind == "money":  # cents as int64
        cents = array.cast(pa.int64())
        return pa.Array.from_buffers(
            pa.decimal128(19, _MONEY_SCALE), len(cents), cents.cast(pa.decimal128(19, 0)).buffers()
        )
    return array


def _pg_values(batch: pa.RecordBatch) -> pa.RecordBatch:
    """An ADBC PostgreSQL batch with exact values: see :func:`_pg_column`."""
    arrays = [
        _pg_column(field, column) for field, column in zip(batch.schema, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def batches(session: PageSession, query: sa.Select, batch_size: int) -> Iterator[pa.RecordBatch]:
    """PostgreSQL through ADBC: the binary COPY protocol straight into Arrow."""
    sql, params = positional(session.engine, query, paramstyle="numeric_dollar")
    with session.page(session.connection(_connect)) as cursor:
        # a source is only read (custom_join too); the page is its own transaction
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        cursor.execute(sql, params or None)
        for batch in cursor.fetch_record_batch():
            if batch.num_rows:
                yield _pg_values(batch)
        cursor.execute("COMMIT")


def _connect(engine: sa.Engine) -> Any:
    """An ADBC PostgreSQL connection in autocommit mode."""
    import adbc_driver_postgresql.dbapi as adbc_postgres

    return adbc_postgres.connect(_libpq_uri(engine.url), autocommit=True)


def _libpq_uri(url: sa.URL) -> str:
    """The URL as libpq reads it: its query (``options``, ``sslmode``...) percent-encoded."""
    base = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    query = urlencode(url.query, doseq=True, quote_via=quote)
    return f"{base}?{query}" if query else base


def available(engine: sa.Engine) -> bool:
    if engine.dialect.driver not in ("psycopg", "psycopg2"):
        return False
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        return False
    return True
