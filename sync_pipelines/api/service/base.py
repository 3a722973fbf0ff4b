"""What every part of the service shares: the store, the clock, the lease TTL, row helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

from sync_pipelines.api import tables as t
from sync_pipelines.contract.errors import (
    NotFoundError,
    ValidationFailedError,
)

Clock = Callable[[], dt.datetime]


class ServiceBase:
    """The service's state; each aggregate's rules are a mixin over it."""

    engine: sa.Engine
    lease_seconds: float
    clock: Clock
    file_roots: list[str] | None

    def _row(self, c: sa.Connection, table: sa.Table, org: int, row_id: int, kind: str) -> sa.Row:
        row = c.execute(
            sa.select(table).where(
                table.c.id == row_id,
                table.c.organization_id == org,
                table.c.deleted_at.is_(None),
            )
        ).first()
        if row is None:
            raise NotFoundError(f"{kind} {row_id} not found")
        return row

    def _referenced(
        self, c: sa.Connection, table: sa.Table, org: int, row_id: int, field: str
    ) -> sa.Row:
        """A row a request body points at: missing is the body's fault (422 naming the field)."""
        try:
            return self._row(c, table, org, row_id, field.removesuffix("_id"))
        except NotFoundError as error:
            raise ValidationFailedError.for_field(field, error.message) from None

    def _soft_delete(self, table: sa.Table, org: int, row_id: int, kind: str) -> None:
        with self.engine.begin() as c:
            self._row(c, table, org, row_id, kind)
            now = self.clock()
            c.execute(
                table.update().where(table.c.id == row_id).values(deleted_at=now, updated_at=now)
            )

    def _active_syncs_using(self, c: sa.Connection, column: sa.Column, row_id: int) -> list[int]:
        return list(
            c.scalars(
                sa.select(t.syncs.c.id).where(column == row_id, t.syncs.c.deleted_at.is_(None))
            )
        )

    def _table_writers(
        self,
        c: sa.Connection,
        org: int,
        destination_id: int,
        namespace: str,
        tables: list[str],
        *,
        provider: str | None = None,
    ) -> list[str]:
        """Who already writes any of ``namespace.<tables>`` on a destination: its objects, and
        the provider syncs of another provider than ``provider`` (the syncs of one provider
        share their collection tables, one end customer each). Names compare case-insensitively,
        as DuckDB and MySQL compare them."""
        wanted = {(namespace.lower(), table.lower()) for table in tables}
        writers = []
        objects = self._live(t.objects, org).where(t.objects.c.destination_id == destination_id)
        for row in c.execute(objects):
            if (row.namespace.lower(), row.table_name.lower()) in wanted:
                writers.append(
                    f"object {row.id} ({row.display_name!r}) writes "
                    f"{row.namespace}.{row.table_name}"
                )
        provider_syncs = self._live(t.syncs, org).where(
            t.syncs.c.destination_id == destination_id, t.syncs.c.provider.is_not(None)
        )
        for row in c.execute(provider_syncs):
            if row.provider == provider or row.namespace is None:
                continue
            for collection_id in row.collection_ids or ():
                table = collection_id.partition(":")[2]
                if (row.namespace.lower(), table.lower()) in wanted:
                    writers.append(f"{row.provider} sync {row.id} writes {row.namespace}.{table}")
        return writers

    @staticmethod
    def _live(table: sa.Table, org: int) -> sa.Select:
        return (
            sa.select(table)
            .where(table.c.organization_id == org, table.c.deleted_at.is_(None))
            .order_by(table.c.id)
        )
