"""Sources and destinations: connections with their secrets sealed, and where file databases
may live."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from sync_pipelines.api import tables as t
from sync_pipelines.api.service.base import ServiceBase
from sync_pipelines.common import secret_box, settings
from sync_pipelines.common.time import aware
from sync_pipelines.contract.errors import (
    ConflictError,
    NotFoundError,
    ValidationFailedError,
)
from sync_pipelines.contract.models import (
    MASK,
    Connection,
    ConnectionInput,
    Destination,
    DestinationCreate,
    DestinationUpdate,
    FileAccess,
    Source,
    SourceCreate,
    SourceUpdate,
)

ORG_PLACEHOLDER = "{org}"


_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def mask_connection(spec: dict[str, Any]) -> dict[str, Any]:
    """A connection spec with every secret replaced by ``"***"``.

    URLs are parsed as the driver will; one whose password holds an unencoded ``@`` never gets
    here (``ConnectionInput`` refuses it), so the password is all that is hidden.
    """
    masked: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "url":
            url = make_url(value)
            masked[key] = url.render_as_string(hide_password=True) if url.password else value
        elif isinstance(value, dict):
            masked[key] = {
                name: MASK if name in {"password", "credentials"} and item is not None else item
                for name, item in value.items()
            }
        else:
            masked[key] = value
    return masked


class Connections(ServiceBase):
    """Sources and destinations (connections with their secrets sealed)."""

    def file_access(self, org: int) -> FileAccess | None:
        """Where ``org``'s file databases may live (``None``: anywhere, the embedded API)."""
        if self.file_roots is None:
            return None
        with self.engine.connect() as c:
            name = c.scalar(sa.select(t.organizations.c.name).where(t.organizations.c.id == org))
        roots = []
        for root in self.file_roots:
            if ORG_PLACEHOLDER in root:
                if not _PATH_SEGMENT.fullmatch(name or ""):
                    continue  # a name that is not one safe path segment gets no own directory
                root = root.replace(ORG_PLACEHOLDER, name)
            roots.append(root)
        denied = [str(settings.home() / secret_box.KEY_FILE)]
        if self.engine.url.get_backend_name() == "sqlite" and self.engine.url.database:
            denied.append(str(Path(self.engine.url.database).resolve()))
        return FileAccess(roots=roots, denied=denied)

    def _allowed_spec(self, org: int, spec: dict[str, Any], field: str) -> dict[str, Any]:
        """``spec`` with its file database confined to ``org``'s directories (422 otherwise)."""
        access = self.file_access(org)
        if access is None:
            return spec
        from sync_pipelines.engine.connection_specs import confine_file  # only for file databases
        from sync_pipelines.engine.errors import EngineError

        try:
            return confine_file(spec, access.roots, denied=access.denied)
        except EngineError as error:
            raise ValidationFailedError.for_field(field, str(error)) from None

    def _insert_connection(
        self, c: sa.Connection, org: int, body: ConnectionInput, field: str = "url"
    ) -> int:
        spec = self._allowed_spec(org, body.connection_spec(), field)
        return c.execute(
            t.connections.insert().values(
                organization_id=org,
                connection_type=body.connection_type.value,
                masked=mask_connection(spec),
                sealed=secret_box.seal(spec),
                created_at=self.clock(),
            )
        ).inserted_primary_key[0]

    def _connection_row(self, c: sa.Connection, org: int, connection_id: int) -> sa.Row:
        row = c.execute(
            sa.select(t.connections).where(
                t.connections.c.id == connection_id, t.connections.c.organization_id == org
            )
        ).first()
        if row is None:
            raise NotFoundError(f"connection {connection_id} not found")
        return row

    def connection_spec(self, org: int, connection_id: int) -> dict[str, Any]:
        """The unsealed spec of a connection (for browsing it in-process; never returned)."""
        with self.engine.connect() as c:
            spec = secret_box.unseal(self._connection_row(c, org, connection_id).sealed)
        return self._allowed_spec(org, spec, "connection_id")

    @staticmethod
    def _connection(row: sa.Row) -> Connection:
        return Connection(id=row.id, **row.masked)

    def create_source(self, org: int, body: SourceCreate) -> Source:
        """Store a source; its connection secrets are sealed."""
        now = self.clock()
        with self.engine.begin() as c:
            connection_id = self._insert_connection(c, org, body)
            source_id = c.execute(
                t.sources.insert().values(
                    organization_id=org,
                    display_name=body.display_name,
                    end_customer_id=body.end_customer_id,
                    connection_id=connection_id,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        return self.get_source(org, source_id)

    def get_source(self, org: int, source_id: int) -> Source:
        """One source."""
        with self.engine.connect() as c:
            return self._source(c, self._row(c, t.sources, org, source_id, "source"))

    def list_sources(self, org: int, *, end_customer_id: str | None = None) -> list[Source]:
        """The organization's sources."""
        query = self._live(t.sources, org)
        if end_customer_id is not None:
            query = query.where(t.sources.c.end_customer_id == end_customer_id)
        with self.engine.connect() as c:
            return [self._source(c, row) for row in c.execute(query)]

    def update_source(self, org: int, source_id: int, body: SourceUpdate) -> Source:
        """Rename a source or replace its connection."""
        with self.engine.begin() as c:
            self._row(c, t.sources, org, source_id, "source")
            values: dict[str, Any] = {"updated_at": self.clock()}
            if body.display_name is not None:
                values["display_name"] = body.display_name
            if body.connection is not None:
                values["connection_id"] = self._insert_connection(
                    c, org, body.connection, "connection.url"
                )
            c.execute(t.sources.update().where(t.sources.c.id == source_id).values(**values))
        return self.get_source(org, source_id)

    def delete_source(self, org: int, source_id: int) -> None:
        """Soft-delete a source that no active sync uses."""
        with self.engine.connect() as c:
            self._row(c, t.sources, org, source_id, "source")
            used = self._active_syncs_using(c, t.syncs.c.source_id, source_id)
        if used:
            raise ConflictError(f"source {source_id} is used by syncs {used}; delete them first")
        self._soft_delete(t.sources, org, source_id, "source")

    def _source(self, c: sa.Connection, row: sa.Row) -> Source:
        connection = self._connection(
            self._connection_row(c, row.organization_id, row.connection_id)
        )
        return Source(
            id=row.id,
            organization_id=row.organization_id,
            display_name=row.display_name,
            end_customer_id=row.end_customer_id,
            connection=connection,
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )

    def create_destination(self, org: int, body: DestinationCreate) -> Destination:
        """Store a destination; its connection secrets are sealed."""
        now = self.clock()
        with self.engine.begin() as c:
            connection_id = self._insert_connection(c, org, body)
            destination_id = c.execute(
                t.destinations.insert().values(
                    organization_id=org,
                    display_name=body.display_name,
                    connection_id=connection_id,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        return self.get_destination(org, destination_id)

    def get_destination(self, org: int, destination_id: int) -> Destination:
        """One destination."""
        with self.engine.connect() as c:
            row = self._row(c, t.destinations, org, destination_id, "destination")
            return self._destination(c, row)

    def list_destinations(self, org: int) -> list[Destination]:
        """The organization's destinations."""
        with self.engine.connect() as c:
            return [self._destination(c, row) for row in c.execute(self._live(t.destinations, org))]

    def update_destination(
        self, org: int, destination_id: int, body: DestinationUpdate
    ) -> Destination:
        """Rename a destination or replace its connection."""
        with self.engine.begin() as c:
            self._row(c, t.destinations, org, destination_id, "destination")
            values: dict[str, Any] = {"updated_at": self.clock()}
            if body.display_name is not None:
                values["display_name"] = body.display_name
            if body.connection is not None:
                values["connection_id"] = self._insert_connection(
                    c, org, body.connection, "connection.url"
                )
            c.execute(
                t.destinations.update()
                .where(t.destinations.c.id == destination_id)
                .values(**values)
            )
        return self.get_destination(org, destination_id)

    def delete_destination(self, org: int, destination_id: int) -> None:
        """Soft-delete a destination that no active sync writes to."""
        with self.engine.connect() as c:
            self._row(c, t.destinations, org, destination_id, "destination")
            used = self._active_syncs_using(c, t.syncs.c.destination_id, destination_id)
        if used:
            raise ConflictError(
                f"destination {destination_id} is used by syncs {used}; delete them first"
            )
        self._soft_delete(t.destinations, org, destination_id, "destination")

    def _destination(self, c: sa.Connection, row: sa.Row) -> Destination:
        connection = self._connection(
            self._connection_row(c, row.organization_id, row.connection_id)
        )
        return Destination(
            id=row.id,
            organization_id=row.organization_id,
            display_name=row.display_name,
            connection=connection,
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )
