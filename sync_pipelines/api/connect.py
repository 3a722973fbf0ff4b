"""Choosing a client: a server over HTTP when a URL is given, else the embedded API.

Each client is imported only when chosen: the embedded one does not load httpx, the HTTP one
does not load the store.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sync_pipelines.contract.errors import AuthenticationError

if TYPE_CHECKING:
    from sync_pipelines.api.client import SyncApiClient
    from sync_pipelines.api.embedded import EmbeddedSyncApiClient

API_URL_ENV = "SYNC_API_URL"
API_KEY_ENV = "SYNC_API_KEY"


def open_client(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    database_url: str | None = None,
) -> SyncApiClient | EmbeddedSyncApiClient:
    """A sync API client.

    Args:
        base_url: a server URL (default ``$SYNC_API_URL``); without one, the sync API runs
            embedded in-process on the local store.
        api_key: the organization's key for a server (default ``$SYNC_API_KEY``).
        database_url: the embedded store (default: SQLite in ``$SYNC_PIPELINES_HOME``).
    """
    base_url = base_url or os.environ.get(API_URL_ENV)
    if not base_url:
        from sync_pipelines.api.embedded import EmbeddedSyncApiClient

        return EmbeddedSyncApiClient.open(database_url)
    api_key = api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        raise AuthenticationError(
            f"an API key is needed for {base_url}: set {API_KEY_ENV} or pass api_key"
        )
    from sync_pipelines.api.client import SyncApiClient

    return SyncApiClient(base_url, api_key)
