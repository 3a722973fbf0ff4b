"""Run a SQL sync: read -> map -> write -> commit -> checkpoint, per batch, on the run skeleton
(:mod:`~sync_pipelines.engine.runner`).

The destination commits before the cursor is checkpointed, so a crash anywhere re-reads at most
the last batch and the upsert absorbs it: nothing is lost, nothing is written twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
from sync_pipelines.common.typed_values import decode_value, encode_value
from sync_pipelines.contract.models import (
    BackfillState,
    CursorPosition,
    NullCursor,
    RunLease,
    RunStatus,
    SyncMode,
)
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.engine.connection_specs import (
    check_database_file,
    create_engine,
    lease_spec,
    open_connection,
    redact_connection,
)
from sync_pipelines.engine.counts import destination_row_count, source_row_count
from sync_pipelines.engine.deletes import DeleteCheck, apply_deletes, delete_check_due
from sync_pipelines.engine.heartbeat import runner_process
from sync_pipelines.engine.mapping import check_cursor_type, map_batch, source_columns
from sync_pipelines.engine.memory import system_allocator
from sync_pipelines.engine.parallel import MAX_WORKERS, RangeCommit, RangeLoader, split_backfill
from sync_pipelines.engine.plan import SyncPlan, plan_sync
from sync_pipelines.engine.results import BatchProgress, SyncResult, WrittenColumn
from sync_pipelines.engine.runner import (
    LeasedRun,
    RunEnding,
    check_batch_size,
    refuse_run,
    run_to_end,
)
from sync_pipelines.engine.sql.keyset import (
    CommitHorizon,
    Keyset,
    ReadBounds,
    backfill_watermark,
    chunkable_key,
    commit_horizon,
    read_bounds,
    read_null_cursor,
)
from sync_pipelines.engine.sql.passes import (
    last_value,
    read_backfill_batches,
    read_batches,
    read_null_cursor_batches,
)
from sync_pipelines.engine.sql.read_ahead import read_ahead
from sync_pipelines.engine.sql.relation import SourceRelation, source_relation
from sync_pipelines.engine.write import (
    BatchWriter,
    WriteCounts,
    column_type_names,
    ensure_table,
    existing_table,
    open_writer,
)

__all__ = ["run_leased", "run_sync"]

logger = logging.getLogger("sync_pipelines.engine")


def _last_keyset(batch: pa.RecordBatch, plan: SyncPlan) -> Keyset | None:
    """The position after a batch (``None``: no rows, or rows of the NULL-cursor pass)."""
    if plan.cursor is None or not batch.num_rows:
        return None
    cursor = last_value(batch.column(plan.cursor))
    if cursor is None:
        return None
    key = None
    if plan.primary_key is not None:
        key = last_value(batch.column(plan.primary_key))
    return Keyset(cursor, key)


@dataclass(frozen=True)
class _Batch:
    """A source batch mapped onto the object, with its row count and last position."""

    rows: pa.RecordBatch
    read: int
    last: Keyset | None


def _mapped(
    batches: Iterator[pa.RecordBatch], plan: SyncPlan, *, ordered: bool, by_key: bool = False
) -> Iterator[_Batch]:
    """Map each source batch (in the reading thread, so mapping overlaps the writes).

    ``by_key``: the batches are backfill chunks, whose position is the last primary key.

    A value that fails to map closes the reader at once, so the source connection is released.
    """
    first = True
    try:
        for raw in batches:
            if first:
                check_cursor_type(raw, plan)
                first = False
            if by_key and raw.num_rows and plan.primary_key is not None:
                last = Keyset(None, last_value(raw.column(plan.primary_key)))
            else:
                last = _last_keyset(raw, plan) if ordered else None
            mapped = _Batch(map_batch(raw, plan), raw.num_rows, last)
            del raw  # the columns not written are freed before the reader waits to hand over
            yield mapped
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _passes(*passes: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches of each pass in turn; closing it closes the pass being read."""
    for batches in passes:
        yield from batches


