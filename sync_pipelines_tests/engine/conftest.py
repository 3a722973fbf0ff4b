"""Scenario helpers for the engine: real source and destination databases and an embedded API.

``databases(kind)`` gives a :class:`Database` of kind ``sqlite``, ``duckdb``, ``postgres`` or
``mysql`` (the last two from the root conftest's servers; they skip when unreachable).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.contract.models import (
    DestinationCreate,
    FieldMapping,
    ObjectCreate,
    SourceCreate,
    Sync,
    SyncCreate,
    SyncMode,
)
from sync_pipelines.engine import field_types
from sync_pipelines.engine.connection_specs import quote_duckdb_keywords

KINDS = ("sqlite", "duckdb", "postgres", "mysql")
# every database as a source and as a destination, without the full 4 x 4 matrix
PAIRS = [
    ("sqlite", "duckdb"),
    ("duckdb", "sqlite"),
    ("postgres", "mysql"),
    ("mysql", "postgres"),
    ("sqlite", "postgres"),
    ("postgres", "duckdb"),
    ("mysql", "sqlite"),
    ("duckdb", "mysql"),
]


def pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-to-{pair[1]}"


@dataclass
class Database:
    """One real database owned by a test: where tables go and how to reach it."""

    kind: str
    url: str
    namespace: str
    engine: sa.Engine

    @property
    def schema(self) -> str | None:
        """The SQL schema of test tables (SQLite has only its main one)."""
        return None if self.kind in ("sqlite", "mysql") else self.namespace

    def connection(self) -> dict[str, Any]:
        return {"connection_type": self.kind, "url": self.url}

    def table(self, name: str, *columns: sa.Column) -> sa.Table:
        return sa.Table(name, sa.MetaData(), *columns, schema=self.schema)

    def create(self, table: sa.Table, rows: Sequence[dict[str, Any]] = ()) -> sa.Table:
        with self.engine.begin() as connection:
            table.create(connection)
        if rows:
            self.insert(table, rows)
        return table

    def insert(self, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
        with self.engine.begin() as connection:
            if self.kind == "duckdb" and len(rows) > 100:  # DuckDB's executemany is slow
                native = connection.connection.driver_connection
                native.register("test_rows", pa.Table.from_pylist(list(rows)))
                connection.execute(
                    table.insert().from_select(
                        list(rows[0]), sa.select(sa.table("test_rows", *map(sa.column, rows[0])))
                    )
                )
                native.unregister("test_rows")
            else:
                connection.execute(table.insert(), list(rows))

    def execute(self, statement: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(statement)

    def reflect(self, name: str, namespace: str | None = None) -> sa.Table:
        schema = self.schema if namespace is None else namespace
        with self.engine.connect() as connection:
            columns = sa.inspect(connection).get_columns(name, schema=schema)
            declared = {}
            if self.kind == "sqlite":
                pragma = connection.exec_driver_sql(f'PRAGMA table_info("{name}")')
                declared = {row[1]: row[2] for row in pragma}
        return sa.Table(
            name,
            sa.MetaData(),
            *[
                sa.Column(c["name"], self._readable(c["type"], declared.get(c["name"])))
                for c in columns
            ],
            schema=schema,
        )

    def _readable(self, column_type: Any, declared: str | None = None) -> Any:
        # the engine's exact SQLite decimals are text in a DECIMAL_TEXT column
        if declared == "DECIMAL_TEXT":
            return field_types.ExactDecimalText()
        # SQLite keeps decimals as floats; SQLAlchemy would widen them to 10 decimal places
        if self.kind == "sqlite" and isinstance(column_type, sa.Numeric):
            return sa.Float()
        # duckdb_engine reads decimals through floats; take the driver's Decimal as it is
        if self.kind == "duckdb" and isinstance(column_type, sa.Numeric):
            return sa.types.NullType()
        return column_type

    def has_table(self, name: str) -> bool:
        with self.engine.connect() as connection:
            return sa.inspect(connection).has_table(name, schema=self.schema)

    def rows(self, name: str, *, order_by: Sequence[str] = ("ecid", "id")) -> list[dict]:
        """Every row of a table, values normalized for comparison across databases."""
        table = self.reflect(name)
        with self.engine.connect() as connection:
            result = connection.execute(
                sa.select(table).order_by(*[table.c[c] for c in order_by if c in table.c])
            )
            return [{k: normalize(v) for k, v in row._mapping.items()} for row in result]


def normalize(value: Any) -> Any:
    """Database values in one form: UTC-naive datetimes, exact decimals, parsed JSON."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    return value


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Database]:
    """``databases(kind, name="db")``: a fresh database of that kind, dropped after the test."""
    made: dict[tuple[str, str], Database] = {}

    def make(kind: str, name: str = "db") -> Database:
        if (kind, name) in made:
            return made[(kind, name)]
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / f'{name}.sqlite'}"
            database = Database(kind, url, "main", sa.create_engine(url))
        elif kind == "duckdb":
            url = f"duckdb:///{tmp_path / f'{name}.duckdb'}"
            database = Database(kind, url, "main", sa.create_engine(url))
            quote_duckdb_keywords(database.engine)
        elif kind == "postgres":
            server, schema = request.getfixturevalue("postgres_schema")
            url = server.render_as_string(hide_password=False)
            database = Database(kind, url, schema, sa.create_engine(url))
        elif kind == "mysql":
            server = request.getfixturevalue("mysql_database")
            url = server.render_as_string(hide_password=False)
            database = Database(kind, url, server.database, sa.create_engine(url))
        else:
            raise ValueError(kind)
        request.addfinalizer(database.engine.dispose)
        made[(kind, name)] = database
        return database

    return make


