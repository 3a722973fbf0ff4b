"""Browsing a connection's database (``GET /connection/...``) through SQLAlchemy's inspector."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa

from sync_pipelines.api.errors import BadRequestError, NotFoundError, SyncApiError
from sync_pipelines.engine.connections import create_engine, describe_url
from sync_pipelines.engine.errors import EngineError
from sync_pipelines.models import FieldType

T = TypeVar("T")

# Checked in order: the first generic type a column's type is an instance of gives its field type.
_FIELD_TYPES: list[tuple[type[sa.types.TypeEngine], FieldType]] = [
    (sa.Boolean, FieldType.BOOLEAN),
    (sa.Integer, FieldType.INTEGER),
    (sa.Float, FieldType.FLOAT),
    (sa.Numeric, FieldType.NUMBER),
    (sa.Date, FieldType.DATE),
    (sa.Time, FieldType.TIME_NTZ),
    (sa.JSON, FieldType.JSON),
    (sa.ARRAY, FieldType.ARRAY),
    (sa.LargeBinary, FieldType.BINARY),
]


def field_type_of(sql_type: sa.types.TypeEngine) -> FieldType:
    """The object field type closest to a database column type."""
    if isinstance(sql_type, sa.DateTime):
        return FieldType.TIMESTAMP if sql_type.timezone else FieldType.DATETIME_NTZ
    for generic, field_type in _FIELD_TYPES:
        if isinstance(sql_type, generic):
            return field_type
    return FieldType.STRING


@contextmanager
def _inspector(spec: dict[str, Any]) -> Iterator[sa.Inspector]:
    try:
        engine = create_engine(spec)
    except EngineError as error:
        raise BadRequestError(str(error)) from None
    try:
        with engine.connect() as connection:
            yield sa.inspect(connection)
    except SyncApiError:
        raise
    except sa.exc.SQLAlchemyError as error:
        reason = str(error.orig if getattr(error, "orig", None) else error).splitlines()[0]
        raise BadRequestError(f"cannot browse {describe_url(engine)}: {reason}") from None
    finally:
        engine.dispose()


def _browse(spec: dict[str, Any], read: Callable[[sa.Inspector], T]) -> T:
    with _inspector(spec) as inspector:
        return read(inspector)


def list_namespaces(spec: dict[str, Any]) -> list[str]:
    """The schemas (databases, for MySQL) of a connection."""
    return _browse(spec, lambda inspector: sorted(inspector.get_schema_names()))


def list_tables(spec: dict[str, Any], namespace: str) -> list[str]:
    """The tables and views of one namespace."""

    def read(inspector: sa.Inspector) -> list[str]:
        if namespace not in inspector.get_schema_names():
            raise NotFoundError(f"namespace {namespace!r} not found")
        names = inspector.get_table_names(schema=namespace)
        return sorted(names + inspector.get_view_names(schema=namespace))

    return _browse(spec, read)


def table_schema(spec: dict[str, Any], namespace: str, table_name: str) -> list[dict[str, Any]]:
    """The columns of a table: ``[{"name", "type", "optional"}]`` with object field types."""

    def read(inspector: sa.Inspector) -> list[dict[str, Any]]:
        if not inspector.has_table(table_name, schema=namespace):
            raise NotFoundError(f"table {namespace}.{table_name} not found")
        return [
            {
                "name": column["name"],
                "type": field_type_of(column["type"]).value,
                "optional": bool(column.get("nullable", True)),
            }
            for column in inspector.get_columns(table_name, schema=namespace)
        ]

    return _browse(spec, read)