@dataclass(frozen=True)
class _Read:
    """What a run reads: the relation and its bounds, in order or not, with or without the
    NULL-cursor pass."""

    relation: SourceRelation
    bounds: ReadBounds
    ordered: bool
    null_pass: bool


class _Run(LeasedRun):
    """One SQL run's state between start_run and finish_run."""

    def __init__(
        self,
        lease: RunLease,
        client: SyncApi,
        *,
        batch_size: int,
        on_progress: Callable[[BatchProgress], None] | None,
        count_rows: bool = False,
        allow_mass_delete: bool = False,
        workers: int = 1,
        plan_only: bool = False,
    ) -> None:
        super().__init__(
            lease, client, batch_size=batch_size, on_progress=on_progress, logger=logger
        )
        self.workers = workers
        self.plan_only = plan_only
        """Only plan a backfill in ``workers`` key ranges (loaded by range runners)."""
        self.allow_mass_delete = allow_mass_delete
        self.delete_check: DeleteCheck | None = None
        self.count_rows = count_rows
        self.counts: tuple[int, int, int] | None = None
        self.destination_dialect: sa.Dialect | None = None
        self.column_types: dict[str, str] = {}
        self.position: CursorPosition | None = lease.run.cursor_before
        self.table: sa.Table | None = None
        self.source_spec: dict[str, Any] = {}
        self.destination_spec: dict[str, Any] = {}
        self.horizon: CommitHorizon | None = None
        self.backfill: BackfillState | None = None
        """A first load in key chunks: its watermark and the last committed key."""
        self.streams: list[Iterator[Any]] = []
        """The read generators, closed when the run ends however it ends."""
        self.writer: BatchWriter | None = None

    def describe_start(self) -> str:
        run = self.lease.run
        return (
            f"{self.sync.sync_mode.value}{', full refresh' if run.full_refresh else ''}, cursor "
            f"{run.cursor_before.cursor if run.cursor_before else None}"
        )

    def describe_database_work(self) -> str:
        obj = self.lease.object
        return f"syncing into {obj.namespace}.{obj.table_name}"

    def redact(self, message: str) -> str:
        message = redact_connection(message, self.source_spec)
        return redact_connection(message, self.destination_spec)

    def execute(self) -> RunEnding:
        with system_allocator():
            self._execute()
        if self.plan_only and self.backfill is not None and self.backfill.ranges is not None:
            ranges = len(self.backfill.ranges)
            return RunEnding(
                finish=False,
                note=f"backfill planned in {ranges} key ranges for range runners",
                cursor=self.position,
            )
        return RunEnding()

    def _execute(self) -> None:
        lease = self.lease
        self.source_spec = lease_spec(lease, lease.source_connection, "source")
        self.destination_spec = lease_spec(lease, lease.destination_connection, "destination")
        plan = plan_sync(lease.sync, lease.object)
        swap = plan.mode is SyncMode.FULL_OVERWRITE or lease.run.full_refresh
        source = create_engine(self.source_spec, read_only=True)
        destination = create_engine(self.destination_spec)
        self.destination_dialect = destination.dialect
        try:
            check_database_file(source, "source")
            with open_connection(source, "source") as connection:
                read = self._plan_read(connection, plan, swap=swap)
            with open_connection(destination, "destination"):
                pass
            if plan.fields is not None and all(f.type is not None for f in plan.fields):
                self.table = ensure_table(destination, plan, None)
            if self.plan_only and self.backfill is not None and self.backfill.ranges is not None:
                self.checkpoint(CursorPosition(backfill=self.backfill))  # for range runners
                return
            columns = source_columns(plan, read.relation)
            if self.backfill is not None and self.backfill.ranges is not None:
                self._load_ranges(plan, read.relation, columns, read.bounds, destination)
            last = self._copy(source, destination, plan, read, columns, swap=swap)
            if self.backfill is not None:
                # every chunk is committed: incremental runs continue from the watermark
                watermark = decode_value(self.backfill.watermark)
                last = None if watermark is None else Keyset(watermark)
                self.backfill = None
                if not swap:
                    self.checkpoint(last.to_position() if last else None)
            if not swap and delete_check_due(self.client, plan):
                self.heartbeat.check()
                self.delete_check = apply_deletes(
                    source, destination, plan, allow_mass_delete=self.allow_mass_delete
                )
                self.tally.written += WriteCounts(deleted=self.delete_check.rows_deleted)
            if swap:
                self._swap(destination, plan, last)
            if self.count_rows:
                self._count(source, destination, plan, last)
        finally:
            for stream in self.streams:  # before dispose: no source session is left open
                stream.close()
            if self.writer is not None:
                self.writer.close()
            source.dispose()
            destination.dispose()

    def _plan_read(self, connection: sa.Connection, plan: SyncPlan, *, swap: bool) -> _Read:
        """What to read: the relation, its bounds, the order, the NULL-cursor pass, the commit
        horizon, and for a first load through a chunkable key, the backfill (in key ranges
        for several workers)."""
        before = self.lease.run.cursor_before
        first_load = before is None or before.backfill is not None  # or a backfill to resume
        relation = source_relation(connection, plan)
        bounds = read_bounds(plan, relation, before, full_read=swap)
        ordered = plan.mode is not SyncMode.FULL_OVERWRITE or bounds.from_cursor is not None
        null_pass = ordered and read_null_cursor(connection, plan, relation)
        if ordered:
            self.horizon = commit_horizon(connection, plan, relation)
        if first_load and chunkable_key(connection, plan, relation):
            self.backfill = self._start_backfill(connection, plan, relation, bounds)
            if swap and self.backfill.ranges is not None:  # a swap reads in one range
                self.backfill = BackfillState(watermark=self.backfill.watermark)
            elif not swap and (self.workers > 1 or self.plan_only) and self.backfill.ranges is None:
                self.backfill = split_backfill(
                    connection, plan, relation, self.backfill, parts=self.workers
                )
            null_pass = False  # key order reads the NULL-cursor rows with the others
            if not swap:
                self.position = CursorPosition(backfill=self.backfill)
        return _Read(relation, bounds, ordered=ordered, null_pass=null_pass)

    def _source_batches(
        self, source: sa.Engine, plan: SyncPlan, read: _Read, columns: list[str]
    ) -> Iterator[pa.RecordBatch]:
        """The source batches to copy: the NULL-cursor pass if any, then the main pass (key
        chunks for a backfill, else the keyset read; nothing once key ranges loaded them)."""
        relation = read.relation
        if self.backfill is not None and self.backfill.ranges is not None:
            main_pass: Iterator[pa.RecordBatch] = iter(())
        elif self.backfill is not None and plan.cursor and plan.primary_key:
            main_pass = read_backfill_batches(
                source,
                relation,
                columns,
                cursor=plan.cursor,
                primary_key=plan.primary_key,
                after_key=decode_value(self.backfill.last_key),
                include_null_cursor=plan.null_cursor is NullCursor.INCLUDE,
                from_cursor=read.bounds.from_cursor,
                batch_size=self.batch_size,
            )
        else:
            main_pass = read_batches(
                source,
                relation,
                columns,
                cursor=plan.cursor if read.ordered else None,
                primary_key=plan.primary_key if read.ordered else None,
                bounds=read.bounds,
                batch_size=self.batch_size,
            )
        null_pass = (
            read_null_cursor_batches(
                source,
                relation,
                columns,
                cursor=plan.cursor,
                primary_key=plan.primary_key,
                batch_size=self.batch_size,
            )
            if read.null_pass
            else iter(())
        )
        return _passes(null_pass, main_pass)

    def _copy(
        self,
        source: sa.Engine,
        destination: sa.Engine,
        plan: SyncPlan,
        read: _Read,
        columns: list[str],
        *,
        swap: bool,
    ) -> Keyset | None:
        """Read, map and write every batch, committing and checkpointing every ``batch_size``
        rows (a swap stages them instead); the last position read."""
        raw_batches = self._source_batches(source, plan, read, columns)
        by_key = self.backfill is not None
        reading = read_ahead(_mapped(raw_batches, plan, ordered=read.ordered, by_key=by_key))
        self.streams += [reading, raw_batches]
        last: Keyset | None = None
        pending = 0  # rows written since the last commit
        bulk = False  # the end customer held no rows: batches are bulk-loaded, no upsert
        writer = self.writer
        for batch in reading:
            if self.table is None or writer is None:
                # (again) with the first batch's types: columns widen to what they hold
                self.table = ensure_table(destination, plan, batch.rows.schema)
            if writer is None:
                writer = self.writer = open_writer(destination, self.table, plan)
                bulk = not swap and writer.holds_no_rows()
            last = batch.last or last
            self.tally.rows_read += batch.read
            self.tally.batches += 1
            if swap:
                writer.stage(batch.rows)
                # the destination is untouched until the swap: the cursor stays as it was
                self.checkpoint(self.lease.sync.cursor_position)
            else:
                if bulk:
                    self.tally.written += writer.bulk_load_batch(batch.rows)
                elif plan.mode is SyncMode.INCREMENTAL_APPEND:
                    self.tally.written += writer.append(batch.rows)
                else:
                    self.tally.written += writer.upsert(batch.rows)
                pending += batch.read
                if pending >= max(self.batch_size, writer.min_commit_rows):
                    self.heartbeat.check()
                    writer.commit()
                    pending = 0
                    self.checkpoint(self._reached(last))
            self._progress(batch.read, plan)
        if writer is not None and pending:
            self.heartbeat.check()
            writer.commit()
            self.checkpoint(self._reached(last))
        return last

    def _swap(self, destination: sa.Engine, plan: SyncPlan, last: Keyset | None) -> None:
        """Replace the end customer's rows with the staged ones, then checkpoint."""
        if self.table is None:
            self.table = (
                ensure_table(destination, plan, None)
                if plan.object_fields
                else existing_table(destination, plan)
            )
        if self.table is not None:
            self.writer = self.writer or open_writer(destination, self.table, plan)
            self.heartbeat.check()
            self.tally.written += self.writer.swap()
        position = self._reached(last) if last else None
        if plan.mode is SyncMode.FULL_OVERWRITE:
            position = self.lease.sync.cursor_position
        self.checkpoint(position)

    def _count(
        self, source: sa.Engine, destination: sa.Engine, plan: SyncPlan, last: Keyset | None
    ) -> None:
        """Count the rows for the row-count check, and read the destination's column types."""
        incremental = plan.mode is not SyncMode.FULL_OVERWRITE and plan.cursor
        self.counts = (
            destination_row_count(destination, plan),
            source_row_count(
                source,
                plan,
                (last.to_position() if last else self.position) if incremental else None,
            ),
            destination_row_count(destination, plan, every_customer=True),
        )
        # the columns as the destination reports them (e.g. DuckDB's VARCHAR)
        self.column_types = column_type_names(destination, plan)

    def _start_backfill(
        self,
        connection: sa.Connection,
        plan: SyncPlan,
        relation: SourceRelation,
        bounds: ReadBounds,
    ) -> BackfillState:
        """The backfill to resume (the run's cursor_before holds one) or to start: its
        watermark is the source's greatest cursor now, capped by the commit horizon."""
        before = self.lease.run.cursor_before
        if before is not None and before.backfill is not None:
            logger.info(
                "sync %s run %s: resuming the backfill of %s after key %s",
                self.sync_id,
                self.run_id,
                plan.source_label,
                decode_value(before.backfill.last_key),
            )
            return before.backfill
        watermark = backfill_watermark(connection, plan, relation, bounds)
        if watermark is not None and self.horizon is not None:
            watermark = self.horizon.cap(watermark)
        logger.info(
            "sync %s run %s: backfill of %s in key chunks, watermark %s",
            self.sync_id,
            self.run_id,
            plan.source_label,
            watermark.cursor if watermark else None,
        )
        return BackfillState(
            watermark=watermark.to_position().cursor if watermark is not None else None
        )

    def _load_ranges(
        self,
        plan: SyncPlan,
        relation: SourceRelation,
        columns: list[str],
        bounds: ReadBounds,
        destination: sa.Engine,
    ) -> None:
        """Load the backfill's key ranges not done yet with the run's workers
        (:mod:`~sync_pipelines.engine.parallel`), checkpointing each range's progress."""
        assert self.backfill is not None and self.backfill.ranges is not None
        self.checkpoint(CursorPosition(backfill=self.backfill))  # the ranges, before any row
        todo = [(i, r) for i, r in enumerate(self.backfill.ranges) if not r.done]
        logger.info(
            "sync %s run %s: backfill of %s in %d key ranges (%d to load) with %d workers",
            self.sync_id,
            self.run_id,
            plan.source_label,
            len(self.backfill.ranges),
            len(todo),
            min(self.workers, len(todo)),
        )
        bulk: list[bool] = []

        def writer_for(engine: sa.Engine, schema: pa.Schema) -> tuple[BatchWriter, bool]:
            # (again) with the first batch's types: columns widen to what they hold
            self.table = ensure_table(destination, plan, schema)
            writer = open_writer(engine, self.table, plan)
            if not bulk:  # decided once, before any worker writes
                bulk.append(writer.holds_no_rows())
            return writer, bulk[0]

        def committed(commit: RangeCommit) -> None:
            assert self.backfill is not None and self.backfill.ranges is not None
            self.tally.rows_read += commit.rows_read
            self.tally.batches += commit.batches
            self.tally.written += commit.written
            ranges = list(self.backfill.ranges)
            ranges[commit.index] = commit.range
            self.backfill = self.backfill.model_copy(update={"ranges": ranges})
            self.checkpoint(CursorPosition(backfill=self.backfill))
            if commit.rows_read:
                self._progress(commit.rows_read, plan)

        RangeLoader(
            plan=plan,
            relation=relation,
            columns=columns,
            open_source=lambda: create_engine(self.source_spec, read_only=True),
            open_destination=lambda: create_engine(self.destination_spec),
            open_writer=writer_for,
            on_commit=committed,
            check=self.heartbeat.check,
            batch_size=self.batch_size,
            include_null_cursor=plan.null_cursor is NullCursor.INCLUDE,
            from_cursor=bounds.from_cursor,
        ).load(todo, workers=self.workers)

    def _reached(self, last: Keyset | None) -> CursorPosition | None:
        """The checkpoint after reading up to ``last``, never beyond the commit horizon
        (during a backfill: the last key committed, with the backfill's watermark)."""
        if last is None:
            return self.position
        if self.backfill is not None:
            self.backfill = self.backfill.model_copy(
                update={"last_key": encode_value(_plain_key(last.primary_key))}
            )
            return CursorPosition(backfill=self.backfill)
        return (self.horizon.cap(last) if self.horizon else last).to_position()

    def checkpoint(self, position: CursorPosition | None) -> None:
        super().checkpoint(position)
        self.position = position

    def _progress(self, batch_rows: int, plan: SyncPlan) -> None:
        self.report_progress(
            batch_rows,
            step="batch",
            into=plan.destination_label,
            cursor=self.position,
            shown=self.position.cursor if self.position else None,
        )

    def result(self, status: RunStatus, cursor_after: CursorPosition | None) -> SyncResult:
        columns: tuple[WrittenColumn, ...] = ()
        if self.table is not None:
            declared = self.lease.object.object_fields
            kinds = {f.name: f.type.value for f in declared}
            dialect = self.destination_dialect
            columns = tuple(
                WrittenColumn(
                    c.name,
                    self.column_types.get(c.name) or _type_name(c.type, dialect),
                    kinds.get(c.name),
                )
                for c in self.table.columns
            )
        obj = self.lease.object
        return SyncResult(
            run_id=self.run_id,
            sync_id=self.sync_id,
            status=status,
            cursor_before=self.lease.run.cursor_before,
            cursor_after=cursor_after,
            **self.tally.result_counts(self.elapsed),
            destination_table=f"{obj.namespace}.{obj.table_name}",
            columns=columns,
            destination_row_count=self.counts[0] if self.counts else None,
            source_row_count=self.counts[1] if self.counts else None,
            table_row_count=self.counts[2] if self.counts else None,
            delete_check=self.delete_check,
        )


