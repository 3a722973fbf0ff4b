"""The databases a route touches: its source (load, change) and its destinations (reset, read).

Every database can hand back the same three columns for verification, as Arrow:
``id`` (int64), ``cents`` (amount x 100, int64) and ``updated_us`` (updated_at as microseconds
since the epoch, reading naive timestamps as UTC), so that one DuckDB query compares any two.

Database drivers are imported where they are used: the process that runs a tool imports this
module too, and what the tool does not load itself must not count in its peak memory.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from bench.source_data import BATCH_ROWS, COLUMNS, InitialRows

if TYPE_CHECKING:
    import duckdb
    import psycopg
    from psycopg import sql

# dlt insists on a password; with trust auth any one does.
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/test"
)
SCHEMA_PREFIX = os.environ.get("BENCH_SCHEMA_PREFIX", "bench")
"""Prefix of the benchmark's schemas (``<prefix>_src``, ``<prefix>_ours``, ...): two
benchmarks sharing the PostgreSQL and MariaDB servers need different ones."""
MYSQL_URL = os.environ.get(
    "BENCH_MYSQL_URL", f"mysql+pymysql://root@127.0.0.1:3306/{SCHEMA_PREFIX}_src"
)
TABLE = "events"

_SQLITE_DDL = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    event_name TEXT NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    payload {payload} NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX events_cursor ON events (updated_at, id);
"""

_POSTGRES_COLUMNS = """
    id bigint NOT NULL,
    customer text NOT NULL,
    event_name text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    payload {payload} NOT NULL,
    created_at timestamp NOT NULL,
    updated_at timestamp NOT NULL
"""


def _duckdb() -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


_SQLITE_SHAPE = (
    "SELECT id, customer, event_name, amount::DOUBLE AS amount, payload, "
    "strftime(created_at, '%Y-%m-%d %H:%M:%S.%f') AS created_at, "
    "strftime(updated_at, '%Y-%m-%d %H:%M:%S.%f') AS updated_at FROM {}"
)


def _sqlite_shape(rows: pa.Table) -> pa.Table:
    """Rows as SQLAlchemy's SQLite dialect stores them: REAL amounts, ISO text timestamps."""
    con = _duckdb()
    con.register("rows_", rows)
    return con.sql(_SQLITE_SHAPE.format("rows_")).to_arrow_table()


def _upsert_sql(table: str, values: str) -> str:
    """``INSERT ... ON CONFLICT (id) DO UPDATE``, which SQLite and PostgreSQL share."""
    names = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "id")
    return f"INSERT INTO {table} ({names}) {values} ON CONFLICT (id) DO UPDATE SET {updates}"


def _csv_chunks(batches: pa.Table | pa.RecordBatchReader) -> Iterator[bytes]:
    """CSV without a header, one chunk per batch (a table is cut into batches of 100,000)."""
    import pyarrow.csv as pa_csv

    options = pa_csv.WriteOptions(include_header=False)
    if isinstance(batches, pa.Table):
        batches = batches.to_batches(max_chunksize=BATCH_ROWS)
    for batch in batches:
        buffer = io.BytesIO()
        pa_csv.write_csv(batch.select(list(COLUMNS)), buffer, options)
        yield buffer.getvalue()


