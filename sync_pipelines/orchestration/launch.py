"""What launching a sync means: a run of its object's asset job for its partition, else of
``run_sync_job``; and whether a sync is already in flight."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunRequest, RunsFilter

from sync_pipelines.contract.models import RunStatus, Sync
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.orchestration._names import REQUESTED_RUN_TAG, SCHEDULER_TAG, SYNC_ID_TAG
from sync_pipelines.orchestration.snapshot import StreamKey, stream_key

IN_FLIGHT_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class ObjectTarget:
    """An object's asset job and the name of its dynamic partitions (end customers)."""

    job_name: str
    partitions_def_name: str


@dataclass(frozen=True)
class SyncLauncher:
    """Turns a sync into a :class:`~dagster.RunRequest`.

    A sync whose object has an asset in the code location materializes that asset's partition
    (the end customer) through the object's job; any other sync (created after the code
    location loaded with a new object, or without an object) runs through ``run_sync_job``.
    """

    objects: Mapping[int, ObjectTarget] = field(default_factory=dict)
    streams: Mapping[StreamKey, ObjectTarget] = field(default_factory=dict)
    """The asset job of each API-provider stream."""
    run_sync_job_name: str = "run_sync_job"
    run_sync_op_name: str = "run_sync_op"
    only_objects: bool = False
    """Launch only syncs of the objects above (the code location selected some objects)."""

    def handles(self, sync: Sync) -> bool:
        """Whether this code location runs ``sync``."""
        return not self.only_objects or self.target(sync) is not None

    def target(self, sync: Sync) -> ObjectTarget | None:
        """The asset job of the sync's object (or provider stream), if the location has one."""
        if sync.provider is not None:
            key = stream_key(sync)
            return self.streams.get(key) if key is not None else None
        return self.objects.get(sync.object_id) if sync.object_id is not None else None

    def job_name(self, sync: Sync) -> str:
        """The job that runs ``sync``."""
        target = self.target(sync)
        return target.job_name if target else self.run_sync_job_name

    def run_request(
        self,
        sync: Sync,
        *,
        scheduled_by: str,
        run_key: str | None = None,
        requested_run_id: int | None = None,
    ) -> RunRequest:
        """A run of ``sync``, tagged with its id (``dagster.yaml`` allows one per sync)."""
        tags = {SYNC_ID_TAG: str(sync.id), SCHEDULER_TAG: scheduled_by}
        if requested_run_id is not None:
            tags[REQUESTED_RUN_TAG] = str(requested_run_id)
        target = self.target(sync)
        if target is not None:
            return RunRequest(
                run_key=run_key,
                job_name=target.job_name,
                partition_key=sync.end_customer_id,
                tags=tags,
            )
        return RunRequest(
            run_key=run_key,
            job_name=self.run_sync_job_name,
            run_config={"ops": {self.run_sync_op_name: {"config": {"sync_id": sync.id}}}},
            tags=tags,
        )


def sync_in_flight(
    instance: DagsterInstance, client: SyncApi, sync: Sync, *, now: dt.datetime | None = None
) -> str | None:
    """Why ``sync`` counts as running (``None``: it is idle).

    A Dagster run tagged with the sync is queued or in progress, or the sync API has a run of it
    holding an unexpired lease (started by anyone: Dagster, the CLI, another runner).
    """
    runs = instance.get_run_records(
        filters=RunsFilter(tags={SYNC_ID_TAG: str(sync.id)}, statuses=IN_FLIGHT_STATUSES),
        limit=1,
    )
    if runs:
        run = runs[0].dagster_run
        return f"Dagster run {run.run_id} of sync {sync.id} is {run.status.value.lower()}"
    now = now or dt.datetime.now(dt.UTC)
    for api_run in client.list_runs(sync.id, status=RunStatus.RUNNING):
        expires = api_run.lease_expires_at
        if expires is None or expires > now:
            return f"sync {sync.id} is running (sync API run {api_run.id})"
    return None


def tag_run_with_sync(context: Any, sync: Sync) -> None:
    """Tag the current run with its sync, so schedules and the sensor see the sync in flight.

    Runs they launch carry the tag already; a run launched by hand (the Launchpad, a partition
    materialized in the UI) gets it once it knows its sync.
    """
    if context.run.tags.get(SYNC_ID_TAG) != str(sync.id):
        context.instance.add_run_tags(context.run.run_id, {SYNC_ID_TAG: str(sync.id)})


def ensure_partition(instance: DagsterInstance, target: ObjectTarget | None, sync: Sync) -> None:
    """Add the sync's end customer to its object's partitions, if missing."""
    if target is not None and not instance.has_dynamic_partition(
        target.partitions_def_name, sync.end_customer_id
    ):
        instance.add_dynamic_partitions(target.partitions_def_name, [sync.end_customer_id])
