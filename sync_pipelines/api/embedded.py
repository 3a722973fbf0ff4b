"""The sync API in-process: the client's methods over :class:`SyncService` directly."""

from __future__ import annotations

from typing import Any

from sync_pipelines.api.service import DEFAULT_ORGANIZATION, SyncService
from sync_pipelines.models import (
    Credential,
    CredentialCreate,
    CredentialUpdate,
    CursorPosition,
    Destination,
    DestinationCreate,
    DestinationUpdate,
    ObjectCreate,
    ObjectUpdate,
    Permit,
    ProviderSyncCreate,
    RateLimit,
    RunLease,
    RunStats,
    RunStatus,
    Source,
    SourceCreate,
    SourceUpdate,
    Sync,
    SyncCreate,
    SyncObject,
    SyncRun,
    SyncUpdate,
)


class EmbeddedSyncApiClient:
    """Implements :class:`~sync_pipelines.api.protocol.SyncApi` for one organization, in-process.

    Arguments, returns and errors are those of the HTTP client, so callers cannot tell them apart.
    """

    def __init__(self, service: SyncService, organization_id: int) -> None:
        self.service = service
        self.organization_id = organization_id

    @classmethod
    def open(
        cls, database_url: str | None = None, *, organization: str = DEFAULT_ORGANIZATION
    ) -> EmbeddedSyncApiClient:
        """A client on the store at ``database_url`` (default: SQLite in the local home)."""
        service = SyncService.open(database_url)
        return cls(service, service.ensure_organization(organization))

    def close(self) -> None:
        """Release the store's connections."""
        self.service.engine.dispose()

    def __enter__(self) -> EmbeddedSyncApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def create_source(self, body: SourceCreate) -> Source:
        return self.service.create_source(self.organization_id, body)

    def get_source(self, source_id: int) -> Source:
        return self.service.get_source(self.organization_id, source_id)

    def list_sources(self) -> list[Source]:
        return self.service.list_sources(self.organization_id)

    def update_source(self, source_id: int, body: SourceUpdate) -> Source:
        return self.service.update_source(self.organization_id, source_id, body)

    def delete_source(self, source_id: int) -> None:
        self.service.delete_source(self.organization_id, source_id)

    def create_destination(self, body: DestinationCreate) -> Destination:
        return self.service.create_destination(self.organization_id, body)

    def get_destination(self, destination_id: int) -> Destination:
        return self.service.get_destination(self.organization_id, destination_id)

    def list_destinations(self) -> list[Destination]:
        return self.service.list_destinations(self.organization_id)

    def update_destination(self, destination_id: int, body: DestinationUpdate) -> Destination:
        return self.service.update_destination(self.organization_id, destination_id, body)

    def delete_destination(self, destination_id: int) -> None:
        self.service.delete_destination(self.organization_id, destination_id)

    def create_object(self, body: ObjectCreate) -> SyncObject:
        return self.service.create_object(self.organization_id, body)

    def get_object(self, object_id: int) -> SyncObject:
        return self.service.get_object(self.organization_id, object_id)

    def list_objects(self) -> list[SyncObject]:
        return self.service.list_objects(self.organization_id)

    def update_object(self, object_id: int, body: ObjectUpdate) -> SyncObject:
        return self.service.update_object(self.organization_id, object_id, body)

    def delete_object(self, object_id: int) -> None:
        self.service.delete_object(self.organization_id, object_id)

    def create_sync(self, body: SyncCreate | ProviderSyncCreate) -> Sync:
        return self.service.create_sync(self.organization_id, body)

    def get_sync(self, sync_id: int) -> Sync:
        return self.service.get_sync(self.organization_id, sync_id)

    def list_syncs(self, **filters: Any) -> list[Sync]:
        return self.service.list_syncs(self.organization_id, **filters)

    def update_sync(self, sync_id: int, body: SyncUpdate) -> Sync:
        return self.service.update_sync(self.organization_id, sync_id, body)

    def delete_sync(self, sync_id: int) -> None:
        self.service.delete_sync(self.organization_id, sync_id)

    def request_run(self, sync_id: int, *, full_refresh: bool = False) -> SyncRun:
        return self.service.request_run(self.organization_id, sync_id, full_refresh=full_refresh)

    def cancel_run_request(self, sync_id: int) -> SyncRun:
        return self.service.cancel_run_request(self.organization_id, sync_id)

    def list_runs(self, sync_id: int, *, status: RunStatus | None = None) -> list[SyncRun]:
        return self.service.list_runs(self.organization_id, sync_id, status=status)

    def list_requested_runs(self) -> list[SyncRun]:
        return self.service.list_requested_runs(self.organization_id)

    def get_run(self, run_id: int) -> SyncRun:
        return self.service.get_run(self.organization_id, run_id)

    def start_run(self, sync_id: int, **options: Any) -> RunLease:
        return self.service.start_run(self.organization_id, sync_id, **options)

    def heartbeat(self, run_id: int) -> SyncRun:
        return self.service.heartbeat(self.organization_id, run_id)

    def checkpoint(
        self, run_id: int, *, cursor_position: CursorPosition | None, stats: RunStats
    ) -> SyncRun:
        return self.service.checkpoint(
            self.organization_id, run_id, cursor_position=cursor_position, stats=stats
        )

    def finish_run(
        self, run_id: int, *, status: RunStatus, stats: RunStats, error: str | None = None
    ) -> SyncRun:
        return self.service.finish_run(
            self.organization_id, run_id, status=status, stats=stats, error=error
        )

    def create_credential(self, body: CredentialCreate) -> Credential:
        return self.service.create_credential(self.organization_id, body)

    def get_credential(self, credential_id: int) -> Credential:
        return self.service.get_credential(self.organization_id, credential_id)

    def list_credentials(self) -> list[Credential]:
        return self.service.list_credentials(self.organization_id)

    def update_credential(self, credential_id: int, body: CredentialUpdate) -> Credential:
        return self.service.update_credential(self.organization_id, credential_id, body)

    def delete_credential(self, credential_id: int) -> None:
        self.service.delete_credential(self.organization_id, credential_id)

    def acquire_permit(self, credential_id: int, rate_limit: RateLimit) -> Permit:
        return self.service.acquire_permit(self.organization_id, credential_id, rate_limit)

    def release_permit(self, credential_id: int, permit_id: int) -> None:
        self.service.release_permit(self.organization_id, credential_id, permit_id)

    def list_namespaces(self, connection_id: int) -> list[str]:
        return self.service.list_namespaces(self.organization_id, connection_id)

    def list_tables(self, connection_id: int, namespace: str) -> list[str]:
        return self.service.list_tables(self.organization_id, connection_id, namespace)

    def get_schema(self, connection_id: int, namespace: str, table_name: str) -> list[dict]:
        return self.service.get_schema(self.organization_id, connection_id, namespace, table_name)
