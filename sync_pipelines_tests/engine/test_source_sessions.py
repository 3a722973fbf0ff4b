"""PostgreSQL and MariaDB sources: late commits are picked up without lookback; failed reads
leave no session idle in transaction; the pages of a pass are read on one connection."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from sync_pipelines.common.typed_values import decode_value
from sync_pipelines.engine import SyncRunError, run_sync
from sync_pipelines.engine.sql import keyset
from sync_pipelines_tests.engine.conftest import Scenario, event, events_table

postgres_source = pytest.mark.parametrize(
    "scenario", [("postgres", "duckdb")], ids=["postgres-to-duckdb"], indirect=True
)


def now_table(scenario: Scenario) -> sa.Table:
    """events whose updated_at is set by the database: the transaction's now()."""
    return scenario.source.create(
        scenario.source.table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(100)),
            sa.Column("amount", sa.Numeric(12, 2), server_default="1.50"),
            sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        )
    )


@postgres_source
def test_a_transaction_committed_after_a_later_one_arrives_without_lookback(
    scenario: Scenario,
) -> None:
    table = now_table(scenario)
    sync = scenario.make_sync()
    assert sync.lookback is None
    early = scenario.source.engine.connect()
    try:
        early.begin()
        early_start = early.execute(sa.select(sa.func.now())).scalar_one()  # its now()
        scenario.source.execute(table.insert().values(id=2, name="later"))
        later_start = (
            scenario.source.engine.connect()
            .execute(sa.select(table.c.updated_at).where(table.c.id == 2))
            .scalar_one()
        )
        assert early_start < later_start

        first = run_sync(sync.id, scenario.client)

        assert [r["id"] for r in scenario.rows()] == [2]
        # the checkpoint stays below the open transaction's start, not at the row read
        assert decode_value(first.cursor_after.cursor) < early_start
        # the early transaction writes now, with its own (earlier) now(), and commits last
        early.execute(table.insert().values(id=1, name="early"))
        early.commit()
    finally:
        early.close()
    committed = (
        scenario.source.engine.connect()
        .execute(sa.select(table.c.updated_at).where(table.c.id == 1))
        .scalar_one()
    )
    assert committed == early_start < later_start

    run_sync(sync.id, scenario.client)

    assert [(r["id"], r["name"]) for r in scenario.rows()] == [(1, "early"), (2, "later")]


@postgres_source
def test_a_failed_read_leaves_no_source_session_idle_in_transaction(scenario: Scenario) -> None:
    scenario.source.create(events_table(scenario.source), [event(i, i) for i in range(1, 9)])
    name = f"sp_test_{uuid.uuid4().hex[:12]}"
    url = sa.make_url(scenario.source.url).update_query_dict({"application_name": name})
    qualified = f"{scenario.source.namespace}.events"
    # the 5th row's amount is no number: the run fails mid-stream, in its third batch
    sync = scenario.make_sync(
        source_connection={
            "connection_type": "postgres",
            "url": url.render_as_string(hide_password=False),
        },
        custom_join=(
            "SELECT id, name, updated_at, CASE WHEN id >= 5 THEN 'not a number' "
            f"ELSE amount::text END AS amount FROM {qualified}"
        ),
    )

    with pytest.raises(SyncRunError) as raised:
        run_sync(sync.id, scenario.client, batch_size=2)

    assert "column 'amount' of the custom_join query cannot be written" in str(raised.value)
    # the customer's ALTER TABLE does not wait on the failed run (the error is still held)
    with scenario.source.engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
        connection.execute(sa.text(f"ALTER TABLE {qualified} ADD COLUMN note text"))
        stuck = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                "AND state LIKE 'idle in transaction%'"
            ),
            {"name": name},
        ).scalar_one()
    assert stuck == 0


