"""Object assets: one per object, a partition per end customer; metadata and checks."""

import datetime as dt

import duckdb
import pytest
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    DagsterInstance,
    Definitions,
    TableSchema,
    define_asset_job,
)

from sync_pipelines.common.typed_values import encode_value
from sync_pipelines.contract.models import (
    CursorPosition,
    DestinationCreate,
    ObjectCreate,
    RunStats,
    RunStatus,
    SourceCreate,
    SyncCreate,
)
from sync_pipelines.orchestration import (
    CURSOR_CHECK,
    ROW_COUNT_CHECK,
    SyncApiResource,
    SyncAssetConfig,
    SyncObjectProps,
    SyncTranslator,
    build_sync_assets,
    build_sync_definitions,
    sync_assets,
)
from sync_pipelines_tests.orchestration.conftest import (
    EVENTS_JOB,
    PARTITIONS,
    build_defs,
    event_rows,
    stamp,
)

EVENTS = AssetKey(["analytics", "events"])


def materialize(defs: Definitions, instance: DagsterInstance, customer: str, **config):
    instance.add_dynamic_partitions(PARTITIONS, [customer])
    run_config = {"ops": {"sync_analytics__events": {"config": config}}} if config else None
    return defs.resolve_job_def(EVENTS_JOB).execute_in_process(
        instance=instance, partition_key=customer, run_config=run_config, raise_on_error=False
    )


def materialization(result):
    (event,) = result.asset_materializations_for_node("sync_analytics__events")
    return event


def checks(result) -> dict:
    return {
        e.check_name: e
        for e in (
            ev.asset_check_evaluation_data
            for ev in result.all_events
            if ev.event_type_value == "ASSET_CHECK_EVALUATION"
        )
    }


@pytest.fixture
def two_customers(setup):
    setup.insert("acme", event_rows(5))
    setup.insert("globex", event_rows(3, minute=100))
    return build_defs(setup, {"acme": "sync_frequency: 1h", "globex": "sync_frequency: 45m"})


def test_the_object_is_one_asset_partitioned_by_end_customer(two_customers):
    asset = two_customers.get_assets_def(EVENTS)
    spec = next(iter(asset.specs))

    assert asset.partitions_def.name == PARTITIONS
    assert spec.kinds == {"duckdb"}
    assert spec.group_name == "warehouse"
    assert spec.metadata["dagster/table_name"] == "analytics.events"
    assert [c.name for c in spec.metadata["dagster/column_schema"].columns] == [
        "end_customer_id",
        "event_id",
        "user_id",
        "event_name",
        "amount",
        "updated_at",
    ]
    # the fastest sync (45 minutes) sets the freshness: warn after 1.5, fail after 2 intervals
    assert spec.freshness_policy.fail_window.to_timedelta() == dt.timedelta(minutes=90)
    assert spec.freshness_policy.warn_window.to_timedelta() == dt.timedelta(minutes=67.5)
    assert asset.op.pool.startswith("sync_pipelines/destination_")
    assert {key.name for key in asset.check_keys} == {ROW_COUNT_CHECK, CURSOR_CHECK}


def test_materializing_two_partitions_syncs_each_end_customer(setup, two_customers, instance):
    acme = materialize(two_customers, instance, "acme")
    globex = materialize(two_customers, instance, "globex")

    assert acme.success and globex.success
    assert [row[1] for row in setup.warehouse_rows("acme")] == [1, 2, 3, 4, 5]
    assert [row[1] for row in setup.warehouse_rows("globex")] == [1, 2, 3]
    assert materialization(acme).partition == "acme"
    assert materialization(globex).partition == "globex"
    assert instance.get_materialized_partitions(EVENTS) == {"acme", "globex"}


