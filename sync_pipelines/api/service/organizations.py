"""Organizations and their API keys (stored hashed)."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from sync_pipelines.api import tables as t
from sync_pipelines.api.service.base import ServiceBase
from sync_pipelines.contract.errors import (
    AuthenticationError,
)

DEFAULT_ORGANIZATION = "default"


API_KEY_PREFIX = "sp_"


def hash_api_key(api_key: str) -> str:
    """The stored form of an API key (keys are random, so a plain SHA-256 suffices)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


class Organizations(ServiceBase):
    """Organizations and their API keys (stored hashed)."""

    def ensure_organization(self, name: str = DEFAULT_ORGANIZATION) -> int:
        """The id of the organization called ``name``, created if missing."""
        with self.engine.begin() as c:
            found = c.scalar(sa.select(t.organizations.c.id).where(t.organizations.c.name == name))
            if found is not None:
                return found
            return c.execute(
                t.organizations.insert().values(name=name, created_at=self.clock())
            ).inserted_primary_key[0]

    def create_api_key(self, organization: str) -> str:
        """A new API key for ``organization`` (created if missing). Only its hash is stored."""
        organization_id = self.ensure_organization(organization)
        api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as c:
            c.execute(
                t.api_keys.insert().values(
                    organization_id=organization_id,
                    prefix=api_key[:10],
                    key_hash=hash_api_key(api_key),
                    created_at=self.clock(),
                )
            )
        return api_key

    def authenticate(self, api_key: str | None) -> int:
        """The organization id of a valid API key."""
        if not api_key:
            raise AuthenticationError("missing API key: send it in the X-API-KEY header")
        with self.engine.connect() as c:
            organization_id = c.scalar(
                sa.select(t.api_keys.c.organization_id).where(
                    t.api_keys.c.key_hash == hash_api_key(api_key),
                    t.api_keys.c.revoked_at.is_(None),
                )
            )
        if organization_id is None:
            raise AuthenticationError("invalid API key")
        return organization_id