# --- sources -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqliteSource:
    """``events`` in a SQLite file, reset each run from a pristine copy cached per size."""

    path: Path
    cache_dir: Path
    json_payload: bool = False
    connection_type = "sqlite"
    namespace = "main"
    dlt_schema = None

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def prepare(self, initial: InitialRows) -> None:
        """Make the source hold exactly ``initial`` (copying the cached file when present)."""
        payload = "JSON" if self.json_payload else "TEXT"
        pristine = self.cache_dir / f"events-{initial.rows}-{payload.lower()}.sqlite"
        if not pristine.exists():
            import adbc_driver_sqlite.dbapi as adbc_sqlite

            building = pristine.with_suffix(".tmp")
            building.unlink(missing_ok=True)
            with sqlite3.connect(building) as con:
                con.executescript(_SQLITE_DDL.format(payload=payload))
            shaper = _duckdb()
            shaped = shaper.sql(
                _SQLITE_SHAPE.format(f"read_parquet('{initial.path}')")
            ).fetch_record_batch(BATCH_ROWS)
            with adbc_sqlite.connect(str(building)) as con:
                with con.cursor() as cursor:
                    cursor.adbc_ingest(TABLE, shaped, mode="append")
                con.commit()
            shaper.close()
            building.rename(pristine)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pristine, self.path)

    def apply(self, changes: pa.Table) -> None:
        """Upsert ``changes`` (updated and new rows) in one transaction."""
        statement = _upsert_sql(TABLE, "VALUES (" + ", ".join("?" * len(COLUMNS)) + ")")
        shaped = _sqlite_shape(changes)
        with sqlite3.connect(self.path) as con:
            con.executemany(statement, zip(*(shaped[c].to_pylist() for c in COLUMNS), strict=True))

    def verification_rows(self) -> pa.Table:
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        with adbc_sqlite.connect(str(self.path)) as con, con.cursor() as cursor:
            cursor.execute(
                "SELECT id, CAST(ROUND(amount * 100) AS INTEGER) AS cents, updated_at FROM events"
            )
            raw = cursor.fetch_arrow_table()
        con = _duckdb()
        con.register("raw_", raw)
        return con.sql(
            "SELECT id::BIGINT AS id, cents::BIGINT AS cents, "
            "epoch_us(updated_at::TIMESTAMP) AS updated_us FROM raw_"
        ).to_arrow_table()


@dataclass(frozen=True)
class PostgresSource:
    """``<prefix>_src.events`` in PostgreSQL, reset each run from a pristine table per size."""

    schema: str = f"{SCHEMA_PREFIX}_src"
    url: str = POSTGRES_URL
    json_payload: bool = False
    connection_type = "postgres"

    @property
    def namespace(self) -> str:
        return self.schema

    @property
    def dlt_schema(self) -> str:
        return self.schema

    @property
    def _columns(self) -> str:
        return _POSTGRES_COLUMNS.format(payload="jsonb" if self.json_payload else "text")

    def prepare(self, initial: InitialRows) -> None:
        """Make the source hold exactly ``initial`` (cloning the cached table when present)."""
        import psycopg
        from psycopg import sql

        schema = sql.Identifier(self.schema)
        name = f"pristine_{initial.rows}_{'jsonb' if self.json_payload else 'text'}"
        pristine = sql.Identifier(name)
        columns = sql.SQL(self._columns)
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            cached = con.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = %s",
                (self.schema, name),
            ).fetchone()
            if cached is None:
                with con.transaction():
                    con.execute(
                        sql.SQL("CREATE TABLE {}.{} ({})").format(schema, pristine, columns)
                    )
                    self._copy(con, pristine, initial.batches())
            con.execute(sql.SQL("DROP TABLE IF EXISTS {}.events").format(schema))
            con.execute(sql.SQL("CREATE TABLE {}.events ({})").format(schema, columns))
            con.execute(
                sql.SQL("INSERT INTO {0}.events SELECT * FROM {0}.{1}").format(schema, pristine)
            )
            con.execute(sql.SQL("ALTER TABLE {}.events ADD PRIMARY KEY (id)").format(schema))
            con.execute(
                sql.SQL("CREATE INDEX events_cursor ON {}.events (updated_at, id)").format(schema)
            )
            con.execute(sql.SQL("VACUUM ANALYZE {}.events").format(schema))

    def _copy(
        self, con: psycopg.Connection, table: sql.Identifier, rows: pa.RecordBatchReader
    ) -> None:
        from psycopg import sql

        copy = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(self.schema), table, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        )
        with con.cursor() as cursor, cursor.copy(copy) as writer:
            for chunk in _csv_chunks(rows):
                writer.write(chunk)

    def apply(self, changes: pa.Table) -> None:
        """Upsert ``changes`` (updated and new rows) in one transaction, through COPY."""
        import psycopg
        from psycopg import sql

        schema = sql.Identifier(self.schema)
        with psycopg.connect(self.url) as con:
            con.execute("CREATE TEMPORARY TABLE changes (" + self._columns + ") ON COMMIT DROP")
            with (
                con.cursor() as cursor,
                cursor.copy("COPY changes FROM STDIN (FORMAT csv)") as writer,
            ):
                for chunk in _csv_chunks(changes):
                    writer.write(chunk)
            table = sql.Identifier(self.schema, TABLE).as_string(con)
            con.execute(_upsert_sql(table, "SELECT * FROM changes"))
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(sql.SQL("ANALYZE {}.events").format(schema))

    def verification_rows(self) -> pa.Table:
        return _postgres_verification_rows(self.url, self.schema, TABLE, where=None)


