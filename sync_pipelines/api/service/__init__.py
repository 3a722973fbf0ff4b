"""The sync API's rules, over its store. Used in-process (embedded) and by the HTTP app.

Every method takes the caller's organization id first: a resource of another organization is
indistinguishable from a missing one (404). :class:`SyncService` is a facade: each aggregate's
rules live in their own module as a mixin over :class:`~.base.ServiceBase`: ``organizations``
(and API keys), ``sources_destinations``, ``browsing``, ``object_rules``, ``sync_rules`` (with
``sync_checks``), ``run_requests``, ``leases`` (the run lease protocol), ``credential_rules``,
``rate_limiter``; ``health`` and ``mappers`` are their shared functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from sync_pipelines.api.service.base import Clock
from sync_pipelines.api.service.browsing import ConnectionBrowsing
from sync_pipelines.api.service.credential_rules import Credentials
from sync_pipelines.api.service.leases import RunLeases
from sync_pipelines.api.service.object_rules import Objects
from sync_pipelines.api.service.organizations import (
    API_KEY_PREFIX,
    DEFAULT_ORGANIZATION,
    Organizations,
    hash_api_key,
)
from sync_pipelines.api.service.range_lease_rules import RangeLeases
from sync_pipelines.api.service.rate_limiter import RateLimiter
from sync_pipelines.api.service.run_requests import Runs
from sync_pipelines.api.service.sources_destinations import Connections, mask_connection
from sync_pipelines.api.service.sync_rules import Syncs
from sync_pipelines.api.store import open_store
from sync_pipelines.common import settings
from sync_pipelines.common.time import utc_now

__all__ = [
    "API_KEY_PREFIX",
    "DEFAULT_ORGANIZATION",
    "SyncService",
    "hash_api_key",
    "mask_connection",
]


class SyncService(
    Organizations,
    Connections,
    ConnectionBrowsing,
    Objects,
    Syncs,
    Runs,
    RunLeases,
    RangeLeases,
    Credentials,
    RateLimiter,
):
    """Sources, destinations, objects, syncs, runs and credentials, with their rules."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        lease_seconds: float | None = None,
        clock: Clock = utc_now,
        file_roots: Sequence[str] | None = None,
    ) -> None:
        """A service over the store ``engine``.

        Args:
            engine: the store.
            lease_seconds: a run lease's TTL after each heartbeat (default
                ``$SYNC_PIPELINES_LEASE_TTL_SECONDS``, else 30 s).
            clock: the time source.
            file_roots: where organizations' file databases (SQLite, DuckDB) may live, ``{org}``
                standing for the organization's name; ``None`` (the embedded API): anywhere;
                empty: nowhere (a server without ``SYNC_PIPELINES_FILE_ROOTS``).
        """
        self.engine = engine
        self.lease_seconds = lease_seconds or settings.lease_ttl_seconds()
        self.clock = clock
        self.file_roots = None if file_roots is None else list(file_roots)

    @classmethod
    def open(cls, database_url: str | None = None, **kwargs: Any) -> SyncService:
        """A service on a migrated store (default: the SQLite file in the home)."""
        return cls(open_store(database_url), **kwargs)
