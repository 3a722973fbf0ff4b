"""``range_backfill_job``: one sync's backfill fanned out into key-range steps.

``plan_range_backfill_op`` starts a run of the sync and splits its first load into ``ranges``
key ranges (a dynamic output each); ``load_range_op`` loads one range under its own range lease
(so the steps run in parallel on whatever executes them: the multiprocess executor, dagster-k8s's
``k8s_job_executor`` (a pod per step), dagster-celery); ``finish_range_backfill_op`` completes the
run once every range is loaded, with the cursor at the backfill's watermark.

A step that fails leaves its range at its last committed chunk and releases its range lease, so a
re-execution of the failed steps resumes each range there at once; a step whose pod dies holds its
range until its lease expires after ``SYNC_PIPELINES_LEASE_TTL_SECONDS``. A live step's range is
never taken by another (409).
"""

from collections.abc import Iterator
from typing import Any

from dagster import (
    Config,
    DynamicOut,
    DynamicOutput,
    Failure,
    In,
    OpExecutionContext,
    Out,
    job,
    op,
)
from pydantic import Field

from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
from sync_pipelines.contract.errors import ConflictError
from sync_pipelines.contract.models import MAX_WORKERS
from sync_pipelines.orchestration.resource import SyncApiResource

__all__ = [
    "RangeBackfillConfig",
    "finish_range_backfill_op",
    "load_range_op",
    "plan_range_backfill_op",
    "range_backfill_job",
]


class RangeBackfillConfig(Config):
    """Which sync's backfill to fan out, and into how many key ranges."""

    sync_id: int = Field(description="The sync whose first load is split into key ranges.")
    ranges: int = Field(
        default=4, ge=1, le=MAX_WORKERS, description="Key ranges (parallel steps), 1 to 32."
    )
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, description="Rows per chunk.")
    lease_seconds: float | None = Field(
        default=None,
        description="The run lease's TTL until the first range step reports (default: the "
        "server's); raise it when steps wait long for a pod.",
    )


def _runner(context: OpExecutionContext) -> str:
    return f"dagster:{context.run.run_id}:{context.op_handle}"


@op(
    out=DynamicOut(dict, description="One key range to load: run_id, range_index, batch_size."),
    tags={"sync_pipelines/op": "plan_range_backfill"},
)
def plan_range_backfill_op(
    context: OpExecutionContext, config: RangeBackfillConfig, sync_api: SyncApiResource
) -> Iterator[DynamicOutput[dict]]:
    """Start a run of the sync and plan its backfill in key ranges (one output per range not
    loaded yet). A run that is no first load in key chunks runs whole here (no outputs)."""
    from sync_pipelines.engine import SyncRunError
    from sync_pipelines.engine.ranged import finish_range_backfill, plan_range_backfill

    client = sync_api.get_client()
    try:
        plan = plan_range_backfill(
            config.sync_id,
            client,
            ranges=config.ranges,
            runner_id=_runner(context),
            batch_size=config.batch_size,
            lease_seconds=config.lease_seconds,
        )
    except (SyncRunError, ConflictError) as error:
        raise Failure(description=str(error), metadata={"sync_id": config.sync_id}) from None
    if plan.result is not None:
        context.log.info(
            f"sync {plan.sync_id} run {plan.run_id}: no backfill in key ranges (an incremental "
            f"run, a full refresh or a key that cannot be chunked): ran whole, "
            f"{plan.result.rows_read} rows read"
        )
        return
    context.log.info(
        f"sync {plan.sync_id} run {plan.run_id}: backfill in {plan.ranges} key ranges, "
        f"{len(plan.pending)} to load"
    )
    if not plan.pending:  # resumed with every range loaded already
        finish_range_backfill(client, plan.run_id)
        return
    for index in plan.pending:
        yield DynamicOutput(
            {"run_id": plan.run_id, "range_index": index, "batch_size": config.batch_size},
            mapping_key=f"range_{index}",
        )


@op(
    ins={"key_range": In(dict)},
    out=Out(dict, description="What the step loaded."),
    tags={"sync_pipelines/op": "load_range"},
)
def load_range_op(
    context: OpExecutionContext, key_range: dict, sync_api: SyncApiResource
) -> dict[str, Any]:
    """Take the lease on one key range and load it (resuming after its last committed chunk)."""
    from sync_pipelines.engine import SyncRunError
    from sync_pipelines.engine.ranged import load_range

    try:
        result = load_range(
            sync_api.get_client(),
            key_range["run_id"],
            key_range["range_index"],
            batch_size=key_range["batch_size"],
            runner_id=_runner(context),
        )
    except (SyncRunError, ConflictError) as error:
        raise Failure(description=str(error), metadata=dict(key_range)) from None
    context.log.info(
        f"run {result.run_id}: key range {result.range_index} {result.status.value}, "
        f"{result.rows_read} rows read, {result.rows_written} written in "
        f"{result.duration_seconds:.2f}s (range lease {result.range_lease_id})"
    )
    return {
        "run_id": result.run_id,
        "range_index": result.range_index,
        "rows_read": result.rows_read,
        "rows_written": result.rows_written,
    }


@op(ins={"loaded": In(list)}, tags={"sync_pipelines/op": "finish_range_backfill"})
def finish_range_backfill_op(
    context: OpExecutionContext, loaded: list, sync_api: SyncApiResource
) -> dict[str, Any]:
    """Complete the run once every key range is loaded: the cursor becomes the watermark."""
    from sync_pipelines.engine import SyncRunError
    from sync_pipelines.engine.ranged import finish_range_backfill

    if not loaded:  # the plan ran the sync whole, or found every range loaded and finished
        context.log.info("no key ranges were loaded by this run: nothing to finish")
        return {}
    run_id = loaded[0]["run_id"]
    try:
        stats = finish_range_backfill(sync_api.get_client(), run_id)
    except SyncRunError as error:
        raise Failure(description=str(error), metadata={"run_id": run_id}) from None
    context.log.info(
        f"run {run_id}: every key range loaded, {stats.rows_read} rows read, "
        f"{stats.rows_written} written"
    )
    return {"run_id": run_id, **stats.model_dump()}


@job(
    name="range_backfill_job",
    description="Load one sync's first load in key ranges, one step per range, each under its "
    "own range lease: the steps run in parallel on the executor (multiprocess, k8s, celery).",
    tags={"sync_pipelines/job": "range_backfill_job"},
)
def range_backfill_job() -> None:
    loaded = plan_range_backfill_op().map(load_range_op)
    finish_range_backfill_op(loaded.collect())
