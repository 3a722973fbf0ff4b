"""A schedule per sync whose frequency cron can express exactly (UTC, spread over the hour).

N minutes dividing 60, N hours dividing 24, one day and one week get a cron expression with a
stable per-sync offset (:func:`sync_pipelines.common.frequency.cron_schedule`), so a thousand hourly
syncs do not all start at :00. Every other frequency, and continuous syncs, are the
``sync_scheduler`` sensor's.
"""

from collections.abc import Iterable, Mapping, Sequence

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from sync_pipelines.common.frequency import cron_schedule
from sync_pipelines.contract.errors import NotFoundError
from sync_pipelines.contract.models import Sync, SyncStatus
from sync_pipelines.orchestration._names import SYNC_ID_TAG, slug
from sync_pipelines.orchestration.launch import SyncLauncher, ensure_partition, sync_in_flight
from sync_pipelines.orchestration.resource import SyncApiResource


def sync_cron(sync: Sync) -> str | None:
    """The cron expression of a sync's frequency, or ``None`` (continuous or not expressible).

    The spread offset is keyed on the sync's object and end customer, which never change.
    """
    if sync.continuous or sync.frequency is None or sync.frequency_units is None:
        return None
    return cron_schedule(sync.frequency, sync.frequency_units, spread_key=_spread_key(sync))


def _spread_key(sync: Sync) -> str:
    return f"{sync.object_id}/{sync.end_customer_id}/{sync.id}"


def schedule_name(sync: Sync, object_key_slug: str | None) -> str:
    """``<object key>__<end customer>_schedule`` (``sync_<id>_schedule`` without an object)."""
    if object_key_slug is None:
        return f"sync_{sync.id}_schedule"
    return f"{object_key_slug}__{slug(sync.end_customer_id)}_schedule"


def build_sync_schedules(
    *,
    syncs: Iterable[Sync],
    launcher: SyncLauncher,
    jobs: Mapping[str, object],
    object_key_slugs: Mapping[int, str] | None = None,
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
) -> list[ScheduleDefinition]:
    """One schedule per sync with an exact cron frequency.

    Each tick asks the sync API again: a deleted or paused sync is skipped, and so is a sync
    whose frequency changed since the code location loaded (the sensor runs it until the next
    reload) or that is still running.

    Args:
        syncs: the syncs (paused ones get a schedule too, which skips while they are paused).
        launcher: what a run of a sync launches.
        jobs: the jobs by name (the schedule targets the sync's job).
        object_key_slugs: the asset key slug of each object id (for schedule names).
        default_status: whether the schedules start running.

    Returns:
        The schedules, named ``<object key>__<end customer>_schedule``.
    """
    schedules = []
    names: set[str] = set()
    for sync in syncs:
        cron = sync_cron(sync)
        if cron is None or not launcher.handles(sync):
            continue
        name = schedule_name(sync, (object_key_slugs or {}).get(sync.object_id))
        if name in names:
            name = f"{name.removesuffix('_schedule')}_{sync.id}_schedule"
        names.add(name)
        schedules.append(
            _sync_schedule(
                sync, cron, name, launcher, jobs[launcher.job_name(sync)], default_status
            )
        )
    return schedules


def _sync_schedule(
    sync: Sync,
    cron: str,
    name: str,
    launcher: SyncLauncher,
    job: object,
    default_status: DefaultScheduleStatus,
) -> ScheduleDefinition:
    sync_id = sync.id

    @schedule(
        name=name,
        cron_schedule=cron,
        execution_timezone="UTC",
        job=job,
        default_status=default_status,
        description=f"Sync {sync_id} ({sync.display_name}) for end customer "
        f"{sync.end_customer_id!r}: every {sync.sync_frequency} (UTC).",
        tags={SYNC_ID_TAG: str(sync_id)},
    )
    def _run_sync_on_schedule(
        context: ScheduleEvaluationContext, sync_api: SyncApiResource
    ) -> RunRequest | SkipReason:
        client = sync_api.get_client()
        try:
            current = client.get_sync(sync_id)
        except NotFoundError:
            return SkipReason(f"sync {sync_id} was deleted")
        if current.status is SyncStatus.PAUSED:
            return SkipReason(f"sync {sync_id} is paused")
        if sync_cron(current) != cron:
            return SkipReason(
                f"sync {sync_id} now runs {current.sync_frequency}; the sync_scheduler sensor "
                "runs it until the code location reloads"
            )
        busy = sync_in_flight(context.instance, client, current)
        if busy:
            return SkipReason(busy)
        ensure_partition(context.instance, launcher.target(current), current)
        return launcher.run_request(current, scheduled_by=name)

    return _run_sync_on_schedule


def scheduled_crons(schedules: Sequence[ScheduleDefinition]) -> dict[int, str]:
    """The sync id -> cron of each schedule (syncs the sensor leaves to their schedule)."""
    found = {}
    for definition in schedules:
        sync_id = definition.tags.get(SYNC_ID_TAG)
        if sync_id is not None:
            found[int(sync_id)] = definition.cron_schedule
    return found
