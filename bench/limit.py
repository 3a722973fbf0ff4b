"""The databases' own limit: each route moved by the databases' bulk paths, no tool between.

- **PostgreSQL -> PostgreSQL**: ``COPY (SELECT ... ORDER BY updated_at, id) TO STDOUT (FORMAT
  binary)`` piped, bytes as they come, into ``COPY ... FROM STDIN (FORMAT binary)`` of a table
  keyed on ``id`` (psycopg on both ends).
- **SQLite -> DuckDB**: DuckDB's SQLite scanner, ``INSERT INTO ... SELECT ... FROM
  sqlite_scan(...)``. The extension is taken from DuckDB's extension directory, else from the
  ``duckdb-extension-sqlite-scanner`` package (``make bench`` installs it; built for the
  previous DuckDB patch release, it is loaded with ``allow_extensions_metadata_mismatch``),
  else DuckDB reads the SQLite file's Arrow stream from ADBC (the Python-side alternative). The
  run reports which.
- **MySQL/MariaDB -> PostgreSQL**: the ``mariadb`` client's tab-separated batch output
  (``--batch --quick``) piped into ``COPY ... FROM STDIN`` (text format) of a keyed table.
- **PostgreSQL -> DuckDB**: DuckDB's postgres extension cannot be loaded offline here (built
  for one DuckDB release only), so DuckDB inserts ADBC's Arrow stream of the ordered query.

Incremental runs read the rows from the destination's highest ``updated_at`` on (inclusive, as
ours), stage them and upsert them in one statement (DuckDB: delete the keys, insert).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.databases import _POSTGRES_COLUMNS, TABLE, DuckDbDestination, mysql_cli
from bench.routes import LIMIT_SCHEMA, Route
from bench.source_data import COLUMNS

_DUCKDB_COLUMNS = (
    "id BIGINT NOT NULL, customer VARCHAR NOT NULL, event_name VARCHAR NOT NULL, "
    "amount DECIMAL(12, 2) NOT NULL, payload VARCHAR NOT NULL, "
    "created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL"
)
_NAMES = ", ".join(COLUMNS)
_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "id")


def reset_limit(route: Route) -> None:
    route.limit.reset()


def run_limit(route: Route, *, batch_size: int) -> Any:
    """One phase of the route by the databases' own bulk paths (``batch_size`` is not used)."""
    from bench.tools import ToolRun

    source_kind = route.name.split("-")[0]
    if isinstance(route.limit, DuckDbDestination):
        rows, method, seconds = _into_duckdb(route, source_kind)
    else:
        rows, method, seconds = _into_postgres(route, source_kind)
    return ToolRun(seconds=seconds, rows=rows, details={"method": method})


# --- into DuckDB ---------------------------------------------------------------------------


def _scanner_package() -> Path | None:
    """The SQLite scanner shipped by the ``duckdb-extension-sqlite-scanner`` package, if any."""
    spec = importlib.util.find_spec("duckdb_extension_sqlite_scanner")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).glob("extensions/*/*.duckdb_extension"))
    return found[-1] if found else None


def _connect_duckdb(path: Path, *, sqlite: bool) -> tuple[Any, str | None]:
    """A DuckDB connection, with the SQLite scanner loaded when asked and loadable here, and
    how it was found (``None``: not loadable)."""
    import duckdb

    con = duckdb.connect(str(path))
    if not sqlite:
        return con, None
    try:
        con.execute("LOAD sqlite_scanner")
        return con, "sqlite_scan (DuckDB's extension)"
    except duckdb.Error:
        con.close()
    package = _scanner_package()
    if package is None:
        return duckdb.connect(str(path)), None
    # the package's build carries another patch release's metadata, hence no valid signature
    con = duckdb.connect(str(path), config={"allow_unsigned_extensions": "true"})
    con.execute("SET allow_extensions_metadata_mismatch = true")
    try:
        con.execute(f"LOAD '{package}'")
    except duckdb.Error:
        return con, None
    return con, f"sqlite_scan (extension package built for DuckDB {package.parent.name})"


def _into_duckdb(route: Route, source_kind: str) -> tuple[int, str, float]:
    destination = route.limit
    assert isinstance(destination, DuckDbDestination)
    destination.path.parent.mkdir(parents=True, exist_ok=True)
    con, method = _connect_duckdb(destination.path, sqlite=source_kind == "sqlite")
    con.execute("SET enable_progress_bar = false")
    target = f"{LIMIT_SCHEMA}.{TABLE}"
    started = time.perf_counter()
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [LIMIT_SCHEMA, TABLE],
    ).fetchone()[0]
    since = con.execute(f"SELECT max(updated_at) FROM {target}").fetchone()[0] if exists else None
    if not exists:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {LIMIT_SCHEMA}")
        con.execute(f"CREATE TABLE {target} ({_DUCKDB_COLUMNS})")
    typed = (
        "SELECT id::BIGINT AS id, customer, event_name, amount::DECIMAL(12, 2) AS amount, "
        "payload::VARCHAR AS payload, created_at::TIMESTAMP AS created_at, "
        "updated_at::TIMESTAMP AS updated_at FROM {}"
    )
    source = cursor = None
    if method is not None:
        path = str(route.source.path)  # type: ignore[union-attr]
        select = typed.format(f"sqlite_scan('{path}', '{TABLE}')")
        if since is not None:
            select += f" WHERE updated_at::TIMESTAMP >= TIMESTAMP '{since}'"
    else:
        source, cursor, method = _arrow_stream(route, source_kind, since)
        reader = cursor.fetch_record_batch()  # noqa: F841 - read by the statement by name
        select = typed.format("reader")
    if since is None:
        con.execute(f"INSERT INTO {target} {select}")
        rows = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    else:
        con.execute("BEGIN")
        con.execute(f"CREATE TEMPORARY TABLE changed AS {select}")
        rows = con.execute("SELECT count(*) FROM changed").fetchone()[0]
        con.execute(f"DELETE FROM {target} WHERE id IN (SELECT id FROM changed)")
        con.execute(f"INSERT INTO {target} SELECT * FROM changed")
        con.execute("COMMIT")
    con.close()
    if source is not None:
        cursor.close()
        source.close()
    return int(rows), method, time.perf_counter() - started


