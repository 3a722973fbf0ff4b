"""Run an API-provider sync: per collection, backfill then changes, page -> upsert -> checkpoint.

:func:`run_provider_sync` takes a run lease already granted by ``start_run`` (the engine's
caller picks it for a provider sync: ``sync-pipelines run``, the Dagster resource; the engine's
``run_sync`` runs SQL syncs only); :func:`sync_provider` starts the run and runs it.

Per collection, in the order of ``collection_ids``:

1. **Backfill** (first run, or an unfinished listing): everything in the ``max_age_days`` window.
   A full refresh (``start_run(full_refresh=True)``) stages the backfill and then replaces the end
   customer's rows in one swap, so records gone upstream disappear.
2. **Changes** since the collection's cursor (for a change feed such as Stripe's events, right
   after the listing too).
3. **Window**: rows whose updated-at is older than ``max_age_days`` are deleted (that end
   customer's only), counted in ``rows_deleted``.

Each page is one batch (split at ``batch_size``): written and committed, then the merged
per-collection positions (``CursorPosition.collections``) are checkpointed. A failure marks the
run failed with a message naming the provider's answer (the sync's health becomes ``error``); the
destination and the cursors stay as the last committed page left them.

**Completion means caught up.** The run completes (and the sync API sets
``backfill_completed_at`` on its first completed run) only after every collection has caught up.
With ``time_budget_seconds``, a run that is not done in time stops after the page in progress,
keeps what it committed, and finishes ``cancelled`` (not ``completed``, so the backfill is not
reported complete, and not ``failed``, so health is unchanged); the next run resumes from the
checkpoints.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sync_pipelines.common import secret_box
from sync_pipelines.common.redaction import redact
from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
from sync_pipelines.contract.models import CursorPosition, RunLease, RunStatus
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.engine.connection_specs import connection_secrets, create_engine, lease_spec
from sync_pipelines.engine.counts import destination_row_count
from sync_pipelines.engine.heartbeat import runner_process
from sync_pipelines.engine.results import BatchProgress, SyncResult, WrittenColumn
from sync_pipelines.engine.runner import (
    LeasedRun,
    RunEnding,
    Tally,
    check_batch_size,
    run_to_end,
)
from sync_pipelines.engine.write import BatchWriter, WriteCounts, ensure_table, open_writer
from sync_pipelines.providers._http import PermitGate, ProviderHttp, secrets_of
from sync_pipelines.providers.catalog import provider_info
from sync_pipelines.providers.errors import ProviderConfigError
from sync_pipelines.providers.fetch import Chunk, CollectionReader, CollectionState
from sync_pipelines.providers.presets import rest_provider_for
from sync_pipelines.providers.records import CollectionTable, Record

__all__ = ["CollectionResult", "ProviderSyncResult", "run_provider_sync", "sync_provider"]

logger = logging.getLogger("sync_pipelines.providers")


@dataclass(frozen=True)
class CollectionResult:
    """What a run did to one collection and its table."""

    collection_id: str
    destination_table: str
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    rows_unchanged: int
    batches: int
    caught_up: bool
    """Every change up to this run is in the table."""
    backfilled: bool
    """This run listed the collection (first run, unfinished listing or full refresh)."""
    columns: tuple[WrittenColumn, ...] = ()
    row_count: int | None = None
    """With ``count_rows``: the end customer's rows in the table after the run."""
    table_row_count: int | None = None
    """With ``count_rows``: every end customer's rows in the table after the run."""


@dataclass(frozen=True)
class ProviderSyncResult(SyncResult):
    """A :class:`~sync_pipelines.engine.results.SyncResult` with one entry per collection.

    ``destination_table`` lists the collections' tables, comma-separated. ``status`` is
    ``completed``, or ``cancelled`` when ``time_budget_seconds`` ran out before every collection
    caught up.
    """

    provider: str = ""
    collections: tuple[CollectionResult, ...] = ()
    requests: int = 0
    """HTTP requests made to the provider (retries included)."""


class _BudgetSpent(Exception):
    """The run's time budget ran out between two pages."""


