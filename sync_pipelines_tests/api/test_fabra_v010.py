"""Requests built from Fabra's published OpenAPI 0.1.0 get a 2xx or a clear JSON 4xx, never a 5xx:
first the spec's own examples, then each body field replaced by a null or a value of the wrong
type."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import yaml

SPEC = yaml.safe_load((Path(__file__).parent / "data" / "fabra-openapi-0.1.0.yaml").read_text())
WRONG_VALUES = [None, "x", -7, 3.5, True, [], {}, "'; DROP TABLE syncs; --"]


def schema_ref(path: str) -> list[str]:
    return path.removeprefix("#/").split("/")


def example_of(schema: dict[str, Any]) -> Any:
    """The spec's example for a schema, built field by field."""
    if "$ref" in schema:
        target = SPEC
        for part in schema_ref(schema["$ref"]):
            target = target[part]
        return example_of(target | {k: v for k, v in schema.items() if k != "$ref"})
    if "example" in schema:
        return schema["example"]
    if schema.get("type") == "object" or "properties" in schema:
        return {name: example_of(sub) for name, sub in schema.get("properties", {}).items()}
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "x", "integer": 1, "boolean": True, "array": []}.get(schema.get("type"))


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, methods in SPEC["paths"].items():
        for method, operation in methods.items():
            found.append((method.upper(), path, operation))
    return found


def _request(http: httpx.Client, method: str, path: str, operation: dict, body: Any):
    params = {
        p["name"]: example_of(p.get("schema", {})) if p["name"] != "connectionID" else 1
        for p in operation.get("parameters", [])
        if p.get("in") == "query"
    }
    return http.request(method, path, params=params, json=body)


def _assert_clear(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        payload = response.json()
        assert payload["error"], what
        assert isinstance(payload["details"], list), what


def test_the_specs_examples_and_their_mutations_never_get_a_5xx(http: httpx.Client):
    answered = 0
    for method, path, operation in operations():
        body_schema = (
            operation.get("requestBody", {})
            .get("content", {})
            .get("application/json", {})
            .get("schema")
        )
        body = example_of(body_schema) if body_schema else None
        _assert_clear(_request(http, method, path, operation, body), f"{method} {path} example")
        answered += 1
        if not isinstance(body, dict):
            continue
        for field in body:
            for wrong in WRONG_VALUES:
                mutated = copy.deepcopy(body)
                mutated[field] = wrong
                response = _request(http, method, path, operation, mutated)
                _assert_clear(response, f"{method} {path} with {field}={wrong!r}")
                answered += 1
            missing = {k: v for k, v in body.items() if k != field}
            _assert_clear(
                _request(http, method, path, operation, missing), f"{method} {path} without {field}"
            )
    assert answered > 200


def test_the_specs_source_example_is_accepted(http: httpx.Client):
    body = example_of(SPEC["components"]["schemas"]["SourceInput"])
    body["connection_type"] = "snowflake"
    for other in ("bigquery_config", "redshift_config", "mongodb_config"):
        body.pop(other)
    response = http.post("/source", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["source"]["end_customer_id"] == "123"
    assert response.json()["source"]["connection"]["snowflake_config"]["password"] == "***"
