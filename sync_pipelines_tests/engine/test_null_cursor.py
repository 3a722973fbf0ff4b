"""Rows whose cursor is NULL: included every run (the default), refused, or skipped."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from sync_pipelines.common.typed_values import decode_value
from sync_pipelines.contract.models import CursorPosition, NullCursor, SyncMode, SyncUpdate
from sync_pipelines.engine import SyncRunError, run_sync
from sync_pipelines.engine.sql import keyset
from sync_pipelines_tests.engine.conftest import PAIRS, Scenario, at, event, events_table, pair_id
from sync_pipelines_tests.engine.test_incremental import expected

# every database as a source and as a destination
ROUTES = [
    ("sqlite", "duckdb"),
    ("duckdb", "sqlite"),
    ("postgres", "mysql"),
    ("mysql", "postgres"),
]


def cursor_time(position: CursorPosition) -> dt.datetime:
    """A checkpoint's cursor as an aware datetime (SQLite keeps text, others datetimes)."""
    value = decode_value(position.cursor)
    value = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def null_event(id: int, name: str | None = None) -> dict:
    return {**event(id, 0, name), "updated_at": None}


def expected_rows(rows: list[dict]) -> list[dict]:
    timed = expected([r for r in rows if r["updated_at"] is not None])
    nulls = [
        {"ecid": "acme", **{k: r[k] for k in ("id", "name", "amount")}, "updated_at": None}
        for r in rows
        if r["updated_at"] is None
    ]
    return sorted(timed + nulls, key=lambda r: r["id"])


@pytest.mark.parametrize("scenario", PAIRS, ids=pair_id, indirect=True)
def test_null_cursor_rows_arrive_and_stay_up_to_date(scenario: Scenario) -> None:
    rows = [event(i, i) for i in range(1, 5)] + [null_event(i) for i in range(10, 15)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    assert sync.null_cursor is NullCursor.INCLUDE

    first = run_sync(sync.id, scenario.client, batch_size=2, count_rows=True)

    assert scenario.rows() == expected_rows(rows)
    assert (first.rows_read, first.rows_inserted) == (9, 9)
    # the checkpoint is the last timed row; the NULL rows are counted by the row-count check
    assert cursor_time(first.cursor_after) == at(4)
    assert first.source_row_count == first.destination_row_count == 9

    # a NULL row changes, a timed row's cursor becomes NULL, a NULL row gets a cursor
    scenario.source.execute(source.update().where(source.c.id == 11).values(name="renamed"))
    scenario.source.execute(
        source.update().where(source.c.id == 2).values(name="nulled", updated_at=None)
    )
    scenario.source.execute(source.update().where(source.c.id == 12).values(updated_at=at(50)))
    rows = {r["id"]: r for r in rows}
    rows[11] = null_event(11, "renamed")
    rows[2] = {**null_event(2, "nulled")}
    rows[12] = {**rows[12], "updated_at": at(50)}
    rows = list(rows.values())

    second = run_sync(sync.id, scenario.client, batch_size=2, count_rows=True)

    assert scenario.rows() == expected_rows(rows)
    assert second.rows_inserted == 0
    assert second.source_row_count == second.destination_row_count == 9

    refreshed = run_sync(sync.id, scenario.client, batch_size=2, full_refresh=True)
    assert scenario.rows() == expected_rows(rows)
    assert refreshed.rows_read == 9


@pytest.mark.parametrize("scenario", ROUTES, ids=pair_id, indirect=True)
def test_null_cursor_fail_refuses_the_run_and_names_table_column_and_count(
    scenario: Scenario,
) -> None:
    source = scenario.source.create(
        events_table(scenario.source), [event(1, 1), null_event(2), null_event(3)]
    )
    sync = scenario.make_sync(null_cursor="fail")

    with pytest.raises(SyncRunError) as raised:
        run_sync(sync.id, scenario.client)

    message = str(raised.value)
    assert message.startswith(f"sync {sync.id} ('acme events'): 2 rows of the source table ")
    assert "events have a NULL cursor column 'updated_at' (null_cursor: fail)" in message
    assert not scenario.destination.has_table("synced_events")
    assert scenario.client.get_sync(sync.id).cursor_position is None

    # filled in, the run goes through
    scenario.source.execute(source.update().values(updated_at=at(5)))
    run_sync(sync.id, scenario.client)
    assert [r["id"] for r in scenario.rows()] == [1, 2, 3]


@pytest.mark.parametrize("scenario", ROUTES, ids=pair_id, indirect=True)
def test_null_cursor_skip_leaves_them_out_and_says_so(
    scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [event(1, 1), event(2, 2)]
    scenario.source.create(events_table(scenario.source), [*rows, null_event(3)])
    sync = scenario.make_sync()
    sync = scenario.client.update_sync(sync.id, SyncUpdate(null_cursor="skip"))
    assert sync.null_cursor is NullCursor.SKIP

    with caplog.at_level(logging.WARNING, logger="sync_pipelines.engine"):
        result = run_sync(sync.id, scenario.client, count_rows=True)

    assert scenario.rows() == expected(rows)
    assert result.source_row_count == result.destination_row_count == 2
    assert (
        "1 row of the source table" in caplog.text
        and "has a NULL cursor column 'updated_at'; skipped (null_cursor: skip)" in caplog.text
    )


@pytest.mark.parametrize("scenario", [("sqlite", "duckdb")], ids=pair_id, indirect=True)
def test_append_without_a_key_refuses_null_cursor_rows(scenario: Scenario) -> None:
    scenario.source.create(events_table(scenario.source), [event(1, 1), null_event(2)])
    scenario.make_object(mode=SyncMode.INCREMENTAL_APPEND, primary_key=None)
    sync = scenario.make_sync()

    with pytest.raises(SyncRunError, match="cannot tell them apart from one run to the next"):
        run_sync(sync.id, scenario.client)

    scenario.client.update_sync(sync.id, SyncUpdate(null_cursor="skip"))
    run_sync(sync.id, scenario.client)
    run_sync(sync.id, scenario.client)
    assert [r["id"] for r in scenario.rows()] == [1]


@pytest.mark.parametrize("scenario", [("postgres", "duckdb")], ids=pair_id, indirect=True)
def test_null_cursor_rows_of_a_custom_join_are_included(scenario: Scenario) -> None:
    rows = [event(1, 1), null_event(2)]
    scenario.source.create(events_table(scenario.source), rows)
    table = f"{scenario.source.namespace}.events"
    sync = scenario.make_sync(custom_join=f"SELECT * FROM {table}")

    run_sync(sync.id, scenario.client)
    run_sync(sync.id, scenario.client)

    assert scenario.rows() == expected_rows(rows)


@pytest.mark.parametrize("scenario", ROUTES, ids=pair_id, indirect=True)
def test_the_null_cursor_pass_runs_only_when_a_row_has_a_null_cursor(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [event(i, i) for i in range(1, 4)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    run_sync(sync.id, scenario.client)
    passes: list[object] = []
    null_cursor_query = keyset.null_cursor_query
    monkeypatch.setattr(
        keyset,
        "null_cursor_query",
        lambda *a, **k: passes.append(k) or null_cursor_query(*a, **k),
    )

    run_sync(sync.id, scenario.client)
    assert passes == []  # no NULL cursor: no pass

    scenario.source.insert(source, [null_event(9)])
    run_sync(sync.id, scenario.client)
    assert len(passes) == 1
    assert scenario.rows() == expected_rows([*rows, null_event(9)])
