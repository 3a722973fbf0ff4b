"""The sync API over HTTP (FastAPI), with Fabra-compatible paths and envelopes.

Every route needs an ``X-API-KEY``; a key sees only its organization's resources. Errors are
JSON ``{"error": ..., "details": [...]}``, never a stack trace. Every route declares its
response envelope and the errors it can send, so ``/openapi.json`` is what the server does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, create_model, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_pipelines.api.service import SyncService
from sync_pipelines.common import settings
from sync_pipelines.contract.errors import (
    ErrorBody,
    SyncApiError,
    validation_details,
)
from sync_pipelines.contract.models import (
    MAX_ID,
    NO_NUL,
    AnySyncCreate,
    BackfillRange,
    Credential,
    CredentialCreate,
    CredentialUpdate,
    CursorPosition,
    Destination,
    DestinationCreate,
    DestinationUpdate,
    FieldType,
    Id,
    ObjectCreate,
    ObjectUpdate,
    Permit,
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
    SyncObject,
    SyncRun,
    SyncStatus,
    SyncUpdate,
    bounded_json,
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
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
"""An id in a path: a positive 32-bit integer (else 422 naming the parameter)."""
QueryText = Annotated[str | None, Query(max_length=255, pattern=NO_NUL)]

MAX_BODY_BYTES = 1_048_576
"""The largest request body; a larger one gets 413 before it is read."""


class RunRequest(BaseModel):
    """``POST /sync/{id}/run``: ask for a run now."""

    full_refresh: bool = False


class StartRun(BaseModel):
    """A runner asks for a sync's run lease."""

    full_refresh: bool = False
    run_id: Id | None = None
    runner_id: str | None = Field(default=None, max_length=255, pattern=NO_NUL)
    runner_host: str | None = Field(default=None, max_length=255, pattern=NO_NUL)
    runner_pid: int | None = Field(default=None, ge=0, le=2**31 - 1)
    lease_seconds: float | None = Field(default=None, gt=0, le=86400)


class Checkpoint(BaseModel):
    """A runner commits progress after a destination commit."""

    cursor_position: CursorPosition | None = None
    stats: RunStats = Field(default_factory=RunStats)

    @field_validator("cursor_position")
    @classmethod
    def _bounded(cls, value: CursorPosition | None) -> CursorPosition | None:
        if value is not None:
            bounded_json(value.model_dump(mode="json"))
        return value


class FinishRun(BaseModel):
    """A runner ends its run."""

    status: RunStatus
    stats: RunStats = Field(default_factory=RunStats)
    error: str | None = None

    @field_validator("error")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        # A driver's message may hold NUL, which PostgreSQL text cannot; the run must still end.
        return value.replace("\x00", "\ufffd") if value else value


class TableColumn(BaseModel):
    """A column of a browsed table, typed as an object field."""

    name: str
    type: FieldType
    optional: bool


def _envelope_model(name: str, doc: str, **fields: Any) -> type[BaseModel]:
    model = create_model(name, **{key: (kind, ...) for key, kind in fields.items()})
    model.__doc__ = doc
    return model


SourceResponse = _envelope_model("SourceResponse", "One source.", source=Source)
SourcesResponse = _envelope_model("SourcesResponse", "Sources.", sources=list[Source])
DestinationResponse = _envelope_model(
    "DestinationResponse", "One destination.", destination=Destination
)
DestinationsResponse = _envelope_model(
    "DestinationsResponse", "Destinations.", destinations=list[Destination]
)
ObjectResponse = _envelope_model("ObjectResponse", "One object.", object=SyncObject)
ObjectsResponse = _envelope_model("ObjectsResponse", "Objects.", objects=list[SyncObject])
SyncResponse = _envelope_model("SyncResponse", "One sync.", sync=Sync)
SyncWithRunsResponse = _envelope_model(
    "SyncWithRunsResponse", "A sync and its latest runs.", sync=Sync, runs=list[SyncRun]
)
SyncsResponse = _envelope_model("SyncsResponse", "Syncs.", syncs=list[Sync])
RunResponse = _envelope_model("RunResponse", "One run.", run=SyncRun)
RunsResponse = _envelope_model("RunsResponse", "Runs.", runs=list[SyncRun])
LeaseResponse = _envelope_model("LeaseResponse", "A granted run lease.", lease=RunLease)
CredentialResponse = _envelope_model("CredentialResponse", "One credential.", credential=Credential)
CredentialsResponse = _envelope_model(
    "CredentialsResponse", "Credentials.", credentials=list[Credential]
)
PermitResponse = _envelope_model("PermitResponse", "The rate limiter's answer.", permit=Permit)
DeletedResponse = _envelope_model("DeletedResponse", "The resource was deleted.", deleted=bool)
ReleasedResponse = _envelope_model("ReleasedResponse", "The permit was released.", released=bool)
NamespacesResponse = _envelope_model(
    "NamespacesResponse", "A database's namespaces.", namespaces=list[str]
)
TablesResponse = _envelope_model("TablesResponse", "A namespace's tables.", tables=list[str])


