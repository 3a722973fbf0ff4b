"""custom_join reads the source read-only: a query that calls a writing function fails and writes
nothing, on every database (PostgreSQL and SQLite through ADBC too)."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from sync_pipelines.contract.models import RunStatus
from sync_pipelines.engine import SyncRunError, run_sync
from sync_pipelines.engine.connection_specs import create_engine
from sync_pipelines.engine.errors import SourceSchemaError
from sync_pipelines.engine.sql.relation import _custom_join_text
from sync_pipelines_tests.engine.conftest import Scenario, event, events_table

NAME_FIELDS = [
    {"name": "id", "type": "integer"},
    {"name": "name", "type": "string"},
    {"name": "updated_at", "type": "timestamp"},
]
NAME_MAPPINGS = {"id": "id", "name": "name", "updated_at": "updated_at"}


def scenario_from(client, databases, kind: str) -> Scenario:
    source = databases(kind, "source")
    return Scenario(client, source, databases("duckdb", "destination"))


def audited_source(scenario: Scenario) -> str:
    """Events plus an ``audit`` table; returns the events table name as a query writes it."""
    source = scenario.source
    source.create(events_table(source), [event(1, 1), event(2, 2)])
    source.create(source.table("audit", sa.Column("n", sa.Integer)))
    return f'"{source.namespace}".events' if source.kind == "postgres" else "events"


def assert_failed_writing_nothing(scenario: Scenario, sync, needle: str) -> str:
    """The run fails naming the read-only refusal; the destination holds no row."""
    with pytest.raises(SyncRunError, match=needle) as raised:
        run_sync(sync.id, scenario.client)
    assert scenario.client.list_runs(sync.id)[0].status is RunStatus.FAILED
    assert not scenario.destination.has_table(scenario.table_name) or scenario.rows() == []
    return str(raised.value)


def audit_rows(scenario: Scenario) -> list[tuple]:
    with scenario.source.engine.connect() as connection:
        audit = scenario.source.reflect("audit")
        return [tuple(row) for row in connection.execute(sa.select(audit))]


def test_postgres_custom_join_cannot_call_a_writing_function(client, databases) -> None:
    scenario = scenario_from(client, databases, "postgres")
    events = audited_source(scenario)
    schema = scenario.source.namespace
    scenario.source.execute(
        sa.text(
            f'CREATE FUNCTION "{schema}".sp_write() RETURNS int LANGUAGE sql VOLATILE AS '
            f'$$ INSERT INTO "{schema}".audit VALUES (1) RETURNING n $$'
        )
    )
    scenario.source.execute(sa.text(f'CREATE SEQUENCE "{schema}".sp_seq'))
    scenario.make_object(fields=NAME_FIELDS)
    writes = scenario.make_sync(
        mappings=NAME_MAPPINGS,
        custom_join=f'SELECT id, name, updated_at, "{schema}".sp_write() AS w FROM {events}',
    )
    message = assert_failed_writing_nothing(scenario, writes, "read-only transaction")
    assert "cannot execute INSERT" in message
    advances = scenario.make_sync(
        customer="globex",
        mappings=NAME_MAPPINGS,
        custom_join=f"SELECT id, name, updated_at, nextval('\"{schema}\".sp_seq') AS n "
        f"FROM {events}",
    )
    assert_failed_writing_nothing(scenario, advances, "read-only transaction")
    assert audit_rows(scenario) == []
    with scenario.source.engine.connect() as connection:
        called = connection.execute(sa.text(f'SELECT is_called FROM "{schema}".sp_seq')).scalar()
    assert called is False


def test_postgres_custom_join_reads_in_a_read_only_transaction_through_adbc(
    client, databases, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="sync_pipelines.engine")
    scenario = scenario_from(client, databases, "postgres")
    events = audited_source(scenario)
    scenario.make_object(fields=NAME_FIELDS)
    # the transaction's own setting is synced into the name column: what the reader saw
    sync = scenario.make_sync(
        mappings=NAME_MAPPINGS,
        custom_join=f"SELECT id, current_setting('transaction_read_only') AS name, updated_at "
        f"FROM {events}; -- read-only, whichever reader runs it",
    )
    run_sync(sync.id, scenario.client)
    assert [(row["id"], row["name"]) for row in scenario.rows()] == [(1, "on"), (2, "on")]
    assert "reading with ADBC failed" not in caplog.text  # ADBC read it, not the fallback


def test_mysql_custom_join_cannot_call_a_writing_function(client, databases) -> None:
    scenario = scenario_from(client, databases, "mysql")
    events = audited_source(scenario)
    scenario.source.execute(
        sa.text(
            "CREATE FUNCTION sp_write() RETURNS INT MODIFIES SQL DATA NOT DETERMINISTIC "
            "BEGIN INSERT INTO audit VALUES (1); RETURN 1; END"
        )
    )
    scenario.make_object(fields=NAME_FIELDS)
    sync = scenario.make_sync(
        mappings=NAME_MAPPINGS,
        custom_join=f"SELECT id, name, updated_at, sp_write() AS w FROM {events};",
    )
    assert_failed_writing_nothing(scenario, sync, "READ ONLY transaction")
    assert audit_rows(scenario) == []


def test_duckdb_custom_join_cannot_advance_a_sequence_or_read_files(
    client, databases, tmp_path
) -> None:
    scenario = scenario_from(client, databases, "duckdb")
    events = audited_source(scenario)
    scenario.source.execute(sa.text("CREATE SEQUENCE sp_seq"))
    scenario.source.engine.dispose()  # the source is not open in this process any more
    scenario.make_object(fields=NAME_FIELDS)
    sync = scenario.make_sync(
        mappings=NAME_MAPPINGS,
        custom_join=f"SELECT id, name, updated_at, nextval('sp_seq') AS n FROM {events}",
    )
    assert_failed_writing_nothing(scenario, sync, "read-only")
    (tmp_path / "secret.csv").write_text("a\nserver file\n")
    reader = create_engine(scenario.source.connection(), read_only=True)
    try:
        with reader.connect() as connection, pytest.raises(sa.exc.DBAPIError, match="disabled"):
            connection.execute(sa.text(f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')"))
    finally:
        reader.dispose()
    with scenario.source.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT nextval('sp_seq')")).scalar() == 1


def test_sqlite_sources_open_read_only_and_missing_files_stay_missing(
    client, databases, tmp_path
) -> None:
    scenario = scenario_from(client, databases, "sqlite")
    audited_source(scenario)
    before = (tmp_path / "source.sqlite").read_bytes()
    scenario.make_object(fields=NAME_FIELDS)
    sync = scenario.make_sync(
        mappings=NAME_MAPPINGS, custom_join="select id, name, updated_at from events; -- all"
    )
    run_sync(sync.id, scenario.client)  # through ADBC, opened with mode=ro
    assert [row["id"] for row in scenario.rows()] == [1, 2]
    assert (tmp_path / "source.sqlite").read_bytes() == before
    reader = create_engine(scenario.source.connection(), read_only=True)
    try:
        with reader.connect() as connection, pytest.raises(sa.exc.OperationalError, match="read"):
            connection.execute(sa.text("INSERT INTO audit VALUES (1)"))
    finally:
        reader.dispose()
    assert audit_rows(scenario) == []
    missing = create_engine(
        {"connection_type": "sqlite", "url": f"sqlite:///{tmp_path / 'missing.sqlite'}"},
        read_only=True,
    )
    with pytest.raises(sa.exc.OperationalError):
        missing.connect()
    assert not (tmp_path / "missing.sqlite").exists()


def test_the_engine_checks_custom_join_again_before_running_it() -> None:
    assert _custom_join_text("select id from events; -- the end") == "select id from events"
    for query in ("select load_extension('/tmp/x.so')", "select * from '/etc/passwd.csv'"):
        with pytest.raises(SourceSchemaError, match="custom_join must not"):
            _custom_join_text(query)
