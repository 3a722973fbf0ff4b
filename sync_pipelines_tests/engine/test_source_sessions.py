"""PostgreSQL and MariaDB sources: late commits are picked up without lookback; failed reads
leave no session idle in transaction."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from sync_pipelines.engine import SyncRunError, run_sync
from sync_pipelines.typed_values import decode_value
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
            sa.Column(
                "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()
            ),
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
        later_start = scenario.source.engine.connect().execute(
            sa.select(table.c.updated_at).where(table.c.id == 2)
        ).scalar_one()
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
    committed = scenario.source.engine.connect().execute(
        sa.select(table.c.updated_at).where(table.c.id == 1)
    ).scalar_one()
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
