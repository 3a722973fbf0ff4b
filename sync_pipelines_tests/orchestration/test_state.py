"""State-backed loading: the code location is built from a cached snapshot of the sync API, so it
loads while a sync API server is down (and run workers never ask it for their definitions)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from dagster import AssetKey, Definitions
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)
from dagster._core.definitions.repository_definition import RepositoryLoadData
from dagster._core.storage.defs_state.base import DefsStateStorage

from sync_pipelines.api.client import SyncApiClient
from sync_pipelines.api.service import SyncService
from sync_pipelines.common import settings
from sync_pipelines.orchestration import (
    SyncApiResource,
    SyncApiUnavailableError,
    apply_syncs,
    build_sync_definitions,
)
from sync_pipelines.orchestration.state import SnapshotCache, state_key
from sync_pipelines_tests.orchestration.conftest import EVENTS_JOB, PARTITIONS, event_rows

EVENTS = AssetKey(["analytics", "events"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def sync_api_server(port: int, file_root: Path) -> Iterator[str]:
    """``sync-pipelines api serve`` on the test's home, allowing the file databases under
    ``file_root``; its URL until the block ends."""
    server = subprocess.Popen(
        [sys.executable, "-m", "sync_pipelines.cli", "api", "serve", "--port", str(port)],
        env={**os.environ, settings.FILE_ROOTS_ENV: str(file_root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _resource(url: str, key: str) -> SyncApiResource:
    return SyncApiResource(base_url=url, api_key=key)


def test_the_location_loads_from_its_snapshot_while_the_server_is_down(setup, instance, caplog):
    key = SyncService.open().create_api_key("acme")
    port = _free_port()
    setup.insert("acme", event_rows(4))
    syncs_file = setup.write_syncs_file({"acme": "sync_frequency: 1h"})
    with sync_api_server(port, setup.root) as url:
        with SyncApiClient(url, key) as client:
            apply_syncs(client, syncs_file)
        first = build_sync_definitions(sync_api=_resource(url, key))
    assert first.get_assets_def(EVENTS)
    storage = DefsStateStorage.get()
    assert storage is not None and storage.get_latest_version(state_key(_resource(url, key)))

    # the server is down: reloading the code location uses the saved snapshot
    with caplog.at_level(logging.WARNING, logger="sync_pipelines.orchestration"):
        down = build_sync_definitions(sync_api=_resource(url, key))
    assert "cannot be reached" in caplog.text and "loading its snapshot of" in caplog.text
    Definitions.validate_loadable(down)
    assert down.get_assets_def(EVENTS)
    assert [s.name for s in down.get_repository_def().schedule_defs] == [
        "analytics__events__acme_schedule"
    ]

    # a run worker reconstructs the location from its metadata, never asking the sync API
    metadata = first.get_repository_def().repository_load_data.reconstruction_metadata
    reconstruction = DefinitionsLoadContext(
        DefinitionsLoadType.RECONSTRUCTION,
        repository_load_data=RepositoryLoadData(reconstruction_metadata=metadata),
    )
    with DefinitionsLoadContext.scoped(reconstruction):
        rebuilt = build_sync_definitions(sync_api=_resource(url, key))
    assert rebuilt.get_assets_def(EVENTS)

    # the server is back: a partition materializes from the definitions loaded while it was down
    instance.add_dynamic_partitions(PARTITIONS, ["acme"])
    with sync_api_server(port, setup.root):
        result = down.resolve_job_def(EVENTS_JOB).execute_in_process(
            instance=instance, partition_key="acme"
        )
    assert result.success
    assert [row[1] for row in setup.warehouse_rows("acme")] == [1, 2, 3, 4]
    (materialization,) = result.asset_materializations_for_node("sync_analytics__events")
    assert materialization.metadata["rows_read"].value == 4


def test_without_an_instance_the_snapshot_is_kept_in_the_home(setup, _isolated_home):
    syncs_file = setup.write_syncs_file({"acme": "sync_frequency: 1h"})
    apply_syncs(setup.client, syncs_file)
    sync_api = SyncApiResource()

    build_sync_definitions(sync_api=sync_api)

    assert DefsStateStorage.get() is None
    (saved,) = (_isolated_home / "defs_state").iterdir()
    assert SnapshotCache(state_key(sync_api)).load() == saved.read_text()
    assert '"display_name": "acme events"' in saved.read_text().replace('\\"', '"')
    assert "secret" not in saved.read_text()


def test_a_server_that_was_never_reached_is_a_clear_error(setup):
    port = _free_port()
    sync_api = SyncApiResource(base_url=f"http://127.0.0.1:{port}", api_key="sp_x")

    with pytest.raises(SyncApiUnavailableError, match="no snapshot of it was saved yet"):
        build_sync_definitions(sync_api=sync_api)
