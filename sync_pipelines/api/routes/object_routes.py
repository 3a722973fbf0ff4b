"""The routes of objects (a destination's tables and their fields): create, list, read,
update, delete."""

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
from sync_pipelines.contract.models import ObjectCreate, ObjectUpdate, SyncObject

ObjectResponse = envelope_model("ObjectResponse", "One object.", object=SyncObject)
ObjectsResponse = envelope_model("ObjectsResponse", "Objects.", objects=list[SyncObject])

router = APIRouter()


@router.post(
    "/object",
    tags=["Object"],
    response_model=ObjectResponse,
    responses=BODY,
)
def create_object(body: ObjectCreate, service: Service, org: Org) -> dict:
    return envelope(object=service.create_object(org, body))


@router.get(
    "/objects",
    tags=["Object"],
    response_model=ObjectsResponse,
    responses=error_responses(),
)
def list_objects(service: Service, org: Org) -> dict:
    return envelope(objects=service.list_objects(org))


@router.get(
    "/object/{object_id}",
    tags=["Object"],
    response_model=ObjectResponse,
    responses=BY_ID,
)
def get_object(object_id: PathId, service: Service, org: Org) -> dict:
    return envelope(object=service.get_object(org, object_id))


@router.patch(
    "/object/{object_id}",
    tags=["Object"],
    response_model=ObjectResponse,
    responses=BODY_BY_ID,
)
def update_object(object_id: PathId, body: ObjectUpdate, service: Service, org: Org) -> dict:
    return envelope(object=service.update_object(org, object_id, body))


@router.delete(
    "/object/{object_id}",
    tags=["Object"],
    response_model=DeletedResponse,
    responses=IN_USE,
)
def delete_object(object_id: PathId, service: Service, org: Org) -> dict:
    service.delete_object(org, object_id)
    return {"deleted": True}
