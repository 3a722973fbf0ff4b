"""The routes of the run lease protocol: a runner finds requested runs, takes a sync's run
lease, checkpoints and renews it, and finishes the run (a run's range leases, in
``range_lease_routes``, are served among them)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from sync_pipelines.api.routes import range_lease_routes
from sync_pipelines.api.routes.dependencies import Org, PathId, Service
from sync_pipelines.api.routes.envelopes import (
    BY_ID,
    RUNNER,
    envelope,
    envelope_model,
    error_responses,
)
from sync_pipelines.api.routes.run_routes import RunResponse, RunsResponse
from sync_pipelines.contract.models import (
    NO_NUL,
    CursorPosition,
    Id,
    RunLease,
    RunStats,
    RunStatus,
    bounded_json,
)


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


LeaseResponse = envelope_model("LeaseResponse", "A granted run lease.", lease=RunLease)

router = APIRouter()


@router.get(
    "/runs/requested",
    tags=["Runner"],
    response_model=RunsResponse,
    responses=error_responses(),
)
def list_requested_runs(service: Service, org: Org) -> dict:
    """Pending ``POST /sync/{id}/run`` requests, for schedulers."""
    return envelope(runs=service.list_requested_runs(org))


@router.post(
    "/sync/{sync_id}/runs/start",
    tags=["Runner"],
    response_model=LeaseResponse,
    responses=RUNNER,
)
def start_run(sync_id: PathId, body: StartRun, service: Service, org: Org) -> dict:
    """Take the sync's run lease (409 while another run holds it)."""
    lease = service.start_run(org, sync_id, **body.model_dump())
    return envelope(lease=lease)


@router.get(
    "/run/{run_id}",
    tags=["Runner"],
    response_model=RunResponse,
    responses=BY_ID,
)
def get_run(run_id: PathId, service: Service, org: Org) -> dict:
    return envelope(run=service.get_run(org, run_id))


@router.post(
    "/run/{run_id}/checkpoint",
    tags=["Runner"],
    response_model=RunResponse,
    responses=RUNNER,
)
def checkpoint(run_id: PathId, body: Checkpoint, service: Service, org: Org) -> dict:
    run = service.checkpoint(org, run_id, cursor_position=body.cursor_position, stats=body.stats)
    return envelope(run=run)


@router.post(
    "/run/{run_id}/heartbeat",
    tags=["Runner"],
    response_model=RunResponse,
    responses=RUNNER,
)
def heartbeat(run_id: PathId, service: Service, org: Org) -> dict:
    """Renew the run's lease (409 once it is cancelled or taken over: stop writing)."""
    return envelope(run=service.heartbeat(org, run_id))


# A run's range leases are held within its lease; their paths come before finishing it.
router.include_router(range_lease_routes.router)


@router.post(
    "/run/{run_id}/finish",
    tags=["Runner"],
    response_model=RunResponse,
    responses=RUNNER,
)
def finish_run(run_id: PathId, body: FinishRun, service: Service, org: Org) -> dict:
    run = service.finish_run(org, run_id, status=body.status, stats=body.stats, error=body.error)
    return envelope(run=run)
