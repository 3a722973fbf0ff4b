"""The writers' fast paths on real databases: counts, unique keys, types, settings left as found."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from sync_pipelines.contract.models import FieldType, ObjectField, SyncMode
from sync_pipelines.engine import SourceSchemaError
from sync_pipelines.engine.mapping import map_batch
from sync_pipelines.engine.memory import duckdb_memory_limit, system_allocator
from sync_pipelines.engine.plan import FieldPlan, SyncPlan
from sync_pipelines.engine.write import BatchWriter, ensure_table, open_writer
from sync_pipelines_tests.engine.conftest import KINDS, Database, normalize

FIELDS = (("id", FieldType.INTEGER), ("name", FieldType.STRING))


def make_plan(
    destination: Database,
    fields: Sequence[tuple[str, FieldType]] | None = FIELDS,
    *,
    customer: str = "acme",
) -> SyncPlan:
    """A plan writing ``fields`` (``None``: every column as read) keyed on ``id``."""
    return SyncPlan(
        sync_id=1,
        sync_name="writer test",
        mode=SyncMode.INCREMENTAL_UPDATE,
        source_namespace=None,
        source_table="source",
        custom_join=None,
        cursor=None,
        primary_key="id",
        fields=None if fields is None else tuple(FieldPlan(n, n, t) for n, t in fields),
        customer_field="ecid",
        customer_id=customer,
        destination_namespace=destination.namespace,
        destination_table="written",
        object_fields=tuple(ObjectField(name=n, type=t) for n, t in fields or ()),
        max_age_days=None,
        lookback=None,
    )


def writer_for(destination: Database, plan: SyncPlan, batch: pa.RecordBatch) -> BatchWriter:
    table = ensure_table(destination.engine, plan, map_batch(batch, plan).schema)
    return open_writer(destination.engine, table, plan)


def named(ids: Sequence[int], name: str) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {"id": pa.array(ids, pa.int64()), "name": [f"{name} {i}" for i in ids]}
    )


def upsert(writer: BatchWriter, plan: SyncPlan, batch: pa.RecordBatch) -> tuple[int, int]:
    counts = writer.upsert(map_batch(batch, plan))
    return counts.inserted, counts.updated


def destination_rows(destination: Database) -> list[dict[str, Any]]:
    return destination.rows("written")


@pytest.mark.parametrize("kind", KINDS)
def test_upserts_count_inserts_and_updates_and_keep_keys_unique(databases, kind: str) -> None:
    destination = databases(kind, "destination")
    plan = make_plan(destination)
    writer = writer_for(destination, plan, named([1], "x"))
    try:
        assert upsert(writer, plan, named([1, 2, 3, 4, 5], "first")) == (5, 0)
        # keys written earlier in the same transaction
        assert upsert(writer, plan, named([4, 5, 6, 7, 8], "second")) == (3, 2)
        writer.commit()
        # no key of the destination in the batch's range: a plain insert
        assert upsert(writer, plan, named([10, 11], "third")) == (2, 0)
        # the range holds keys of the destination, the batch none of them
        assert upsert(writer, plan, named([9, 12], "fourth")) == (2, 0)
        assert upsert(writer, plan, named([2, 20], "fifth")) == (1, 1)
        writer.commit()
    finally:
        writer.close()

    rows = destination_rows(destination)
    assert [(r["ecid"], r["id"]) for r in rows] == [("acme", i) for i in (*range(1, 13), 20)]
    names = {r["id"]: r["name"] for r in rows}
    assert (names[1], names[2], names[5], names[9], names[20]) == (
        "first 1",
        "fifth 2",
        "second 5",
        "fourth 9",
        "fifth 20",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_other_customers_keys_in_range_are_not_touched(databases, kind: str) -> None:
    destination = databases(kind, "destination")
    for customer, name in (("other", "theirs"), ("acme", "ours")):
        plan = make_plan(destination, customer=customer)
        writer = writer_for(destination, plan, named([1], "x"))
        try:
            assert upsert(writer, plan, named([1, 2, 3], name)) == (3, 0)
            writer.commit()
        finally:
            writer.close()

    rows = destination_rows(destination)
    assert [(r["ecid"], r["name"]) for r in rows if r["id"] == 2] == [
        ("acme", "ours 2"),
        ("other", "theirs 2"),
    ]


def test_duckdb_tables_have_no_key_index_and_refuse_a_repeated_key(databases) -> None:
    destination = databases("duckdb", "destination")
    plan = make_plan(destination)
    writer = writer_for(destination, plan, named([1], "x"))
    try:
        upsert(writer, plan, named([1, 2], "kept"))
        writer.commit()
        with pytest.raises(SourceSchemaError, match="'id' is not unique: 3 appears 2 times"):
            upsert(writer, plan, named([3, 4, 3], "refused"))
    finally:
        writer.close()

    with destination.engine.connect() as connection:
        constraints = connection.execute(
            sa.text(
                "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() "
                "WHERE table_name = 'written' ORDER BY 2"
            )
        ).all()
    assert constraints == [("NOT NULL", ["ecid"]), ("NOT NULL", ["id"])]
    assert [r["name"] for r in destination_rows(destination)] == ["kept 1", "kept 2"]


def test_duckdb_swap_refuses_a_key_staged_twice_and_changes_nothing(databases) -> None:
    destination = databases("duckdb", "destination")
    plan = make_plan(destination)
    writer = writer_for(destination, plan, named([1], "x"))
    try:
        upsert(writer, plan, named([1, 2], "before"))
        writer.commit()
        writer.stage(map_batch(named([1, 5], "staged"), plan))
        writer.stage(map_batch(named([6, 5], "staged"), plan))
        with pytest.raises(SourceSchemaError, match="5 appears 2 times"):
            writer.swap()
    finally:
        writer.close()

    assert [r["name"] for r in destination_rows(destination)] == ["before 1", "before 2"]


def test_duckdb_writer_restores_the_instance_settings(databases) -> None:
    destination = databases("duckdb", "destination")
    plan = make_plan(destination)
    settings = ("memory_limit", "checkpoint_threshold", "threads")
    query = sa.text("SELECT " + ", ".join(f"current_setting('{s}')" for s in settings))
    with destination.engine.connect() as held:  # keeps the database instance open
        before = held.execute(query).one()
        writer = writer_for(destination, plan, named([1], "x"))
        try:
            during = held.execute(query).one()
            upsert(writer, plan, named([1], "x"))
            writer.commit()
        finally:
            writer.close()
        after = held.execute(query).one()
        # the buffer pool is back at the limit found, not only the setting shown: a query
        # needing ~100 MB runs (``RESET memory_limit`` alone left the pool at 32 MiB)
        query_distinct = sa.text("SELECT count(DISTINCT range) FROM range(5000000)")
        distinct = held.execute(query_distinct).scalar_one()

    assert during[:2] == ("32.0 MiB", "1.0 GiB")
    assert after[1:] == before[1:]
    # set again as shown ("18.8 GiB"), which DuckDB shows a tenth lower
    assert after[0].split()[1] == before[0].split()[1]
    assert abs(float(after[0].split()[0]) - float(before[0].split()[0])) < 0.15
    assert distinct == 5_000_000


def test_duckdb_memory_limit_grows_with_what_deletes_pin_up_to_a_share_of_memory() -> None:
    gib = 1024**3

    def limit(columns: int, deleted: int = 0, table: int = 0, machine: int = 24 * gib) -> str:
        return duckdb_memory_limit(
            columns, deleted_rows=deleted, table_rows=table, machine_bytes=machine
        )

    assert (limit(8), limit(60)) == ("32MiB", "120MiB")
    # 10,000 scattered updates: at most 10,000 vectors of 16 KiB, a quarter more
    assert limit(8, 10_000, 100_000_000) == f"{32 + -(-10_000 * 16 * 5 // 4 // 1024)}MiB"
    # ... but no more vectors than the table has (10M rows: 4,883)
    assert limit(8, 10_000, 10_000_000) == f"{32 + -(-4_883 * 16 * 5 // 4 // 1024)}MiB"
    assert limit(8, 10**9, 10**9) == "6144MiB"  # a quarter of the machine
    assert limit(8, 10**9, 10**9, machine=gib // 2) == "256MiB"  # at least 256 MiB


def test_duckdb_updates_scattered_over_a_large_table_fit_in_memory(databases) -> None:
    """3,000 updates, each in its own 2,048-row vector of a 6.2M-row table: the delete markers
    (16 KiB a vector) outgrow the 32 MiB an append needs; the writer raises the limit."""
    destination = databases("duckdb", "destination")
    plan = make_plan(destination)
    writer_for(destination, plan, named([1], "x")).close()
    rows, step = 6_200_000, 2_048
    with destination.engine.begin() as connection:
        connection.execute(
            sa.text(
                f"INSERT INTO {destination.namespace}.written "
                f"SELECT 'acme', range, 'old' FROM range(1, {rows + 1})"
            )
        )
    writer = writer_for(destination, plan, named([1], "x"))
    settings = sa.text("SELECT current_setting('memory_limit')")
    try:
        keys = list(range(step, rows + 1, step))[:3_000] + [rows + 1]
        assert upsert(writer, plan, named(keys, "new")) == (1, 3_000)
        writer.commit()
        during = writer.connection.execute(settings).scalar_one()
    finally:
        writer.close()

    assert during != "32.0 MiB"  # raised for the delete, restored at close
    with destination.engine.connect() as connection:
        counts = connection.execute(
            sa.text(
                f"SELECT count(*), count(*) FILTER (WHERE name LIKE 'new%'), count(DISTINCT id) "
                f"FROM {destination.namespace}.written"
            )
        ).one()
    assert tuple(counts) == (rows + 1, 3_001, rows + 1)


POSTGRES_FIELDS = (
    ("id", FieldType.INTEGER),
    ("amount", FieldType.NUMBER),
    ("note", FieldType.STRING),
    ("doc", FieldType.JSON),
    ("tags", FieldType.ARRAY),
    ("flag", FieldType.BOOLEAN),
    ("seen_at", FieldType.TIMESTAMP),
    ("local_at", FieldType.DATETIME_NTZ),
    ("day", FieldType.DATE),
    ("clock", FieldType.TIME_NTZ),
    ("zoned", FieldType.TIME_TZ),
)


def test_postgres_binary_copy_writes_every_field_type_exactly(databases) -> None:
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
        assert upsert(writer, plan, raw) == (2, 0)
        assert writer.upsert(map_batch(raw, plan)).unchanged == 2  # every value compares equal
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


def test_postgres_writes_arrow_types_binary_copy_cannot_encode(databases) -> None:
    destination = databases("postgres", "destination")
    plan = make_plan(destination, None)
    raw = pa.RecordBatch.from_pydict(
        {
            "id": pa.array([1, 2], pa.int64()),
            "label": pa.array(["a", "b"]).dictionary_encode(),
            "big": pa.array([decimal.Decimal("1" * 45 + ".5"), None], pa.decimal256(50, 1)),
            "nothing": pa.nulls(2),
            "blob": pa.array([b"\x00\xff", None], pa.binary()),
            "at_ns": pa.array([1_700_000_000_123_456_789, None], pa.timestamp("ns", "UTC")),
        }
    )
    writer = writer_for(destination, plan, raw)
    try:
        assert upsert(writer, plan, raw) == (2, 0)
        writer.commit()
    finally:
        writer.close()

    first, second = destination_rows(destination)
    assert (first["label"], second["label"]) == ("a", "b")
    assert decimal.Decimal(first["big"]) == decimal.Decimal("1" * 45 + ".5")
    assert first["nothing"] is None
    assert bytes(first["blob"]) == b"\x00\xff"
    assert normalize(first["at_ns"]) == dt.datetime(2023, 11, 14, 22, 13, 20, 123457)


def test_the_system_allocator_is_used_inside_and_restored_after() -> None:
    before = pa.default_memory_pool().backend_name
    with system_allocator():
        assert pa.default_memory_pool().backend_name == "system"
        assert pa.array([1, 2, 3]).sum().as_py() == 6
    assert pa.default_memory_pool().backend_name == before
