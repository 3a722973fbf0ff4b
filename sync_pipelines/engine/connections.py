"""Connection specs (``secret_box.unseal`` output) to SQLAlchemy URLs and engines.

A spec is ``{"connection_type": ..., "url": ...}`` or ``{"connection_type": ...,
"<type>_config": {...}}``. ``${NAME}`` inside a URL or password is read from the environment
when connecting, so a spec may reference a secret without holding it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite  # noqa: F401
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from sync_pipelines.engine.errors import ConnectionSpecError, MissingExtraError

__all__ = [
    "connection_url",
    "create_engine",
    "describe_url",
    "dialect_of",
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
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _resolve_env(text: str, where: str) -> str:
    """Replace ``${NAME}`` with the environment's value of NAME."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConnectionSpecError(f"{where} references ${{{name}}}, which is not set")
        return os.environ[name]

    return _ENV_REFERENCE.sub(value, text)


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
        url = make_url(_resolve_env(text, "url"))
    except ArgumentError:
        raise ConnectionSpecError(
            f"the {connection_type} connection's url is not a SQLAlchemy URL "
            "(expected e.g. postgresql://user@host/db)"
        ) from None
    if "+" not in url.drivername and url.drivername in _SCHEMES:
        url = url.set(drivername=_SCHEMES[url.drivername])
    backend = url.get_backend_name()
    if backend not in _BACKENDS.get(connection_type, {backend}):
        raise ConnectionSpecError(
            f"connection_type {connection_type!r} does not fit a {backend!r} url"
        )
    if url.password is not None and isinstance(url.password, str):
        url = url.set(password=_resolve_env(url.password, "password"))
    return url


def _url_from_config(connection_type: str, config: dict[str, Any]) -> URL:
    password = config.get("password")
    if password is not None:
        password = _resolve_env(str(password), "password")
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
    """The SQLAlchemy URL of a connection spec (driver filled in, ``${ENV}`` resolved).

    Raises:
        ConnectionSpecError: the spec is incomplete, contradictory or references an unset variable.
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


def create_engine(spec: dict[str, Any], **options: Any) -> sa.Engine:
    """A SQLAlchemy engine for a connection spec (no connection is opened yet)."""
    url = connection_url(spec)
    connection_type = str(spec["connection_type"]).lower()
    engine = sa.create_engine(url, **{**_engine_options(connection_type, spec), **options})
    if engine.dialect.name == "duckdb":
        quote_duckdb_keywords(engine)
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


def describe_url(url: URL | sa.Engine) -> str:
    """A URL for messages and logs: the password shown as ``***``."""
    if isinstance(url, sa.Engine):
        url = url.url
    return url.render_as_string(hide_password=True)


def dialect_of(spec: dict[str, Any]) -> str:
    """The SQLAlchemy backend name of a spec (``postgresql``, ``mysql``, ``sqlite``, ...)."""
    return connection_url(spec).get_backend_name()
