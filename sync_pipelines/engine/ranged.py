"""One sync's backfill split into key-range runs: plan, load each range under its own range
lease (on any process or machine), finish.

1. :func:`plan_range_backfill` starts a run of the sync (its run lease), takes the backfill's
   watermark, splits the key space into ranges and checkpoints them in the sync's cursor position
   (``backfill.ranges``); the run stays ``running``. A run that is no first load in key chunks
   (an incremental run, a full refresh, a ``custom_join``, a key that cannot be chunked) runs
   whole instead, and there are no ranges to load. A plan after a crash keeps the ranges where
   they stand and lists only the ones not loaded yet.
2. :func:`load_range`, once per range, anywhere: takes the range's lease (409 while a live holder
   has it; a holder that stopped reporting for the TTL is taken over, one that failed released
   it), then loads the range after its last committed key in key chunks through the writers'
   staging upsert, checkpointing each committed chunk (the range's ``last_key``) and renewing its
   lease (and the run's) from a heartbeat thread. On a failure it releases the range lease, so
   a retry resumes at once.
3. :func:`finish_range_backfill`, once every range is loaded: the cursor becomes the backfill's
   watermark (where incremental runs continue) and the run completes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pyarrow as pa
import sqlalchemy as sa

from sync_pipelines.common.error_text import first_line
from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
from sync_pipelines.contract.errors import ConflictError
from sync_pipelines.contract.models import (
    MAX_RANGE_LEASE_ERROR_CHARS,
    MAX_WORKERS,
    CursorPosition,
    NullCursor,
    RangeLease,
    RangeLeaseStatus,
    RunStats,
    RunStatus,
)
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.engine.connection_specs import (
    check_database_file,
    create_engine,
    lease_spec,
    open_connection,
    redact_connection,
)
from sync_pipelines.engine.errors import SyncRunError
from sync_pipelines.engine.heartbeat import heartbeat_interval, runner_process
from sync_pipelines.engine.mapping import source_columns
from sync_pipelines.engine.memory import system_allocator
from sync_pipelines.engine.parallel import RangeCommit, RangeLoader
from sync_pipelines.engine.plan import plan_sync
from sync_pipelines.engine.results import SyncResult
from sync_pipelines.engine.runner import Tally, failure_detail
from sync_pipelines.engine.sql.keyset import read_bounds
from sync_pipelines.engine.sql.relation import source_relation
from sync_pipelines.engine.sql_sync import run_leased
from sync_pipelines.engine.write import BatchWriter, ensure_table, open_writer

__all__ = [
    "RangeBackfillPlan",
    "RangeLoadResult",
    "finish_range_backfill",
    "load_range",
    "plan_range_backfill",
]

logger = logging.getLogger("sync_pipelines.engine")


@dataclass(frozen=True)
class RangeBackfillPlan:
    """A planned backfill in key ranges (or a run that ran whole: ``result`` is set)."""

    sync_id: int
    run_id: int
    ranges: int
    """How many key ranges the backfill has (0: the run ran whole)."""
    pending: tuple[int, ...]
    """The ranges not loaded yet, to hand to :func:`load_range`."""
    result: SyncResult | None = None
    """The run's result when it ran whole (no backfill in key ranges)."""


@dataclass(frozen=True)
class RangeLoadResult:
    """What one range runner did."""

    run_id: int
    range_index: int
    range_lease_id: int
    status: RangeLeaseStatus
    """``completed``, also when the range was already loaded (``rows_read`` 0)."""
    rows_read: int
    rows_written: int
    duration_seconds: float


def plan_range_backfill(
    sync_id: int,
    client: SyncApi,
    *,
    ranges: int,
    full_refresh: bool = False,
    runner_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lease_seconds: float | None = None,
) -> RangeBackfillPlan:
    """Start a run of the sync and plan its backfill in ``ranges`` key ranges.

    Args:
        sync_id: the sync.
        client: the sync API.
        ranges: how many key ranges (1 to 32).
        full_refresh: a full refresh runs whole (its swap cannot be split).
        runner_id: recorded on the run.
        batch_size: rows per batch if the run runs whole.
        lease_seconds: the run's lease TTL (default: the server's); range runners renew it,
            so it needs to outlast only the wait until the first of them starts.

    Raises:
        SyncRunError: the planning (or the whole run) failed.
        sync_pipelines.contract.errors.ConflictError: the sync is running (409).
    """
    if not 1 <= ranges <= MAX_WORKERS:
        raise ValueError(f"ranges must be from 1 to {MAX_WORKERS}")
    lease = client.start_run(
        sync_id,
        full_refresh=full_refresh,
        runner_id=runner_id,
        lease_seconds=lease_seconds,
        **runner_process(),
    )
    result = run_leased(lease, client, batch_size=batch_size, plan_ranges=ranges)
    run_id = lease.run.id
    if result.status is not RunStatus.RUNNING:
        return RangeBackfillPlan(sync_id, run_id, 0, (), result)
    position = result.cursor_after
    assert position is not None and position.backfill is not None
    planned = position.backfill.ranges or []
    pending = tuple(i for i, r in enumerate(planned) if not r.done)
    return RangeBackfillPlan(sync_id, run_id, len(planned), pending)


