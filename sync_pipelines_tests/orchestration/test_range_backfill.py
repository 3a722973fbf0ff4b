"""``range_backfill_job``: one sync's first load fanned out into key-range steps (dynamic
outputs), each under its own range lease, run by Dagster's in-process executor."""

from __future__ import annotations

from sync_pipelines.contract.models import RangeLeaseStatus, RunStatus
from sync_pipelines_tests.orchestration.conftest import build_defs, event_rows


def test_the_range_backfill_job_loads_a_table_exactly_in_key_ranges(setup, instance):
    defs = build_defs(setup, {"acme": "sync_frequency: 1h"})
    setup.insert("acme", event_rows(11))
    sync_id = setup.sync_id("acme")
    job = defs.get_job_def("range_backfill_job")
    config = {
        "ops": {
            "plan_range_backfill_op": {"config": {"sync_id": sync_id, "ranges": 3, "batch_size": 2}}
        }
    }

    result = job.execute_in_process(run_config=config, instance=instance)

    assert result.success
    assert [row[1] for row in setup.warehouse_rows("acme")] == list(range(1, 12))
    loaded = result.output_for_node("load_range_op")
    assert sorted(loaded) == ["range_0", "range_1", "range_2"]
    assert sum(step["rows_read"] for step in loaded.values()) == 11
    assert result.output_for_node("finish_range_backfill_op")["rows_read"] == 11
    (run,) = setup.client.list_runs(sync_id)
    assert run.status is RunStatus.COMPLETED and run.rows_read == 11
    assert run.cursor_after.backfill is None and run.cursor_after.cursor is not None
    leases = setup.client.list_range_leases(run.id)
    assert sorted(lease.range_index for lease in leases) == [0, 1, 2]
    assert all(lease.status is RangeLeaseStatus.COMPLETED for lease in leases)
    assert all(lease.runner_id.startswith("dagster:") for lease in leases)

    # no backfill left: the next launch runs the sync whole (incremental), no range steps
    setup.insert("acme", event_rows(2, first_id=12, minute=30))
    again = job.execute_in_process(run_config=config, instance=instance)

    assert again.success
    assert [row[1] for row in setup.warehouse_rows("acme")] == list(range(1, 14))
    assert setup.client.list_runs(sync_id)[0].status is RunStatus.COMPLETED
    assert len(setup.client.list_runs(sync_id)) == 2


def test_a_failed_range_step_is_resumed_by_the_next_launch(setup, instance, monkeypatch):
    import time

    from sync_pipelines.engine import parallel
    from sync_pipelines.engine.write.duckdb import DuckDBWriter

    monkeypatch.setenv("SYNC_PIPELINES_LEASE_TTL_SECONDS", "3")
    defs = build_defs(setup, {"acme": "sync_frequency: 1h"})
    setup.insert("acme", event_rows(12))
    sync_id = setup.sync_id("acme")
    job = defs.get_job_def("range_backfill_job")
    config = {
        "ops": {
            "plan_range_backfill_op": {"config": {"sync_id": sync_id, "ranges": 2, "batch_size": 2}}
        }
    }
    map_batch = parallel.map_batch

    def crash_at_key_11(batch, plan):  # the second range's third chunk
        if 11 in batch.column(batch.schema.get_field_index("id")).to_pylist():
            raise RuntimeError("step crashed")
        return map_batch(batch, plan)

    monkeypatch.setattr(parallel, "map_batch", crash_at_key_11)
    # DuckDB commits every 4 row groups: here every chunk, to see the range's progress
    monkeypatch.setattr(DuckDBWriter, "min_commit_rows", 0)
    failed = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
    monkeypatch.setattr(parallel, "map_batch", map_batch)

    assert not failed.success
    (first,) = setup.client.list_runs(sync_id)
    assert first.status is RunStatus.RUNNING  # its lease lapses: no step reports any more
    ranges = setup.client.get_sync(sync_id).cursor_position.backfill.ranges
    assert [r.done for r in ranges] == [True, False]
    assert ranges[1].last_key is not None  # the second range committed chunks before the crash

    time.sleep(3.5)
    resumed = job.execute_in_process(run_config=config, instance=instance)

    assert resumed.success
    assert [row[1] for row in setup.warehouse_rows("acme")] == list(range(1, 13))
    assert sorted(resumed.output_for_node("load_range_op")) == ["range_1"]  # only the rest
    runs = setup.client.list_runs(sync_id)
    assert [r.status for r in runs] == [RunStatus.COMPLETED, RunStatus.FAILED]
    assert "runner stopped reporting" in runs[1].error
    assert runs[0].rows_read < 12  # the loaded range and committed chunks are not read again
