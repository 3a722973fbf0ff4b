"""The sync API on the wire: auth, envelopes, JSON errors, Fabra 0.1.0 clients, no secrets."""

from __future__ import annotations

import httpx
import pytest

from sync_pipelines_tests.api.test_contract import PASSWORD, SEED_SYNC

V010_OBJECT_FIELDS = [
    {"name": "event", "type": "string"},
    {"name": "updated_at", "type": "timestamp"},
    {"name": "event_id", "type": "integer"},
]


def _setup(http: httpx.Client) -> dict[str, int]:
    source = http.post(
        "/source",
        json={
            "display_name": "Frontend Events",
            "end_customer_id": 123,  # 0.1.0 sent an integer
            "connection_type": "postgres",
            "postgres_config": {
                "username": "jane_doe",
                "password": PASSWORD,
                "database_name": "db",
                "host": "db.internal",
                "port": "5432",  # 0.1.0 sent ports as strings
            },
        },
    )
    assert source.status_code == 200, source.text
    destination = http.post(
        "/destination",
        json={
            "display_name": "Snowflake",
            "connection_type": "snowflake",
            "snowflake_config": {
                "username": "jane_doe",
                "password": PASSWORD,
                "warehouse_name": "wh",
                "database_name": "db",
                "host": "abc123.us-east4.gcp.snowflakecomputing.com",
                "role": "loader",
            },
        },
    )
    assert destination.status_code == 200, destination.text
    obj = http.post(
        "/object",
        json={
            "display_name": "Events",
            "destination_id": destination.json()["destination"]["id"],
            "namespace": "analytics",
            "table_name": "events",
            "customer_id_column": "end_customer_id",  # 0.1.0's name
            "object_fields": V010_OBJECT_FIELDS,
        },
    )
    assert obj.status_code == 200, obj.text
    return {
        "source_id": source.json()["source"]["id"],
        "destination_id": destination.json()["destination"]["id"],
        "object_id": obj.json()["object"]["id"],
    }


def test_api_key_is_required(server_url: str):
    with httpx.Client(base_url=server_url, timeout=10) as anonymous:
        missing = anonymous.get("/syncs")
        wrong = anonymous.get("/syncs", headers={"X-API-KEY": "sp_not-a-key"})
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "missing API key: send it in the X-API-KEY header",
        "details": [],
    }
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid API key"


def test_heartbeats_need_the_api_key(server_url: str):
    with httpx.Client(base_url=server_url, timeout=10) as anonymous:
        missing = anonymous.post("/run/1/heartbeat")
        wrong = anonymous.post("/run/1/heartbeat", headers={"X-API-KEY": "sp_not-a-key"})
    assert missing.status_code == 401 and missing.json()["error"].startswith("missing API key")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid API key"


def test_fabra_010_requests_get_2xx_or_a_clear_4xx(http: httpx.Client):
    ids = _setup(http)
    assert http.get(f"/object/{ids['object_id']}").json()["object"]["customer_id_column"] == (
        "end_customer_id"
    )
    v010_sync = {
        "display_name": "Event Sync",
        "source_id": ids["source_id"],
        "destination_id": ids["destination_id"],
        "object_id": ids["object_id"],
        "namespace": "public",
        "table_name": "events",
        "cursor_field": "updated_at",
        "primary_key": "event_id",
        "frequency": 30,
        "frequency_units": "minutes",
        "field_mappings": [
            {"source_field_name": name, "destination_field_name": name}
            for name in ("event", "updated_at", "event_id")
        ],
    }
    created = http.post("/sync", json=v010_sync)
    assert created.status_code == 200, created.text
    sync = created.json()["sync"]
    assert sync["end_customer_id"] == "123" and sync["sync_mode"] == "incremental_update"

    later_names = v010_sync | {
        "source_cursor_field": "updated_at",
        "source_primary_key": "event_id",
    }
    for key in ("cursor_field", "primary_key"):
        later_names.pop(key)
    later = http.post("/sync", json=later_names | {"end_customer_id": "other"})
    assert later.status_code == 200, later.text
    assert later.json()["sync"]["cursor_field"] == "updated_at"

    mongodb = http.post(
        "/source",
        json={"display_name": "M", "end_customer_id": 1, "connection_type": "mongodb"},
    )
    assert mongodb.status_code == 422
    assert mongodb.json()["details"][0]["field"] == "connection_type"
    assert "not supported" in mongodb.json()["details"][0]["message"]

    webhook = http.post("/destination", json={"display_name": "W", "connection_type": "webhook"})
    assert webhook.status_code == 422

    tables = http.get("/connection/tables", params={"connectionID": 999_999, "namespace": "x"})
    assert tables.status_code == 404 and tables.json()["error"] == "connection 999999 not found"

    listed = http.get("/syncs").json()["syncs"]
    assert [s["id"] for s in listed] == [sync["id"], later.json()["sync"]["id"]]


