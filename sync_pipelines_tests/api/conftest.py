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
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import make_url

from sync_pipelines.api.app import create_app
from sync_pipelines.api.client import SyncApiClient
from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.api.service import SyncService
from sync_pipelines_tests.conftest import unique_name


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """The sync API's store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'sync_api.sqlite'}"
        return
    server_url = request.getfixturevalue("postgres_server_url")
    schema = unique_name("sp_store")
    admin = sa.create_engine(server_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
def server_url(service: SyncService) -> Iterator[str]:
    """A real uvicorn server on loopback, serving the app over ``service``."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    )
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
