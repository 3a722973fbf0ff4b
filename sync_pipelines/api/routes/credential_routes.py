"""The routes of credentials (create, list, read, update, delete) and of their shared rate
limiter (acquire and release a permit)."""

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
from sync_pipelines.contract.models import (
    Credential,
    CredentialCreate,
    CredentialUpdate,
    Permit,
    RateLimit,
)

CredentialResponse = envelope_model("CredentialResponse", "One credential.", credential=Credential)
CredentialsResponse = envelope_model(
    "CredentialsResponse", "Credentials.", credentials=list[Credential]
)
PermitResponse = envelope_model("PermitResponse", "The rate limiter's answer.", permit=Permit)
ReleasedResponse = envelope_model("ReleasedResponse", "The permit was released.", released=bool)

router = APIRouter()


@router.post(
    "/credential",
    tags=["Credential"],
    response_model=CredentialResponse,
    responses=BODY,
)
def create_credential(body: CredentialCreate, service: Service, org: Org) -> dict:
    return envelope(credential=service.create_credential(org, body))


@router.get(
    "/credentials",
    tags=["Credential"],
    response_model=CredentialsResponse,
    responses=error_responses(),
)
def list_credentials(service: Service, org: Org) -> dict:
    return envelope(credentials=service.list_credentials(org))


@router.get(
    "/credential/{credential_id}",
    tags=["Credential"],
    response_model=CredentialResponse,
    responses=BY_ID,
)
def get_credential(credential_id: PathId, service: Service, org: Org) -> dict:
    return envelope(credential=service.get_credential(org, credential_id))


@router.patch(
    "/credential/{credential_id}",
    tags=["Credential"],
    response_model=CredentialResponse,
    responses=BODY_BY_ID,
)
def update_credential(
    credential_id: PathId, body: CredentialUpdate, service: Service, org: Org
) -> dict:
    return envelope(credential=service.update_credential(org, credential_id, body))


@router.delete(
    "/credential/{credential_id}",
    tags=["Credential"],
    response_model=DeletedResponse,
    responses=IN_USE,
)
def delete_credential(credential_id: PathId, service: Service, org: Org) -> dict:
    service.delete_credential(org, credential_id)
    return {"deleted": True}


@router.post(
    "/credential/{credential_id}/permits",
    tags=["Runner"],
    response_model=PermitResponse,
    responses=BODY_BY_ID,
)
def acquire_permit(credential_id: PathId, body: RateLimit, service: Service, org: Org) -> dict:
    """Ask the shared rate limiter for one request with this credential."""
    return envelope(permit=service.acquire_permit(org, credential_id, body))


@router.delete(
    "/credential/{credential_id}/permits/{permit_id}",
    tags=["Runner"],
    response_model=ReleasedResponse,
    responses=BY_ID,
)
def release_permit(credential_id: PathId, permit_id: PathId, service: Service, org: Org) -> dict:
    service.release_permit(org, credential_id, permit_id)
    return {"released": True}
