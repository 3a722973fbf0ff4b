"""State-backed loading: the code location is built from a cached snapshot of the sync API.

As in dagster-fivetran and dagster-airbyte, :class:`SyncApiDefsLoader` (a Dagster
``StateBackedDefinitionsLoader``) reads the sync API once when a code location initializes (the
code server starts, or the location is reloaded) and passes that snapshot to every run worker in
the location's reconstruction metadata, so runs never ask the sync API for their definitions.
Loading only reads: applying a ``syncs.yaml`` is an explicit step (``sync-pipelines apply``, or
``apply_syncs_job``).

Each snapshot read is also saved, to the Dagster instance's defs state storage
(``$DAGSTER_HOME/storage/defs_state`` unless ``dagster.yaml`` sets ``defs_state_storage``) or,
outside an instance, to ``$SYNC_PIPELINES_HOME/defs_state``. When the sync API cannot be reached
(connection refused, 5xx, 429, a store that is down), the location loads from the last saved
snapshot with a warning, so an outage of the sync API never breaks the code location.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from dagster import Definitions, PreviewWarning
from dagster._core.definitions.definitions_load_context import StateBackedDefinitionsLoader
from dagster._core.storage.defs_state.base import DefsStateStorage
from dagster_shared.serdes import deserialize_value, serialize_value
from sqlalchemy.exc import OperationalError

from sync_pipelines.common import settings
from sync_pipelines.common.error_text import first_line
from sync_pipelines.contract.errors import RateLimitedError, ServerError
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.snapshot import SyncApiSnapshot, SyncCatalog

logger = logging.getLogger("sync_pipelines.orchestration")

UNAVAILABLE_ERRORS = (ServerError, RateLimitedError, OperationalError)
"""The sync API is down (or its store is): load from the last snapshot instead."""


class SyncApiUnavailableError(RuntimeError):
    """The sync API cannot be reached and no snapshot of it was ever saved."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def state_key(sync_api: SyncApiResource) -> str:
    """The snapshot's key: one per sync API and organization (no secret in it)."""
    base_url, api_key, database_url = sync_api.connection_settings()
    if base_url:
        return f"SyncApi[{base_url.rstrip('/')}#{_digest(api_key or '')}]"
    store = database_url or str(settings.home())
    return f"SyncApi[embedded#{_digest(store)}]"


class SnapshotCache:
    """Where snapshots are saved: Dagster's defs state storage, else the local home."""

    def __init__(self, key: str) -> None:
        self.key = key

    def _local_path(self) -> Path:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.key)
        return settings.home() / "defs_state" / f"{safe}.json"

    def save(self, text: str) -> None:
        """Keep ``text`` as the latest snapshot (a version per distinct content)."""
        storage = DefsStateStorage.get()
        if storage is None:
            path = self._local_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        version = _digest(text)
        if storage.get_latest_version(self.key) == version:
            return
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "state"
            path.write_text(text)
            storage.upload_state_from_path(self.key, version, path)

    def load(self) -> str | None:
        """The latest saved snapshot (``None``: none was ever saved)."""
        storage = DefsStateStorage.get()
        if storage is None:
            path = self._local_path()
            return path.read_text() if path.exists() else None
        version = storage.get_latest_version(self.key)
        if version is None:
            return None
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "state"
            storage.download_state_to_path(self.key, version, path)
            return path.read_text()


class SyncApiDefsLoader(StateBackedDefinitionsLoader[SyncApiSnapshot]):
    """Builds definitions from a snapshot of the sync API, read once per code location load.

    Args:
        sync_api: the sync API to read.
        build: turns the snapshot's :class:`SyncCatalog` into definitions.
    """

    def __init__(
        self,
        sync_api: SyncApiResource,
        build: Callable[[SyncCatalog], Definitions] = lambda _catalog: Definitions(),
    ) -> None:
        self.sync_api = sync_api
        self.build = build
        self._key = state_key(sync_api)

    @property
    def defs_key(self) -> str:
        """One key per sync API and organization."""
        return self._key

    def fetch_state(self) -> SyncApiSnapshot:
        """Read the sync API (or, when it is down, the last saved snapshot).

        Raises:
            SyncApiUnavailableError: the sync API is down and no snapshot was ever saved.
        """
        cache = SnapshotCache(self.defs_key)
        try:
            client = self.sync_api.get_client()
            snapshot = SyncApiSnapshot.of(self.sync_api.describe(), SyncCatalog.load(client))
        except UNAVAILABLE_ERRORS as error:
            saved = cache.load()
            if saved is None:
                raise SyncApiUnavailableError(
                    f"the sync API ({self.sync_api.describe()}) cannot be reached and no "
                    f"snapshot of it was saved yet: {first_line(error)}"
                ) from None
            snapshot = deserialize_value(saved, SyncApiSnapshot)
            fetched = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snapshot.fetched_at))
            logger.warning(
                "the sync API (%s) cannot be reached (%s): loading its snapshot of %s",
                self.sync_api.describe(),
                first_line(error),
                fetched,
            )
            return snapshot
        finally:
            self.sync_api.close()
        cache.save(serialize_value(snapshot))
        return snapshot

    def build_defs(self) -> Definitions:
        """The definitions, with the snapshot in the code location's reconstruction metadata."""
        with warnings.catch_warnings():
            # Dagster's own loader attaches the snapshot with a preview API; we rely on it knowingly
            warnings.filterwarnings(
                "ignore", category=PreviewWarning, message=".*with_reconstruction_metadata"
            )
            return super().build_defs()

    def defs_from_state(self, state: SyncApiSnapshot) -> Definitions:
        """The definitions of a snapshot."""
        return self.build(state.catalog())


def load_sync_catalog(sync_api: SyncApiResource) -> SyncCatalog:
    """The sync API's objects, destinations, syncs and sources, state-backed.

    Read once per code location load (from the reconstruction metadata in run workers, from the
    last saved snapshot while the sync API is down), like :func:`build_sync_definitions`.
    """
    return SyncApiDefsLoader(sync_api).get_or_fetch_state().catalog()
