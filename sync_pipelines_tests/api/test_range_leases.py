"""Range leases through both clients on both stores: granted to one holder at a time, renewed
with the run's lease, taken over once expired or at once once released after a failure, progress
recorded in the sync's cursor position."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from sync_pipelines.common.typed_values import decode_value, encode_value
from sync_pipelines.contract.errors import ConflictError, NotFoundError, ValidationFailedError
from sync_pipelines.contract.models import (
    BackfillRange,
    BackfillState,
    CursorPosition,
    RangeLeaseStatus,
    RunStats,
    RunStatus,
)
from sync_pipelines_tests.api.test_contract import make_sync


def _planned(client, sync_id: int) -> int:
    """A run holding the sync's lease, its backfill planned in two key ranges."""
    lease = client.start_run(sync_id, runner_id="planner")
    ranges = [
        BackfillRange(upto_key=encode_value(50)),
        BackfillRange(after_key=encode_value(50)),
    ]
    position = CursorPosition(
        backfill=BackfillState(watermark=encode_value(dt.datetime(2024, 1, 1)), ranges=ranges)
    )
    client.checkpoint(lease.run.id, cursor_position=position, stats=RunStats())
    return lease.run.id


def test_a_range_is_leased_to_one_holder_and_its_progress_is_checkpointed(client, service):
    sync = make_sync(client)
    run_id = _planned(client, sync.id)

    grant = client.acquire_range_lease(run_id, 1, runner_id="a", runner_host="h", runner_pid=7)

    held = grant.range_lease
    assert (held.run_id, held.range_index, held.status) == (run_id, 1, RangeLeaseStatus.RUNNING)
    assert grant.lease.run.id == run_id and grant.lease.sync.id == sync.id
    assert grant.lease.destination_connection.sealed
    with pytest.raises(ConflictError, match=r"held by range lease \d+ \(runner a, host h, pid 7"):
        client.acquire_range_lease(run_id, 1, runner_id="b")
    with pytest.raises(ConflictError, match="already running"):  # the sync is leased to the run
        client.start_run(sync.id)
    with pytest.raises(NotFoundError, match="no key range 2"):
        client.acquire_range_lease(run_id, 2)

    renewed = client.range_heartbeat(held.id)
    assert renewed.lease_expires_at >= held.lease_expires_at
    progress = held.key_range.model_copy(update={"last_key": encode_value(80)})
    client.checkpoint_range(held.id, key_range=progress, stats=RunStats(rows_read=30, batches=3))
    other = client.acquire_range_lease(run_id, 0, runner_id="c").range_lease
    client.checkpoint_range(
        other.id,
        key_range=other.key_range.model_copy(update={"last_key": encode_value(50), "done": True}),
        stats=RunStats(rows_read=50, batches=5),
    )

    ranges = client.get_sync(sync.id).cursor_position.backfill.ranges
    assert [decode_value(r.last_key) for r in ranges] == [50, 80]
    assert [r.done for r in ranges] == [True, False]
    run = client.get_run(run_id)
    assert (run.status, run.rows_read, run.batches) == (RunStatus.RUNNING, 80, 8)
    leases = client.list_range_leases(run_id)
    assert [(r.range_index, r.status) for r in leases] == [
        (0, RangeLeaseStatus.COMPLETED),
        (1, RangeLeaseStatus.RUNNING),
    ]
    with pytest.raises(ConflictError, match="already loaded"):
        client.range_heartbeat(other.id)
    again = client.acquire_range_lease(run_id, 0)  # a loaded range: nothing to do
    assert again.range_lease.status is RangeLeaseStatus.COMPLETED
    moved = held.key_range.model_copy(update={"upto_key": encode_value(99)})
    with pytest.raises(ValidationFailedError, match="bounds"):
        client.checkpoint_range(held.id, key_range=moved, stats=RunStats())


def test_an_expired_range_lease_is_taken_over_and_the_old_holder_stops(client, service):
    sync = make_sync(client)
    run_id = _planned(client, sync.id)
    first = client.acquire_range_lease(run_id, 0, runner_id="first").range_lease
    client.checkpoint_range(
        first.id,
        key_range=first.key_range.model_copy(update={"last_key": encode_value(20)}),
        stats=RunStats(rows_read=20),
    )
    clock = service.clock
    later = clock() + dt.timedelta(seconds=service.lease_seconds + 1)
    service.clock = lambda: later
    try:
        taken = client.acquire_range_lease(run_id, 0, runner_id="second").range_lease
    finally:
        service.clock = clock

    assert decode_value(taken.key_range.last_key) == 20  # resumed after the last committed key
    with pytest.raises(ConflictError, match="expired.*took over"):
        client.range_heartbeat(first.id)
    with pytest.raises(ConflictError, match="expired"):
        client.checkpoint_range(first.id, key_range=first.key_range, stats=RunStats())
    client.range_heartbeat(taken.id)

    # the run cancelled: its range holders stop
    client.cancel_run_request(sync.id)
    with pytest.raises(ConflictError, match="cancelled"):
        client.range_heartbeat(taken.id)
    with pytest.raises(ConflictError, match="cancelled"):
        client.acquire_range_lease(run_id, 1)


