"""No request can take the server down: bounded bodies and lists (413/422 naming the limit),
no 500 for out-of-range input, errors that name their field, an OpenAPI document that matches."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from sync_pipelines.api.middleware import MAX_BODY_BYTES
from sync_pipelines.contract.models import (
    MAX_CUSTOM_JOIN_CHARS,
    MAX_FIELD_MAPPINGS,
    MAX_OBJECT_FIELDS,
)


def _only_detail(response: httpx.Response, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    details = response.json()["details"]
    assert len(details) == 1, details
    return details[0]


def _object_body(destination_id: int, fields: int, table: str = "wide") -> dict:
    return {
        "display_name": "Wide",
        "destination_id": destination_id,
        "namespace": "analytics",
        "table_name": table,
        "end_customer_id_field": "end_customer_id",
        "object_fields": [{"name": f"f{i}", "type": "string"} for i in range(fields)],
    }


@pytest.fixture
def destination_id(http: httpx.Client) -> int:
    created = http.post(
        "/destination",
        json={"display_name": "W", "connection_type": "duckdb", "url": "duckdb:///w.db"},
    )
    assert created.status_code == 200, created.text
    return created.json()["destination"]["id"]


def test_a_huge_body_gets_413_before_it_is_read(http: httpx.Client):
    huge = b'{"display_name": "' + b"x" * (4 * MAX_BODY_BYTES) + b'"}'
    declared = http.post("/source", content=huge, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json() == {
        "error": f"the request body is too large (at most {MAX_BODY_BYTES} bytes)",
        "details": [{"field": "body", "message": f"at most {MAX_BODY_BYTES} bytes"}],
    }

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    streamed = http.post("/source", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["details"][0]["field"] == "body"
    assert http.get("/syncs").status_code == 200


def test_long_lists_get_422_naming_field_and_limit(http: httpx.Client, destination_id: int):
    fields = http.post("/object", json=_object_body(destination_id, 20_000))
    assert _only_detail(fields) == {
        "field": "object_fields",
        "message": f"List should have at most {MAX_OBJECT_FIELDS} items after validation, "
        "not 20000",
    }
    widest = http.post("/object", json=_object_body(destination_id, MAX_OBJECT_FIELDS))
    assert widest.status_code == 200, widest.text
    assert len(widest.json()["object"]["object_fields"]) == MAX_OBJECT_FIELDS

    mappings = [
        {"source_field_name": f"s{i}", "destination_field_name": f"f{i}"} for i in range(12_000)
    ]
    sync = {
        "display_name": "S",
        "source_id": 1,
        "object_id": widest.json()["object"]["id"],
        "namespace": "public",
        "table_name": "wide",
        "field_mappings": mappings,
    }
    detail = _only_detail(http.post("/sync", json=sync))
    assert detail["field"] == "field_mappings"
    assert f"at most {MAX_FIELD_MAPPINGS} items" in detail["message"]

    repeated = sync | {"field_mappings": mappings[:2] + mappings[:1]}
    assert _only_detail(http.post("/sync", json=repeated)) == {
        "field": "field_mappings",
        "message": "field_mappings: 'f0' is mapped more than once",
    }

    provider = {
        "provider": "stripe",
        "name": "S",
        "destination_id": destination_id,
        "credential": {"properties": {"secret": "sk"}},
    }
    collections = provider | {"collection_ids": [f"stripe:c{i}" for i in range(101)]}
    detail = _only_detail(http.post("/sync", json=collections))
    assert detail["field"] == "collection_ids" and "at most 100 items" in detail["message"]
    metadata = provider | {"collection_ids": ["stripe:customer"], "metadata": {"k": "v" * 70_000}}
    assert _only_detail(http.post("/sync", json=metadata)) == {
        "field": "metadata",
        "message": "must be at most 65536 bytes as JSON",
    }
    join = sync | {"field_mappings": [], "custom_join": "select 1 " + "x" * MAX_CUSTOM_JOIN_CHARS}
    detail = _only_detail(http.post("/sync", json=join))
    assert detail["field"] == "custom_join"
    assert f"at most {MAX_CUSTOM_JOIN_CHARS} characters" in detail["message"]


def test_large_requests_do_not_hold_other_requests(http: httpx.Client, destination_id: int):
    """Big bodies (the largest lists allowed and too-long ones) are checked while GET /syncs
    answers: every request gets its own answer, none waits for the others to fail."""
    wide = [
        json.dumps(_object_body(destination_id, MAX_OBJECT_FIELDS, f"wide_{i}")).encode()
        for i in range(3)
    ]
    too_wide = [json.dumps(_object_body(destination_id, 20_000)).encode()] * 3
    statuses: list[int] = []

    def post(bodies: list[bytes]) -> None:
        with httpx.Client(base_url=str(http.base_url), headers=http.headers, timeout=60) as own:
            for body in bodies:
                sent = own.post(
                    "/object", content=body, headers={"Content-Type": "application/json"}
                )
                statuses.append(sent.status_code)

    posters = [threading.Thread(target=post, args=(bodies,)) for bodies in (wide, too_wide)]
    for poster in posters:
        poster.start()
    listed = [http.get("/syncs").status_code for _ in range(10)]
    for poster in posters:
        poster.join(timeout=60)
    assert listed == [200] * 10
    assert sorted(statuses) == [200] * 3 + [422] * 3


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/sync/99999999999999999999999", None, "sync_id"),
        ("GET", "/sync/-1", None, "sync_id"),
        ("GET", "/sync/2147483648", None, "sync_id"),
        ("DELETE", "/credential/1/permits/99999999999999999999", None, "permit_id"),
        ("GET", "/syncs?object_id=99999999999999999999", None, "object_id"),
        ("GET", "/connection/namespaces?connection_id=99999999999999999999", None, "connection_id"),
        ("GET", "/customer/a%00b/syncs", None, "end_customer_id"),
        ("POST", "/source", {"connection_type": "postgres", "url": "8"}, "url"),
        (
            "POST",
            "/object",
            {"destination_id": 10**30, "frequency": 100000000000, "frequency_units": "weeks"},
            "frequency",
        ),
        ("POST", "/object", {"frequency": 2000, "frequency_units": "weeks"}, "frequency"),
        ("POST", "/object", {"destination_id": 10**30}, "destination_id"),
        ("POST", "/sync", {"sync_frequency": "99999999999w"}, "sync_frequency"),
        ("POST", "/sync", {"max_age_days": 10**12}, "max_age_days"),
        ("POST", "/sync", {"lookback": 2**40}, "lookback"),
        ("POST", "/sync", {"source_id": 10**30}, "source_id"),
        (
            "POST",
            "/sync",
            {"custom_join": "select " + "(" * 3000 + "1" + ")" * 3000},
            "custom_join",
        ),
        ("POST", "/credential/1/permits", {"allowed_requests": 1, "interval": 1e300}, "interval"),
        ("POST", "/run/1/checkpoint", {"stats": {"rows_read": 2**70}}, "stats.rows_read"),
        ("POST", "/source", {"display_name": "a\x00b"}, "display_name"),
    ],
)
def test_out_of_range_input_is_a_422_naming_the_field(http, method, path, body, field):
    base = {
        "/source": {
            "display_name": "S",
            "end_customer_id": "c",
            "connection_type": "postgres",
            "url": "postgresql://u@h/d",
        },
        "/object": {
            "display_name": "O",
            "destination_id": 1,
            "namespace": "a",
            "table_name": "t",
            "end_customer_id_field": "c",
        },
        "/sync": {
            "display_name": "S",
            "source_id": 1,
            "object_id": 1,
            "namespace": "a",
            "table_name": "t",
            "field_mappings": [],
        },
    }.get(path, {})
    response = http.request(method, path, json=None if body is None else base | body)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["details"]], response.text


def test_nan_and_infinity_are_refused(http: httpx.Client):
    body = b'{"allowed_requests": 1, "interval": NaN}'
    permits = http.post(
        "/credential/1/permits", content=body, headers={"Content-Type": "application/json"}
    )
    assert _only_detail(permits)["field"] == "interval"
    sync = (
        b'{"display_name": "S", "source_id": 1, "object_id": 1, "namespace": "a",'
        b' "table_name": "t", "field_mappings": [], "metadata": {"x": Infinity}}'
    )
    created = http.post("/sync", content=sync, headers={"Content-Type": "application/json"})
    assert _only_detail(created) == {
        "field": "metadata",
        "message": "must not contain NaN or Infinity",
    }


def test_rules_across_fields_name_the_field(http: httpx.Client, destination_id: int):
    both = http.post(
        "/source",
        json={
            "display_name": "S",
            "end_customer_id": "c",
            "connection_type": "postgres",
            "url": "postgresql://u@h/d",
            "postgres_config": {"username": "u", "database_name": "d", "host": "h"},
        },
    )
    assert _only_detail(both) == {
        "field": "url",
        "message": "give either url or postgres_config, not both",
    }
    twice = _object_body(destination_id, 2)
    twice["object_fields"].append({"name": "f0", "type": "integer"})
    assert _only_detail(http.post("/object", json=twice)) == {
        "field": "object_fields",
        "message": "object_fields: field 'f0' is defined twice",
    }
    nested = http.patch(
        "/source/1", json={"connection": {"connection_type": "postgres"}}
    )  # the rule of a nested body names its path
    assert _only_detail(nested) == {
        "field": "connection.url",
        "message": "connection_type 'postgres' needs url or postgres_config",
    }
    not_an_object = http.post("/source", json=[1, 2])
    assert not_an_object.status_code == 422
    assert [d["field"] for d in not_an_object.json()["details"]] == ["body"]


def test_a_405_says_which_methods_are_allowed(http: httpx.Client):
    response = http.put("/sync/1", json={})
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "PATCH", "DELETE"}
    assert response.json() == {"error": "Method Not Allowed", "details": []}


def test_openapi_declares_what_the_server_sends(http: httpx.Client):
    spec = http.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["ErrorBody"]["required"] == ["error", "details"]
    assert schemas["ErrorDetail"]["properties"]["field"] == {"type": "string", "title": "Field"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            ok = responses["200"]["content"]["application/json"]["schema"]
            assert ok["$ref"].endswith("Response"), (method, path, ok)
            for status, response in responses.items():
                if status != "200":
                    error = response["content"]["application/json"]["schema"]
                    assert error == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
            assert "401" in responses, (method, path)
            if operation.get("parameters") or "requestBody" in operation:
                assert "422" in responses, (method, path)
    assert schemas["SyncResponse"]["properties"]["sync"] == {"$ref": "#/components/schemas/Sync"}
    namespaces = spec["paths"]["/connection/namespaces"]["get"]["parameters"]
    assert [(p["name"], p["required"]) for p in namespaces] == [("connection_id", True)]
