"""The writers by dialect: a dialect name maps to its writer class, imported only when used
(a PostgreSQL run never loads the DuckDB writer)."""

from __future__ import annotations

from importlib import import_module

import sqlalchemy as sa

from sync_pipelines.engine.plan import SyncPlan
from sync_pipelines.engine.write.batch_writer import BatchWriter

__all__ = ["WRITERS", "open_writer", "writer_class"]

WRITERS: dict[str, str] = {
    "duckdb": "sync_pipelines.engine.write.duckdb:DuckDBWriter",
    "postgresql": "sync_pipelines.engine.write.postgres:PostgresWriter",
    "mysql": "sync_pipelines.engine.write.mysql:MySqlWriter",
    "sqlite": "sync_pipelines.engine.write.sqlite:SqliteWriter",
}
"""Dialect name -> ``module:class`` of its writer; other dialects get :class:`BatchWriter`."""


def writer_class(dialect: str) -> type[BatchWriter]:
    """The writer class of a dialect: its fast path, else the portable one."""
    target = WRITERS.get(dialect)
    if target is None:
        return BatchWriter
    module, name = target.split(":")
    return getattr(import_module(module), name)


def open_writer(engine: sa.Engine, table: sa.Table, plan: SyncPlan) -> BatchWriter:
    """The writer of the engine's dialect, over one connection held for the run."""
    return writer_class(engine.dialect.name)(engine, table, plan)
