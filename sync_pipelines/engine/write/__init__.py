"""Write mapped batches into the destination table: ensure the table, stage, upsert or swap.

:mod:`.destination_tables` creates, widens and reads back the destination table;
:mod:`.batch_writer` holds the portable :class:`BatchWriter`; one module per dialect
(:mod:`.duckdb`, :mod:`.postgres`, :mod:`.mysql`, :mod:`.sqlite`) subclasses it with its fast
path, and :mod:`.registry` picks the writer by dialect (:func:`open_writer`). The dialect
modules import the base, never the other way round.
"""

from __future__ import annotations

from sync_pipelines.engine.write.batch_writer import BatchWriter, WriteCounts
from sync_pipelines.engine.write.destination_tables import (
    DestinationColumn,
    column_type_names,
    destination_schema,
    destination_table,
    ensure_table,
    existing_table,
    key_collation,
    table_columns,
)
from sync_pipelines.engine.write.registry import open_writer, writer_class

__all__ = [
    "BatchWriter",
    "DestinationColumn",
    "WriteCounts",
    "column_type_names",
    "destination_schema",
    "destination_table",
    "ensure_table",
    "existing_table",
    "key_collation",
    "open_writer",
    "table_columns",
    "writer_class",
]