@pytest.fixture
def client() -> Iterator[EmbeddedSyncApiClient]:
    """The sync API, embedded on a SQLite store in the test's home."""
    with EmbeddedSyncApiClient.open() as api:
        yield api


def timestamp_column(name: str, **kwargs: Any) -> sa.Column:
    """A time-zone-aware timestamp with microseconds on every database."""
    kind = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")
    return sa.Column(name, kind, **kwargs)


def events_table(database: Database, name: str = "events") -> sa.Table:
    """The usual source table: id, name, amount, updated_at."""
    return database.table(
        name,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(100)),
        sa.Column("amount", sa.Numeric(12, 2)),
        timestamp_column("updated_at"),
    )


T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    """A timestamp ``seconds`` after T0 (microseconds kept)."""
    return T0 + dt.timedelta(seconds=seconds)


def event(id: int, seconds: float, name: str | None = None, amount: str = "1.50") -> dict:
    return {
        "id": id,
        "name": name or f"event {id}",
        "amount": decimal.Decimal(amount),
        "updated_at": at(seconds),
    }


EVENT_FIELDS = [
    {"name": "id", "type": "integer"},
    {"name": "name", "type": "string"},
    {"name": "amount", "type": "number"},
    {"name": "updated_at", "type": "timestamp"},
]


@dataclass
class Scenario:
    """A source, a destination, an object and syncs between them, through the embedded API."""

    client: EmbeddedSyncApiClient
    source: Database
    destination: Database
    table_name: str = "synced_events"
    object_id: int | None = None

    def make_object(
        self,
        *,
        fields: list[dict] | None = None,
        mode: SyncMode = SyncMode.INCREMENTAL_UPDATE,
        cursor: str | None = "updated_at",
        primary_key: str | None = "id",
    ) -> int:
        destination = self.client.create_destination(
            DestinationCreate(display_name="warehouse", **self.destination.connection())
        )
        obj = self.client.create_object(
            ObjectCreate(
                display_name="Events",
                destination_id=destination.id,
                namespace=self.destination.namespace,
                table_name=self.table_name,
                end_customer_id_field="ecid",
                sync_mode=mode,
                cursor_field=cursor,
                primary_key=primary_key,
                object_fields=EVENT_FIELDS if fields is None else fields,
            )
        )
        self.object_id = obj.id
        return obj.id

    def make_sync(
        self,
        *,
        customer: str = "acme",
        table: str = "events",
        mappings: dict[str, str] | None = None,
        source_connection: dict[str, Any] | None = None,
        **options: Any,
    ) -> Sync:
        if self.object_id is None:
            self.make_object()
        obj = self.client.get_object(self.object_id)
        if mappings is None:
            mappings = {f.name: f.name for f in obj.object_fields}
        source = self.client.create_source(
            SourceCreate(
                display_name=f"{customer} db",
                end_customer_id=customer,
                **(source_connection or self.source.connection()),
            )
        )
        if not options.get("custom_join"):
            options.setdefault("namespace", self.source.namespace)
            options.setdefault("table_name", table)
        return self.client.create_sync(
            SyncCreate(
                display_name=f"{customer} events",
                source_id=source.id,
                object_id=self.object_id,
                field_mappings=[
                    FieldMapping(source_field_name=s, destination_field_name=d)
                    for s, d in mappings.items()
                ],
                **options,
            )
        )

    def rows(self) -> list[dict]:
        return self.destination.rows(self.table_name)


@pytest.fixture
def scenario(
    request: pytest.FixtureRequest,
    databases: Callable[..., Database],
    client: EmbeddedSyncApiClient,
) -> Scenario:
    """Parametrized indirectly with a ``(source kind, destination kind)`` pair."""
    source_kind, destination_kind = request.param
    source = databases(source_kind, "source")
    destination = (
        source
        if source_kind == destination_kind and source_kind in ("postgres", "mysql")
        else databases(destination_kind, "destination")
    )
    return Scenario(client, source, destination)
