"""The batch readers: one fast reader per dialect, chosen through a registry, and the generic
SQLAlchemy reader for any dialect (and as the fast readers' fallback).

A fast reader is a module with ``available(engine)`` (its driver is installed and can read this
URL) and ``batches(session, query, batch_size)`` (one query's Arrow batches, on the pass's
:class:`PageSession`). Adding a dialect is one module and one line in :data:`FAST_READERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import sqlalchemy as sa

from sync_pipelines.engine.sql.readers import adbc_postgres, adbc_sqlite, duckdb_arrow
from sync_pipelines.engine.sql.readers.adbc_sqlite import TypeChanged
from sync_pipelines.engine.sql.readers.page_session import PageSession
from sync_pipelines.engine.sql.readers.sqlalchemy_rows import sqlalchemy_batches

__all__ = [
    "FAST_READERS",
    "FastReader",
    "PageSession",
    "TypeChanged",
    "fast_reader",
    "sqlalchemy_batches",
]


@dataclass(frozen=True)
class FastReader:
    """A dialect's fast reader."""

    available: Callable[[sa.Engine], bool]
    batches: Callable[[PageSession, sa.Select, int], Iterator[pa.RecordBatch]]
    falls_back: bool = True
    """A failure before the first batch (e.g. a type it cannot read) hands the query to the
    generic reader."""
    types_may_change: bool = False
    """Column types can change mid-stream (SQLite's dynamic typing): the keyset read then goes
    on through the generic reader strictly after the last row read."""


FAST_READERS: dict[str, FastReader] = {
    "duckdb": FastReader(duckdb_arrow.available, duckdb_arrow.batches, falls_back=False),
    "postgresql": FastReader(adbc_postgres.available, adbc_postgres.batches),
    "sqlite": FastReader(adbc_sqlite.available, adbc_sqlite.batches, types_may_change=True),
}
"""Dialect name -> its fast reader."""


def fast_reader(engine: sa.Engine) -> FastReader | None:
    """The dialect's fast reader, when it has one that can read this engine's URL."""
    reader = FAST_READERS.get(engine.dialect.name)
    return reader if reader is not None and reader.available(engine) else None
