"""The portable writer: stage, upsert, append or swap a mapped batch into the destination table.

Every batch goes through a staging relation and one set-based statement keyed on
``(end_customer_id_field, primary key)``, in one transaction:

* ``upsert`` (incremental_update): insert new keys, update existing ones;
* ``append`` (incremental_append): insert keys not yet present (a re-read after a crash adds
  nothing twice);
* ``stage`` + ``swap`` (full_overwrite, full refresh): stage every batch, then in one transaction
  delete that end customer's rows and insert the staged ones; other customers' rows stay.

:class:`BatchWriter` is the portable path (a temporary table filled by executemany); the
dialect modules of this package subclass it with their fast path (DuckDB scans Arrow,
PostgreSQL COPYs), and :mod:`~sync_pipelines.engine.write.registry` picks one by dialect.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from sync_pipelines.engine import field_types
from sync_pipelines.engine.errors import SourceSchemaError
from sync_pipelines.engine.plan import SyncPlan

__all__ = ["BatchWriter", "WriteCounts"]

_names = itertools.count(1)
_RANGED_KEY_TYPES = (sa.Integer, sa.Numeric, sa.Date, sa.DateTime)


@dataclass(frozen=True)
class WriteCounts:
    """Rows a write inserted, updated (values changed), found unchanged and (swap) deleted."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    """Rows whose key was present and that left it as it was (the same values; for an
    append, any present key): not written, not counted as updated."""

    @property
    def written(self) -> int:
        """Rows inserted or updated."""
        return self.inserted + self.updated

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.deleted + other.deleted,
            self.unchanged + other.unchanged,
        )


def _stage_type(column_type: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """A staging column's type: JSON is staged as the text it already is (no re-encoding)."""
    if isinstance(column_type, sa.JSON):
        return sa.Text()
    return column_type


