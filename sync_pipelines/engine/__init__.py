"""The sync engine (data plane): read a source incrementally, map, write the destination.

It imports neither Dagster nor FastAPI: it takes a sync API client (embedded or HTTP) and runs.
"""

from sync_pipelines.engine.connections import connection_url, create_engine, describe_url
from sync_pipelines.engine.counts import count_destination_rows, count_source_rows
from sync_pipelines.engine.errors import (
    ConnectionSpecError,
    CursorTypeError,
    DatabaseUnreachableError,
    DestinationTypeConflictError,
    EngineError,
    MappingError,
    MissingExtraError,
    SourceSchemaError,
    SyncRunError,
)
from sync_pipelines.engine.read import DEFAULT_BATCH_SIZE
from sync_pipelines.engine.run import BatchProgress, SyncResult, WrittenColumn, run_sync

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "BatchProgress",
    "ConnectionSpecError",
    "CursorTypeError",
    "DatabaseUnreachableError",
    "DestinationTypeConflictError",
    "EngineError",
    "MappingError",
    "MissingExtraError",
    "SourceSchemaError",
    "SyncResult",
    "SyncRunError",
    "WrittenColumn",
    "connection_url",
    "count_destination_rows",
    "count_source_rows",
    "create_engine",
    "describe_url",
    "run_sync",
]
