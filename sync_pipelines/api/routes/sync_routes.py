"""The routes of syncs: create, list (filtered, or by end customer), read, update, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from sync_pipelines.api.routes.dependencies import Org, PathId, QueryText, Service
from sync_pipelines.api.routes.envelopes import (
    BODY_BY_ID,
    BY_ID,
    IN_USE,
    QUERY,
    DeletedResponse,
    envelope,
    envelope_model,
    error_responses,
)
from sync_pipelines.contract.models import (
    MAX_ID,
    NO_NUL,
    AnySyncCreate,
    Sync,
    SyncRun,
    SyncStatus,
    SyncUpdate,
)

SyncResponse = envelope_model("SyncResponse", "One sync.", sync=Sync)
SyncWithRunsResponse = envelope_model(
    "SyncWithRunsResponse", "A sync and its latest runs.", sync=Sync, runs=list[SyncRun]
)
SyncsResponse = envelope_model("SyncsResponse", "Syncs.", syncs=list[Sync])

router = APIRouter()


@router.post(
    "/sync",
    tags=["Sync"],
    response_model=SyncResponse,
    responses=error_responses(400, 409, 413, 422),
)
def create_sync(body: AnySyncCreate, service: Service, org: Org) -> dict:
    """A database sync (``source_id`` + ``object_id``) or, with ``provider``, an API sync."""
    return envelope(sync=service.create_sync(org, body))


@router.get(
    "/syncs",
    tags=["Sync"],
    response_model=SyncsResponse,
    responses=QUERY,
)
def list_syncs(
    request: Request,
    service: Service,
    org: Org,
    end_customer_id: QueryText = None,
    external_id: QueryText = None,
    status: SyncStatus | None = None,
    object_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> dict:
    """Syncs, filtered; ``?metadata.KEY=VALUE`` filters on metadata."""
    metadata = {
        key.removeprefix("metadata."): value
        for key, value in request.query_params.items()
        if key.startswith("metadata.")
    }
    syncs = service.list_syncs(
        org,
        end_customer_id=end_customer_id,
        external_id=external_id,
        status=status.value if status else None,
        object_id=object_id,
        metadata=metadata,
    )
    return envelope(syncs=syncs)


@router.get(
    "/customer/{end_customer_id}/syncs",
    tags=["Sync"],
    response_model=SyncsResponse,
    responses=QUERY,
)
def list_customer_syncs(
    end_customer_id: Annotated[str, Path(max_length=255, pattern=NO_NUL)],
    service: Service,
    org: Org,
) -> dict:
    return envelope(syncs=service.list_syncs(org, end_customer_id=end_customer_id))


@router.get(
    "/sync/{sync_id}",
    tags=["Sync"],
    response_model=SyncWithRunsResponse,
    responses=BY_ID,
)
def get_sync(sync_id: PathId, service: Service, org: Org) -> dict:
    """A sync with its ten latest runs."""
    sync = service.get_sync(org, sync_id)
    return envelope(sync=sync, runs=service.list_runs(org, sync_id)[:10])


@router.patch(
    "/sync/{sync_id}",
    tags=["Sync"],
    response_model=SyncResponse,
    responses=BODY_BY_ID,
)
def update_sync(sync_id: PathId, body: SyncUpdate, service: Service, org: Org) -> dict:
    return envelope(sync=service.update_sync(org, sync_id, body))


@router.delete(
    "/sync/{sync_id}",
    tags=["Sync"],
    response_model=DeletedResponse,
    responses=IN_USE,
)
def delete_sync(sync_id: PathId, service: Service, org: Org) -> dict:
    service.delete_sync(org, sync_id)
    return {"deleted": True}
