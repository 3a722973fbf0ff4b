"""Schedules: one per sync whose frequency is an exact cron interval, in UTC, spread by sync."""

from __future__ import annotations

import pytest
from dagster import RunRequest, SkipReason, build_schedule_context

from sync_pipelines.common.frequency import FrequencyUnits, cron_schedule
from sync_pipelines.contract.models import SyncUpdate
from sync_pipelines.orchestration import SyncApiResource, sync_cron
from sync_pipelines_tests.orchestration.conftest import EVENTS_JOB, PARTITIONS, build_defs

FREQUENCIES = {
    "every15m": "frequency: 15\nfrequency_units: minutes",
    "every2h": "frequency: 2\nfrequency_units: hours",
    "daily": "frequency: 1\nfrequency_units: days",
    "weekly": "frequency: 1\nfrequency_units: weeks",
    "every45m": "frequency: 45\nfrequency_units: minutes",
    "every3d": "frequency: 3\nfrequency_units: days",
    "nonstop": "sync_frequency: continuous",
}


@pytest.fixture
def defs(setup):
    return build_defs(setup, FREQUENCIES)


def tick_context(instance, defs):
    return build_schedule_context(
        instance=instance,
        resources={"sync_api": SyncApiResource()},
        repository_def=defs.get_repository_def(),
    )


def schedules_by_customer(defs) -> dict:
    repository = defs.get_repository_def()
    return {
        schedule.name.removeprefix("analytics__events__").removesuffix("_schedule"): schedule
        for schedule in repository.schedule_defs
    }


def test_each_exact_cron_frequency_gets_a_schedule(setup, defs):
    schedules = schedules_by_customer(defs)

    assert set(schedules) == {"every15m", "every2h", "daily", "weekly"}
    for customer, unit, frequency in (
        ("every15m", FrequencyUnits.MINUTES, 15),
        ("every2h", FrequencyUnits.HOURS, 2),
        ("daily", FrequencyUnits.DAYS, 1),
        ("weekly", FrequencyUnits.WEEKS, 1),
    ):
        schedule = schedules[customer]
        (sync,) = setup.client.list_syncs(end_customer_id=customer)
        assert schedule.cron_schedule == sync_cron(sync)
        assert schedule.cron_schedule == cron_schedule(
            frequency, unit, spread_key=f"{sync.object_id}/{customer}/{sync.id}"
        )
        assert schedule.execution_timezone == "UTC"
        assert schedule.job_name == EVENTS_JOB


def test_crons_have_the_right_shape_and_are_spread(defs):
    schedules = schedules_by_customer(defs)
    minute, hour, day, month, weekday = schedules["weekly"].cron_schedule.split()

    assert len(schedules["every15m"].cron_schedule.split()[0].split(",")) == 4
    assert schedules["every15m"].cron_schedule.endswith(" * * * *")
    assert len(schedules["every2h"].cron_schedule.split()[1].split(",")) == 12
    assert schedules["daily"].cron_schedule.split()[2:] == ["*", "*", "*"]
    assert (day, month) == ("*", "*") and 0 <= int(weekday) < 7
    assert 0 <= int(minute) < 60 and 0 <= int(hour) < 24
    minutes = {s.cron_schedule.split()[0] for s in schedules.values()}
    assert len(minutes) > 1  # not everything at :00


@pytest.mark.parametrize("customer", ["every15m", "every2h", "daily", "weekly"])
def test_a_tick_requests_the_syncs_partition(setup, defs, instance, customer):
    schedule = schedules_by_customer(defs)[customer]
    with tick_context(instance, defs) as context:
        request = schedule.evaluate_tick(context).run_requests[0]

    (sync,) = setup.client.list_syncs(end_customer_id=customer)
    assert isinstance(request, RunRequest)
    assert request.partition_key == customer
    assert request.tags["sync_pipelines/sync_id"] == str(sync.id)
    assert instance.has_dynamic_partition(PARTITIONS, customer)


def test_a_paused_sync_skips_its_ticks(setup, defs, instance):
    (sync,) = setup.client.list_syncs(end_customer_id="daily")
    setup.client.update_sync(sync.id, SyncUpdate(status="paused"))
    with tick_context(instance, defs) as context:
        result = schedules_by_customer(defs)["daily"].evaluate_tick(context)

    assert result.run_requests == []
    assert "paused" in result.skip_message


def test_a_running_sync_skips_its_tick(setup, defs, instance):
    (sync,) = setup.client.list_syncs(end_customer_id="every2h")
    setup.client.start_run(sync.id)
    with tick_context(instance, defs) as context:
        result = schedules_by_customer(defs)["every2h"].evaluate_tick(context)

    assert result.run_requests == []
    assert "running" in result.skip_message


def test_a_sync_whose_frequency_changed_is_left_to_the_sensor(setup, defs, instance):
    (sync,) = setup.client.list_syncs(end_customer_id="every15m")
    setup.client.update_sync(sync.id, SyncUpdate(frequency=5, frequency_units="hours"))
    with tick_context(instance, defs) as context:
        result = schedules_by_customer(defs)["every15m"].evaluate_tick(context)

    assert result.run_requests == []
    assert "sync_scheduler" in result.skip_message
    assert isinstance(SkipReason(result.skip_message), SkipReason)
