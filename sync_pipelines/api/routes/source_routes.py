"""The routes of sources: create, list, read, update, delete."""

from __future__ import annotations

from fastapi import APIRouter

from sync_pipelines.api.routes.dependencies import Org, PathId, QueryText, Service
from sync_pipelines.api.routes.envelopes import (
    BODY,
    BODY_BY_ID,
    BY_ID,
    IN_USE,
    QUERY,
    DeletedResponse,
    envelope,
    envelope_model,
)
from sync_pipelines.contract.models import Source, SourceCreate, SourceUpdate

SourceResponse = envelope_model("SourceResponse", "One source.", source=Source)
SourcesResponse = envelope_model("SourcesResponse", "Sources.", sources=list[Source])

router = APIRouter()


@router.post(
    "/source",
    tags=["Source"],
    response_model=SourceResponse,
    responses=BODY,
)
def create_source(body: SourceCreate, service: Service, org: Org) -> dict:
    return envelope(source=service.create_source(org, body))


@router.get(
    "/sources",
    tags=["Source"],
    response_model=SourcesResponse,
    responses=QUERY,
)
def list_sources(service: Service, org: Org, end_customer_id: QueryText = None) -> dict:
    return envelope(sources=service.list_sources(org, end_customer_id=end_customer_id))


@router.get(
    "/source/{source_id}",
    tags=["Source"],
    response_model=SourceResponse,
    responses=BY_ID,
)
def get_source(source_id: PathId, service: Service, org: Org) -> dict:
    return envelope(source=service.get_source(org, source_id))


@router.patch(
    "/source/{source_id}",
    tags=["Source"],
    response_model=SourceResponse,
    responses=BODY_BY_ID,
)
def update_source(source_id: PathId, body: SourceUpdate, service: Service, org: Org) -> dict:
    return envelope(source=service.update_source(org, source_id, body))


@router.delete(
    "/source/{source_id}",
    tags=["Source"],
    response_model=DeletedResponse,
    responses=IN_USE,
)
def delete_source(source_id: PathId, service: Service, org: Org) -> dict:
    service.delete_source(org, source_id)
    return {"deleted": True}
