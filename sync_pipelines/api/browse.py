"""Browsing a connection's database (``GET /connection/...``) through SQLAlchemy's inspector.

Databases are opened read-only (a missing SQLite or DuckDB file is an error, never created).
A failure reaches the caller as a short class (unreachable, authentication failed, ...); the
driver's own message, which tells a closed port from a foreign service, is only logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from sync_pipelines.contract.errors import BadRequestError, NotFoundError, SyncApiError
from sync_pipelines.contract.models import FieldType

T = TypeVar("T")

logger = logging.getLogger("sync_pipelines.api")

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

UNREACHABLE = "the database is unreachable"
# A driver message (lower case) containing one of these -> the class of failure shown.
_FAILURE_CLASSES: list[tuple[str, tuple[str, ...]]] = [
    (
        "authentication failed",
        (
            "authentication failed",
            "access denied for user",
            "no password supplied",
            "password is required",
            "pg_hba.conf",
            'role "',
        ),
    ),
    (
        "the database does not exist",
        ("unknown database", "unable to open database file", "database does not exist"),
    ),
    ("permission denied", ("permission denied", "access denied")),
]


@dataclass(frozen=True)
class Browsing:
    """A connection to browse: its spec, ``where`` for the log, ``label`` for the caller."""

    spec: dict[str, Any]
    where: str
    label: str


def field_type_of(sql_type: sa.types.TypeEngine) -> FieldType:
    """The object field type closest to a database column type."""
    if isinstance(sql_type, sa.DateTime):
        return FieldType.TIMESTAMP if sql_type.timezone else FieldType.DATETIME_NTZ
    for generic, field_type in _FIELD_TYPES:
        if isinstance(sql_type, generic):
            return field_type
    return FieldType.STRING


def failure_class(error: sa.exc.SQLAlchemyError) -> str:
    """What went wrong, in a few words that do not tell one network answer from another."""
    text = str(getattr(error, "orig", None) or error).lower()
    if "database" in text and "does not exist" in text:
        return "the database does not exist"
    for reason, needles in _FAILURE_CLASSES:
        if any(needle in text for needle in needles):
            return reason
    if isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError):
        return UNREACHABLE
    return "the database refused the request"


@contextmanager
def _inspector(target: Browsing) -> Iterator[sa.Inspector]:
    # the engine's connection handling, imported when a connection is browsed: serving the API
    # loads no part of the data plane
    from sync_pipelines.engine.connection_specs import (
        create_engine,
        describe_url,
        redact_connection,
    )
    from sync_pipelines.engine.errors import EngineError

    try:
        engine = create_engine(target.spec, read_only=True)
    except EngineError as error:
        raise BadRequestError(str(error)) from None
    try:
        with engine.connect() as connection:
            yield sa.inspect(connection)
    except SyncApiError:
        raise
    except sa.exc.SQLAlchemyError as error:
        reason = failure_class(error)
        detail = str(getattr(error, "orig", None) or error).strip().replace("\n", " ")
        logger.warning(
            "browsing %s (%s) failed: %s: %s",
            target.where,
            redact_connection(describe_url(engine), target.spec),
            reason,
            redact_connection(detail, target.spec),
        )
        raise BadRequestError(f"cannot browse {target.label}: {reason}") from None
    finally:
        engine.dispose()


def _browse(target: Browsing, read: Callable[[sa.Inspector], T]) -> T:
    with _inspector(target) as inspector:
        return read(inspector)


def list_namespaces(target: Browsing) -> list[str]:
    """The schemas (databases, for MySQL) of a connection."""
    return _browse(target, lambda inspector: sorted(inspector.get_schema_names()))


def list_tables(target: Browsing, namespace: str) -> list[str]:
    """The tables and views of one namespace."""

    def read(inspector: sa.Inspector) -> list[str]:
        if namespace not in inspector.get_schema_names():
            raise NotFoundError(f"namespace {namespace!r} not found")
        names = inspector.get_table_names(schema=namespace)
        return sorted(names + inspector.get_view_names(schema=namespace))

    return _browse(target, read)


def table_schema(target: Browsing, namespace: str, table_name: str) -> list[dict[str, Any]]:
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

    return _browse(target, read)
