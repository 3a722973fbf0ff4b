"""The tools under test, each able to reset its state and run one sync of a route.

``run`` is called in a fresh process per phase (see :mod:`bench.measure`); it imports its tool
before the clock starts and times only the sync itself.

- **ours**: one sync through the sync API's embedded client (a SQLite store under the route's
  work dir) and ``sync_pipelines.engine.run_sync``; client setup is outside the timed section.
- **dlt**: ``sql_table`` with the pyarrow backend, ``incremental("updated_at")``, merge with the
  upsert strategy on ``id``; a pipelines dir under the route's work dir.
- **limit**: the databases' own bulk paths (see :mod:`bench.limit`).
"""

from __future__ import annotations

import importlib
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from bench.databases import TABLE, DuckDbDestination
from bench.limit import reset_limit, run_limit
from bench.routes import DLT_SCHEMA, OURS_SCHEMA, Route

TOOL_NAMES = ("ours", "dlt", "limit")
END_CUSTOMER = "bench"
END_CUSTOMER_FIELD = "end_customer_id"
OBJECT_FIELDS = (
    ("id", "integer"),
    ("customer", "string"),
    ("event_name", "string"),
    ("amount", "number"),
    ("payload", "string"),
    ("created_at", "timestamp"),
    ("updated_at", "timestamp"),
)


@dataclass
class ToolRun:
    """What one timed sync did: seconds, rows the tool reports, and anything else it says."""

    seconds: float
    rows: int | None
    details: dict[str, Any] = field(default_factory=dict)


# --- ours ----------------------------------------------------------------------------------


def _ours_home(route: Route) -> str:
    return str(route.work_dir / "sync_home")


def reset_ours(route: Route) -> None:
    route.ours.reset()
    shutil.rmtree(_ours_home(route), ignore_errors=True)


def _ours_sync_id(client: Any, route: Route) -> int:
    """The route's sync in the embedded API, created on first use."""
    from sync_pipelines.contract.models import (
        DestinationCreate,
        FieldMapping,
        ObjectCreate,
        ObjectField,
        SourceCreate,
        SyncCreate,
    )

    external_id = f"bench-{route.name}"
    existing = client.list_syncs(external_id=external_id)
    if existing:
        return existing[0].id
    source = client.create_source(
        SourceCreate(
            display_name=f"bench {route.name} source",
            end_customer_id=END_CUSTOMER,
            connection_type=route.source.connection_type,
            url=route.source.url,
        )
    )
    destination = client.create_destination(
        DestinationCreate(
            display_name=f"bench {route.name} destination",
            connection_type=route.ours.connection_type,
            url=route.ours.url,
        )
    )
    events = client.create_object(
        ObjectCreate(
            display_name="bench events",
            destination_id=destination.id,
            namespace=OURS_SCHEMA,
            table_name=TABLE,
            end_customer_id_field=END_CUSTOMER_FIELD,
            cursor_field="updated_at",
            primary_key="id",
            sync_mode="incremental_update",
            object_fields=[
                ObjectField(name=name, type=_field_type(route, name, kind))
                for name, kind in OBJECT_FIELDS
            ],
        )
    )
    sync = client.create_sync(
        SyncCreate(
            display_name=f"bench {route.name} events",
            source_id=source.id,
            object_id=events.id,
            namespace=route.source.namespace,
            table_name=TABLE,
            cursor_field="updated_at",
            primary_key="id",
            field_mappings=[
                FieldMapping(source_field_name=name, destination_field_name=name)
                for name, _ in OBJECT_FIELDS
            ],
            external_id=external_id,
        )
    )
    return sync.id


def _field_type(route: Route, name: str, kind: str) -> str:
    """The object field's type: the payload is JSON only when the source declares it JSON, so
    that our destination column has the type the limit's and dlt's have (text, or jsonb)."""
    if name == "payload" and getattr(route.source, "json_payload", False):
        return "json"
    return kind


