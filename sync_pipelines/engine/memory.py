"""Memory a run may use: where Arrow allocates, and how much DuckDB may hold."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

__all__ = ["duckdb_memory_limit", "machine_memory_bytes", "system_allocator"]

_MIB = 1024 * 1024
DUCKDB_VECTOR_ROWS = 2048
DUCKDB_DELETE_MARKER_BYTES = 16 * 1024
"""What a delete pins in each vector it touches (a transaction id per row)."""
DUCKDB_DELETE_FLOOR = 256 * _MIB
"""The cap on DuckDB's limit for deletes is at least this, whatever the machine."""
DUCKDB_DELETE_FRACTION = 4
"""... and otherwise a quarter of the machine's (or the container's) memory."""


@contextmanager
def system_allocator() -> Iterator[None]:
    """Arrow allocates from the C library's ``malloc`` while the block runs.

    A run builds each batch in its reading thread and frees it in the writing one. Arrow's
    default allocator (mimalloc) holds on to pages another thread freed: 40 MB resident at the
    peak of a 1M-row load while 3 MB were in use; with ``malloc`` the run peaks 30 MB lower,
    as fast. Arrays keep the allocator they came from, so the switch is safe at any time.
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def machine_memory_bytes() -> int:
    """The memory this process can have: the machine's, or its cgroup's limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def duckdb_memory_limit(
    columns: int,
    *,
    deleted_rows: int = 0,
    table_rows: int = 0,
    machine_bytes: int | None = None,
) -> str:
    """DuckDB's ``memory_limit`` for a writer of ``columns`` columns that has deleted
    ``deleted_rows`` rows of a ``table_rows``-row table so far (updates delete, then insert).

    * Appending pins a few blocks per column and otherwise fills DuckDB's cache with the blocks
      it wrote (kept up to the limit): 2 MiB a column, at least 32 MiB, keeps a load's memory
      flat whatever the table's size (60 columns need more than 32 MiB).
    * A delete pins 16 KiB of markers for every 2,048-row vector it touches, until the database
      closes, and no spilling frees them: 10,000 updates spread over 10M rows pin 80 MB. The
      limit grows by what the deletes so far can pin (each deleted row in its own vector, at
      most every vector of the table), a quarter more for headroom, so the cache stays small;
      never beyond a quarter of the machine's (or the container's) memory, but at least
      256 MiB. What DuckDB can spill (joins, aggregates) goes to its temporary directory.
    """
    append = max(32, 2 * columns) * _MIB
    if not deleted_rows:
        return f"{append // _MIB}MiB"
    vectors = min(deleted_rows, table_rows // DUCKDB_VECTOR_ROWS + 1)
    markers = vectors * DUCKDB_DELETE_MARKER_BYTES
    machine = machine_bytes if machine_bytes is not None else machine_memory_bytes()
    cap = max(DUCKDB_DELETE_FLOOR, machine // DUCKDB_DELETE_FRACTION)
    wanted = append + markers + markers // 4
    return f"{-(-min(wanted, max(cap, append)) // _MIB)}MiB"
