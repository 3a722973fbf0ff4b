"""Connection specs become SQLAlchemy URLs with the installed drivers; secrets stay hidden."""

from __future__ import annotations

import importlib.util

import pytest

from sync_pipelines.engine import (
    ConnectionSpecError,
    MissingExtraError,
    connection_url,
    describe_url,
)


def test_typed_postgres_config_uses_psycopg() -> None:
    url = connection_url(
        {
            "connection_type": "postgres",
            "postgres_config": {
                "username": "app",
                "password": "p@ss:word",
                "database_name": "acme",
                "host": "db.internal",
                "port": 5433,
            },
        }
    )
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app",
        "p@ss:word",
        "db.internal",
        5433,
        "acme",
    )
    assert describe_url(url) == "postgresql+psycopg://app:***@db.internal:5433/acme"


def test_typed_mysql_config_uses_pymysql() -> None:
    url = connection_url(
        {
            "connection_type": "mysql",
            "mysql_config": {"username": "root", "database_name": "shop", "host": "h"},
        }
    )
    assert url.drivername == "mysql+pymysql"


@pytest.mark.parametrize(
    ("connection_type", "given", "driver"),
    [
        ("postgres", "postgresql://app@db/acme", "postgresql+psycopg"),
        ("postgres", "postgres://app@db/acme", "postgresql+psycopg"),
        ("postgres", "postgresql+psycopg2://app@db/acme", "postgresql+psycopg2"),
        ("mysql", "mysql://root@db/shop", "mysql+pymysql"),
        ("mysql", "mariadb://root@db/shop", "mariadb+pymysql"),
        ("sqlite", "sqlite:///data.db", "sqlite"),
        ("duckdb", "duckdb:///warehouse.duckdb", "duckdb"),
    ],
)
def test_url_without_a_driver_gets_the_installed_one(
    connection_type: str, given: str, driver: str
) -> None:
    assert connection_url({"connection_type": connection_type, "url": given}).drivername == driver


def test_url_must_fit_the_connection_type() -> None:
    with pytest.raises(ConnectionSpecError, match="does not fit"):
        connection_url({"connection_type": "postgres", "url": "mysql://root@db/shop"})


def test_environment_references_are_never_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    """``${NAME}`` belongs to the files an operator loads (syncs.yaml), not to connection specs."""
    monkeypatch.setenv("ACME_DB_PASSWORD", "from-env")
    url = connection_url(
        {"connection_type": "postgres", "url": "postgresql://app:${ACME_DB_PASSWORD}@db/acme"}
    )
    assert url.password == "${ACME_DB_PASSWORD}"
    config = connection_url(
        {
            "connection_type": "mysql",
            "mysql_config": {
                "username": "u",
                "password": "${ACME_DB_PASSWORD}",
                "database_name": "${ACME_DB_PASSWORD}",
                "host": "db",
            },
        }
    )
    assert config.password == "${ACME_DB_PASSWORD}" and config.database == "${ACME_DB_PASSWORD}"


@pytest.mark.parametrize(
    ("connection_type", "module", "config"),
    [
        (
            "snowflake",
            "snowflake.sqlalchemy",
            {
                "username": "u",
                "password": "p",
                "warehouse_name": "wh",
                "database_name": "db",
                "host": "acct.snowflakecomputing.com",
                "role": "r",
            },
        ),
        ("bigquery", "sqlalchemy_bigquery", {"credentials": "{}", "location": "US"}),
        (
            "redshift",
            "sqlalchemy_redshift",
            {"username": "u", "password": "p", "database_name": "db", "host": "h"},
        ),
    ],
)
def test_warehouse_dialects_are_extras(connection_type: str, module: str, config: dict) -> None:
    spec = {"connection_type": connection_type, f"{connection_type}_config": config}
    if importlib.util.find_spec(module.split(".")[0]) is not None:
        assert connection_url(spec).get_backend_name() == connection_type
        return
    with pytest.raises(MissingExtraError, match=rf"sync-pipelines\[{connection_type}\]"):
        connection_url(spec)


def test_unknown_connection_type() -> None:
    with pytest.raises(ConnectionSpecError, match="unknown connection_type"):
        connection_url({"connection_type": "mongodb", "url": "mongodb://x"})
