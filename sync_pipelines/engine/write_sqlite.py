"""SQLite: executemany into a temporary table, ``INSERT ... ON CONFLICT DO UPDATE``."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from sync_pipelines.engine.write import BatchWriter

__all__ = ["SqliteWriter"]


class SqliteWriter(BatchWriter):
    """Temporary table + ``INSERT ... SELECT ... WHERE true ON CONFLICT DO UPDATE``."""

    def _merge(self, stage: sa.FromClause, columns: Sequence[str]) -> None:
        # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint
        select = sa.select(*self._selected(stage, columns)).where(sa.true())
        statement = sqlite.insert(self.table).from_select(list(columns), select)
        updates = {c: statement.excluded[c] for c in columns if c not in self.keys}
        if updates:
            statement = statement.on_conflict_do_update(index_elements=self.keys, set_=updates)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=self.keys)
        self.connection.execute(statement)
