"""A backfill in parallel: the key space split into ranges, loaded by worker threads.

A first load in key chunks (see
:func:`~sync_pipelines.engine.sql.passes.read_backfill_batches`) can be split into key ranges,
``(after_key, upto_key]``, bounded by the key's minimum and maximum (integer keys) or by
boundaries sampled at even row offsets (decimal and text keys). The first range starts at the
first key, the last one runs to the last key however many arrive meanwhile,
so every row of the table falls into exactly one range.

:class:`RangeLoader` loads the ranges with ``workers`` threads. Each worker has its own source
and destination engines (so its own connections), reads its range in key chunks, maps them and
writes them through the destination's writer (its staging upsert, or its bulk load when the end
customer held no rows when the backfill began), commits, and then reports the range's last
committed key. The run checkpoints every range's progress in the backfill's cursor position, so
a crash resumes each range after its last committed chunk: the ranges are disjoint, every range
commits before it checkpoints, and the upsert absorbs the re-read of a chunk that committed
without its checkpoint.

Destinations with one writer at a time (SQLite) take turns: a worker holds the destination for a
whole transaction, from its first write to its commit; the others read and map meanwhile.

Workers are threads: the reading (ADBC, DuckDB), the Arrow work and the writing (COPY, DuckDB's
Arrow scans) release the GIL, and threads share the run's lease and checkpoints.
"""

from __future__ import annotations

import decimal
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from sync_pipelines.common.typed_values import decode_value, encode_value
from sync_pipelines.contract.models import MAX_WORKERS, BackfillRange, BackfillState, SyncMode
from sync_pipelines.engine.mapping import check_cursor_type, map_batch
from sync_pipelines.engine.plan import SyncPlan
from sync_pipelines.engine.sql.passes import last_value, read_backfill_batches
from sync_pipelines.engine.sql.read_ahead import read_ahead
from sync_pipelines.engine.sql.relation import SourceRelation
from sync_pipelines.engine.write import BatchWriter, WriteCounts

__all__ = [
    "MAX_WORKERS",
    "RangeCommit",
    "RangeLoader",
    "key_boundaries",
    "split_backfill",
]

logger = logging.getLogger("sync_pipelines.engine")


SINGLE_WRITER_DIALECTS = frozenset({"sqlite"})
"""Destinations that take one writing transaction at a time."""


