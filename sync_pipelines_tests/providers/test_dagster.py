"""API-provider syncs in Dagster: one asset per collection table, partitioned by end customer,
scheduled like database syncs (4h by a schedule, continuous by the sensor)."""

from __future__ import annotations

import time

from dagster import DagsterInstance, build_sensor_context

from sync_pipelines.orchestration import SyncApiResource, build_sync_definitions
from sync_pipelines.orchestration.provider_assets import stream_slug
from sync_pipelines.providers import sync_provider
from sync_pipelines_tests.providers.conftest import (
    FAST_RETRIES,
    STRIPE_SECRET,
    assert_no_secret,
    create_provider_sync,
)


def _stripe_sync(api, warehouse, stripe, **fields):
    return create_provider_sync(
        api,
        warehouse,
        "stripe",
        ["customer", "invoice"],
        credential={"secret": STRIPE_SECRET},
        provider_config={"base_url": stripe.url, "page_size": 5, **FAST_RETRIES},
        **fields,
    )


def test_materializing_a_provider_sync_asset_fills_each_collection_table(
    api, stripe, warehouse, store_url
):
    now = int(time.time())
    for i in range(7):
        stripe.add("customer", created=now - 60 * i, email=f"c{i}@acme.test")
    stripe.add("invoice", created=now, customer="cus_1", amount_due=900, status="open")
    sync = _stripe_sync(api, warehouse, stripe, sync_frequency="4h")
    other = _stripe_sync(
        api,
        warehouse,
        stripe,
        sync_frequency="4h",
        end_customer_id="umbrella",
        destination_id=sync.destination_id,
    )
    sync_provider(other.id, api)  # another end customer's rows in the same tables
    defs = build_sync_definitions(sync_api=SyncApiResource(database_url=store_url))
    stream = (sync.destination_id, warehouse.namespace, "stripe")
    job = defs.resolve_job_def(f"{stream_slug(stream)}_sync_job")
    customer_key = [warehouse.namespace, "customer"]
    assert {tuple(k.path) for k in job.asset_layer.selected_asset_keys} == {
        (warehouse.namespace, "customer"),
        (warehouse.namespace, "invoice"),
    }
    schedules = [s for s in defs.schedules if s.job_name == job.name]
    assert len(schedules) == 2  # one per end customer's sync, every 4 hours
    assert all(s.cron_schedule.split()[1].count(",") == 5 for s in schedules)

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(f"{stream_slug(stream)}__end_customers", ["acme"])
    result = job.execute_in_process(instance=instance, partition_key="acme")

    assert result.success
    events = {
        tuple(e.asset_key.path): e
        for e in result.asset_materializations_for_node(f"sync_{stream_slug(stream)}")
    }
    customers = events[tuple(customer_key)]
    assert customers.partition == "acme"
    assert customers.metadata["rows_inserted"].value == 7
    assert len(warehouse.rows("customer")) == 14  # acme's and umbrella's
    assert customers.metadata["dagster/table_name"].value == f"{warehouse.namespace}.customer"
    # Dagster's row counts: the partition's (acme's rows) and the whole table's
    assert customers.metadata["dagster/partition_row_count"].value == 7
    assert customers.metadata["dagster/row_count"].value == 14
    assert customers.metadata["sync_id"].value == sync.id
    assert customers.metadata["caught_up"].value is True
    # the destination's own column types (DuckDB here); the provider field's type describes each
    columns = {c.name: c for c in customers.metadata["dagster/column_schema"].value.columns}
    assert (columns["balance"].type, columns["balance"].description) == ("BIGINT", "integer field")
    assert (columns["id"].type, columns["id"].description) == ("VARCHAR(255)", "string field")
    assert columns["raw"].type == "JSON"
    invoices = events[(warehouse.namespace, "invoice")].metadata
    assert invoices["rows_inserted"].value == 1
    assert (invoices["dagster/partition_row_count"].value, invoices["dagster/row_count"].value) == (
        1,
        2,
    )
    assert api.get_sync(sync.id).backfill_completed_at is not None
    assert_no_secret(*(e.metadata for e in events.values()), result.all_events)


def test_the_sensor_runs_a_continuous_provider_sync_through_its_asset_job(
    api, stripe, warehouse, store_url
):
    sync = _stripe_sync(api, warehouse, stripe)  # continuous
    defs = build_sync_definitions(sync_api=SyncApiResource(database_url=store_url))
    (sensor,) = defs.sensors
    instance = DagsterInstance.ephemeral()
    with build_sensor_context(
        instance=instance, resources={"sync_api": SyncApiResource(database_url=store_url)}
    ) as context:
        result = sensor(context)
    stream = (sync.destination_id, warehouse.namespace, "stripe")
    (request,) = result.run_requests
    assert request.job_name == f"{stream_slug(stream)}_sync_job"
    assert request.partition_key == "acme"
    assert request.tags["sync_pipelines/sync_id"] == str(sync.id)
