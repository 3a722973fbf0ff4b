"""The demo's downstream asset: events per end customer per day, in the DuckDB warehouse."""

from pathlib import Path

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

DAILY_EVENTS_SQL = """
CREATE OR REPLACE TABLE analytics.daily_events AS
SELECT
    end_customer_id,
    CAST(occurred_at AS DATE) AS day,
    count(*) AS events,
    count(DISTINCT user_id) AS users,
    coalesce(sum(amount) FILTER (WHERE event_name = 'checkout'), 0) AS revenue
FROM analytics.events
GROUP BY ALL
ORDER BY day, end_customer_id
"""


def build_daily_events_asset(
    *, warehouse: Path, events: AssetKey, pool: str | None = None
) -> AssetsDefinition:
    """``analytics/daily_events``: the synced events aggregated per end customer and day.

    Args:
        warehouse: the DuckDB file the events are synced into.
        events: the events object's asset (all of its partitions feed this one).
        pool: the warehouse's concurrency pool (DuckDB has one writer at a time).
    """

    @asset(
        key=AssetKey(["analytics", "daily_events"]),
        deps=[events],
        group_name="warehouse",
        kinds={"duckdb"},
        pool=pool,
        description="Events, users and revenue per end customer per day, from the synced "
        "analytics.events table.",
    )
    def daily_events(context: AssetExecutionContext) -> MaterializeResult:
        with duckdb.connect(str(warehouse)) as connection:
            found = connection.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = 'analytics' AND table_name = 'events'"
            ).fetchone()[0]
            if not found:
                raise Failure(
                    description="analytics.events does not exist yet: materialize a partition "
                    f"of {events.to_user_string()} first"
                )
            connection.execute(DAILY_EVENTS_SQL)
            rows = connection.execute("SELECT count(*) FROM analytics.daily_events").fetchone()[0]
            latest = connection.execute(
                "SELECT * FROM analytics.daily_events ORDER BY day DESC, end_customer_id LIMIT 9"
            ).fetchall()
        context.log.info(f"analytics.daily_events: {rows} rows")
        preview = "| end customer | day | events | users | revenue |\n|---|---|---|---|---|\n"
        preview += "\n".join(f"| {c} | {d} | {e} | {u} | {r:.2f} |" for c, d, e, u, r in latest)
        return MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "dagster/table_name": "analytics.daily_events",
                "latest_days": MetadataValue.md(preview),
            }
        )

    return daily_events