def test_errors_are_json_with_the_right_status(http: httpx.Client):
    bad_json = http.post(
        "/sync", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "the body is not valid JSON"

    missing = http.get("/sync/424242")
    assert missing.status_code == 404 and missing.json() == {
        "error": "sync 424242 not found",
        "details": [],
    }
    no_route = http.get("/nowhere")
    assert no_route.status_code == 404 and "error" in no_route.json()

    invalid = http.post("/sync", json={"display_name": "x"})
    assert invalid.status_code == 422
    fields = {d["field"] for d in invalid.json()["details"]}
    assert {"source_id", "object_id", "field_mappings"} <= fields

    wrong_type = http.post("/sync", json=SEED_SYNC | {"source_id": "one", "object_id": 1})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["details"][0]["field"] == "source_id"


def test_every_response_hides_secrets(http: httpx.Client):
    ids = _setup(http)
    url_source = http.post(
        "/source",
        json={
            "display_name": "By URL",
            "end_customer_id": "u",
            "connection_type": "postgres",
            "url": f"postgresql://app:{PASSWORD}@db.internal/acme",
        },
    )
    sync = http.post(
        "/sync",
        json={
            "display_name": "S",
            "source_id": ids["source_id"],
            "object_id": ids["object_id"],
            "namespace": "public",
            "table_name": "events",
            "field_mappings": [
                {"source_field_name": n, "destination_field_name": n}
                for n in ("event", "updated_at", "event_id")
            ],
        },
    ).json()["sync"]
    responses = [
        url_source,
        http.get("/sources"),
        http.get(f"/source/{ids['source_id']}"),
        http.get("/destinations"),
        http.get(f"/destination/{ids['destination_id']}"),
        http.get(f"/sync/{sync['id']}"),
        http.post(f"/sync/{sync['id']}/runs/start", json={}),
        http.get(f"/sync/{sync['id']}/runs"),
        http.patch(
            f"/source/{ids['source_id']}",
            json={"connection": {"connection_type": "mysql", "url": f"mysql://u:{PASSWORD}@h/d"}},
        ),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        assert PASSWORD not in response.text
    assert '"password":"***"' in responses[2].text.replace(" ", "")


def test_openapi_describes_the_api(http: httpx.Client):
    spec = http.get("/openapi.json").json()
    for path in ("/sync", "/syncs", "/sync/{sync_id}", "/sync/{sync_id}/run", "/object"):
        assert path in spec["paths"]
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-KEY"


@pytest.mark.parametrize("query", ["metadata.team=growth", "external_id=crm-1"])
def test_sync_filters(http: httpx.Client, query: str):
    ids = _setup(http)
    base = {
        "display_name": "S",
        "source_id": ids["source_id"],
        "object_id": ids["object_id"],
        "namespace": "public",
        "table_name": "events",
        "field_mappings": [
            {"source_field_name": n, "destination_field_name": n}
            for n in ("event", "updated_at", "event_id")
        ],
    }
    tagged = http.post(
        "/sync",
        json=base | {"external_id": "crm-1", "metadata": {"team": "growth"}},
    ).json()["sync"]
    http.post("/sync", json=base | {"end_customer_id": "b", "metadata": {"team": "ops"}})
    found = http.get(f"/syncs?{query}").json()["syncs"]
    assert [s["id"] for s in found] == [tagged["id"]]


def test_provider_sync_body_errors_name_the_field(http: httpx.Client):
    missing = http.post(
        "/sync",
        json={"provider": "stripe", "name": "S", "collection_ids": ["stripe:customer"]},
    )
    assert missing.status_code == 422
    assert {d["field"] for d in missing.json()["details"]} == {"destination_id"}
    database = http.post("/sync", json={"display_name": "D", "object_id": 1, "field_mappings": []})
    assert [d["field"] for d in database.json()["details"]] == ["source_id"]
