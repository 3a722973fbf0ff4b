"""The sync API's methods, as both clients offer them.

:class:`~sync_pipelines.api.client.SyncApiClient` (HTTP) and
:class:`~sync_pipelines.api.embedded.EmbeddedSyncApiClient` (in-process) implement this protocol
with the same arguments, returns and errors, so callers cannot tell them apart.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from sync_pipelines.contract.models import (
    BackfillRange,
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
    RangeLease,
    RangeLeaseGrant,
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


class SyncApi(Protocol):
    """Everything a runner, the Dagster plugin or the CLI asks of the sync API."""

    def create_source(self, body: SourceCreate) -> Source: ...
    def get_source(self, source_id: int) -> Source: ...
    def list_sources(self) -> list[Source]: ...
    def update_source(self, source_id: int, body: SourceUpdate) -> Source: ...
    def delete_source(self, source_id: int) -> None: ...

    def create_destination(self, body: DestinationCreate) -> Destination: ...
    def get_destination(self, destination_id: int) -> Destination: ...
    def list_destinations(self) -> list[Destination]: ...
    def update_destination(self, destination_id: int, body: DestinationUpdate) -> Destination: ...
    def delete_destination(self, destination_id: int) -> None: ...

    def create_object(self, body: ObjectCreate) -> SyncObject: ...
    def get_object(self, object_id: int) -> SyncObject: ...
    def list_objects(self) -> list[SyncObject]: ...
    def update_object(self, object_id: int, body: ObjectUpdate) -> SyncObject: ...
    def delete_object(self, object_id: int) -> None: ...

    def create_sync(self, body: SyncCreate | ProviderSyncCreate) -> Sync: ...
    def get_sync(self, sync_id: int) -> Sync: ...
    def list_syncs(
        self,
        *,
        end_customer_id: str | None = None,
        external_id: str | None = None,
        status: str | None = None,
        object_id: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> list[Sync]: ...
    def update_sync(self, sync_id: int, body: SyncUpdate) -> Sync: ...
    def delete_sync(self, sync_id: int) -> None: ...

    def request_run(self, sync_id: int, *, full_refresh: bool = False) -> SyncRun: ...
    def cancel_run_request(self, sync_id: int) -> SyncRun: ...
    def list_runs(self, sync_id: int, *, status: RunStatus | None = None) -> list[SyncRun]: ...
    def get_run(self, run_id: int) -> SyncRun: ...

    def start_run(
        self,
        sync_id: int,
        *,
        full_refresh: bool = False,
        run_id: int | None = None,
        runner_id: str | None = None,
        runner_host: str | None = None,
        runner_pid: int | None = None,
        lease_seconds: float | None = None,
    ) -> RunLease: ...
    def heartbeat(self, run_id: int) -> SyncRun: ...
    def checkpoint(
        self, run_id: int, *, cursor_position: CursorPosition | None, stats: RunStats
    ) -> SyncRun: ...
    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        stats: RunStats,
        error: str | None = None,
    ) -> SyncRun: ...

    def list_requested_runs(self) -> list[SyncRun]: ...

    def acquire_range_lease(
        self,
        run_id: int,
        range_index: int,
        *,
        runner_id: str | None = None,
        runner_host: str | None = None,
        runner_pid: int | None = None,
    ) -> RangeLeaseGrant: ...
    def range_heartbeat(self, range_lease_id: int) -> RangeLease: ...
    def checkpoint_range(
        self, range_lease_id: int, *, key_range: BackfillRange, stats: RunStats
    ) -> RangeLease: ...
    def list_range_leases(self, run_id: int) -> list[RangeLease]: ...

    def create_credential(self, body: CredentialCreate) -> Credential: ...
    def get_credential(self, credential_id: int) -> Credential: ...
    def list_credentials(self) -> list[Credential]: ...
    def update_credential(self, credential_id: int, body: CredentialUpdate) -> Credential: ...
    def delete_credential(self, credential_id: int) -> None: ...
    def acquire_permit(self, credential_id: int, rate_limit: RateLimit) -> Permit: ...
    def release_permit(self, credential_id: int, permit_id: int) -> None: ...

    def list_namespaces(self, connection_id: int) -> list[str]: ...
    def list_tables(self, connection_id: int, namespace: str) -> list[str]: ...
    def get_schema(
        self, connection_id: int, namespace: str, table_name: str
    ) -> list[dict[str, Any]]: ...


SYNC_API_METHODS: frozenset[str] = frozenset(
    name
    for name, member in vars(SyncApi).items()
    if inspect.isfunction(member) and not name.startswith("_")
)
"""The names of the protocol's methods (what the embedded client binds to an organization)."""