def test_metadata_equals_the_data(setup, two_customers, instance):
    materialize(two_customers, instance, "globex")
    result = materialize(two_customers, instance, "acme")
    metadata = materialization(result).metadata
    sync_id = setup.sync_id("acme")
    (run,) = setup.client.list_runs(sync_id)

    # the partition's rows, and the whole table's (every end customer's)
    assert metadata["dagster/partition_row_count"].value == len(setup.warehouse_rows("acme")) == 5
    assert metadata["dagster/row_count"].value == len(setup.warehouse_rows()) == 8
    assert metadata["dagster/table_name"].value == "analytics.events"
    assert metadata["rows_read"].value == 5
    assert metadata["rows_inserted"].value == 5
    assert metadata["rows_updated"].value == 0
    assert metadata["rows_unchanged"].value == 0
    assert metadata["cursor_before"].value == "none"
    assert metadata["cursor_after"].value == stamp(4)  # the greatest updated_at
    assert metadata["sync_id"].value == sync_id
    assert metadata["run_id"].value == run.id
    assert run.status is RunStatus.COMPLETED
    assert metadata["duration_seconds"].value >= 0
    assert metadata["rows_per_second"].value > 0
    schema = metadata["dagster/column_schema"].value
    assert isinstance(schema, TableSchema)
    # the destination's own column types (DuckDB here); the object field type describes each
    columns = {c.name: (c.type, c.description) for c in schema.columns}
    assert columns["event_id"] == ("BIGINT", "integer field")
    assert columns["updated_at"] == ("TIMESTAMP WITH TIME ZONE", "timestamp field")
    assert columns["end_customer_id"] == ("VARCHAR", None)

    setup.insert("acme", [(3, 101, "refund", 1.0, stamp(3), stamp(50))])  # an update
    setup.insert("acme", event_rows(1, first_id=6, minute=60))  # a new row
    second = materialization(materialize(two_customers, instance, "acme")).metadata

    assert second["cursor_before"].value == stamp(4)
    assert second["cursor_after"].value == stamp(60)
    assert second["rows_inserted"].value == 1
    # the update counts as updated; rows read again at the cursor boundary as unchanged
    assert second["rows_updated"].value == 1
    assert second["rows_unchanged"].value == second["rows_read"].value - 2 >= 1
    assert second["dagster/partition_row_count"].value == 6
    assert second["dagster/row_count"].value == 9
    assert ("acme", 3, "refund", stamp(50) + "+00") in setup.warehouse_rows("acme")


def test_rows_deleted_in_the_source_show_in_the_metadata(setup, two_customers, instance):
    from sync_pipelines.contract.models import SyncUpdate

    setup.client.update_sync(setup.sync_id("acme"), SyncUpdate(deletes="hard"))
    materialize(two_customers, instance, "acme")
    setup.execute_app("acme", "DELETE FROM events WHERE id = 2")

    result = materialize(two_customers, instance, "acme")
    metadata = materialization(result).metadata

    assert metadata["rows_deleted"].value == 1
    assert [row[1] for row in setup.warehouse_rows("acme")] == [1, 3, 4, 5]
    assert metadata["dagster/partition_row_count"].value == 4
    assert checks(result)[ROW_COUNT_CHECK].passed


def test_checks_pass_after_a_sync(two_customers, instance):
    result = materialize(two_customers, instance, "acme")
    found = checks(result)

    assert found[ROW_COUNT_CHECK].passed
    assert found[ROW_COUNT_CHECK].partition == "acme"
    assert found[ROW_COUNT_CHECK].metadata["destination_rows"].value == 5
    assert found[ROW_COUNT_CHECK].metadata["source_rows_up_to_cursor"].value == 5
    assert found[CURSOR_CHECK].passed


def test_rows_with_a_null_cursor_are_synced_and_counted_by_the_check(
    setup, two_customers, instance
):
    nulls = [(6, 101, "login", 1.0, stamp(1), None), (7, 102, "login", 2.0, None, None)]
    setup.insert("acme", nulls)

    result = materialize(two_customers, instance, "acme")

    row_count = checks(result)[ROW_COUNT_CHECK]
    assert row_count.passed
    assert row_count.metadata["destination_rows"].value == 7
    assert row_count.metadata["source_rows_up_to_cursor"].value == 7
    assert [row[1] for row in setup.warehouse_rows("acme")] == [1, 2, 3, 4, 5, 6, 7]


def test_a_row_deleted_from_the_destination_fails_the_count_check(setup, two_customers, instance):
    materialize(two_customers, instance, "acme")
    setup.execute_warehouse(
        "DELETE FROM analytics.events WHERE end_customer_id = 'acme' AND event_id = 2"
    )

    result = materialize(two_customers, instance, "acme")

    assert result.success  # the sync ran; the check reports the gap
    row_count = checks(result)[ROW_COUNT_CHECK]
    assert not row_count.passed
    assert row_count.metadata["destination_rows"].value == 4
    assert row_count.metadata["source_rows_up_to_cursor"].value == 5
    assert "4 destination rows" in row_count.description

    repaired = materialize(two_customers, instance, "acme", full_refresh=True)
    assert checks(repaired)[ROW_COUNT_CHECK].passed
    assert checks(repaired)[CURSOR_CHECK].passed  # a full refresh may start over


