"""Incremental syncs between every kind of database: nothing lost, nothing written twice."""

from __future__ import annotations

import decimal

import pytest
import sqlalchemy as sa

from sync_pipelines.common.typed_values import decode_value
from sync_pipelines.contract.models import RunStatus, SyncMode
from sync_pipelines.engine import SyncRunError, run_sync
from sync_pipelines_tests.engine.conftest import PAIRS, Scenario, at, event, events_table, pair_id

pytestmark = pytest.mark.parametrize("scenario", PAIRS, ids=pair_id, indirect=True)


def expected(rows: list[dict], customer: str = "acme") -> list[dict]:
    """Destination rows for source rows: the customer column first, timestamps in UTC."""
    return sorted(
        (
            {
                "ecid": customer,
                "id": row["id"],
                "name": row["name"],
                "amount": row["amount"],
                "updated_at": row["updated_at"].replace(tzinfo=None),
            }
            for row in rows
        ),
        key=lambda r: (r["ecid"], r["id"]),
    )


def test_initial_load_then_inserts_and_updates_are_picked_up(scenario: Scenario) -> None:
    rows = [event(i, i * 1.5) for i in range(1, 8)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()

    first = run_sync(sync.id, scenario.client, batch_size=3)

    assert scenario.rows() == expected(rows)
    assert (first.rows_read, first.rows_inserted, first.rows_updated) == (7, 7, 0)
    assert first.batches == 3
    assert decode_value(first.cursor_after.cursor) is not None
    assert first.destination_table == f"{scenario.destination.namespace}.synced_events"
    assert [c.name for c in first.columns] == ["ecid", "id", "name", "amount", "updated_at"]

    scenario.source.insert(source, [event(8, 100), event(9, 101)])
    scenario.source.execute(
        source.update().where(source.c.id == 2).values(name="renamed", updated_at=at(102))
    )
    rows = [r for r in rows if r["id"] != 2] + [
        event(8, 100),
        event(9, 101),
        {**event(2, 102), "name": "renamed"},
    ]

    second = run_sync(sync.id, scenario.client, batch_size=3)

    assert scenario.rows() == expected(rows)
    # the last row of the first run is read again (inclusive cursor), unchanged
    assert (second.rows_read, second.rows_inserted) == (4, 2)
    assert (second.rows_updated, second.rows_unchanged) == (1, 1)
    assert second.cursor_before == first.cursor_after

    third = run_sync(sync.id, scenario.client, batch_size=3)
    assert third.rows_inserted == 0
    assert scenario.rows() == expected(rows)


def test_rows_sharing_a_cursor_value_across_batches_are_all_synced(scenario: Scenario) -> None:
    rows = [event(i, 10) for i in range(1, 11)] + [event(11, 11)]
    scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()

    result = run_sync(sync.id, scenario.client, batch_size=3)

    assert scenario.rows() == expected(rows)
    assert result.batches == 4
    runs = scenario.client.list_runs(sync.id)
    assert runs[0].status is RunStatus.COMPLETED


def test_a_row_committed_later_with_the_last_cursor_value_is_not_lost(
    scenario: Scenario,
) -> None:
    rows = [event(i, 10) for i in range(1, 5)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    first = run_sync(sync.id, scenario.client, batch_size=3)
    assert decode_value(first.cursor_after.cursor) is not None

    late = event(3_000, 10, name="late")  # same cursor value as the checkpoint, higher key
    early_key = event(0, 10, name="late, lower key")  # same cursor value, lower key
    scenario.source.insert(source, [late, early_key])

    run_sync(sync.id, scenario.client, batch_size=3)

    assert scenario.rows() == expected(rows + [late, early_key])


class CrashAfterCommit:
    """A sync API client whose checkpoint fails once, after the destination has committed."""

    def __init__(self, client, crash_on: int) -> None:
        self._client = client
        self._crash_on = crash_on
        self._checkpoints = 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def checkpoint(self, run_id, **kwargs):
        self._checkpoints += 1
        if self._checkpoints == self._crash_on:
            raise RuntimeError("runner killed between commit and checkpoint")
        return self._client.checkpoint(run_id, **kwargs)


@pytest.mark.parametrize("mode", [SyncMode.INCREMENTAL_UPDATE, SyncMode.INCREMENTAL_APPEND])
def test_crash_after_commit_before_checkpoint_then_rerun_is_exact(
    scenario: Scenario, mode: SyncMode
) -> None:
    rows = [event(i, i // 2) for i in range(1, 11)]
    scenario.source.create(events_table(scenario.source), rows)
    scenario.make_object(mode=mode)
    sync = scenario.make_sync()

    with pytest.raises(SyncRunError, match="runner killed"):
        run_sync(sync.id, CrashAfterCommit(scenario.client, crash_on=1), batch_size=3)

    failed = scenario.client.list_runs(sync.id)[0]
    assert failed.status is RunStatus.FAILED
    assert "runner killed" in failed.error
    assert scenario.client.get_sync(sync.id).cursor_position is None  # never checkpointed
    committed = scenario.rows()
    assert committed == expected(rows)[: len(committed)] and committed  # but committed

    result = run_sync(sync.id, scenario.client, batch_size=3)

    assert scenario.rows() == expected(rows)
    assert result.status is RunStatus.COMPLETED


def test_incremental_append_adds_new_rows_once(scenario: Scenario) -> None:
    rows = [event(i, i) for i in range(1, 6)]
    source = scenario.source.create(events_table(scenario.source), rows)
    scenario.make_object(mode=SyncMode.INCREMENTAL_APPEND)
    sync = scenario.make_sync()
    run_sync(sync.id, scenario.client, batch_size=2)

    # a later commit at the last cursor value with a lower key, one at it with a higher key
    late = [event(0, 5), event(6, 5), event(7, 6)]
    scenario.source.insert(source, late)
    result = run_sync(sync.id, scenario.client, batch_size=2)

    # read from the last cursor inclusive: row 5 again, not appended twice
    assert (result.rows_read, result.rows_inserted) == (4, 3)
    assert scenario.rows() == expected(rows + late)
    assert all(isinstance(r["amount"], decimal.Decimal | float) for r in scenario.rows())


def test_incremental_append_honours_lookback(scenario: Scenario) -> None:
    rows = [event(i, i * 10) for i in range(1, 6)]
    source = scenario.source.create(events_table(scenario.source), rows)
    scenario.make_object(mode=SyncMode.INCREMENTAL_APPEND)
    sync = scenario.make_sync(lookback=15)
    run_sync(sync.id, scenario.client, batch_size=2)

    # committed late, 9 seconds before the last cursor value: inside the lookback window
    scenario.source.insert(source, [event(9, 41)])
    result = run_sync(sync.id, scenario.client, batch_size=2)

    assert (result.rows_read, result.rows_inserted) == (3, 1)  # rows 4, 9 and 5
    assert scenario.rows() == expected([*rows, event(9, 41)])


def test_full_refresh_replaces_the_customer_rows(scenario: Scenario) -> None:
    rows = [event(i, i) for i in range(1, 6)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    run_sync(sync.id, scenario.client)
    scenario.source.execute(source.delete().where(source.c.id.in_([1, 2])))

    result = run_sync(sync.id, scenario.client, full_refresh=True, batch_size=2)

    assert scenario.rows() == expected(rows[2:])
    assert (result.rows_read, result.rows_deleted) == (3, 2)
    assert decode_value(result.cursor_after.cursor) is not None
    with scenario.source.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(source)).scalar() == 3


def test_a_decimal_cursor_resumes_exactly(scenario: Scenario) -> None:
    rows = [event(i, 0, amount=a) for i, a in ((1, "1.25"), (2, "2.50"), (3, "2.50"))]
    source = scenario.source.create(events_table(scenario.source), rows)
    scenario.make_object(fields=None)
    sync = scenario.make_sync(cursor_field="amount")
    first = run_sync(sync.id, scenario.client, batch_size=2)
    assert decode_value(first.cursor_after.cursor) == decimal.Decimal("2.50")

    scenario.source.insert(source, [event(4, 0, amount="2.50"), event(5, 0, amount="3.75")])
    second = run_sync(sync.id, scenario.client, batch_size=2)

    assert second.rows_inserted == 2
    later = [event(4, 0, amount="2.50"), event(5, 0, amount="3.75")]
    assert scenario.rows() == expected(rows + later)
