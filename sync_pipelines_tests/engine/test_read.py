"""The keyset query and the readers: bound parameters, wrapped custom_join, SQLite's types."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from sync_pipelines.engine import run_sync
from sync_pipelines.engine.sql.keyset import Keyset, ReadBounds, keyset_query
from sync_pipelines.engine.sql.read_ahead import read_ahead
from sync_pipelines.engine.sql.relation import SourceRelation
from sync_pipelines_tests.engine.conftest import Scenario, event


def relation(selectable: sa.FromClause) -> SourceRelation:
    return SourceRelation(selectable, tuple(selectable.c.keys()), {})


def test_keyset_query_binds_every_value() -> None:
    events = sa.table("events", sa.column("id"), sa.column("updated_at"), schema="app")
    query = keyset_query(
        relation(events),
        ["id", "updated_at"],
        cursor="updated_at",
        primary_key="id",
        bounds=ReadBounds(after=Keyset("2024-01-01 00:00:00.5", 7), from_cursor="2023-12-31"),
    )
    compiled = query.compile(dialect=postgresql.dialect())
    sql = " ".join(str(compiled).split())
    assert "2024" not in sql and "2023" not in sql and " 7" not in sql
    assert sql.endswith("ORDER BY app.events.updated_at, app.events.id")
    assert "app.events.updated_at > %(last_cursor)s OR app.events.updated_at = " in sql
    assert compiled.params == {
        "from_cursor": "2023-12-31",
        "last_cursor": "2024-01-01 00:00:00.5",
        "last_key": 7,
    }


def test_custom_join_is_wrapped_as_a_subquery() -> None:
    from sync_pipelines.engine.sql.relation import _custom_join_text

    text = _custom_join_text("SELECT id, '10:30' AS t, x::text FROM e WHERE a = :b GROUP BY 1;;")
    wrapped = sa.text(text).columns(sa.column("id")).subquery("src")
    query = keyset_query(
        relation(wrapped), ["id"], cursor="id", primary_key=None, bounds=ReadBounds(from_cursor=3)
    )
    sql = " ".join(str(query.compile(dialect=postgresql.dialect())).split())
    assert sql.startswith(
        "SELECT src.id FROM "
        "(SELECT id, '10:30' AS t, x::text FROM e WHERE a = :b GROUP BY 1) AS src"
    )
    assert sql.endswith("WHERE src.id IS NOT NULL AND src.id >= %(from_cursor)s ORDER BY src.id")


def test_sqlite_column_types_changing_mid_table_are_read_on(client, databases, caplog) -> None:
    source = databases("sqlite", "source")
    scenario = Scenario(client, source, databases("duckdb", "destination"))
    # a column of no declared type keeps each value's own: integers first, then text
    source.execute(
        sa.text(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, name ANY, amount NUMERIC, "
            "updated_at TEXT)"
        )
    )
    table = sa.table(
        "events", sa.column("id"), sa.column("name"), sa.column("amount"), sa.column("updated_at")
    )
    rows = [
        {**event(i, i), "amount": 1.5, "updated_at": f"2024-01-01 00:00:{i:02d}.000001"}
        for i in range(1, 8)
    ]
    for row in rows[:4]:
        row["name"] = row["id"] * 100
    source.insert(table, rows)
    sync = scenario.make_sync()

    with caplog.at_level(logging.INFO, logger="sync_pipelines.engine"):
        result = run_sync(sync.id, client, batch_size=2)

    # a first load reads key chunks, each a query of its own: the types each chunk meets are
    # read exactly, through ADBC or on without it
    assert "key chunks" in caplog.text

    assert result.rows_read == 7
    assert [(r["id"], r["name"]) for r in scenario.rows()] == [
        (1, "100"),
        (2, "200"),
        (3, "300"),
        (4, "400"),
        (5, "event 5"),
        (6, "event 6"),
        (7, "event 7"),
    ]


def test_read_ahead_hands_over_every_batch_in_order_and_holds_at_most_one_more() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(5):
            produced.append(i)
            yield i

    taken = []
    for item in read_ahead(source()):
        taken.append(item)
        time.sleep(0.01)  # the reader runs ahead while this one is written...
        assert len(produced) <= len(taken) + 1  # ...by one batch, no more
    assert taken == [0, 1, 2, 3, 4]


def test_read_ahead_raises_the_readers_error_and_stops_it_when_closed() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("source broke")

    with pytest.raises(ValueError, match="source broke"):
        list(read_ahead(failing()))

    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            yield from itertools.count()
        finally:
            closed.set()

    batches = read_ahead(endless())
    assert next(batches) == 0
    batches.close()
    assert closed.is_set()
