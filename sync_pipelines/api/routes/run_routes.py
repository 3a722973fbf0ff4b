"""The routes of a sync's runs: request one now, cancel it, list them."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from sync_pipelines.api.routes.dependencies import Org, PathId, Service
from sync_pipelines.api.routes.envelopes import BY_ID, RUNNER, envelope, envelope_model
from sync_pipelines.contract.models import RunStatus, SyncRun


class RunRequest(BaseModel):
    """``POST /sync/{id}/run``: ask for a run now."""

    full_refresh: bool = False


RunResponse = envelope_model("RunResponse", "One run.", run=SyncRun)
RunsResponse = envelope_model("RunsResponse", "Runs.", runs=list[SyncRun])

router = APIRouter()


@router.post(
    "/sync/{sync_id}/run",
    tags=["Run"],
    response_model=RunResponse,
    responses=RUNNER,
)
def request_run(
    sync_id: PathId, service: Service, org: Org, body: RunRequest | None = None
) -> dict:
    """Request a run now; the scheduler starts it once."""
    full_refresh = body.full_refresh if body else False
    return envelope(run=service.request_run(org, sync_id, full_refresh=full_refresh))


@router.delete(
    "/sync/{sync_id}/run",
    tags=["Run"],
    response_model=RunResponse,
    responses=BY_ID,
)
def cancel_run(sync_id: PathId, service: Service, org: Org) -> dict:
    """Cancel the pending request, else the running run."""
    return envelope(run=service.cancel_run_request(org, sync_id))


@router.get(
    "/sync/{sync_id}/runs",
    tags=["Run"],
    response_model=RunsResponse,
    responses=BY_ID,
)
def list_runs(sync_id: PathId, service: Service, org: Org, status: RunStatus | None = None) -> dict:
    return envelope(runs=service.list_runs(org, sync_id, status=status))
