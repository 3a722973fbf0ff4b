"""The rate limiter API-provider syncs share, per credential.

The limiter lives in the store, not in a process: every runner of every sync that uses a
credential asks the sync API for a permit before each request, so the credential's quota holds
across processes and machines."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from sync_pipelines.api import tables as t
from sync_pipelines.api.service.base import ServiceBase
from sync_pipelines.common.time import aware
from sync_pipelines.contract.models import (
    Permit,
    RateLimit,
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


class RateLimiter(ServiceBase):
    """The rate limiter API-provider syncs share, per credential."""

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
                aware(at)
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