class _ProviderRun(LeasedRun):
    """One provider run's state between the lease and finish_run."""

    def __init__(
        self,
        lease: RunLease,
        client: SyncApi,
        *,
        batch_size: int,
        on_progress: Callable[[BatchProgress], None] | None,
        time_budget_seconds: float | None,
        count_rows: bool = False,
    ) -> None:
        super().__init__(
            lease, client, batch_size=batch_size, on_progress=on_progress, logger=logger
        )
        self.time_budget_seconds = time_budget_seconds
        self.count_rows = count_rows
        self.now = dt.datetime.now(dt.UTC)
        self.full_refresh = lease.run.full_refresh
        self.cutoff = (
            self.now - dt.timedelta(days=self.sync.max_age_days) if self.sync.max_age_days else None
        )
        before = lease.run.cursor_before
        self.positions: dict[str, CursorPosition] = {
            cid: position
            for cid, position in ((before.collections or {}) if before else {}).items()
            if cid in self.sync.collection_ids
        }
        stored = lease.sync.cursor_position
        self.stored_positions = dict((stored.collections or {}) if stored else {})
        self.staging: str | None = None  # the collection whose backfill is staged for a swap
        self.collection_results: list[CollectionResult] = []
        self.pending: list[str] = list(self.sync.collection_ids)
        self.secrets: list[str] = []
        self.http: ProviderHttp | None = None
        self.provider_name = self.sync.provider or "provider"

    def describe_start(self) -> str:
        full_refresh = ", full refresh" if self.full_refresh else ""
        return f"{self.sync.provider}: {', '.join(self.sync.collection_ids)}{full_refresh}"

    def describe_database_work(self) -> str:
        return f"writing {self.provider_name} records"

    def redact(self, message: str) -> str:
        return redact(message, self.secrets)

    def describe_completion(self, result: SyncResult) -> str:
        requests = self.http.requests if self.http else 0
        return f"{requests} requests, {super().describe_completion(result)}"

    # -- waiting, checkpoints, progress --

    def wait(self, seconds: float) -> None:
        """Sleep (the heartbeat keeps the lease), stopping early once the lease is lost."""
        self.heartbeat.sleep(seconds)

    def position(self) -> CursorPosition:
        """The per-collection positions to checkpoint: this run's over the stored ones.

        A collection not read yet in a full refresh, or whose backfill is being staged for a
        swap, keeps its stored position: its table has not changed.
        """
        collections = {
            cid: position
            for cid, position in self.stored_positions.items()
            if cid in self.sync.collection_ids
        }
        for cid, position in self.positions.items():
            if cid != self.staging:
                collections[cid] = position
        return CursorPosition(collections=collections)

    def _progress(self, batch_rows: int, table: CollectionTable) -> None:
        position = self.positions.get(table.collection_id)
        self.report_progress(
            batch_rows,
            step=f"{table.collection_id} page",
            into=table.label,
            cursor=self.position(),
            shown=position.cursor if position else None,
        )

    def _check_budget(self) -> None:
        budget = self.time_budget_seconds
        if budget is not None and time.monotonic() - self.started >= budget:
            raise _BudgetSpent

    # -- the run --

    def execute(self) -> RunEnding:
        try:
            self._execute()
        except _BudgetSpent:
            note = (
                f"stopped after the time budget of {self.time_budget_seconds:g}s; not caught up "
                "yet: " + ", ".join(self.pending)
            )
            return RunEnding(RunStatus.CANCELLED, note)
        return RunEnding()

    def _execute(self) -> None:
        sync = self.sync
        if not sync.provider or self.lease.credential is None or sync.credential_id is None:
            raise ProviderConfigError(
                f"sync {sync.id} is not an API-provider sync with a credential",
                provider=self.provider_name,
            )
        credential = secret_box.unseal(self.lease.credential.sealed)
        self.secrets = secrets_of(dict(credential.get("properties") or {}))
        destination_spec = lease_spec(self.lease, self.lease.destination_connection, "destination")
        self.secrets += connection_secrets(destination_spec)
        provider = rest_provider_for(sync.provider, sync.provider_config)
        tables = []
        for collection_id in sync.collection_ids:
            prefix, _, name = collection_id.partition(":")
            if prefix != sync.provider or name not in provider.collections:
                raise ProviderConfigError(
                    f"{collection_id!r} is not a collection of {sync.provider}; it has "
                    + ", ".join(f"{sync.provider}:{n}" for n in sorted(provider.collections)),
                    provider=sync.provider,
                )
            tables.append(CollectionTable(collection_id, provider.collections[name], sync))
        rate_limit = sync.rate_limit or provider_info(sync.provider).default_rate_limit
        gate = PermitGate(self.client, sync.credential_id, rate_limit, self.wait)
        self.http = ProviderHttp(provider, credential, gate, wait=self.wait)
        try:
            for table in tables:
                # an engine per collection: a writer's session (its temporary staging tables)
                # is never handed to the next collection's writer
                destination = create_engine(destination_spec)
                try:
                    self._collection(table, destination)
                finally:
                    destination.dispose()
                self.pending.remove(table.collection_id)
        finally:
            self.http.close()

    def _collection(self, table: CollectionTable, destination: sa.Engine) -> None:
        assert self.http is not None
        cid = table.collection_id
        sa_table = ensure_table(destination, table.plan, None)
        reader = CollectionReader(table, self.http, cutoff=self.cutoff, now=self.now)
        counts = Tally()
        state = CollectionState.from_position(self.positions.get(cid))
        backfilled = False
        logger.info(
            "sync %s run %s: %s into %s, %s",
            self.sync.id,
            self.run_id,
            cid,
            table.label,
            "backfill"
            if reader.needs_backfill(state)
            else f"changes since {state and state.cursor}",
        )
        writer = open_writer(destination, sa_table, table.plan)
        try:
            if reader.needs_backfill(state):
                swap = self.full_refresh
                self.staging = cid if swap else None
                staged_state: CollectionState | None = None
                for chunk in reader.backfill(state):
                    staged_state = chunk.state or staged_state
                    self._apply(chunk, table, sa_table, writer, destination, counts, staged=swap)
                if swap:
                    self.heartbeat.check()
                    self._count(counts, written=writer.swap())
                    self.staging = None
                    if staged_state is not None:
                        self.positions[cid] = staged_state.to_position()
                    self.checkpoint(self.position())
                backfilled = True
                state = CollectionState.from_position(self.positions.get(cid))
            if state is not None and (not backfilled or reader.reads_changes_after_backfill):
                for chunk in reader.changes(state):
                    self._apply(chunk, table, sa_table, writer, destination, counts, staged=False)
        finally:
            writer.close()
            self.staging = None
        if self.cutoff is not None:
            pruned = _delete_rows(
                destination,
                sa_table,
                table,
                sa_table.c[table.cursor_column] < _bind_time(destination, self.cutoff),
            )
            if pruned:
                logger.info(
                    "sync %s run %s: %d rows of %s older than %s days deleted",
                    self.sync.id,
                    self.run_id,
                    pruned,
                    table.label,
                    self.sync.max_age_days,
                )
                self._count(counts, written=WriteCounts(deleted=pruned))
                self.checkpoint(self.position())
        row_counts: dict[str, int] = {}
        if self.count_rows:
            row_counts = {
                "row_count": destination_row_count(destination, table.plan),
                "table_row_count": destination_row_count(
                    destination, table.plan, every_customer=True
                ),
            }
        self.collection_results.append(
            CollectionResult(
                collection_id=cid,
                destination_table=table.label,
                rows_read=counts.rows_read,
                rows_inserted=counts.written.inserted,
                rows_updated=counts.written.updated,
                rows_deleted=counts.written.deleted,
                rows_unchanged=counts.written.unchanged,
                batches=counts.batches,
                caught_up=True,
                backfilled=backfilled,
                columns=tuple(
                    WrittenColumn(c.name, str(c.type), table.specs[c.name].type.value)
                    if c.name in table.specs
                    else WrittenColumn(c.name, str(c.type))
                    for c in sa_table.columns
                ),
                **row_counts,
            )
        )

    def _apply(
        self,
        chunk: Chunk,
        table: CollectionTable,
        sa_table: sa.Table,
        writer: BatchWriter,
        destination: sa.Engine,
        counts: Tally,
        *,
        staged: bool,
    ) -> None:
        """Write one page, commit, then checkpoint the collection's new state."""
        self._count(counts, rows_read=chunk.rows_read)
        for part in _parts(chunk.records, self.batch_size):
            batch = table.batch(part)
            if staged:
                writer.stage(batch)
                self._count(counts, batches=1)
            else:
                self._count(counts, batches=1, written=writer.upsert(batch))
        if chunk.records and not staged:
            self.heartbeat.check()
            writer.commit()  # the page is in the destination before its state is checkpointed
        if chunk.deleted_keys and not staged:
            key = sa_table.c[table.key_column]
            deleted = _delete_rows(destination, sa_table, table, key.in_(chunk.deleted_keys))
            self._count(counts, written=WriteCounts(deleted=deleted))
        if chunk.state is not None and not staged:
            self.positions[table.collection_id] = chunk.state.to_position()
        if chunk.records or chunk.deleted_keys or chunk.state is not None or chunk.rows_read:
            self.checkpoint(self.position())
            if chunk.records or chunk.deleted_keys:
                self._progress(len(chunk.records), table)
        self._check_budget()

    def _count(
        self,
        counts: Tally,
        *,
        rows_read: int = 0,
        batches: int = 0,
        written: WriteCounts | None = None,
    ) -> None:
        """Count into the collection's tally and the run's."""
        for tally in (counts, self.tally):
            tally.add(rows_read=rows_read, batches=batches, written=written)

    # -- the outcome --

    def result(self, status: RunStatus, cursor_after: CursorPosition | None) -> ProviderSyncResult:
        return ProviderSyncResult(
            run_id=self.run_id,
            sync_id=self.sync.id,
            status=status,
            cursor_before=self.lease.run.cursor_before,
            cursor_after=cursor_after,
            **self.tally.result_counts(self.elapsed),
            destination_table=", ".join(r.destination_table for r in self.collection_results),
            provider=self.provider_name,
            collections=tuple(self.collection_results),
            requests=self.http.requests if self.http else 0,
        )


