"""The read passes: the keyset read of a run, the NULL-cursor pass and the backfill's key
chunks, each a stream of Arrow batches of ``batch_size`` rows read on one page session through
the dialect's fast reader (:mod:`sync_pipelines.engine.sql.readers`).

The queries are looked up on :mod:`~sync_pipelines.engine.sql.keyset` at each call, so that
tests can observe them there.
"""

from __future__ import annotations

import contextlib
import decimal
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
from sync_pipelines.engine.errors import SourceSchemaError
from sync_pipelines.engine.sql import keyset, readers
from sync_pipelines.engine.sql.keyset import Keyset, ReadBounds
from sync_pipelines.engine.sql.readers import FastReader, PageSession, TypeChanged
from sync_pipelines.engine.sql.readers.sqlalchemy_rows import sqlalchemy_batches
from sync_pipelines.engine.sql.relation import SourceRelation

__all__ = [
    "last_value",
    "read_backfill_batches",
    "read_batches",
    "read_null_cursor_batches",
]

logger = logging.getLogger("sync_pipelines.engine")


def read_batches(
    engine: sa.Engine,
    relation: SourceRelation,
    columns: Sequence[str],
    *,
    cursor: str | None,
    primary_key: str | None,
    bounds: ReadBounds,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[pa.RecordBatch]:
    """Stream the source rows after ``bounds`` as Arrow record batches of ``batch_size`` rows.

    A fast reader whose column types change mid-stream (SQLite's dynamic typing) hands over to
    the generic reader, which continues strictly after the last row it yielded.
    """
    query = keyset.keyset_query(
        relation, columns, cursor=cursor, primary_key=primary_key, bounds=bounds
    )
    fast = readers.fast_reader(engine)
    if fast is None:
        yield from sqlalchemy_batches(engine, query, batch_size)
        return
    if not fast.types_may_change:
        with PageSession(engine) as session:
            yield from _rebatch(_fast_batches(fast, session, query, batch_size), batch_size)
        return
    last: Keyset | None = None
    yielded = 0
    try:
        with PageSession(engine) as session:
            for batch in fast.batches(session, query, batch_size):
                if cursor is not None and batch.num_rows:
                    last = Keyset(
                        batch.column(columns.index(cursor))[-1].as_py(),
                        None
                        if primary_key is None
                        else batch.column(columns.index(primary_key))[-1].as_py(),
                    )
                yielded += 1
                yield batch
        return
    except TypeChanged as error:
        if yielded and cursor is None:
            raise SourceSchemaError(f"SQLite column types vary: {error}") from None
        logger.info("SQLite column types vary (%s); reading on without ADBC", error)
    resumed = bounds if last is None else ReadBounds(after=last, from_cursor=bounds.from_cursor)
    query = keyset.keyset_query(
        relation, columns, cursor=cursor, primary_key=primary_key, bounds=resumed
    )
    yield from sqlalchemy_batches(engine, query, batch_size)


def read_null_cursor_batches(
    engine: sa.Engine,
    relation: SourceRelation,
    columns: Sequence[str],
    *,
    cursor: str,
    primary_key: str | None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[pa.RecordBatch]:
    """The rows whose cursor is NULL, ordered by the primary key, one page of ``batch_size``
    rows per query after the last key read (all in one query without a primary key), all on
    one connection (:class:`PageSession`)."""
    after: Any = None
    with PageSession(engine) as session:
        while True:
            query = keyset.null_cursor_query(
                relation,
                columns,
                cursor=cursor,
                primary_key=primary_key,
                after_key=after,
                limit=None if primary_key is None else batch_size,
            )
            rows = 0
            with _closed_after(
                _rebatch(_page_batches(session, query, batch_size), batch_size)
            ) as page:
                for batch in page:
                    rows += batch.num_rows
                    if primary_key is not None:
                        after = last_value(batch.column(columns.index(primary_key)))
                    yield batch
            if primary_key is None or rows < batch_size:
                return


def read_backfill_batches(
    engine: sa.Engine,
    relation: SourceRelation,
    columns: Sequence[str],
    *,
    cursor: str,
    primary_key: str,
    after_key: Any,
    include_null_cursor: bool,
    from_cursor: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    upto_key: Any = None,
) -> Iterator[pa.RecordBatch]:
    """The source rows after ``after_key`` (up to ``upto_key``, included) in key order, one
    chunk of ``batch_size`` rows per query (:func:`.keyset.backfill_query`), each chunk
    starting after the last key read, all on one connection (:class:`PageSession`)."""
    with PageSession(engine) as session:
        while True:
            query = keyset.backfill_query(
                relation,
                columns,
                cursor=cursor,
                primary_key=primary_key,
                after_key=after_key,
                limit=batch_size,
                include_null_cursor=include_null_cursor,
                from_cursor=from_cursor,
                upto_key=upto_key,
            )
            rows = 0
            with _closed_after(
                _rebatch(_page_batches(session, query, batch_size), batch_size)
            ) as page:
                for batch in page:
                    rows += batch.num_rows
                    after_key = last_value(batch.column(columns.index(primary_key)))
                    yield batch
            if rows < batch_size:
                return


def _page_batches(
    session: PageSession, query: sa.Select, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """One query's batches through the fastest reader of the dialect, on the pass's session."""
    fast = readers.fast_reader(session.engine)
    if fast is None:
        yield from sqlalchemy_batches(session.engine, query, batch_size)
    else:
        yield from _fast_batches(fast, session, query, batch_size)


def _fast_batches(
    fast: FastReader, session: PageSession, query: sa.Select, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """The fast reader's batches, or the generic reader's when it fails before its first batch
    (for a fast reader that falls back)."""
    batches = fast.batches(session, query, batch_size)
    if not fast.falls_back:
        return batches
    engine = session.engine
    return _resumable(batches, lambda: sqlalchemy_batches(engine, query, batch_size))


def last_value(column: pa.Array) -> Any:
    """The last value of a column, as the source compares it."""
    if isinstance(column.type, pa.BaseExtensionType):
        value = column.storage[-1].as_py()
        # ADBC reads PostgreSQL numeric as opaque text: bind it back as a number
        if isinstance(value, str) and "numeric" in str(column.type):
            return decimal.Decimal(value)
        return value
    return column[-1].as_py()


def _resumable(
    fast: Iterator[pa.RecordBatch], fallback: Callable[[], Iterator[pa.RecordBatch]]
) -> Iterator[pa.RecordBatch]:
    """The fast reader, or the fallback when the fast one fails before its first batch."""
    with _closed_after(fast):
        try:
            first = next(fast)
        except StopIteration:
            return
        except Exception as error:  # noqa: BLE001 - e.g. a type ADBC cannot read
            logger.info("reading with ADBC failed (%s); reading through SQLAlchemy", error)
            yield from fallback()
            return
        yield first
        yield from fast


@contextlib.contextmanager
def _closed_after(batches: Iterator[Any]) -> Iterator[Iterator[Any]]:
    """``batches``, closed (when it can be: a generator) as the block ends, however it ends:
    a reader is closed before the session it reads on."""
    try:
        yield batches
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _rebatch(batches: Iterator[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``batch_size`` rows (the last one smaller), whatever the reader gives.

    Closing it closes ``batches``."""
    pending: list[pa.RecordBatch] = []
    held = 0
    with _closed_after(batches):
        for batch in batches:
            if not pending and batch.num_rows == batch_size:
                yield batch
                continue
            pending.append(batch)
            held += batch.num_rows
            while held >= batch_size:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, batch_size).combine_chunks().to_batches()[0]
                rest = table.slice(batch_size)
                pending = [b for b in rest.combine_chunks().to_batches() if b.num_rows]
                held = rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
