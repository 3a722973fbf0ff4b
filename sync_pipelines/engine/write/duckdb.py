"""DuckDB's fast path: statements scan each Arrow batch in place, no copy, no staging table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from sync_pipelines.engine.memory import duckdb_memory_limit
from sync_pipelines.engine.write.batch_writer import BatchWriter, WriteCounts

__all__ = ["DuckDBWriter"]

ROW_GROUP_ROWS = 122_880
"""DuckDB's row group size: the unit its storage writes and compresses."""
_BATCH = "sp_pipelines_batch"
"""The name statements read the batch by (a local variable of :meth:`DuckDBWriter._run`)."""


def _settings(memory_limit: str) -> dict[str, str]:
    """What the writer sets on the database instance while it writes (restored at close).

    * ``threads``: one less than the machine has, since the reading thread needs one.
    * ``checkpoint_threshold``: large, so that a commit does not checkpoint: a checkpoint at
      every commit rewrote the row groups each time (3 s of a 4.3 s load of 1M rows); the one
      checkpoint left happens when the database closes at the end of the run.
    * ``memory_limit``: DuckDB otherwise keeps every block it wrote cached (up to 80% of RAM);
      small while the run appends, raised before each delete by what the deletes pin (see
      :func:`~sync_pipelines.engine.memory.duckdb_memory_limit`).
    """
    threads = max(1, (os.cpu_count() or 2) - 1)
    return {"threads": str(threads), "checkpoint_threshold": "1GiB", "memory_limit": memory_limit}


