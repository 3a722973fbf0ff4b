"""The store: migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from sync_pipelines.api.store import alembic_config, head_revisions, open_store
from sync_pipelines.api.tables import metadata


def test_migrations_match_the_table_definitions(store_url):
    engine = open_store(store_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert context.get_current_revision() == head
        assert compare_metadata(context, metadata) == []
    open_store(store_url).dispose()  # migrating again is a no-op
    engine.dispose()


def test_an_empty_sqlite_home_gets_a_store(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNC_PIPELINES_HOME", str(tmp_path / "fresh" / "home"))
    engine = open_store()
    assert str(tmp_path / "fresh" / "home" / "sync_api.sqlite") == engine.url.database
    assert "syncs" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_the_heads_read_from_the_version_files_are_alembics():
    assert head_revisions() == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_a_store_behind_the_head_is_migrated_when_opened(store_url):
    engine = open_store(store_url)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), previous)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == previous
    engine.dispose()
    engine = open_store(store_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head
        assert compare_metadata(context, metadata) == []
    engine.dispose()
