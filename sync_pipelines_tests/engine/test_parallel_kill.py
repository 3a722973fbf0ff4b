"""A ``kill -9`` of the runner process during a parallel backfill: once its lease expires, the
next run resumes every key range after its last committed chunk, and the rows end exact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from sync_pipelines.common.typed_values import decode_value
from sync_pipelines.engine import run_sync
from sync_pipelines_tests.engine.conftest import Scenario, at, event, events_table, pair_id
from sync_pipelines_tests.engine.test_backfill import source_rows
from sync_pipelines_tests.engine.test_null_cursor import cursor_time, expected_rows

ROWS = 3000

# The CLI, each chunk slowed down so that the kill lands mid-backfill.
SLOW_CLI = """
import sys, time
import sync_pipelines.engine.parallel as parallel
from sync_pipelines.cli import main

map_batch = parallel.map_batch
def slow(batch, plan):
    time.sleep(0.05)
    return map_batch(batch, plan)
parallel.map_batch = slow
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "scenario", [("postgres", "postgres"), ("sqlite", "sqlite")], ids=pair_id, indirect=True
)
def test_a_killed_parallel_backfill_resumes_each_range_after_its_last_chunk(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_PIPELINES_LEASE_TTL_SECONDS", "6")
    rows = [event(i, 100_000 - i) for i in range(1, ROWS + 1)]
    source = scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    command = [sys.executable, "-c", SLOW_CLI, "run", str(sync.id), "--workers", "3"]
    runner = subprocess.Popen(
        [*command, "--batch-size", "20"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # until at least two ranges checkpointed a chunk
            assert runner.poll() is None, runner.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint of two ranges"
            position = scenario.client.get_sync(sync.id).cursor_position
            ranges = position.backfill.ranges if position and position.backfill else None
            if ranges and sum(r.last_key is not None for r in ranges) >= 2:
                break
            time.sleep(0.1)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        runner.stderr.close()
    assert runner.returncode == -signal.SIGKILL

    killed = scenario.client.get_sync(sync.id).cursor_position.backfill
    assert killed.ranges is not None and len(killed.ranges) == 3
    committed = 0
    for key_range in killed.ranges:
        start = decode_value(key_range.after_key) or 0
        last = decode_value(key_range.last_key)
        committed += 0 if last is None else last - start
    in_destination = {r["id"] for r in scenario.rows()}
    assert len(in_destination) >= committed  # committed before checkpointed
    assert len(in_destination) < ROWS

    # the lease of the killed run holds for its TTL, then this run takes over
    time.sleep(6.5)
    resumed = run_sync(sync.id, scenario.client, batch_size=20, workers=3)

    assert scenario.rows() == expected_rows(rows)
    assert scenario.rows() == source_rows(scenario, source)
    # every range resumed after its last checkpointed key (a chunk committed without its
    # checkpoint is read again, and the upsert absorbs it)
    assert resumed.rows_read == ROWS - committed
    assert resumed.cursor_before.backfill == killed
    assert cursor_time(resumed.cursor_after) == at(100_000 - 1)
    killed_run = next(r for r in scenario.client.list_runs(sync.id) if r.id != resumed.run_id)
    assert "runner stopped reporting" in (killed_run.error or "")
