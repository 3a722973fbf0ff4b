"""custom_join, several end customers in one object, full_overwrite and max_age_days."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from sync_pipelines.contract.models import RunStats, RunStatus, SyncMode
from sync_pipelines.engine import count_destination_rows, count_source_rows, run_sync
from sync_pipelines.engine.write import key_collation
from sync_pipelines_tests.engine.conftest import (
    PAIRS,
    Database,
    Scenario,
    event,
    events_table,
    pair_id,
)

pytestmark = pytest.mark.parametrize("scenario", PAIRS, ids=pair_id, indirect=True)


def by_customer(rows: list[dict]) -> dict[str, list[tuple]]:
    grouped: dict[str, list[tuple]] = {}
    for row in rows:
        grouped.setdefault(row["ecid"], []).append((row["id"], row["name"]))
    return grouped


def qualified(scenario: Scenario, table: str) -> str:
    """A table name as a custom query writes it (PostgreSQL test tables live in a schema)."""
    if scenario.source.kind == "postgres":
        return f'"{scenario.source.namespace}".{table}'
    return table


def test_custom_join_with_its_own_where_and_a_trailing_semicolon(scenario: Scenario) -> None:
    events = scenario.source.create(
        events_table(scenario.source),
        [event(1, 1, "keep"), event(2, 2, "hidden"), event(3, 3, "keep"), event(4, 4, "keep")],
    )
    accounts = scenario.source.create(
        scenario.source.table(
            "accounts",
            sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("label", sa.String(50)),
        ),
        [{"event_id": i, "label": f"account {i}"} for i in (1, 2, 3, 4, 5)],
    )
    query = (
        f"SELECT e.id, a.label AS name, e.amount, e.updated_at "
        f"FROM {qualified(scenario, 'events')} e "
        f"JOIN {qualified(scenario, 'accounts')} a ON a.event_id = e.id "
        f"WHERE e.name <> 'hidden' AND e.name LIKE 'k%';"
    )
    sync = scenario.make_sync(custom_join=query)

    run_sync(sync.id, scenario.client, batch_size=2)
    assert by_customer(scenario.rows()) == {
        "acme": [(1, "account 1"), (3, "account 3"), (4, "account 4")]
    }

    scenario.source.insert(events, [event(5, 5, "keep")])
    scenario.source.execute(accounts.update().where(accounts.c.event_id == 5).values(label="new"))
    result = run_sync(sync.id, scenario.client, batch_size=2)

    assert result.rows_inserted == 1
    assert by_customer(scenario.rows())["acme"][-1] == (5, "new")


def test_two_end_customers_with_the_same_keys_do_not_collide(scenario: Scenario) -> None:
    acme = scenario.source.create(
        events_table(scenario.source, "events_acme"), [event(i, i, f"acme {i}") for i in (1, 2, 3)]
    )
    scenario.source.create(
        events_table(scenario.source, "events_globex"),
        [event(i, i, f"globex {i}") for i in (1, 2, 3)],
    )
    acme_sync = scenario.make_sync(customer="acme", table="events_acme")
    globex_sync = scenario.make_sync(customer="globex", table="events_globex")

    run_sync(acme_sync.id, scenario.client)
    run_sync(globex_sync.id, scenario.client)
    scenario.source.execute(acme.update().where(acme.c.id == 2).values(name="acme 2b"))
    scenario.source.execute(
        acme.update().where(acme.c.id == 2).values(updated_at=event(0, 10)["updated_at"])
    )
    run_sync(acme_sync.id, scenario.client)

    assert by_customer(scenario.rows()) == {
        "acme": [(1, "acme 1"), (2, "acme 2b"), (3, "acme 3")],
        "globex": [(1, "globex 1"), (2, "globex 2"), (3, "globex 3")],
    }
    counted = run_sync(globex_sync.id, scenario.client, count_rows=True)
    assert (counted.destination_row_count, counted.source_row_count) == (3, 3)
    lease = scenario.client.start_run(acme_sync.id)
    try:
        assert count_destination_rows(lease) == 3
        assert count_source_rows(lease, up_to=lease.run.cursor_before) == 3
        assert count_source_rows(lease, up_to=counted.cursor_after) == 2
    finally:
        scenario.client.finish_run(lease.run.id, status=RunStatus.COMPLETED, stats=RunStats())


def test_full_overwrite_replaces_only_that_customers_rows(scenario: Scenario) -> None:
    acme = scenario.source.create(
        events_table(scenario.source, "events_acme"), [event(i, i, f"acme {i}") for i in (1, 2, 3)]
    )
    scenario.source.create(
        events_table(scenario.source, "events_globex"),
        [event(i, i, f"globex {i}") for i in (1, 2)],
    )
    scenario.make_object(mode=SyncMode.FULL_OVERWRITE, cursor=None)
    acme_sync = scenario.make_sync(customer="acme", table="events_acme")
    globex_sync = scenario.make_sync(customer="globex", table="events_globex")
    run_sync(acme_sync.id, scenario.client, batch_size=2)
    run_sync(globex_sync.id, scenario.client, batch_size=2)

    scenario.source.execute(acme.delete().where(acme.c.id == 1))
    scenario.source.execute(acme.update().where(acme.c.id == 3).values(name="acme 3b"))
    scenario.source.insert(acme, [event(4, 4, "acme 4")])
    result = run_sync(acme_sync.id, scenario.client, batch_size=2)

    assert by_customer(scenario.rows()) == {
        "acme": [(2, "acme 2"), (3, "acme 3b"), (4, "acme 4")],
        "globex": [(1, "globex 1"), (2, "globex 2")],
    }
    assert (result.rows_read, result.rows_inserted, result.rows_updated) == (3, 1, 1)
    assert (result.rows_unchanged, result.rows_deleted) == (1, 1)


def test_max_age_days_bounds_what_is_read(scenario: Scenario) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows = [
        {**event(1, 0, "old"), "updated_at": now - dt.timedelta(days=30)},
        {**event(2, 0, "recent"), "updated_at": now - dt.timedelta(days=2)},
        {**event(3, 0, "today"), "updated_at": now - dt.timedelta(hours=1)},
    ]
    scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync(max_age_days=7)

    result = run_sync(sync.id, scenario.client)

    assert result.rows_read == 2
    assert by_customer(scenario.rows()) == {"acme": [(2, "recent"), (3, "today")]}


def test_lookback_rereads_a_window_for_late_commits(scenario: Scenario) -> None:
    source = scenario.source.create(events_table(scenario.source), [event(1, 10), event(2, 20)])
    sync = scenario.make_sync(lookback=30)
    run_sync(sync.id, scenario.client)

    scenario.source.insert(source, [event(3, 5, "too late"), event(4, 15, "late")])
    result = run_sync(sync.id, scenario.client)

    # 20 - 30 s reaches back to t=-10: both late rows are read again, nothing twice
    assert result.rows_inserted == 2
    assert [r["id"] for r in scenario.rows()] == [1, 2, 3, 4]


def test_without_mappings_or_fields_every_column_is_written_as_read(scenario: Scenario) -> None:
    rows = [event(i, i) for i in (1, 2, 3)]
    scenario.source.create(events_table(scenario.source), rows)
    scenario.make_object(fields=[])
    sync = scenario.make_sync(mappings={})

    result = run_sync(sync.id, scenario.client, batch_size=2)

    assert result.rows_inserted == 3
    written = scenario.rows()
    assert [c.name for c in result.columns] == ["ecid", "id", "name", "amount", "updated_at"]
    assert [(r["ecid"], r["id"], r["name"]) for r in written] == [
        ("acme", i, f"event {i}") for i in (1, 2, 3)
    ]


def key_string(database: Database) -> sa.types.TypeEngine:
    """A key column type the writer accepts (MySQL: a binary NO PAD collation)."""
    if database.kind != "mysql":
        return sa.String(255)
    with database.engine.connect() as connection:
        return sa.String(255, collation=key_collation(connection))


def test_new_object_fields_become_columns_of_an_existing_table(scenario: Scenario) -> None:
    scenario.source.create(events_table(scenario.source), [event(1, 1)])
    destination = scenario.destination
    destination.create(
        destination.table(
            scenario.table_name,
            sa.Column("ecid", key_string(destination), primary_key=True),
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("name", sa.Text),
        )
    )
    sync = scenario.make_sync()

    run_sync(sync.id, scenario.client)

    assert [c.name for c in destination.reflect(scenario.table_name).columns] == [
        "ecid",
        "id",
        "name",
        "amount",
        "updated_at",
    ]
    assert by_customer(scenario.rows()) == {"acme": [(1, "event 1")]}
