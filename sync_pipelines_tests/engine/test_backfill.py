"""A first load in primary-key chunks: no sort of the source table, resumed after a crash at
the next chunk, and continued incrementally from the cursor watermark taken at its start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

import sync_pipelines.engine.sql_sync as run
from sync_pipelines.common.typed_values import decode_value
from sync_pipelines.contract.models import CursorPosition, RunStatus
from sync_pipelines.engine import BatchProgress, SyncRunError, run_sync
from sync_pipelines.engine.sql import keyset, passes
from sync_pipelines.engine.sql.relation import SourceRelation
from sync_pipelines_tests.engine.conftest import Scenario, at, event, events_table, pair_id
from sync_pipelines_tests.engine.test_null_cursor import cursor_time, expected_rows, null_event

# PostgreSQL, MariaDB and SQLite sources; destinations that commit every batch
ROUTES = [
    ("postgres", "sqlite"),
    ("mysql", "postgres"),
    ("sqlite", "mysql"),
]
pytestmark = pytest.mark.parametrize("scenario", ROUTES, ids=pair_id, indirect=True)


class Reads:
    """The queries the reader issues: backfill chunks, and the (cursor, key) keyset reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.chunks: list[sa.Select] = []
        self.keyset: list[sa.Select] = []
        self.rows = 0
        page_batches = passes._page_batches
        keyset_query = keyset.keyset_query

        def pages(engine: sa.Engine, query: sa.Select, batch_size: int) -> Iterator[Any]:
            self.chunks.append(query)
            for batch in page_batches(engine, query, batch_size):
                self.rows += batch.num_rows
                yield batch

        def keyset_read(*args: Any, **kwargs: Any) -> sa.Select:
            query = keyset_query(*args, **kwargs)
            self.keyset.append(query)
            return query

        monkeypatch.setattr(passes, "_page_batches", pages)
        monkeypatch.setattr(keyset, "keyset_query", keyset_read)

    def sql(self, dialect: sa.Dialect) -> list[str]:
        return [
            str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            for q in self.chunks
        ]


def source_rows(scenario: Scenario, table: sa.Table) -> list[dict]:
    with scenario.source.engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(sa.select(table))]
    return expected_rows(rows)


