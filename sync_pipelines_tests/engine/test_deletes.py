"""Deletes without CDC: keys that left the source are deleted or stamped ``_deleted_at``."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from sync_pipelines.contract.models import DeleteMode, DestinationCreate, ObjectCreate, SyncUpdate
from sync_pipelines.engine import SyncRunError, run_sync
from sync_pipelines.engine.deletes import DEFAULT_FANOUT, DEFAULT_LEAF_SIZE, apply_deletes
from sync_pipelines.engine.plan import plan_sync
from sync_pipelines_tests.engine.conftest import Scenario, at, event, events_table, pair_id

# every database as a source and as a destination
ROUTES = [
    ("sqlite", "duckdb"),
    ("duckdb", "sqlite"),
    ("postgres", "mysql"),
    ("mysql", "postgres"),
]


def ids(scenario: Scenario) -> list[int]:
    return [row["id"] for row in scenario.rows()]


@pytest.mark.parametrize("scenario", ROUTES, ids=pair_id, indirect=True)
def test_hard_deletes_remove_gone_keys_and_a_changed_primary_key(scenario: Scenario) -> None:
    rows = [event(i, i) for i in range(1, 7)] + [{**event(7, 0), "updated_at": None}]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync(deletes="hard")
    assert sync.deletes is DeleteMode.HARD

    first = run_sync(sync.id, scenario.client)
    assert ids(scenario) == [1, 2, 3, 4, 5, 6, 7]
    assert first.rows_deleted == 0

    scenario.source.execute(source.delete().where(source.c.id.in_([2, 5])))
    # a changed primary key: the old key would stay behind as a ghost row
    scenario.source.execute(
        source.update().where(source.c.id == 3).values(id=30, updated_at=at(100))
    )
    second = run_sync(sync.id, scenario.client)

    # the NULL-cursor row 7 is a source row: it stays
    assert ids(scenario) == [1, 4, 6, 7, 30]
    assert second.rows_deleted == 3
    assert second.delete_check is not None and second.delete_check.destination_rows == 8
    assert scenario.client.get_run(second.run_id).rows_deleted == 3

    third = run_sync(sync.id, scenario.client)
    assert third.rows_deleted == 0
    assert ids(scenario) == [1, 4, 6, 7, 30]


@pytest.mark.parametrize("scenario", ROUTES, ids=pair_id, indirect=True)
def test_soft_deletes_stamp_deleted_at_and_a_key_coming_back_clears_it(
    scenario: Scenario,
) -> None:
    rows = [event(i, i) for i in range(1, 5)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync(deletes="soft")
    run_sync(sync.id, scenario.client)
    assert [r["_deleted_at"] for r in scenario.rows()] == [None] * 4

    scenario.source.execute(source.delete().where(source.c.id == 2))
    second = run_sync(sync.id, scenario.client)
    assert second.rows_deleted == 1
    by_id = {r["id"]: r for r in scenario.rows()}
    assert sorted(by_id) == [1, 2, 3, 4]
    assert by_id[2]["_deleted_at"] is not None
    assert by_id[2]["name"] == "event 2"
    assert [by_id[i]["_deleted_at"] for i in (1, 3, 4)] == [None] * 3

    # already stamped: not counted again
    assert run_sync(sync.id, scenario.client).rows_deleted == 0

    scenario.source.insert(source, [event(2, 200, "back")])
    back = run_sync(sync.id, scenario.client)
    assert back.rows_deleted == 0
    by_id = {r["id"]: r for r in scenario.rows()}
    assert by_id[2]["_deleted_at"] is None
    assert by_id[2]["name"] == "back"


@pytest.mark.parametrize(
    "scenario", [("sqlite", "postgres"), ("postgres", "duckdb")], ids=pair_id, indirect=True
)
def test_a_mass_delete_is_refused_until_allowed(scenario: Scenario) -> None:
    source = scenario.source.create(
        events_table(scenario.source), [event(i, i) for i in range(1, 5)]
    )
    sync = scenario.make_sync(deletes="hard")
    run_sync(sync.id, scenario.client)
    scenario.source.execute(source.delete().where(source.c.id != 1))

    with pytest.raises(SyncRunError) as raised:
        run_sync(sync.id, scenario.client)

    message = str(raised.value)
    assert message.startswith(f"sync {sync.id} ('acme events'): ")
    assert "3 of the 4 rows of end customer 'acme' in " in message
    assert f"{scenario.destination.namespace}.synced_events" in message
    assert "max_delete_fraction 0.5" in message and "--allow-mass-delete" in message
    assert ids(scenario) == [1, 2, 3, 4]
    assert scenario.client.list_runs(sync.id)[0].error == message

    allowed = run_sync(sync.id, scenario.client, allow_mass_delete=True)
    assert allowed.rows_deleted == 3
    assert ids(scenario) == [1]

    # a higher threshold lets the next one through without the flag
    scenario.client.update_sync(sync.id, SyncUpdate(max_delete_fraction=1.0))
    scenario.source.execute(source.delete())
    assert run_sync(sync.id, scenario.client).rows_deleted == 1
    assert ids(scenario) == []


@pytest.mark.parametrize("scenario", [("sqlite", "mysql")], ids=pair_id, indirect=True)
def test_custom_join_source_object_default_and_every_n_runs(scenario: Scenario) -> None:
    destination = scenario.client.create_destination(
        DestinationCreate(display_name="warehouse", **scenario.destination.connection())
    )
    obj = scenario.client.create_object(
        ObjectCreate(
            display_name="Events",
            destination_id=destination.id,
            namespace=scenario.destination.namespace,
            table_name=scenario.table_name,
            end_customer_id_field="ecid",
            cursor_field="updated_at",
            primary_key="id",
            object_fields=[
                {"name": "id", "type": "integer"},
                {"name": "name", "type": "string"},
                {"name": "updated_at", "type": "timestamp"},
            ],
            deletes="hard",
        )
    )
    assert obj.deletes is DeleteMode.HARD
    scenario.object_id = obj.id
    source = scenario.source.create(
        events_table(scenario.source), [event(i, i) for i in range(1, 6)]
    )
    sync = scenario.make_sync(
        custom_join="SELECT id, name, updated_at FROM events WHERE amount > 0",
        delete_check_every=2,
    )
    assert sync.deletes is None  # the object's default applies
    run_sync(sync.id, scenario.client)  # run 1 (0 completed before): checked
    scenario.source.execute(source.delete().where(source.c.id == 4))
    skipped = run_sync(sync.id, scenario.client)  # run 2: not checked
    assert skipped.delete_check is None and ids(scenario) == [1, 2, 3, 4, 5]
    checked = run_sync(sync.id, scenario.client)  # run 3: checked
    assert checked.rows_deleted == 1 and ids(scenario) == [1, 2, 3, 5]

    # the sync's own value wins over the object's
    scenario.client.update_sync(sync.id, SyncUpdate(deletes="ignore", delete_check_every=1))
    scenario.source.execute(source.delete().where(source.c.id == 5))
    assert run_sync(sync.id, scenario.client).delete_check is None
    assert ids(scenario) == [1, 2, 3, 5]


@pytest.mark.parametrize(
    "scenario", [("sqlite", "duckdb"), ("postgres", "mysql")], ids=pair_id, indirect=True
)
def test_range_comparison_descends_only_into_changed_ranges(scenario: Scenario) -> None:
    total = 100_000
    table = events_table(scenario.source)
    scenario.source.create(table)
    for start in range(1, total + 1, 20_000):
        scenario.source.insert(
            table, [event(i, i) for i in range(start, min(start + 20_000, total + 1))]
        )
    sync = scenario.make_sync(deletes="hard")
    first = run_sync(sync.id, scenario.client, batch_size=50_000)
    assert first.rows_inserted == total
    assert first.delete_check is not None
    assert first.delete_check.ranges_compared == 1  # the same keys: one range, no descent
    assert first.delete_check.keys_listed == 0

    gone = [7, 50_001, 99_999]
    scenario.source.execute(table.delete().where(table.c.id.in_(gone)))
    second = run_sync(sync.id, scenario.client)

    assert second.rows_deleted == 3
    with scenario.destination.engine.connect() as connection:
        destination = scenario.destination.reflect("synced_events")
        left = connection.execute(sa.select(sa.func.count()).select_from(destination)).scalar_one()
        found = connection.execute(
            sa.select(destination.c.id).where(destination.c.id.in_(gone))
        ).all()
    assert (left, found) == (total - 3, [])
    check = second.delete_check
    assert check is not None
    depth = math.ceil(math.log(total / DEFAULT_LEAF_SIZE, DEFAULT_FANOUT))  # splits: 2
    # the top range, then at most 3 differing ranges per level; each split compares its parts
    assert check.ranges_differing <= 1 + 3 * depth
    assert check.ranges_compared <= 1 + DEFAULT_FANOUT * (1 + 3 * (depth - 1))
    # only the three differing leaves' keys were listed, a few hundred each
    assert check.keys_listed <= 3 * DEFAULT_LEAF_SIZE
    assert check.keys_listed < total / 20


@pytest.mark.parametrize(
    "scenario",
    [("postgres", "mysql"), ("mysql", "postgres"), ("sqlite", "duckdb")],
    ids=pair_id,
    indirect=True,
)
def test_text_keys_descend_by_byte_order_and_delete_exactly(scenario: Scenario) -> None:
    keys = ["Acme", "acme", "b", "x", "x ", "ss", "ß", "Zeta", "é", "0", "10", "9"]
    keys += [f"k{i:03d}" for i in range(60)]
    table = scenario.source.table(
        "events",
        # an exact key on MariaDB too (its default collation folds case and pads)
        sa.Column(
            "id",
            sa.String(50).with_variant(mysql.VARCHAR(50, collation="utf8mb4_nopad_bin"), "mysql"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(100)),
        sa.Column("updated_at", sa.Integer),
    )
    scenario.source.create(table, [{"id": k, "name": k, "updated_at": 1} for k in keys])
    scenario.make_object(
        fields=[
            {"name": "id", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "updated_at", "type": "integer"},
        ]
    )
    sync = scenario.make_sync(deletes="hard")
    run_sync(sync.id, scenario.client)
    gone = ["acme", "x ", "ß", "10", "k031"]
    scenario.source.execute(table.delete().where(table.c.id.in_(gone)))

    lease = scenario.client.get_sync(sync.id)
    plan = plan_sync(lease, scenario.client.get_object(scenario.object_id))
    source = sa.create_engine(scenario.source.url)
    try:
        check = apply_deletes(source, scenario.destination.engine, plan, leaf_size=4, fanout=3)
    finally:
        source.dispose()

    assert check.rows_deleted == len(gone)
    assert sorted(r["id"] for r in scenario.rows()) == sorted(set(keys) - set(gone))
    assert check.keys_listed < len(keys)  # some ranges were equal and never listed
