"""Nothing of the server reaches an organization: its environment, its disk, its network's
answers, half-masked passwords, writes through custom_join.

A real server on loopback with two organizations (alpha, beta), each with its own directory of
file databases; every response body and every log line is checked for every secret used.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import duckdb
import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import make_url

from sync_pipelines.api.app import create_app
from sync_pipelines.api.client import SyncApiClient
from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.api.service import SyncService
from sync_pipelines.common import secret_box, settings
from sync_pipelines.contract.models import RunStatus, SourceCreate
from sync_pipelines.engine import SyncRunError, run_sync

ALPHA_PASSWORD = "Pa@ssw0rd-alpha"
BETA_PASSWORD = "beta-s3cret-pw"
EVENT_FIELDS = [
    {"name": "id", "type": "integer"},
    {"name": "name", "type": "string"},
    {"name": "updated_at", "type": "integer"},
]
MAPPINGS = [{"source_field_name": n, "destination_field_name": n} for n in ("id", "name")] + [
    {"source_field_name": "updated_at", "destination_field_name": "updated_at"}
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, for the ``with`` block."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Tenant:
    """An organization: its id, raw HTTP client, API client (for runs) and directory."""

    name: str
    id: int
    http: httpx.Client
    api: SyncApiClient
    files: Path

    def ok(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def source(self, url: str, **extra) -> int:
        body = {"display_name": f"{self.name} db", "end_customer_id": self.name} | extra
        return self.ok("POST", "/source", json=body | {"connection_type": _type(url), "url": url})[
            "source"
        ]["id"]

    def connection_of(self, source_id: int) -> int:
        return self.ok("GET", f"/source/{source_id}")["source"]["connection"]["id"]

    def sync(self, source_id: int, *, warehouse: str = "warehouse.duckdb", **extra) -> int:
        destination = self.ok(
            "POST",
            "/destination",
            json={
                "display_name": "W",
                "connection_type": "duckdb",
                "url": f"duckdb:///{warehouse}",
            },
        )["destination"]["id"]
        obj = self.ok(
            "POST",
            "/object",
            json={
                "display_name": "Events",
                "destination_id": destination,
                "namespace": "main",
                "table_name": "events",
                "end_customer_id_field": "customer",
                "cursor_field": "updated_at",
                "primary_key": "id",
                "object_fields": EVENT_FIELDS,
            },
        )["object"]["id"]
        body = {
            "display_name": "Events",
            "source_id": source_id,
            "object_id": obj,
            "field_mappings": MAPPINGS,
        } | (extra or {"namespace": "main", "table_name": "events"})
        return self.ok("POST", "/sync", json=body)["sync"]["id"]


def _type(url: str) -> str:
    backend = make_url(url).get_backend_name()
    return {"postgresql": "postgres", "mariadb": "mysql"}.get(backend, backend)


@dataclass
class Server:
    """The server under test and everything it said."""

    url: str
    service: SyncService
    home: Path
    files: Path
    alpha: Tenant
    beta: Tenant
    secrets: list[str]
    said: list[str] = field(default_factory=list)

    def run(self, tenant: Tenant, sync_id: int) -> str:
        """Run a sync through the HTTP API; the run's error (``""`` when it completed)."""
        try:
            run_sync(sync_id, tenant.api)
        except SyncRunError as error:
            self.said.append(str(error))
            run = tenant.api.list_runs(sync_id)[0]
            assert run.status is RunStatus.FAILED and run.error == str(error)
            return str(error)
        return ""


