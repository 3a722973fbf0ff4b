"""The routes of destinations: create, list, read, update, delete."""

from __future__ import annotations

from fastapi import APIRouter

from sync_pipelines.api.routes.dependencies import Org, PathId, Service
from sync_pipelines.api.routes.envelopes import (
    BODY,
    BODY_BY_ID,
    BY_ID,
    IN_USE,
    DeletedResponse,
    envelope,
    envelope_model,
    error_responses,
)
from sync_pipelines.contract.models import Destination, DestinationCreate, DestinationUpdate

DestinationResponse = envelope_model(
    "DestinationResponse", "One destination.", destination=Destination
)
DestinationsResponse = envelope_model(
    "DestinationsResponse", "Destinations.", destinations=list[Destination]
)

router = APIRouter()


@router.post(
    "/destination",
    tags=["Destination"],
    response_model=DestinationResponse,
    responses=BODY,
)
def create_destination(body: DestinationCreate, service: Service, org: Org) -> dict:
    return envelope(destination=service.create_destination(org, body))


@router.get(
    "/destinations",
    tags=["Destination"],
    response_model=DestinationsResponse,
    responses=error_responses(),
)
def list_destinations(service: Service, org: Org) -> dict:
    return envelope(destinations=service.list_destinations(org))


@router.get(
    "/destination/{destination_id}",
    tags=["Destination"],
    response_model=DestinationResponse,
    responses=BY_ID,
)
def get_destination(destination_id: PathId, service: Service, org: Org) -> dict:
    return envelope(destination=service.get_destination(org, destination_id))


@router.patch(
    "/destination/{destination_id}",
    tags=["Destination"],
    response_model=DestinationResponse,
    responses=BODY_BY_ID,
)
def update_destination(
    destination_id: PathId, body: DestinationUpdate, service: Service, org: Org
) -> dict:
    return envelope(destination=service.update_destination(org, destination_id, body))


@router.delete(
    "/destination/{destination_id}",
    tags=["Destination"],
    response_model=DeletedResponse,
    responses=IN_USE,
)
def delete_destination(destination_id: PathId, service: Service, org: Org) -> dict:
    service.delete_destination(org, destination_id)
    return {"deleted": True}
