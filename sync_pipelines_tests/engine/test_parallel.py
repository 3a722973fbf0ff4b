"""A backfill in key ranges loaded by worker threads: exact rows at the end, each range's
progress checkpointed, a crash resumed after each range's last committed chunk, and incremental
runs continuing from the watermark taken at the start."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from sync_pipelines.common.typed_values import decode_value
from sync_pipelines.engine import SyncRunError, parallel, run_sync
from sync_pipelines.engine.sql import keyset
from sync_pipelines.engine.sql.relation import SourceRelation
from sync_pipelines.engine.write.duckdb import DuckDBWriter
from sync_pipelines_tests.engine.conftest import Scenario, at, event, events_table, pair_id
from sync_pipelines_tests.engine.test_backfill import source_rows
from sync_pipelines_tests.engine.test_null_cursor import cursor_time, expected_rows, null_event

ROUTES = [("postgres", "postgres"), ("sqlite", "duckdb")]


def _rows(count: int) -> list[dict]:
    # the cursor runs against the key, and a few cursors are NULL
    rows = [event(i, 10_000 - i, amount=f"{i}.25") for i in range(1, count + 1)]
    return [null_event(r["id"]) if r["id"] % 17 == 0 else r for r in rows]


@pytest.mark.parametrize("scenario", ROUTES, ids=pair_id, indirect=True)
@pytest.mark.parametrize("workers", [1, 3])
def test_parallel_workers_end_exact(scenario: Scenario, workers: int) -> None:
    rows = _rows(100)
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    threads: set[str] = set()
    progress: list[Any] = []

    def seen(batch: Any) -> None:
        threads.add(threading.current_thread().name)
        progress.append(batch)

    first = run_sync(sync.id, scenario.client, batch_size=7, workers=workers, on_progress=seen)

    assert scenario.rows() == expected_rows(rows)
    assert (first.rows_read, first.rows_inserted, first.rows_updated) == (100, 100, 0)
    assert cursor_time(first.cursor_after) == at(9_999)  # the watermark at the start
    assert first.cursor_after.backfill is None
    if workers > 1:
        assert len(threads) > 1  # committed by more than one worker
    # every checkpoint of a range keeps the others' progress
    runs = scenario.client.list_runs(sync.id)
    assert runs[0].rows_read == 100

    scenario.source.insert(source, [event(101, 20_000)])
    scenario.source.execute(
        source.update().where(source.c.id == 5).values(name="changed", updated_at=at(20_001))
    )
    second = run_sync(sync.id, scenario.client, batch_size=7, workers=workers)

    assert scenario.rows() == source_rows(scenario, source)
    assert (second.rows_inserted, second.rows_updated) == (1, 1)
    assert cursor_time(second.cursor_after) == at(20_001)


@pytest.mark.parametrize("scenario", ROUTES, ids=pair_id, indirect=True)
def test_a_crashed_worker_resumes_each_range_after_its_last_committed_chunk(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(90)
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    map_batch = parallel.map_batch

    def crash_at_key_81(batch: Any, plan: Any) -> Any:
        # the last range's fifth chunk (81..85): its reader maps it once the fourth was taken,
        # so that range's first three chunks are committed and checkpointed by then
        if batch.column(batch.schema.get_field_index("id"))[0].as_py() == 81:
            raise RuntimeError("worker crashed")
        return map_batch(batch, plan)

    monkeypatch.setattr(parallel, "map_batch", crash_at_key_81)
    # DuckDB commits every 4 row groups: here every chunk, to see each range's progress
    monkeypatch.setattr(DuckDBWriter, "min_commit_rows", 0)
    with pytest.raises(SyncRunError, match="worker crashed"):
        run_sync(sync.id, scenario.client, batch_size=5, workers=3)

    position = scenario.client.get_sync(sync.id).cursor_position
    assert position.cursor is None and position.backfill is not None
    ranges = position.backfill.ranges
    assert ranges is not None and len(ranges) == 3
    # the ranges split the keys 1..90 evenly: (-, 30], (30, 60], (60, -)
    assert [decode_value(r.upto_key) for r in ranges] == [30, 60, None]
    committed = set()
    for key_range in ranges:
        start = decode_value(key_range.after_key) or 0
        last = decode_value(key_range.last_key)
        if last is not None:
            assert last > start
            committed |= set(range(start + 1, last + 1))
    assert set(range(61, 76)) <= committed  # chunks were committed before the crash
    in_destination = {r["id"] for r in scenario.rows()}
    assert committed <= in_destination

    monkeypatch.setattr(parallel, "map_batch", map_batch)
    reads: list[str] = []
    backfill_query = keyset.backfill_query

    def recorded(*args: Any, **kwargs: Any) -> sa.Select:
        reads.append((kwargs["after_key"], kwargs["upto_key"]))
        return backfill_query(*args, **kwargs)

    monkeypatch.setattr(keyset, "backfill_query", recorded)
    resumed = run_sync(sync.id, scenario.client, batch_size=5, workers=3)

    assert scenario.rows() == expected_rows(rows)
    assert scenario.rows() == source_rows(scenario, source)
    # only the rows after each range's last committed key are read again
    assert resumed.rows_read == len(rows) - len(committed)
    first_reads = {upto: after for after, upto in reversed(reads)}
    for key_range in ranges:
        start = key_range.last_key if key_range.last_key is not None else key_range.after_key
        if key_range.done:
            assert decode_value(key_range.upto_key) not in first_reads
        else:
            assert first_reads[decode_value(key_range.upto_key)] == decode_value(start)
    assert cursor_time(resumed.cursor_after) == at(9_999)
    assert resumed.cursor_after.backfill is None


@pytest.mark.parametrize("scenario", [("sqlite", "sqlite")], ids=pair_id, indirect=True)
def test_text_keys_split_at_sampled_boundaries(scenario: Scenario) -> None:
    table = scenario.source.table(
        "events",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    rows = [{**event(i, i), "id": f"k{i:04d}"} for i in range(1, 41)]
    scenario.source.create(table, rows)
    scenario.make_object(
        fields=[
            {"name": "id", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "amount", "type": "number"},
            {"name": "updated_at", "type": "timestamp"},
        ]
    )
    sync = scenario.make_sync()
    with scenario.source.engine.connect() as connection:
        relation = SourceRelation(table, tuple(table.c.keys()), {"id": sa.String()})
        bounds = parallel.key_boundaries(connection, relation, "id", after_key=None, parts=4)
    assert bounds == ["k0010", "k0020", "k0030"]

    result = run_sync(sync.id, scenario.client, batch_size=4, workers=4)

    assert result.rows_read == 40
    assert sorted(r["id"] for r in scenario.rows()) == [r["id"] for r in rows]
