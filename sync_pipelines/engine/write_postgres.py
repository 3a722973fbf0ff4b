"""PostgreSQL's fast path: COPY each batch (CSV written by Arrow) into a temporary table."""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from sync_pipelines.engine.write import BatchWriter

__all__ = ["PostgresWriter"]


class PostgresWriter(BatchWriter):
    """COPY into a temporary table, then ``INSERT ... ON CONFLICT DO UPDATE``."""

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for column in batch.columns:
            if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
                column = pa.array(
                    [None if v is None else "\\x" + v.hex() for v in column.to_pylist()],
                    pa.string(),
                )
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    def _stage_table(self, columns: Sequence[str], *, per_batch: bool) -> sa.Table:
        table = sa.Table(
            f"sp_stage_{'batch' if per_batch else 'swap'}_{uuid.uuid4().hex[:16]}",
            sa.MetaData(),
            *[sa.Column(c, self.table.c[c].type) for c in columns],
            prefixes=["TEMPORARY"],
        )
        self._create(table)
        return table

    def _load(self, stage: sa.Table, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        buffer = io.BytesIO()
        pa_csv.write_csv(batch, buffer, pa_csv.WriteOptions(include_header=False))
        preparer = self.connection.dialect.identifier_preparer
        names = ", ".join(preparer.quote(c) for c in batch.schema.names)
        statement = f"COPY {preparer.format_table(stage)} ({names}) FROM STDIN (FORMAT csv)"
        driver = self.connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(buffer.getbuffer())

    def _release(self, stage: sa.FromClause) -> None:
        preparer = self.connection.dialect.identifier_preparer
        self.connection.execute(sa.text(f"TRUNCATE {preparer.format_table(stage)}"))

    def _merge(self, stage: sa.FromClause, columns: Sequence[str]) -> None:
        statement = postgresql.insert(self.table).from_select(
            list(columns), sa.select(*[stage.c[c] for c in columns])
        )
        updates = {c: statement.excluded[c] for c in columns if c not in self.keys}
        if updates:
            statement = statement.on_conflict_do_update(index_elements=self.keys, set_=updates)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=self.keys)
        self.connection.execute(statement)