def test_first_load_reads_key_chunks_and_continues_from_the_watermark(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the cursor runs against the key: a (cursor, key) order would differ from key order
    rows = [event(i, 100 - i) for i in range(1, 8)] + [null_event(8)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    reads = Reads(monkeypatch)

    first = run_sync(sync.id, scenario.client, batch_size=3)

    assert scenario.rows() == expected_rows(rows)
    # the NULL-cursor row is read once, by the key-ordered chunks (no pass of its own)
    assert (first.rows_read, first.rows_inserted, first.batches) == (8, 8, 3)
    assert reads.keyset == []
    assert reads.rows == 8
    sql = reads.sql(scenario.source.engine.dialect)
    assert len(sql) == 3  # 3 + 3 + 2 rows: the short chunk is the last
    for text in sql:
        order_by = text.split("ORDER BY")[1]
        assert "updated_at" not in order_by and "id" in order_by and "LIMIT 3" in text
    assert "> 3" in sql[1] and "> 6" in sql[2]
    # the watermark: the greatest cursor when the backfill started
    assert cursor_time(first.cursor_after) == at(99)
    assert first.cursor_after.backfill is None
    assert scenario.client.get_sync(sync.id).backfill_completed_at is not None

    scenario.source.insert(source, [event(9, 150)])
    reads.chunks.clear()
    second = run_sync(sync.id, scenario.client, batch_size=3)

    assert scenario.rows() == expected_rows([*rows, event(9, 150)])
    assert reads.keyset and second.rows_inserted == 1
    assert cursor_time(second.cursor_after) == at(150)


def test_a_full_refresh_reads_key_chunks_and_swaps(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [event(i, 100 - i) for i in range(1, 6)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    run_sync(sync.id, scenario.client, batch_size=2)
    scenario.source.execute(source.delete().where(source.c.id == 2))
    reads = Reads(monkeypatch)

    refreshed = run_sync(sync.id, scenario.client, batch_size=2, full_refresh=True)

    assert scenario.rows() == source_rows(scenario, source)
    assert (refreshed.rows_read, refreshed.rows_deleted) == (4, 1)
    assert reads.keyset == [] and len(reads.chunks) == 3  # 2 + 2 rows, then an empty chunk
    assert cursor_time(refreshed.cursor_after) == at(99)


class FailingMapping:
    """Mapping fails on the batch after ``ok`` batches (a crash mid-backfill)."""

    def __init__(self, ok: int) -> None:
        self.ok = ok
        self.calls = 0
        self.map_batch = run.map_batch

    def __call__(self, batch: pa.RecordBatch, plan: Any) -> pa.RecordBatch:
        self.calls += 1
        if self.calls > self.ok:
            raise RuntimeError("runner crashed")
        return self.map_batch(batch, plan)


def test_a_crash_mid_backfill_resumes_at_the_next_chunk(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [event(i, 100 - i, amount=f"{i}.25") for i in range(1, 11)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    failing = FailingMapping(ok=2)
    monkeypatch.setattr(run, "map_batch", failing)

    with pytest.raises(SyncRunError, match="runner crashed"):
        run_sync(sync.id, scenario.client, batch_size=3)

    # two chunks committed and checkpointed: keys 1..6, the backfill's position after key 6
    assert scenario.rows() == expected_rows(rows[:6])
    position = scenario.client.get_sync(sync.id).cursor_position
    assert position.cursor is None
    assert decode_value(position.backfill.last_key) == 6
    assert cursor_time(CursorPosition(cursor=position.backfill.watermark)) == at(99)
    failed = scenario.client.list_runs(sync.id)[0]
    assert failed.status is RunStatus.FAILED and failed.rows_read == 6

    failing.ok = len(rows)  # the runner works again
    reads = Reads(monkeypatch)
    resumed = run_sync(sync.id, scenario.client, batch_size=3)

    assert scenario.rows() == expected_rows(rows)
    assert scenario.rows() == source_rows(scenario, source)
    # only the chunks after key 6 are read again
    assert (resumed.rows_read, resumed.rows_inserted, resumed.rows_updated) == (4, 4, 0)
    assert reads.rows == 4 and reads.keyset == []
    assert "> 6" in reads.sql(scenario.source.engine.dialect)[0]
    assert cursor_time(resumed.cursor_after) == at(99)
    assert resumed.cursor_after.backfill is None


def test_rows_changed_during_the_backfill_arrive_with_the_next_run(
    scenario: Scenario,
) -> None:
    rows = [event(i, 100 - i) for i in range(1, 10)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    changed = False

    def change_rows(progress: BatchProgress) -> None:
        nonlocal changed
        if not changed:  # after the first chunk (keys 1..3) is committed
            changed = True
            scenario.source.execute(
                source.update().where(source.c.id == 1).values(name="late", updated_at=at(200))
            )
            scenario.source.insert(source, [event(10, 201)])

    first = run_sync(sync.id, scenario.client, batch_size=3, on_progress=change_rows)

    by_id = {r["id"]: r for r in scenario.rows()}
    assert by_id[1]["name"] == "event 1"  # its chunk was read before the change
    assert 10 in by_id  # a later chunk reads the new key
    assert cursor_time(first.cursor_after) == at(99)  # the watermark at the start

    second = run_sync(sync.id, scenario.client, batch_size=3)

    assert scenario.rows() == source_rows(scenario, source)
    assert second.rows_updated == 1
    assert cursor_time(second.cursor_after) == at(201)


def test_the_chunk_query_scans_the_key_index_without_sorting(scenario: Scenario) -> None:
    kind = scenario.source.engine.dialect.name
    rows = [event(i, 10_000 - i) for i in range(1, 3001)]
    source = scenario.source.create(events_table(scenario.source), rows)
    relation = SourceRelation(source, tuple(source.c.keys()), {})
    chunk = keyset.backfill_query(
        relation,
        relation.columns,
        cursor="updated_at",
        primary_key="id",
        after_key=1000,
        limit=500,
        include_null_cursor=True,
    )
    sql = str(chunk.compile(scenario.source.engine, compile_kwargs={"literal_binds": True}))
    with scenario.source.engine.connect() as connection:
        if kind == "postgresql":
            connection.execute(sa.text(f"ANALYZE {scenario.source.schema}.{source.name}"))
            plan = connection.execute(sa.text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar()
            text = json.dumps(plan)
            assert '"Index Scan"' in text or '"Index Only Scan"' in text
            assert '"Sort"' not in text
        elif kind == "mysql":
            plan = connection.execute(sa.text(f"EXPLAIN {sql}")).mappings().one()
            assert plan["key"] == "PRIMARY"
            assert "filesort" not in (plan["Extra"] or "")
        else:
            plan = " ".join(
                str(r[-1]) for r in connection.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"))
            )
            assert "USE TEMP B-TREE" not in plan and "PRIMARY KEY" in plan


def test_a_custom_join_keeps_the_keyset_read(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [event(i, i) for i in range(1, 5)]
    scenario.source.create(events_table(scenario.source), rows)
    schema = scenario.source.schema
    sync = scenario.make_sync(
        custom_join=f'SELECT * FROM "{schema}".events' if schema else "SELECT * FROM events"
    )
    reads = Reads(monkeypatch)

    run_sync(sync.id, scenario.client, batch_size=3)

    # the (cursor, key) keyset read, and the NULL-cursor pass of its own: no key chunks
    assert reads.keyset and all("IS NULL" in str(q) for q in reads.chunks)
    assert scenario.rows() == expected_rows(rows)