def _arrow_stream(
    route: Route, source_kind: str, since: dt.datetime | None
) -> tuple[Any, Any, str]:
    """An ADBC connection and its cursor that ran the query of the rows (from ``since`` on)."""
    where = "" if since is None else f" WHERE updated_at >= '{since.isoformat(sep=' ')}'"
    if source_kind == "sqlite":
        import adbc_driver_sqlite.dbapi as adbc

        connection = adbc.connect(str(route.source.path))  # type: ignore[union-attr]
        sql = f"SELECT {_NAMES} FROM {TABLE}{where}"
        method = "DuckDB inserts ADBC's Arrow stream of the SQLite table (no scanner here)"
    else:
        import adbc_driver_postgresql.dbapi as adbc

        connection = adbc.connect(route.source.url)
        sql = (
            f"SELECT {_NAMES} FROM {route.source.namespace}.{TABLE}{where} ORDER BY updated_at, id"
        )
        method = "DuckDB inserts ADBC's Arrow stream of the ordered query (python side)"
    cursor = connection.cursor()
    cursor.execute(sql)
    return connection, cursor, method


# --- into PostgreSQL -----------------------------------------------------------------------


def _into_postgres(route: Route, source_kind: str) -> tuple[int, str, float]:
    import psycopg

    destination = route.limit
    target = f"{LIMIT_SCHEMA}.{TABLE}"
    columns = _POSTGRES_COLUMNS.format(
        payload="jsonb" if getattr(route.source, "json_payload", False) else "text"
    )
    with psycopg.connect(destination.url) as dst:
        started = time.perf_counter()
        exists = dst.execute("SELECT to_regclass(%s)", (target,)).fetchone()[0]
        since = None
        if exists:
            since = dst.execute(f"SELECT max(updated_at) FROM {target}").fetchone()[0]
        if not exists:
            dst.execute(f"CREATE SCHEMA IF NOT EXISTS {LIMIT_SCHEMA}")
            dst.execute(f"CREATE TABLE {target} ({columns}, PRIMARY KEY (id))")
            into = target
        else:
            dst.execute(f"CREATE TEMPORARY TABLE changed ({columns}) ON COMMIT DROP")
            into = "changed"
        if source_kind == "postgres":
            method = "COPY TO STDOUT (FORMAT binary) | COPY FROM STDIN (FORMAT binary)"
            _pipe_postgres(route, dst, into, since)
        else:
            method = "mariadb --batch --quick | COPY FROM STDIN (text)"
            _pipe_mysql(route, dst, into, since)
        if into == "changed":
            rows = dst.execute("SELECT count(*) FROM changed").fetchone()[0]
            dst.execute(
                f"INSERT INTO {target} ({_NAMES}) SELECT {_NAMES} FROM changed "
                f"ON CONFLICT (id) DO UPDATE SET {_UPDATES}"
            )
        else:
            rows = dst.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        dst.commit()
        seconds = time.perf_counter() - started
    return int(rows), method, seconds


def _pipe_postgres(route: Route, dst: Any, into: str, since: dt.datetime | None) -> None:
    import psycopg

    where = "" if since is None else " WHERE updated_at >= %s"
    query = (
        f"COPY (SELECT {_NAMES} FROM {route.source.namespace}.{TABLE}{where} "
        "ORDER BY updated_at, id) TO STDOUT (FORMAT binary)"
    )
    with (
        psycopg.connect(route.source.url) as src,
        src.cursor() as out_cursor,
        out_cursor.copy(query, (since,) if since else None) as reader,
        dst.cursor() as in_cursor,
        in_cursor.copy(f"COPY {into} ({_NAMES}) FROM STDIN (FORMAT binary)") as writer,
    ):
        for chunk in reader:
            writer.write(chunk)


def _pipe_mysql(route: Route, dst: Any, into: str, since: dt.datetime | None) -> None:
    where = "" if since is None else f" WHERE updated_at >= '{since.isoformat(sep=' ')}'"
    query = f"SELECT {_NAMES} FROM {TABLE}{where} ORDER BY updated_at, id"
    command = [*mysql_cli(route.source.url), "-e", query]
    with (
        subprocess.Popen(command, stdout=subprocess.PIPE) as client,
        dst.cursor() as cursor,
        cursor.copy(f"COPY {into} ({_NAMES}) FROM STDIN") as writer,
    ):
        assert client.stdout is not None
        while chunk := client.stdout.read(1 << 20):
            writer.write(chunk)
    if client.returncode:
        raise RuntimeError(f"the mariadb client failed (exit {client.returncode})")