def test_a_cursor_that_goes_backwards_fails_the_cursor_check(setup, two_customers, instance):
    materialize(two_customers, instance, "acme")  # cursor at stamp(4)
    # the newest source rows disappear and someone rewinds the sync API's cursor
    setup.execute_app("acme", "DELETE FROM events WHERE id >= 4")
    sync_id = setup.sync_id("acme")
    lease = setup.client.start_run(sync_id)
    rewound = CursorPosition(cursor=encode_value(stamp(1)), primary_key=encode_value(2))
    setup.client.checkpoint(lease.run.id, cursor_position=rewound, stats=RunStats())
    setup.client.finish_run(lease.run.id, status=RunStatus.COMPLETED, stats=RunStats())

    result = materialize(two_customers, instance, "acme")

    cursor = checks(result)[CURSOR_CHECK]
    assert not cursor.passed
    assert "went backwards" in cursor.description


def test_a_requested_run_is_the_run_a_materialization_starts(setup, two_customers, instance):
    setup.insert("acme", event_rows(2))
    sync_id = setup.sync_id("acme")
    requested = setup.client.request_run(sync_id)
    instance.add_dynamic_partitions(PARTITIONS, ["acme"])

    result = two_customers.resolve_job_def(EVENTS_JOB).execute_in_process(
        instance=instance,
        partition_key="acme",
        tags={"sync_pipelines/requested_run_id": str(requested.id)},
    )

    assert result.success
    assert materialization(result).metadata["run_id"].value == requested.id
    assert setup.client.get_run(requested.id).status is RunStatus.COMPLETED


def test_a_partition_without_a_sync_fails_clearly(two_customers, instance):
    result = materialize(two_customers, instance, "nobody")

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "no sync of object" in failure.step_failure_data.user_failure_data.description


def test_a_paused_sync_does_not_run(setup, two_customers, instance):
    from sync_pipelines.contract.models import SyncUpdate

    setup.client.update_sync(setup.sync_id("acme"), SyncUpdate(status="paused"))

    result = materialize(two_customers, instance, "acme")

    assert not result.success
    assert setup.warehouse_rows("acme") == []


def test_a_translator_customizes_keys_groups_and_tags(setup, two_customers):
    class Raw(SyncTranslator):
        def get_asset_spec(self, props: SyncObjectProps):
            spec = super().get_asset_spec(props)
            return spec.replace_attributes(
                key=spec.key.with_prefix("raw"), group_name="raw"
            ).merge_attributes(tags={"team": "data"})

    (asset,) = build_sync_assets(sync_api=SyncApiResource(), translator=Raw())

    assert asset.key == AssetKey(["raw", "analytics", "events"])
    assert asset.partitions_def.name == "raw__analytics__events__end_customers"
    assert asset.specs_by_key[asset.key].group_name == "raw"
    assert asset.specs_by_key[asset.key].tags["team"] == "data"


def test_downstream_assets_depend_on_an_object_asset(two_customers):
    from dagster import asset

    @asset(deps=[EVENTS])
    def daily_events() -> None: ...

    defs = Definitions.merge(two_customers, Definitions(assets=[daily_events]))
    graph = defs.resolve_asset_graph()

    assert graph.get(daily_events.key).parent_keys == {EVENTS}


