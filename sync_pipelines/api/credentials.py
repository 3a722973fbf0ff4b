"""Credentials of API providers, and the rate limiter their syncs share.

The limiter lives in the store, not in a process: every runner of every sync that uses a
credential asks the sync API for a permit before each request, so the credential's quota holds
across processes and machines.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from sync_pipelines import secret_box
from sync_pipelines.api import tables as t
from sync_pipelines.api.errors import ConflictError, NotFoundError
from sync_pipelines.models import (
    MASK,
    REVEAL_SECRETS,
    Credential,
    CredentialCreate,
    CredentialInput,
    CredentialUpdate,
    Permit,
    RateLimit,
    SealedCredential,
)

PERMIT_TTL = dt.timedelta(seconds=60)
# Requests reach the provider a little after their permit is granted, each delayed differently;
# a margin on the window keeps the provider's view of the rate within the limit too.
WINDOW_MARGIN = 0.05
MIN_WINDOW_MARGIN_SECONDS = 0.1
CONCURRENCY_RETRY_SECONDS = 0.05


def limiter_window(rate_limit: RateLimit) -> dt.timedelta:
    """The window the limiter counts grants in: the interval plus a margin."""
    margin = max(rate_limit.interval * WINDOW_MARGIN, MIN_WINDOW_MARGIN_SECONDS)
    return dt.timedelta(seconds=rate_limit.interval + margin)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class CredentialRules:
    """The credential and rate-limit half of :class:`~sync_pipelines.api.service.SyncService`."""

    engine: sa.Engine
    clock: Any

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
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
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

    def acquire_permit(self, org: int, credential_id: int, rate_limit: RateLimit) -> Permit:
        """Ask to make one request with a credential now.

        Granted while fewer than ``allowed_requests`` were granted in the last ``interval``
        seconds (plus a small margin) and fewer than ``max_concurrent_requests`` are in flight;
        otherwise the answer says how long to wait. Atomic across processes: the credential's
        row is written first, which serializes concurrent callers on PostgreSQL and SQLite.
        """
        window = limiter_window(rate_limit)
        permits = t.rate_limit_permits.c
        with self.engine.begin() as c:
            self._credential_row(c, org, credential_id)
            c.execute(  # take the credential's row lock before counting
                t.credentials.update()
                .where(t.credentials.c.id == credential_id)
                .values(updated_at=t.credentials.c.updated_at)
            )
            now = self.clock()  # after waiting for the lock: grants are ordered by it
            c.execute(
                t.rate_limit_permits.delete().where(
                    permits.credential_id == credential_id,
                    permits.granted_at < now - max(window, PERMIT_TTL),
                )
            )
            granted_at = [
                _aware(at)
                for at in c.scalars(
                    sa.select(permits.granted_at)
                    .where(
                        permits.credential_id == credential_id, permits.granted_at > now - window
                    )
                    .order_by(permits.granted_at)
                )
            ]
            if len(granted_at) >= rate_limit.allowed_requests:
                oldest = granted_at[len(granted_at) - rate_limit.allowed_requests]
                wait = (oldest + window - now).total_seconds()
                return Permit(granted=False, wait_seconds=max(wait, 0.001))
            if rate_limit.max_concurrent_requests is not None:
                in_flight = c.scalar(
                    sa.select(sa.func.count()).where(
                        permits.credential_id == credential_id,
                        permits.released_at.is_(None),
                        permits.expires_at > now,
                    )
                )
                if in_flight >= rate_limit.max_concurrent_requests:
                    return Permit(granted=False, wait_seconds=CONCURRENCY_RETRY_SECONDS)
            permit_id = c.execute(
                t.rate_limit_permits.insert().values(
                    credential_id=credential_id, granted_at=now, expires_at=now + PERMIT_TTL
                )
            ).inserted_primary_key[0]
        return Permit(granted=True, permit_id=permit_id)

    def release_permit(self, org: int, credential_id: int, permit_id: int) -> None:
        """The request of a permit is done: it no longer counts as in flight."""
        with self.engine.begin() as c:
            self._credential_row(c, org, credential_id)
            c.execute(
                t.rate_limit_permits.update()
                .where(
                    t.rate_limit_permits.c.id == permit_id,
                    t.rate_limit_permits.c.credential_id == credential_id,
                )
                .values(released_at=self.clock())
            )
