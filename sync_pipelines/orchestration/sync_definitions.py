"""The whole Dagster code location of a sync API: assets, jobs, schedules, sensor, resource."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from dagster import (
    AssetsDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunConfig,
)

from sync_pipelines.orchestration._names import key_slug
from sync_pipelines.orchestration.apply import build_apply_syncs_job
from sync_pipelines.orchestration.assets import object_assets
from sync_pipelines.orchestration.jobs import build_object_job, build_sync_jobs, object_job_name
from sync_pipelines.orchestration.launch import ObjectTarget, SyncLauncher
from sync_pipelines.orchestration.provider_assets import provider_stream_assets
from sync_pipelines.orchestration.range_backfill import range_backfill_job
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.schedules import build_sync_schedules, scheduled_crons
from sync_pipelines.orchestration.sensors import build_sync_scheduler
from sync_pipelines.orchestration.snapshot import SyncCatalog
from sync_pipelines.orchestration.state import SyncApiDefsLoader
from sync_pipelines.orchestration.translator import SyncTranslator

SyncJobConfig = RunConfig | Mapping[str, Any] | Callable[[SyncCatalog], Mapping[str, Any]]
"""``sync_job``'s default run config, or a function of the sync API's catalog that makes it."""


def build_sync_definitions(
    *,
    sync_api: SyncApiResource | None = None,
    translator: SyncTranslator | None = None,
    objects: Iterable[int | str] | None = None,
    syncs_file: str | Path | None = None,
    sync_job_config: SyncJobConfig | None = None,
    schedule_default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
    sensor_default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    sensor_minimum_interval_seconds: int = 30,
) -> Definitions:
    """Everything sync-pipelines offers Dagster, for the syncs of one sync API.

    Loading only reads: the sync API is read once when the code location initializes, and the
    snapshot is cached (see :mod:`sync_pipelines.orchestration.state`), so run workers reuse it
    and a sync API that is down does not break the code location. Every object becomes an asset
    partitioned by end customer, every sync with an exact cron frequency gets a schedule, and the
    ``sync_scheduler`` sensor takes care of the rest (continuous syncs, other intervals, syncs
    created later, run requests).

    Args:
        sync_api: the sync API (default: embedded, on the local store).
        translator: customizes asset keys, groups, tags, freshness and pools.
        objects: only these objects become assets, by id or display name, and only their syncs
            are scheduled here (default: every object, and every sync: those without an asset
            here run through ``run_sync_job``).
        syncs_file: a ``syncs.yaml`` that ``apply_syncs_job`` applies (pre-filled); it is not
            applied when the definitions load (``sync-pipelines apply FILE`` does it).
        sync_job_config: the run config the Launchpad shows first for ``sync_job`` (or a
            function of the :class:`SyncCatalog` that returns it).
        schedule_default_status: whether the schedules start running.
        sensor_default_status: whether ``sync_scheduler`` starts running.
        sensor_minimum_interval_seconds: time between the sensor's evaluations.

    Returns:
        The :class:`~dagster.Definitions`: object assets with checks, ``sync_job``,
        ``run_sync_job``, ``apply_syncs_job``, one asset job per object, the schedules,
        ``sync_scheduler`` and the ``sync_api`` resource.

    Raises:
        SyncApiUnavailableError: the sync API is down and no snapshot of it was ever saved.
    """
    sync_api = sync_api or SyncApiResource()

    def build(catalog: SyncCatalog) -> Definitions:
        return sync_definitions_from_catalog(
            catalog,
            sync_api=sync_api,
            translator=translator,
            objects=objects,
            syncs_file=syncs_file,
            sync_job_config=sync_job_config,
            schedule_default_status=schedule_default_status,
            sensor_default_status=sensor_default_status,
            sensor_minimum_interval_seconds=sensor_minimum_interval_seconds,
        )

    return SyncApiDefsLoader(sync_api, build).build_defs()


def sync_definitions_from_catalog(
    catalog: SyncCatalog,
    *,
    sync_api: SyncApiResource,
    translator: SyncTranslator | None = None,
    objects: Iterable[int | str] | None = None,
    syncs_file: str | Path | None = None,
    sync_job_config: SyncJobConfig | None = None,
    schedule_default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
    sensor_default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    sensor_minimum_interval_seconds: int = 30,
) -> Definitions:
    """The definitions of :func:`build_sync_definitions`, from a catalog already read."""
    custom_translator = translator
    translator = translator or SyncTranslator()
    if callable(sync_job_config):
        sync_job_config = sync_job_config(catalog)
    assets = object_assets(catalog, translator, objects)
    object_jobs = {object_id: build_object_job(asset) for object_id, asset in assets.items()}
    streams = provider_stream_assets(catalog, translator) if objects is None else {}
    stream_jobs = {key: build_object_job(asset) for key, asset in streams.items()}
    sync_job, run_sync_job = build_sync_jobs(
        translator=custom_translator, sync_job_config=sync_job_config
    )
    launcher = SyncLauncher(
        objects={
            object_id: ObjectTarget(object_job_name(asset), _partitions_name(asset))
            for object_id, asset in assets.items()
        },
        streams={
            key: ObjectTarget(object_job_name(asset), _partitions_name(asset))
            for key, asset in streams.items()
        },
        run_sync_job_name=run_sync_job.name,
        only_objects=objects is not None,
    )
    jobs_by_name: dict[str, Any] = {
        job.name: job for job in [*object_jobs.values(), *stream_jobs.values()]
    }
    jobs_by_name[run_sync_job.name] = run_sync_job
    schedules = build_sync_schedules(
        syncs=catalog.syncs,
        launcher=launcher,
        jobs=jobs_by_name,
        object_key_slugs={object_id: key_slug(asset.key) for object_id, asset in assets.items()},
        default_status=schedule_default_status,
    )
    scheduler = build_sync_scheduler(
        launcher=launcher,
        jobs=list(jobs_by_name.values()),
        scheduled=scheduled_crons(schedules),
        default_status=sensor_default_status,
        minimum_interval_seconds=sensor_minimum_interval_seconds,
    )
    return Definitions(
        assets=[*assets.values(), *streams.values()],
        jobs=[
            sync_job,
            build_apply_syncs_job(syncs_file=syncs_file),
            range_backfill_job,
            *jobs_by_name.values(),
        ],
        schedules=schedules,
        sensors=[scheduler],
        resources={"sync_api": sync_api},
    )


def _partitions_name(asset: AssetsDefinition) -> str:
    """The name of a sync asset's dynamic partitions (its end customers)."""
    return asset.partitions_def.name
