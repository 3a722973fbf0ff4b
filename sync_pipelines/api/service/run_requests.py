"""Runs: requests (``POST /sync/{id}/run``), cancellation and listing."""

from __future__ import annotations

import sqlalchemy as sa

from sync_pipelines.api import tables as t
from sync_pipelines.api.service.base import ServiceBase
from sync_pipelines.api.service.mappers import run_model, zero_stats
from sync_pipelines.contract.errors import (
    ConflictError,
    NotFoundError,
)
from sync_pipelines.contract.models import (
    RunStatus,
    SyncRun,
    SyncStatus,
)


class Runs(ServiceBase):
    """Runs: requests (``POST /sync/{id}/run``), cancellation and listing."""

    def request_run(self, org: int, sync_id: int, *, full_refresh: bool = False) -> SyncRun:
        """Record a request to run a sync now (the scheduler picks it up once)."""
        with self.engine.begin() as c:
            sync = self._row(c, t.syncs, org, sync_id, "sync")
            if sync.status == SyncStatus.PAUSED.value:
                raise ConflictError(f"sync {sync_id} is paused; resume it to run it")
            pending = self._requested_run(c, sync_id)
            if pending is not None:
                return run_model(pending)
            run_id = c.execute(
                t.sync_runs.insert().values(
                    sync_id=sync_id,
                    status=RunStatus.REQUESTED.value,
                    full_refresh=full_refresh,
                    requested_at=self.clock(),
                    **zero_stats(),
                )
            ).inserted_primary_key[0]
        return self.get_run(org, run_id)

    def cancel_run_request(self, org: int, sync_id: int) -> SyncRun:
        """Cancel a sync's pending request, else its running run (the runner stops at its
        next checkpoint)."""
        with self.engine.begin() as c:
            sync = self._row(c, t.syncs, org, sync_id, "sync")
            run = self._requested_run(c, sync_id)
            if run is None and sync.lease_run_id is not None:
                run = c.execute(
                    sa.select(t.sync_runs).where(t.sync_runs.c.id == sync.lease_run_id)
                ).first()
            if run is None:
                raise NotFoundError(f"sync {sync_id} has no requested or running run")
            now = self.clock()
            c.execute(
                t.sync_runs.update()
                .where(t.sync_runs.c.id == run.id)
                .values(status=RunStatus.CANCELLED.value, completed_at=now, error="cancelled")
            )
            c.execute(
                t.syncs.update()
                .where(t.syncs.c.id == sync_id, t.syncs.c.lease_run_id == run.id)
                .values(lease_run_id=None, lease_expires_at=None)
            )
        return self.get_run(org, run.id)

    def list_runs(
        self, org: int, sync_id: int, *, status: RunStatus | None = None
    ) -> list[SyncRun]:
        """A sync's runs, newest first."""
        query = (
            sa.select(t.sync_runs)
            .where(t.sync_runs.c.sync_id == sync_id)
            .order_by(t.sync_runs.c.id.desc())
        )
        if status is not None:
            query = query.where(t.sync_runs.c.status == RunStatus(status).value)
        with self.engine.connect() as c:
            self._row(c, t.syncs, org, sync_id, "sync")
            return [run_model(row) for row in c.execute(query)]

    def list_requested_runs(self, org: int) -> list[SyncRun]:
        """Pending run requests of the organization's active syncs, oldest first."""
        query = (
            sa.select(t.sync_runs)
            .join(t.syncs, t.syncs.c.id == t.sync_runs.c.sync_id)
            .where(
                t.syncs.c.organization_id == org,
                t.syncs.c.deleted_at.is_(None),
                t.sync_runs.c.status == RunStatus.REQUESTED.value,
            )
            .order_by(t.sync_runs.c.id)
        )
        with self.engine.connect() as c:
            return [run_model(row) for row in c.execute(query)]

    def get_run(self, org: int, run_id: int) -> SyncRun:
        """One run."""
        with self.engine.connect() as c:
            return run_model(self._run_row(c, org, run_id))

    def _run_row(self, c: sa.Connection, org: int, run_id: int) -> sa.Row:
        row = c.execute(
            sa.select(t.sync_runs)
            .join(t.syncs, t.syncs.c.id == t.sync_runs.c.sync_id)
            .where(t.sync_runs.c.id == run_id, t.syncs.c.organization_id == org)
        ).first()
        if row is None:
            raise NotFoundError(f"run {run_id} not found")
        return row

    @staticmethod
    def _requested_run(c: sa.Connection, sync_id: int) -> sa.Row | None:
        return c.execute(
            sa.select(t.sync_runs)
            .where(
                t.sync_runs.c.sync_id == sync_id,
                t.sync_runs.c.status == RunStatus.REQUESTED.value,
            )
            .order_by(t.sync_runs.c.id)
        ).first()
