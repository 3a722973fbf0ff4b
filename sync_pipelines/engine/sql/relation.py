"""The source relation: the source table, or the sync's custom_join query wrapped as a subquery."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from sync_pipelines.common.error_text import first_line
from sync_pipelines.contract.models import (
    check_read_only_select,
)
from sync_pipelines.engine import field_types
from sync_pipelines.engine.errors import CursorTypeError, SourceSchemaError
from sync_pipelines.engine.plan import SyncPlan


@dataclass(frozen=True)
class SourceRelation:
    """The source table or wrapped custom_join, its column names and reflected types."""

    selectable: sa.FromClause
    columns: tuple[str, ...]
    types: dict[str, sa.types.TypeEngine]


_BIND_LIKE = re.compile(r"(?<![:\w\\]):(?=\w)")


def _custom_join_text(sql: str) -> str:
    """The query, checked again, without trailing ``;`` or comments; ``:name`` kept literal."""
    try:
        text = check_read_only_select(sql)
    except ValueError as error:
        raise SourceSchemaError(str(error)) from None
    return _BIND_LIKE.sub(r"\\:", text)


def source_relation(connection: sa.Connection, plan: SyncPlan) -> SourceRelation:
    """Reflect the source table, or probe the custom_join query, and check the sync's columns.

    Raises:
        SourceSchemaError: the table, a column or the query is missing or fails.
        CursorTypeError: the cursor column's type cannot order rows.
    """
    if plan.custom_join:
        query = sa.text(_custom_join_text(plan.custom_join)).columns()
        probe = sa.select(sa.literal_column("*")).select_from(query.subquery("src"))
        try:
            names = tuple(connection.execute(probe.where(sa.false())).keys())
        except sa.exc.DBAPIError as error:
            raise SourceSchemaError(f"the custom_join query fails: {first_line(error)}") from None
        selectable = (
            sa.text(_custom_join_text(plan.custom_join))
            .columns(*[sa.column(name) for name in names])
            .subquery("src")
        )
        relation = SourceRelation(selectable, names, {})
    else:
        inspector = sa.inspect(connection)
        schema = source_schema(connection, plan.source_namespace)
        try:
            reflected = inspector.get_columns(plan.source_table, schema=schema)
        except sa.exc.NoSuchTableError:
            reflected = []
        if not reflected:
            raise SourceSchemaError(f"{plan.source_label} does not exist")
        names = tuple(column["name"] for column in reflected)
        selectable = sa.table(
            plan.source_table, *[sa.column(name) for name in names], schema=schema
        )
        relation = SourceRelation(
            selectable, names, {column["name"]: column["type"] for column in reflected}
        )
    wanted = [plan.cursor, plan.primary_key]
    wanted += [field.source for field in plan.fields or ()]
    for name in wanted:
        if name is not None and name not in relation.columns:
            raise SourceSchemaError(
                f"column {name!r} does not exist in the {plan.source_label} "
                f"(columns: {', '.join(relation.columns)})"
            )
    if plan.cursor and plan.cursor in relation.types:
        cursor_type = relation.types[plan.cursor]
        if not field_types.orderable_sql_type(cursor_type):
            raise CursorTypeError(
                f"cursor column {plan.cursor!r} of the {plan.source_label} has type "
                f"{cursor_type}, which cannot order rows; use a timestamp, date or number column"
            )
    return relation


def source_schema(connection: sa.Connection, namespace: str | None) -> str | None:
    """The schema to reflect: SQLite and DuckDB's ``main`` is their default one."""
    dialect = connection.dialect.name
    if not namespace:
        return None
    if dialect == "sqlite" and namespace == "main":
        return None
    if dialect == "mysql" and namespace == connection.engine.url.database:
        return None
    return namespace
