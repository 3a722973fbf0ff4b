"""Schemathesis against the app (ASGI, in-process): every operation of ``/openapi.json``, fuzzed
with valid and invalid inputs, must answer without a 5xx, with a declared status, content type
and body schema.

Bounded: a few examples per operation, on a fresh store (SQLite, PostgreSQL) with an API key.
Browsing is the only thing that connects to a database: every ``connection_id`` is pointed at
one source on the loopback PostgreSQL, so nothing else is ever reached. Half of the generated ids
are pointed at existing resources (one of each), so updates and deletes run their rules too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
import sqlalchemy as sa
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sync_pipelines.api.app import create_app
from sync_pipelines.api.service import SyncService
from sync_pipelines.contract.models import (
    CredentialCreate,
    DestinationCreate,
    ObjectCreate,
    SourceCreate,
    SyncCreate,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# A few per operation and mode in `make test`; raise it to explore (e.g. 200).
MAX_EXAMPLES = int(os.environ.get("SYNC_TEST_SCHEMATHESIS_EXAMPLES", "8"))


class _Target:
    """The app under test, its key and the only connection browsing may open."""

    def __init__(self, store_url: str, browsed: sa.URL, namespace: str) -> None:
        self.service = SyncService.open(store_url)
        self.api_key = self.service.create_api_key("schemathesis")
        engine = sa.create_engine(browsed)
        with engine.begin() as db:
            db.execute(sa.text(f'CREATE TABLE "{namespace}".events (id integer, name text)'))
        engine.dispose()
        org = self.service.ensure_organization("schemathesis")
        source = self.service.create_source(
            org,
            SourceCreate(
                display_name="browsed",
                end_customer_id="c",
                connection_type="postgres",
                url=browsed.render_as_string(hide_password=False),
            ),
        )
        self.connection_id = source.connection.id
        self.ids = _resources(self.service, org, source.id, namespace)
        self.app = create_app(self.service)

    def aim(self, case: schemathesis.Case) -> None:
        """Browse only the loopback source; half of the ids point at existing resources."""
        if case.path.startswith("/connection/") and isinstance(case.query, dict):
            case.query["connection_id"] = self.connection_id
        for name, value in (case.path_parameters or {}).items():
            if name in self.ids and isinstance(value, int) and value % 2 == 0:
                case.path_parameters[name] = self.ids[name]


def _resources(service: SyncService, org: int, source_id: int, namespace: str) -> dict[str, int]:
    """One of each resource, so that generated requests also reach existing ones."""
    destination = service.create_destination(
        org, DestinationCreate(display_name="d", connection_type="duckdb", url="duckdb:///d.db")
    )
    obj = service.create_object(
        org,
        ObjectCreate(
            display_name="o",
            destination_id=destination.id,
            namespace="analytics",
            table_name="events",
            end_customer_id_field="end_customer_id",
            object_fields=[{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}],
        ),
    )
    sync = service.create_sync(
        org,
        SyncCreate(
            display_name="s",
            source_id=source_id,
            object_id=obj.id,
            namespace=namespace,
            table_name="events",
            field_mappings=[
                {"source_field_name": n, "destination_field_name": n} for n in ("id", "name")
            ],
        ),
    )
    credential = service.create_credential(
        org, CredentialCreate(provider="stripe", properties={"secret": "sk_test"})
    )
    run = service.request_run(org, sync.id)
    return {
        "source_id": source_id,
        "destination_id": destination.id,
        "object_id": obj.id,
        "sync_id": sync.id,
        "credential_id": credential.id,
        "run_id": run.id,
    }


@pytest.fixture
def target(store_url: str, postgres_schema: tuple[sa.URL, str]) -> Iterator[_Target]:
    """The app on a fresh store (SQLite file or PostgreSQL schema)."""
    made = _Target(store_url, *postgres_schema)
    yield made
    made.service.engine.dispose()


@pytest.fixture
def api_schema(target: _Target) -> schemathesis.BaseSchema:
    """The app's own ``/openapi.json``, called in-process with the key."""
    config = schemathesis.Config.from_dict({"headers": {"X-API-KEY": target.api_key}})
    return schemathesis.openapi.from_asgi("/openapi.json", target.app, config=config)


def _failures(operation: schemathesis.APIOperation, mode: GenerationMode, target: _Target):
    """The checks' failures on a few generated requests to one operation (empty: none)."""
    failures: list[str] = []

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        target.aim(case)
        try:
            case.call_and_validate(checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as failure:  # what failed checks raise
            failures.append(f"{mode.value} {case.method} {case.formatted_path}: {failure}")

    try:
        call()
    except hypothesis.errors.Unsatisfiable:  # nothing to make invalid (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


def test_api_conforms_to_its_schema(api_schema: schemathesis.BaseSchema, target: _Target):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {
        "POST /sync",
        "GET /connection/schema",
        "POST /run/{run_id}/finish",
        "POST /range_lease/{range_lease_id}/release",
    } <= labels
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for failure in _failures(operation, mode, target)
    ]
    assert not failures, "\n\n".join(failures[:10])