class DuckDBWriter(BatchWriter):
    """Statements read the batch straight from Arrow; an upsert deletes matched keys, inserts all.

    The batch is found by name through DuckDB's replacement scan, not registered as a view: a
    view dropped inside a transaction is kept, with the batch it holds, until the commit
    (10 batches of 50,000 rows held 150 MB).

    ``DELETE`` + ``INSERT`` rather than ``INSERT ... ON CONFLICT DO UPDATE``: DuckDB updates rows
    in place, and the checkpoint then rewrites every row group an update touched (10,000
    scattered updates into 1M rows: 1.3 s, 375 MB); deleted rows are only marked and the new
    versions append to the end (0.3 s, 175 MB). Only rows whose values changed are deleted
    and inserted again; unchanged rows are not written. Telling them apart reads the value
    columns of the customer's rows the batch's key range touches (10,000 scattered updates
    into 1M rows of ~100 bytes: ~0.5 s and ~60 MB more than deleting every matched key; a
    re-read of the last keys is as cheap as before). Tables have no primary key index (see
    ``write._UNINDEXED_DIALECTS``): the delete keeps keys unique across batches, and a batch, or
    a swap's staged rows, holding a key twice is refused (as on every writer).

    Commits gather at least four row groups: when a transaction appends that many rows, DuckDB
    merges the row groups it already wrote into the table as they are, and the checkpoint at
    close finds them done (1M rows in commits of 500,000: 0.03 s at close; in commits of
    250,000: 0.8 s, and growing with the table).
    """

    min_commit_rows = 4 * ROW_GROUP_ROWS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch: pa.RecordBatch | None = None
        self._deleted_rows = 0  # an upper bound: the staged rows of every delete so far
        self._table_rows: int | None = None
        self._memory_limit = duckdb_memory_limit(len(self.table.columns))
        settings = _settings(self._memory_limit)
        self._found = {name: self._setting(name) for name in settings}
        for name, value in settings.items():
            self._native.execute(f"SET {name} = '{value}'")

    @property
    def _native(self) -> Any:
        return self.connection.connection.driver_connection

    def _setting(self, name: str) -> str:
        return str(self._native.execute("SELECT current_setting(?)", [name]).fetchone()[0])

    def _restore_settings(self) -> None:
        """The settings as found: reset (exact for defaults), else set as they were shown.

        ``memory_limit`` is always set again: ``RESET`` shows the default but leaves the
        buffer pool at the last limit set.
        """
        for name, value in self._found.items():
            self._native.execute(f"RESET {name}")
            if name == "memory_limit" or self._setting(name) != value:
                self._native.execute(f"SET {name} = '{value}'")

    def _run(self, statement: sa.Executable) -> Any:
        """Execute on the DuckDB connection, where the statement finds the batch by name."""
        compiled = statement.compile(dialect=self.connection.dialect)
        params = [compiled.params[name] for name in compiled.positiontup or ()]
        sp_pipelines_batch = self._batch  # noqa: F841 - read by the statement, as _BATCH
        return self._native.execute(str(compiled), params)

    def _execute(self, statement: sa.Executable) -> int:
        rows = self._run(statement).fetchall()
        return int(rows[0][0]) if rows else 0

    def _fetch_one(self, query: sa.Select) -> Sequence[Any] | None:
        return self._run(query).fetchone()

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        # DuckDB reads every Arrow type the mapping produces, time zones included, but for
        # 256-bit decimals: numbers are cast to the column's DECIMAL (at most 38 digits)
        return self._fitted(batch)

    def _before_batch(self, batch: pa.RecordBatch) -> None:
        pass

    def _stage_batch(self, batch: pa.RecordBatch) -> sa.FromClause:
        self._batch = batch
        return sa.table(_BATCH, *[sa.column(c) for c in batch.schema.names])

    def _release(self, stage: sa.FromClause) -> None:
        self._batch = None

    def _load(self, stage: sa.Table, batch: pa.RecordBatch) -> None:
        view = self._stage_batch(batch)
        try:
            columns = batch.schema.names
            self._execute(
                stage.insert().from_select(columns, sa.select(*[view.c[c] for c in columns]))
            )
        finally:
            self._release(view)

    def _before_delete(self, rows: int) -> None:
        """Raise the memory limit by what deleting up to ``rows`` more rows can pin."""
        if self._table_rows is None:
            row = self._fetch_one(sa.select(sa.func.count()).select_from(self.table))
            self._table_rows = int(row[0]) if row else 0
        self._deleted_rows += rows
        limit = duckdb_memory_limit(
            len(self.table.columns), deleted_rows=self._deleted_rows, table_rows=self._table_rows
        )
        if limit != self._memory_limit:
            self._native.execute(f"SET memory_limit = '{limit}'")
            self._memory_limit = limit

    def _merge(self, stage: sa.FromClause, columns: Sequence[str], matched: int) -> int:
        """Delete this customer's rows whose values changed (a join on the key, hashing the
        batch), then insert the staged rows whose keys are not present (any more).

        The present keys are found by a semi-join hashing the batch, so that no statement
        builds a hash table of the destination table.
        """
        assert self._batch is not None
        self._before_delete(self._batch.num_rows)
        key = self.keys[-1]
        changed = self._values_differ(stage, columns)
        updated = 0
        if changed is not None:
            (staged_key,) = self._selected(stage, [key])
            updated = self._execute(
                self.table.delete().where(
                    self._customer_rows(), self.table.c[key] == staged_key, changed
                )
            )
        staged_keys = sa.select(*self._selected(stage, [key])).scalar_subquery()
        present = (
            sa.select(self.table.c[key])
            .where(self._customer_rows(), self.table.c[key].in_(staged_keys))
            .scalar_subquery()
        )
        (new_key,) = self._selected(stage, [key])
        select = sa.select(*self._selected(stage, columns)).where(new_key.not_in(present))
        self._execute(self.table.insert().from_select(list(columns), select))
        return updated

    def bulk_load_batch(self, batch: pa.RecordBatch) -> WriteCounts:
        """Insert straight from the Arrow batch, no delete: the end customer held no rows when
        the run began, so every key present is one this run wrote.

        A batch holding a key the run wrote already (a row that changed while the run read,
        so its cursor moved past where the run is) is upserted instead; such keys are found by
        the staged keys' range (one probe of DuckDB's min/max indexes; the run reads in keyset
        order, so ranges rarely overlap) and, when it overlaps, a semi-join.
        """
        if self.keys:
            self._refuse_repeated_keys(batch)
        prepared = self._prepare(batch)
        self._begin()
        stage = self._stage_batch(prepared)
        try:
            if self.keys and self._may_conflict(stage) and self._any_present(stage):
                present = True
            else:
                present = False
                self._insert_from(stage, prepared.schema.names)
        finally:
            self._release(stage)
        return self.upsert(batch) if present else WriteCounts(inserted=batch.num_rows)

    def _any_present(self, stage: sa.FromClause) -> bool:
        """Whether one of the staged keys is in the table already."""
        key = self.keys[-1]
        (staged,) = self._selected(stage, [key])
        keys = sa.select(staged).scalar_subquery()
        present = (
            sa.select(self.table.c[key])
            .where(self._customer_rows(), self.table.c[key].in_(keys))
            .limit(1)
        )
        return self._fetch_one(present) is not None

    def swap(self) -> WriteCounts:
        """Raise the memory limit by what deleting the end customer's rows pins, then swap."""
        customer_rows = self._fetch_one(
            sa.select(sa.func.count()).select_from(self.table).where(self._customer_rows())
        )
        self._before_delete(int(customer_rows[0]) if customer_rows else 0)
        return super().swap()

    def close(self) -> None:
        """Roll back anything uncommitted, restore the instance's settings, release."""
        try:
            if self._transaction is not None:
                self._transaction.rollback()
                self._transaction = None
            self._restore_settings()
        finally:
            self.connection.close()
