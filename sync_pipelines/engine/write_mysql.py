"""MySQL and MariaDB: executemany into a temporary table, ``ON DUPLICATE KEY UPDATE``."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from sync_pipelines.engine.write import BatchWriter

__all__ = ["MySqlWriter"]


class MySqlWriter(BatchWriter):
    """Temporary table + ``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE``.

    The server does not write a row updated to the values it has; the unchanged rows are
    counted first, comparing bytes (``CAST(... AS BINARY) <=>``), not the columns' collation.
    """

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
