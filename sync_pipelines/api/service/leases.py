"""The run lease protocol: start (one run of a sync at a time), heartbeat, checkpoint, finish."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from sync_pipelines.api import tables as t
from sync_pipelines.api.service.base import ServiceBase
from sync_pipelines.api.service.health import HEALTH_WINDOW, health_from_runs
from sync_pipelines.api.service.mappers import zero_stats
from sync_pipelines.common.time import aware
from sync_pipelines.contract.errors import (
    ConflictError,
    ValidationFailedError,
)
from sync_pipelines.contract.models import (
    CursorPosition,
    RunLease,
    RunStats,
    RunStatus,
    SealedConnection,
    SyncRun,
    SyncStatus,
)


def _when(value: dt.datetime | None) -> str:
    """A stored time for messages: ISO 8601 in UTC, to the millisecond."""
    if value is None:
        return "never"
    return aware(value).astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _last_report(run: sa.Row) -> dt.datetime | None:
    """When a run's runner last reported (runs from before heartbeats: when it started)."""
    return aware(run.heartbeat_at) or aware(run.started_at)


def _held_message(sync_id: int, run: sa.Row, holds_until: dt.datetime) -> str:
    """The 409 of a start while a live run holds the lease: who, since when, until when, and
    how to take over."""
    runner = ", ".join(
        part
        for part in (
            f"runner {run.runner_id}" if run.runner_id else None,
            f"host {run.runner_host}" if run.runner_host else None,
            f"pid {run.runner_pid}" if run.runner_pid is not None else None,
        )
        if part
    )
    return (
        f"sync {sync_id} is already running: run {run.id}"
        + (f" ({runner})" if runner else "")
        + f", last heartbeat at {_when(_last_report(run))}; its lease holds until "
        f"{_when(holds_until)} and is renewed while that runner is alive (once it stops "
        "reporting, the next start takes over). To stop that run now: "
        f"sync-pipelines runs cancel {sync_id}"
    )


def _lease_lost(run: sa.Row) -> ConflictError:
    """The 409 of a heartbeat or checkpoint from a run that no longer holds its lease."""
    reason = f"it is {run.status}" + (f": {run.error}" if run.error else "")
    return ConflictError(
        f"run {run.id} no longer holds the lease of sync {run.sync_id} ({reason}); stop writing"
    )


