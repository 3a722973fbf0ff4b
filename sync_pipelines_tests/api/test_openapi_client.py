"""A client generated from ``/openapi.json`` (openapi-python-client) parses every response of
the README's walkthrough against a real server on loopback: the schema is what the server does."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

PACKAGE = "sp_generated_client"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """One store is enough here: the schema does not depend on it."""
    return f"sqlite:///{tmp_path / 'sync_api.sqlite'}"


@pytest.fixture
def generated(server_url: str, tmp_path: Path) -> Iterator[Any]:
    """The client package generated from the running server's ``/openapi.json``."""
    spec = tmp_path / "openapi.json"
    spec.write_text(httpx.get(f"{server_url}/openapi.json", timeout=10).text)
    config = tmp_path / "generator.yaml"
    config.write_text("post_hooks: []\n")
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [str(generator), "generate", "--path", str(spec), "--meta", "none"]
        + ["--output-path", str(tmp_path / PACKAGE), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class _Walk:
    """Calls operations of the generated client; every answer must parse into its model."""

    def __init__(self, package: Any, client: Any) -> None:
        self.package = package
        self.client = client
        self.models = importlib.import_module(f"{PACKAGE}.models")

    def body(self, model: str, data: dict[str, Any]) -> Any:
        return getattr(self.models, model).from_dict(data)

    def call(self, tag: str, operation: str, expected: str, status: int = 200, **kwargs: Any):
        module = importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")
        response = module.sync_detailed(client=self.client, **kwargs)
        assert response.status_code == status, response.content
        parsed = response.parsed
        assert type(parsed).__name__ == expected, (operation, response.content)
        assert parsed.additional_properties == {}, (operation, parsed.additional_properties)
        assert json.loads(response.content).keys() == parsed.to_dict().keys()
        return parsed


def test_generated_client_parses_the_walkthrough(
    generated: Any, server_url: str, service, postgres_schema
):
    server, namespace = postgres_schema
    engine = sa.create_engine(server)
    with engine.begin() as db:
        db.execute(sa.text(f'CREATE TABLE "{namespace}".events (id integer primary key, e text)'))
    engine.dispose()
    client = generated.AuthenticatedClient(
        base_url=server_url,
        token=service.create_api_key("generated"),
        prefix="",
        auth_header_name="X-API-KEY",
        raise_on_unexpected_status=True,
    )
    walk = _Walk(generated, client)
    url = server.render_as_string(hide_password=False)

    source = walk.call(
        "source",
        "create_source",
        "SourceResponse",
        body=walk.body(
            "SourceCreate",
            {
                "display_name": "Acme DB",
                "end_customer_id": "abc123",
                "connection_type": "postgres",
                "url": url,
            },
        ),
    ).source
    assert source.connection.connection_type.value == "postgres"
    walk.call("source", "list_sources", "SourcesResponse")
    walk.call("source", "get_source", "SourceResponse", source_id=source.id)
    walk.call(
        "source",
        "update_source",
        "SourceResponse",
        source_id=source.id,
        body=walk.body("SourceUpdate", {"display_name": "Acme"}),
    )

    destination = walk.call(
        "destination",
        "create_destination",
        "DestinationResponse",
        body=walk.body(
            "DestinationCreate",
            {"display_name": "Warehouse", "connection_type": "duckdb", "url": "duckdb:///w.db"},
        ),
    ).destination
    walk.call("destination", "list_destinations", "DestinationsResponse")
    walk.call(
        "destination", "get_destination", "DestinationResponse", destination_id=destination.id
    )

    obj = walk.call(
        "object_",
        "create_object",
        "ObjectResponse",
        body=walk.body(
            "ObjectCreate",
            {
                "display_name": "Events",
                "destination_id": destination.id,
                "namespace": "analytics",
                "table_name": "events",
                "end_customer_id_field": "end_customer_id",
                "cursor_field": "updated_at",
                "primary_key": "id",
                "object_fields": [
                    {"name": "id", "type": "integer"},
                    {"name": "event", "type": "string"},
                    {"name": "updated_at", "type": "timestamp", "optional": True},
                ],
            },
        ),
    ).object_
    walk.call("object_", "list_objects", "ObjectsResponse")
    walk.call("object_", "get_object", "ObjectResponse", object_id=obj.id)

    sync = walk.call(
        "sync",
        "create_sync",
        "SyncResponse",
        body=walk.body(
            "SyncCreate",
            {
                "display_name": "Event Sync",
                "source_id": source.id,
                "object_id": obj.id,
                "namespace": namespace,
                "table_name": "events",
                "cursor_field": "updated_at",
                "primary_key": "id",
                "field_mappings": [
                    {"source_field_name": "id", "destination_field_name": "id"},
                    {"source_field_name": "e", "destination_field_name": "event"},
                ],
                "frequency": 30,
                "frequency_units": "minutes",
                "metadata": {"team": "growth"},
            },
        ),
    ).sync
    assert sync.sync_frequency == "30m"
    walk.call("sync", "list_syncs", "SyncsResponse", end_customer_id="abc123")
    walk.call("sync", "list_customer_syncs", "SyncsResponse", end_customer_id="abc123")
    walk.call("sync", "get_sync", "SyncWithRunsResponse", sync_id=sync.id)
    walk.call(
        "sync",
        "update_sync",
        "SyncResponse",
        sync_id=sync.id,
        body=walk.body("SyncUpdate", {"sync_frequency": "4h"}),
    )

    # The body is optional; the generated client sends one (it cannot leave it out).
    run_now = walk.body("RunRequest", {"full_refresh": False})
    requested = walk.call("run", "request_run", "RunResponse", sync_id=sync.id, body=run_now).run
    walk.call("runner", "list_requested_runs", "RunsResponse")
    lease = walk.call(
        "runner",
        "start_run",
        "LeaseResponse",
        sync_id=sync.id,
        body=walk.body("StartRun", {"run_id": requested.id, "runner_id": "walkthrough"}),
    ).lease
    assert lease.run.id == requested.id and lease.source_connection.sealed
    walk.call(
        "runner",
        "checkpoint",
        "RunResponse",
        run_id=requested.id,
        body=walk.body(
            "Checkpoint",
            {"cursor_position": {"cursor": {"updated_at": None}}, "stats": {"rows_read": 2}},
        ),
    )
    finished = walk.call(
        "runner",
        "finish_run",
        "RunResponse",
        run_id=requested.id,
        body=walk.body("FinishRun", {"status": "completed", "stats": {"rows_read": 2}}),
    ).run
    assert finished.status.value == "completed" and finished.rows_read == 2
    walk.call("runner", "get_run", "RunResponse", run_id=requested.id)
    walk.call("run", "list_runs", "RunsResponse", sync_id=sync.id)
    walk.call("run", "request_run", "RunResponse", sync_id=sync.id, body=run_now)
    walk.call("run", "cancel_run", "RunResponse", sync_id=sync.id)

    credential = walk.call(
        "credential",
        "create_credential",
        "CredentialResponse",
        body=walk.body(
            "CredentialCreate", {"provider": "stripe", "properties": {"secret": "sk_test_1"}}
        ),
    ).credential
    walk.call("credential", "list_credentials", "CredentialsResponse")
    walk.call("credential", "get_credential", "CredentialResponse", credential_id=credential.id)
    walk.call(
        "credential",
        "update_credential",
        "CredentialResponse",
        credential_id=credential.id,
        body=walk.body("CredentialUpdate", {"display_name": "Stripe"}),
    )
    permit = walk.call(
        "runner",
        "acquire_permit",
        "PermitResponse",
        credential_id=credential.id,
        body=walk.body("RateLimit", {"allowed_requests": 5, "interval": 1}),
    ).permit
    assert permit.granted
    walk.call(
        "runner",
        "release_permit",
        "ReleasedResponse",
        credential_id=credential.id,
        permit_id=permit.permit_id,
    )

    connection_id = source.connection.id
    namespaces = walk.call(
        "connection", "namespaces", "NamespacesResponse", connection_id=connection_id
    )
    assert namespace in namespaces.namespaces
    tables = walk.call(
        "connection", "tables", "TablesResponse", connection_id=connection_id, namespace=namespace
    )
    assert tables.tables == ["events"]
    columns = walk.call(
        "connection",
        "schema",
        "SchemaResponse",
        connection_id=connection_id,
        namespace=namespace,
        table_name="events",
    )
    assert [(c.name, c.type_.value) for c in columns.schema] == [
        ("id", "integer"),
        ("e", "string"),
    ]

    missing = walk.call("sync", "get_sync", "ErrorBody", status=404, sync_id=sync.id + 1000)
    assert missing.error == f"sync {sync.id + 1000} not found"
    invalid = walk.call(
        "sync",
        "update_sync",
        "ErrorBody",
        status=422,
        sync_id=sync.id,
        body=walk.body("SyncUpdate", {"source_id": 5}),
    )
    assert [(d.field, d.message) for d in invalid.details] == [
        ("source_id", "source_id cannot be changed after the sync is created")
    ]
    walk.call("credential", "delete_credential", "DeletedResponse", credential_id=credential.id)
    walk.call("sync", "delete_sync", "DeletedResponse", sync_id=sync.id)
    walk.call("object_", "delete_object", "DeletedResponse", object_id=obj.id)
    walk.call("source", "delete_source", "DeletedResponse", source_id=source.id)
    walk.call("destination", "delete_destination", "DeletedResponse", destination_id=destination.id)
