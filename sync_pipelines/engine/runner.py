"""The run skeleton shared by the SQL sync (:mod:`~sync_pipelines.engine.sql_sync`) and the
API-provider sync (:mod:`sync_pipelines.providers.provider_sync`).

Every run goes lease -> heartbeat -> read, map, write -> commit -> checkpoint -> finish. A runner
subclasses :class:`LeasedRun` and writes only its reading and writing (:meth:`LeasedRun.execute`)
and its result; the tally, the checkpoints, the progress (log line and callback), the failure
messages (redacted) and the ending are written here, once. :func:`run_to_end` runs a
:class:`LeasedRun` from its lease to ``finish_run``:

- ``execute`` returns: the run finishes as its :class:`RunEnding` says (``completed``, or e.g.
  ``cancelled`` when a time budget ran out), or stays ``running`` (a backfill planned for range
  runners);
- the lease is lost (409): the run stops, and is not finished (another runner holds it);
- anything else: the run is marked ``failed`` with :meth:`LeasedRun.failure_message`.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from sync_pipelines.common.error_text import first_line
from sync_pipelines.contract.errors import ConflictError
from sync_pipelines.contract.models import CursorPosition, RunLease, RunStats, RunStatus
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.engine.errors import EngineError, SyncRunError
from sync_pipelines.engine.heartbeat import LeaseHeartbeat
from sync_pipelines.engine.results import BatchProgress, SyncResult
from sync_pipelines.engine.write import WriteCounts

__all__ = [
    "LeasedRun",
    "RunEnding",
    "Tally",
    "check_batch_size",
    "failure_detail",
    "refuse_run",
    "run_to_end",
]


def failure_detail(error: BaseException, database_work: str) -> str:
    """What failed, in one line: an engine error's message, a database error with what it
    interrupted (``database_work``), or the error's type and first line. Not yet redacted."""
    if isinstance(error, EngineError):
        return str(error)
    if isinstance(error, sa.exc.DBAPIError):
        return f"database error while {database_work}: {first_line(error)}"
    return f"{type(error).__name__}: {first_line(error)}"


