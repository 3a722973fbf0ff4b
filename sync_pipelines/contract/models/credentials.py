"""API-provider credentials and the rate limiter's permits."""

from __future__ import annotations

import datetime as dt

from pydantic import (
    Field,
    model_validator,
)

from sync_pipelines.contract.models.primitives import (
    MAX_CREDENTIAL_PROPERTIES,
    Name,
    Secret,
    _Body,
    _Resource,
    invalid,
)


class CredentialInput(_Body):
    """An inline credential: ``kind`` (api_key, bearer, basic, ...) and secret ``properties``."""

    kind: Name = "api_key"
    properties: dict[Name, Secret] = Field(min_length=1, max_length=MAX_CREDENTIAL_PROPERTIES)


class CredentialCreate(CredentialInput):
    """``POST /credential``: a provider account's secrets, stored encrypted."""

    provider: Name
    display_name: str | None = Field(default=None, max_length=255)


class CredentialUpdate(_Body):
    """``PATCH /credential/{id}``: rename or rotate the secrets; the provider stays."""

    display_name: str | None = Field(default=None, max_length=255)
    properties: dict[Name, Secret] | None = Field(
        default=None, min_length=1, max_length=MAX_CREDENTIAL_PROPERTIES
    )
    provider: str | None = None

    @model_validator(mode="after")
    def _immutable(self) -> CredentialUpdate:
        if self.provider is not None:
            raise invalid("provider", "provider cannot be changed after the credential is created")
        return self


class Credential(_Resource):
    """A credential as the API shows it: every property ``"***"``."""

    id: int
    organization_id: int
    provider: str
    kind: str
    display_name: str | None
    properties: dict[str, str]
    created_at: dt.datetime
    updated_at: dt.datetime


class SealedCredential(_Resource):
    """A credential for a runner: ``{kind, properties}`` encrypted with the shared key."""

    provider: str
    kind: str
    sealed: str


class Permit(_Resource):
    """The rate limiter's answer: go now (``permit_id``), or wait ``wait_seconds`` and ask again."""

    granted: bool
    permit_id: int | None = None
    wait_seconds: float = 0.0