def _plain_key(value: Any) -> Any:
    """A key value as typed_values can store it (bytes as their text)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _type_name(column_type: sa.types.TypeEngine, dialect: sa.Dialect | None) -> str:
    """A column type as the destination's DDL spells it (e.g. ``TIMESTAMP WITH TIME ZONE``)."""
    try:
        return column_type.compile(dialect=dialect)
    except sa.exc.CompileError:  # NullType: a type the destination reported that we do not map
        return str(column_type)


def run_sync(
    sync_id: int,
    client: SyncApi,
    *,
    full_refresh: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    run_id: int | None = None,
    runner_id: str | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    count_rows: bool = False,
    allow_mass_delete: bool = False,
    workers: int | None = None,
) -> SyncResult:
    """Run one sync to completion and return its counts.

    A heartbeat thread (:class:`~sync_pipelines.engine.heartbeat.LeaseHeartbeat`) keeps the run
    lease while the run lives, however long a batch takes.

    Args:
        sync_id: the sync to run.
        client: the sync API (embedded or HTTP) that grants the run lease and stores the cursor.
        full_refresh: re-read everything and replace the end customer's rows in one swap.
        batch_size: rows per batch, committed and checkpointed together (memory scales with it).
        run_id: start this requested run (from ``POST /sync/{id}/run``) instead of a new one.
        runner_id: recorded on the run, to tell runners apart (with this host and pid).
        on_progress: called after each committed batch.
        count_rows: also count the end customer's destination rows and the source's rows up to
            the final cursor (for a row-count check), while the run lease is held.
        allow_mass_delete: let the delete check delete more than the sync's
            ``max_delete_fraction`` of the end customer's rows.
        workers: threads loading a backfill's key ranges in parallel (default: the sync's
            ``workers``, else 1).

    Returns:
        The completed run's :class:`SyncResult`.

    Raises:
        SyncRunError: the run failed; it is marked failed with the same message, and the cursor
            and the destination are as the last committed batch left them.
        sync_pipelines.contract.errors.SyncApiError: no run could be started (e.g. 409: running).
    """
    check_batch_size(batch_size)
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be from 1 to {MAX_WORKERS}")
    lease = client.start_run(
        sync_id, full_refresh=full_refresh, run_id=run_id, runner_id=runner_id, **runner_process()
    )
    return run_leased(
        lease,
        client,
        batch_size=batch_size,
        on_progress=on_progress,
        count_rows=count_rows,
        allow_mass_delete=allow_mass_delete,
        workers=workers,
    )


