"""The Dagster plugin under test: end customers' SQLite app databases, a DuckDB warehouse, a
``syncs.yaml`` binding them, the embedded sync API on the test's home, and a real Dagster
instance (a temporary ``DAGSTER_HOME``)."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import DagsterInstance, Definitions, instance_for_test
from dagster_shared.utils.warnings import BetaWarning

from sync_pipelines.api.connect import open_client
from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.api.service import SyncService
from sync_pipelines.orchestration import SyncApiResource, apply_syncs, build_sync_definitions

PARTITIONS = "analytics__events__end_customers"
EVENTS_JOB = "analytics__events_sync_job"
BASE = dt.datetime(2024, 3, 1, 9, 0, 0)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dagster_e2e: starts dagster dev (webserver + daemon) as subprocesses"
    )


@pytest.fixture(autouse=True)
def _quiet_dagster_internal_beta_warning() -> Iterator[None]:
    """Dagster 1.13 warns about its own ``owners`` parameter when it binds sensors to jobs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=BetaWarning, message=".*owners.*")
        yield


def stamp(minutes: int) -> str:
    """A source ``updated_at`` value: ``BASE`` plus some minutes, as SQLite stores it."""
    return (BASE + dt.timedelta(minutes=minutes)).isoformat(sep=" ")


def event_rows(count: int, *, first_id: int = 1, minute: int = 0) -> list[tuple]:
    """``count`` events with increasing ids and ``updated_at``."""
    return [
        (
            first_id + i,
            100 + i % 3,
            "checkout" if i % 2 else "login",
            10.5 * (i + 1),
            stamp(minute + i),
            stamp(minute + i),
        )
        for i in range(count)
    ]


