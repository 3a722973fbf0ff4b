"""The sync API's rules, over its store. Used in-process (embedded) and by the HTTP app.

Every method takes the caller's organization id first: a resource of another organization is
indistinguishable from a missing one (404).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from sync_pipelines import secret_box, settings
from sync_pipelines.api import browse
from sync_pipelines.api import tables as t
from sync_pipelines.api.credentials import CredentialRules
from sync_pipelines.api.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationFailedError,
    validated,
)
from sync_pipelines.api.store import open_store
from sync_pipelines.engine.connections import confine_file
from sync_pipelines.engine.errors import EngineError
from sync_pipelines.models import (
    MASK,
    MUTABLE_SYNC_FIELDS,
    Connection,
    ConnectionInput,
    CursorPosition,
    Destination,
    DestinationCreate,
    DestinationUpdate,
    FieldMapping,
    FileAccess,
    Health,
    HealthStatus,
    NullCursor,
    ObjectCreate,
    ObjectField,
    ObjectUpdate,
    ProviderSyncCreate,
    RunLease,
    RunStats,
    RunStatus,
    SealedConnection,
    Source,
    SourceCreate,
    SourceUpdate,
    Sync,
    SyncCreate,
    SyncMode,
    SyncObject,
    SyncRun,
    SyncStatus,
    SyncUpdate,
)

DEFAULT_ORGANIZATION = "default"
DEFAULT_FREQUENCY = (1, "hours")
HEALTH_WINDOW = 5
_PROVIDER_ONLY_FIELDS = {"provider", "collection_ids", "credential_id", "provider_config"}
API_KEY_PREFIX = "sp_"
ORG_PLACEHOLDER = "{org}"
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes; every time the store holds is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def hash_api_key(api_key: str) -> str:
    """The stored form of an API key (keys are random, so a plain SHA-256 suffices)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


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