def run_leased(
    lease: RunLease,
    client: SyncApi,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[BatchProgress], None] | None = None,
    count_rows: bool = False,
    allow_mass_delete: bool = False,
    workers: int | None = None,
    plan_ranges: int | None = None,
) -> SyncResult:
    """Run a started run (``lease``, from ``start_run``) as :func:`run_sync` does.

    With ``plan_ranges``, a backfill in key chunks is only planned: split into that many key
    ranges, checkpointed, and left running for range runners
    (:mod:`~sync_pipelines.engine.ranged`); the result's status is then ``running``. Other runs
    (incremental, full refresh, no chunkable key) run whole.
    """
    check_batch_size(batch_size)
    if lease.sync.provider:
        # the caller picks the runner (sync_pipelines.run_any): the engine runs SQL syncs
        raise refuse_run(
            client,
            lease,
            f"sync {lease.sync.id} reads the API provider {lease.sync.provider!r}: run it with "
            "the provider runner (sync_pipelines.providers.sync_provider), not the SQL one",
            logger,
        )
    run = _Run(
        lease,
        client,
        batch_size=batch_size,
        on_progress=on_progress,
        count_rows=count_rows,
        allow_mass_delete=allow_mass_delete,
        workers=plan_ranges or workers or lease.sync.workers,
        plan_only=plan_ranges is not None,
    )
    return run_to_end(run)
