"""``sync_job`` from the Launchpad: create (upsert) a sync from config, then run it."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, DagsterInvalidConfigError

from sync_pipelines.contract.models import FrequencyUnits, NullCursor, SyncMode, SyncStatus
from sync_pipelines.orchestration import (
    FrequencyUnitsChoice,
    SyncModeChoice,
    SyncStatusChoice,
)
from sync_pipelines.orchestration.ops import NullCursorChoice
from sync_pipelines_tests.orchestration.conftest import PARTITIONS, build_defs, event_rows


def launchpad_config(source_id: int, object_id: int, **create: object) -> dict:
    """Run config as the Launchpad sends it."""
    config = {
        "display_name": "Initech events",
        "source_id": source_id,
        "object_id": object_id,
        "namespace": "main",
        "table_name": "events",
        "field_mappings": [
            {"source_field_name": s, "destination_field_name": d}
            for s, d in (
                ("id", "event_id"),
                ("user_id", "user_id"),
                ("event_name", "event_name"),
                ("amount", "amount"),
                ("updated_at", "updated_at"),
            )
        ],
        "frequency": 45,
        "frequency_units": "minutes",
    } | create
    return {
        "ops": {
            "create_sync_op": {"config": config},
            "run_sync_op": {"config": {"batch_size": 2}},
        }
    }


@pytest.fixture
def defs_and_ids(setup):
    defs = build_defs(setup, {"acme": "sync_frequency: 1h"}, extra_sources=["initech"])
    source = next(s for s in setup.client.list_sources() if s.end_customer_id == "initech")
    (obj,) = setup.client.list_objects()
    return defs, source.id, obj.id


def test_sync_job_creates_the_sync_once_and_loads_the_rows(setup, defs_and_ids, instance):
    defs, source_id, object_id = defs_and_ids
    setup.insert("initech", event_rows(5))
    job = defs.get_job_def("sync_job")
    config = launchpad_config(source_id, object_id)

    first = job.execute_in_process(run_config=config, instance=instance)

    assert first.success
    syncs = setup.client.list_syncs(object_id=object_id, end_customer_id="initech")
    assert len(syncs) == 1
    assert (syncs[0].frequency, syncs[0].frequency_units) == (45, FrequencyUnits.MINUTES)
    assert [row[1] for row in setup.warehouse_rows("initech")] == [1, 2, 3, 4, 5]
    assert first.output_for_node("create_sync_op", "sync_id") == syncs[0].id
    # each batch of 2 rows was logged, and the asset partition reported
    logs = [e.message for e in instance.all_logs(first.run_id) if e.user_message]
    assert sum(": batch " in (m or "") for m in logs) == 3
    (materialization,) = first.asset_materializations_for_node("run_sync_op")
    assert materialization.asset_key.path == ["analytics", "events"]
    assert materialization.partition == "initech"
    assert materialization.metadata["rows_read"].value == 5
    assert instance.has_dynamic_partition(PARTITIONS, "initech")
    # the run now carries its sync's id: schedules and the sensor see the sync in flight
    tags = instance.get_run_by_id(first.run_id).tags
    assert tags["sync_pipelines/sync_id"] == str(syncs[0].id)

    setup.insert("initech", event_rows(2, first_id=6, minute=10))
    second = job.execute_in_process(run_config=config, instance=instance)

    assert second.success
    assert len(setup.client.list_syncs(object_id=object_id, end_customer_id="initech")) == 1
    assert len(setup.warehouse_rows("initech")) == 7
    (materialization,) = second.asset_materializations_for_node("run_sync_op")
    # incremental: from the last cursor (its row is read again and absorbed by the upsert)
    assert materialization.metadata["rows_read"].value == 3
    assert materialization.metadata["rows_inserted"].value == 2


def test_launching_again_updates_the_existing_sync(setup, defs_and_ids, instance):
    defs, source_id, object_id = defs_and_ids
    job = defs.get_job_def("sync_job")
    job.execute_in_process(run_config=launchpad_config(source_id, object_id), instance=instance)

    changed = launchpad_config(
        source_id,
        object_id,
        frequency=2,
        frequency_units="hours",
        status="paused",
        null_cursor="skip",
    )
    changed["ops"].pop("run_sync_op")
    create_only = job.execute_in_process(
        run_config=changed, instance=instance, op_selection=["create_sync_op"]
    )

    assert create_only.success
    (sync,) = setup.client.list_syncs(object_id=object_id, end_customer_id="initech")
    assert (sync.frequency, sync.frequency_units) == (2, FrequencyUnits.HOURS)
    assert sync.status is SyncStatus.PAUSED
    assert sync.null_cursor is NullCursor.SKIP


def test_an_enum_field_outside_its_values_is_a_config_error(defs_and_ids, instance):
    defs, source_id, object_id = defs_and_ids
    config = launchpad_config(source_id, object_id, frequency_units="fortnights")

    with pytest.raises(DagsterInvalidConfigError, match="frequency_units") as error:
        defs.get_job_def("sync_job").execute_in_process(run_config=config, instance=instance)
    # the error lists the allowed values
    assert "FrequencyUnits(minutes | hours | days | weeks) got fortnights" in str(error.value)


def test_a_field_the_api_refuses_fails_the_op_naming_the_field(setup, defs_and_ids, instance):
    defs, source_id, object_id = defs_and_ids
    config = launchpad_config(source_id, object_id)
    mappings = config["ops"]["create_sync_op"]["config"]["field_mappings"]
    mappings[1]["destination_field_name"] = "no_such_field"

    result = defs.get_job_def("sync_job").execute_in_process(
        run_config=config, instance=instance, raise_on_error=False
    )

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "create_sync_op config is invalid" in message
    assert "field_mappings[1].destination_field_name" in message
    assert setup.client.list_syncs(end_customer_id="initech") == []


def test_run_sync_job_needs_a_sync_or_object_and_customer(defs_and_ids, instance):
    defs, _, object_id = defs_and_ids
    job = defs.get_job_def("run_sync_job")

    result = job.execute_in_process(
        run_config={"ops": {"run_sync_op": {"config": {"object_id": object_id}}}},
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "end_customer_id: give sync_id, or object_id and end_customer_id" in (
        failure.step_failure_data.user_failure_data.description
    )


def test_run_sync_job_runs_a_sync_by_object_and_end_customer(setup, defs_and_ids, instance):
    defs, _, object_id = defs_and_ids
    setup.insert("acme", event_rows(3))

    result = defs.get_job_def("run_sync_job").execute_in_process(
        run_config={
            "ops": {"run_sync_op": {"config": {"object_id": object_id, "end_customer_id": "acme"}}}
        },
        instance=instance,
    )

    assert result.success
    assert len(setup.warehouse_rows("acme")) == 3
    # like an asset materialization, the run evaluates the object asset's checks
    evaluations = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert {name: e.passed for name, e in evaluations.items()} == {
        "row_count_matches_source": True,
        "cursor_never_goes_backwards": True,
    }
    assert {e.partition for e in evaluations.values()} == {"acme"}


def test_launchpad_enums_are_the_api_values():
    assert [m.value for m in SyncModeChoice] == [m.value for m in SyncMode]
    assert [m.value for m in FrequencyUnitsChoice] == [m.value for m in FrequencyUnits]
    assert [m.value for m in SyncStatusChoice] == [m.value for m in SyncStatus]
    assert [m.value for m in NullCursorChoice] == [m.value for m in NullCursor]
    assert all(m.name == m.value for m in [*SyncModeChoice, *FrequencyUnitsChoice])


def test_ops_are_importable_at_module_level():
    from sync_pipelines.orchestration import create_sync_op, run_sync_op, sync_job

    assert sync_job.graph.node_named("create_sync_op").definition is create_sync_op
    assert sync_job.graph.node_named("run_sync_op").definition is run_sync_op
    assert isinstance(DagsterInstance, type)


def _failure(result) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.user_failure_data.description


def test_a_typo_in_the_mappings_changes_nothing_on_a_working_sync(setup, defs_and_ids, instance):
    defs, source_id, object_id = defs_and_ids
    setup.insert("initech", event_rows(3))
    job = defs.get_job_def("sync_job")
    assert job.execute_in_process(
        run_config=launchpad_config(source_id, object_id), instance=instance
    ).success
    (before,) = setup.client.list_syncs(end_customer_id="initech")
    runs_before = setup.client.list_runs(before.id)

    config = launchpad_config(source_id, object_id, frequency=2, frequency_units="hours")
    config["ops"]["create_sync_op"]["config"]["field_mappings"][2]["source_field_name"] = "evnt"
    result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)

    assert not result.success
    message = _failure(result)
    assert "field_mappings[2].source_field_name: column 'evnt' not found in main.events" in message
    assert "(columns: id, user_id, event_name, amount, occurred_at, updated_at)" in message
    (after,) = setup.client.list_syncs(end_customer_id="initech")
    assert after.model_dump() == before.model_dump()  # not even the frequency changed
    assert setup.client.list_runs(before.id) == runs_before


def test_a_new_sync_with_a_wrong_table_or_cursor_is_never_created(setup, defs_and_ids, instance):
    defs, source_id, object_id = defs_and_ids
    job = defs.get_job_def("sync_job")
    setup.execute_app("initech", "ALTER TABLE events ADD COLUMN archived BOOLEAN")

    wrong_table = job.execute_in_process(
        run_config=launchpad_config(source_id, object_id, table_name="evnts"),
        instance=instance,
        raise_on_error=False,
    )
    wrong_cursor = job.execute_in_process(
        run_config=launchpad_config(source_id, object_id, cursor_field="archived"),
        instance=instance,
        raise_on_error=False,
    )

    assert not wrong_table.success and not wrong_cursor.success
    assert "table_name: table main.evnts not found in source" in _failure(wrong_table)
    assert "(tables: events)" in _failure(wrong_table)
    assert "cursor_field: cursor column 'archived' of main.events of source " in _failure(
        wrong_cursor
    )
    assert "holds boolean values, which cannot order rows" in _failure(wrong_cursor)
    assert setup.client.list_syncs(end_customer_id="initech") == []


def test_sync_job_evaluates_the_asset_checks(setup, defs_and_ids, instance):
    from sync_pipelines.orchestration import CURSOR_CHECK, ROW_COUNT_CHECK

    defs, source_id, object_id = defs_and_ids
    setup.insert("initech", event_rows(4))

    result = defs.get_job_def("sync_job").execute_in_process(
        run_config=launchpad_config(source_id, object_id), instance=instance
    )

    evaluations = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert set(evaluations) == {ROW_COUNT_CHECK, CURSOR_CHECK}
    row_count = evaluations[ROW_COUNT_CHECK]
    assert row_count.passed and row_count.partition == "initech"
    assert row_count.asset_key.path == ["analytics", "events"]
    assert row_count.metadata["destination_rows"].value == 4
    assert evaluations[CURSOR_CHECK].passed