# What our engine loads for each kind of database: imported before the clock, as dlt's
# destination client is (import cost is not sync cost).
_OURS_MODULES = {
    "sqlite": ("adbc_driver_sqlite.dbapi",),
    "duckdb": ("duckdb_engine", "sync_pipelines.engine.write.duckdb"),
    "postgres": ("psycopg", "adbc_driver_postgresql.dbapi", "sync_pipelines.engine.write.postgres"),
    "mysql": ("pymysql",),
}


WORKERS_ENV = "BENCH_OURS_WORKERS"
"""Ours: the run's ``workers`` (set by ``--workers``, inherited by each phase's process)."""


def run_ours(route: Route, *, batch_size: int) -> ToolRun:
    os.environ["SYNC_PIPELINES_HOME"] = _ours_home(route)
    from sync_pipelines.api.embedded import EmbeddedSyncApiClient
    from sync_pipelines.engine import run_sync

    for kind in (route.source.connection_type, route.ours.connection_type):
        for module in _OURS_MODULES[kind]:
            importlib.import_module(module)

    with EmbeddedSyncApiClient.open() as client:
        sync_id = _ours_sync_id(client, route)
        started = time.perf_counter()
        workers = int(os.environ.get(WORKERS_ENV, "1"))
        run = run_sync(sync_id, client, batch_size=batch_size, workers=workers)
        seconds = time.perf_counter() - started
    details = {
        name: _plain(getattr(run, name))
        for name in (
            "status",
            "rows_read",
            "rows_inserted",
            "rows_updated",
            "rows_unchanged",
            "rows_written",
            "batches",
            "cursor_before",
            "cursor_after",
            "duration_seconds",
            "rows_per_second",
            "destination_table",
        )
        if hasattr(run, name)
    }
    status = str(details.get("status", "completed")).lower()
    if not status.endswith("completed"):
        raise RuntimeError(f"our sync run ended {status}: {details.get('error')}")
    return ToolRun(seconds=seconds, rows=details.get("rows_read"), details=details)


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


# --- dlt -----------------------------------------------------------------------------------


def _dlt_pipelines_dir(route: Route) -> str:
    return str(route.work_dir / "dlt_pipelines")


def reset_dlt(route: Route) -> None:
    route.dlt.reset()
    shutil.rmtree(_dlt_pipelines_dir(route), ignore_errors=True)


def run_dlt(route: Route, *, batch_size: int) -> ToolRun:
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    import dlt
    from dlt.sources.sql_database import sql_table

    if isinstance(route.dlt, DuckDbDestination):
        destination = dlt.destinations.duckdb(str(route.dlt.path))
        client_module = "dlt.destinations.impl.duckdb.duck"
    else:
        destination = dlt.destinations.postgres(route.dlt.url)
        client_module = "dlt.destinations.impl.postgres.postgres"
    importlib.import_module(client_module)  # import cost is not sync cost

    started = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{route.name.replace('-', '_')}",
        pipelines_dir=_dlt_pipelines_dir(route),
        destination=destination,
        dataset_name=DLT_SCHEMA,
    )
    events = sql_table(
        credentials=route.source.url,
        schema=route.source.dlt_schema,
        table=TABLE,
        backend="pyarrow",
        chunk_size=batch_size,
        incremental=dlt.sources.incremental("updated_at"),
        primary_key="id",
        write_disposition={"disposition": "merge", "strategy": "upsert"},
    )
    pipeline.run(events)
    seconds = time.perf_counter() - started
    normalized = pipeline.last_trace.last_normalize_info
    row_counts = dict(normalized.row_counts) if normalized else {}
    return ToolRun(
        seconds=seconds, rows=row_counts.get(TABLE, 0), details={"row_counts": row_counts}
    )


RUNNERS = {"ours": run_ours, "dlt": run_dlt, "limit": run_limit}
RESETS = {"ours": reset_ours, "dlt": reset_dlt, "limit": reset_limit}
