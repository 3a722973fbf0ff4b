"""The sync engine (data plane): read a source incrementally, map, write the destination.

It imports neither Dagster nor FastAPI: it takes a sync API client (embedded or HTTP) and runs.
The public names are loaded lazily, so that importing a light module of the engine (its
connections or errors) does not import pyarrow and the writers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
    from sync_pipelines.engine.connection_specs import connection_url, create_engine, describe_url
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
    from sync_pipelines.engine.results import BatchProgress, SyncResult, WrittenColumn
    from sync_pipelines.engine.sql_sync import run_sync

_PACKAGE = "sync_pipelines.engine"
_NAMES = {
    "connection_url": "connection_specs",
    "create_engine": "connection_specs",
    "describe_url": "connection_specs",
    "count_destination_rows": "counts",
    "count_source_rows": "counts",
    "ConnectionSpecError": "errors",
    "CursorTypeError": "errors",
    "DatabaseUnreachableError": "errors",
    "DestinationTypeConflictError": "errors",
    "EngineError": "errors",
    "MappingError": "errors",
    "MissingExtraError": "errors",
    "SourceSchemaError": "errors",
    "SyncRunError": "errors",
    "DEFAULT_BATCH_SIZE": "sync_pipelines.common.settings",
    "BatchProgress": "results",
    "SyncResult": "results",
    "WrittenColumn": "results",
    "run_sync": "sql_sync",
}

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


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}")
    path = module if module.startswith("sync_pipelines.") else f"{_PACKAGE}.{module}"
    return getattr(import_module(path), name)