def test_a_released_range_is_taken_at_once_and_resumed_after_its_last_checkpoint(client, service):
    sync = make_sync(client)
    run_id = _planned(client, sync.id)
    first = client.acquire_range_lease(run_id, 0, runner_id="first").range_lease
    client.checkpoint_range(
        first.id,
        key_range=first.key_range.model_copy(update={"last_key": encode_value(20)}),
        stats=RunStats(rows_read=20),
    )
    run_lease_until = client.get_run(run_id).lease_expires_at
    clock = service.clock
    later = clock() + dt.timedelta(seconds=5)  # well within the range lease's TTL
    service.clock = lambda: later
    try:
        released = client.release_range_lease(first.id, error="RuntimeError: source went away")
        assert client.get_run(run_id).lease_expires_at == run_lease_until  # nothing renewed
        again = client.release_range_lease(first.id, error="a second report")  # idempotent
        taken = client.acquire_range_lease(run_id, 0, runner_id="second").range_lease
    finally:
        service.clock = clock

    assert (released.status, released.error) == (
        RangeLeaseStatus.FAILED,
        "RuntimeError: source went away",
    )
    assert released.lease_expires_at is None
    assert again == released
    assert taken.status is RangeLeaseStatus.RUNNING and taken.runner_id == "second"
    assert decode_value(taken.key_range.last_key) == 20  # resumed after the last committed key
    leases = client.list_range_leases(run_id)
    assert [(r.id, r.status, r.error) for r in leases] == [
        (first.id, RangeLeaseStatus.FAILED, "RuntimeError: source went away"),
        (taken.id, RangeLeaseStatus.RUNNING, None),
    ]
    with pytest.raises(ConflictError, match="failed: RuntimeError: source went away"):
        client.range_heartbeat(first.id)  # the released holder cannot come back
    with pytest.raises(ConflictError, match=r"held by range lease \d+ \(runner second"):
        client.acquire_range_lease(run_id, 0, runner_id="third")

    # a loaded range stays loaded
    client.checkpoint_range(
        taken.id,
        key_range=taken.key_range.model_copy(update={"last_key": encode_value(50), "done": True}),
        stats=RunStats(rows_read=30),
    )
    loaded = client.release_range_lease(taken.id, error="too late")
    assert (loaded.status, loaded.error) == (RangeLeaseStatus.COMPLETED, None)
    assert client.get_sync(sync.id).cursor_position.backfill.ranges[0].done
    with pytest.raises(NotFoundError, match="range lease 999999 not found"):
        client.release_range_lease(999_999, error="x")


def test_a_release_needs_an_error(new_client, http: httpx.Client):
    client = new_client("raw")  # the organization of the raw client's key
    sync = make_sync(client)
    held = client.acquire_range_lease(_planned(client, sync.id), 0).range_lease
    with pytest.raises(ValidationFailedError) as empty:
        client.release_range_lease(held.id, error="")
    assert [d["field"] for d in empty.value.details] == ["error"]
    with pytest.raises(ValidationFailedError) as long:
        client.release_range_lease(held.id, error="x" * 10_001)
    assert [d["field"] for d in long.value.details] == ["error"]
    assert client.list_range_leases(held.run_id)[0].status is RangeLeaseStatus.RUNNING

    for body in ({}, {"error": ""}, {"error": None}):
        answer = http.post(f"/range_lease/{held.id}/release", json=body)
        assert answer.status_code == 422, answer.text
        assert [d["field"] for d in answer.json()["details"]] == ["error"], body
    released = http.post(f"/range_lease/{held.id}/release", json={"error": "NUL \x00 in it"})
    assert released.status_code == 200, released.text
    assert list(released.json()) == ["range_lease"]
    assert released.json()["range_lease"]["status"] == "failed"
    assert released.json()["range_lease"]["error"] == "NUL \ufffd in it"  # storable on PostgreSQL


def test_a_run_without_ranges_has_none_to_lease(client):
    sync = make_sync(client)
    lease = client.start_run(sync.id)
    with pytest.raises(ConflictError, match="no backfill in key ranges"):
        client.acquire_range_lease(lease.run.id, 0)
    assert client.list_range_leases(lease.run.id) == []
    with pytest.raises(NotFoundError):
        client.list_range_leases(999_999)


def test_another_organizations_key_reaches_no_range_lease(client, new_client):
    sync = make_sync(client)
    run_id = _planned(client, sync.id)
    held = client.acquire_range_lease(run_id, 0, runner_id="a").range_lease
    intruder = new_client()

    with pytest.raises(NotFoundError):
        intruder.acquire_range_lease(run_id, 1, runner_id="x")
    with pytest.raises(NotFoundError):
        intruder.list_range_leases(run_id)
    with pytest.raises(NotFoundError):
        intruder.range_heartbeat(held.id)
    with pytest.raises(NotFoundError):
        intruder.checkpoint_range(
            held.id,
            key_range=held.key_range.model_copy(update={"done": True}),
            stats=RunStats(rows_inserted=1),
        )
    with pytest.raises(NotFoundError, match=f"range lease {held.id} not found"):
        intruder.release_range_lease(held.id, error="not mine")

    # nothing of the owner's changed: range 1 is still free, range 0 still in progress
    leases = {lease.range_index: lease for lease in client.list_range_leases(run_id)}
    assert list(leases) == [0]
    assert leases[0].status == RangeLeaseStatus.RUNNING and not leases[0].key_range.done
    assert leases[0].error is None and leases[0].lease_expires_at is not None
    assert client.acquire_range_lease(run_id, 1, runner_id="b").range_lease.range_index == 1
