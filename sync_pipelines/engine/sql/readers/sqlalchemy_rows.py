"""The generic reader, for any dialect: a server-side cursor through SQLAlchemy, rows turned
into Arrow batches (and PostgreSQL's psycopg session set to read what the ADBC reader reads)."""

from __future__ import annotations

import decimal
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

__all__ = ["positional", "sqlalchemy_batches"]


def _to_arrow(values: list[Any]) -> pa.Array:
    """One column of driver values as an Arrow array (JSON-like values as JSON text)."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, dict | list | tuple):
        return pa.array(
            [None if v is None else json.dumps(v, default=str, ensure_ascii=False) for v in values],
            type=pa.string(),
        )
    if isinstance(sample, uuid.UUID):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _rows_to_batch(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.RecordBatch.from_arrays([_to_arrow(list(c)) for c in columns], names=list(names))


class _MoneyLoader:
    """psycopg's loader of ``money`` text in the C locale (``-$1,234.56``) as an exact Decimal."""

    format = 0

    def __init__(self, oid: int, context: Any = None) -> None:
        pass

    def load(self, data: Any) -> decimal.Decimal:
        return decimal.Decimal(bytes(data).decode().replace("$", "").replace(",", ""))


def _exact_postgres_session(connection: sa.Connection) -> None:
    """A psycopg session that reads what the ADBC reader reads: interval as ISO 8601 text,
    money as exact decimals, inet, cidr and timetz as PostgreSQL's text."""
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        return
    from psycopg.types.string import TextLoader

    connection.exec_driver_sql("SET intervalstyle = 'iso_8601'")
    connection.exec_driver_sql("SET lc_monetary = 'C'")
    adapters = connection.connection.driver_connection.adapters
    for name in ("interval", "inet", "cidr", "timetz"):
        adapters.register_loader(name, TextLoader)
    adapters.register_loader("money", _MoneyLoader)


def sqlalchemy_batches(
    engine: sa.Engine, query: sa.Select, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Any dialect: a server-side cursor, ``batch_size`` rows at a time."""
    with engine.connect() as connection:
        _exact_postgres_session(connection)
        result = connection.execution_options(stream_results=True, yield_per=batch_size).execute(
            query
        )
        names = list(result.keys())
        for rows in result.partitions(batch_size):
            yield _rows_to_batch(names, rows)


def positional(
    engine: sa.Engine, query: sa.Select, paramstyle: str = "qmark"
) -> tuple[str, list[Any]]:
    """The query as SQL text with positional placeholders and its parameters, in order."""
    dialect = type(engine.dialect)(paramstyle=paramstyle)
    compiled = query.compile(dialect=dialect)
    params = compiled.params
    return str(compiled), [params[name] for name in compiled.positiontup or ()]
