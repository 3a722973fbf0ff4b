"""The sync API over HTTP (FastAPI), with Fabra-compatible paths and envelopes.

Every route needs an ``X-API-KEY``; a key sees only its organization's resources. Errors are
JSON ``{"error": ..., "details": [...]}``, never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from sync_pipelines.api.errors import SyncApiError, ValidationFailedError, validation_details
from sync_pipelines.api.service import SyncService
from sync_pipelines.models import (
    AnySyncCreate,
    CredentialCreate,
    CredentialUpdate,
    CursorPosition,
    DestinationCreate,
    DestinationUpdate,
    ObjectCreate,
    ObjectUpdate,
    RateLimit,
    RunStats,
    RunStatus,
    SourceCreate,
    SourceUpdate,
    SyncStatus,
    SyncUpdate,
)

logger = logging.getLogger("sync_pipelines.api")

_api_key_header = APIKeyHeader(name="X-API-KEY", auto_error=False)


def _service(request: Request) -> SyncService:
    return request.app.state.service


def _organization(
    request: Request, api_key: Annotated[str | None, Depends(_api_key_header)]
) -> int:
    return _service(request).authenticate(api_key)


Service = Annotated[SyncService, Depends(_service)]
Org = Annotated[int, Depends(_organization)]


class RunRequest(BaseModel):
    """``POST /sync/{id}/run``: ask for a run now."""

    full_refresh: bool = False


class StartRun(BaseModel):
    """A runner asks for a sync's run lease."""

    full_refresh: bool = False
    run_id: int | None = None
    runner_id: str | None = Field(default=None, max_length=255)
    runner_host: str | None = Field(default=None, max_length=255)
    runner_pid: int | None = Field(default=None, ge=0, le=2**31 - 1)
    lease_seconds: float | None = Field(default=None, gt=0, le=86400)


class Checkpoint(BaseModel):
    """A runner commits progress after a destination commit."""

    cursor_position: CursorPosition | None = None
    stats: RunStats = Field(default_factory=RunStats)


class FinishRun(BaseModel):
    """A runner ends its run."""

    status: RunStatus
    stats: RunStats = Field(default_factory=RunStats)
    error: str | None = None


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(item) for item in value]
    return value


def _envelope(**items: Any) -> dict[str, Any]:
    return {key: _dump(value) for key, value in items.items()}


def _connection_id(connection_id: int | None, connection_id_v010: int | None) -> int:
    chosen = connection_id if connection_id is not None else connection_id_v010
    if chosen is None:
        raise ValidationFailedError.for_field("connection_id", "required")
    return chosen


router = APIRouter()

# --- sources, destinations, objects ----------------------------------------------------------


@router.post("/source", tags=["Source"])
def create_source(body: SourceCreate, service: Service, org: Org) -> dict:
    return _envelope(source=service.create_source(org, body))


@router.get("/sources", tags=["Source"])
def list_sources(service: Service, org: Org, end_customer_id: str | None = None) -> dict:
    return _envelope(sources=service.list_sources(org, end_customer_id=end_customer_id))


@router.get("/source/{source_id}", tags=["Source"])
def get_source(source_id: int, service: Service, org: Org) -> dict:
    return _envelope(source=service.get_source(org, source_id))


@router.patch("/source/{source_id}", tags=["Source"])
def update_source(source_id: int, body: SourceUpdate, service: Service, org: Org) -> dict:
    return _envelope(source=service.update_source(org, source_id, body))


@router.delete("/source/{source_id}", tags=["Source"])
def delete_source(source_id: int, service: Service, org: Org) -> dict:
    service.delete_source(org, source_id)
    return {"deleted": True}


@router.post("/destination", tags=["Destination"])
def create_destination(body: DestinationCreate, service: Service, org: Org) -> dict:
    return _envelope(destination=service.create_destination(org, body))


@router.get("/destinations", tags=["Destination"])
def list_destinations(service: Service, org: Org) -> dict:
    return _envelope(destinations=service.list_destinations(org))


@router.get("/destination/{destination_id}", tags=["Destination"])
def get_destination(destination_id: int, service: Service, org: Org) -> dict:
    return _envelope(destination=service.get_destination(org, destination_id))


@router.patch("/destination/{destination_id}", tags=["Destination"])
def update_destination(
    destination_id: int, body: DestinationUpdate, service: Service, org: Org
) -> dict:
    return _envelope(destination=service.update_destination(org, destination_id, body))


@router.delete("/destination/{destination_id}", tags=["Destination"])
def delete_destination(destination_id: int, service: Service, org: Org) -> dict:
    service.delete_destination(org, destination_id)
    return {"deleted": True}