def events_file(path: Path, name: str = "event") -> Path:
    """A SQLite file with an ``events`` table of three rows."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT, updated_at INTEGER)")
        )
        for i in (1, 2, 3):
            connection.execute(sa.text(f"INSERT INTO events VALUES ({i}, '{name} {i}', {i})"))
    engine.dispose()
    return path


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> Iterator[Server]:
    """The app as ``api serve`` runs it: a secret key, the store in the home, file roots of
    ``files/{org}`` plus the home itself (shared, to show the store stays out of reach)."""
    key = secret_box.generate_key()
    monkeypatch.setenv(settings.SECRET_KEY_ENV, key)
    home = settings.home()
    files = tmp_path / "files"
    service = SyncService.open(f"sqlite:///{home / 'sync_api.sqlite'}")
    caplog.set_level(logging.INFO)
    said: list[str] = []

    def record(response: httpx.Response) -> None:
        response.read()
        said.append(response.text)

    roots = [f"{files}/{{org}}", str(home)]
    with serving(create_app(service, file_roots=roots)) as url:
        tenants = {}
        keys = []
        for name in ("alpha", "beta"):
            (files / name).mkdir(parents=True)
            api_key = service.create_api_key(name)
            keys.append(api_key)
            tenants[name] = Tenant(
                name,
                service.ensure_organization(name),
                httpx.Client(
                    base_url=url,
                    headers={"X-API-KEY": api_key},
                    timeout=30,
                    event_hooks={"response": [record]},
                ),
                SyncApiClient(url, api_key, max_retries=0),
                files / name,
            )
        secrets = [key, ALPHA_PASSWORD, quote(ALPHA_PASSWORD, safe=""), BETA_PASSWORD]
        state = Server(url, service, home, files, tenants["alpha"], tenants["beta"], secrets, said)
        yield state
        for tenant in tenants.values():
            tenant.http.close()
            tenant.api.close()
    service.engine.dispose()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in state.secrets:
        for text in state.said:
            assert secret not in text, f"a response or run error holds a secret: {text}"
        assert secret not in logged, "a log line holds a secret"
    for api_key in keys:
        assert api_key not in logged


def postgres_parts(url: str) -> dict:
    server = make_url(url)
    return {"username": server.username, "host": server.host, "port": server.port or 5432}


# --- 1. the server's environment ----------------------------------------------------------


def test_environment_references_are_sent_as_they_are(server: Server, postgres_server_url: str):
    alpha = server.alpha
    url = "postgresql://u@127.0.0.1:1/${SYNC_PIPELINES_SECRET_KEY}"
    source = alpha.ok(
        "POST",
        "/source",
        json={
            "display_name": "x",
            "end_customer_id": "c",
            "connection_type": "postgres",
            "url": url,
        },
    )["source"]
    assert source["connection"]["url"] == url
    connection = source["connection"]["id"]
    browsed = alpha.http.get("/connection/namespaces", params={"connection_id": connection})
    assert browsed.status_code == 400
    assert browsed.json() == {
        "error": f"cannot browse connection {connection}: the database is unreachable",
        "details": [],
    }

    # a typed config on a real server: the literal name is what is asked for
    config = postgres_parts(postgres_server_url) | {
        "database_name": "${SYNC_PIPELINES_SECRET_KEY}",
        "password": "${SYNC_PIPELINES_SECRET_KEY}-as-password",
    }
    typed = alpha.ok(
        "POST",
        "/source",
        json={
            "display_name": "y",
            "end_customer_id": "c",
            "connection_type": "postgres",
            "postgres_config": config,
        },
    )["source"]
    assert typed["connection"]["postgres_config"]["database_name"] == (
        "${SYNC_PIPELINES_SECRET_KEY}"
    )
    browsed = alpha.http.get(
        "/connection/namespaces", params={"connection_id": typed["connection"]["id"]}
    )
    assert browsed.json()["error"].endswith(": the database does not exist")

    # what runners receive is the literal too
    error = server.run(alpha, alpha.sync(typed["id"]))
    assert 'database "${SYNC_PIPELINES_SECRET_KEY}" does not exist' in error


# --- 2. the server's disk -----------------------------------------------------------------


def test_a_server_without_file_roots_refuses_file_databases(tmp_path: Path):
    service = SyncService.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    app_db = events_file(tmp_path / "app.sqlite")
    try:
        with serving(create_app(service, file_roots=[])) as url:
            key = service.create_api_key("alpha")
            for kind, path in (("sqlite", app_db), ("duckdb", tmp_path / "w.duckdb")):
                response = httpx.post(
                    f"{url}/source",
                    headers={"X-API-KEY": key},
                    json={
                        "display_name": "x",
                        "end_customer_id": "c",
                        "connection_type": kind,
                        "url": f"{kind}:///{path}",
                    },
                )
                assert response.status_code == 422, response.text
                [detail] = response.json()["details"]
                assert detail["field"] == "url"
                assert "SYNC_PIPELINES_FILE_ROOTS" in detail["message"]
        # the embedded API (local, one user) keeps its files anywhere
        local = EmbeddedSyncApiClient(SyncService(service.engine), service.ensure_organization())
        source = local.create_source(
            SourceCreate(
                display_name="x",
                end_customer_id="c",
                connection_type="sqlite",
                url=f"sqlite:///{app_db}",
            )
        )
        assert local.list_tables(source.connection.id, "main") == ["events"]
    finally:
        service.engine.dispose()


def test_the_store_and_other_organizations_files_are_out_of_reach(server: Server):
    alpha, beta = server.alpha, server.beta
    store = server.home / "sync_api.sqlite"

    # a literal ${SYNC_PIPELINES_HOME} is a (missing) path in alpha's own directory
    literal = alpha.source("sqlite:///${SYNC_PIPELINES_HOME}/sync_api.sqlite")
    inside = alpha.files / "${SYNC_PIPELINES_HOME}" / "sync_api.sqlite"
    connection = alpha.ok("GET", f"/source/{literal}")["source"]["connection"]
    assert connection["url"] == f"sqlite:///{inside}"
    browsed = alpha.http.get(
        "/connection/tables", params={"connection_id": connection["id"], "namespace": "main"}
    )
    assert browsed.status_code == 400
    assert browsed.json()["error"].endswith(": the database does not exist")
    assert not inside.parent.exists()  # browsing creates nothing

    beta_db = events_file(beta.files / "app.sqlite", "beta")
    (alpha.files / "link.sqlite").symlink_to(beta_db)
    refused = {
        f"sqlite:///{store}": "the sync API's own files",
        f"sqlite:///{store}-wal": "the sync API's own files",
        f"duckdb:///{server.home / 'secret.key'}": "the sync API's own files",
        f"sqlite:///{alpha.files}/../../home/sync_api.sqlite": "must not contain '..'",
        f"sqlite:///{beta_db}": "outside the directories this organization may use",
        "sqlite:///link.sqlite": "outside the directories this organization may use",
        f"duckdb:///{beta.files / 'w.duckdb'}": "outside the directories",
        f"sqlite:///{alpha.files / 'a.sqlite'}?mode=rwc": "takes no parameters",
    }
    for url, reason in refused.items():
        response = alpha.http.post(
            "/source",
            json={
                "display_name": "x",
                "end_customer_id": "c",
                "connection_type": _type(url),
                "url": url,
            },
        )
        assert response.status_code == 422, (url, response.text)
        [detail] = response.json()["details"]
        assert detail["field"] == "url" and reason in detail["message"], (url, detail)
        assert "api_keys" not in response.text

    # replacing a connection names the nested field
    source = alpha.source("sqlite:///own.sqlite")
    patched = alpha.http.patch(
        f"/source/{source}",
        json={"connection": {"connection_type": "sqlite", "url": f"sqlite:///{beta_db}"}},
    )
    assert patched.status_code == 422
    assert patched.json()["details"][0]["field"] == "connection.url"

    # beta's own file, by a relative path that lands in beta's directory
    own = beta.source("sqlite:///app.sqlite")
    own_connection = beta.ok("GET", f"/source/{own}")["source"]["connection"]
    assert own_connection["url"] == f"sqlite:///{beta_db}"
    listed = beta.ok(
        "GET",
        "/connection/tables",
        params={"connection_id": own_connection["id"], "namespace": "main"},
    )
    assert listed == {"tables": ["events"]}


def test_a_file_stored_outside_the_roots_is_neither_browsed_nor_synced(server: Server):
    alpha, beta = server.alpha, server.beta
    beta_db = events_file(beta.files / "app.sqlite", "beta")
    before = beta_db.read_bytes()
    # stored without the server's rules (as the embedded API, or an older server, would)
    unconfined = EmbeddedSyncApiClient(SyncService(server.service.engine), alpha.id)
    source = unconfined.create_source(
        SourceCreate(
            display_name="x",
            end_customer_id="alpha",
            connection_type="sqlite",
            url=f"sqlite:///{beta_db}",
        )
    )
    browsed = alpha.http.get(
        "/connection/namespaces", params={"connection_id": source.connection.id}
    )
    assert browsed.status_code == 422
    assert browsed.json()["details"][0]["field"] == "connection_id"
    assert "outside the directories" in browsed.json()["details"][0]["message"]

    error = server.run(alpha, alpha.sync(source.id))
    assert "the source connection: the path" in error and "outside the directories" in error
    assert not (alpha.files / "warehouse.duckdb").exists()
    assert beta_db.read_bytes() == before


def test_syncs_read_their_own_files_read_only(server: Server):
    alpha = server.alpha
    app_db = events_file(alpha.files / "app.sqlite")
    before = app_db.read_bytes()
    source = alpha.source("sqlite:///app.sqlite")
    sync = alpha.sync(source, custom_join="select id, name, updated_at from events; -- every event")
    assert server.run(alpha, sync) == ""
    with duckdb.connect(str(alpha.files / "warehouse.duckdb"), read_only=True) as warehouse:
        rows = warehouse.execute(
            "SELECT id, name, customer FROM main.events ORDER BY id"
        ).fetchall()
    assert rows == [(1, "event 1", "alpha"), (2, "event 2", "alpha"), (3, "event 3", "alpha")]
    assert app_db.read_bytes() == before


# --- 3. the server's network --------------------------------------------------------------


def test_browse_errors_are_a_class_not_the_drivers_answer(
    server: Server, caplog, postgres_server_url: str, mysql_server_url: str
):
    alpha = server.alpha
    closed = _free_port()
    not_postgres = make_url(server.url).port  # the sync API itself answers on this one
    pg = postgres_parts(postgres_server_url)
    my = make_url(mysql_server_url)
    cases = {
        f"postgresql://u@127.0.0.1:{closed}/db": "the database is unreachable",
        f"postgresql://u@127.0.0.1:{not_postgres}/db": "the database is unreachable",
        f"postgresql://{pg['username']}@{pg['host']}:{pg['port']}/sp_missing_db": (
            "the database does not exist"
        ),
        f"mysql://sp_nobody:{BETA_PASSWORD}@{my.host}:{my.port or 3306}/test": (
            "authentication failed"
        ),
    }
    connections = {}
    for url, reason in cases.items():
        connection = alpha.connection_of(alpha.source(url))
        connections[connection] = url
        response = alpha.http.get("/connection/namespaces", params={"connection_id": connection})
        assert response.status_code == 400
        assert response.json() == {
            "error": f"cannot browse connection {connection}: {reason}",
            "details": [],
        }
        for driver_words in ("refused", "invalid response", "SSL", "Access denied", "FATAL"):
            assert driver_words not in response.text
    logged = [r.getMessage() for r in caplog.records if r.name == "sync_pipelines.api"]
    for connection in connections:
        [line] = [m for m in logged if f"organization {alpha.id} connection {connection} " in m]
        assert "failed" in line
    assert any("refused" in line.lower() for line in logged)  # the detail stays server-side


# --- 4. passwords with an unencoded '@' --------------------------------------------------


def test_an_unencoded_at_in_a_password_is_refused_and_an_encoded_one_fully_hidden(
    server: Server, mysql_server_url: str
):
    alpha = server.alpha
    half_masked = f"postgresql://app:{ALPHA_PASSWORD}@db.internal/acme"
    response = alpha.http.post(
        "/source",
        json={
            "display_name": "x",
            "end_customer_id": "c",
            "connection_type": "postgres",
            "url": half_masked,
        },
    )
    assert response.status_code == 422
    [detail] = response.json()["details"]
    assert detail["field"] == "url" and "%40" in detail["message"]
    assert "ssw0rd" not in response.text
    destination = alpha.ok(
        "POST",
        "/destination",
        json={"display_name": "W", "connection_type": "duckdb", "url": "duckdb:///w.duckdb"},
    )["destination"]["id"]
    patched = alpha.http.patch(
        f"/destination/{destination}",
        json={"connection": {"connection_type": "postgres", "url": half_masked}},
    )
    assert patched.status_code == 422 and patched.json()["details"][0]["field"] == "connection.url"

    closed = _free_port()
    encoded = f"postgresql://app:{quote(ALPHA_PASSWORD, safe='')}@127.0.0.1:{closed}/acme"
    source = alpha.source(encoded)
    shown = alpha.ok("GET", f"/source/{source}")["source"]["connection"]["url"]
    assert shown == f"postgresql://app:***@127.0.0.1:{closed}/acme"
    assert (
        alpha.http.get(
            "/connection/namespaces", params={"connection_id": alpha.connection_of(source)}
        )
        .json()["error"]
        .endswith("the database is unreachable")
    )
    error = server.run(alpha, alpha.sync(source))
    assert "cannot connect to the source database" in error and "app:***@" in error

    my = make_url(mysql_server_url)
    refused = f"mysql://sp_nobody:{quote(ALPHA_PASSWORD, safe='')}@{my.host}:{my.port or 3306}/t"
    error = server.run(alpha, alpha.sync(alpha.source(refused), warehouse="w2.duckdb"))
    assert "Access denied for user 'sp_nobody'" in error


# --- 5. custom_join -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "select load_extension('/tmp/evil.so')",
        "select pg_read_file('/etc/passwd')",
        "select pg_sleep(60)",
        "select lo_import('/etc/passwd')",
        "select * from dblink('host=10.0.0.1', 'select 1') as t(a int)",
        "select * from read_csv('/etc/passwd')",
        "select read_text('/etc/passwd')",
        "select * from '/etc/passwd.csv'",
        "select LOAD_FILE('/etc/passwd')",
        "select * from events into outfile '/tmp/out'",
        "copy (select 1) to program 'id'",
        "select 1; delete from events",
    ],
)
def test_custom_join_that_reaches_outside_the_query_is_refused(server: Server, query: str):
    alpha = server.alpha
    source = alpha.source("sqlite:///app.sqlite")
    response = alpha.http.post(
        "/sync",
        json={
            "display_name": "x",
            "source_id": source,
            "object_id": 1,
            "custom_join": query,
            "field_mappings": MAPPINGS,
        },
    )
    assert response.status_code == 422, response.text
    [detail] = response.json()["details"]
    assert detail["field"] == "custom_join", detail
    assert detail["message"].startswith("custom_join ")