def _parts(records: Sequence[Record], size: int) -> list[Sequence[Record]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def _bind_time(engine: sa.Engine, value: dt.datetime) -> dt.datetime:
    """A UTC time as the dialect's timestamp columns hold it (naive UTC where tz is not kept)."""
    if engine.dialect.name in ("postgresql", "duckdb"):
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _delete_rows(
    engine: sa.Engine, sa_table: sa.Table, table: CollectionTable, condition: Any
) -> int:
    """Delete the sync's end customer's rows matching ``condition``; how many there were."""
    where = sa.and_(sa_table.c[table.plan.customer_field] == table.plan.customer_id, condition)
    with engine.begin() as connection:
        count = connection.execute(
            sa.select(sa.func.count()).select_from(sa_table).where(where)
        ).scalar_one()
        if count:
            connection.execute(sa_table.delete().where(where))
    return int(count)


def run_provider_sync(
    lease: RunLease,
    client: SyncApi,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[BatchProgress], None] | None = None,
    time_budget_seconds: float | None = None,
    count_rows: bool = False,
) -> ProviderSyncResult:
    """Run an API-provider sync whose run lease was granted by ``client.start_run``.

    Args:
        lease: the granted lease of a provider sync (``lease.credential`` sealed).
        client: the sync API (embedded or HTTP): rate-limit permits, checkpoints, finish_run.
        batch_size: at most this many records per written batch (a page is one batch or more).
        on_progress: called after each committed page that wrote or deleted rows.
        time_budget_seconds: stop after the page in progress once this much time has passed;
            the run then finishes ``cancelled`` and the next one resumes from the checkpoints.
        count_rows: also count each collection table's rows after it is written (the end
            customer's and everyone's), while the run lease is held.

    Returns:
        The run's :class:`ProviderSyncResult` (``completed``, or ``cancelled`` on the budget).

    Raises:
        SyncRunError: the run failed; it is marked failed with the same message (naming the
            provider's answer, never a secret), and cursors and destination stay as the last
            committed page left them.
    """
    _check_options(batch_size, time_budget_seconds)
    run = _ProviderRun(
        lease,
        client,
        batch_size=batch_size,
        on_progress=on_progress,
        time_budget_seconds=time_budget_seconds,
        count_rows=count_rows,
    )
    result = run_to_end(run, chain=False)
    assert isinstance(result, ProviderSyncResult)
    return result


def _check_options(batch_size: int, time_budget_seconds: float | None) -> None:
    check_batch_size(batch_size)
    if time_budget_seconds is not None and time_budget_seconds < 0:
        raise ValueError("time_budget_seconds must not be negative")


def sync_provider(
    sync_id: int,
    client: SyncApi,
    *,
    full_refresh: bool = False,
    run_id: int | None = None,
    runner_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[BatchProgress], None] | None = None,
    time_budget_seconds: float | None = None,
    count_rows: bool = False,
) -> ProviderSyncResult:
    """Start a run of an API-provider sync and run it (:func:`run_provider_sync`).

    Raises:
        SyncRunError: the run failed (and is marked failed).
        sync_pipelines.contract.errors.SyncApiError: no run could be started (409: one is running).
    """
    _check_options(batch_size, time_budget_seconds)
    lease = client.start_run(
        sync_id, full_refresh=full_refresh, run_id=run_id, runner_id=runner_id, **runner_process()
    )
    return run_provider_sync(
        lease,
        client,
        batch_size=batch_size,
        on_progress=on_progress,
        time_budget_seconds=time_budget_seconds,
        count_rows=count_rows,
    )