def _plain_key(value: Any) -> Any:
    """A key value as typed_values can store it (bytes as their text)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def key_boundaries(
    connection: sa.Connection,
    relation: SourceRelation,
    primary_key: str,
    *,
    after_key: Any,
    parts: int,
) -> list[Any]:
    """At most ``parts - 1`` increasing keys that split the keys after ``after_key`` into
    ``parts`` ranges of similar size.

    Integer keys: evenly between the key's minimum and maximum (two probes of its index).
    Decimal and text keys: the keys at evenly spaced row offsets in key order (sampled through
    the index, as the database orders and compares them).
    """
    if parts < 2:
        return []
    source = relation.selectable
    key = source.c[primary_key]
    after = [] if after_key is None else [key > sa.bindparam("after_key", after_key)]
    key_type = relation.types.get(primary_key)
    if isinstance(key_type, sa.Integer):
        low, high = connection.execute(
            sa.select(sa.func.min(key), sa.func.max(key)).select_from(source).where(*after)
        ).one()
        if low is None or high is None:
            return []
        low, high = int(low), int(high)
        points = [low + (high - low) * i // parts for i in range(1, parts)]
    else:
        count = connection.execute(
            sa.select(sa.func.count()).select_from(source).where(*after)
        ).scalar_one()
        points = []
        for i in range(1, parts):
            offset = int(count) * i // parts - 1
            if offset < 0:
                continue
            value = connection.execute(
                sa.select(key)
                .select_from(source)
                .where(*after)
                .order_by(key)
                .limit(1)
                .offset(offset)
            ).scalar()
            if value is not None:
                points.append(value)
    boundaries: list[Any] = []
    for point in points:
        if isinstance(point, float):  # a NUMERIC read as a float: keep it exact
            point = decimal.Decimal(repr(point))
        if after_key is not None and not point > after_key:
            continue
        if not boundaries or point > boundaries[-1]:
            boundaries.append(point)
    return boundaries


def split_backfill(
    connection: sa.Connection,
    plan: SyncPlan,
    relation: SourceRelation,
    backfill: BackfillState,
    *,
    parts: int,
) -> BackfillState:
    """The backfill with its remaining keys (after its ``last_key``) split into ranges."""
    assert plan.primary_key is not None
    after_key = decode_value(backfill.last_key)
    bounds = key_boundaries(
        connection, relation, plan.primary_key, after_key=after_key, parts=parts
    )
    starts = [after_key, *bounds]
    ends = [*bounds, None]
    ranges = [
        BackfillRange(
            after_key=None if start is None else encode_value(_plain_key(start)),
            upto_key=None if end is None else encode_value(_plain_key(end)),
        )
        for start, end in zip(starts, ends, strict=True)
    ]
    return backfill.model_copy(update={"ranges": ranges})


@dataclass(frozen=True)
class RangeCommit:
    """What a worker committed of one range since its previous report."""

    index: int
    range: BackfillRange
    """The range with its new ``last_key`` (and ``done`` once its last row is committed)."""
    rows_read: int
    batches: int
    written: WriteCounts


@dataclass(frozen=True)
class _Chunk:
    rows: pa.RecordBatch
    read: int
    last_key: Any


class RangeLoader:
    """Loads key ranges of a backfill with worker threads.

    Args:
        plan: the sync's plan.
        relation: the source table.
        columns: the source columns to read.
        open_source: a new source engine (one per worker).
        open_destination: a new destination engine (one per worker).
        open_writer: the writer of a worker on its engine, for batches of a schema, and whether
            it bulk-loads (called under a lock, once per worker, before its first write).
        on_commit: called (under a lock) after a worker committed a part of a range; it
            checkpoints. An error it raises stops every worker.
        check: raises when the run must not commit any more (its lease was lost).
        batch_size: rows per chunk.
        include_null_cursor: read the rows whose cursor is NULL with the others.
        from_cursor: the lower bound of the cursor (``max_age_days``).
    """

    def __init__(
        self,
        *,
        plan: SyncPlan,
        relation: SourceRelation,
        columns: Sequence[str],
        open_source: Callable[[], sa.Engine],
        open_destination: Callable[[], sa.Engine],
        open_writer: Callable[[sa.Engine, pa.Schema], tuple[BatchWriter, bool]],
        on_commit: Callable[[RangeCommit], None],
        check: Callable[[], None],
        batch_size: int,
        include_null_cursor: bool,
        from_cursor: Any = None,
    ) -> None:
        assert plan.cursor is not None and plan.primary_key is not None
        self.plan = plan
        self.relation = relation
        self.columns = list(columns)
        self.open_source = open_source
        self.open_destination = open_destination
        self.open_writer = open_writer
        self.on_commit = on_commit
        self.check = check
        self.batch_size = batch_size
        self.include_null_cursor = include_null_cursor
        self.from_cursor = from_cursor
        self._lock = threading.Lock()
        self._slot: threading.Lock | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._checked_cursor = False

    def load(self, ranges: Sequence[tuple[int, BackfillRange]], *, workers: int) -> None:
        """Load every range (each ``(index, range)``, not done), ``workers`` at a time.

        Raises:
            The first error of a worker, once every worker stopped.
        """
        pending: queue.SimpleQueue[tuple[int, BackfillRange]] = queue.SimpleQueue()
        for item in ranges:
            pending.put(item)
        count = max(1, min(workers, len(ranges), MAX_WORKERS))
        threads = [
            threading.Thread(
                target=self._work,
                args=(pending,),
                name=f"sync-{self.plan.sync_id}-backfill-worker-{n}",
                daemon=True,
            )
            for n in range(1, count + 1)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._error is not None:
            raise self._error

    # -- a worker --

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = error
        self._stop.set()

    def _work(self, pending: queue.SimpleQueue[tuple[int, BackfillRange]]) -> None:
        source: sa.Engine | None = None
        destination: sa.Engine | None = None
        writer: list[BatchWriter | None] = [None]
        bulk = [False]
        try:
            source = self.open_source()
            destination = self.open_destination()
            if destination.dialect.name in SINGLE_WRITER_DIALECTS:
                with self._lock:
                    if self._slot is None:
                        self._slot = threading.Lock()
            while not self._stop.is_set():
                try:
                    index, key_range = pending.get_nowait()
                except queue.Empty:
                    return
                self._load_range(index, key_range, source, destination, writer, bulk)
        except BaseException as error:  # noqa: BLE001 - handed to load()
            self._fail(error)
        finally:
            try:
                if writer[0] is not None:
                    writer[0].close()
            finally:
                for engine in (source, destination):
                    if engine is not None:
                        engine.dispose()

    def _chunks(self, source: sa.Engine, key_range: BackfillRange) -> Iterator[_Chunk]:
        plan = self.plan
        assert plan.primary_key is not None and plan.cursor is not None
        start = key_range.last_key if key_range.last_key is not None else key_range.after_key
        batches = read_backfill_batches(
            source,
            self.relation,
            self.columns,
            cursor=plan.cursor,
            primary_key=plan.primary_key,
            after_key=decode_value(start),
            upto_key=decode_value(key_range.upto_key),
            include_null_cursor=self.include_null_cursor,
            from_cursor=self.from_cursor,
            batch_size=self.batch_size,
        )
        try:
            for raw in batches:
                if not raw.num_rows:
                    continue
                if not self._checked_cursor:
                    check_cursor_type(raw, plan)
                    self._checked_cursor = True
                last_key = last_value(raw.column(plan.primary_key))
                chunk = _Chunk(map_batch(raw, plan), raw.num_rows, last_key)
                del raw
                yield chunk
        finally:
            batches.close()

    def _load_range(
        self,
        index: int,
        key_range: BackfillRange,
        source: sa.Engine,
        destination: sa.Engine,
        writer_box: list[BatchWriter | None],
        bulk_box: list[bool],
    ) -> None:
        reading = read_ahead(self._chunks(source, key_range))
        holding = False  # the destination's slot (one-writer destinations), for a transaction
        pending = rows = batches = 0
        written = WriteCounts()
        last_key: Any = None
        append = self.plan.mode is SyncMode.INCREMENTAL_APPEND

        def report(done: bool) -> None:
            nonlocal key_range, pending, rows, batches, written
            update: dict[str, Any] = {"done": done}
            if last_key is not None:
                update["last_key"] = encode_value(_plain_key(last_key))
            key_range = key_range.model_copy(update=update)
            with self._lock:
                if self._stop.is_set() and self._error is not None:
                    return
                self.on_commit(RangeCommit(index, key_range, rows, batches, written))
            pending = rows = batches = 0
            written = WriteCounts()

        try:
            for chunk in reading:
                if self._stop.is_set():
                    return
                writer = writer_box[0]
                if writer is None:
                    with self._lock:
                        writer, bulk_box[0] = self.open_writer(destination, chunk.rows.schema)
                    writer_box[0] = writer
                if self._slot is not None and not holding:
                    self._slot.acquire()
                    holding = True
                if bulk_box[0]:
                    written += writer.bulk_load_batch(chunk.rows)
                elif append:
                    written += writer.append(chunk.rows)
                else:
                    written += writer.upsert(chunk.rows)
                last_key = chunk.last_key
                rows += chunk.read
                batches += 1
                pending += chunk.read
                if pending >= max(self.batch_size, writer.min_commit_rows):
                    self.check()
                    writer.commit()
                    if holding:
                        self._slot.release()  # type: ignore[union-attr]
                        holding = False
                    report(done=False)
            if self._stop.is_set():
                return
            if pending:
                self.check()
                assert writer_box[0] is not None
                writer_box[0].commit()
            if holding:
                self._slot.release()  # type: ignore[union-attr]
                holding = False
            report(done=True)
        finally:
            reading.close()
            if holding:
                self._slot.release()  # type: ignore[union-attr]
