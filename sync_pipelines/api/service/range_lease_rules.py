"""Range leases: one sync's backfill split into key-range runs, each holding its own lease.

A run (the *parent*, holding the sync's run lease as any run does) plans a backfill in key
ranges and checkpoints them in the sync's cursor position (``backfill.ranges``). Runners on other
processes or machines then load the ranges, each under a **range lease** on one range of that
run:

- ``acquire`` grants the range to one holder: 409 naming the holder while a live one holds it; a
  holder that stopped reporting for the lease's TTL (``$SYNC_PIPELINES_LEASE_TTL_SECONDS``) is
  taken over (its lease is marked ``expired``) and the new holder resumes after the range's last
  committed key. A range already loaded is granted as ``completed`` (nothing to do).
- ``heartbeat`` and ``checkpoint`` renew the range lease and the parent run's lease, so the
  sync stays leased to the parent while any range holder is alive: no other run of the sync
  starts meanwhile, and once every holder stopped reporting the parent's lease lapses like any
  run's (the next start takes over and resumes the ranges where they stand).
- ``checkpoint`` records one range's progress (its last committed key, ``done``) in the sync's
  cursor position and adds the holder's counts to the parent run, in one transaction that first
  takes the sync's row (so concurrent checkpoints of other ranges never overwrite each other).
- ``release``: a holder that stopped after an error gives its range up (the lease is marked
  ``failed`` with the error), so the next holder takes it at once instead of after the TTL and
  resumes after the range's last committed key. It renews nothing: the parent run's lease
  lapses as usual once no holder reports.

A holder whose range lease was taken over, or whose parent run was cancelled, finished or taken
over, gets 409 from its next heartbeat or checkpoint and must stop before committing more.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sync_pipelines.api import tables as t
from sync_pipelines.api.service.leases import _when
from sync_pipelines.common.time import aware
from sync_pipelines.common.typed_values import decode_value
from sync_pipelines.contract.errors import ConflictError, NotFoundError, ValidationFailedError
from sync_pipelines.contract.models import (
    MAX_RANGE_LEASE_ERROR_CHARS,
    BackfillRange,
    CursorPosition,
    RangeLease,
    RangeLeaseGrant,
    RangeLeaseStatus,
    RunStats,
    RunStatus,
)

if TYPE_CHECKING:
    from sync_pipelines.api.service import SyncService

__all__ = ["RangeLeases", "acquire", "checkpoint", "heartbeat", "list_for_run", "release"]

_COUNTS = (
    "rows_read",
    "rows_inserted",
    "rows_updated",
    "rows_deleted",
    "rows_unchanged",
    "rows_written",
    "batches",
)


def _model(row: sa.Row) -> RangeLease:
    return RangeLease(
        id=row.id,
        run_id=row.run_id,
        sync_id=row.sync_id,
        range_index=row.range_index,
        status=RangeLeaseStatus(row.status),
        key_range=BackfillRange.model_validate(row.key_range),
        runner_id=row.runner_id,
        runner_host=row.runner_host,
        runner_pid=row.runner_pid,
        rows_read=row.rows_read,
        started_at=aware(row.started_at),
        completed_at=aware(row.completed_at),
        heartbeat_at=aware(row.heartbeat_at),
        lease_seconds=row.lease_seconds,
        lease_expires_at=aware(row.lease_expires_at),
        error=row.error,
    )


def _holder(row: sa.Row) -> str:
    parts = [
        f"runner {row.runner_id}" if row.runner_id else None,
        f"host {row.runner_host}" if row.runner_host else None,
        f"pid {row.runner_pid}" if row.runner_pid is not None else None,
    ]
    named = ", ".join(p for p in parts if p)
    return f"range lease {row.id}" + (f" ({named})" if named else "")


def _renew_parent(c: sa.Connection, run: sa.Row, now: dt.datetime, ttl: float) -> None:
    """Renew the parent run's lease on its sync (taking the sync's row first).

    Raises:
        ConflictError: the run no longer runs, or another run took its sync over.
    """
    expires = now + dt.timedelta(seconds=run.lease_seconds or ttl)
    held = c.execute(
        t.syncs.update()
        .where(t.syncs.c.id == run.sync_id, t.syncs.c.lease_run_id == run.id)
        .values(lease_expires_at=expires)
    ).rowcount
    status = c.execute(sa.select(t.sync_runs.c.status).where(t.sync_runs.c.id == run.id)).scalar()
    if status != RunStatus.RUNNING.value:
        raise ConflictError(
            f"run {run.id} of sync {run.sync_id} is {status}: its key ranges are not loaded "
            "any more (start a new run to resume them)"
        )
    if held != 1:
        raise ConflictError(
            f"run {run.id} no longer holds sync {run.sync_id}'s lease (another run took it "
            "over and resumes the ranges): stop"
        )
    c.execute(
        t.sync_runs.update()
        .where(t.sync_runs.c.id == run.id)
        .values(lease_expires_at=expires, heartbeat_at=now)
    )


def _ranges(c: sa.Connection, run: sa.Row) -> list[BackfillRange]:
    """The key ranges of the run's backfill, as the sync's cursor position holds them now."""
    stored = c.execute(sa.select(t.syncs.c.cursor_position).where(t.syncs.c.id == run.sync_id))
    position = stored.scalar()
    backfill = CursorPosition.model_validate(position).backfill if position else None
    if backfill is None or backfill.ranges is None:
        raise ConflictError(
            f"run {run.id} of sync {run.sync_id} has no backfill in key ranges (plan one first)"
        )
    return backfill.ranges


def _range_of(ranges: list[BackfillRange], run: sa.Row, index: int) -> BackfillRange:
    if not 0 <= index < len(ranges):
        raise NotFoundError(
            f"run {run.id} has no key range {index} (its backfill has {len(ranges)} ranges)"
        )
    return ranges[index]


def acquire(
    service: SyncService,
    org: int,
    run_id: int,
    range_index: int,
    *,
    runner_id: str | None = None,
    runner_host: str | None = None,
    runner_pid: int | None = None,
) -> RangeLeaseGrant:
    """Lease one key range of a running run's backfill to a holder.

    Raises:
        NotFoundError: no such run (in the organization) or range.
        ConflictError: a live holder has the range; or the run no longer runs.
    """
    now = service.clock()
    ttl = service.lease_seconds
    with service.engine.begin() as c:
        run = service._run_row(c, org, run_id)
        _renew_parent(c, run, now, ttl)  # first: the sync's row is taken for the transaction
        key_range = _range_of(_ranges(c, run), run, range_index)
        current = c.execute(
            sa.select(t.backfill_range_leases)
            .where(
                t.backfill_range_leases.c.run_id == run_id,
                t.backfill_range_leases.c.range_index == range_index,
                t.backfill_range_leases.c.status == RangeLeaseStatus.RUNNING.value,
            )
            .order_by(t.backfill_range_leases.c.id.desc())
        ).first()
        if current is not None:
            holds_until = aware(current.lease_expires_at)
            if holds_until is not None and holds_until > now:
                raise ConflictError(
                    f"key range {range_index} of run {run_id} (sync {run.sync_id}) is held by "
                    f"{_holder(current)}, last heartbeat at {_when(current.heartbeat_at)}; its "
                    f"lease holds until {_when(holds_until)} and is renewed while that holder "
                    "is alive"
                )
        values: dict[str, Any] = {
            "run_id": run_id,
            "sync_id": run.sync_id,
            "range_index": range_index,
            "key_range": key_range.model_dump(mode="json"),
            "runner_id": runner_id,
            "runner_host": runner_host,
            "runner_pid": runner_pid,
            "rows_read": 0,
            "started_at": now,
            "heartbeat_at": now,
            "lease_seconds": ttl,
        }
        if key_range.done:
            values |= {"status": RangeLeaseStatus.COMPLETED.value, "completed_at": now}
        else:
            values |= {
                "status": RangeLeaseStatus.RUNNING.value,
                "lease_expires_at": now + dt.timedelta(seconds=ttl),
            }
        lease_id = c.execute(
            t.backfill_range_leases.insert().values(**values)
        ).inserted_primary_key[0]
        if current is not None:
            c.execute(
                t.backfill_range_leases.update()
                .where(t.backfill_range_leases.c.id == current.id)
                .values(
                    status=RangeLeaseStatus.EXPIRED.value,
                    lease_expires_at=None,
                    error=f"holder stopped reporting (last heartbeat at "
                    f"{_when(current.heartbeat_at)}); its lease expired at "
                    f"{_when(current.lease_expires_at)} and range lease {lease_id} took over",
                )
            )
        granted = c.execute(
            sa.select(t.backfill_range_leases).where(t.backfill_range_leases.c.id == lease_id)
        ).one()
    return RangeLeaseGrant(
        range_lease=_model(granted), lease=service._lease(org, run.sync_id, run_id)
    )


def _held_row(service: SyncService, c: sa.Connection, org: int, lease_id: int) -> sa.Row:
    row = c.execute(
        sa.select(t.backfill_range_leases)
        .join(t.syncs, t.syncs.c.id == t.backfill_range_leases.c.sync_id)
        .where(t.backfill_range_leases.c.id == lease_id, t.syncs.c.organization_id == org)
    ).first()
    if row is None:
        raise NotFoundError(f"range lease {lease_id} not found")
    return row


def _lost(row: sa.Row) -> ConflictError:
    if row.status == RangeLeaseStatus.COMPLETED.value:
        return ConflictError(f"range lease {row.id}: its key range is already loaded")
    return ConflictError(
        f"range lease {row.id} on key range {row.range_index} of run {row.run_id} is "
        f"{row.status}: {row.error or 'another holder took the range over'}; stop"
    )


def heartbeat(service: SyncService, org: int, lease_id: int) -> RangeLease:
    """Renew a range lease and its run's lease for their TTL from now.

    Raises:
        ConflictError: the range was taken over or is loaded, or the run no longer runs.
    """
    now = service.clock()
    with service.engine.begin() as c:
        row = _held_row(service, c, org, lease_id)
        run = service._run_row(c, org, row.run_id)
        _renew_parent(c, run, now, service.lease_seconds)
        row = _held_row(service, c, org, lease_id)  # as it is now, the sync's row taken
        if row.status != RangeLeaseStatus.RUNNING.value:
            raise _lost(row)
        c.execute(
            t.backfill_range_leases.update()
            .where(t.backfill_range_leases.c.id == lease_id)
            .values(
                heartbeat_at=now,
                lease_expires_at=now
                + dt.timedelta(seconds=row.lease_seconds or service.lease_seconds),
            )
        )
        return _model(_held_row(service, c, org, lease_id))


def checkpoint(
    service: SyncService,
    org: int,
    lease_id: int,
    *,
    key_range: BackfillRange,
    stats: RunStats,
) -> RangeLease:
    """Record a range's progress after its holder committed: its last committed key and
    ``done``, in the sync's cursor position, and the holder's counts since its previous
    checkpoint, added to the run's.

    Raises:
        ConflictError: the range was taken over or is loaded, or the run no longer runs.
        ValidationFailedError: the range's bounds are not the planned ones, or a key is no
            typed value.
    """
    try:
        decode_value(key_range.last_key)
    except (ValueError, TypeError, KeyError, ArithmeticError):
        raise ValidationFailedError.for_field(
            "key_range", "key_range.last_key is no typed value"
        ) from None
    now = service.clock()
    with service.engine.begin() as c:
        row = _held_row(service, c, org, lease_id)
        run = service._run_row(c, org, row.run_id)
        _renew_parent(c, run, now, service.lease_seconds)
        row = _held_row(service, c, org, lease_id)
        if row.status != RangeLeaseStatus.RUNNING.value:
            raise _lost(row)
        ranges = list(_ranges(c, run))
        planned = _range_of(ranges, run, row.range_index)
        if (key_range.after_key, key_range.upto_key) != (planned.after_key, planned.upto_key):
            raise ValidationFailedError.for_field(
                "key_range",
                f"key_range: the bounds of key range {row.range_index} are not the planned ones",
            )
        ranges[row.range_index] = planned.model_copy(
            update={"last_key": key_range.last_key, "done": key_range.done}
        )
        stored = c.execute(
            sa.select(t.syncs.c.cursor_position).where(t.syncs.c.id == run.sync_id)
        ).scalar()
        position = CursorPosition.model_validate(stored)
        assert position.backfill is not None
        position = position.model_copy(
            update={"backfill": position.backfill.model_copy(update={"ranges": ranges})}
        )
        dumped = position.model_dump(mode="json")
        c.execute(
            t.syncs.update()
            .where(t.syncs.c.id == run.sync_id, t.syncs.c.lease_run_id == run.id)
            .values(cursor_position=dumped, updated_at=now)
        )
        counts = stats.model_dump()
        c.execute(
            t.sync_runs.update()
            .where(t.sync_runs.c.id == run.id)
            .values(
                cursor_after=dumped,
                **{name: getattr(t.sync_runs.c, name) + counts[name] for name in _COUNTS},
            )
        )
        done = key_range.done
        c.execute(
            t.backfill_range_leases.update()
            .where(t.backfill_range_leases.c.id == lease_id)
            .values(
                key_range=ranges[row.range_index].model_dump(mode="json"),
                rows_read=t.backfill_range_leases.c.rows_read + stats.rows_read,
                heartbeat_at=now,
                status=(RangeLeaseStatus.COMPLETED if done else RangeLeaseStatus.RUNNING).value,
                completed_at=now if done else None,
                lease_expires_at=None
                if done
                else now + dt.timedelta(seconds=row.lease_seconds or service.lease_seconds),
            )
        )
        return _model(_held_row(service, c, org, lease_id))


def release(service: SyncService, org: int, lease_id: int, *, error: str) -> RangeLease:
    """Give a held range up after its holder failed: a ``running`` lease becomes ``failed``
    with ``error``, its range free for the next holder at once. A lease already ``failed``,
    ``expired`` or ``completed`` is returned unchanged. The parent run's lease is not renewed.

    Raises:
        NotFoundError: no such range lease (in the organization).
        ValidationFailedError: ``error`` is empty or too long.
    """
    if not 1 <= len(error) <= MAX_RANGE_LEASE_ERROR_CHARS:
        raise ValidationFailedError.for_field(
            "error", f"error must be 1 to {MAX_RANGE_LEASE_ERROR_CHARS} characters long"
        )
    with service.engine.begin() as c:
        _held_row(service, c, org, lease_id)
        c.execute(
            t.backfill_range_leases.update()
            .where(
                t.backfill_range_leases.c.id == lease_id,
                t.backfill_range_leases.c.status == RangeLeaseStatus.RUNNING.value,
            )
            .values(
                status=RangeLeaseStatus.FAILED.value,
                lease_expires_at=None,
                # a driver's message may hold NUL, which PostgreSQL text cannot
                error=error.replace("\x00", "\ufffd"),
            )
        )
        return _model(_held_row(service, c, org, lease_id))


def list_for_run(service: SyncService, org: int, run_id: int) -> list[RangeLease]:
    """Every range lease of a run, by range, then oldest first."""
    with service.engine.connect() as c:
        service._run_row(c, org, run_id)
        rows = c.execute(
            sa.select(t.backfill_range_leases)
            .where(t.backfill_range_leases.c.run_id == run_id)
            .order_by(t.backfill_range_leases.c.range_index, t.backfill_range_leases.c.id)
        )
        return [_model(row) for row in rows]


class RangeLeases:
    """The range-lease methods of :class:`~sync_pipelines.api.service.SyncService`."""

    def acquire_range_lease(
        self,
        org: int,
        run_id: int,
        range_index: int,
        *,
        runner_id: str | None = None,
        runner_host: str | None = None,
        runner_pid: int | None = None,
    ) -> RangeLeaseGrant:
        """Lease one key range of a running run's backfill (see :func:`acquire`)."""
        return acquire(
            self,  # type: ignore[arg-type]
            org,
            run_id,
            range_index,
            runner_id=runner_id,
            runner_host=runner_host,
            runner_pid=runner_pid,
        )

    def range_heartbeat(self, org: int, range_lease_id: int) -> RangeLease:
        """Renew a range lease and its run's lease (see :func:`heartbeat`)."""
        return heartbeat(self, org, range_lease_id)  # type: ignore[arg-type]

    def checkpoint_range(
        self, org: int, range_lease_id: int, *, key_range: BackfillRange, stats: RunStats
    ) -> RangeLease:
        """Record a range's progress (see :func:`checkpoint`)."""
        return checkpoint(
            self,  # type: ignore[arg-type]
            org,
            range_lease_id,
            key_range=key_range,
            stats=stats,
        )

    def release_range_lease(self, org: int, range_lease_id: int, *, error: str) -> RangeLease:
        """Give a failed holder's range up at once (see :func:`release`)."""
        return release(self, org, range_lease_id, error=error)  # type: ignore[arg-type]

    def list_range_leases(self, org: int, run_id: int) -> list[RangeLease]:
        """Every range lease of a run (see :func:`list_for_run`)."""
        return list_for_run(self, org, run_id)  # type: ignore[arg-type]
