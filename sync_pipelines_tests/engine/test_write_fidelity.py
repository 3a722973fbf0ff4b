"""Writes that keep every tenant and key apart, refuse a repeated key, and count unchanged rows.

Issue 8, items 4 (exact key collations on MySQL/MariaDB), 5 (a key repeated within a batch is
the same clear error on every destination) and 8 (rows read again unchanged are not updates).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from sync_pipelines.contract.models import FieldType
from sync_pipelines.engine import SourceSchemaError, run_sync
from sync_pipelines.engine.errors import DestinationTypeConflictError
from sync_pipelines.engine.mapping import map_batch
from sync_pipelines.engine.plan import SyncPlan
from sync_pipelines.engine.write import WriteCounts, ensure_table, key_collation
from sync_pipelines_tests.engine import test_types as typed
from sync_pipelines_tests.engine.conftest import (
    KINDS,
    PAIRS,
    Database,
    Scenario,
    event,
    events_table,
    pair_id,
)
from sync_pipelines_tests.engine.test_bad_input import assert_failed_and_unchanged, scenario_for
from sync_pipelines_tests.engine.test_writers import make_plan, named, writer_for

TEXT_KEYS = (("id", FieldType.STRING), ("name", FieldType.STRING))
DISTINCT_KEYS = ["a", "A", "x", "x ", "ss", "ß"]


def counts(counted: WriteCounts) -> tuple[int, int, int]:
    return counted.inserted, counted.updated, counted.unchanged


def rows_of(destination: Database) -> dict[tuple[str, Any], Any]:
    return {(r["ecid"], r["id"]): r["name"] for r in destination.rows("written")}


def write(destination: Database, plan: SyncPlan, *batches: pa.RecordBatch) -> list[WriteCounts]:
    """Upsert each batch with a writer of its own and commit; the counts of each."""
    written = []
    for batch in batches:
        writer = writer_for(destination, plan, batch)
        try:
            written.append(writer.upsert(map_batch(batch, plan)))
            writer.commit()
        finally:
            writer.close()
    return written


def texts(keys: list[str], names: list[str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"id": keys, "name": names})


# --- 4: end customers and text keys stay apart ---------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_end_customers_differing_in_case_stay_apart_on_update_and_overwrite(
    databases, kind: str
) -> None:
    destination = databases(kind, "destination")
    upper, lower = make_plan(destination, customer="Acme"), make_plan(destination, customer="acme")
    assert [counts(c) for c in write(destination, upper, named([1, 2, 3], "upper"))] == [(3, 0, 0)]
    assert [counts(c) for c in write(destination, lower, named([1, 2, 3], "lower"))] == [(3, 0, 0)]

    writer = writer_for(destination, lower, named([1], "x"))
    try:
        writer.stage(map_batch(named([1], "lower"), lower))
        swapped = writer.swap()
    finally:
        writer.close()

    assert (swapped.inserted, swapped.updated, swapped.unchanged, swapped.deleted) == (0, 0, 1, 2)
    assert rows_of(destination) == {
        ("Acme", 1): "upper 1",
        ("Acme", 2): "upper 2",
        ("Acme", 3): "upper 3",
        ("acme", 1): "lower 1",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_text_keys_differing_in_case_trailing_space_or_folding_stay_apart(
    databases, kind: str
) -> None:
    destination = databases(kind, "destination")
    plan = make_plan(destination, TEXT_KEYS)
    names = [f"name {k!r}" for k in DISTINCT_KEYS]
    first, again, changed = write(
        destination,
        plan,
        texts(DISTINCT_KEYS, names),
        texts(DISTINCT_KEYS, names),
        texts(["x ", "ß"], ["changed x-space", "changed eszett"]),
    )

    assert (counts(first), counts(again), counts(changed)) == ((6, 0, 0), (0, 0, 6), (0, 2, 0))
    expected = {("acme", k): n for k, n in zip(DISTINCT_KEYS, names, strict=True)}
    expected[("acme", "x ")] = "changed x-space"
    expected[("acme", "ß")] = "changed eszett"
    assert rows_of(destination) == expected


def column_collations(destination: Database, table: str) -> dict[str, str | None]:
    with destination.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table"
            ),
            {"table": table},
        ).all()
    return dict(rows)


def test_mysql_key_columns_are_created_with_an_exact_collation(databases) -> None:
    destination = databases("mysql", "destination")
    with destination.engine.connect() as connection:
        exact = key_collation(connection)
        version = connection.execute(sa.text("SELECT VERSION()")).scalar_one()
    assert exact == ("utf8mb4_nopad_bin" if "MariaDB" in version else "utf8mb4_0900_bin")

    plan = make_plan(destination, TEXT_KEYS)
    writer = writer_for(destination, plan, texts(["a"], ["x"]))
    try:
        writer.upsert(map_batch(texts(["a"], ["x"]), plan))
        stage = writer.connection.execute(
            sa.text(f"SHOW CREATE TABLE {writer._batch_stage.name}")
        ).one()[1]
        writer.commit()
    finally:
        writer.close()

    collations = column_collations(destination, "written")
    assert (collations["ecid"], collations["id"]) == (exact, exact)
    assert collations["name"] != exact  # other columns keep the database's collation
    staged = {line.split()[0]: line for line in stage.splitlines()[1:]}
    assert f"COLLATE {exact}" in staged["`ecid`"] and f"COLLATE {exact}" in staged["`id`"]


@pytest.mark.parametrize(
    ("key_type", "refused"),
    [("BIGINT", "ecid"), ("VARCHAR(255) COLLATE utf8mb4_bin", "id")],
    ids=["case-insensitive-customer", "pad-space-key"],
)
def test_mysql_existing_table_with_merging_key_collation_is_refused_unchanged(
    databases, key_type: str, refused: str
) -> None:
    destination = databases("mysql", "destination")
    customer = "VARCHAR(255)" if refused == "ecid" else "VARCHAR(255) COLLATE utf8mb4_nopad_bin"
    destination.execute(
        sa.text(
            f"CREATE TABLE written (ecid {customer} NOT NULL, id {key_type} NOT NULL, "
            "name TEXT, PRIMARY KEY (ecid, id))"
        )
    )
    destination.execute(sa.text("INSERT INTO written VALUES ('acme', '1', 'kept')"))
    before = column_collations(destination, "written")
    key = FieldType.STRING if refused == "id" else FieldType.INTEGER
    plan = make_plan(destination, [("id", key), ("name", FieldType.STRING), ("extra", key)])

    with pytest.raises(DestinationTypeConflictError) as raised:
        ensure_table(destination.engine, plan, None)

    message = str(raised.value)
    assert f"key column {refused!r} of destination table {plan.destination_label}" in message
    assert "utf8mb4_nopad_bin" in message
    assert column_collations(destination, "written") == before  # no column added or changed
    kept = {"ecid": "acme", "id": 1 if refused == "ecid" else "1", "name": "kept"}
    assert destination.rows("written") == [kept]


def test_mysql_run_into_a_case_insensitive_table_fails_and_writes_nothing(
    client, databases
) -> None:
    scenario = scenario_for(client, databases, "sqlite", "mysql")
    scenario.source.create(events_table(scenario.source), [event(1, 1), event(2, 2)])
    scenario.destination.execute(
        sa.text(
            f"CREATE TABLE {scenario.table_name} (ecid VARCHAR(255) NOT NULL, id BIGINT NOT NULL, "
            "name TEXT, amount DECIMAL(38, 9), updated_at DATETIME(6), PRIMARY KEY (ecid, id))"
        )
    )
    sync = scenario.make_sync(customer="Acme")

    assert_failed_and_unchanged(
        scenario, sync, [], None, "key column 'ecid'", scenario.table_name, "utf8mb4_general_ci"
    )


# --- 5: a key repeated within a batch --------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["upsert", "append", "stage"])
def test_a_batch_repeating_a_key_is_refused_before_anything_is_written(
    databases, kind: str, mode: str
) -> None:
    destination = databases(kind, "destination")
    plan = make_plan(destination)
    write(destination, plan, named([1, 2], "kept"))
    writer = writer_for(destination, plan, named([1], "x"))
    try:
        with pytest.raises(SourceSchemaError) as raised:
            getattr(writer, mode)(map_batch(named([3, 2, 4, 2], "refused"), plan))
        writer.commit()
    finally:
        writer.close()

    message = str(raised.value)
    assert "primary key 'id' is not unique: 2 appears 2 times" in message
    assert f"destination table {plan.destination_label}" in message
    assert "key columns (ecid, id)" in message
    assert rows_of(destination) == {("acme", 1): "kept 1", ("acme", 2): "kept 2"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_swap_refuses_a_key_staged_in_two_batches_and_changes_nothing(
    databases, kind: str
) -> None:
    destination = databases(kind, "destination")
    plan = make_plan(destination)
    write(destination, plan, named([1, 2], "kept"))
    writer = writer_for(destination, plan, named([1], "x"))
    try:
        writer.stage(map_batch(named([1, 5], "staged"), plan))
        writer.stage(map_batch(named([6, 5], "staged"), plan))
        with pytest.raises(SourceSchemaError, match="'id' is not unique: 5 appears 2 times"):
            writer.swap()
    finally:
        writer.close()

    assert rows_of(destination) == {("acme", 1): "kept 1", ("acme", 2): "kept 2"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_key_repeated_across_batches_of_a_run_is_an_update(databases, kind: str) -> None:
    destination = databases(kind, "destination")
    plan = make_plan(destination)
    writer = writer_for(destination, plan, named([1], "x"))
    try:
        first = writer.upsert(map_batch(named([1, 2], "first"), plan))
        second = writer.upsert(map_batch(named([2, 3], "second"), plan))
        writer.commit()
    finally:
        writer.close()

    assert (counts(first), counts(second)) == ((2, 0, 0), (1, 1, 0))
    assert rows_of(destination) == {
        ("acme", 1): "first 1",
        ("acme", 2): "second 2",
        ("acme", 3): "second 3",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_a_custom_join_that_fans_out_fails_clearly_and_changes_nothing(
    client, databases, kind: str
) -> None:
    scenario = scenario_for(client, databases, "sqlite", kind)
    scenario.source.create(events_table(scenario.source), [event(i, i) for i in (1, 2, 3)])
    tags = scenario.source.create(
        scenario.source.table(
            "tags", sa.Column("event_id", sa.Integer), sa.Column("label", sa.String(20))
        ),
        [{"event_id": i, "label": f"tag {i}"} for i in (1, 2, 3)],
    )
    query = (
        "SELECT e.id, t.label AS name, e.amount, e.updated_at "
        "FROM events e JOIN tags t ON t.event_id = e.id"
    )
    sync = scenario.make_sync(custom_join=query)
    run_sync(sync.id, scenario.client)
    rows, cursor = scenario.rows(), client.get_sync(sync.id).cursor_position
    scenario.source.insert(tags, [{"event_id": 3, "label": "second tag of 3"}])

    message = assert_failed_and_unchanged(
        scenario,
        sync,
        rows,
        cursor,
        "primary key 'id' is not unique: 3 appears 2 times",
        f"destination table {scenario.destination.namespace}.{scenario.table_name}",
        "custom_join",
    )
    assert message.startswith(f"sync {sync.id} ('acme events'): ")


# --- 8: rows read again unchanged --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_unchanged_rows_are_counted_apart_null_safely_and_exactly(databases, kind: str) -> None:
    destination = databases(kind, "destination")
    plan = make_plan(destination)
    ids = [1, 2, 3, 4, 5, 6]
    first, again, changed = write(
        destination,
        plan,
        pa.RecordBatch.from_pydict({"id": ids, "name": [None, "x", None, "Bob", "x", "same"]}),
        pa.RecordBatch.from_pydict({"id": ids, "name": [None, "x", None, "Bob", "x", "same"]}),
        pa.RecordBatch.from_pydict({"id": ids, "name": [None, None, "y", "BOB", "x ", "same"]}),
    )

    assert (counts(first), counts(again), counts(changed)) == ((6, 0, 0), (0, 0, 6), (0, 4, 2))
    assert rows_of(destination) == {
        ("acme", 1): None,
        ("acme", 2): None,
        ("acme", 3): "y",
        ("acme", 4): "BOB",
        ("acme", 5): "x ",
        ("acme", 6): "same",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_append_counts_present_keys_as_unchanged_and_keeps_them(databases, kind: str) -> None:
    destination = databases(kind, "destination")
    plan = make_plan(destination)
    writer = writer_for(destination, plan, named([1], "x"))
    try:
        first = writer.append(map_batch(named([1, 2], "first"), plan))
        writer.commit()
        second = writer.append(map_batch(named([2, 3], "second"), plan))
        writer.commit()
    finally:
        writer.close()

    assert (counts(first), counts(second)) == ((2, 0, 0), (1, 0, 1))
    assert rows_of(destination) == {
        ("acme", 1): "first 1",
        ("acme", 2): "first 2",
        ("acme", 3): "second 3",
    }


def row_versions(destination: Database) -> list[Any]:
    """What changes when a row is written again: PostgreSQL's xmin, DuckDB's rowid."""
    column = "xmin::text" if destination.kind == "postgres" else "rowid"
    table = f'"{destination.namespace}".written'
    with destination.engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT {column} FROM {table} ORDER BY id")).all()


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_unchanged_rows_are_not_written_again(databases, kind: str) -> None:
    destination = databases(kind, "destination")
    plan = make_plan(destination)
    write(destination, plan, named([1, 2, 3], "first"))
    before = row_versions(destination)

    (again,) = write(destination, plan, named([1, 2, 3], "first"))
    assert counts(again) == (0, 0, 3)
    assert row_versions(destination) == before

    (changed,) = write(
        destination,
        plan,
        pa.RecordBatch.from_pydict({"id": [1, 2, 3], "name": ["first 1", "changed", "first 3"]}),
    )
    assert counts(changed) == (0, 1, 2)
    after = row_versions(destination)
    assert (after[0], after[2]) == (before[0], before[2]) and after[1] != before[1]


@pytest.mark.parametrize("scenario", PAIRS, ids=pair_id, indirect=True)
def test_a_no_change_run_reports_the_rows_read_again_as_unchanged(scenario: Scenario) -> None:
    rows = [event(1, 1), event(2, 2), event(3, 3), event(4, 5), event(5, 5)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    first = run_sync(sync.id, scenario.client, batch_size=2)
    assert (first.rows_read, first.rows_inserted, first.rows_updated) == (5, 5, 0)

    again = run_sync(sync.id, scenario.client, batch_size=2)
    # the rows at the last cursor value are read again (inclusive cursor), values unchanged
    assert (again.rows_read, again.rows_inserted, again.rows_updated) == (2, 0, 0)
    assert (again.rows_unchanged, again.rows_written) == (2, 0)
    stored = scenario.client.get_run(again.run_id)
    assert (stored.rows_updated, stored.rows_unchanged) == (0, 2)

    scenario.source.execute(source.update().where(source.c.id == 5).values(name="renamed"))
    changed = run_sync(sync.id, scenario.client, batch_size=2)
    assert (changed.rows_read, changed.rows_inserted) == (2, 0)
    assert (changed.rows_updated, changed.rows_unchanged) == (1, 1)
    assert {r["id"]: r["name"] for r in scenario.rows()}[5] == "renamed"


@pytest.mark.parametrize("scenario", PAIRS, ids=pair_id, indirect=True)
def test_every_field_type_read_again_unchanged_compares_equal(scenario: Scenario) -> None:
    scenario.source.create(
        typed.source_table(scenario), [typed.stored(scenario, r) for r in typed.SOURCE_ROWS]
    )
    scenario.make_object(fields=typed.FIELDS)
    sync = scenario.make_sync(table="typed")
    run_sync(sync.id, scenario.client)
    rows = scenario.rows()

    again = run_sync(sync.id, scenario.client)  # every row shares the last cursor value

    assert (again.rows_read, again.rows_updated, again.rows_unchanged) == (3, 0, 3)
    assert scenario.rows() == rows
