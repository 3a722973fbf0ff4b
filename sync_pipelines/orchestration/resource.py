"""The Dagster resource that reaches the sync API: embedded in-process, or a server over HTTP."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    InitResourceContext,
    MaterializeResult,
)
from pydantic import Field, PrivateAttr

from sync_pipelines.api.client import SyncApiClient
from sync_pipelines.api.connect import API_KEY_ENV, API_URL_ENV, open_client
from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.common import settings
from sync_pipelines.orchestration.execution import SyncAssetConfig, run_object_syncs

SyncApiClientType = SyncApiClient | EmbeddedSyncApiClient
"""What :meth:`SyncApiResource.get_client` returns: either implements ``SyncApi``."""


class SyncApiResource(ConfigurableResource):
    """The sync API, as ops, assets, schedules and sensors reach it.

    Without `base_url` the sync API runs embedded in the Dagster process, on the local store
    (SQLite in `$SYNC_PIPELINES_HOME` unless `database_url` says otherwise). With a `base_url`
    every call goes over HTTP with `api_key`.

    For example `SyncApiResource()` (embedded) or
    `SyncApiResource(base_url="https://sync.example.com", api_key=EnvVar("SYNC_API_KEY"))`.
    """

    base_url: str | None = Field(
        default=None,
        description="A sync API server, e.g. http://127.0.0.1:8000. None: the sync API runs "
        "embedded in-process on the local store.",
    )
    api_key: str | None = Field(
        default=None,
        description="The organization's API key for the server, typically "
        'EnvVar("SYNC_API_KEY"). Unused when embedded.',
    )
    database_url: str | None = Field(
        default=None,
        description="The embedded sync API's store (SQLAlchemy URL). None: "
        "$SYNC_PIPELINES_DATABASE_URL, else SQLite in $SYNC_PIPELINES_HOME.",
    )

    _client: SyncApiClientType | None = PrivateAttr(default=None)

    def get_client(self) -> SyncApiClientType:
        """The sync API client (made once per resource instance, then reused).

        Returns:
            An HTTP :class:`~sync_pipelines.api.client.SyncApiClient` when ``base_url`` is set,
            else an :class:`~sync_pipelines.api.embedded.EmbeddedSyncApiClient`.
        """
        if self._client is None:
            self._client = open_client(
                _plain(self.base_url),
                _plain(self.api_key),
                database_url=_plain(self.database_url),
            )
        return self._client

    def connection_settings(self) -> tuple[str | None, str | None, str | None]:
        """``(base_url, api_key, database_url)`` as the client uses them (environment included)."""
        return (
            _plain(self.base_url) or os.environ.get(API_URL_ENV) or None,
            _plain(self.api_key) or os.environ.get(API_KEY_ENV) or None,
            _plain(self.database_url) or os.environ.get(settings.DATABASE_URL_ENV) or None,
        )

    def describe(self) -> str:
        """The sync API for people: its URL, or ``embedded``."""
        base_url = self.connection_settings()[0]
        return base_url or "embedded"

    def close(self) -> None:
        """Release the client's connections (it is made again on the next use)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def run(
        self, context: AssetExecutionContext, *, config: SyncAssetConfig | None = None
    ) -> Iterator[MaterializeResult]:
        """Run the syncs of the materializing object assets for their partition (the end
        customer), as ``@sync_assets`` bodies do.

        Each run is logged batch by batch; it yields one :class:`~dagster.MaterializeResult` per
        selected asset, with Dagster's table metadata (``dagster/partition_row_count``,
        ``dagster/row_count``, ``dagster/column_schema``), the run's counts and cursors, and the
        results of the asset's checks.

        Args:
            context: the asset's execution context.
            config: ``full_refresh``, ``batch_size`` and ``allow_mass_delete`` (default:
                incremental, ``DEFAULT_BATCH_SIZE`` rows, at most ``max_delete_fraction`` deleted).

        Raises:
            Failure: the partition has no sync, the sync is paused or running, or the run
                failed (the message names the sync, the table and the column).
        """
        config = config or SyncAssetConfig()
        yield from run_object_syncs(
            context,
            self.get_client(),
            full_refresh=config.full_refresh,
            batch_size=config.batch_size,
            allow_mass_delete=config.allow_mass_delete,
        )

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()


# The UI shows the docstring as the resource's Markdown description: without the indentation
# (which Markdown would render as a code block).
SyncApiResource.__doc__ = inspect.cleandoc(SyncApiResource.__doc__ or "")


def _plain(value: Any) -> str | None:
    """A field's value: an unresolved ``EnvVar`` (outside a run) is read from the environment."""
    get_value = getattr(value, "get_value", None)
    if callable(get_value):
        return get_value()
    return value