_MYSQL_DDL = """
CREATE TABLE {table} (
    id BIGINT NOT NULL PRIMARY KEY,
    customer VARCHAR(32) NOT NULL,
    event_name VARCHAR(32) NOT NULL,
    amount DECIMAL(12, 2) NOT NULL,
    payload {payload} NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    KEY events_cursor (updated_at, id)
)
"""


def mysql_cli(url: str, database: str | None = None) -> list[str]:
    """The ``mariadb`` client's command line for a ``mysql+pymysql://`` URL (batch, no headers)."""
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    command = [
        shutil.which("mariadb") or "mysql",
        "--batch",
        "--skip-column-names",
        "--quick",
        f"--host={parsed.host or '127.0.0.1'}",
        f"--port={parsed.port or 3306}",
        f"--user={parsed.username or 'root'}",
    ]
    if parsed.password:
        command.append(f"--password={parsed.password}")
    command.append(database or parsed.database or "")
    return command


@dataclass(frozen=True)
class MySqlSource:
    """``events`` in a MariaDB/MySQL database, reset each run from a pristine table per size."""

    url: str = MYSQL_URL
    json_payload: bool = False
    connection_type = "mysql"
    dlt_schema = None

    @property
    def database(self) -> str:
        import sqlalchemy as sa

        return str(sa.make_url(self.url).database)

    @property
    def namespace(self) -> str:
        return self.database

    def _connect(self, database: str | None = None):
        import pymysql
        import sqlalchemy as sa

        parsed = sa.make_url(self.url)
        return pymysql.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 3306,
            user=parsed.username or "root",
            password=parsed.password or "",
            database=database,
            local_infile=True,
            autocommit=True,
        )

    def prepare(self, initial: InitialRows) -> None:
        """Make the source hold exactly ``initial`` (copying the cached table when present)."""
        payload = "JSON" if self.json_payload else "LONGTEXT"
        pristine = f"pristine_{initial.rows}_{'json' if self.json_payload else 'text'}"
        con = self._connect()
        try:
            cursor = con.cursor()
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
            cursor.execute(f"USE `{self.database}`")
            cursor.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = %s",
                (self.database, pristine),
            )
            if cursor.fetchone() is None:
                building = f"{pristine}_tmp"
                cursor.execute(f"DROP TABLE IF EXISTS `{building}`")
                cursor.execute(_MYSQL_DDL.format(table=f"`{building}`", payload=payload))
                csv_path = initial.path.with_suffix(".mysql.csv")
                con_duck = _duckdb()
                con_duck.execute(
                    f"COPY (SELECT {', '.join(COLUMNS)} FROM read_parquet('{initial.path}')) "
                    f"TO '{csv_path}' (FORMAT csv, HEADER false)"
                )
                con_duck.close()
                try:
                    cursor.execute(
                        f"LOAD DATA LOCAL INFILE %s INTO TABLE `{building}` "
                        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                        f"LINES TERMINATED BY '\\n' ({', '.join(COLUMNS)})",
                        (str(csv_path),),
                    )
                finally:
                    csv_path.unlink(missing_ok=True)
                cursor.execute(f"RENAME TABLE `{building}` TO `{pristine}`")
            cursor.execute(f"DROP TABLE IF EXISTS `{TABLE}`")
            cursor.execute(_MYSQL_DDL.format(table=f"`{TABLE}`", payload=payload))
            cursor.execute(f"INSERT INTO `{TABLE}` SELECT * FROM `{pristine}`")
            cursor.execute(f"ANALYZE TABLE `{TABLE}`")
            cursor.fetchall()
        finally:
            con.close()

    def apply(self, changes: pa.Table) -> None:
        """Upsert ``changes`` (updated and new rows) in one transaction."""
        names = ", ".join(COLUMNS)
        updates = ", ".join(f"{c} = VALUES({c})" for c in COLUMNS if c != "id")
        statement = (
            f"INSERT INTO `{TABLE}` ({names}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
            f"ON DUPLICATE KEY UPDATE {updates}"
        )
        rows = list(zip(*(changes[c].to_pylist() for c in COLUMNS), strict=True))
        con = self._connect(self.database)
        try:
            con.begin()
            con.cursor().executemany(statement, rows)
            con.commit()
        finally:
            con.close()

    def verification_rows(self) -> pa.Table:
        """Read through the ``mariadb`` client (tab-separated), fast at 10M rows."""
        import pyarrow.csv as pa_csv

        query = (
            "SELECT id, CAST(ROUND(amount * 100) AS SIGNED), "
            "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', updated_at) FROM events"
        )
        done = subprocess.run([*mysql_cli(self.url), "-e", query], capture_output=True, check=True)
        return pa_csv.read_csv(
            io.BytesIO(done.stdout),
            read_options=pa_csv.ReadOptions(column_names=["id", "cents", "updated_us"]),
            parse_options=pa_csv.ParseOptions(delimiter="\t"),
            convert_options=pa_csv.ConvertOptions(
                column_types={"id": pa.int64(), "cents": pa.int64(), "updated_us": pa.int64()}
            ),
        )


