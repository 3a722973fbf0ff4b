"""Credentials of API providers, stored encrypted; runners get them sealed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sync_pipelines.api import tables as t
from sync_pipelines.api.service.base import ServiceBase
from sync_pipelines.common import secret_box
from sync_pipelines.common.time import aware
from sync_pipelines.contract.errors import (
    ConflictError,
    NotFoundError,
)
from sync_pipelines.contract.models import (
    MASK,
    REVEAL_SECRETS,
    Credential,
    CredentialCreate,
    CredentialInput,
    CredentialUpdate,
    SealedCredential,
)


class Credentials(ServiceBase):
    """Credentials of API providers, stored encrypted; runners get them sealed."""

    def _credential_row(self, c: sa.Connection, org: int, credential_id: int) -> sa.Row:
        row = c.execute(
            sa.select(t.credentials).where(
                t.credentials.c.id == credential_id,
                t.credentials.c.organization_id == org,
                t.credentials.c.deleted_at.is_(None),
            )
        ).first()
        if row is None:
            raise NotFoundError(f"credential {credential_id} not found")
        return row

    def _insert_credential(
        self, c: sa.Connection, org: int, provider: str, body: CredentialInput, name: str | None
    ) -> int:
        now = self.clock()
        secrets = body.model_dump(
            mode="json", include={"kind", "properties"}, context=REVEAL_SECRETS
        )
        return c.execute(
            t.credentials.insert().values(
                organization_id=org,
                provider=provider,
                kind=body.kind,
                display_name=name,
                property_names=sorted(body.properties),
                sealed=secret_box.seal(secrets),
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]

    @staticmethod
    def _credential(row: sa.Row) -> Credential:
        return Credential(
            id=row.id,
            organization_id=row.organization_id,
            provider=row.provider,
            kind=row.kind,
            display_name=row.display_name,
            properties={name: MASK for name in row.property_names},
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )

    def create_credential(self, org: int, body: CredentialCreate) -> Credential:
        """Store a provider credential; its properties are sealed."""
        with self.engine.begin() as c:
            credential_id = self._insert_credential(c, org, body.provider, body, body.display_name)
        return self.get_credential(org, credential_id)

    def get_credential(self, org: int, credential_id: int) -> Credential:
        """One credential (properties masked)."""
        with self.engine.connect() as c:
            return self._credential(self._credential_row(c, org, credential_id))

    def list_credentials(self, org: int) -> list[Credential]:
        """The organization's credentials."""
        query = (
            sa.select(t.credentials)
            .where(t.credentials.c.organization_id == org, t.credentials.c.deleted_at.is_(None))
            .order_by(t.credentials.c.id)
        )
        with self.engine.connect() as c:
            return [self._credential(row) for row in c.execute(query)]

    def update_credential(self, org: int, credential_id: int, body: CredentialUpdate) -> Credential:
        """Rename a credential or rotate its secrets."""
        with self.engine.begin() as c:
            row = self._credential_row(c, org, credential_id)
            values: dict[str, Any] = {"updated_at": self.clock()}
            if body.display_name is not None:
                values["display_name"] = body.display_name
            if body.properties is not None:
                rotated = CredentialInput(kind=row.kind, properties=body.properties)
                secrets = rotated.model_dump(mode="json", context=REVEAL_SECRETS)
                values["sealed"] = secret_box.seal(secrets)
                values["property_names"] = sorted(body.properties)
            c.execute(
                t.credentials.update().where(t.credentials.c.id == credential_id).values(**values)
            )
        return self.get_credential(org, credential_id)

    def delete_credential(self, org: int, credential_id: int) -> None:
        """Soft-delete a credential that no active sync uses."""
        with self.engine.begin() as c:
            self._credential_row(c, org, credential_id)
            used = list(
                c.scalars(
                    sa.select(t.syncs.c.id).where(
                        t.syncs.c.credential_id == credential_id, t.syncs.c.deleted_at.is_(None)
                    )
                )
            )
            if used:
                raise ConflictError(
                    f"credential {credential_id} is used by syncs {used}; delete them first"
                )
            now = self.clock()
            c.execute(
                t.credentials.update()
                .where(t.credentials.c.id == credential_id)
                .values(deleted_at=now, updated_at=now)
            )

    def sealed_credential(self, c: sa.Connection, org: int, credential_id: int) -> SealedCredential:
        """A credential sealed for a runner."""
        row = self._credential_row(c, org, credential_id)
        return SealedCredential(provider=row.provider, kind=row.kind, sealed=row.sealed)
