"""``sync_scheduler``: continuous syncs, odd intervals, syncs created later, run requests."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import DagsterRunStatus, build_sensor_context
from dagster._core.test_utils import create_run_for_test

from sync_pipelines.contract.models import (
    DestinationCreate,
    ObjectCreate,
    RunStats,
    RunStatus,
    SourceCreate,
    SyncCreate,
    SyncUpdate,
)
from sync_pipelines.orchestration import SyncApiResource
from sync_pipelines_tests.orchestration.conftest import (
    EVENTS_JOB,
    PARTITIONS,
    backdated_client,
    build_defs,
    event_rows,
)

MAPPINGS = [
    {"source_field_name": s, "destination_field_name": d}
    for s, d in (
        ("id", "event_id"),
        ("user_id", "user_id"),
        ("event_name", "event_name"),
        ("amount", "amount"),
        ("updated_at", "updated_at"),
    )
]


def evaluate(defs, instance, cursor: str | None = None):
    """One tick of the sensor, as the daemon runs it."""
    sensor = defs.resolve_sensor_def("sync_scheduler")
    with build_sensor_context(
        instance_ref=instance.get_ref(),
        cursor=cursor,
        resources={"sync_api": SyncApiResource()},
        definitions=defs,
    ) as context:
        return sensor.evaluate_tick(context)


def requested_syncs(tick) -> list[str]:
    return sorted(r.tags["sync_pipelines/sync_id"] for r in tick.run_requests)


def finish(client, sync_id: int) -> None:
    lease = client.start_run(sync_id)
    client.finish_run(lease.run.id, status=RunStatus.COMPLETED, stats=RunStats())


@pytest.fixture
def continuous(setup):
    return build_defs(setup, {"nonstop": "sync_frequency: continuous"})


def test_a_continuous_sync_is_requested_only_when_idle(setup, continuous, instance):
    sync_id = setup.sync_id("nonstop")

    idle = evaluate(continuous, instance)
    assert requested_syncs(idle) == [str(sync_id)]
    (request,) = idle.run_requests
    assert request.partition_key == "nonstop"
    assert request.job_name == EVENTS_JOB

    lease = setup.client.start_run(sync_id)  # a run holds the sync's lease
    assert evaluate(continuous, instance).run_requests == []

    setup.client.finish_run(lease.run.id, status=RunStatus.COMPLETED, stats=RunStats())
    assert requested_syncs(evaluate(continuous, instance)) == [str(sync_id)]

    run = create_run_for_test(
        instance,
        job_name=EVENTS_JOB,
        tags={"sync_pipelines/sync_id": str(sync_id)},
        status=DagsterRunStatus.STARTED,
    )
    assert evaluate(continuous, instance).run_requests == []  # a Dagster run is in progress
    instance.report_run_canceled(run)
    assert requested_syncs(evaluate(continuous, instance)) == [str(sync_id)]


def test_an_every_45_minutes_sync_is_requested_only_when_due(setup, instance):
    defs = build_defs(setup, {"globex": "sync_frequency: 45m"})
    sync_id = setup.sync_id("globex")

    first = evaluate(defs, instance)  # never ran: due now
    assert requested_syncs(first) == [str(sync_id)]
    # the sensor remembers that it just launched it
    assert evaluate(defs, instance, cursor=first.cursor).run_requests == []

    finish(backdated_client(setup.client, dt.timedelta(minutes=10)), sync_id)
    assert evaluate(defs, instance).run_requests == []  # ran 10 minutes ago

    finish(backdated_client(setup.client, dt.timedelta(minutes=50)), sync_id)
    assert evaluate(defs, instance).run_requests == []  # the latest run is still 10 min old


def test_an_every_45_minutes_sync_is_due_45_minutes_after_its_last_run(setup, instance):
    defs = build_defs(setup, {"globex": "sync_frequency: 45m"})
    sync_id = setup.sync_id("globex")

    finish(backdated_client(setup.client, dt.timedelta(minutes=50)), sync_id)
    tick = evaluate(defs, instance)

    assert requested_syncs(tick) == [str(sync_id)]
    (request,) = tick.run_requests
    assert request.run_key is None
    assert request.tags["sync_pipelines/scheduled_by"] == "sync_scheduler"


def test_syncs_with_a_schedule_are_left_to_it(setup, instance):
    defs = build_defs(
        setup, {"acme": "sync_frequency: 1h", "initech": "frequency: 3\nfrequency_units: days"}
    )

    tick = evaluate(defs, instance)

    assert requested_syncs(tick) == [str(setup.sync_id("initech"))]  # 3 days: not cron


def test_a_sync_created_through_the_api_gets_its_partition_and_runs(setup, instance):
    defs = build_defs(setup, {"acme": "sync_frequency: 1h"}, extra_sources=["initech"])
    setup.insert("initech", event_rows(3))
    (obj,) = setup.client.list_objects()
    source = next(s for s in setup.client.list_sources() if s.end_customer_id == "initech")
    created = setup.client.create_sync(
        SyncCreate(
            display_name="initech events",
            source_id=source.id,
            object_id=obj.id,
            namespace="main",
            table_name="events",
            field_mappings=MAPPINGS,
            frequency=1,
            frequency_units="hours",
        )
    )

    tick = evaluate(defs, instance)

    (added,) = tick.dynamic_partitions_requests
    assert added.partitions_def_name == PARTITIONS
    assert sorted(added.partition_keys) == ["acme", "initech"]
    (request,) = tick.run_requests  # not scheduled yet: the sensor runs it on its frequency
    assert request.tags["sync_pipelines/sync_id"] == str(created.id)
    assert request.partition_key == "initech"

    instance.add_dynamic_partitions(PARTITIONS, added.partition_keys)
    result = defs.resolve_job_def(EVENTS_JOB).execute_in_process(
        instance=instance, partition_key="initech", tags=request.tags
    )
    assert result.success
    assert len(setup.warehouse_rows("initech")) == 3
    assert evaluate(defs, instance).dynamic_partitions_requests == []


def test_a_sync_of_an_object_created_later_runs_through_run_sync_job(setup, instance):
    defs = build_defs(setup, {"acme": "sync_frequency: 1h"})
    setup.insert("acme", event_rows(2))
    client = setup.client
    destination = client.create_destination(
        DestinationCreate(
            display_name="Second warehouse",
            connection_type="duckdb",
            url=f"duckdb:///{setup.root / 'second.duckdb'}",
        )
    )
    obj = client.create_object(
        ObjectCreate(
            display_name="Late events",
            destination_id=destination.id,
            namespace="late",
            table_name="events",
            end_customer_id_field="end_customer_id",
            cursor_field="updated_at",
            primary_key="event_id",
        )
    )
    source = client.create_source(
        SourceCreate(
            display_name="acme again",
            end_customer_id="acme",
            connection_type="sqlite",
            url=f"sqlite:///{setup.app('acme')}",
        )
    )
    sync = client.create_sync(
        SyncCreate(
            display_name="late",
            source_id=source.id,
            object_id=obj.id,
            namespace="main",
            table_name="events",
            field_mappings=[m for m in MAPPINGS if m["destination_field_name"] != "amount"],
            sync_frequency="continuous",
        )
    )

    (request,) = [
        r
        for r in evaluate(defs, instance).run_requests
        if r.tags["sync_pipelines/sync_id"] == str(sync.id)
    ]

    assert request.job_name == "run_sync_job"
    assert request.run_config == {"ops": {"run_sync_op": {"config": {"sync_id": sync.id}}}}
    result = defs.get_job_def("run_sync_job").execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags
    )
    assert result.success
    assert client.list_runs(sync.id)[0].rows_read == 2


def test_a_run_request_is_launched_once(setup, instance):
    defs = build_defs(setup, {"acme": "sync_frequency: 1h"})
    setup.insert("acme", event_rows(4))
    sync_id = setup.sync_id("acme")
    requested = setup.client.request_run(sync_id)  # POST /sync/{id}/run

    (request,) = evaluate(defs, instance).run_requests

    assert request.run_key == f"sync_pipelines_requested_run_{requested.id}"
    assert request.tags["sync_pipelines/requested_run_id"] == str(requested.id)
    assert request.partition_key == "acme"

    instance.add_dynamic_partitions(PARTITIONS, ["acme"])
    result = defs.resolve_job_def(EVENTS_JOB).execute_in_process(
        instance=instance, partition_key="acme", tags=request.tags
    )
    assert result.success
    assert setup.client.get_run(requested.id).status is RunStatus.COMPLETED
    assert evaluate(defs, instance).run_requests == []  # handled: never again


def test_a_run_request_waits_while_the_sync_is_running(setup, instance):
    defs = build_defs(setup, {"acme": "sync_frequency: 1h"})
    sync_id = setup.sync_id("acme")
    lease = setup.client.start_run(sync_id)
    setup.client.request_run(sync_id)

    tick = evaluate(defs, instance)

    assert tick.run_requests == []
    assert "waits" in tick.skip_message
    setup.client.finish_run(lease.run.id, status=RunStatus.COMPLETED, stats=RunStats())
    assert len(evaluate(defs, instance).run_requests) == 1


def test_paused_syncs_get_nothing(setup, instance):
    defs = build_defs(
        setup,
        {
            "nonstop": "sync_frequency: continuous",
            "globex": "sync_frequency: 45m",
            "acme": "sync_frequency: 1h",
        },
    )
    setup.client.request_run(setup.sync_id("acme"))
    for customer in ("nonstop", "globex", "acme"):
        setup.client.update_sync(setup.sync_id(customer), SyncUpdate(status="paused"))

    tick = evaluate(defs, instance)

    assert tick.run_requests == []
    assert tick.skip_message == "no sync is due"


def test_the_cursor_is_json(setup, continuous, instance):
    import json

    tick = evaluate(continuous, instance)

    state = json.loads(tick.cursor)
    assert list(state["last_started"]) == [str(setup.sync_id("nonstop"))]
    assert evaluate(continuous, instance, cursor="not json").run_requests  # starts afresh


def test_a_failing_continuous_sync_is_retried_every_few_minutes(setup, continuous, instance):
    import json

    sync_id = setup.sync_id("nonstop")
    lease = setup.client.start_run(sync_id)
    setup.client.finish_run(
        lease.run.id, status=RunStatus.FAILED, stats=RunStats(), error="source unreachable"
    )

    def cursor(minutes_ago: int) -> str:
        when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
        return json.dumps({"last_started": {str(sync_id): when.isoformat()}})

    assert evaluate(continuous, instance, cursor=cursor(1)).run_requests == []
    assert requested_syncs(evaluate(continuous, instance, cursor=cursor(6))) == [str(sync_id)]


def test_a_location_with_selected_objects_runs_only_their_syncs(setup, instance):
    from sync_pipelines.orchestration import build_sync_definitions

    build_defs(setup, {"acme": "sync_frequency: continuous"})
    client = setup.client
    destination = client.create_destination(
        DestinationCreate(
            display_name="Other", connection_type="duckdb", url="duckdb:///other.duckdb"
        )
    )
    other = client.create_object(
        ObjectCreate(
            display_name="Other events",
            destination_id=destination.id,
            namespace="other",
            table_name="events",
            end_customer_id_field="end_customer_id",
            cursor_field="updated_at",
            primary_key="event_id",
        )
    )
    source = next(s for s in client.list_sources() if s.end_customer_id == "acme")
    client.create_sync(
        SyncCreate(
            display_name="other",
            source_id=source.id,
            object_id=other.id,
            namespace="main",
            table_name="events",
            field_mappings=[],
            sync_frequency="1h",
        )
    )

    defs = build_sync_definitions(sync_api=SyncApiResource(), objects=["Events"])

    assert requested_syncs(evaluate(defs, instance)) == [str(setup.sync_id_of("Events"))]
    assert defs.get_repository_def().schedule_defs == []
