"""Runs of a sync and the lease a runner gets to execute one."""

from __future__ import annotations

import datetime as dt

from pydantic import (
    Field,
)

from sync_pipelines.contract.models.connections import Destination, SealedConnection, Source
from sync_pipelines.contract.models.credentials import SealedCredential
from sync_pipelines.contract.models.enums import RunStatus
from sync_pipelines.contract.models.objects import SyncObject
from sync_pipelines.contract.models.primitives import Count, _Body, _Resource
from sync_pipelines.contract.models.syncs import CursorPosition, Sync


class RunStats(_Body):
    """Counters a runner reports at checkpoints and when it finishes."""

    rows_read: Count = 0
    rows_inserted: Count = 0
    rows_updated: Count = 0
    """Rows present before whose values changed."""
    rows_deleted: Count = 0
    rows_unchanged: Count = 0
    """Rows read again (cursor boundary, lookback) with the values already written."""
    rows_written: Count = 0
    batches: int = Field(default=0, ge=0, le=2**31 - 1)


class SyncRun(_Resource):
    """One execution of a sync."""

    id: int
    sync_id: int
    status: RunStatus
    full_refresh: bool
    requested_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    duration_seconds: float | None
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    rows_unchanged: int = 0
    rows_written: int
    batches: int
    cursor_before: CursorPosition | None
    cursor_after: CursorPosition | None
    error: str | None
    runner_id: str | None
    lease_expires_at: dt.datetime | None
    runner_host: str | None = None
    """The machine whose runner process (``runner_pid``) started the run."""
    runner_pid: int | None = None
    lease_seconds: float | None = None
    """The lease's TTL: it expires this long after the last heartbeat or checkpoint."""
    heartbeat_at: dt.datetime | None = None
    """When the runner last reported (start, heartbeat or checkpoint)."""


class FileAccess(_Resource):
    """Where a runner may open file databases: a server's ``SYNC_PIPELINES_FILE_ROOTS``."""

    roots: list[str]
    denied: list[str] = Field(default_factory=list)


class RunLease(_Resource):
    """What ``start_run`` grants a runner: the run, everything it needs, sealed secrets.

    A provider sync has no source or object; it has a sealed ``credential`` instead.
    ``file_access`` confines file databases (``None``: unrestricted, the embedded API).
    """

    run: SyncRun
    sync: Sync
    object: SyncObject | None
    source: Source | None
    destination: Destination
    source_connection: SealedConnection | None
    destination_connection: SealedConnection
    credential: SealedCredential | None = None
    file_access: FileAccess | None = None