class SchemaResponse(BaseModel):
    """A table's columns."""

    columns: list[TableColumn] = Field(alias="schema")


_ERROR_DESCRIPTIONS = {
    400: "The body is not JSON, or the connection cannot be browsed",
    401: "Missing or invalid X-API-KEY",
    404: "No such resource in the caller's organization",
    409: "A conflict: a duplicate sync, a run lease held, a resource still in use",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes",
    422: "Validation failed: each detail names a field",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route (401 always), in the shape the server sends."""
    return {
        code: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[code]}
        for code in sorted({401, *codes})
    }


# Error sets: a route with parameters (422), with a path id (404), with a body (400, 413).
_QUERY = _errors(422)
_BY_ID = _errors(404, 422)
_BODY = _errors(400, 413, 422)
_BODY_BY_ID = _errors(400, 404, 413, 422)
_IN_USE = _errors(404, 409, 422)
_RUNNER = _errors(400, 404, 409, 413, 422)
_BROWSE = _errors(400, 404, 422)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(item) for item in value]
    return value


def _envelope(**items: Any) -> dict[str, Any]:
    return {key: _dump(value) for key, value in items.items()}


router = APIRouter()

# --- sources, destinations, objects ----------------------------------------------------------


@router.post(
    "/source",
    tags=["Source"],
    response_model=SourceResponse,
    responses=_BODY,
)
def create_source(body: SourceCreate, service: Service, org: Org) -> dict:
    return _envelope(source=service.create_source(org, body))


@router.get(
    "/sources",
    tags=["Source"],
    response_model=SourcesResponse,
    responses=_QUERY,
)
def list_sources(service: Service, org: Org, end_customer_id: QueryText = None) -> dict:
    return _envelope(sources=service.list_sources(org, end_customer_id=end_customer_id))


@router.get(
    "/source/{source_id}",
    tags=["Source"],
    response_model=SourceResponse,
    responses=_BY_ID,
)
def get_source(source_id: PathId, service: Service, org: Org) -> dict:
    return _envelope(source=service.get_source(org, source_id))


@router.patch(
    "/source/{source_id}",
    tags=["Source"],
    response_model=SourceResponse,
    responses=_BODY_BY_ID,
)
def update_source(source_id: PathId, body: SourceUpdate, service: Service, org: Org) -> dict:
    return _envelope(source=service.update_source(org, source_id, body))


@router.delete(
    "/source/{source_id}",
    tags=["Source"],
    response_model=DeletedResponse,
    responses=_IN_USE,
)
def delete_source(source_id: PathId, service: Service, org: Org) -> dict:
    service.delete_source(org, source_id)
    return {"deleted": True}


@router.post(
    "/destination",
    tags=["Destination"],
    response_model=DestinationResponse,
    responses=_BODY,
)
def create_destination(body: DestinationCreate, service: Service, org: Org) -> dict:
    return _envelope(destination=service.create_destination(org, body))


@router.get(
    "/destinations",
    tags=["Destination"],
    response_model=DestinationsResponse,
    responses=_errors(),
)
def list_destinations(service: Service, org: Org) -> dict:
    return _envelope(destinations=service.list_destinations(org))


@router.get(
    "/destination/{destination_id}",
    tags=["Destination"],
    response_model=DestinationResponse,
    responses=_BY_ID,
)
def get_destination(destination_id: PathId, service: Service, org: Org) -> dict:
    return _envelope(destination=service.get_destination(org, destination_id))


@router.patch(
    "/destination/{destination_id}",
    tags=["Destination"],
    response_model=DestinationResponse,
    responses=_BODY_BY_ID,
)
def update_destination(
    destination_id: PathId, body: DestinationUpdate, service: Service, org: Org
) -> dict:
    return _envelope(destination=service.update_destination(org, destination_id, body))


@router.delete(
    "/destination/{destination_id}",
    tags=["Destination"],
    response_model=DeletedResponse,
    responses=_IN_USE,
)
def delete_destination(destination_id: PathId, service: Service, org: Org) -> dict:
    service.delete_destination(org, destination_id)
    return {"deleted": True}


@router.post(
    "/object",
    tags=["Object"],
    response_model=ObjectResponse,
    responses=_BODY,
)
def create_object(body: ObjectCreate, service: Service, org: Org) -> dict:
    return _envelope(object=service.create_object(org, body))


@router.get(
    "/objects",
    tags=["Object"],
    response_model=ObjectsResponse,
    responses=_errors(),
)
def list_objects(service: Service, org: Org) -> dict:
    return _envelope(objects=service.list_objects(org))


@router.get(
    "/object/{object_id}",
    tags=["Object"],
    response_model=ObjectResponse,
    responses=_BY_ID,
)
def get_object(object_id: PathId, service: Service, org: Org) -> dict:
    return _envelope(object=service.get_object(org, object_id))


@router.patch(
    "/object/{object_id}",
    tags=["Object"],
    response_model=ObjectResponse,
    responses=_BODY_BY_ID,
)
def update_object(object_id: PathId, body: ObjectUpdate, service: Service, org: Org) -> dict:
    return _envelope(object=service.update_object(org, object_id, body))


@router.delete(
    "/object/{object_id}",
    tags=["Object"],
    response_model=DeletedResponse,
    responses=_IN_USE,
)
def delete_object(object_id: PathId, service: Service, org: Org) -> dict:
    service.delete_object(org, object_id)
    return {"deleted": True}


# --- syncs -----------------------------------------------------------------------------------


@router.post(
    "/sync",
    tags=["Sync"],
    response_model=SyncResponse,
    responses=_errors(400, 409, 413, 422),
)
def create_sync(body: AnySyncCreate, service: Service, org: Org) -> dict:
    """A database sync (``source_id`` + ``object_id``) or, with ``provider``, an API sync."""
    return _envelope(sync=service.create_sync(org, body))


@router.get(
    "/syncs",
    tags=["Sync"],
    response_model=SyncsResponse,
    responses=_QUERY,
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
    return _envelope(syncs=syncs)


@router.get(
    "/customer/{end_customer_id}/syncs",
    tags=["Sync"],
    response_model=SyncsResponse,
    responses=_QUERY,
)
def list_customer_syncs(
    end_customer_id: Annotated[str, Path(max_length=255, pattern=NO_NUL)],
    service: Service,
    org: Org,
) -> dict:
    return _envelope(syncs=service.list_syncs(org, end_customer_id=end_customer_id))


@router.get(
    "/sync/{sync_id}",
    tags=["Sync"],
    response_model=SyncWithRunsResponse,
    responses=_BY_ID,
)
def get_sync(sync_id: PathId, service: Service, org: Org) -> dict:
    """A sync with its ten latest runs."""
    sync = service.get_sync(org, sync_id)
    return _envelope(sync=sync, runs=service.list_runs(org, sync_id)[:10])


@router.patch(
    "/sync/{sync_id}",
    tags=["Sync"],
    response_model=SyncResponse,
    responses=_BODY_BY_ID,
)
def update_sync(sync_id: PathId, body: SyncUpdate, service: Service, org: Org) -> dict:
    return _envelope(sync=service.update_sync(org, sync_id, body))


@router.delete(
    "/sync/{sync_id}",
    tags=["Sync"],
    response_model=DeletedResponse,
    responses=_IN_USE,
)
def delete_sync(sync_id: PathId, service: Service, org: Org) -> dict:
    service.delete_sync(org, sync_id)
    return {"deleted": True}


@router.post(
    "/sync/{sync_id}/run",
    tags=["Run"],
    response_model=RunResponse,
    responses=_RUNNER,
)
def request_run(
    sync_id: PathId, service: Service, org: Org, body: RunRequest | None = None
) -> dict:
    """Request a run now; the scheduler starts it once."""
    full_refresh = body.full_refresh if body else False
    return _envelope(run=service.request_run(org, sync_id, full_refresh=full_refresh))


@router.delete(
    "/sync/{sync_id}/run",
    tags=["Run"],
    response_model=RunResponse,
    responses=_BY_ID,
)
def cancel_run(sync_id: PathId, service: Service, org: Org) -> dict:
    """Cancel the pending request, else the running run."""
    return _envelope(run=service.cancel_run_request(org, sync_id))


@router.get(
    "/sync/{sync_id}/runs",
    tags=["Run"],
    response_model=RunsResponse,
    responses=_BY_ID,
)
def list_runs(sync_id: PathId, service: Service, org: Org, status: RunStatus | None = None) -> dict:
    return _envelope(runs=service.list_runs(org, sync_id, status=status))


# --- credentials and their rate limiter ------------------------------------------------------


@router.post(
    "/credential",
    tags=["Credential"],
    response_model=CredentialResponse,
    responses=_BODY,
)
def create_credential(body: CredentialCreate, service: Service, org: Org) -> dict:
    return _envelope(credential=service.create_credential(org, body))


@router.get(
    "/credentials",
    tags=["Credential"],
    response_model=CredentialsResponse,
    responses=_errors(),
)
def list_credentials(service: Service, org: Org) -> dict:
    return _envelope(credentials=service.list_credentials(org))


@router.get(
    "/credential/{credential_id}",
    tags=["Credential"],
    response_model=CredentialResponse,
    responses=_BY_ID,
)
def get_credential(credential_id: PathId, service: Service, org: Org) -> dict:
    return _envelope(credential=service.get_credential(org, credential_id))


@router.patch(
    "/credential/{credential_id}",
    tags=["Credential"],
    response_model=CredentialResponse,
    responses=_BODY_BY_ID,
)
def update_credential(
    credential_id: PathId, body: CredentialUpdate, service: Service, org: Org
) -> dict:
    return _envelope(credential=service.update_credential(org, credential_id, body))


@router.delete(
    "/credential/{credential_id}",
    tags=["Credential"],
    response_model=DeletedResponse,
    responses=_IN_USE,
)
def delete_credential(credential_id: PathId, service: Service, org: Org) -> dict:
    service.delete_credential(org, credential_id)
    return {"deleted": True}


@router.post(
    "/credential/{credential_id}/permits",
    tags=["Runner"],
    response_model=PermitResponse,
    responses=_BODY_BY_ID,
)
def acquire_permit(credential_id: PathId, body: RateLimit, service: Service, org: Org) -> dict:
    """Ask the shared rate limiter for one request with this credential."""
    return _envelope(permit=service.acquire_permit(org, credential_id, body))


@router.delete(
    "/credential/{credential_id}/permits/{permit_id}",
    tags=["Runner"],
    response_model=ReleasedResponse,
    responses=_BY_ID,
)
def release_permit(credential_id: PathId, permit_id: PathId, service: Service, org: Org) -> dict:
    service.release_permit(org, credential_id, permit_id)
    return {"released": True}


# --- runner endpoints ------------------------------------------------------------------------


@router.get(
    "/runs/requested",
    tags=["Runner"],
    response_model=RunsResponse,
    responses=_errors(),
)
def list_requested_runs(service: Service, org: Org) -> dict:
    """Pending ``POST /sync/{id}/run`` requests, for schedulers."""
    return _envelope(runs=service.list_requested_runs(org))


@router.post(
    "/sync/{sync_id}/runs/start",
    tags=["Runner"],
    response_model=LeaseResponse,
    responses=_RUNNER,
)
def start_run(sync_id: PathId, body: StartRun, service: Service, org: Org) -> dict:
    """Take the sync's run lease (409 while another run holds it)."""
    lease = service.start_run(org, sync_id, **body.model_dump())
    return _envelope(lease=lease)


@router.get(
    "/run/{run_id}",
    tags=["Runner"],
    response_model=RunResponse,
    responses=_BY_ID,
)
def get_run(run_id: PathId, service: Service, org: Org) -> dict:
    return _envelope(run=service.get_run(org, run_id))


@router.post(
    "/run/{run_id}/checkpoint",
    tags=["Runner"],
    response_model=RunResponse,
    responses=_RUNNER,
)
def checkpoint(run_id: PathId, body: Checkpoint, service: Service, org: Org) -> dict:
    run = service.checkpoint(org, run_id, cursor_position=body.cursor_position, stats=body.stats)
    return _envelope(run=run)


@router.post(
    "/run/{run_id}/heartbeat",
    tags=["Runner"],
    response_model=RunResponse,
    responses=_RUNNER,
)
def heartbeat(run_id: PathId, service: Service, org: Org) -> dict:
    """Renew the run's lease (409 once it is cancelled or taken over: stop writing)."""
    return _envelope(run=service.heartbeat(org, run_id))


class StartRangeLease(BaseModel):
    """A runner asks for a lease on one key range of a run's backfill."""

    runner_id: str | None = Field(default=None, max_length=255, pattern=NO_NUL)
    runner_host: str | None = Field(default=None, max_length=255, pattern=NO_NUL)
    runner_pid: int | None = Field(default=None, ge=0, le=2**31 - 1)


class RangeCheckpoint(BaseModel):
    """A range holder commits progress: the range's last committed key (``done`` once loaded)
    and its counts since its previous checkpoint."""

    key_range: BackfillRange
    stats: RunStats = Field(default_factory=RunStats)

    @field_validator("key_range")
    @classmethod
    def _bounded(cls, value: BackfillRange) -> BackfillRange:
        bounded_json(value.model_dump(mode="json"))
        return value


RangeIndex = Annotated[int, Path(ge=0, le=1023)]
RangeLeaseResponse = _envelope_model(
    "RangeLeaseResponse", "One range lease.", range_lease=RangeLease
)
RangeLeasesResponse = _envelope_model(
    "RangeLeasesResponse", "A run's range leases.", range_leases=list[RangeLease]
)
RangeLeaseGrantResponse = _envelope_model(
    "RangeLeaseGrantResponse", "A granted range lease, with its run's lease.", grant=RangeLeaseGrant
)


@router.post(
    "/run/{run_id}/ranges/{range_index}/lease",
    tags=["Runner"],
    response_model=RangeLeaseGrantResponse,
    responses=_RUNNER,
)
def acquire_range_lease(
    run_id: PathId, range_index: RangeIndex, body: StartRangeLease, service: Service, org: Org
) -> dict:
    """Lease one key range of a running run's backfill (409 while a live holder has it)."""
    grant = service.acquire_range_lease(org, run_id, range_index, **body.model_dump())
    return _envelope(grant=grant)


@router.get(
    "/run/{run_id}/ranges",
    tags=["Runner"],
    response_model=RangeLeasesResponse,
    responses=_BY_ID,
)
def list_range_leases(run_id: PathId, service: Service, org: Org) -> dict:
    return _envelope(range_leases=service.list_range_leases(org, run_id))


@router.post(
    "/range_lease/{range_lease_id}/heartbeat",
    tags=["Runner"],
    response_model=RangeLeaseResponse,
    responses=_RUNNER,
)
def range_heartbeat(range_lease_id: PathId, service: Service, org: Org) -> dict:
    """Renew a range lease and its run's lease (409 once taken over: stop writing)."""
    return _envelope(range_lease=service.range_heartbeat(org, range_lease_id))


@router.post(
    "/range_lease/{range_lease_id}/checkpoint",
    tags=["Runner"],
    response_model=RangeLeaseResponse,
    responses=_RUNNER,
)
def checkpoint_range(
    range_lease_id: PathId, body: RangeCheckpoint, service: Service, org: Org
) -> dict:
    lease = service.checkpoint_range(
        org, range_lease_id, key_range=body.key_range, stats=body.stats
    )
    return _envelope(range_lease=lease)


@router.post(
    "/run/{run_id}/finish",
    tags=["Runner"],
    response_model=RunResponse,
    responses=_RUNNER,
)
def finish_run(run_id: PathId, body: FinishRun, service: Service, org: Org) -> dict:
    run = service.finish_run(org, run_id, status=body.status, stats=body.stats, error=body.error)
    return _envelope(run=run)


# --- browsing a connection -------------------------------------------------------------------

ConnectionId = Annotated[
    int,
    Query(ge=1, le=MAX_ID, description="a source's or destination's connection"),
]
BrowsedName = Annotated[str, Query(min_length=1, max_length=255)]


@router.get(
    "/connection/namespaces",
    tags=["Connection"],
    response_model=NamespacesResponse,
    responses=_BROWSE,
)
def namespaces(connection_id: ConnectionId, service: Service, org: Org) -> dict:
    return {"namespaces": service.list_namespaces(org, connection_id)}


@router.get(
    "/connection/tables",
    tags=["Connection"],
    response_model=TablesResponse,
    responses=_BROWSE,
)
def tables(connection_id: ConnectionId, namespace: BrowsedName, service: Service, org: Org) -> dict:
    return {"tables": service.list_tables(org, connection_id, namespace)}


@router.get(
    "/connection/schema",
    tags=["Connection"],
    response_model=SchemaResponse,
    responses=_BROWSE,
)
def schema(
    connection_id: ConnectionId,
    namespace: BrowsedName,
    table_name: BrowsedName,
    service: Service,
    org: Org,
) -> dict:
    return {"schema": service.get_schema(org, connection_id, namespace, table_name)}


# --- the app ---------------------------------------------------------------------------------


def _error(status_code: int, message: str, details: list | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status_code, content={"error": message, "details": details or []}
    )


def _allowed_methods(scope: Scope) -> list[str]:
    methods: set[str] = set()
    for route in router.routes:
        if route.matches(scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


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
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        response = _error(error.status_code, str(error.detail))
        response.headers.update(error.headers or {})
        if error.status_code == 405:  # every method of the path, not only the first route's
            response.headers["Allow"] = ", ".join(_allowed_methods(request.scope))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; the server log has the details")


class _BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` gets 413 (by its Content-Length, before it
    is read, or as soon as the streamed bytes pass the limit)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"at most {self.max_bytes} bytes"
        response = _error(
            413,
            f"the request body is too large ({message})",
            [{"field": "body", "message": message}],
        )
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


_V010_CONNECTION_ID = re.compile(rb"(^|&)connectionID=")


class _FabraV010Query:
    """ASGI middleware: Fabra 0.1.0 sent ``?connectionID=``; it reaches the app as
    ``connection_id`` (the documented name) unless that is given too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if _V010_CONNECTION_ID.search(query) and not re.search(rb"(^|&)connection_id=", query):
            scope = dict(scope, query_string=_V010_CONNECTION_ID.sub(rb"\1connection_id=", query))
        await self.app(scope, receive, send)


def create_app(
    service: SyncService | None = None,
    *,
    database_url: str | None = None,
    file_roots: Sequence[str] | None = None,
) -> FastAPI:
    """The sync API's FastAPI app over ``service`` (default: a store at ``database_url``).

    A server confines organizations' file databases (SQLite, DuckDB) to ``file_roots``
    (default: ``$SYNC_PIPELINES_FILE_ROOTS``; none: refused); ``service`` is set up so.
    """
    service = service or SyncService.open(database_url)
    service.file_roots = list(settings.file_roots() if file_roots is None else file_roots)
    app = FastAPI(
        title="sync-pipelines API",
        version="0.1.0",
        description="Sources, destinations, objects, syncs and runs (Fabra-compatible).",
        generate_unique_id_function=lambda route: route.name,  # operationId = the function
    )
    app.state.service = service
    app.include_router(router)
    _install_error_handlers(app)
    app.add_middleware(_FabraV010Query)
    app.add_middleware(_BodyLimit)
    return app
