"""Memory is bounded by the batch, not the table: ten times the rows, about the same peak."""

from __future__ import annotations

import tracemalloc

import pyarrow as pa
import pytest

from sync_pipelines.engine import BatchProgress, run_sync
from sync_pipelines_tests.engine.conftest import KINDS, Scenario, event, events_table

BATCH = 1_000


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def peak_memory(scenario: Scenario, customer: str, rows: int) -> tuple[int, int, list[int]]:
    """Sync ``rows`` rows; the Python heap's peak, Arrow's largest allocation, batch sizes."""
    table = f"events_{customer}"
    scenario.source.create(
        events_table(scenario.source, table),
        [event(i, i // 7, name="x" * 40) for i in range(rows)],
    )
    sync = scenario.make_sync(customer=customer, table=table)
    batch_rows: list[int] = []
    arrow_bytes: list[int] = []

    def progress(report: BatchProgress) -> None:
        batch_rows.append(report.batch_rows)
        arrow_bytes.append(pa.total_allocated_bytes())

    tracemalloc.start()
    try:
        run_sync(sync.id, scenario.client, batch_size=BATCH, on_progress=progress)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, max(arrow_bytes), batch_rows


def test_ten_times_the_table_does_not_raise_peak_memory(client, databases, kind: str) -> None:
    scenario = Scenario(client, databases(kind, "source"), databases("duckdb", "destination"))
    scenario.make_object()

    small_peak, small_arrow, small_batches = peak_memory(scenario, "small", BATCH)
    large_peak, large_arrow, large_batches = peak_memory(scenario, "large", 10 * BATCH)

    assert small_batches == [BATCH]
    assert large_batches == [BATCH] * 10
    # a reader that held the table would need ~10x; allow generous noise for one batch
    assert large_peak < 2.5 * small_peak + 2_000_000, (small_peak, large_peak)
    assert large_arrow < 3 * small_arrow + 4_000_000, (small_arrow, large_arrow)
    assert len(scenario.rows()) == 11 * BATCH
