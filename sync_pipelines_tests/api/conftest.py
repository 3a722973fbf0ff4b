"""The sync API under test: a store (SQLite file or PostgreSQL schema), a real uvicorn server on
loopback, and clients of both kinds for fresh organizations."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn

from sync_pipelines.api.app import create_app
from sync_pipelines.api.client import SyncApiClient
from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.api.service import SyncService


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """The sync API's store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'sync_api.sqlite'}"
        return
    yield request.getfixturevalue("postgres_store_url")


@pytest.fixture
def service(store_url: str) -> Iterator[SyncService]:
    """A service on the migrated store."""
    service = SyncService.open(store_url)
    yield service
    service.engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server_url(service: SyncService, tmp_path_factory) -> Iterator[str]:
    """A real uvicorn server on loopback, serving the app over ``service``.

    Organizations' file databases live in one shared directory (relative paths land there).
    """
    port = _free_port()
    app = create_app(service, file_roots=[str(tmp_path_factory.mktemp("files"))])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the uvicorn server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


ClientFactory = Callable[[], "SyncApiClient | EmbeddedSyncApiClient"]


@pytest.fixture(params=["embedded", "http"])
def client_kind(request: pytest.FixtureRequest) -> str:
    """Which client the contract test runs through."""
    return request.param


@pytest.fixture
def new_client(client_kind: str, service: SyncService, request: pytest.FixtureRequest):
    """Make a client for a fresh organization, of the parametrized kind."""
    made: list[SyncApiClient] = []

    def make(organization: str | None = None):
        organization = organization or f"org-{uuid.uuid4().hex[:8]}"
        if client_kind == "embedded":
            return EmbeddedSyncApiClient(service, service.ensure_organization(organization))
        base_url = request.getfixturevalue("server_url")
        client = SyncApiClient(base_url, service.create_api_key(organization), max_retries=0)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(new_client):
    """A client for a fresh organization."""
    return new_client()


@pytest.fixture
def http(service: SyncService, server_url: str) -> Iterator[httpx.Client]:
    """A raw httpx client with a fresh organization's key, for wire-level checks."""
    with httpx.Client(
        base_url=server_url, headers={"X-API-KEY": service.create_api_key("raw")}, timeout=10
    ) as raw:
        yield raw