@router.post("/object", tags=["Object"])
def create_object(body: ObjectCreate, service: Service, org: Org) -> dict:
    return _envelope(object=service.create_object(org, body))


@router.get("/objects", tags=["Object"])
def list_objects(service: Service, org: Org) -> dict:
    return _envelope(objects=service.list_objects(org))


@router.get("/object/{object_id}", tags=["Object"])
def get_object(object_id: int, service: Service, org: Org) -> dict:
    return _envelope(object=service.get_object(org, object_id))


@router.patch("/object/{object_id}", tags=["Object"])
def update_object(object_id: int, body: ObjectUpdate, service: Service, org: Org) -> dict:
    return _envelope(object=service.update_object(org, object_id, body))


@router.delete("/object/{object_id}", tags=["Object"])
def delete_object(object_id: int, service: Service, org: Org) -> dict:
    service.delete_object(org, object_id)
    return {"deleted": True}


# --- syncs -----------------------------------------------------------------------------------


@router.post("/sync", tags=["Sync"])
def create_sync(body: AnySyncCreate, service: Service, org: Org) -> dict:
    """A database sync (``source_id`` + ``object_id``) or, with ``provider``, an API sync."""
    return _envelope(sync=service.create_sync(org, body))


@router.get("/syncs", tags=["Sync"])
def list_syncs(
    request: Request,
    service: Service,
    org: Org,
    end_customer_id: str | None = None,
    external_id: str | None = None,
    status: SyncStatus | None = None,
    object_id: int | None = None,
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
    return _envelope(syncs=syncs)


@router.get("/customer/{end_customer_id}/syncs", tags=["Sync"])
def list_customer_syncs(end_customer_id: str, service: Service, org: Org) -> dict:
    return _envelope(syncs=service.list_syncs(org, end_customer_id=end_customer_id))


@router.get("/sync/{sync_id}", tags=["Sync"])
def get_sync(sync_id: int, service: Service, org: Org) -> dict:
    """A sync with its ten latest runs."""
    sync = service.get_sync(org, sync_id)
    return _envelope(sync=sync, runs=service.list_runs(org, sync_id)[:10])


@router.patch("/sync/{sync_id}", tags=["Sync"])
def update_sync(sync_id: int, body: SyncUpdate, service: Service, org: Org) -> dict:
    return _envelope(sync=service.update_sync(org, sync_id, body))


@router.delete("/sync/{sync_id}", tags=["Sync"])
def delete_sync(sync_id: int, service: Service, org: Org) -> dict:
    service.delete_sync(org, sync_id)
    return {"deleted": True}


@router.post("/sync/{sync_id}/run", tags=["Run"])
def request_run(sync_id: int, service: Service, org: Org, body: RunRequest | None = None) -> dict:
    """Request a run now; the scheduler starts it once."""
    full_refresh = body.full_refresh if body else False
    return _envelope(run=service.request_run(org, sync_id, full_refresh=full_refresh))


@router.delete("/sync/{sync_id}/run", tags=["Run"])
def cancel_run(sync_id: int, service: Service, org: Org) -> dict:
    """Cancel the pending request, else the running run."""
    return _envelope(run=service.cancel_run_request(org, sync_id))


@router.get("/sync/{sync_id}/runs", tags=["Run"])
def list_runs(sync_id: int, service: Service, org: Org, status: RunStatus | None = None) -> dict:
    return _envelope(runs=service.list_runs(org, sync_id, status=status))


# --- credentials and their rate limiter ------------------------------------------------------


@router.post("/credential", tags=["Credential"])
def create_credential(body: CredentialCreate, service: Service, org: Org) -> dict:
    return _envelope(credential=service.create_credential(org, body))


@router.get("/credentials", tags=["Credential"])
def list_credentials(service: Service, org: Org) -> dict:
    return _envelope(credentials=service.list_credentials(org))


@router.get("/credential/{credential_id}", tags=["Credential"])
def get_credential(credential_id: int, service: Service, org: Org) -> dict:
    return _envelope(credential=service.get_credential(org, credential_id))


@router.patch("/credential/{credential_id}", tags=["Credential"])
def update_credential(
    credential_id: int, body: CredentialUpdate, service: Service, org: Org
) -> dict:
    return _envelope(credential=service.update_credential(org, credential_id, body))


@router.delete("/credential/{credential_id}", tags=["Credential"])
def delete_credential(credential_id: int, service: Service, org: Org) -> dict:
    service.delete_credential(org, credential_id)
    return {"deleted": True}


@router.post("/credential/{credential_id}/permits", tags=["Runner"])
def acquire_permit(credential_id: int, body: RateLimit, service: Service, org: Org) -> dict:
    """Ask the shared rate limiter for one request with this credential."""
    return _envelope(permit=service.acquire_permit(org, credential_id, body))


@router.delete("/credential/{credential_id}/permits/{permit_id}", tags=["Runner"])
def release_permit(credential_id: int, permit_id: int, service: Service, org: Org) -> dict:
    service.release_permit(org, credential_id, permit_id)
    return {"released": True}


# --- runner endpoints ------------------------------------------------------------------------


@router.get("/runs/requested", tags=["Runner"])
def list_requested_runs(service: Service, org: Org) -> dict:
    """Pending ``POST /sync/{id}/run`` requests, for schedulers."""
    return _envelope(runs=service.list_requested_runs(org))


@router.post("/sync/{sync_id}/runs/start", tags=["Runner"])
def start_run(sync_id: int, body: StartRun, service: Service, org: Org) -> dict:
    """Take the sync's run lease (409 while another run holds it)."""
    lease = service.start_run(org, sync_id, **body.model_dump())
    return _envelope(lease=lease)


@router.get("/run/{run_id}", tags=["Runner"])
def get_run(run_id: int, service: Service, org: Org) -> dict:
    return _envelope(run=service.get_run(org, run_id))


@router.post("/run/{run_id}/checkpoint", tags=["Runner"])
def checkpoint(run_id: int, body: Checkpoint, service: Service, org: Org) -> dict:
    run = service.checkpoint(org, run_id, cursor_position=body.cursor_position, stats=body.stats)
    return _envelope(run=run)


@router.post("/run/{run_id}/heartbeat", tags=["Runner"])
def heartbeat(run_id: int, service: Service, org: Org) -> dict:
    """Renew the run's lease (409 once it is cancelled or taken over: stop writing)."""
    return _envelope(run=service.heartbeat(org, run_id))


@router.post("/run/{run_id}/finish", tags=["Runner"])
def finish_run(run_id: int, body: FinishRun, service: Service, org: Org) -> dict:
    run = service.finish_run(org, run_id, status=body.status, stats=body.stats, error=body.error)
    return _envelope(run=run)


# --- browsing a connection -------------------------------------------------------------------

ConnectionId = Annotated[int | None, Query(description="a source's or destination's connection")]
ConnectionIdV010 = Annotated[int | None, Query(alias="connectionID", include_in_schema=False)]


@router.get("/connection/namespaces", tags=["Connection"])
def namespaces(
    service: Service,
    org: Org,
    connection_id: ConnectionId = None,
    connection_id_v010: ConnectionIdV010 = None,
) -> dict:
    connection = _connection_id(connection_id, connection_id_v010)
    return {"namespaces": service.list_namespaces(org, connection)}


@router.get("/connection/tables", tags=["Connection"])
def tables(
    namespace: str,
    service: Service,
    org: Org,
    connection_id: ConnectionId = None,
    connection_id_v010: ConnectionIdV010 = None,
) -> dict:
    connection = _connection_id(connection_id, connection_id_v010)
    return {"tables": service.list_tables(org, connection, namespace)}


@router.get("/connection/schema", tags=["Connection"])
def schema(
    namespace: str,
    table_name: str,
    service: Service,
    org: Org,
    connection_id: ConnectionId = None,
    connection_id_v010: ConnectionIdV010 = None,
) -> dict:
    connection = _connection_id(connection_id, connection_id_v010)
    return {"schema": service.get_schema(org, connection, namespace, table_name)}


# --- the app ---------------------------------------------------------------------------------


def _error(status_code: int, message: str, details: list | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status_code, content={"error": message, "details": details or []}
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SyncApiError)
    async def _api_error(_request: Request, error: SyncApiError) -> JSONResponse:
        return _error(error.status_code, error.message, error.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        if any(item.get("type") == "json_invalid" for item in error.errors()):
            return _error(400, "the body is not valid JSON")
        details = validation_details(error.errors())
        return _error(422, "validation failed", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; the server log has the details")


def create_app(service: SyncService | None = None, *, database_url: str | None = None) -> FastAPI:
    """The sync API's FastAPI app over ``service`` (default: a store at ``database_url``)."""
    app = FastAPI(
        title="sync-pipelines API",
        version="0.1.0",
        description="Sources, destinations, objects, syncs and runs (Fabra-compatible).",
    )
    app.state.service = service or SyncService.open(database_url)
    app.include_router(router)
    _install_error_handlers(app)
    return app