class SyncService(CredentialRules):
    """Sources, destinations, objects, syncs, runs and credentials, with their rules."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        lease_seconds: float | None = None,
        clock: Clock = utc_now,
        file_roots: Sequence[str] | None = None,
    ) -> None:
        """A service over the store ``engine``.

        Args:
            engine: the store.
            lease_seconds: a run lease's TTL after each heartbeat (default
                ``$SYNC_PIPELINES_LEASE_TTL_SECONDS``, else 30 s).
            clock: the time source.
            file_roots: where organizations' file databases (SQLite, DuckDB) may live, ``{org}``
                standing for the organization's name; ``None`` (the embedded API): anywhere;
                empty: nowhere (a server without ``SYNC_PIPELINES_FILE_ROOTS``).
        """
        self.engine = engine
        self.lease_seconds = lease_seconds or settings.lease_ttl_seconds()
        self.clock = clock
        self.file_roots = None if file_roots is None else list(file_roots)

    @classmethod
    def open(cls, database_url: str | None = None, **kwargs: Any) -> SyncService:
        """A service on a migrated store (default: the SQLite file in the home)."""
        return cls(open_store(database_url), **kwargs)

    # --- organizations and keys ------------------------------------------------------------

    def ensure_organization(self, name: str = DEFAULT_ORGANIZATION) -> int:
        """The id of the organization called ``name``, created if missing."""
        with self.engine.begin() as c:
            found = c.scalar(sa.select(t.organizations.c.id).where(t.organizations.c.name == name))
            if found is not None:
                return found
            return c.execute(
                t.organizations.insert().values(name=name, created_at=self.clock())
            ).inserted_primary_key[0]

    def create_api_key(self, organization: str) -> str:
        """A new API key for ``organization`` (created if missing). Only its hash is stored."""
        organization_id = self.ensure_organization(organization)
        api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as c:
            c.execute(
                t.api_keys.insert().values(
                    organization_id=organization_id,
                    prefix=api_key[:10],
                    key_hash=hash_api_key(api_key),
                    created_at=self.clock(),
                )
            )
        return api_key

    def authenticate(self, api_key: str | None) -> int:
        """The organization id of a valid API key."""
        if not api_key:
            raise AuthenticationError("missing API key: send it in the X-API-KEY header")
        with self.engine.connect() as c:
            organization_id = c.scalar(
                sa.select(t.api_keys.c.organization_id).where(
                    t.api_keys.c.key_hash == hash_api_key(api_key),
                    t.api_keys.c.revoked_at.is_(None),
                )
            )
        if organization_id is None:
            raise AuthenticationError("invalid API key")
        return organization_id

    # --- connections -----------------------------------------------------------------------

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

    def _browsing(self, org: int, connection_id: int) -> browse.Browsing:
        return browse.Browsing(
            self.connection_spec(org, connection_id),
            where=f"organization {org} connection {connection_id}",
            label=f"connection {connection_id}",
        )

    def list_namespaces(self, org: int, connection_id: int) -> list[str]:
        """The namespaces of a connection's database."""
        return browse.list_namespaces(self._browsing(org, connection_id))

    def list_tables(self, org: int, connection_id: int, namespace: str) -> list[str]:
        """The tables of one namespace of a connection's database."""
        return browse.list_tables(self._browsing(org, connection_id), namespace)

    def get_schema(
        self, org: int, connection_id: int, namespace: str, table_name: str
    ) -> list[dict[str, Any]]:
        """The columns of a table, typed as object fields."""
        return browse.table_schema(self._browsing(org, connection_id), namespace, table_name)

    @staticmethod
    def _connection(row: sa.Row) -> Connection:
        return Connection(id=row.id, **row.masked)

    # --- generic helpers -------------------------------------------------------------------

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

    # --- sources ---------------------------------------------------------------------------

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
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
        )

    @staticmethod
    def _live(table: sa.Table, org: int) -> sa.Select:
        return (
            sa.select(table)
            .where(table.c.organization_id == org, table.c.deleted_at.is_(None))
            .order_by(table.c.id)
        )

    # --- destinations ----------------------------------------------------------------------

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
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
        )

    # --- objects ---------------------------------------------------------------------------

    def create_object(self, org: int, body: ObjectCreate) -> SyncObject:
        """Define a target table on a destination."""
        now = self.clock()
        with self.engine.begin() as c:
            self._referenced(c, t.destinations, org, body.destination_id, "destination_id")
            object_id = c.execute(
                t.objects.insert().values(
                    organization_id=org,
                    display_name=body.display_name,
                    destination_id=body.destination_id,
                    target_type=body.target_type.value,
                    namespace=body.namespace,
                    table_name=body.table_name,
                    end_customer_id_field=body.end_customer_id_field,
                    sync_mode=body.sync_mode.value,
                    cursor_field=body.cursor_field,
                    primary_key=body.primary_key,
                    frequency=body.frequency,
                    frequency_units=body.frequency_units and body.frequency_units.value,
                    object_fields=[f.model_dump(mode="json") for f in body.object_fields],
                    deletes=body.deletes and body.deletes.value,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        return self.get_object(org, object_id)

    def get_object(self, org: int, object_id: int) -> SyncObject:
        """One object."""
        with self.engine.connect() as c:
            return self._object(self._row(c, t.objects, org, object_id, "object"))

    def list_objects(self, org: int) -> list[SyncObject]:
        """The organization's objects."""
        with self.engine.connect() as c:
            return [self._object(row) for row in c.execute(self._live(t.objects, org))]

    def update_object(self, org: int, object_id: int, body: ObjectUpdate) -> SyncObject:
        """Rename, reschedule, or add fields to an object (existing fields stay)."""
        with self.engine.begin() as c:
            current = self._object(self._row(c, t.objects, org, object_id, "object"))
            values: dict[str, Any] = {"updated_at": self.clock()}
            if body.display_name is not None:
                values["display_name"] = body.display_name
            if body.frequency is not None:
                values["frequency"] = body.frequency
                values["frequency_units"] = body.frequency_units.value
            if body.object_fields is not None:
                new = {f.name: f for f in body.object_fields}
                for old in current.object_fields:
                    if old.name not in new:
                        raise ValidationFailedError.for_field(
                            "object_fields", f"field {old.name!r} cannot be removed"
                        )
                    if new[old.name].type != old.type:
                        raise ValidationFailedError.for_field(
                            "object_fields", f"field {old.name!r} cannot change its type"
                        )
                values["object_fields"] = [f.model_dump(mode="json") for f in body.object_fields]
            c.execute(t.objects.update().where(t.objects.c.id == object_id).values(**values))
        return self.get_object(org, object_id)

    def delete_object(self, org: int, object_id: int) -> None:
        """Soft-delete an object that no active sync writes to."""
        with self.engine.connect() as c:
            self._row(c, t.objects, org, object_id, "object")
            used = self._active_syncs_using(c, t.syncs.c.object_id, object_id)
        if used:
            raise ConflictError(f"object {object_id} is used by syncs {used}; delete them first")
        self._soft_delete(t.objects, org, object_id, "object")

    @staticmethod
    def _object(row: sa.Row) -> SyncObject:
        return SyncObject(
            id=row.id,
            organization_id=row.organization_id,
            display_name=row.display_name,
            destination_id=row.destination_id,
            target_type=row.target_type,
            namespace=row.namespace,
            table_name=row.table_name,
            end_customer_id_field=row.end_customer_id_field,
            sync_mode=row.sync_mode,
            cursor_field=row.cursor_field,
            primary_key=row.primary_key,
            frequency=row.frequency,
            frequency_units=row.frequency_units,
            object_fields=[ObjectField.model_validate(f) for f in row.object_fields],
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
            deletes=row.deletes,
        )

    # --- syncs -----------------------------------------------------------------------------

    def create_sync(self, org: int, body: SyncCreate | ProviderSyncCreate) -> Sync:
        """Bind a source table or query to an object for one end customer, or (with a
        ``provider``) an API provider's collections to a destination."""
        if isinstance(body, ProviderSyncCreate):
            return self._create_provider_sync(org, body)
        now = self.clock()
        with self.engine.begin() as c:
            source = self._referenced(c, t.sources, org, body.source_id, "source_id")
            obj = self._object(self._referenced(c, t.objects, org, body.object_id, "object_id"))
            if body.destination_id is not None and body.destination_id != obj.destination_id:
                raise ValidationFailedError.for_field(
                    "destination_id",
                    f"object {obj.id} belongs to destination {obj.destination_id}, "
                    f"not {body.destination_id}",
                )
            values = _sync_values(body, obj, source.end_customer_id)
            existing = c.scalar(
                sa.select(t.syncs.c.id).where(
                    t.syncs.c.object_id == obj.id,
                    t.syncs.c.end_customer_id == values["end_customer_id"],
                    t.syncs.c.deleted_at.is_(None),
                )
            )
            if existing is not None:
                raise ConflictError(
                    f"sync {existing} already syncs object {obj.id} for end customer "
                    f"{values['end_customer_id']!r}",
                    [{"field": "object_id", "message": "duplicate (object_id, end_customer_id)"}],
                )
            sync_id = c.execute(
                t.syncs.insert().values(
                    organization_id=org,
                    source_id=source.id,
                    destination_id=obj.destination_id,
                    object_id=obj.id,
                    health=_no_runs_health(now),
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            ).inserted_primary_key[0]
        return self.get_sync(org, sync_id)

    def _create_provider_sync(self, org: int, body: ProviderSyncCreate) -> Sync:
        now = self.clock()
        with self.engine.begin() as c:
            self._referenced(c, t.destinations, org, body.destination_id, "destination_id")
            if body.credential_id is not None:
                try:
                    credential = self._credential_row(c, org, body.credential_id)
                except NotFoundError as error:
                    raise ValidationFailedError.for_field("credential_id", error.message) from None
                if credential.provider != body.provider:
                    raise ValidationFailedError.for_field(
                        "credential_id",
                        f"credential {credential.id} is for {credential.provider}, "
                        f"not {body.provider}",
                    )
                credential_id = credential.id
            else:
                credential_id = self._insert_credential(
                    c, org, body.provider, body.credential, f"{body.display_name} credential"
                )
            sync_id = c.execute(
                t.syncs.insert().values(
                    organization_id=org,
                    credential_id=credential_id,
                    health=_no_runs_health(now),
                    created_at=now,
                    updated_at=now,
                    **_provider_sync_values(body),
                )
            ).inserted_primary_key[0]
        return self.get_sync(org, sync_id)

    def get_sync(self, org: int, sync_id: int) -> Sync:
        """One sync."""
        with self.engine.connect() as c:
            return _sync(self._row(c, t.syncs, org, sync_id, "sync"))

    def list_syncs(
        self,
        org: int,
        *,
        end_customer_id: str | None = None,
        external_id: str | None = None,
        status: str | None = None,
        object_id: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> list[Sync]:
        """The organization's syncs, filtered."""
        query = self._live(t.syncs, org)
        for column, value in (
            (t.syncs.c.end_customer_id, end_customer_id),
            (t.syncs.c.external_id, external_id),
            (t.syncs.c.status, status),
            (t.syncs.c.object_id, object_id),
        ):
            if value is not None:
                query = query.where(column == value)
        with self.engine.connect() as c:
            found = [_sync(row) for row in c.execute(query)]
        for key, value in (metadata or {}).items():
            found = [s for s in found if str(s.metadata.get(key)) == value]
        return found

    def update_sync(self, org: int, sync_id: int, body: SyncUpdate) -> Sync:
        """Pause/resume, reschedule, or change mappings and Sequin fields of a sync."""
        with self.engine.begin() as c:
            current = _sync(self._row(c, t.syncs, org, sync_id, "sync"))
            create_model = ProviderSyncCreate if current.provider else SyncCreate
            data = current.model_dump(include=set(create_model.model_fields) - {"sync_frequency"})
            data.update(body.model_dump(include=body.model_fields_set & MUTABLE_SYNC_FIELDS))
            if body.sync_frequency is not None or body.frequency is not None:
                data.update(
                    frequency=body.frequency,
                    frequency_units=body.frequency_units,
                    continuous=bool(body.continuous),
                )
            if current.provider:
                values = _provider_sync_values(validated(ProviderSyncCreate, data))
            else:
                data = {k: v for k, v in data.items() if k not in _PROVIDER_ONLY_FIELDS}
                obj = self._object(self._row(c, t.objects, org, current.object_id, "object"))
                values = _sync_values(validated(SyncCreate, data), obj, current.end_customer_id)
            values["updated_at"] = self.clock()
            c.execute(t.syncs.update().where(t.syncs.c.id == sync_id).values(**values))
        return self.get_sync(org, sync_id)

    def delete_sync(self, org: int, sync_id: int) -> None:
        """Soft-delete a sync: it stops running; its runs and destination rows stay."""
        with self.engine.begin() as c:
            sync = self._row(c, t.syncs, org, sync_id, "sync")
            if sync.lease_run_id is not None and _aware(sync.lease_expires_at) > self.clock():
                raise ConflictError(f"sync {sync_id} is running (run {sync.lease_run_id})")
        self._soft_delete(t.syncs, org, sync_id, "sync")

    # --- runs ------------------------------------------------------------------------------

    def request_run(self, org: int, sync_id: int, *, full_refresh: bool = False) -> SyncRun:
        """Record a request to run a sync now (the scheduler picks it up once)."""
        with self.engine.begin() as c:
            sync = self._row(c, t.syncs, org, sync_id, "sync")
            if sync.status == SyncStatus.PAUSED.value:
                raise ConflictError(f"sync {sync_id} is paused; resume it to run it")
            pending = self._requested_run(c, sync_id)
            if pending is not None:
                return _run(pending)
            run_id = c.execute(
                t.sync_runs.insert().values(
                    sync_id=sync_id,
                    status=RunStatus.REQUESTED.value,
                    full_refresh=full_refresh,
                    requested_at=self.clock(),
                    **_zero_stats(),
                )
            ).inserted_primary_key[0]
        return self.get_run(org, run_id)

    def cancel_run_request(self, org: int, sync_id: int) -> SyncRun:
        """Cancel a sync's pending request, else its running run (the runner stops at its
        next checkpoint)."""
        with self.engine.begin() as c:
            sync = self._row(c, t.syncs, org, sync_id, "sync")
            run = self._requested_run(c, sync_id)
            if run is None and sync.lease_run_id is not None:
                run = c.execute(
                    sa.select(t.sync_runs).where(t.sync_runs.c.id == sync.lease_run_id)
                ).first()
            if run is None:
                raise NotFoundError(f"sync {sync_id} has no requested or running run")
            now = self.clock()
            c.execute(
                t.sync_runs.update()
                .where(t.sync_runs.c.id == run.id)
                .values(status=RunStatus.CANCELLED.value, completed_at=now, error="cancelled")
            )
            c.execute(
                t.syncs.update()
                .where(t.syncs.c.id == sync_id, t.syncs.c.lease_run_id == run.id)
                .values(lease_run_id=None, lease_expires_at=None)
            )
        return self.get_run(org, run.id)

    def list_runs(
        self, org: int, sync_id: int, *, status: RunStatus | None = None
    ) -> list[SyncRun]:
        """A sync's runs, newest first."""
        query = (
            sa.select(t.sync_runs)
            .where(t.sync_runs.c.sync_id == sync_id)
            .order_by(t.sync_runs.c.id.desc())
        )
        if status is not None:
            query = query.where(t.sync_runs.c.status == RunStatus(status).value)
        with self.engine.connect() as c:
            self._row(c, t.syncs, org, sync_id, "sync")
            return [_run(row) for row in c.execute(query)]

    def list_requested_runs(self, org: int) -> list[SyncRun]:
        """Pending run requests of the organization's active syncs, oldest first."""
        query = (
            sa.select(t.sync_runs)
            .join(t.syncs, t.syncs.c.id == t.sync_runs.c.sync_id)
            .where(
                t.syncs.c.organization_id == org,
                t.syncs.c.deleted_at.is_(None),
                t.sync_runs.c.status == RunStatus.REQUESTED.value,
            )
            .order_by(t.sync_runs.c.id)
        )
        with self.engine.connect() as c:
            return [_run(row) for row in c.execute(query)]

    def get_run(self, org: int, run_id: int) -> SyncRun:
        """One run."""
        with self.engine.connect() as c:
            return _run(self._run_row(c, org, run_id))

    def _run_row(self, c: sa.Connection, org: int, run_id: int) -> sa.Row:
        row = c.execute(
            sa.select(t.sync_runs)
            .join(t.syncs, t.syncs.c.id == t.sync_runs.c.sync_id)
            .where(t.sync_runs.c.id == run_id, t.syncs.c.organization_id == org)
        ).first()
        if row is None:
            raise NotFoundError(f"run {run_id} not found")
        return row

    @staticmethod
    def _requested_run(c: sa.Connection, sync_id: int) -> sa.Row | None:
        return c.execute(
            sa.select(t.sync_runs)
            .where(
                t.sync_runs.c.sync_id == sync_id,
                t.sync_runs.c.status == RunStatus.REQUESTED.value,
            )
            .order_by(t.sync_runs.c.id)
        ).first()

    def start_run(
        self,
        org: int,
        sync_id: int,
        *,
        full_refresh: bool = False,
        run_id: int | None = None,
        runner_id: str | None = None,
        runner_host: str | None = None,
        runner_pid: int | None = None,
        lease_seconds: float | None = None,
    ) -> RunLease:
        """Grant a run lease: 409 while another run holds an unexpired one.

        ``run_id`` starts a requested run (from ``POST /sync/{id}/run``); otherwise a new run is
        recorded. The lease lasts ``lease_seconds`` (default: the service's TTL) after each
        heartbeat or checkpoint. An expired lease (its runner stopped reporting) is taken over at
        once, and its run is failed with "runner stopped reporting".
        """
        now = self.clock()
        ttl = lease_seconds or self.lease_seconds
        expires = now + dt.timedelta(seconds=ttl)
        with self.engine.begin() as c:
            sync = self._row(c, t.syncs, org, sync_id, "sync")
            if sync.status == SyncStatus.PAUSED.value:
                raise ConflictError(f"sync {sync_id} is paused; resume it to run it")
            holder = sync.lease_run_id
            held = None
            if holder is not None:
                held = c.execute(sa.select(t.sync_runs).where(t.sync_runs.c.id == holder)).first()
            holds_until = _aware(sync.lease_expires_at)
            if held is not None and holds_until > now:
                raise ConflictError(_held_message(sync_id, held, holds_until))
            if run_id is not None:
                requested = self._run_row(c, org, run_id)
                if requested.sync_id != sync_id or requested.status != RunStatus.REQUESTED.value:
                    raise ConflictError(f"run {run_id} of sync {sync_id} is not a pending request")
                full_refresh = full_refresh or requested.full_refresh
            cursor_before = None if full_refresh else sync.cursor_position
            run_values = {
                "sync_id": sync_id,
                "status": RunStatus.RUNNING.value,
                "full_refresh": full_refresh,
                "started_at": now,
                "cursor_before": cursor_before,
                "runner_id": runner_id,
                "runner_host": runner_host,
                "runner_pid": runner_pid,
                "lease_seconds": ttl,
                "heartbeat_at": now,
                "lease_expires_at": expires,
            }
            if run_id is None:
                run_id = c.execute(
                    t.sync_runs.insert().values(**run_values, **_zero_stats())
                ).inserted_primary_key[0]
            else:
                c.execute(
                    t.sync_runs.update().where(t.sync_runs.c.id == run_id).values(**run_values)
                )
            granted = c.execute(
                t.syncs.update()
                .where(
                    t.syncs.c.id == sync_id,
                    sa.or_(
                        t.syncs.c.lease_run_id.is_(None),
                        # unless its runner renewed it since it was read
                        sa.and_(
                            t.syncs.c.lease_run_id == holder,
                            t.syncs.c.lease_expires_at <= now,
                        ),
                    ),
                )
                .values(lease_run_id=run_id, lease_expires_at=expires)
            ).rowcount
            if granted != 1:
                raise ConflictError(f"sync {sync_id} was started by another runner just now")
            if held is not None:
                c.execute(
                    t.sync_runs.update()
                    .where(
                        t.sync_runs.c.id == holder,
                        t.sync_runs.c.status == RunStatus.RUNNING.value,
                    )
                    .values(
                        status=RunStatus.FAILED.value,
                        completed_at=now,
                        lease_expires_at=None,
                        error=f"runner stopped reporting (last heartbeat at "
                        f"{_when(_last_report(held))}); its lease expired at "
                        f"{_when(holds_until)} and run {run_id} took over",
                    )
                )
        return self._lease(org, sync_id, run_id)

    def _lease(self, org: int, sync_id: int, run_id: int) -> RunLease:
        sync = self.get_sync(org, sync_id)
        destination = self.get_destination(org, sync.destination_id)
        source = self.get_source(org, sync.source_id) if sync.source_id else None
        with self.engine.connect() as c:
            credential = (
                self.sealed_credential(c, org, sync.credential_id) if sync.credential_id else None
            )
            return RunLease(
                run=self.get_run(org, run_id),
                sync=sync,
                object=self._object_any(org, sync.object_id) if sync.object_id else None,
                source=source,
                destination=destination,
                source_connection=self._sealed_connection(c, source.connection.id)
                if source
                else None,
                destination_connection=self._sealed_connection(c, destination.connection.id),
                credential=credential,
                file_access=self.file_access(org),
            )

    @staticmethod
    def _sealed_connection(c: sa.Connection, connection_id: int) -> SealedConnection:
        row = c.execute(sa.select(t.connections).where(t.connections.c.id == connection_id)).one()
        return SealedConnection(connection_type=row.connection_type, sealed=row.sealed)

    def _object_any(self, org: int, object_id: int) -> SyncObject:
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(t.objects).where(
                    t.objects.c.id == object_id, t.objects.c.organization_id == org
                )
            ).first()
        return self._object(row)

    def checkpoint(
        self,
        org: int,
        run_id: int,
        *,
        cursor_position: CursorPosition | None,
        stats: RunStats,
    ) -> SyncRun:
        """Commit a run's progress: the cursor after its last committed batch, and its counts.

        Raises:
            ConflictError: the run no longer holds its sync's lease (cancelled or taken over).
        """
        now = self.clock()
        position = cursor_position.model_dump(mode="json") if cursor_position else None
        with self.engine.begin() as c:
            run = self._run_row(c, org, run_id)
            expires = now + dt.timedelta(seconds=run.lease_seconds or self.lease_seconds)
            held = c.execute(
                t.syncs.update()
                .where(t.syncs.c.id == run.sync_id, t.syncs.c.lease_run_id == run_id)
                .values(cursor_position=position, lease_expires_at=expires, updated_at=now)
            ).rowcount
            if held != 1 or run.status != RunStatus.RUNNING.value:
                raise _lease_lost(self._run_row(c, org, run_id))  # as it is now
            c.execute(
                t.sync_runs.update()
                .where(t.sync_runs.c.id == run_id)
                .values(
                    cursor_after=position,
                    lease_expires_at=expires,
                    heartbeat_at=now,
                    **stats.model_dump(),
                )
            )
        return self.get_run(org, run_id)

    def heartbeat(self, org: int, run_id: int) -> SyncRun:
        """Renew a running run's lease for its TTL from now (a runner's background thread).

        Raises:
            ConflictError: the run no longer holds its sync's lease (cancelled, failed, or taken
                over after its lease expired): its runner must stop without checkpointing.
        """
        now = self.clock()
        with self.engine.begin() as c:
            run = self._run_row(c, org, run_id)
            expires = now + dt.timedelta(seconds=run.lease_seconds or self.lease_seconds)
            held = c.execute(
                t.syncs.update()
                .where(t.syncs.c.id == run.sync_id, t.syncs.c.lease_run_id == run_id)
                .values(lease_expires_at=expires)
            ).rowcount
            if held != 1 or run.status != RunStatus.RUNNING.value:
                raise _lease_lost(self._run_row(c, org, run_id))  # as it is now
            c.execute(
                t.sync_runs.update()
                .where(t.sync_runs.c.id == run_id)
                .values(lease_expires_at=expires, heartbeat_at=now)
            )
        return self.get_run(org, run_id)

    def finish_run(
        self,
        org: int,
        run_id: int,
        *,
        status: RunStatus,
        stats: RunStats,
        error: str | None = None,
    ) -> SyncRun:
        """End a run: record its outcome, release the lease, update health and backfill."""
        status = RunStatus(status)
        if status not in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED):
            raise ValidationFailedError.for_field(
                "status", "a run finishes as completed, failed or cancelled"
            )
        now = self.clock()
        with self.engine.begin() as c:
            run = self._run_row(c, org, run_id)
            if run.status != RunStatus.RUNNING.value:
                raise ConflictError(f"run {run_id} is already {run.status}")
            sync = c.execute(sa.select(t.syncs).where(t.syncs.c.id == run.sync_id)).one()
            started = _aware(run.started_at)
            c.execute(
                t.sync_runs.update()
                .where(t.sync_runs.c.id == run_id)
                .values(
                    status=status.value,
                    completed_at=now,
                    duration_seconds=(now - started).total_seconds() if started else None,
                    error=error,
                    cursor_after=sync.cursor_position,
                    lease_expires_at=None,
                    **stats.model_dump(),
                )
            )
            recent = list(
                c.execute(
                    sa.select(t.sync_runs.c.status, t.sync_runs.c.error)
                    .where(
                        t.sync_runs.c.sync_id == run.sync_id,
                        t.sync_runs.c.status.in_(
                            [RunStatus.COMPLETED.value, RunStatus.FAILED.value]
                        ),
                    )
                    .order_by(t.sync_runs.c.id.desc())
                    .limit(HEALTH_WINDOW)
                )
            )
            values: dict[str, Any] = {
                "health": _health(recent, now),
                "lease_run_id": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            if status is RunStatus.COMPLETED and sync.backfill_completed_at is None:
                values["backfill_completed_at"] = now
            c.execute(
                t.syncs.update()
                .where(t.syncs.c.id == run.sync_id, t.syncs.c.lease_run_id == run_id)
                .values(**values)
            )
        return self.get_run(org, run_id)


# --- row <-> model ---------------------------------------------------------------------------


def _zero_stats() -> dict[str, int]:
    return RunStats().model_dump()


def _when(value: dt.datetime | None) -> str:
    """A stored time for messages: ISO 8601 in UTC, to the millisecond."""
    if value is None:
        return "never"
    return _aware(value).astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _last_report(run: sa.Row) -> dt.datetime | None:
    """When a run's runner last reported (runs from before heartbeats: when it started)."""
    return _aware(run.heartbeat_at) or _aware(run.started_at)


def _held_message(sync_id: int, run: sa.Row, holds_until: dt.datetime) -> str:
    """The 409 of a start while a live run holds the lease: who, since when, until when, and
    how to take over."""
    runner = ", ".join(
        part
        for part in (
            f"runner {run.runner_id}" if run.runner_id else None,
            f"host {run.runner_host}" if run.runner_host else None,
            f"pid {run.runner_pid}" if run.runner_pid is not None else None,
        )
        if part
    )
    return (
        f"sync {sync_id} is already running: run {run.id}"
        + (f" ({runner})" if runner else "")
        + f", last heartbeat at {_when(_last_report(run))}; its lease holds until "
        f"{_when(holds_until)} and is renewed while that runner is alive (once it stops "
        "reporting, the next start takes over). To stop that run now: "
        f"sync-pipelines runs cancel {sync_id}"
    )


def _lease_lost(run: sa.Row) -> ConflictError:
    """The 409 of a heartbeat or checkpoint from a run that no longer holds its lease."""
    reason = f"it is {run.status}" + (f": {run.error}" if run.error else "")
    return ConflictError(
        f"run {run.id} no longer holds the lease of sync {run.sync_id} ({reason}); stop writing"
    )


def _no_runs_health(now: dt.datetime) -> dict[str, Any]:
    return Health(status=HealthStatus.OK, notes=["no run yet"], time=now).model_dump(mode="json")


def _health(recent: Iterable[sa.Row], now: dt.datetime) -> dict[str, Any]:
    """Health from the latest finished runs, newest first."""
    recent = list(recent)
    failed = [row for row in recent if row.status == RunStatus.FAILED.value]
    if recent and recent[0].status == RunStatus.FAILED.value:
        health = Health(status=HealthStatus.ERROR, notes=[f"last run failed: {recent[0].error}"])
    elif failed:
        health = Health(
            status=HealthStatus.WARN,
            notes=[f"{len(failed)} of the last {len(recent)} runs failed: {failed[0].error}"],
        )
    else:
        health = Health(status=HealthStatus.HEALTHY)
    health.time = now
    return health.model_dump(mode="json")


def _default_source_field(mappings: list[FieldMapping], object_field: str | None) -> str | None:
    """The source column mapped onto an object field (else the same name)."""
    if object_field is None:
        return None
    for mapping in mappings:
        if mapping.destination_field_name == object_field:
            return mapping.source_field_name
    return object_field


def _check_mappings(body: SyncCreate, obj: SyncObject) -> None:
    fields = {f.name: f for f in obj.object_fields}
    problems = []
    for index, mapping in enumerate(body.field_mappings):
        target = mapping.destination_field_name
        if target == obj.end_customer_id_field:
            problems.append(
                (index, f"{target!r} is the object's end_customer_id_field, set by the sync")
            )
        elif fields and target not in fields:
            problems.append((index, f"object {obj.id} has no field {target!r}"))
        elif fields and fields[target].omit:
            problems.append((index, f"object field {target!r} is marked omit"))
    details = [
        {"field": f"field_mappings[{index}].destination_field_name", "message": message}
        for index, message in problems
    ]
    mapped = {m.destination_field_name for m in body.field_mappings}
    details += [
        {
            "field": "field_mappings",
            "message": f"object field {name!r} is not mapped (it is neither optional nor omit)",
        }
        for name, field in fields.items()
        if not field.optional and not field.omit and name not in mapped
    ]
    if details:
        raise ValidationFailedError("validation failed", details)


def _sync_values(body: SyncCreate, obj: SyncObject, source_customer_id: str) -> dict[str, Any]:
    """The stored columns of a sync: body values, else the object's defaults; checked."""
    _check_mappings(body, obj)
    cursor = body.cursor_field or _default_source_field(body.field_mappings, obj.cursor_field)
    primary_key = body.primary_key or _default_source_field(body.field_mappings, obj.primary_key)
    mode = body.sync_mode or obj.sync_mode
    if body.sync_mode is None and mode is SyncMode.FULL_OVERWRITE and body.cursor_field:
        # An object without a cursor (Fabra 0.1.0 had none) and a sync that names one: the sync
        # wants to be incremental.
        mode = SyncMode.INCREMENTAL_UPDATE if primary_key else SyncMode.INCREMENTAL_APPEND
    if mode is not SyncMode.FULL_OVERWRITE and not cursor:
        raise ValidationFailedError.for_field(
            "cursor_field", f"required for sync_mode {mode.value} (the object has none)"
        )
    if mode is SyncMode.INCREMENTAL_UPDATE and not primary_key:
        raise ValidationFailedError.for_field(
            "primary_key", "required for sync_mode incremental_update (the object has none)"
        )
    continuous = bool(body.continuous)
    frequency, units = body.frequency, body.frequency_units
    if frequency is None and not continuous:
        if obj.frequency is not None:
            frequency, units = obj.frequency, obj.frequency_units
        else:
            frequency, units = DEFAULT_FREQUENCY
    return {
        "display_name": body.display_name,
        "end_customer_id": body.end_customer_id or source_customer_id,
        "namespace": body.namespace,
        "table_name": body.table_name,
        "custom_join": body.custom_join,
        "cursor_field": cursor,
        "primary_key": primary_key,
        "field_mappings": [m.model_dump() for m in body.field_mappings],
        "sync_mode": SyncMode(mode).value,
        "frequency": None if continuous else frequency,
        "frequency_units": None if continuous else units and str(units),
        "continuous": continuous,
        "max_age_days": body.max_age_days,
        "lookback": body.lookback,
        "null_cursor": NullCursor(body.null_cursor).value,
        "deletes": body.deletes and body.deletes.value,
        "max_delete_fraction": body.max_delete_fraction,
        "delete_check_every": body.delete_check_every,
        "rate_limit": body.rate_limit.model_dump() if body.rate_limit else None,
        "metadata": body.metadata,
        "external_id": body.external_id,
        "status": SyncStatus(body.status).value,
    }


def _provider_sync_values(body: ProviderSyncCreate) -> dict[str, Any]:
    """The stored columns of a provider sync, checked against the provider catalog."""
    from sync_pipelines.providers import catalog  # the provider stack, only for provider syncs
    from sync_pipelines.providers.errors import ProviderConfigError
    from sync_pipelines.providers.presets import rest_provider_for

    try:
        info = catalog.provider_info(body.provider)
    except KeyError as error:
        raise ValidationFailedError.for_field("provider", str(error.args[0])) from None
    missing = [key for key in info.required_config if key not in body.provider_config]
    if missing:
        raise ValidationFailedError.for_field(
            "provider_config", f"{body.provider} syncs need {', '.join(missing)}"
        )
    try:
        rest_provider_for(body.provider, body.provider_config)
    except ProviderConfigError as error:
        raise ValidationFailedError.for_field("provider_config", str(error)) from None
    known = catalog.collection_names(info, body.provider_config)
    unknown = [c for c in body.collection_ids if c.partition(":")[2] not in known]
    if unknown:
        raise ValidationFailedError.for_field(
            "collection_ids",
            f"{unknown[0]!r} is not a {body.provider} collection; use one of "
            + ", ".join(f"{body.provider}:{name}" for name in sorted(known)),
        )
    continuous = bool(body.continuous)
    frequency, units = (body.frequency, body.frequency_units) if body.frequency else (4, "hours")
    rate_limit = body.rate_limit or info.default_rate_limit
    return {
        "display_name": body.display_name,
        "destination_id": body.destination_id,
        "provider": body.provider,
        "collection_ids": list(body.collection_ids),
        "provider_config": body.provider_config,
        "end_customer_id": body.end_customer_id or body.external_id or "default",
        "namespace": body.namespace or body.provider,
        "field_mappings": [],
        "sync_mode": SyncMode.INCREMENTAL_UPDATE.value,
        "frequency": None if continuous else frequency,
        "frequency_units": None if continuous else str(units),
        "continuous": continuous,
        "max_age_days": body.max_age_days,
        "rate_limit": rate_limit.model_dump(),
        "metadata": body.metadata,
        "external_id": body.external_id,
        "status": SyncStatus(body.status).value,
    }


def _sync(row: sa.Row) -> Sync:
    return Sync(
        id=row.id,
        organization_id=row.organization_id,
        display_name=row.display_name,
        source_id=row.source_id,
        destination_id=row.destination_id,
        object_id=row.object_id,
        end_customer_id=row.end_customer_id,
        provider=row.provider,
        collection_ids=row.collection_ids or [],
        credential_id=row.credential_id,
        provider_config=row.provider_config or {},
        namespace=row.namespace,
        table_name=row.table_name,
        custom_join=row.custom_join,
        cursor_field=row.cursor_field,
        primary_key=row.primary_key,
        field_mappings=row.field_mappings,
        sync_mode=row.sync_mode,
        frequency=row.frequency,
        frequency_units=row.frequency_units,
        continuous=row.continuous,
        max_age_days=row.max_age_days,
        lookback=row.lookback,
        null_cursor=row.null_cursor or NullCursor.INCLUDE,
        deletes=row.deletes,
        max_delete_fraction=row.max_delete_fraction,
        delete_check_every=row.delete_check_every,
        rate_limit=row.rate_limit,
        metadata=row.metadata,
        external_id=row.external_id,
        status=row.status,
        health=row.health,
        backfill_completed_at=_aware(row.backfill_completed_at),
        cursor_position=row.cursor_position,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def _run(row: sa.Row) -> SyncRun:
    return SyncRun(
        id=row.id,
        sync_id=row.sync_id,
        status=row.status,
        full_refresh=row.full_refresh,
        requested_at=_aware(row.requested_at),
        started_at=_aware(row.started_at),
        completed_at=_aware(row.completed_at),
        duration_seconds=row.duration_seconds,
        rows_read=row.rows_read,
        rows_inserted=row.rows_inserted,
        rows_updated=row.rows_updated,
        rows_deleted=row.rows_deleted,
        rows_unchanged=row.rows_unchanged,
        rows_written=row.rows_written,
        batches=row.batches,
        cursor_before=row.cursor_before,
        cursor_after=row.cursor_after,
        error=row.error,
        runner_id=row.runner_id,
        lease_expires_at=_aware(row.lease_expires_at),
        runner_host=row.runner_host,
        runner_pid=row.runner_pid,
        lease_seconds=row.lease_seconds,
        heartbeat_at=_aware(row.heartbeat_at),
    )