class RunLeases(ServiceBase):
    """The run lease protocol: start (one run at a time), heartbeat, checkpoint, finish."""

    def start_run(
        self,
        org: int,
        sync_id: int,
        *,
        full_refresh: bool = False,
        run_id: int | None = None,
        runner_id: str | None = None,
        runner_host: str | None = None,
        runner_pid: int | None = None,
        lease_seconds: float | None = None,
    ) -> RunLease:
        """Grant a run lease: 409 while another run holds an unexpired one.

        ``run_id`` starts a requested run (from ``POST /sync/{id}/run``); otherwise a new run is
        recorded. The lease lasts ``lease_seconds`` (default: the service's TTL) after each
        heartbeat or checkpoint. An expired lease (its runner stopped reporting) is taken over at
        once, and its run is failed with "runner stopped reporting".
        """
        now = self.clock()
        ttl = lease_seconds or self.lease_seconds
        expires = now + dt.timedelta(seconds=ttl)
        with self.engine.begin() as c:
            sync = self._row(c, t.syncs, org, sync_id, "sync")
            if sync.status == SyncStatus.PAUSED.value:
                raise ConflictError(f"sync {sync_id} is paused; resume it to run it")
            holder = sync.lease_run_id
            held = None
            if holder is not None:
                held = c.execute(sa.select(t.sync_runs).where(t.sync_runs.c.id == holder)).first()
            holds_until = aware(sync.lease_expires_at)
            if held is not None and holds_until > now:
                raise ConflictError(_held_message(sync_id, held, holds_until))
            if run_id is not None:
                requested = self._run_row(c, org, run_id)
                if requested.sync_id != sync_id or requested.status != RunStatus.REQUESTED.value:
                    raise ConflictError(f"run {run_id} of sync {sync_id} is not a pending request")
                full_refresh = full_refresh or requested.full_refresh
            cursor_before = None if full_refresh else sync.cursor_position
            run_values = {
                "sync_id": sync_id,
                "status": RunStatus.RUNNING.value,
                "full_refresh": full_refresh,
                "started_at": now,
                "cursor_before": cursor_before,
                "runner_id": runner_id,
                "runner_host": runner_host,
                "runner_pid": runner_pid,
                "lease_seconds": ttl,
                "heartbeat_at": now,
                "lease_expires_at": expires,
            }
            if run_id is None:
                run_id = c.execute(
                    t.sync_runs.insert().values(**run_values, **zero_stats())
                ).inserted_primary_key[0]
            else:
                c.execute(
                    t.sync_runs.update().where(t.sync_runs.c.id == run_id).values(**run_values)
                )
            granted = c.execute(
                t.syncs.update()
                .where(
                    t.syncs.c.id == sync_id,
                    sa.or_(
                        t.syncs.c.lease_run_id.is_(None),
                        # unless its runner renewed it since it was read
                        sa.and_(
                            t.syncs.c.lease_run_id == holder,
                            t.syncs.c.lease_expires_at <= now,
                        ),
                    ),
                )
                .values(lease_run_id=run_id, lease_expires_at=expires)
            ).rowcount
            if granted != 1:
                raise ConflictError(f"sync {sync_id} was started by another runner just now")
            if held is not None:
                c.execute(
                    t.sync_runs.update()
                    .where(
                        t.sync_runs.c.id == holder,
                        t.sync_runs.c.status == RunStatus.RUNNING.value,
                    )
                    .values(
                        status=RunStatus.FAILED.value,
                        completed_at=now,
                        lease_expires_at=None,
                        error=f"runner stopped reporting (last heartbeat at "
                        f"{_when(_last_report(held))}); its lease expired at "
                        f"{_when(holds_until)} and run {run_id} took over",
                    )
                )
        return self._lease(org, sync_id, run_id)

    def _lease(self, org: int, sync_id: int, run_id: int) -> RunLease:
        sync = self.get_sync(org, sync_id)
        destination = self.get_destination(org, sync.destination_id)
        source = self.get_source(org, sync.source_id) if sync.source_id else None
        with self.engine.connect() as c:
            credential = (
                self.sealed_credential(c, org, sync.credential_id) if sync.credential_id else None
            )
            return RunLease(
                run=self.get_run(org, run_id),
                sync=sync,
                object=self._object_any(org, sync.object_id) if sync.object_id else None,
                source=source,
                destination=destination,
                source_connection=self._sealed_connection(c, source.connection.id)
                if source
                else None,
                destination_connection=self._sealed_connection(c, destination.connection.id),
                credential=credential,
                file_access=self.file_access(org),
            )

    @staticmethod
    def _sealed_connection(c: sa.Connection, connection_id: int) -> SealedConnection:
        row = c.execute(sa.select(t.connections).where(t.connections.c.id == connection_id)).one()
        return SealedConnection(connection_type=row.connection_type, sealed=row.sealed)

    def checkpoint(
        self,
        org: int,
        run_id: int,
        *,
        cursor_position: CursorPosition | None,
        stats: RunStats,
    ) -> SyncRun:
        """Commit a run's progress: the cursor after its last committed batch, and its counts.

        Raises:
            ConflictError: the run no longer holds its sync's lease (cancelled or taken over).
        """
        now = self.clock()
        position = cursor_position.model_dump(mode="json") if cursor_position else None
        with self.engine.begin() as c:
            run = self._run_row(c, org, run_id)
            expires = now + dt.timedelta(seconds=run.lease_seconds or self.lease_seconds)
            held = c.execute(
                t.syncs.update()
                .where(t.syncs.c.id == run.sync_id, t.syncs.c.lease_run_id == run_id)
                .values(cursor_position=position, lease_expires_at=expires, updated_at=now)
            ).rowcount
            if held != 1 or run.status != RunStatus.RUNNING.value:
                raise _lease_lost(self._run_row(c, org, run_id))  # as it is now
            c.execute(
                t.sync_runs.update()
                .where(t.sync_runs.c.id == run_id)
                .values(
                    cursor_after=position,
                    lease_expires_at=expires,
                    heartbeat_at=now,
                    **stats.model_dump(),
                )
            )
        return self.get_run(org, run_id)

    def heartbeat(self, org: int, run_id: int) -> SyncRun:
        """Renew a running run's lease for its TTL from now (a runner's background thread).

        Raises:
            ConflictError: the run no longer holds its sync's lease (cancelled, failed, or taken
                over after its lease expired): its runner must stop without checkpointing.
        """
        now = self.clock()
        with self.engine.begin() as c:
            run = self._run_row(c, org, run_id)
            expires = now + dt.timedelta(seconds=run.lease_seconds or self.lease_seconds)
            held = c.execute(
                t.syncs.update()
                .where(t.syncs.c.id == run.sync_id, t.syncs.c.lease_run_id == run_id)
                .values(lease_expires_at=expires)
            ).rowcount
            if held != 1 or run.status != RunStatus.RUNNING.value:
                raise _lease_lost(self._run_row(c, org, run_id))  # as it is now
            c.execute(
                t.sync_runs.update()
                .where(t.sync_runs.c.id == run_id)
                .values(lease_expires_at=expires, heartbeat_at=now)
            )
        return self.get_run(org, run_id)

    def finish_run(
        self,
        org: int,
        run_id: int,
        *,
        status: RunStatus,
        stats: RunStats,
        error: str | None = None,
    ) -> SyncRun:
        """End a run: record its outcome, release the lease, update health and backfill."""
        status = RunStatus(status)
        if status not in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED):
            raise ValidationFailedError.for_field(
                "status", "a run finishes as completed, failed or cancelled"
            )
        now = self.clock()
        with self.engine.begin() as c:
            run = self._run_row(c, org, run_id)
            if run.status != RunStatus.RUNNING.value:
                raise ConflictError(f"run {run_id} is already {run.status}")
            sync = c.execute(sa.select(t.syncs).where(t.syncs.c.id == run.sync_id)).one()
            started = aware(run.started_at)
            c.execute(
                t.sync_runs.update()
                .where(t.sync_runs.c.id == run_id)
                .values(
                    status=status.value,
                    completed_at=now,
                    duration_seconds=(now - started).total_seconds() if started else None,
                    error=error,
                    cursor_after=sync.cursor_position,
                    lease_expires_at=None,
                    **stats.model_dump(),
                )
            )
            recent = list(
                c.execute(
                    sa.select(t.sync_runs.c.status, t.sync_runs.c.error)
                    .where(
                        t.sync_runs.c.sync_id == run.sync_id,
                        t.sync_runs.c.status.in_(
                            [RunStatus.COMPLETED.value, RunStatus.FAILED.value]
                        ),
                    )
                    .order_by(t.sync_runs.c.id.desc())
                    .limit(HEALTH_WINDOW)
                )
            )
            values: dict[str, Any] = {
                "health": health_from_runs(recent, now),
                "lease_run_id": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            if status is RunStatus.COMPLETED and sync.backfill_completed_at is None:
                values["backfill_completed_at"] = now
            c.execute(
                t.syncs.update()
                .where(t.syncs.c.id == run.sync_id, t.syncs.c.lease_run_id == run_id)
                .values(**values)
            )
        return self.get_run(org, run_id)
