"""Opening the sync API's store: a SQLAlchemy engine, migrated to the latest schema.

Alembic is imported only when the store is behind the packaged migrations: a store already at
head is recognised with one query on ``alembic_version``, so opening it stays light.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from sync_pipelines.common import settings

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 74_651_203  # advisory lock id: one migrator at a time per database
_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*(?:None|[\"']([^\"']+)[\"'])\s*$", re.M)


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_store_engine(database_url: str | None = None) -> sa.Engine:
    """An engine on the store (default: the SQLite file in the home), without migrating."""
    url = make_url(database_url or settings.database_url())
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The packaged migrations' heads, read from the version files' ``revision`` lines."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text()))
        if found.get("revision"):
            revisions.add(found["revision"])
            if found.get("down_revision"):
                parents.add(found["down_revision"])
    return frozenset(revisions - parents)


def _at_head(engine: sa.Engine) -> bool:
    """Whether the store's ``alembic_version`` holds exactly the packaged heads."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.DBAPIError:  # no version table yet: a new store
        return False
    return {row[0] for row in rows} == head_revisions()


def migrate(engine: sa.Engine) -> None:
    """Bring the store's schema to the latest migration (safe to call from many processes)."""
    if _at_head(engine):
        return
    from alembic import command

    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        command.upgrade(alembic_config(connection), "head")


def open_store(database_url: str | None = None) -> sa.Engine:
    """An engine on the store, migrated to the latest schema."""
    engine = create_store_engine(database_url)
    migrate(engine)
    return engine
