"""Schemathesis against the app (ASGI, in-process): every operation of ``/openapi.json``, fuzzed
with valid and invalid inputs, must answer without a 5xx, with a declared status, content type
and body schema.

Bounded: a few examples per operation, on a fresh store (SQLite, PostgreSQL) with an API key.
Browsing is the only thing that connects to a database: every ``connection_id`` is pointed at
one source on the loopback PostgreSQL, so nothing else is ever reached.
"""

from __future__ import annotations

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
from sync_pipelines.models import SourceCreate

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 8


class _Target:
    """The app under test, its key and the only connection browsing may open."""

    def __init__(self, store_url: str, browsed: sa.URL, namespace: str) -> None:
        self.service = SyncService.open(store_url)
        self.api_key = self.service.create_api_key("schemathesis")
        engine = sa.create_engine(browsed)
        with engine.begin() as db:
            db.execute(sa.text(f'CREATE TABLE "{namespace}".events (id integer, name text)'))
        engine.dispose()
        source = self.service.create_source(
            self.service.ensure_organization("schemathesis"),
            SourceCreate(
                display_name="browsed",
                end_customer_id="c",
                connection_type="postgres",
                url=browsed.render_as_string(hide_password=False),
            ),
        )
        self.connection_id = source.connection.id
        self.app = create_app(self.service)


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
        if case.path.startswith("/connection/") and isinstance(case.query, dict):
            case.query["connection_id"] = target.connection_id
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
    assert {"POST /sync", "GET /connection/schema", "POST /run/{run_id}/finish"} <= labels
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for failure in _failures(operation, mode, target)
    ]
    assert not failures, "\n\n".join(failures[:10])
