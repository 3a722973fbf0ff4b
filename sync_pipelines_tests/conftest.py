"""Fixtures for the real databases every test runs against.

PostgreSQL and MariaDB are read from ``SYNC_TEST_POSTGRES_URL`` and ``SYNC_TEST_MYSQL_URL``
(defaults: the local servers of the development machines). Unreachable, their tests skip with the
reason, except under ``CI``, where they fail: CI must exercise every database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

POSTGRES_URL = os.environ.get(
    "SYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SYNC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _require_server(url: str, name: str, env: str) -> None:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure to connect means "unreachable"
        message = f"{name} unreachable at {make_url(url).render_as_string()} ({env}): {error}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run every database test", pytrace=False)
        pytest.skip(message)
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own sync-pipelines home (store, secret key)."""
    home = tmp_path / "home"
    monkeypatch.setenv("SYNC_PIPELINES_HOME", str(home))
    monkeypatch.delenv("SYNC_PIPELINES_DATABASE_URL", raising=False)
    monkeypatch.delenv("SYNC_PIPELINES_SECRET_KEY", raising=False)
    return home


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The PostgreSQL server's URL, once it is known to answer."""
    _require_server(POSTGRES_URL, "PostgreSQL", "SYNC_TEST_POSTGRES_URL")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def mysql_server_url() -> str:
    """The MariaDB/MySQL server's URL, once it is known to answer."""
    _require_server(MYSQL_URL, "MariaDB", "SYNC_TEST_MYSQL_URL")
    return MYSQL_URL


def unique_name(prefix: str) -> str:
    """A fresh identifier for a schema or database owned by one test."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def postgres_schema(postgres_server_url: str) -> Iterator[tuple[URL, str]]:
    """A fresh PostgreSQL schema, dropped afterwards: ``(server url, schema name)``."""
    schema = unique_name("sp_test")
    engine = sa.create_engine(postgres_server_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(postgres_server_url), schema
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def mysql_database(mysql_server_url: str) -> Iterator[URL]:
    """A fresh MariaDB database, dropped afterwards: its URL."""
    name = unique_name("sp_test")
    engine = sa.create_engine(mysql_server_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield make_url(mysql_server_url).set(database=name)
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP DATABASE `{name}`"))
        engine.dispose()


@pytest.fixture
def postgres_store_url(postgres_server_url: str) -> Iterator[str]:
    """A sync API store URL on a fresh PostgreSQL schema (its search_path), dropped afterwards."""
    schema = unique_name("sp_store")
    admin = sa.create_engine(postgres_server_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