def test_an_object_on_postgres_gets_its_own_pool_and_kind(setup, postgres_schema, instance):
    server, schema = postgres_schema
    setup.insert("acme", event_rows(4))
    client = setup.client
    destination = client.create_destination(
        DestinationCreate(
            display_name="Postgres warehouse",
            connection_type="postgres",
            url=server.render_as_string(hide_password=False),
        )
    )
    obj = client.create_object(
        ObjectCreate(
            display_name="PG events",
            destination_id=destination.id,
            namespace=schema,
            table_name="events",
            end_customer_id_field="end_customer_id",
            cursor_field="updated_at",
            primary_key="event_id",
            object_fields=[
                {"name": "event_id", "type": "integer"},
                {"name": "event_name", "type": "string"},
                {"name": "amount", "type": "number"},
                {"name": "updated_at", "type": "timestamp"},
            ],
        )
    )
    # the warehouse's own table: the sync keeps its types (money as numeric(12,2))
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f'CREATE TABLE "{schema}".events (end_customer_id varchar(255) NOT NULL, '
                "event_id bigint NOT NULL, event_name text, amount numeric(12,2), "
                "updated_at timestamp with time zone, PRIMARY KEY (end_customer_id, event_id))"
            )
        )
    engine.dispose()
    source = client.create_source(
        SourceCreate(
            display_name="acme app",
            end_customer_id="acme",
            connection_type="sqlite",
            url=f"sqlite:///{setup.app('acme')}",
        )
    )
    client.create_sync(
        SyncCreate(
            display_name="acme into postgres",
            source_id=source.id,
            object_id=obj.id,
            namespace="main",
            table_name="events",
            field_mappings=[
                {"source_field_name": "id", "destination_field_name": "event_id"},
                {"source_field_name": "event_name", "destination_field_name": "event_name"},
                {"source_field_name": "amount", "destination_field_name": "amount"},
                {"source_field_name": "updated_at", "destination_field_name": "updated_at"},
            ],
        )
    )
    defs = build_sync_definitions(sync_api=SyncApiResource())
    key = AssetKey([schema, "events"])
    asset = defs.get_assets_def(key)
    instance.add_dynamic_partitions(asset.partitions_def.name, ["acme"])

    result = defs.resolve_job_def(f"{schema}__events_sync_job").execute_in_process(
        instance=instance, partition_key="acme"
    )

    assert result.success
    assert next(iter(asset.specs)).kinds == {"postgres"}
    assert asset.op.pool == f"sync_pipelines/{schema}__events"
    engine = sa.create_engine(server)
    try:
        with engine.connect() as connection:
            count = connection.execute(
                sa.text(f'SELECT count(*) FROM "{schema}".events WHERE end_customer_id = :c'),
                {"c": "acme"},
            ).scalar_one()
    finally:
        engine.dispose()
    assert count == 4
    assert checks(result)[ROW_COUNT_CHECK].passed
    # the column types as PostgreSQL names them, not the object fields' logical types
    (event,) = result.asset_materializations_for_node(f"sync_{schema}__events")
    columns = event.metadata["dagster/column_schema"].value.columns
    types = {c.name: (c.type.lower(), c.description) for c in columns}
    assert types["amount"] == ("numeric(12, 2)", "number field")
    assert types["updated_at"] == ("timestamp with time zone", "timestamp field")
    assert types["event_id"] == ("bigint", "integer field")
    assert types["end_customer_id"] == ("varchar(255)", None)


def test_connection_passwords_never_reach_dagster(setup, postgres_schema, instance):
    password = "hunter2-never-in-dagster"
    server, schema = postgres_schema  # trust auth: the password is accepted and ignored
    setup.insert("acme", event_rows(3))
    client = setup.client
    fields = [
        {"name": "event_id", "type": "integer"},
        {"name": "updated_at", "type": "timestamp"},
    ]
    mappings = [
        {"source_field_name": "id", "destination_field_name": "event_id"},
        {"source_field_name": "updated_at", "destination_field_name": "updated_at"},
    ]
    for name, port in (("reachable", server.port or 5432), ("unreachable", 1)):
        url = server.set(password=password, port=port).render_as_string(hide_password=False)
        destination = client.create_destination(
            DestinationCreate(display_name=name, connection_type="postgres", url=url)
        )
        obj = client.create_object(
            ObjectCreate(
                display_name=name,
                destination_id=destination.id,
                namespace=schema,
                table_name=name,
                end_customer_id_field="end_customer_id",
                cursor_field="updated_at",
                primary_key="event_id",
                object_fields=fields,
            )
        )
        source = client.create_source(
            SourceCreate(
                display_name=f"acme for {name}",
                end_customer_id="acme",
                connection_type="sqlite",
                url=f"sqlite:///{setup.app('acme')}",
            )
        )
        client.create_sync(
            SyncCreate(
                display_name=name,
                source_id=source.id,
                object_id=obj.id,
                namespace="main",
                table_name="events",
                field_mappings=mappings,
            )
        )
    defs = build_sync_definitions(sync_api=SyncApiResource())
    outcomes = {}
    for name in ("reachable", "unreachable"):
        asset = defs.get_assets_def(AssetKey([schema, name]))
        instance.add_dynamic_partitions(asset.partitions_def.name, ["acme"])
        outcomes[name] = defs.resolve_job_def(f"{schema}__{name}_sync_job").execute_in_process(
            instance=instance, partition_key="acme", raise_on_error=False
        )

    assert outcomes["reachable"].success and not outcomes["unreachable"].success
    failure = outcomes["unreachable"].failure_data_for_node(f"sync_{schema}__unreachable")
    assert "postgres:***@127.0.0.1:1" in failure.error.message
    for result in outcomes.values():
        logged = instance.all_logs(result.run_id)
        assert logged
        for record in logged:
            assert password not in repr(record)


