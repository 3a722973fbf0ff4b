"""The sync API's methods, as both clients offer them.

:class:`~sync_pipelines.api.client.SyncApiClient` (HTTP) and
:class:`~sync_pipelines.api.embedded.EmbeddedSyncApiClient` (in-process) implement this protocol
with the same arguments, returns and errors, so callers cannot tell them apart.
"""

from __future__ import annotations

from typing import Any, Protocol

from sync_pipelines.models import (
    CursorPosition,
    Destination,
    DestinationCreate,
    ObjectCreate,
    RunLease,
    RunStats,
    RunStatus,
    Source,
    SourceCreate,
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
    def delete_source(self, source_id: int) -> None: ...

    def create_destination(self, body: DestinationCreate) -> Destination: ...
    def get_destination(self, destination_id: int) -> Destination: ...
    def list_destinations(self) -> list[Destination]: ...
    def delete_destination(self, destination_id: int) -> None: ...

    def create_object(self, body: ObjectCreate) -> SyncObject: ...
    def get_object(self, object_id: int) -> SyncObject: ...
    def list_objects(self) -> list[SyncObject]: ...
    def delete_object(self, object_id: int) -> None: ...

    def create_sync(self, body: SyncCreate) -> Sync: ...
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
        lease_seconds: float | None = None,
    ) -> RunLease: ...
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

    def list_namespaces(self, connection_id: int) -> list[str]: ...
    def list_tables(self, connection_id: int, namespace: str) -> list[str]: ...
    def get_schema(
        self, connection_id: int, namespace: str, table_name: str
    ) -> list[dict[str, Any]]: ...