@dataclass
class SyncSetup:
    """Files and clients of one test's syncs."""

    root: Path
    warehouse: Path
    syncs_file: Path
    client: EmbeddedSyncApiClient
    apps: dict[str, Path] = field(default_factory=dict)

    def app(self, customer: str) -> Path:
        """The app database of an end customer (created empty on first use)."""
        if customer not in self.apps:
            path = self.root / f"app_{customer}.sqlite"
            with sqlite3.connect(path) as db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, user_id INTEGER, "
                    "event_name TEXT, amount NUMERIC, occurred_at TIMESTAMP, updated_at TIMESTAMP)"
                )
            self.apps[customer] = path
        return self.apps[customer]

    def insert(self, customer: str, rows: Sequence[tuple]) -> None:
        """Add or replace rows of an end customer's events."""
        with sqlite3.connect(self.app(customer)) as db:
            db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)

    def execute_app(self, customer: str, sql: str, *params: Any) -> None:
        with sqlite3.connect(self.app(customer)) as db:
            db.execute(sql, params)

    def warehouse_rows(self, customer: str | None = None) -> list[tuple]:
        """``(end_customer_id, event_id, event_name, updated_at)`` rows in the warehouse."""
        if not self.warehouse.exists():
            return []
        with duckdb.connect(str(self.warehouse)) as db:
            query = (
                "SELECT end_customer_id, event_id, event_name, CAST(updated_at AS VARCHAR) "
                "FROM analytics.events"
            )
            if customer is None:
                return db.execute(query + " ORDER BY 1, 2").fetchall()
            return db.execute(
                query + " WHERE end_customer_id = ? ORDER BY 1, 2", [customer]
            ).fetchall()

    def execute_warehouse(self, sql: str, *params: Any) -> None:
        with duckdb.connect(str(self.warehouse)) as db:
            db.execute(sql, list(params))

    def write_syncs_file(self, syncs: dict[str, str], *, extra_sources: Sequence[str] = ()) -> Path:
        """A syncs.yaml: one source per end customer, the events object, and ``syncs``
        (end customer -> its schedule line, e.g. ``sync_frequency: 45m``)."""
        for customer in [*syncs, *extra_sources]:
            self.app(customer)
        sources = "".join(
            f"""
              - name: {customer} app
                end_customer_id: {customer}
                connection_type: sqlite
                url: sqlite:///{self.app(customer)}
            """
            for customer in [*syncs, *extra_sources]
        )
        mappings = "".join(
            f"""
                  - {{source_field_name: {source}, destination_field_name: {target}}}"""
            for source, target in (
                ("id", "event_id"),
                ("user_id", "user_id"),
                ("event_name", "event_name"),
                ("amount", "amount"),
                ("updated_at", "updated_at"),
            )
        )
        entries = "".join(
            f"""
              - name: {customer} events
                source: {customer} app
                object: Events
                namespace: main
                table_name: events
                {schedule}
                field_mappings:{mappings}
            """
            for customer, schedule in (
                (customer, schedule.replace("\n", "\n" + " " * 16))
                for customer, schedule in syncs.items()
            )
        )
        text = textwrap.dedent(
            f"""
            destinations:
              - name: Warehouse
                connection_type: duckdb
                url: duckdb:///{self.warehouse}
            sources:{sources}
            objects:
              - name: Events
                destination: Warehouse
                namespace: analytics
                table_name: events
                end_customer_id_field: end_customer_id
                cursor_field: updated_at
                primary_key: event_id
                object_fields:
                  - {{name: event_id, type: integer}}
                  - {{name: user_id, type: integer}}
                  - {{name: event_name, type: string}}
                  - {{name: amount, type: number, optional: true}}
                  - {{name: updated_at, type: timestamp}}
            syncs:{entries}
            """
        )
        self.syncs_file.write_text(text)
        return self.syncs_file

    def sync_id(self, customer: str) -> int:
        (sync,) = [s for s in self.client.list_syncs() if s.end_customer_id == customer]
        return sync.id

    def sync_id_of(self, object_name: str) -> int:
        (obj,) = [o for o in self.client.list_objects() if o.display_name == object_name]
        (sync,) = self.client.list_syncs(object_id=obj.id)
        return sync.id


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty sync API store, migrated once per session (copied into each test's home)."""
    path = tmp_path_factory.mktemp("store_template") / "sync_api.sqlite"
    SyncService.open(f"sqlite:///{path}").engine.dispose()
    return path


@pytest.fixture
def setup(tmp_path: Path, _isolated_home: Path, _migrated_store: Path) -> Iterator[SyncSetup]:
    """Empty app databases on demand, a warehouse path and the embedded sync API."""
    _isolated_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(_migrated_store, _isolated_home / "sync_api.sqlite")
    root = tmp_path / "data"
    root.mkdir()
    client = open_client()
    assert isinstance(client, EmbeddedSyncApiClient)
    yield SyncSetup(
        root=root,
        warehouse=root / "warehouse.duckdb",
        syncs_file=root / "syncs.yaml",
        client=client,
    )
    client.close()


def build_defs(setup: SyncSetup, syncs: dict[str, str], **options: Any) -> Definitions:
    """Write the syncs file, apply it (as ``sync-pipelines apply`` does), build the definitions."""
    path = setup.write_syncs_file(syncs, extra_sources=options.pop("extra_sources", ()))
    apply_syncs(setup.client, path)
    return build_sync_definitions(syncs_file=path, sync_api=SyncApiResource(), **options)


@pytest.fixture(scope="session")
def _dagster_home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DAGSTER_HOME with its storage created once per session (copied for each test)."""
    home = tmp_path_factory.mktemp("dagster_home_template")
    with instance_for_test(temp_dir=str(home)):
        pass
    return home


@pytest.fixture
def instance(tmp_path: Path, _dagster_home_template: Path) -> Iterator[DagsterInstance]:
    """A persistent Dagster instance in a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    shutil.copytree(_dagster_home_template, home)
    with instance_for_test(temp_dir=str(home)) as dagster_instance:
        yield dagster_instance


def backdated_client(client: EmbeddedSyncApiClient, ago: dt.timedelta) -> EmbeddedSyncApiClient:
    """A client on the same store whose clock is ``ago`` in the past (to record old runs)."""
    service = SyncService(client.service.engine, clock=lambda: dt.datetime.now(dt.UTC) - ago)
    return EmbeddedSyncApiClient(service, client.organization_id)
