"""Provider-sync scenarios: fake provider APIs on loopback, an embedded sync API on a SQLite
file, and a real warehouse (DuckDB file, or a PostgreSQL schema)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.contract.models import DestinationCreate, ProviderSyncCreate, Sync
from sync_pipelines_tests.conftest import unique_name
from sync_pipelines_tests.providers.fakes import FakeGitHub, FakeStripe, FakeTickets

STRIPE_SECRET = "sk_test_51Hx9fakeSECRETvalue4242"
GITHUB_TOKEN = "ghp_fakeTOKENvalue0123456789abcdef"
TICKETS_KEY = "tk-live-fakeKEYvalue-7788"
SECRETS = (STRIPE_SECRET, GITHUB_TOKEN, TICKETS_KEY)
FAST_RETRIES = {"backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "timeout_seconds": 5}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The sync API's store: a SQLite file other processes can open too."""
    return f"sqlite:///{tmp_path / 'sync_api.sqlite'}"


@pytest.fixture
def api(store_url: str) -> Iterator[EmbeddedSyncApiClient]:
    """The sync API, embedded."""
    client = EmbeddedSyncApiClient.open(store_url)
    yield client
    client.close()


@pytest.fixture
def stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(STRIPE_SECRET).start()
    yield fake
    fake.stop()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(GITHUB_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def tickets() -> Iterator[FakeTickets]:
    fake = FakeTickets(TICKETS_KEY).start()
    yield fake
    fake.stop()


@dataclass
class Warehouse:
    """The destination database of a test."""

    kind: str
    url: str
    namespace: str
    """The namespace (schema) syncs of this test write to."""

    def destination(self, api: Any) -> int:
        return api.create_destination(
            DestinationCreate(display_name="Warehouse", connection_type=self.kind, url=self.url)
        ).id

    def rows(self, table: str, *, order_by: str = "id") -> list[dict[str, Any]]:
        """Every row of ``<namespace>.<table>``, ``raw`` parsed, times in UTC."""
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as connection:
                columns = sa.inspect(connection).get_columns(table, schema=self.namespace)
                reflected = sa.Table(
                    table,
                    sa.MetaData(),
                    *[sa.Column(c["name"], c["type"]) for c in columns],
                    schema=self.namespace,
                )
                result = connection.execute(
                    sa.select(reflected).order_by(
                        reflected.c.end_customer_id, reflected.c[order_by]
                    )
                )
                rows = [dict(row._mapping) for row in result]
        finally:
            engine.dispose()
        for row in rows:
            if isinstance(row.get("raw"), str):
                row["raw"] = json.loads(row["raw"])
        return rows

    def has_table(self, table: str) -> bool:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as connection:
                return sa.inspect(connection).has_table(table, schema=self.namespace)
        finally:
            engine.dispose()


@pytest.fixture
def make_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Warehouse]:
    """``make_warehouse(kind="duckdb", name="warehouse")``: a fresh destination database."""
    cleanups: list[Callable[[], None]] = []

    def make(kind: str = "duckdb", name: str = "warehouse") -> Warehouse:
        namespace = unique_name("sp_api")
        if kind == "duckdb":
            return Warehouse(kind, f"duckdb:///{tmp_path / f'{name}.duckdb'}", namespace)
        if kind == "postgres":
            url = request.getfixturevalue("postgres_server_url")

            def drop() -> None:
                engine = sa.create_engine(url)
                with engine.begin() as connection:
                    connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE'))
                engine.dispose()

            cleanups.append(drop)
            return Warehouse(kind, url, namespace)
        raise ValueError(kind)

    yield make
    for cleanup in cleanups:
        cleanup()


@pytest.fixture
def warehouse(make_warehouse: Callable[..., Warehouse]) -> Warehouse:
    """A DuckDB warehouse."""
    return make_warehouse("duckdb")


def create_provider_sync(
    api: Any,
    warehouse: Warehouse,
    provider: str,
    collections: list[str],
    *,
    credential: dict[str, str] | None = None,
    **fields: Any,
) -> Sync:
    """A provider sync into ``warehouse`` (its namespace), continuous unless told otherwise."""
    body: dict[str, Any] = {
        "provider": provider,
        "name": f"{provider} sync",
        "destination_id": warehouse.destination(api),
        "namespace": warehouse.namespace,
        "collection_ids": [f"{provider}:{c}" for c in collections],
        "sync_frequency": "continuous",
        "end_customer_id": "acme",
    }
    if "credential_id" not in fields:
        body["credential"] = {"kind": "api_key", "properties": credential or {}}
    body.update(fields)
    return api.create_sync(ProviderSyncCreate.model_validate(body))


def assert_no_secret(*texts: Any) -> None:
    """None of the test credentials appears in any of ``texts``."""
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), f"a credential leaked into {str(text)[:200]!r}"
