"""Row counts for checks: the destination's rows of one end customer, the source's up to a cursor.

A completed incremental run leaves ``destination rows == source rows up to the cursor`` as long
as the source rows it read have not moved past the cursor since. ``run_sync(count_rows=True)``
counts both while it holds the run lease; the functions here count for a lease at any time.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sync_pipelines.contract.models import (
    CursorPosition,
    DeleteMode,
    NullCursor,
    RunLease,
    SyncMode,
)
from sync_pipelines.engine.connection_specs import create_engine, lease_spec
from sync_pipelines.engine.plan import DELETED_AT, SyncPlan, plan_sync
from sync_pipelines.engine.sql.keyset import Keyset
from sync_pipelines.engine.sql.relation import source_relation
from sync_pipelines.engine.write import destination_schema, table_columns

__all__ = [
    "count_destination_rows",
    "count_source_rows",
    "destination_row_count",
    "source_row_count",
]


def destination_row_count(
    engine: sa.Engine, plan: SyncPlan, *, every_customer: bool = False
) -> int:
    """Rows of the plan's end customer (or of all of them) in its destination table (0 when
    there is no table); for a ``soft`` deletes sync, the end customer's rows not deleted."""
    schema = destination_schema(engine, plan.destination_namespace)
    with engine.connect() as connection:
        columns = table_columns(connection, plan.destination_table, schema)
        if columns is None:
            return 0
        table = sa.table(
            plan.destination_table,
            sa.column(plan.customer_field),
            sa.column(DELETED_AT),
            schema=schema,
        )
        query = sa.select(sa.func.count()).select_from(table)
        if not every_customer:
            query = query.where(table.c[plan.customer_field] == plan.customer_id)
            if plan.deletes is DeleteMode.SOFT and DELETED_AT in columns:
                query = query.where(table.c[DELETED_AT].is_(None))
        return int(connection.execute(query).scalar_one())


def source_row_count(engine: sa.Engine, plan: SyncPlan, up_to: CursorPosition | None = None) -> int:
    """Source rows up to and including a cursor position (every row when ``None``).

    Rows with a NULL cursor are counted when the sync reads them (``null_cursor: include``).
    """
    with engine.connect() as connection:
        relation = source_relation(connection, plan)
        source = relation.selectable
        query = sa.select(sa.func.count()).select_from(source)
        position = Keyset.from_position(up_to)
        if plan.cursor is not None and (plan.mode is not SyncMode.FULL_OVERWRITE or position):
            cursor = source.c[plan.cursor]
            read: sa.ColumnElement[bool] = cursor.is_not(None)
            if position is not None:
                if plan.primary_key is None or position.primary_key is None:
                    read = cursor <= position.cursor
                else:
                    key = source.c[plan.primary_key]
                    read = sa.or_(
                        cursor < position.cursor,
                        sa.and_(cursor == position.cursor, key <= position.primary_key),
                    )
            if plan.null_cursor is NullCursor.INCLUDE:
                read = sa.or_(cursor.is_(None), read)
            query = query.where(read)
        return int(connection.execute(query).scalar_one())


def count_destination_rows(
    lease: RunLease, *, destination_spec: dict[str, Any] | None = None
) -> int:
    """Rows of a lease's end customer in its object's destination table.

    Args:
        lease: a run lease (it carries the sync, the object and the sealed connections).
        destination_spec: the destination connection spec, if already unsealed.
    """
    spec = destination_spec or lease_spec(lease, lease.destination_connection, "destination")
    engine = create_engine(spec)
    try:
        return destination_row_count(engine, plan_sync(lease.sync, lease.object))
    finally:
        engine.dispose()


def count_source_rows(
    lease: RunLease,
    *,
    up_to: CursorPosition | None = None,
    source_spec: dict[str, Any] | None = None,
) -> int:
    """Rows of a lease's source up to and including ``up_to`` (see :func:`source_row_count`)."""
    spec = source_spec or lease_spec(lease, lease.source_connection, "source")
    engine = create_engine(spec, read_only=True)
    try:
        return source_row_count(engine, plan_sync(lease.sync, lease.object), up_to)
    finally:
        engine.dispose()
