"""The store: migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sync_pipelines.api.store import open_store
from sync_pipelines.api.tables import metadata


def test_migrations_match_the_table_definitions(store_url):
    engine = open_store(store_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == "0004"
        assert compare_metadata(context, metadata) == []
    open_store(store_url).dispose()  # migrating again is a no-op
    engine.dispose()


def test_an_empty_sqlite_home_gets_a_store(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNC_PIPELINES_HOME", str(tmp_path / "fresh" / "home"))
    engine = open_store()
    assert str(tmp_path / "fresh" / "home" / "sync_api.sqlite") == engine.url.database
    assert "syncs" in sa.inspect(engine).get_table_names()
    engine.dispose()