class BatchWriter:
    """Writes batches into one destination table over one connection held for the run.

    The portable path: a temporary table filled with executemany, then one set-based statement.
    Dialects override the hooks (:meth:`_prepare`, :meth:`_stage_table`, :meth:`_load`,
    :meth:`_stage_batch`, :meth:`_release`, :meth:`_selected`, :meth:`_upsert_from`,
    :meth:`_merge`, :meth:`_execute`, :meth:`_fetch_one`) with their fast paths.

    Writes accumulate in one transaction until :meth:`commit`; ``min_commit_rows`` is the
    smallest commit worth making on the dialect (the run commits at least that many rows).
    """

    min_commit_rows = 0

    def __init__(self, engine: sa.Engine, table: sa.Table, plan: SyncPlan) -> None:
        self.engine = engine
        self.table = table
        self.customer_field = plan.customer_field
        self.customer_id = plan.customer_id
        key = plan.destination_primary_key
        self.keys: list[str] = [plan.customer_field, key] if key else []
        self.label = plan.destination_label
        self.connection = engine.connect()
        self._batch_stage: sa.Table | None = None
        self._batch_schema: pa.Schema | None = None
        self._swap_stage: sa.Table | None = None
        self._swap_rows = 0
        self._transaction: sa.RootTransaction | None = None

    # -- hooks --

    def _fitted(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Numbers cast exactly to the table's sized decimals (a value that does not fit fails
        the run, naming the column: never rounded)."""
        return field_types.fit_numbers(batch, self.table, self.table.fullname)

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Adapt a batch to what the driver accepts (here: timestamps as UTC wall clock)."""
        batch = self._fitted(batch)
        arrays = []
        for column in batch.columns:
            if pa.types.is_timestamp(column.type) and column.type.tz is not None:
                column = column.cast(pa.timestamp("us", "UTC")).cast(pa.timestamp("us"))
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    def _stage_table(self, schema: pa.Schema, *, per_batch: bool) -> sa.Table:
        """A new temporary table for batches of ``schema``, with the target's column types."""
        name = f"sp_stage_{next(_names)}"
        table = sa.Table(
            name,
            sa.MetaData(),
            *[sa.Column(c, _stage_type(self.table.c[c].type)) for c in schema.names],
            prefixes=["TEMPORARY"],
        )
        self._create(table)
        return table

    def _create(self, table: sa.Table) -> None:
        """Create a (staging) table, inside the open transaction if there is one."""
        if self.connection.in_transaction():
            table.create(self.connection)
        else:
            with self.connection.begin():
                table.create(self.connection)

    def _load(self, stage: sa.Table, batch: pa.RecordBatch) -> None:
        """Put a batch's rows into a staging table (inside the caller's transaction)."""
        rows = batch.to_pylist()
        if rows:
            self.connection.execute(stage.insert(), rows)

    def _before_batch(self, batch: pa.RecordBatch) -> None:
        """Create the per-batch staging table once (again when the batches' schema changes)."""
        if self._batch_stage is None or self._batch_schema != batch.schema:
            self._batch_stage = self._stage_table(batch.schema, per_batch=True)
            self._batch_schema = batch.schema

    def _stage_batch(self, batch: pa.RecordBatch) -> sa.FromClause:
        """A relation holding one batch, for the set-based statement that follows."""
        assert self._batch_stage is not None
        self._load(self._batch_stage, batch)
        return self._batch_stage

    def _release(self, stage: sa.FromClause) -> None:
        """Empty the per-batch staging relation (inside the transaction)."""
        if isinstance(stage, sa.Table):
            self.connection.execute(stage.delete())

    def _selected(self, stage: sa.FromClause, columns: Sequence[str]) -> list[sa.ColumnElement]:
        """The staged columns as the target takes them (here: as they are)."""
        return [stage.c[c] for c in columns]

    def _upsert_from(self, stage: sa.FromClause, columns: Sequence[str]) -> tuple[int, int]:
        """Upsert the staged rows: ``(updated, unchanged)``, the present keys whose values
        changed and those whose values are the same (not written)."""
        if not self._may_conflict(stage):
            self._insert_from(stage, columns)
            return 0, 0
        matched = self._matched(stage)
        if not matched:
            self._insert_from(stage, columns)
            return 0, 0
        updated = self._merge(stage, columns, matched)
        return updated, matched - updated

    def _merge(self, stage: sa.FromClause, columns: Sequence[str], matched: int) -> int:
        """Upsert the staged rows, ``matched`` of whose keys are present; the rows updated.

        Here: delete the present rows whose values differ, then insert the staged rows whose
        keys are no longer present; unchanged rows are not written.
        """
        changed = self._values_differ(stage, columns)
        updated = 0
        if changed is not None:
            updated = self._execute(
                self.table.delete().where(
                    self._customer_rows(),
                    sa.exists(
                        sa.select(sa.literal(1))
                        .select_from(stage)
                        .where(self._key_match(stage), changed)
                    ),
                )
            )
        self._insert_from(stage, columns, only_new=True)
        return updated

    def _execute(self, statement: sa.Executable) -> int:
        """Run a statement that may read the per-batch staging relation; the rows it changed."""
        return self.connection.execute(statement).rowcount

    def _fetch_one(self, query: sa.Select) -> Sequence[Any] | None:
        """The first row of a query that may read the per-batch staging relation."""
        return self.connection.execute(query).first()

    # -- set-based statements --

    def _comparable(self, value: sa.ColumnElement, column: str) -> sa.ColumnElement:
        """A value of ``column`` as compared to tell a changed row (here: as it is)."""
        return value

    def _value_pairs(
        self, stage: sa.FromClause, columns: Sequence[str]
    ) -> list[tuple[sa.ColumnElement, sa.ColumnElement]]:
        """``(destination, staged)`` values of the non-key columns, ready to compare."""
        staged = self._selected(stage, columns)
        return [
            (self._comparable(self.table.c[c], c), self._comparable(value, c))
            for c, value in zip(columns, staged, strict=True)
            if c not in self.keys
        ]

    def _values_differ(
        self, stage: sa.FromClause, columns: Sequence[str]
    ) -> sa.ColumnElement[bool] | None:
        """Null-safe: some non-key value of the row differs (``None``: there are none)."""
        pairs = self._value_pairs(stage, columns)
        if not pairs:
            return None
        return sa.or_(*[target.is_distinct_from(value) for target, value in pairs])

    def _unchanged(self, stage: sa.FromClause, columns: Sequence[str]) -> int:
        """Staged rows whose key is present with the same values (null-safe)."""
        pairs = self._value_pairs(stage, columns)
        same = [target.is_not_distinct_from(value) for target, value in pairs]
        query = (
            sa.select(sa.func.count())
            .select_from(stage)
            .where(
                sa.exists(
                    sa.select(sa.literal(1))
                    .select_from(self.table)
                    .where(self._customer_rows(), self._key_match(stage), *same)
                )
            )
        )
        row = self._fetch_one(query)
        assert row is not None
        return int(row[0])

    def _refuse_repeated_keys(self, batch: pa.RecordBatch) -> None:
        """Refuse a batch holding a key twice (a custom_join that fans out), before writing.

        Every row of a batch carries the run's end customer, so the key column decides.
        A key may repeat across batches (a row re-read after it changed), not within one.

        Raises:
            SourceSchemaError: naming the table, the key column and a repeated value.
        """
        keys = batch.column(self.keys[-1])
        if isinstance(keys.type, pa.BaseExtensionType):
            keys = keys.storage
        if pa.types.is_dictionary(keys.type):
            keys = keys.dictionary_decode()
        if pc.count_distinct(keys, mode="all").as_py() == len(keys):
            return
        counts = pc.value_counts(keys)
        repeated = counts.filter(pc.greater(counts.field("counts"), 1))
        self._refuse_repeated(
            repeated.field("values")[0].as_py(), repeated.field("counts")[0].as_py()
        )

    def _refuse_repeated(self, value: Any, count: int) -> None:
        raise SourceSchemaError(
            f"primary key {self.keys[-1]!r} is not unique: {value!r} appears {count} times in "
            f"the rows read for destination table {self.label} (end customer "
            f"{self.customer_id!r}, key columns ({self.customer_field}, {self.keys[-1]})); "
            "a custom_join that matches a row several times, or a source without a unique key, "
            "repeats it. Nothing of these rows was written"
        )

    def _key_match(self, stage: sa.FromClause) -> sa.ColumnElement[bool]:
        staged = self._selected(stage, self.keys)
        return sa.and_(*[self.table.c[k] == v for k, v in zip(self.keys, staged, strict=True)])

    def _matched(self, stage: sa.FromClause) -> int:
        """Destination rows whose keys are staged: a semi-join that hashes the (small) stage.

        Every staged row carries this run's end customer, so the customer is a constant here.
        """
        key = self.keys[-1]
        query = (
            sa.select(sa.func.count())
            .select_from(self.table)
            .where(
                self._customer_rows(),
                self.table.c[key].in_(sa.select(*self._selected(stage, [key])).scalar_subquery()),
            )
        )
        row = self._fetch_one(query)
        assert row is not None
        return int(row[0])

    def _may_conflict(self, stage: sa.FromClause) -> bool:
        """Whether any staged key may be present already: ``False`` when this customer has no
        key in the staged keys' range (one index probe), so that a plain insert will do.

        Only for keys that order the same in every collation (numbers, dates, timestamps).
        """
        key = self.keys[-1]
        if not isinstance(self.table.c[key].type, _RANGED_KEY_TYPES):
            return True
        (staged,) = self._selected(stage, [key])
        bounds = self._fetch_one(sa.select(sa.func.min(staged), sa.func.max(staged)))
        if bounds is None or bounds[0] is None:
            return False
        probe = (
            sa.select(sa.literal(1))
            .select_from(self.table)
            .where(self._customer_rows(), self.table.c[key].between(bounds[0], bounds[1]))
            .limit(1)
        )
        return self._fetch_one(probe) is not None

    def _insert_from(
        self, stage: sa.FromClause, columns: Sequence[str], *, only_new: bool = False
    ) -> None:
        select = sa.select(*self._selected(stage, columns))
        if only_new:
            select = select.where(
                ~sa.exists(
                    sa.select(sa.literal(1)).select_from(self.table).where(self._key_match(stage))
                )
            )
        self._execute(self.table.insert().from_select(list(columns), select))

    def _customer_rows(self) -> sa.ColumnElement[bool]:
        return self.table.c[self.customer_field] == self.customer_id

    # -- the write modes --

    def _begin(self) -> None:
        if self._transaction is None:
            self._transaction = self.connection.begin()

    def upsert(self, batch: pa.RecordBatch) -> WriteCounts:
        """Insert new keys and update existing ones (visible at :meth:`commit`)."""
        if not self.keys:
            return self.append(batch)
        self._refuse_repeated_keys(batch)
        batch = self._prepare(batch)
        columns = batch.schema.names
        self._before_batch(batch)
        self._begin()
        stage = self._stage_batch(batch)
        updated, unchanged = self._upsert_from(stage, columns)
        self._release(stage)
        return WriteCounts(
            inserted=batch.num_rows - updated - unchanged, updated=updated, unchanged=unchanged
        )

    def append(self, batch: pa.RecordBatch) -> WriteCounts:
        """Insert the rows whose keys are not present yet (all rows without a key); the
        present ones are counted as unchanged."""
        if self.keys:
            self._refuse_repeated_keys(batch)
        batch = self._prepare(batch)
        columns = batch.schema.names
        self._before_batch(batch)
        self._begin()
        stage = self._stage_batch(batch)
        matched = self._matched(stage) if self.keys else 0
        self._insert_from(stage, columns, only_new=bool(matched))
        self._release(stage)
        return WriteCounts(inserted=batch.num_rows - matched, unchanged=matched)

    # -- the bulk load: a destination holding no rows for this end customer --

    def holds_no_rows(self) -> bool:
        """Whether the table holds no row of this end customer (one index probe)."""
        probe = sa.select(sa.literal(1)).select_from(self.table).where(self._customer_rows())
        with self.connection.begin():
            return self.connection.execute(probe.limit(1)).first() is None

    def bulk_load_batch(self, batch: pa.RecordBatch) -> WriteCounts:
        """Insert a batch into a table that held no rows of this end customer when the run
        began (see :meth:`holds_no_rows`): every row is new unless the run repeats a key.

        Here the upsert (which absorbs a repeated key); dialects with a bulk path override it,
        and must refuse a key the run repeats rather than write it twice.
        """
        return self.upsert(batch)

    def commit(self) -> None:
        """Commit what was written since the last commit."""
        if self._transaction is not None:
            transaction, self._transaction = self._transaction, None
            transaction.commit()

    def stage(self, batch: pa.RecordBatch) -> None:
        """Add a batch to the run's swap staging table (the destination is not touched)."""
        if self.keys:
            self._refuse_repeated_keys(batch)
        batch = self._prepare(batch)
        if self._swap_stage is None:
            self._swap_stage = self._stage_table(batch.schema, per_batch=False)
        with self.connection.begin():
            self._load(self._swap_stage, batch)
        self._swap_rows += batch.num_rows

    def swap(self) -> WriteCounts:
        """Replace the end customer's rows with the staged ones, in one transaction.

        Staged rows repeating a key (in different batches) are refused, nothing is changed.
        """
        stage = self._swap_stage
        with self.connection.begin():
            if stage is not None and self.keys:
                key = stage.c[self.keys[-1]]
                repeated = self._fetch_one(
                    sa.select(key, sa.func.count())
                    .group_by(key)
                    .having(sa.func.count() > 1)
                    .limit(1)
                )
                if repeated is not None:
                    self._refuse_repeated(repeated[0], int(repeated[1]))
            before = int(
                self.connection.execute(
                    sa.select(sa.func.count()).select_from(self.table).where(self._customer_rows())
                ).scalar_one()
            )
            matched = self._matched(stage) if stage is not None and self.keys else 0
            unchanged = self._unchanged(stage, list(stage.c.keys())) if matched else 0
            self.connection.execute(self.table.delete().where(self._customer_rows()))
            if stage is not None:
                self._insert_from(stage, list(stage.c.keys()))
        if stage is not None:
            with self.connection.begin():
                stage.drop(self.connection)
            self._swap_stage = None
        inserted = self._swap_rows - matched
        return WriteCounts(
            inserted=inserted,
            updated=matched - unchanged,
            deleted=before - matched,
            unchanged=unchanged,
        )

    def close(self) -> None:
        """Roll back anything uncommitted and release the connection (temporary tables go)."""
        try:
            if self._transaction is not None:
                self._transaction.rollback()
                self._transaction = None
        finally:
            self.connection.close()
