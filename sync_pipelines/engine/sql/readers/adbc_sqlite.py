"""SQLite through ADBC: Arrow batches straight from the file, no Python per row."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import sqlalchemy as sa

from sync_pipelines.engine.sql.readers.page_session import PageSession
from sync_pipelines.engine.sql.readers.sqlalchemy_rows import positional

__all__ = ["TypeChanged", "available", "batches"]


def _sqlite_parameter(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


class TypeChanged(Exception):
    """A fast reader met a value whose type differs from the column's first batch."""


def batches(session: PageSession, query: sa.Select, batch_size: int) -> Iterator[pa.RecordBatch]:
    """SQLite through ADBC: Arrow batches straight from the file, no Python per row."""
    sql, params = positional(session.engine, query)
    with session.page(session.connection(_connect)) as cursor:
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_size)})
        cursor.execute(sql, [_sqlite_parameter(p) for p in params] or None)
        reader = cursor.fetch_record_batch()
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (OSError, pa.ArrowInvalid) as error:
                if "Type mismatch" in str(error):
                    raise TypeChanged(str(error)) from error
                raise
            if batch.num_rows:
                yield batch


def _connect(engine: sa.Engine) -> Any:
    """An ADBC SQLite connection: read-only, a missing file is an error, never created."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    uri = f"file:{quote(str(Path(engine.url.database).absolute()))}?mode=ro"
    return adbc_sqlite.connect(uri, autocommit=True)


def available(engine: sa.Engine) -> bool:
    database = engine.url.database
    if not database or database == ":memory:" or engine.url.query:
        return False
    try:
        import adbc_driver_sqlite.dbapi  # noqa: F401
    except ImportError:
        return False
    return True
