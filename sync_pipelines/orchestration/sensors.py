"""``sync_scheduler``: the one sensor for everything a cron schedule cannot do.

- continuous syncs: a new run as soon as the previous one finished (never two at once);
- other intervals (45 minutes, 5 hours, 3 days, 2 weeks): due one interval after the last run
  started;
- syncs created through the API after the code location loaded: their end customers are added
  to the object asset's partitions, and they run on their frequency here until a reload gives
  them a schedule;
- ``POST /sync/{id}/run`` requests: launched once each (the run key is the requested run's id),
  and the run starts exactly that requested run.

Paused syncs never run. A continuous sync whose last run failed is retried every few minutes
rather than back to back. Its cursor (JSON) remembers when each sync last started, so most ticks
ask the sync API only for the list of syncs and of requested runs.
"""

import datetime as dt
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dagster import (
    AddDynamicPartitionsRequest,
    BetaWarning,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from sync_pipelines.common.frequency import interval
from sync_pipelines.contract.models import HealthStatus, Sync, SyncRun, SyncStatus
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.orchestration.launch import SyncLauncher, sync_in_flight
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.schedules import sync_cron

# Dagster 1.13 warns about its own `owners` parameter whenever it binds a sensor to its jobs
# (Definitions resolution, in every process that loads the code location); sync_scheduler sets
# no owners. Only that message is silenced.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta",
    category=BetaWarning,
)

SENSOR_NAME = "sync_scheduler"
CONTINUOUS_RETRY = dt.timedelta(minutes=5)
"""How long a continuous sync whose last run failed waits before the next attempt."""

Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SchedulerState:
    """The sensor's cursor: when each sync's last run started, as far as the sensor knows."""

    last_started: dict[int, dt.datetime] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "SchedulerState":
        """Read the cursor (an unreadable one starts afresh)."""
        try:
            data = json.loads(cursor) if cursor else {}
            return cls(
                last_started={
                    int(sync_id): dt.datetime.fromisoformat(when)
                    for sync_id, when in data.get("last_started", {}).items()
                }
            )
        except (ValueError, TypeError, AttributeError):
            return cls()

    def to_cursor(self) -> str:
        """The cursor's JSON."""
        return json.dumps(
            {
                "last_started": {
                    str(sync_id): when.isoformat()
                    for sync_id, when in sorted(self.last_started.items())
                }
            }
        )

    def seen(self, sync_id: int, when: dt.datetime | None) -> None:
        """Remember a start of ``sync_id`` (the latest one wins)."""
        if when is not None and (
            sync_id not in self.last_started or when > self.last_started[sync_id]
        ):
            self.last_started[sync_id] = when


def build_sync_scheduler(
    *,
    launcher: SyncLauncher,
    jobs: Sequence[object],
    scheduled: Mapping[int, str] | None = None,
    name: str = SENSOR_NAME,
    minimum_interval_seconds: int = 30,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    clock: Clock = _utc_now,
) -> SensorDefinition:
    """The ``sync_scheduler`` sensor.

    Args:
        launcher: what a run of a sync launches.
        jobs: every job the sensor may launch (the object jobs and ``run_sync_job``).
        scheduled: sync id -> cron of the syncs that have a schedule; the sensor leaves them to
            it while their frequency still gives that cron.
        name: the sensor's name.
        minimum_interval_seconds: time between evaluations.
        default_status: whether it starts running.
        clock: the current time (for tests).

    Returns:
        The sensor; it needs the ``sync_api`` resource.
    """
    scheduled = dict(scheduled or {})

    @sensor(
        name=name,
        jobs=list(jobs),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Runs continuous syncs back to back, syncs on intervals cron cannot express "
        "(45 minutes, 5 hours, 3 days...), syncs created through the API after this code "
        "location loaded (adding their partitions), and POST /sync/{id}/run requests. "
        "Paused syncs never run.",
    )
    def _sync_scheduler(context: SensorEvaluationContext, sync_api: SyncApiResource):
        client = sync_api.get_client()
        now = clock()
        state = SchedulerState.from_cursor(context.cursor)
        syncs = client.list_syncs()
        requests = _pending_requests(client.list_requested_runs())
        run_requests: list[RunRequest] = []
        waiting: list[str] = []
        for sync in syncs:
            if sync.status is not SyncStatus.ACTIVE or not launcher.handles(sync):
                continue
            request = _evaluate(
                context,
                client,
                sync,
                requests.get(sync.id),
                launcher,
                scheduled,
                state,
                now,
                name,
                waiting,
            )
            if request is not None:
                run_requests.append(request)
                state.seen(sync.id, now)
        live = {s.id for s in syncs}
        state.last_started = {k: v for k, v in state.last_started.items() if k in live}
        partitions = _partition_requests(context, syncs, launcher)
        skip = None
        if not run_requests:
            skip = "; ".join(waiting) if waiting else "no sync is due"
        return SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=partitions,
            cursor=state.to_cursor(),
            skip_reason=skip,
        )

    return _sync_scheduler


