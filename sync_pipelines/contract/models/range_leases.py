"""Range leases: one sync's backfill split into key-range runs, each leasing its range."""

from __future__ import annotations

import datetime as dt

from sync_pipelines.contract.models.primitives import _LowerCaseEnum, _Resource
from sync_pipelines.contract.models.runs import RunLease
from sync_pipelines.contract.models.syncs import BackfillRange

MAX_RANGE_LEASE_ERROR_CHARS = 10_000
"""The longest error a holder releases its range lease with."""


class RangeLeaseStatus(_LowerCaseEnum):
    """A range lease: held (``running``), its range loaded (``completed``), lost (``expired``:
    its holder stopped reporting and another took the range over), or given up (``failed``: its
    holder stopped after an error and released the range; another holder may take it at once,
    resuming after the range's last checkpoint)."""

    RUNNING = "running"
    COMPLETED = "completed"
    EXPIRED = "expired"
    FAILED = "failed"


class RangeLease(_Resource):
    """One holder's lease on one key range of a run's backfill (``POST
    /run/{run_id}/ranges/{range_index}/lease``), renewed by its heartbeats and checkpoints,
    each of which also renews the run's own lease, until its holder completes or releases it."""

    id: int
    run_id: int
    sync_id: int
    range_index: int
    status: RangeLeaseStatus
    key_range: BackfillRange
    """The range, as far as this holder committed it."""
    runner_id: str | None = None
    runner_host: str | None = None
    runner_pid: int | None = None
    rows_read: int = 0
    started_at: dt.datetime
    completed_at: dt.datetime | None = None
    heartbeat_at: dt.datetime | None = None
    lease_seconds: float | None = None
    lease_expires_at: dt.datetime | None = None
    error: str | None = None


class RangeLeaseGrant(_Resource):
    """A granted range lease and the run's lease (the sync, its connections, sealed)."""

    range_lease: RangeLease
    lease: RunLease