# --- destinations --------------------------------------------------------------------------


def _postgres_verification_rows(
    url: str, schema: str, table: str, *, where: tuple[str, str] | None
) -> pa.Table:
    import adbc_driver_postgresql.dbapi as adbc_postgresql
    import psycopg
    from psycopg import sql

    query = sql.SQL(
        "SELECT id::bigint AS id, round(amount * 100)::bigint AS cents, "
        "(extract(epoch FROM updated_at) * 1000000)::bigint AS updated_us FROM {}.{}"
    ).format(sql.Identifier(schema), sql.Identifier(table))
    if where is not None:
        query += sql.SQL(" WHERE {} = {}").format(sql.Identifier(where[0]), sql.Literal(where[1]))
    with psycopg.connect(url) as con:
        text = query.as_string(con)
    with adbc_postgresql.connect(url) as con, con.cursor() as cursor:
        cursor.execute(text)
        return cursor.fetch_arrow_table()


@dataclass(frozen=True)
class DuckDbDestination:
    """A DuckDB file; ``schema`` is where the tool writes ``events``."""

    path: Path
    schema: str
    connection_type = "duckdb"

    @property
    def url(self) -> str:
        return f"duckdb:///{self.path}"

    def reset(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (self.path, self.path.with_name(self.path.name + ".wal")):
            leftover.unlink(missing_ok=True)

    def verification_rows(self, *, where: tuple[str, str] | None = None) -> pa.Table:
        query = (
            "SELECT id::BIGINT AS id, round(amount * 100)::BIGINT AS cents, "
            f'epoch_us(updated_at) AS updated_us FROM "{self.schema}"."{TABLE}"'
        )
        params: list[str] = []
        if where is not None:
            query += f' WHERE "{where[0]}" = ?'
            params.append(where[1])
        import duckdb

        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(query, params).to_arrow_table()


@dataclass(frozen=True)
class PostgresDestination:
    """A schema in the PostgreSQL database, dropped at the start of each run."""

    schema: str
    url: str = POSTGRES_URL
    connection_type = "postgres"

    def reset(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )

    def verification_rows(self, *, where: tuple[str, str] | None = None) -> pa.Table:
        return _postgres_verification_rows(self.url, self.schema, TABLE, where=where)
