"""SQLite: executemany into a temporary table, ``INSERT ... ON CONFLICT DO UPDATE``."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from sync_pipelines.engine.errors import DestinationTypeConflictError
from sync_pipelines.engine.write.batch_writer import BatchWriter

__all__ = ["SqliteWriter"]


class SqliteWriter(BatchWriter):
    """Temporary table + ``INSERT ... SELECT ... WHERE true ON CONFLICT DO UPDATE ... WHERE``.

    A present row is updated only when a value differs (``IS NOT``, SQLite's null-safe
    comparison); the unchanged ones are counted first and not written.
    """

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Refuse NaN, which SQLite would store as NULL, naming the column.

        Raises:
            DestinationTypeConflictError: a float value is NaN.
        """
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if pa.types.is_floating(column.type) and pc.any(pc.is_nan(column)).as_py():
                raise DestinationTypeConflictError(
                    f"column {name!r} of destination table {self.table.fullname}: SQLite "
                    "would store the float value nan as NULL"
                )
        return super()._prepare(batch)

    def _merge(self, stage: sa.FromClause, columns: Sequence[str], matched: int) -> int:
        unchanged = self._unchanged(stage, columns)
        # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint
        select = sa.select(*self._selected(stage, columns)).where(sa.true())
        statement = sqlite.insert(self.table).from_select(list(columns), select)
        updates = {c: statement.excluded[c] for c in columns if c not in self.keys}
        if updates:
            changed = sa.or_(
                *[self.table.c[c].is_distinct_from(statement.excluded[c]) for c in updates]
            )
            statement = statement.on_conflict_do_update(
                index_elements=self.keys, set_=updates, where=changed
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=self.keys)
        self.connection.execute(statement)
        return matched - unchanged