def test_sync_assets_lets_users_write_the_body(setup, two_customers, instance):
    steps = []

    @sync_assets(sync_object="Events", sync_api=SyncApiResource(), name="my_events")
    def events(context: AssetExecutionContext, sync_api: SyncApiResource, config: SyncAssetConfig):
        steps.append(f"before {context.partition_key}")
        for result in sync_api.run(context, config=config):
            steps.append(f"{result.metadata['rows_read']} rows read")
            yield result
        steps.append("after")

    assert events.partitions_def.name == PARTITIONS
    assert {key.name for key in events.check_keys} == {ROW_COUNT_CHECK, CURSOR_CHECK}
    defs = Definitions(
        assets=[events],
        jobs=[define_asset_job("my_job", [EVENTS])],
        resources={"sync_api": SyncApiResource()},
    )
    instance.add_dynamic_partitions(PARTITIONS, ["acme"])
    result = defs.resolve_job_def("my_job").execute_in_process(
        instance=instance,
        partition_key="acme",
        run_config={"ops": {"my_events": {"config": {"batch_size": 2}}}},
    )

    assert result.success
    assert steps == ["before acme", "5 rows read", "after"]
    assert [row[1] for row in setup.warehouse_rows("acme")] == [1, 2, 3, 4, 5]
    (event,) = result.asset_materializations_for_node("my_events")
    assert event.metadata["batches"].value == 3
    assert event.metadata["dagster/partition_row_count"].value == 5
    assert checks(result)[ROW_COUNT_CHECK].passed


def test_two_destinations_with_the_same_table_get_an_asset_each(setup, instance):
    """Two warehouses' ``analytics.events`` are two assets (keys start with the destination's
    name); a table no other destination has keeps its ``[namespace, table]`` key."""
    setup.insert("acme", event_rows(3))
    client = setup.client
    fields = [
        {"name": "event_id", "type": "integer"},
        {"name": "updated_at", "type": "timestamp"},
    ]
    mappings = [
        {"source_field_name": "id", "destination_field_name": "event_id"},
        {"source_field_name": "updated_at", "destination_field_name": "updated_at"},
    ]
    source = client.create_source(
        SourceCreate(
            display_name="acme app",
            end_customer_id="acme",
            connection_type="sqlite",
            url=f"sqlite:///{setup.app('acme')}",
        )
    )
    warehouses = {}
    for name, tables in (("EU warehouse", ("events", "users")), ("US warehouse", ("events",))):
        warehouses[name] = setup.root / f"{name.split()[0].lower()}.duckdb"
        destination = client.create_destination(
            DestinationCreate(
                display_name=name, connection_type="duckdb", url=f"duckdb:///{warehouses[name]}"
            )
        )
        for table in tables:
            obj = client.create_object(
                ObjectCreate(
                    display_name=f"{name} {table}",
                    destination_id=destination.id,
                    namespace="analytics",
                    table_name=table,
                    end_customer_id_field="end_customer_id",
                    cursor_field="updated_at",
                    primary_key="event_id",
                    object_fields=fields,
                )
            )
            client.create_sync(
                SyncCreate(
                    display_name=f"acme {name} {table}",
                    source_id=source.id,
                    object_id=obj.id,
                    namespace="main",
                    table_name="events",
                    field_mappings=mappings,
                )
            )

    defs = build_sync_definitions(sync_api=SyncApiResource())

    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "eu_warehouse/analytics/events",
        "us_warehouse/analytics/events",
        "analytics/users",
    } <= keys
    assert "analytics/events" not in keys
    us_events = defs.get_assets_def(AssetKey(["us_warehouse", "analytics", "events"]))
    instance.add_dynamic_partitions(us_events.partitions_def.name, ["acme"])
    result = defs.resolve_job_def("us_warehouse__analytics__events_sync_job").execute_in_process(
        instance=instance, partition_key="acme"
    )
    assert result.success
    with duckdb.connect(str(warehouses["US warehouse"])) as db:
        assert db.execute("SELECT count(*) FROM analytics.events").fetchone() == (3,)
    assert not warehouses["EU warehouse"].exists()  # the other warehouse's asset did not run
