"""Stripe syncs against a local Stripe: backfill by listing, then only the Events API."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from sync_pipelines.contract.models import RunStats, RunStatus, SyncUpdate
from sync_pipelines.engine import SyncRunError, run_sync
from sync_pipelines.providers import sync_provider
from sync_pipelines_tests.providers.conftest import (
    FAST_RETRIES,
    STRIPE_SECRET,
    assert_no_secret,
    create_provider_sync,
)

DAY = 86_400


def stripe_sync(api, warehouse, stripe, collections=("customer",), **fields):
    config = {"base_url": stripe.url, "page_size": 5, **FAST_RETRIES}
    return create_provider_sync(
        api,
        warehouse,
        "stripe",
        list(collections),
        credential={"secret": STRIPE_SECRET},
        provider_config=config | fields.pop("provider_config", {}),
        **fields,
    )


def server_customers(stripe) -> dict[str, dict]:
    return {o["id"]: o for o in stripe.objects["customer"].values()}


def table_customers(warehouse) -> dict[str, dict]:
    return {row["id"]: row for row in warehouse.rows("customer")}


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_backfill_lists_every_page_into_typed_columns(api, stripe, make_warehouse, kind):
    warehouse = make_warehouse(kind)
    now = int(time.time())
    for i in range(23):
        stripe.add(
            "customer",
            created=now - DAY * (i + 1),
            email=f"c{i}@acme.test",
            balance=i * 100,
            delinquent=i % 2 == 0,
            metadata={"tier": "gold"},
        )
    for i in range(3):
        stripe.add(
            "invoice", created=now - DAY, customer="cus_x", amount_due=500 + i, status="open"
        )
    sync = stripe_sync(api, warehouse, stripe, ["customer", "invoice"])

    result = sync_provider(sync.id, api)  # the caller picks the provider runner

    assert result.status is RunStatus.COMPLETED
    listed = stripe.seen("/v1/customers")
    assert len(listed) == 5  # 23 customers, 5 per page
    assert [r.param("starting_after") for r in listed][0] is None
    assert all(r.param("starting_after") for r in listed[1:])
    rows = table_customers(warehouse)
    assert rows.keys() == server_customers(stripe).keys()
    some = next(iter(server_customers(stripe).values()))
    row = rows[some["id"]]
    assert row["email"] == some["email"] and row["balance"] == some["balance"]
    assert row["delinquent"] is some["delinquent"] and row["end_customer_id"] == "acme"
    assert row["created"].astimezone(dt.UTC) == dt.datetime.fromtimestamp(some["created"], dt.UTC)
    assert row["raw"] == some
    assert len(warehouse.rows("invoice")) == 3
    assert result.rows_inserted == 26 and result.collections[0].backfilled
    assert {c.destination_table for c in result.collections} == {
        f"{warehouse.namespace}.customer",
        f"{warehouse.namespace}.invoice",
    }
    synced = api.get_sync(sync.id)
    assert synced.backfill_completed_at is not None and synced.health.status.value == "healthy"
    positions = synced.cursor_position.collections
    assert set(positions) == {"stripe:customer", "stripe:invoice"}
    assert all(not p.collections for p in positions.values())  # both listings complete


def test_the_sql_runner_refuses_a_provider_sync_and_names_the_provider_runner(
    api, stripe, warehouse
):
    sync = stripe_sync(api, warehouse, stripe)

    with pytest.raises(SyncRunError, match="run it with the provider runner") as raised:
        run_sync(sync.id, api)  # the caller picks the runner: this one runs SQL syncs

    run = api.list_runs(sync.id)[0]
    assert run.id == raised.value.run_id and run.status is RunStatus.FAILED
    assert stripe.seen("/v1/customers") == []  # nothing was read


def test_changes_come_only_from_events_and_apply_once(api, stripe, warehouse):
    now = int(time.time())
    ids = [
        stripe.add("customer", created=now - DAY * (i + 1), email=f"c{i}@x")["id"]
        for i in range(12)
    ]
    sync = stripe_sync(api, warehouse, stripe)
    sync_provider(sync.id, api)
    stripe.clear()

    stripe.update("customer", ids[0], email="first@x")
    stripe.update("customer", ids[0], email="second@x")  # two changes: the newest wins
    stripe.update("customer", ids[5], balance=42)
    stripe.delete("customer", ids[7])
    fresh = stripe.add("customer", email="fresh@x")
    result = sync_provider(sync.id, api)

    assert not stripe.seen("/v1/customers")  # no listing again
    events = stripe.seen("/v1/events")
    assert events and all(
        r.query["types[]"] == ["customer.created", "customer.updated", "customer.deleted"]
        for r in events
    )
    assert int(events[0].param("created[gte]")) >= now - 120  # from the backfill's start
    rows = table_customers(warehouse)
    assert rows.keys() == server_customers(stripe).keys()  # updated, not duplicated
    assert rows[ids[0]]["email"] == "second@x" and rows[ids[5]]["balance"] == 42
    assert ids[7] not in rows and fresh["id"] in rows
    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (1, 2, 1)
    assert rows[ids[0]]["updated_at"] > rows[ids[1]]["updated_at"]

    stripe.clear()
    again = sync_provider(sync.id, api)
    assert again.rows_written <= 3  # only the events of the last second are read again
    assert table_customers(warehouse).keys() == server_customers(stripe).keys()


def test_max_age_days_bounds_the_listing_and_what_stays(api, stripe, warehouse):
    now = int(time.time())
    old = stripe.add("customer", created=now - 40 * DAY, email="old@x")
    middle = stripe.add("customer", created=now - 20 * DAY, email="middle@x")
    recent = stripe.add("customer", created=now - 2 * DAY, email="recent@x")
    sync = stripe_sync(api, warehouse, stripe, max_age_days=30)

    sync_provider(sync.id, api)

    listed = stripe.seen("/v1/customers")[0]
    assert now - 30 * DAY - 60 <= int(listed.param("created[gte]")) <= now - 30 * DAY + 60
    assert set(table_customers(warehouse)) == {middle["id"], recent["id"]}

    api.update_sync(sync.id, SyncUpdate(max_age_days=10))
    result = sync_provider(sync.id, api)

    assert set(table_customers(warehouse)) == {recent["id"]}
    assert result.rows_deleted == 1
    assert old["id"] not in table_customers(warehouse)


def test_an_unfinished_listing_resumes_where_it_stopped(api, stripe, warehouse):
    now = int(time.time())
    for i in range(14):
        stripe.add("customer", created=now - DAY * (i + 1), email=f"c{i}@x")
    sync = stripe_sync(api, warehouse, stripe, ["customer", "invoice"])

    cut = sync_provider(sync.id, api, time_budget_seconds=0)

    assert cut.status is RunStatus.CANCELLED
    synced = api.get_sync(sync.id)
    assert synced.backfill_completed_at is None  # not every collection caught up
    assert synced.health.status.value != "error"  # a cut-short run is not a failure
    assert api.list_runs(sync.id)[0].error.startswith("stopped after the time budget")
    assert len(table_customers(warehouse)) == 5
    after = stripe.seen("/v1/customers")[-1]
    stripe.clear()

    done = sync_provider(sync.id, api)

    assert done.status is RunStatus.COMPLETED
    resumed = stripe.seen("/v1/customers")[0]
    assert resumed.param("starting_after") is not None  # not from the top again
    assert resumed.param("starting_after") != after.param("starting_after")
    assert table_customers(warehouse).keys() == server_customers(stripe).keys()
    assert api.get_sync(sync.id).backfill_completed_at is not None


def test_expired_events_mean_listing_again(api, stripe, warehouse):
    now = int(time.time())
    for i in range(3):
        stripe.add("customer", created=now - DAY * (i + 1))
    sync = stripe_sync(api, warehouse, stripe)
    sync_provider(sync.id, api)
    lease = api.start_run(sync.id)
    stale = lease.sync.cursor_position.model_copy(deep=True)
    position = stale.collections["stripe:customer"]
    position.cursor = {"type": "timestamp", "value": "2020-01-01T00:00:00+00:00"}
    api.checkpoint(lease.run.id, cursor_position=stale, stats=RunStats())
    api.finish_run(lease.run.id, status=RunStatus.COMPLETED, stats=RunStats())
    stripe.clear()

    sync_provider(sync.id, api)

    assert stripe.seen("/v1/customers"), "a cursor older than Stripe keeps events lists again"
    assert table_customers(warehouse).keys() == server_customers(stripe).keys()


def test_subscriptions_are_listed_with_every_status(api, stripe, warehouse):
    stripe.add("subscription", status="active", customer="cus_1")
    stripe.add("subscription", status="canceled", customer="cus_2")
    sync = stripe_sync(api, warehouse, stripe, ["subscription"])

    sync_provider(sync.id, api)

    assert stripe.seen("/v1/subscriptions")[0].param("status") == "all"
    assert sorted(r["status"] for r in warehouse.rows("subscription")) == ["active", "canceled"]
    assert_no_secret(warehouse.rows("subscription"))
