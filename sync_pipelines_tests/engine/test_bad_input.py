"""Bad input fails the run with a clear message and changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sync_pipelines.contract.models import RunStatus
from sync_pipelines.engine import SyncRunError, run_sync
from sync_pipelines_tests.engine.conftest import (
    KINDS,
    Database,
    Scenario,
    event,
    events_table,
)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def scenario_for(client, databases, source_kind: str, destination_kind: str) -> Scenario:
    source = databases(source_kind, "source")
    same_server = source_kind == destination_kind and source_kind in ("postgres", "mysql")
    destination = source if same_server else databases(destination_kind, "destination")
    return Scenario(client, source, destination)


def synced(scenario: Scenario) -> tuple[list[dict], object]:
    """A first good run; returns the destination rows and the sync's cursor after it."""
    source = scenario.source.create(events_table(scenario.source), [event(i, i) for i in (1, 2)])
    sync = scenario.make_sync()
    run_sync(sync.id, scenario.client)
    scenario.source.insert(source, [event(3, 3)])
    return sync, source


def assert_failed_and_unchanged(scenario: Scenario, sync, rows_before, cursor_before, *needles):
    with pytest.raises(SyncRunError) as raised:
        run_sync(sync.id, scenario.client)
    message = str(raised.value)
    assert f"sync {sync.id}" in message
    for needle in needles:
        assert needle in message, message
    run = scenario.client.list_runs(sync.id)[0]
    assert run.status is RunStatus.FAILED
    assert run.error == message
    assert scenario.client.get_sync(sync.id).cursor_position == cursor_before
    if rows_before is None:
        assert not scenario.destination.has_table(scenario.table_name)
    else:
        assert scenario.rows() == rows_before
    return message


def test_missing_source_table(client, databases, kind: str) -> None:
    scenario = scenario_for(client, databases, kind, "duckdb")
    sync, source = synced(scenario)
    rows, cursor = scenario.rows(), client.get_sync(sync.id).cursor_position
    with scenario.source.engine.begin() as connection:
        source.drop(connection)

    assert_failed_and_unchanged(scenario, sync, rows, cursor, "events", "does not exist")


def test_missing_source_column(client, databases, kind: str) -> None:
    scenario = scenario_for(client, databases, kind, "sqlite")
    scenario.source.create(events_table(scenario.source), [event(1, 1)])
    sync = scenario.make_sync(
        mappings={"id": "id", "title": "name", "amount": "amount", "updated_at": "updated_at"}
    )

    assert_failed_and_unchanged(scenario, sync, None, None, "'title'", "events", "does not exist")


def test_cursor_column_that_cannot_order(client, databases, kind: str) -> None:
    scenario = scenario_for(client, databases, kind, "duckdb")
    # MariaDB has no boolean (TINYINT orders) and its JSON is LONGTEXT: a BLOB cannot order there
    flag = sa.LargeBinary() if kind == "mysql" else sa.Boolean()
    scenario.source.create(
        scenario.source.table(
            "flags",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("flag", flag),
            sa.Column("updated_at", sa.DateTime),
        ),
        [{"id": 1, "flag": b"yes" if kind == "mysql" else True, "updated_at": None}],
    )
    scenario.make_object(
        fields=[{"name": "id", "type": "integer"}, {"name": "updated_at", "type": "timestamp"}]
    )
    sync = scenario.make_sync(table="flags", cursor_field="flag")

    assert_failed_and_unchanged(scenario, sync, None, None, "'flag'", "cannot order")


def test_custom_join_that_fails(client, databases, kind: str) -> None:
    scenario = scenario_for(client, databases, kind, "sqlite")
    sync, _ = synced(scenario)
    rows, cursor = scenario.rows(), client.get_sync(sync.id).cursor_position
    scenario2 = Scenario(client, scenario.source, scenario.destination, object_id=sync.object_id)
    events = f'"{scenario.source.namespace}".events' if kind == "postgres" else "events"
    bad = scenario2.make_sync(
        customer="globex", custom_join=f"SELECT id, no_such_column FROM {events};"
    )

    message = assert_failed_and_unchanged(scenario2, bad, rows, None, "custom_join")
    assert "no_such_column" in message
    assert client.get_sync(sync.id).cursor_position == cursor


def test_unreachable_database_names_it_without_the_password(client, databases, kind: str) -> None:
    scenario = scenario_for(client, databases, "sqlite", "duckdb")
    sync, _ = synced(scenario)
    rows, cursor = scenario.rows(), client.get_sync(sync.id).cursor_position
    unreachable = {
        "sqlite": {"connection_type": "sqlite", "url": "sqlite:////nonexistent/dir/db.sqlite"},
        "duckdb": {"connection_type": "duckdb", "url": "duckdb:////nonexistent/dir/db.duckdb"},
        "postgres": {
            "connection_type": "postgres",
            "postgres_config": {
                "username": "app",
                "password": "s3cret-pw",
                "database_name": "acme",
                "host": "127.0.0.1",
                "port": 1,
            },
        },
        "mysql": {"connection_type": "mysql", "url": "mysql://app:s3cret-pw@127.0.0.1:1/acme"},
    }[kind]
    bad = Scenario(client, scenario.source, scenario.destination, object_id=sync.object_id)
    bad_sync = bad.make_sync(customer="globex", source_connection=unreachable)

    message = assert_failed_and_unchanged(bad, bad_sync, rows, None, "source database")
    assert "s3cret-pw" not in message
    assert client.get_sync(sync.id).cursor_position == cursor


def test_destination_type_conflict(client, databases, kind: str) -> None:
    scenario = scenario_for(client, databases, "sqlite", kind)
    scenario.source.create(events_table(scenario.source), [event(1, 1)])
    destination: Database = scenario.destination
    destination.create(
        destination.table(
            scenario.table_name,
            sa.Column("ecid", sa.String(255), primary_key=True),
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("name", sa.Date),
        )
    )
    sync = scenario.make_sync()

    assert_failed_and_unchanged(scenario, sync, [], None, "'name'", "synced_events", "string")
    assert [c.name for c in destination.reflect(scenario.table_name).columns] == [
        "ecid",
        "id",
        "name",
    ]
