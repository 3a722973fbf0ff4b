"""Memory a run may use: where Arrow allocates, and how much DuckDB may hold."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

__all__ = ["duckdb_memory_limits", "machine_memory_bytes", "system_allocator"]

_MIB = 1024 * 1024
DUCKDB_MERGE_FLOOR = 256 * _MIB
"""The least DuckDB may hold while it deletes (updates) rows, whatever the machine."""
DUCKDB_MERGE_FRACTION = 4
"""DuckDB may hold a quarter of the machine's (or the container's) memory while it deletes."""


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


def duckdb_memory_limits(columns: int, *, machine_bytes: int | None = None) -> tuple[str, str]:
    """DuckDB's ``memory_limit`` while a run only appends, and once it deletes rows.

    * Appending pins a few blocks per column and otherwise fills DuckDB's cache with the blocks
      it wrote (kept up to the limit): 2 MiB a column, at least 32 MiB, keeps a load's memory
      flat whatever the table's size (60 columns need more than 32 MiB).
    * A delete (an upsert's matched keys, a swap) pins 16 KiB of delete markers for every
      2,048-row vector it touches: 10,000 updates spread over 10M rows pin 80 MB, which no
      spilling frees. That grows with the rows changed per commit, bounded by the table, so
      deleting gets a quarter of the machine's memory, at least 256 MiB: a cap, not a use;
      what DuckDB can spill (joins, aggregates) goes to its temporary directory beside the
      database file.
    """
    append = max(32, 2 * columns) * _MIB
    machine = machine_bytes if machine_bytes is not None else machine_memory_bytes()
    merge = max(DUCKDB_MERGE_FLOOR, machine // DUCKDB_MERGE_FRACTION, append)
    return f"{append // _MIB}MiB", f"{merge // _MIB}MiB"
