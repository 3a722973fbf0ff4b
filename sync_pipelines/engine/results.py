"""What a run reports: its progress after each committed batch, and its outcome."""

from __future__ import annotations

from dataclasses import dataclass

from sync_pipelines.contract.models import CursorPosition, RunStatus
from sync_pipelines.engine.deletes import DeleteCheck

__all__ = ["BatchProgress", "SyncResult", "WrittenColumn"]


@dataclass(frozen=True)
class BatchProgress:
    """Reported after each committed batch."""

    sync_id: int
    run_id: int
    batch: int
    batch_rows: int
    rows_read: int
    rows_written: int
    cursor: CursorPosition | None
    elapsed_seconds: float


@dataclass(frozen=True)
class WrittenColumn:
    """A destination column: name, database type (as the destination spells it), and the
    object field type if declared."""

    name: str
    type: str
    field_type: str | None = None


@dataclass(frozen=True)
class SyncResult:
    """The outcome of a completed run."""

    run_id: int
    sync_id: int
    status: RunStatus
    rows_read: int
    rows_inserted: int
    rows_updated: int
    """Rows present before whose values changed."""
    rows_deleted: int
    rows_unchanged: int
    """Rows read again with the values already written (not counted as updated)."""
    rows_written: int
    batches: int
    cursor_before: CursorPosition | None
    cursor_after: CursorPosition | None
    duration_seconds: float
    rows_per_second: float
    destination_table: str
    columns: tuple[WrittenColumn, ...] = ()
    destination_row_count: int | None = None
    """With ``count_rows``: the end customer's rows in the destination after the run."""
    source_row_count: int | None = None
    """With ``count_rows``: the source's rows up to ``cursor_after`` (all for full_overwrite)."""
    table_row_count: int | None = None
    """With ``count_rows``: every end customer's rows in the destination table after the run."""
    delete_check: DeleteCheck | None = None
    """What the run's delete check compared and deleted (``None``: no check this run)."""
