"""Jobs: ``sync_job`` (create then run, for the Launchpad), ``run_sync_job`` (run only), and one
asset job per object (what schedules and the sensor launch, one partition per run)."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import (
    AssetsDefinition,
    JobDefinition,
    RunConfig,
    define_asset_job,
    job,
)

from sync_pipelines.orchestration.ops import (
    build_create_sync_op,
    build_run_sync_op,
    create_sync_op,
    run_sync_op,
)
from sync_pipelines.orchestration.translator import SyncTranslator


def build_sync_jobs(
    *,
    translator: SyncTranslator | None = None,
    sync_job_config: RunConfig | Mapping | None = None,
) -> tuple[JobDefinition, JobDefinition]:
    """``sync_job`` (``create_sync_op`` then ``run_sync_op``) and ``run_sync_job``.

    Args:
        translator: names the assets the run op reports (default: the module's ops).
        sync_job_config: default run config of ``sync_job`` (what the Launchpad shows first).

    Returns:
        ``(sync_job, run_sync_job)``.
    """
    if translator is None:  # the module's ops, so sync_job and create_sync_op are one op
        create, run = create_sync_op, run_sync_op
    else:
        create = build_create_sync_op(translator=translator)
        run = build_run_sync_op(translator=translator)

    @job(
        name="sync_job",
        description="Create (or update) a sync from config, then run it: launch it from the "
        "Launchpad. Launching twice leaves one sync.",
        config=sync_job_config,
        tags={"sync_pipelines/job": "sync_job"},
    )
    def _sync_job() -> None:
        run(create())

    @job(
        name="run_sync_job",
        description="Run one sync, named by sync_id or by object_id and end_customer_id.",
        tags={"sync_pipelines/job": "run_sync_job"},
    )
    def _run_sync_job() -> None:
        run()

    return _sync_job, _run_sync_job


def object_job_name(asset: AssetsDefinition) -> str:
    """The name of a sync asset's job: ``<key>_sync_job`` (its op is ``sync_<key>``)."""
    return f"{asset.op.name.removeprefix('sync_')}_sync_job"


def build_object_job(asset: AssetsDefinition):
    """A job that materializes one partition (end customer) of one sync asset, with checks."""
    tables = ", ".join(key.to_user_string() for key in sorted(asset.keys))
    return define_asset_job(
        name=object_job_name(asset),
        selection=list(asset.keys),
        description=f"Sync one end customer (the partition) into {tables}.",
    )


sync_job, run_sync_job = build_sync_jobs()