def check_batch_size(batch_size: int) -> None:
    """Refuse a batch size below 1 (before a run is started with it)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")


@dataclass
class Tally:
    """Rows read, batches and write counts, summed over a run (or one of its parts)."""

    rows_read: int = 0
    batches: int = 0
    written: WriteCounts = field(default_factory=WriteCounts)

    def add(
        self, *, rows_read: int = 0, batches: int = 0, written: WriteCounts | None = None
    ) -> None:
        """Count more of the same."""
        self.rows_read += rows_read
        self.batches += batches
        if written is not None:
            self.written += written

    def stats(self) -> RunStats:
        """The counts as the sync API records them."""
        return RunStats(
            rows_read=self.rows_read,
            rows_inserted=self.written.inserted,
            rows_updated=self.written.updated,
            rows_deleted=self.written.deleted,
            rows_unchanged=self.written.unchanged,
            rows_written=self.written.written,
            batches=self.batches,
        )

    def result_counts(self, duration: float) -> dict[str, Any]:
        """The counts and timing fields of a :class:`SyncResult`."""
        return {
            **self.stats().model_dump(),
            "duration_seconds": duration,
            "rows_per_second": self.rows_read / duration if duration > 0 else 0.0,
        }


@dataclass(frozen=True)
class RunEnding:
    """How a run that raised nothing ends."""

    status: RunStatus = RunStatus.COMPLETED
    note: str | None = None
    """Recorded on the run (e.g. why it was cancelled) and logged."""
    finish: bool = True
    """``False``: leave the run running for other runners (its result has status running)."""
    cursor: CursorPosition | None = None
    """With ``finish=False``: the position checkpointed last (the result's ``cursor_after``)."""


class LeasedRun(ABC):
    """One run's state between ``start_run`` and ``finish_run``.

    Args:
        lease: the run lease granted by ``client.start_run``.
        client: the sync API (embedded or HTTP): checkpoints, heartbeats, finish_run.
        batch_size: rows per written batch.
        on_progress: called after each committed batch.
        logger: the runner's logger.
    """

    def __init__(
        self,
        lease: RunLease,
        client: SyncApi,
        *,
        batch_size: int,
        on_progress: Callable[[BatchProgress], None] | None,
        logger: logging.Logger,
    ) -> None:
        self.lease = lease
        self.client = client
        self.sync = lease.sync
        self.sync_id = lease.sync.id
        self.run_id = lease.run.id
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.logger = logger
        self.heartbeat = LeaseHeartbeat(client, lease.run)
        self.tally = Tally()
        self.started = time.monotonic()

    # -- what a runner writes --

    @abstractmethod
    def execute(self) -> RunEnding:
        """Read, map, write, commit and checkpoint, while the heartbeat keeps the lease."""

    @abstractmethod
    def result(self, status: RunStatus, cursor_after: CursorPosition | None) -> SyncResult:
        """The run's outcome (once :meth:`execute` returned)."""

    @abstractmethod
    def describe_start(self) -> str:
        """What the run is about to do, for the log (e.g. its mode and cursor)."""

    @abstractmethod
    def describe_database_work(self) -> str:
        """What a database error interrupted, for failure messages (e.g. ``syncing into x.y``)."""

    @abstractmethod
    def redact(self, message: str) -> str:
        """``message`` with every secret the run holds replaced by ``***``."""

    def describe_completion(self, result: SyncResult) -> str:
        """The completed run's counts, for the log."""
        return (
            f"{result.rows_read} rows read, {result.rows_inserted} inserted, "
            f"{result.rows_updated} updated, {result.rows_unchanged} unchanged, "
            f"{result.rows_deleted} deleted in {result.duration_seconds:.2f}s "
            f"({result.rows_per_second:.0f} rows/s)"
        )

    # -- written once for every runner --

    @property
    def elapsed(self) -> float:
        """Seconds since the run started here."""
        return time.monotonic() - self.started

    def checkpoint(self, position: CursorPosition | None) -> None:
        """Store the cursor position and the counts so far (after the data is committed)."""
        self.heartbeat.check()
        self.client.checkpoint(self.run_id, cursor_position=position, stats=self.tally.stats())

    def report_progress(
        self, batch_rows: int, *, step: str, into: str, cursor: CursorPosition | None, shown: Any
    ) -> None:
        """Log a committed batch and call ``on_progress``.

        Args:
            batch_rows: the batch's rows.
            step: what the batch was (``batch``, ``stripe:customers page``), numbered.
            into: the destination table.
            cursor: the position checkpointed with the batch.
            shown: the cursor value shown in the log line.
        """
        self.logger.info(
            "sync %s run %s: %s %d, %d rows (%d read, %d written) into %s, cursor %s",
            self.sync_id,
            self.run_id,
            step,
            self.tally.batches,
            batch_rows,
            self.tally.rows_read,
            self.tally.written.written,
            into,
            shown,
        )
        if self.on_progress is not None:
            self.on_progress(
                BatchProgress(
                    sync_id=self.sync_id,
                    run_id=self.run_id,
                    batch=self.tally.batches,
                    batch_rows=batch_rows,
                    rows_read=self.tally.rows_read,
                    rows_written=self.tally.written.written,
                    cursor=cursor,
                    elapsed_seconds=self.elapsed,
                )
            )

    def failure_message(self, error: BaseException) -> str:
        """The run's failure, naming the sync and what failed, never a secret."""
        detail = failure_detail(error, self.describe_database_work())
        return self.redact(f"sync {self.sync_id} ({self.sync.display_name!r}): {detail}")


def run_to_end(run: LeasedRun, *, chain: bool = True) -> SyncResult:
    """Run ``run`` from its lease to ``finish_run`` (see the module's docstring).

    Args:
        run: the leased run.
        chain: chain the run's error to the :class:`SyncRunError` (``False``: a provider's error
            may carry what its message leaves out).

    Raises:
        SyncRunError: the run lost its lease, or failed (and is marked failed with the message).
    """
    logger = run.logger
    logger.info("sync %s run %s: started (%s)", run.sync_id, run.run_id, run.describe_start())
    try:
        with run.heartbeat:
            ending = run.execute()
    except ConflictError as error:
        message = f"sync {run.sync_id}: run {run.run_id} lost its lease and stopped: {error}"
        logger.error(message)
        raise SyncRunError(message, sync_id=run.sync_id, run_id=run.run_id) from (
            error if chain else None
        )
    except Exception as error:
        message = run.failure_message(error)
        logger.error("sync %s run %s failed: %s", run.sync_id, run.run_id, message)
        try:
            run.client.finish_run(
                run.run_id, status=RunStatus.FAILED, stats=run.tally.stats(), error=message
            )
        except Exception:  # noqa: BLE001 - the run's own error matters more
            logger.exception(
                "sync %s run %s: could not record the failure", run.sync_id, run.run_id
            )
        raise SyncRunError(message, sync_id=run.sync_id, run_id=run.run_id) from (
            error if chain else None
        )
    if not ending.finish:
        logger.info("sync %s run %s: %s", run.sync_id, run.run_id, ending.note)
        return run.result(RunStatus.RUNNING, ending.cursor)
    finished = run.client.finish_run(
        run.run_id, status=ending.status, stats=run.tally.stats(), error=ending.note
    )
    result = run.result(ending.status, finished.cursor_after)
    if ending.status is RunStatus.COMPLETED:
        logger.info(
            "sync %s run %s: completed, %s",
            run.sync_id,
            run.run_id,
            run.describe_completion(result),
        )
    else:
        logger.info(
            "sync %s run %s: %s, %s", run.sync_id, run.run_id, ending.status.value, ending.note
        )
    return result


def refuse_run(
    client: SyncApi, lease: RunLease, message: str, logger: logging.Logger
) -> SyncRunError:
    """Mark a leased run failed before it started (e.g. handed to the wrong runner); the error."""
    logger.error("sync %s run %s failed: %s", lease.sync.id, lease.run.id, message)
    client.finish_run(lease.run.id, status=RunStatus.FAILED, stats=RunStats(), error=message)
    return SyncRunError(message, sync_id=lease.sync.id, run_id=lease.run.id)
