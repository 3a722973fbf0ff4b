"""The routes of range leases: runners of one run's backfill lease its key ranges, renew and
checkpoint them, and release them after a failure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, field_validator

from sync_pipelines.api.routes.dependencies import Org, PathId, Service
from sync_pipelines.api.routes.envelopes import (
    BODY_BY_ID,
    BY_ID,
    RUNNER,
    envelope,
    envelope_model,
)
from sync_pipelines.contract.models import (
    MAX_RANGE_LEASE_ERROR_CHARS,
    NO_NUL,
    BackfillRange,
    RangeLease,
    RangeLeaseGrant,
    RunStats,
    bounded_json,
)


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


class ReleaseRangeLease(BaseModel):
    """A range holder that stopped after an error gives its range up, saying why."""

    error: str = Field(min_length=1, max_length=MAX_RANGE_LEASE_ERROR_CHARS)


RangeIndex = Annotated[int, Path(ge=0, le=1023)]
RangeLeaseResponse = envelope_model(
    "RangeLeaseResponse", "One range lease.", range_lease=RangeLease
)
RangeLeasesResponse = envelope_model(
    "RangeLeasesResponse", "A run's range leases.", range_leases=list[RangeLease]
)
RangeLeaseGrantResponse = envelope_model(
    "RangeLeaseGrantResponse", "A granted range lease, with its run's lease.", grant=RangeLeaseGrant
)

router = APIRouter()


@router.post(
    "/run/{run_id}/ranges/{range_index}/lease",
    tags=["Runner"],
    response_model=RangeLeaseGrantResponse,
    responses=RUNNER,
)
def acquire_range_lease(
    run_id: PathId, range_index: RangeIndex, body: StartRangeLease, service: Service, org: Org
) -> dict:
    """Lease one key range of a running run's backfill (409 while a live holder has it)."""
    grant = service.acquire_range_lease(org, run_id, range_index, **body.model_dump())
    return envelope(grant=grant)


@router.get(
    "/run/{run_id}/ranges",
    tags=["Runner"],
    response_model=RangeLeasesResponse,
    responses=BY_ID,
)
def list_range_leases(run_id: PathId, service: Service, org: Org) -> dict:
    return envelope(range_leases=service.list_range_leases(org, run_id))


@router.post(
    "/range_lease/{range_lease_id}/heartbeat",
    tags=["Runner"],
    response_model=RangeLeaseResponse,
    responses=RUNNER,
)
def range_heartbeat(range_lease_id: PathId, service: Service, org: Org) -> dict:
    """Renew a range lease and its run's lease (409 once taken over: stop writing)."""
    return envelope(range_lease=service.range_heartbeat(org, range_lease_id))


@router.post(
    "/range_lease/{range_lease_id}/checkpoint",
    tags=["Runner"],
    response_model=RangeLeaseResponse,
    responses=RUNNER,
)
def checkpoint_range(
    range_lease_id: PathId, body: RangeCheckpoint, service: Service, org: Org
) -> dict:
    lease = service.checkpoint_range(
        org, range_lease_id, key_range=body.key_range, stats=body.stats
    )
    return envelope(range_lease=lease)


@router.post(
    "/range_lease/{range_lease_id}/release",
    tags=["Runner"],
    response_model=RangeLeaseResponse,
    responses=BODY_BY_ID,
)
def release_range_lease(
    range_lease_id: PathId, body: ReleaseRangeLease, service: Service, org: Org
) -> dict:
    """Give a failed holder's range up: the next holder takes it at once (a lease no longer
    held is returned unchanged)."""
    lease = service.release_range_lease(org, range_lease_id, error=body.error)
    return envelope(range_lease=lease)
