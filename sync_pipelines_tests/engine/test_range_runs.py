"""One sync's backfill split into key-range runs, each under its own range lease: exact rows,
a live holder's range is never taken, a failed holder's range is released and resumed by another
runner at once after its last committed chunk, a silent holder's once its lease expires."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from sync_pipelines.common.typed_values import decode_value
from sync_pipelines.contract.errors import ConflictError, ServerError
from sync_pipelines.contract.models import RangeLeaseStatus, RunStatus
from sync_pipelines.engine import SyncRunError, parallel, run_sync
from sync_pipelines.engine.ranged import (
    finish_range_backfill,
    load_range,
    plan_range_backfill,
)
from sync_pipelines_tests.engine.conftest import Scenario, at, event, events_table, pair_id
from sync_pipelines_tests.engine.test_backfill import source_rows
from sync_pipelines_tests.engine.test_null_cursor import cursor_time, expected_rows

ROUTES = [("postgres", "postgres"), ("sqlite", "duckdb")]


@pytest.mark.parametrize("scenario", ROUTES, ids=pair_id, indirect=True)
def test_key_range_runs_load_exactly_and_incremental_runs_continue(scenario: Scenario) -> None:
    rows = [event(i, 1000 - i) for i in range(1, 61)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()

    plan = plan_range_backfill(sync.id, scenario.client, ranges=3)

    assert (plan.ranges, plan.pending, plan.result) == (3, (0, 1, 2), None)
    assert scenario.client.get_run(plan.run_id).status is RunStatus.RUNNING
    with pytest.raises(ConflictError, match="already running"):  # the sync is leased meanwhile
        run_sync(sync.id, scenario.client)
    loaded: list[Any] = []

    def runner(index: int) -> None:  # each range on a runner of its own, at the same time
        loaded.append(load_range(scenario.client, plan.run_id, index, batch_size=7))

    if scenario.destination.kind == "duckdb":  # one writer at a time: one range after another
        for index in plan.pending:
            runner(index)
    threads = [threading.Thread(target=runner, args=(i,)) for i in plan.pending if not loaded]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.range_index for r in loaded) == [0, 1, 2]
    assert sum(r.rows_read for r in loaded) == 60
    # a range runner started again finds its range loaded
    again = load_range(scenario.client, plan.run_id, 1, batch_size=7)
    assert (again.status, again.rows_read) == (RangeLeaseStatus.COMPLETED, 0)

    stats = finish_range_backfill(scenario.client, plan.run_id)

    assert stats.rows_read == 60
    assert scenario.rows() == expected_rows(rows)
    finished = scenario.client.get_run(plan.run_id)
    assert finished.status is RunStatus.COMPLETED and finished.rows_read == 60
    assert cursor_time(finished.cursor_after) == at(999)
    leases = scenario.client.list_range_leases(plan.run_id)
    assert {lease.range_index for lease in leases} == {0, 1, 2}
    assert all(lease.status is RangeLeaseStatus.COMPLETED for lease in leases)
    assert sum(lease.rows_read for lease in leases) == 60

    scenario.source.insert(source, [event(61, 2000)])
    incremental = run_sync(sync.id, scenario.client)
    assert incremental.rows_inserted == 1
    assert scenario.rows() == source_rows(scenario, source)


def _crash_on_the_third_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next range runner fails on its third batch (after two committed chunks)."""
    map_batch = parallel.map_batch
    calls = {"n": 0}

    def crash_on_the_third(batch: Any, plan: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("range runner crashed\nwith a traceback-like second line")
        return map_batch(batch, plan)

    monkeypatch.setattr(parallel, "map_batch", crash_on_the_third)


def _finish_exactly(scenario: Scenario, run_id: int, rows: list, source: Any) -> None:
    finish_range_backfill(scenario.client, run_id)
    assert scenario.rows() == expected_rows(rows)
    assert scenario.rows() == source_rows(scenario, source)
    assert scenario.client.get_run(run_id).rows_read == len(rows)


@pytest.mark.parametrize("scenario", [("postgres", "postgres")], ids=pair_id, indirect=True)
def test_a_failed_holder_releases_its_range_and_another_resumes_it_at_once(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario.client.service.lease_seconds = 600  # the TTL: no waiting for it in this test
    rows = [event(i, 1000 - i) for i in range(1, 41)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    plan = plan_range_backfill(sync.id, scenario.client, ranges=2)
    with monkeypatch.context() as patched, pytest.raises(SyncRunError) as failed:
        _crash_on_the_third_batch(patched)
        load_range(scenario.client, plan.run_id, 0, batch_size=5, runner_id="first")
    assert str(failed.value) == (  # one line, naming the sync, the run and the range
        f"sync {sync.id} run {plan.run_id}: key range 0 failed: RuntimeError: range runner crashed"
    )

    # two chunks committed (keys 1..10) before the crash; the holder released its range
    key_range = scenario.client.get_sync(sync.id).cursor_position.backfill.ranges[0]
    assert decode_value(key_range.last_key) == 10 and not key_range.done
    (first,) = scenario.client.list_range_leases(plan.run_id)
    assert (first.runner_id, first.status, first.error) == (
        "first",
        RangeLeaseStatus.FAILED,
        str(failed.value),
    )
    assert first.lease_expires_at is None
    # at once (the TTL is 10 minutes), another runner resumes after key 10
    resumed = load_range(scenario.client, plan.run_id, 0, batch_size=5, runner_id="second")
    assert resumed.rows_read == 10  # keys 11..20 only, of the range's 20
    assert load_range(scenario.client, plan.run_id, 1, batch_size=5).rows_read == 20

    _finish_exactly(scenario, plan.run_id, rows, source)
    leases = scenario.client.list_range_leases(plan.run_id)
    assert [(r.range_index, r.runner_id, r.status) for r in leases][:2] == [
        (0, "first", RangeLeaseStatus.FAILED),
        (0, "second", RangeLeaseStatus.COMPLETED),
    ]


@pytest.mark.parametrize("scenario", [("postgres", "postgres")], ids=pair_id, indirect=True)
def test_a_live_holders_range_is_not_taken_and_a_silent_ones_is_taken_over_after_the_ttl(
    scenario: Scenario,
) -> None:
    scenario.client.service.lease_seconds = 3  # the TTL of run and range leases
    rows = [event(i, 1000 - i) for i in range(1, 41)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    plan = plan_range_backfill(sync.id, scenario.client, ranges=2)

    # a holder that stops reporting without releasing its range (kill -9, a lost pod)
    scenario.client.acquire_range_lease(plan.run_id, 1, runner_id="killed")
    with pytest.raises(ConflictError, match=r"held by range lease \d+ \(runner killed"):
        load_range(scenario.client, plan.run_id, 1, batch_size=5, runner_id="second")

    # a live holder keeps its range however long it takes
    live = scenario.client.acquire_range_lease(plan.run_id, 0, runner_id="live")
    for _ in range(4):
        time.sleep(1)
        scenario.client.range_heartbeat(live.range_lease.id)
    with pytest.raises(ConflictError, match="runner live"):
        scenario.client.acquire_range_lease(plan.run_id, 0, runner_id="other")

    # the silent holder's lease lapsed meanwhile (past the TTL): another runner takes it over
    taken = load_range(scenario.client, plan.run_id, 1, batch_size=5, runner_id="second")
    assert taken.rows_read == 20
    killed = next(
        r for r in scenario.client.list_range_leases(plan.run_id) if r.runner_id == "killed"
    )
    assert killed.status is RangeLeaseStatus.EXPIRED and "took over" in killed.error
    # the live holder's range lease is taken over by nobody
    scenario.client.range_heartbeat(live.range_lease.id)
    with pytest.raises(ConflictError, match="runner live"):
        load_range(scenario.client, plan.run_id, 0, batch_size=5)
    with pytest.raises(SyncRunError, match=r"key ranges \[0\] are not loaded"):
        finish_range_backfill(scenario.client, plan.run_id)
    time.sleep(3.5)  # the "live" holder stops too: its range is resumed from its start
    assert load_range(scenario.client, plan.run_id, 0, batch_size=5).rows_read == 20

    _finish_exactly(scenario, plan.run_id, rows, source)


@pytest.mark.parametrize("scenario", [("postgres", "postgres")], ids=pair_id, indirect=True)
def test_a_holder_that_cannot_release_raises_its_failure_and_its_range_is_resumed_after_the_ttl(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scenario.client.service.lease_seconds = 3
    rows = [event(i, 1000 - i) for i in range(1, 41)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    plan = plan_range_backfill(sync.id, scenario.client, ranges=2)

    def unreachable(range_lease_id: int, *, error: str) -> None:
        raise ServerError("the sync API is unreachable")

    with monkeypatch.context() as patched, pytest.raises(SyncRunError) as failed:
        _crash_on_the_third_batch(patched)
        patched.setattr(scenario.client, "release_range_lease", unreachable)
        load_range(scenario.client, plan.run_id, 0, batch_size=5, runner_id="first")

    assert str(failed.value).endswith("key range 0 failed: RuntimeError: range runner crashed")
    assert "could not release it after the failure" in caplog.text
    assert "the sync API is unreachable" in caplog.text
    with pytest.raises(ConflictError, match=r"held by range lease \d+ \(runner first"):
        load_range(scenario.client, plan.run_id, 0, batch_size=5, runner_id="second")
    time.sleep(3.5)  # past the TTL: another runner resumes after the last committed chunk
    resumed = load_range(scenario.client, plan.run_id, 0, batch_size=5, runner_id="second")
    assert resumed.rows_read == 10  # keys 11..20 only
    first = next(
        r for r in scenario.client.list_range_leases(plan.run_id) if r.runner_id == "first"
    )
    assert first.status is RangeLeaseStatus.EXPIRED and "took over" in first.error
    assert load_range(scenario.client, plan.run_id, 1, batch_size=5).rows_read == 20

    _finish_exactly(scenario, plan.run_id, rows, source)


@pytest.mark.parametrize("scenario", [("sqlite", "duckdb")], ids=pair_id, indirect=True)
def test_a_run_that_is_no_backfill_runs_whole(scenario: Scenario) -> None:
    rows = [event(i, i) for i in range(1, 6)]
    scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    run_sync(sync.id, scenario.client)

    plan = plan_range_backfill(sync.id, scenario.client, ranges=3)

    assert (plan.ranges, plan.pending) == (0, ())
    assert plan.result is not None and plan.result.status is RunStatus.COMPLETED
    assert scenario.rows() == expected_rows(rows)