def _pending_requests(runs: Sequence[SyncRun]) -> dict[int, SyncRun]:
    """The oldest pending request of each sync."""
    pending: dict[int, SyncRun] = {}
    for run in runs:
        pending.setdefault(run.sync_id, run)
    return pending


def _evaluate(
    context: SensorEvaluationContext,
    client: SyncApi,
    sync: Sync,
    requested: SyncRun | None,
    launcher: SyncLauncher,
    scheduled: Mapping[int, str],
    state: SchedulerState,
    now: dt.datetime,
    sensor_name: str,
    waiting: list[str],
) -> RunRequest | None:
    """The run to launch for one active sync now, if any."""
    if requested is not None:
        busy = sync_in_flight(context.instance, client, sync, now=now)
        if busy:
            waiting.append(f"requested run {requested.id} waits: {busy}")
            return None
        return launcher.run_request(
            sync,
            scheduled_by=sensor_name,
            run_key=f"sync_pipelines_requested_run_{requested.id}",
            requested_run_id=requested.id,
        )
    if sync.continuous:
        last = state.last_started.get(sync.id)
        failing = sync.health.status is HealthStatus.ERROR
        if failing and last is not None and now - last < CONTINUOUS_RETRY:
            return None  # its last run failed: retry every few minutes, not back to back
        if sync_in_flight(context.instance, client, sync, now=now):
            return None
        return launcher.run_request(sync, scheduled_by=sensor_name)
    cron = sync_cron(sync)
    if cron is not None and scheduled.get(sync.id) == cron:
        return None  # its schedule runs it
    if sync.frequency is None or sync.frequency_units is None:
        return None
    every = interval(sync.frequency, sync.frequency_units)
    last = state.last_started.get(sync.id)
    if last is not None and now - last < every:
        return None
    state.seen(sync.id, _last_api_start(client, sync))
    last = state.last_started.get(sync.id)
    if last is not None and now - last < every:
        return None
    if sync_in_flight(context.instance, client, sync, now=now):
        return None
    return launcher.run_request(sync, scheduled_by=sensor_name)


def _last_api_start(client: SyncApi, sync: Sync) -> dt.datetime | None:
    """When the sync's latest run started, per the sync API (by anyone)."""
    starts = [run.started_at for run in client.list_runs(sync.id) if run.started_at]
    return max(starts, default=None)


def _partition_requests(
    context: SensorEvaluationContext, syncs: Sequence[Sync], launcher: SyncLauncher
) -> list[AddDynamicPartitionsRequest]:
    """Add requests for end customers missing from their object asset's partitions."""
    known: dict[str, set[str]] = {}
    missing: dict[str, list[str]] = {}
    for sync in syncs:
        target = launcher.target(sync)
        if target is None:
            continue
        name = target.partitions_def_name
        if name not in known:
            known[name] = set(context.instance.get_dynamic_partitions(name))
        if sync.end_customer_id not in known[name]:
            known[name].add(sync.end_customer_id)
            missing.setdefault(name, []).append(sync.end_customer_id)
    return [
        AddDynamicPartitionsRequest(partitions_def_name=name, partition_keys=keys)
        for name, keys in missing.items()
    ]
