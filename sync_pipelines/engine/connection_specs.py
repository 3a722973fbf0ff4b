"""Connection specs (``secret_box.unseal`` output) to SQLAlchemy URLs and engines.

A spec is ``{"connection_type": ..., "url": ...}`` or ``{"connection_type": ...,
"<type>_config": {...}}``. Values are used as given: nothing is read from the environment here
(``${NAME}`` belongs to the files an operator loads, see ``orchestration/syncs_file/``).

Sources are opened read-only (:func:`create_engine` with ``read_only``), and a server confines
file databases (SQLite, DuckDB) to the directories its operator allows (:func:`confine_file`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite  # noqa: F401
from sqlalchemy.engine import URL, make_url

from sync_pipelines.common import secret_box
from sync_pipelines.common.error_text import first_line
from sync_pipelines.common.redaction import redact, secret_values
from sync_pipelines.contract.models import RunLease, SealedConnection, check_connection_url
from sync_pipelines.engine.errors import (
    ConnectionSpecError,
    DatabaseUnreachableError,
    EngineError,
    MissingExtraError,
)

__all__ = [
    "check_database_file",
    "confine_file",
    "connection_secrets",
    "connection_url",
    "create_engine",
    "database_file",
    "describe_url",
    "dialect_of",
    "lease_spec",
    "open_connection",
    "redact_connection",
]

# connection_type -> the drivername used when a spec does not name a driver
_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift+redshift_connector",
}
# URL scheme without driver -> drivername with the installed driver
_SCHEMES = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "redshift": "redshift+redshift_connector",
}
# the module that provides a dialect -> the optional extra that installs it
_EXTRAS = {
    "snowflake": ("snowflake.sqlalchemy", "snowflake"),
    "bigquery": ("sqlalchemy_bigquery", "bigquery"),
    "redshift": ("sqlalchemy_redshift", "redshift"),
}
# which URL backends fit which connection types
_BACKENDS = {
    "postgres": {"postgresql"},
    "mysql": {"mysql", "mariadb"},
    "sqlite": {"sqlite"},
    "duckdb": {"duckdb"},
    "snowflake": {"snowflake"},
    "bigquery": {"bigquery"},
    "redshift": {"redshift", "postgresql"},
}
_FILE_BACKENDS = ("sqlite", "duckdb")

logger = logging.getLogger("sync_pipelines.engine")


def _require_extra(connection_type: str) -> None:
    if connection_type in _EXTRAS:
        module, extra = _EXTRAS[connection_type]
        if importlib.util.find_spec(module.split(".")[0]) is None or (
            "." in module and importlib.util.find_spec(module) is None
        ):
            raise MissingExtraError(
                f"connection_type {connection_type!r} needs the {extra!r} extra: "
                f"pip install 'sync-pipelines[{extra}]'"
            )


def _url_from_string(connection_type: str, text: str) -> URL:
    try:
        url = check_connection_url(text)
    except ValueError as error:
        raise ConnectionSpecError(f"the {connection_type} connection: {error}") from None
    if "+" not in url.drivername and url.drivername in _SCHEMES:
        url = url.set(drivername=_SCHEMES[url.drivername])
    backend = url.get_backend_name()
    if backend not in _BACKENDS.get(connection_type, {backend}):
        raise ConnectionSpecError(
            f"connection_type {connection_type!r} does not fit a {backend!r} url"
        )
    return url


def _url_from_config(connection_type: str, config: dict[str, Any]) -> URL:
    password = config.get("password")
    drivername = _DRIVERS[connection_type]
    if connection_type in ("postgres", "mysql", "redshift"):
        return URL.create(
            drivername,
            username=config.get("username"),
            password=password,
            host=config.get("host"),
            port=config.get("port"),
            database=config.get("database_name"),
        )
    if connection_type == "snowflake":
        account = str(config["host"]).removesuffix(".snowflakecomputing.com")
        account = account.removeprefix("https://")
        return URL.create(
            drivername,
            username=config.get("username"),
            password=password,
            host=account,
            database=config.get("database_name"),
            query={"warehouse": config["warehouse_name"], "role": config["role"]},
        )
    if connection_type == "bigquery":
        return URL.create(drivername, host=config.get("project_id") or None)
    raise ConnectionSpecError(f"connection_type {connection_type!r} has no typed config")


def connection_url(spec: dict[str, Any]) -> URL:
    """The SQLAlchemy URL of a connection spec (driver filled in).

    Raises:
        ConnectionSpecError: the spec is incomplete or contradictory.
        MissingExtraError: the connection type's dialect is an extra that is not installed.
    """
    connection_type = str(spec.get("connection_type") or "").lower()
    if connection_type not in _DRIVERS:
        raise ConnectionSpecError(f"unknown connection_type {spec.get('connection_type')!r}")
    _require_extra(connection_type)
    if spec.get("url"):
        return _url_from_string(connection_type, str(spec["url"]))
    config = spec.get(f"{connection_type}_config")
    if not config:
        raise ConnectionSpecError(
            f"the {connection_type} connection has neither url nor {connection_type}_config"
        )
    return _url_from_config(connection_type, config)


def _engine_options(connection_type: str, spec: dict[str, Any]) -> dict[str, Any]:
    if connection_type in ("postgres", "redshift"):
        return {"connect_args": {"connect_timeout": 10}}
    if connection_type == "mysql":
        return {"connect_args": {"connect_timeout": 10, "charset": "utf8mb4"}}
    if connection_type == "bigquery":
        config = spec.get("bigquery_config") or {}
        options: dict[str, Any] = {}
        if config.get("credentials"):
            options["credentials_info"] = json.loads(config["credentials"])
        if config.get("location"):
            options["location"] = config["location"]
        return options
    return {}


def _read_only_options(url: URL) -> tuple[URL, dict[str, Any]]:
    """The URL and engine options that open ``url`` read-only, where the dialect can.

    MySQL sessions are read-only, SQLite opens its file with ``mode=ro`` (never creating it) and
    DuckDB with ``read_only`` and without access to other files or the network. (PostgreSQL
    transactions are made read-only as they begin: :func:`create_engine`.)
    """
    backend = url.get_backend_name()
    if backend in ("mysql", "mariadb"):
        return url, {"connect_args": {"init_command": "SET SESSION TRANSACTION READ ONLY"}}
    database = database_file(url)
    if backend == "sqlite" and database is not None:
        if url.query.get("uri"):
            return url.update_query_dict({"mode": "ro"}), {}
        uri = f"file:{quote(str(Path(database).absolute()))}?mode=ro"
        return url, {"creator": lambda: sqlite3.connect(uri, uri=True, check_same_thread=False)}
    if backend == "duckdb":
        config = {"enable_external_access": False}
        return url, {"connect_args": {"read_only": database is not None, "config": config}}
    return url, {}


def create_engine(spec: dict[str, Any], *, read_only: bool = False, **options: Any) -> sa.Engine:
    """A SQLAlchemy engine for a connection spec (no connection is opened yet).

    Args:
        spec: the connection spec.
        read_only: open the database read-only where the dialect can (sources, browsing).
        options: more :func:`sqlalchemy.create_engine` options.
    """
    url = connection_url(spec)
    connection_type = str(spec["connection_type"]).lower()
    merged = _engine_options(connection_type, spec)
    if read_only:
        url, extra = _read_only_options(url)
        connect_args = {**merged.get("connect_args", {}), **extra.pop("connect_args", {})}
        merged = {**merged, **extra, **({"connect_args": connect_args} if connect_args else {})}
    engine = sa.create_engine(url, **{**merged, **options})
    if engine.dialect.name == "duckdb":
        quote_duckdb_keywords(engine)
    if read_only and url.get_backend_name() == "postgresql":
        # per transaction rather than a startup option, which poolers such as pgbouncer refuse
        sa.event.listen(engine, "begin", _read_only_transaction)
    if read_only and url.get_backend_name() == "duckdb" and database_file(url) is not None:
        sa.event.listen(engine, "do_connect", _duckdb_shared_instance)
    return engine


@functools.cache
def _duckdb_keywords() -> frozenset[str]:
    import duckdb

    rows = duckdb.sql("SELECT keyword_name FROM duckdb_keywords()").fetchall()
    return frozenset(row[0] for row in rows)


def quote_duckdb_keywords(engine: sa.Engine) -> None:
    """Have the engine quote every DuckDB keyword used as a name (``by``, ``order``, ...).

    duckdb_engine quotes PostgreSQL's reserved words only; DuckDB's parser needs more.
    """
    preparer = engine.dialect.identifier_preparer
    preparer.reserved_words = set(preparer.reserved_words) | _duckdb_keywords()


def _read_only_transaction(connection: sa.Connection) -> None:
    # a plain DBAPI cursor: the connection may stream results through a server-side one
    cursor = connection.connection.cursor()
    try:
        cursor.execute("SET TRANSACTION READ ONLY")
    finally:
        cursor.close()


def _duckdb_shared_instance(
    dialect: sa.Dialect, _record: Any, cargs: list[Any], cparams: dict[str, Any]
) -> Any:
    """DuckDB read-only, or this process's open read-write instance of the same file.

    DuckDB opens a file once per process: when this process already writes it (an embedded
    user's own connection), the source shares that instance rather than failing.
    """
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as error:
        if "different configuration" not in str(error):
            raise
        logger.info("a DuckDB source is open read-write in this process; reading through it")
        shared = {k: v for k, v in cparams.items() if k not in ("read_only", "config")}
        return dialect.connect(*cargs, **shared)


def database_file(url: URL) -> str | None:
    """The local file a SQLite or DuckDB URL opens (``None``: in memory or not a file database)."""
    if url.get_backend_name() not in _FILE_BACKENDS:
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith(("md:", "motherduck:")):
        return None
    return database


def confine_file(
    spec: dict[str, Any], roots: Sequence[str], *, denied: Sequence[str] = ()
) -> dict[str, Any]:
    """The spec of a file database kept inside ``roots``, its path made absolute and resolved.

    Other connections are returned as they are. A relative path is taken inside the first root.

    Args:
        spec: the connection spec.
        roots: the directories the connection may use (none: file databases are refused).
        denied: files never allowed (the sync API's store and key), and their ``-wal`` etc.

    Raises:
        ConnectionSpecError: the file is outside ``roots``, goes through ``..``, is denied, or
            its URL carries parameters.
    """
    if str(spec.get("connection_type") or "").lower() not in _FILE_BACKENDS:
        return spec  # only sqlite and duckdb urls fit these types (connection_url checks)
    url = connection_url(spec)
    database = database_file(url)
    if database is None:
        return spec
    if not roots:
        raise ConnectionSpecError(
            "file databases (sqlite, duckdb) are not allowed on this server; its operator can "
            "allow directories with SYNC_PIPELINES_FILE_ROOTS"
        )
    if url.query:
        raise ConnectionSpecError("a sqlite or duckdb url takes no parameters on this server")
    given = Path(database)
    if ".." in given.parts:
        raise ConnectionSpecError(f"the path {database!r} must not contain '..'")
    resolved = (given if given.is_absolute() else Path(roots[0]) / given).resolve()
    allowed = [Path(root).resolve() for root in roots]
    if not any(resolved.is_relative_to(root) for root in allowed):
        raise ConnectionSpecError(
            f"the path {database!r} is outside the directories this organization may use: "
            + ", ".join(roots)
        )
    for name in denied:
        forbidden = str(Path(name).resolve())
        if str(resolved) == forbidden or str(resolved).startswith(forbidden + "-"):
            raise ConnectionSpecError(f"the path {database!r} is one of the sync API's own files")
    if "url" not in spec:
        return spec
    confined = make_url(spec["url"]).set(database=str(resolved))
    return {**spec, "url": confined.render_as_string(hide_password=False)}


def lease_spec(lease: RunLease, connection: SealedConnection, role: str) -> dict[str, Any]:
    """A lease's connection spec, unsealed, its file database kept where the server allows.

    Raises:
        ConnectionSpecError: the server would refuse the connection's file (``role`` names it).
    """
    spec = secret_box.unseal(connection.sealed)
    if lease.file_access is None:
        return spec
    try:
        return confine_file(spec, lease.file_access.roots, denied=lease.file_access.denied)
    except ConnectionSpecError as error:
        raise ConnectionSpecError(f"the {role} connection: {error}") from None


def connection_secrets(spec: dict[str, Any]) -> list[str]:
    """The secrets a spec holds (passwords, credentials), to hide them in messages."""
    found: list[str] = []
    with contextlib.suppress(EngineError):
        found.append(connection_url(spec).password or "")
    if spec.get("url"):
        raw = str(spec["url"])
        found.append(raw.partition("://")[2].rpartition("@")[0].partition(":")[2])
    for key, value in spec.items():
        if key.endswith("_config") and isinstance(value, dict):
            found += [str(value.get(name) or "") for name in ("password", "credentials")]
    return secret_values(found)


def redact_connection(text: str, spec: dict[str, Any]) -> str:
    """``text`` with every secret of ``spec`` replaced by ``***``."""
    return redact(text, connection_secrets(spec))


def describe_url(url: URL | sa.Engine) -> str:
    """A URL for messages and logs: the password shown as ``***``, parameters left out."""
    if isinstance(url, sa.Engine):
        url = url.url
    return url.set(query={}).render_as_string(hide_password=True)


def dialect_of(spec: dict[str, Any]) -> str:
    """The SQLAlchemy backend name of a spec (``postgresql``, ``mysql``, ``sqlite``, ...)."""
    return connection_url(spec).get_backend_name()


@contextlib.contextmanager
def open_connection(engine: sa.Engine, role: str) -> Iterator[sa.Connection]:
    """A connection, or an error naming the ``role`` database (password hidden) when it is
    unreachable."""
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as error:
        raise DatabaseUnreachableError(
            f"cannot connect to the {role} database {describe_url(engine)}: {first_line(error)}"
        ) from None
    with connection:
        yield connection


def check_database_file(engine: sa.Engine, role: str) -> None:
    """A file database read as ``role`` must exist: connecting would create an empty one."""
    if engine.dialect.name in ("sqlite", "duckdb"):
        database = engine.url.database
        local = database and database != ":memory:" and not database.startswith("md:")
        if local and not Path(database).exists():
            raise DatabaseUnreachableError(f"the {role} database file {database} does not exist")