class _RangeHeartbeat:
    """Renews a range lease (and its run's) from a daemon thread; :meth:`check` raises once it
    was refused (taken over, or the run cancelled)."""

    def __init__(self, client: SyncApi, lease: RangeLease) -> None:
        self.client = client
        self.lease_id = lease.id
        self.interval = heartbeat_interval(lease.lease_seconds)
        self._stopping = threading.Event()
        self._lost: ConflictError | None = None
        self._thread = threading.Thread(
            target=self._beat, name=f"range-lease-{lease.id}-heartbeat", daemon=True
        )

    def __enter__(self) -> _RangeHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=self.interval)

    def check(self) -> None:
        if self._lost is not None:
            raise self._lost

    def _beat(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.client.range_heartbeat(self.lease_id)
            except ConflictError as error:
                if not self._stopping.is_set():
                    logger.error("range lease %s: heartbeat refused: %s", self.lease_id, error)
                    self._lost = error
                return
            except Exception as error:  # noqa: BLE001 - the lease outlives a few missed beats
                logger.warning("range lease %s: heartbeat failed: %s", self.lease_id, error)


def _release(client: SyncApi, range_lease_id: int, message: str) -> None:
    """Give the range up after a failure, so that the next holder need not wait for the TTL;
    a release that fails only costs that wait (logged)."""
    try:
        client.release_range_lease(range_lease_id, error=message[:MAX_RANGE_LEASE_ERROR_CHARS])
    except Exception as error:  # noqa: BLE001 - the load's own failure is what is raised
        logger.warning(
            "range lease %s: could not release it after the failure (it lapses after its TTL): %s",
            range_lease_id,
            first_line(error),
        )


def load_range(
    client: SyncApi,
    run_id: int,
    range_index: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    runner_id: str | None = None,
) -> RangeLoadResult:
    """Take the lease on one key range of a planned backfill and load the range.

    Raises:
        sync_pipelines.contract.errors.ConflictError: a live holder has the range, or the run no
            longer runs (409).
        SyncRunError: loading failed: the range stays as its last checkpoint left it and its
            range lease is released, so another runner (or a retry) takes the range at once and
            resumes after its last checkpoint. A runner killed without reporting holds the range
            until its lease's TTL lapses.
    """
    started = time.monotonic()
    grant = client.acquire_range_lease(run_id, range_index, runner_id=runner_id, **runner_process())
    held = grant.range_lease
    if held.status is RangeLeaseStatus.COMPLETED:
        logger.info("run %s: key range %s is already loaded", run_id, range_index)
        return RangeLoadResult(run_id, range_index, held.id, held.status, 0, 0, 0.0)
    lease = grant.lease
    plan = plan_sync(lease.sync, lease.object)
    source_spec = lease_spec(lease, lease.source_connection, "source")
    destination_spec = lease_spec(lease, lease.destination_connection, "destination")
    totals = {"read": 0, "written": 0}
    heartbeat = _RangeHeartbeat(client, held)
    logger.info(
        "sync %s run %s: loading key range %s under range lease %s, after key %s",
        lease.sync.id,
        run_id,
        range_index,
        held.id,
        (held.key_range.last_key or held.key_range.after_key or {}).get("value"),
    )
    source = create_engine(source_spec, read_only=True)
    destination = create_engine(destination_spec)
    lock = threading.Lock()
    bulk: list[bool] = []

    def writer_for(engine: sa.Engine, schema: pa.Schema) -> tuple[BatchWriter, bool]:
        table = ensure_table(destination, plan, schema)
        writer = open_writer(engine, table, plan)
        if not bulk:
            bulk.append(writer.holds_no_rows())
        return writer, bulk[0]

    def committed(commit: RangeCommit) -> None:
        heartbeat.check()
        stats = Tally(commit.rows_read, commit.batches, commit.written).stats()
        with lock:
            client.checkpoint_range(held.id, key_range=commit.range, stats=stats)
            totals["read"] += commit.rows_read
            totals["written"] += commit.written.written

    try:
        with heartbeat, system_allocator():
            check_database_file(source, "source")
            with open_connection(source, "source") as connection:
                relation = source_relation(connection, plan)
            bounds = read_bounds(plan, relation, lease.run.cursor_before, full_read=False)
            if plan.fields is not None and all(f.type is not None for f in plan.fields):
                ensure_table(destination, plan, None)
            columns = source_columns(plan, relation)
            RangeLoader(
                plan=plan,
                relation=relation,
                columns=columns,
                open_source=lambda: create_engine(source_spec, read_only=True),
                open_destination=lambda: create_engine(destination_spec),
                open_writer=writer_for,
                on_commit=committed,
                check=heartbeat.check,
                batch_size=batch_size,
                include_null_cursor=plan.null_cursor is NullCursor.INCLUDE,
                from_cursor=bounds.from_cursor,
            ).load([(range_index, held.key_range)], workers=1)
    except ConflictError as error:
        raise SyncRunError(
            f"sync {lease.sync.id} run {run_id}: key range {range_index} lost its lease and "
            f"stopped: {error}",
            sync_id=lease.sync.id,
            run_id=run_id,
        ) from error
    except SyncRunError:
        raise
    except Exception as error:
        into = f"{lease.object.namespace}.{lease.object.table_name}"
        detail = failure_detail(error, f"loading key range {range_index} into {into}")
        message = f"sync {lease.sync.id} run {run_id}: key range {range_index} failed: {detail}"
        for spec in (source_spec, destination_spec):
            message = redact_connection(message, spec)
        _release(client, held.id, message)
        raise SyncRunError(message, sync_id=lease.sync.id, run_id=run_id) from error
    finally:
        source.dispose()
        destination.dispose()
    duration = time.monotonic() - started
    logger.info(
        "sync %s run %s: key range %s loaded, %d rows read, %d written in %.2fs",
        lease.sync.id,
        run_id,
        range_index,
        totals["read"],
        totals["written"],
        duration,
    )
    return RangeLoadResult(
        run_id,
        range_index,
        held.id,
        RangeLeaseStatus.COMPLETED,
        totals["read"],
        totals["written"],
        duration,
    )


def finish_range_backfill(client: SyncApi, run_id: int) -> RunStats:
    """Complete a run whose key ranges are all loaded: its cursor becomes the backfill's
    watermark, where incremental runs continue.

    Raises:
        SyncRunError: a range is not loaded yet (the run stays running: load it, or let the
            run's lease lapse and the next run resume the ranges).
    """
    run = client.get_run(run_id)
    sync = client.get_sync(run.sync_id)
    position = sync.cursor_position
    backfill = position.backfill if position else None
    if run.status is not RunStatus.RUNNING or backfill is None or backfill.ranges is None:
        raise SyncRunError(
            f"run {run_id} of sync {run.sync_id} is {run.status.value} and holds no backfill in "
            "key ranges to finish",
            sync_id=run.sync_id,
            run_id=run_id,
        )
    left = [i for i, r in enumerate(backfill.ranges) if not r.done]
    if left:
        raise SyncRunError(
            f"run {run_id} of sync {run.sync_id}: key ranges {left} are not loaded yet",
            sync_id=run.sync_id,
            run_id=run_id,
        )
    stats = RunStats(
        rows_read=run.rows_read,
        rows_inserted=run.rows_inserted,
        rows_updated=run.rows_updated,
        rows_deleted=run.rows_deleted,
        rows_unchanged=run.rows_unchanged,
        rows_written=run.rows_written,
        batches=run.batches,
    )
    cursor = CursorPosition(cursor=backfill.watermark) if backfill.watermark else None
    client.checkpoint(run_id, cursor_position=cursor, stats=stats)
    client.finish_run(run_id, status=RunStatus.COMPLETED, stats=stats)
    logger.info(
        "sync %s run %s: every key range loaded (%d rows), cursor at the watermark",
        run.sync_id,
        run_id,
        run.rows_read,
    )
    return stats