@pytest.mark.parametrize("scenario", [("mysql", "duckdb")], ids=["mysql-to-duckdb"], indirect=True)
def test_mariadb_a_transaction_committed_after_a_later_one_arrives_without_lookback(
    scenario: Scenario,
) -> None:
    table = scenario.source.create(
        scenario.source.table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(100)),
            sa.Column("amount", sa.Numeric(12, 2), server_default="1.50"),
            sa.Column(
                "updated_at",
                mysql.DATETIME(fsp=6),
                server_default=sa.text("CURRENT_TIMESTAMP(6)"),
            ),
        )
    )
    sync = scenario.make_sync()
    early = scenario.source.engine.connect()
    try:
        early.begin()
        early.execute(table.insert().values(id=1, name="early"))  # NOW() of this statement
        early_value = early.execute(
            sa.select(table.c.updated_at).where(table.c.id == 1)
        ).scalar_one()
        scenario.source.execute(table.insert().values(id=2, name="later"))
        with scenario.source.engine.connect() as other:
            later_value = other.execute(
                sa.select(table.c.updated_at).where(table.c.id == 2)
            ).scalar_one()
        assert early_value < later_value

        first = run_sync(sync.id, scenario.client)

        assert [r["id"] for r in scenario.rows()] == [2]
        assert decode_value(first.cursor_after.cursor) < early_value
        early.commit()
    finally:
        early.close()

    run_sync(sync.id, scenario.client)

    assert [(r["id"], r["name"]) for r in scenario.rows()] == [(1, "early"), (2, "later")]


class Connects:
    """Counts the ADBC connections the reader opens to the source, and which are still open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import adbc_driver_postgresql.dbapi as adbc_postgres
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        self.opened: list[Any] = []
        for module in (adbc_postgres, adbc_sqlite):
            monkeypatch.setattr(module, "connect", self._counting(module.connect))

    def _counting(self, connect: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            connection = connect(*args, **kwargs)
            self.opened.append(connection)
            return connection

        return counted

    @property
    def open(self) -> int:
        return sum(not connection._closed for connection in self.opened)


@pytest.mark.parametrize(
    "scenario",
    [("postgres", "duckdb"), ("sqlite", "duckdb")],
    ids=["postgres-to-duckdb", "sqlite-to-duckdb"],
    indirect=True,
)
def test_every_page_of_a_pass_is_read_on_one_connection_closed_after_it(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [event(i, i) for i in range(1, 8)] + [
        {**event(i, 0), "updated_at": None} for i in range(10, 15)
    ]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    connects = Connects(monkeypatch)

    first = run_sync(sync.id, scenario.client, batch_size=2)

    # the backfill: 12 rows in 6 key chunks of 2 and an empty 7th, on one connection
    assert first.rows_read == 12 and first.batches == 6
    assert len(connects.opened) == 1 and connects.open == 0

    scenario.source.insert(source, [event(20, 50)])
    connects.opened.clear()
    second = run_sync(sync.id, scenario.client, batch_size=2)

    # the NULL-cursor pass (5 rows: 3 pages) on one connection, the keyset read on another
    assert second.rows_read == 5 + 1 + 1  # the boundary row is read again
    assert len(connects.opened) == 2 and connects.open == 0
    assert len(scenario.rows()) == 13


@postgres_source
def test_a_failed_backfill_leaves_no_source_session_idle_in_transaction(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the amount is text in the source, a number in the object: the 5th row fails mid-stream,
    # in the third key chunk
    scenario.source.create(
        scenario.source.table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(100)),
            sa.Column("amount", sa.Text),
            sa.Column("updated_at", sa.DateTime(timezone=True)),
        ),
        [{**event(i, i), "amount": "not a number" if i >= 5 else "1.50"} for i in range(1, 9)],
    )
    name = f"sp_test_{uuid.uuid4().hex[:12]}"
    url = sa.make_url(scenario.source.url).update_query_dict({"application_name": name})
    sync = scenario.make_sync(
        source_connection={
            "connection_type": "postgres",
            "url": url.render_as_string(hide_password=False),
        },
    )
    chunks: list[Any] = []
    backfill_query = keyset.backfill_query
    monkeypatch.setattr(
        keyset, "backfill_query", lambda *a, **k: chunks.append(k) or backfill_query(*a, **k)
    )
    connects = Connects(monkeypatch)

    with pytest.raises(SyncRunError) as raised:
        run_sync(sync.id, scenario.client, batch_size=2)

    assert "column 'amount' of the source table" in str(raised.value)
    assert len(chunks) == 3  # read in key chunks, the third one failing
    assert len(connects.opened) == 1 and connects.open == 0
    qualified = f"{scenario.source.namespace}.events"
    with scenario.source.engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
        connection.execute(sa.text(f"ALTER TABLE {qualified} ADD COLUMN note text"))
        left = connection.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": name},
        ).scalar_one()
    assert left == 0
