"""The bulk load: a destination without rows of the end customer takes batches straight in."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa

from sync_pipelines.engine import run_sync
from sync_pipelines.engine.mapping import map_batch
from sync_pipelines.engine.write import BatchWriter, WriteCounts
from sync_pipelines.engine.write.duckdb import DuckDBWriter
from sync_pipelines.engine.write.postgres import PostgresWriter
from sync_pipelines_tests.engine.conftest import KINDS, Scenario, at, event, events_table
from sync_pipelines_tests.engine.test_writers import (
    POSTGRES_FIELDS,
    destination_rows,
    make_plan,
    named,
    upsert,
    writer_for,
)


@pytest.mark.parametrize("kind", KINDS)
def test_a_first_load_is_bulk_loaded_and_keys_stay_unique(databases, kind: str) -> None:
    destination = databases(kind, "destination")
    other = make_plan(destination, customer="other")
    writer = writer_for(destination, other, named([1], "x"))
    try:
        upsert(writer, other, named([1, 2], "theirs"))
        writer.commit()
    finally:
        writer.close()

    plan = make_plan(destination)
    writer = writer_for(destination, plan, named([1], "x"))
    try:
        assert writer.holds_no_rows()  # another customer's rows do not count
        counts = writer.bulk_load_batch(map_batch(named([1, 2, 3], "ours"), plan))
        assert (counts.inserted, counts.updated) == (3, 0)
        writer.commit()
        assert writer.bulk_load_batch(map_batch(named([4, 5], "ours"), plan)).inserted == 2
        writer.commit()
        assert not writer.holds_no_rows()
    finally:
        writer.close()

    rows = destination_rows(destination)
    assert sorted((r["ecid"], r["id"], r["name"]) for r in rows) == [
        *[("acme", i, f"ours {i}") for i in range(1, 6)],
        ("other", 1, "theirs 1"),
        ("other", 2, "theirs 2"),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_a_key_read_again_in_a_later_bulk_loaded_batch_is_an_update(databases, kind: str) -> None:
    """A row that changed while the first run read it comes again in a later batch: that batch
    is upserted, so the table holds the key once, with its latest values."""
    destination = databases(kind, "destination")
    plan = make_plan(destination)
    writer = writer_for(destination, plan, named([1], "x"))
    try:
        assert writer.bulk_load_batch(map_batch(named([1, 2, 3], "first"), plan)).inserted == 3
        writer.commit()
        counts = writer.bulk_load_batch(map_batch(named([5, 3, 4], "again"), plan))
        writer.commit()
    finally:
        writer.close()

    assert (counts.inserted, counts.updated) == (2, 1)
    rows = sorted((r["id"], r["name"]) for r in destination_rows(destination))
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert dict(rows)[3] == "again 3" and dict(rows)[1] == "first 1"


def test_postgres_bulk_load_writes_every_field_type_exactly(databases) -> None:
    """jsonb is copied as its binary input; columns that need a cast (json arrays, time with
    time zone) take the staging table; the values are exact either way."""
    destination = databases("postgres", "destination")
    plan = make_plan(destination, POSTGRES_FIELDS)
    raw = pa.RecordBatch.from_pydict(
        {
            "id": [1, 2],
            "amount": [decimal.Decimal("12345678901234567890.123456789"), None],
            "note": ["héllo ✓ 𝄞", None],
            "doc": ['{"a": [1, 2.5, {"b": "ü"}], "n": null}', None],
            "tags": ['["x", "y"]', None],
            "flag": [True, None],
            "seen_at": ["2024-03-01T12:30:45.123456+05:30", None],
            "local_at": ["2024-03-01 23:59:59.999999", None],
            "day": [dt.date(2024, 2, 29), None],
            "clock": [dt.time(23, 59, 59, 999999), None],
            "zoned": ["12:30:00+05:30", None],
        }
    )
    writer = writer_for(destination, plan, raw)
    try:
        assert writer.bulk_load_batch(map_batch(raw, plan)).inserted == 2
        writer.commit()
    finally:
        writer.close()

    first, second = destination_rows(destination)
    assert first["amount"] == decimal.Decimal("12345678901234567890.123456789")
    assert first["note"] == "héllo ✓ 𝄞"
    assert first["doc"] == {"a": [1, 2.5, {"b": "ü"}], "n": None}
    assert first["tags"] == ["x", "y"]
    assert first["flag"] is True
    assert first["seen_at"] == dt.datetime(2024, 3, 1, 7, 0, 45, 123456)
    assert first["local_at"] == dt.datetime(2024, 3, 1, 23, 59, 59, 999999)
    assert first["day"] == dt.date(2024, 2, 29)
    assert first["clock"] == dt.time(23, 59, 59, 999999)
    assert first["zoned"].utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert {k for k, v in second.items() if v is not None} == {"ecid", "id"}


def test_postgres_bulk_load_copies_straight_into_the_table(databases) -> None:
    """Integers, text, jsonb, numbers and timestamps need no staging table."""
    destination = databases("postgres", "destination")
    fields = tuple(f for f in POSTGRES_FIELDS if f[0] in ("id", "amount", "note", "doc", "seen_at"))
    plan = make_plan(destination, fields)
    raw = pa.RecordBatch.from_pydict(
        {
            "id": [1],
            "amount": [decimal.Decimal("1.5")],
            "note": ["x"],
            "doc": ['{"a": 1}'],
            "seen_at": ["2024-03-01T12:30:45.123456+00:00"],
        }
    )
    writer = writer_for(destination, plan, raw)
    try:
        writer.bulk_load_batch(map_batch(raw, plan))
        writer.commit()
        assert writer._batch_stage is None  # no staging table was made
    finally:
        writer.close()
    (row,) = destination_rows(destination)
    assert (row["amount"], row["doc"]) == (decimal.Decimal("1.5"), {"a": 1})


@pytest.mark.parametrize("kind", ("duckdb", "postgres"))
def test_each_customers_first_run_bulk_loads_and_later_runs_upsert(
    client, databases, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = databases("sqlite", "source")
    scenario = Scenario(client, source, databases(kind, "destination"))
    scenario.make_object()
    source.create(events_table(source), [event(i, i // 3) for i in range(1, 8)])
    bulk_loaded: list[int] = []
    original = BatchWriter.bulk_load_batch

    def counting(writer: BatchWriter, batch: pa.RecordBatch) -> WriteCounts:
        bulk_loaded.append(batch.num_rows)
        return original(writer, batch)

    for writer_class in (BatchWriter, DuckDBWriter, PostgresWriter):
        monkeypatch.setattr(writer_class, "bulk_load_batch", counting)
    acme, globex = scenario.make_sync(customer="acme"), scenario.make_sync(customer="globex")

    first = run_sync(acme.id, client, batch_size=3)
    assert bulk_loaded == [3, 3, 1]
    assert (first.rows_inserted, first.rows_updated) == (7, 0)
    with source.engine.begin() as connection:
        connection.execute(
            events_table(source)
            .update()
            .where(sa.column("id") == 2)
            .values(name="renamed", updated_at=at(20))
        )
        connection.execute(events_table(source).insert(), [event(8, 9)])
    assert run_sync(globex.id, client, batch_size=3).rows_inserted == 8  # its own first run
    assert bulk_loaded == [3, 3, 1, 3, 3, 2]
    again = run_sync(acme.id, client, batch_size=3)
    assert bulk_loaded == [3, 3, 1, 3, 3, 2]  # acme holds rows now: upserts
    assert again.rows_read >= 2

    rows = scenario.rows()
    assert [(r["ecid"], r["id"]) for r in rows] == [
        *[("acme", i) for i in range(1, 9)],
        *[("globex", i) for i in range(1, 9)],
    ]
    assert {r["ecid"]: r["name"] for r in rows if r["id"] == 2} == {
        "acme": "renamed",
        "globex": "renamed",
    }
