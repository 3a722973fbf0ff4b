"""MySQL and MariaDB: executemany into a temporary table, ``ON DUPLICATE KEY UPDATE``."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from sync_pipelines.engine.errors import DestinationTypeConflictError
from sync_pipelines.engine.write.batch_writer import BatchWriter

__all__ = ["MySqlWriter"]


class MySqlWriter(BatchWriter):
    """Temporary table + ``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE``.

    The server does not write a row updated to the values it has; the unchanged rows are
    counted first, comparing bytes (``CAST(... AS BINARY) <=>``), not the columns' collation.
    """

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Refuse NaN and infinities, which MySQL's DOUBLE cannot store, naming the column.

        Raises:
            DestinationTypeConflictError: a float value is not finite.
        """
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if pa.types.is_floating(column.type):
                finite = pc.is_finite(column)
                if not pc.all(pc.or_kleene(finite, pc.is_null(column))).as_py():
                    value = column.filter(pc.invert(finite))[0].as_py()
                    raise DestinationTypeConflictError(
                        f"column {name!r} of destination table {self.table.fullname}: MySQL "
                        f"cannot store the float value {value}"
                    )
        return super()._prepare(batch)

    def _comparable(self, value: sa.ColumnElement, column: str) -> sa.ColumnElement:
        return sa.cast(value, sa.LargeBinary)

    def _merge(self, stage: sa.FromClause, columns: Sequence[str], matched: int) -> int:
        unchanged = self._unchanged(stage, columns)
        statement = mysql.insert(self.table).from_select(
            list(columns), sa.select(*self._selected(stage, columns))
        )
        updates = {c: statement.inserted[c] for c in columns if c not in self.keys}
        if not updates:  # nothing to update: keep the key as it is
            updates = {self.keys[-1]: self.table.c[self.keys[-1]]}
        self.connection.execute(statement.on_duplicate_key_update(updates))
        return matched - unchanged
