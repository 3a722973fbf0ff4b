"""DuckDB natively: Arrow record batches from its own reader."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import sqlalchemy as sa

from sync_pipelines.engine.sql.readers.page_session import PageSession
from sync_pipelines.engine.sql.readers.sqlalchemy_rows import positional

__all__ = ["available", "batches"]


def batches(session: PageSession, query: sa.Select, batch_size: int) -> Iterator[pa.RecordBatch]:
    """DuckDB natively: Arrow record batches from a bound-parameter query (on a connection of
    the engine's pool, not the session's)."""
    engine = session.engine
    sql, params = positional(engine, query)
    with engine.connect() as connection:
        native = connection.connection.driver_connection
        reader = native.execute(sql, params).to_arrow_reader(batch_size)
        for batch in reader:
            if batch.num_rows:
                yield batch


def available(engine: sa.Engine) -> bool:
    """DuckDB's own reader needs nothing beyond its driver."""
    return True
