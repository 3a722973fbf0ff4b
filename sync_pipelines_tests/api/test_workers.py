"""A sync's ``workers`` (threads loading a backfill's key ranges): 1 to 32, default 1, stored
(SQLite and PostgreSQL stores), mutable, refused out of range with a 422 naming the field."""

from __future__ import annotations

import httpx
import pytest

from sync_pipelines.contract.models import SyncUpdate
from sync_pipelines_tests.api.test_contract import SEED_SYNC, make_sync


def test_workers_default_to_one_and_are_a_mutable_setting(client):
    sync = make_sync(client)
    assert sync.workers == 1 and sync.model_dump(mode="json")["workers"] == 1

    updated = client.update_sync(sync.id, SyncUpdate(workers=4))

    assert updated.workers == 4 and client.get_sync(sync.id).workers == 4
    assert client.update_sync(sync.id, SyncUpdate(status="paused")).workers == 4
    other = make_sync(client, end_customer_id="other", workers=32)
    assert client.get_sync(other.id).workers == 32


@pytest.mark.parametrize("workers", [0, 33, -1, "many", 2.5])
def test_workers_out_of_range_get_a_422_naming_the_field(http: httpx.Client, workers):
    destination = http.post(
        "/destination",
        json={"display_name": "W", "connection_type": "duckdb", "url": "duckdb:///w.db"},
    ).json()["destination"]
    obj = http.post(
        "/object",
        json={
            "display_name": "Events",
            "destination_id": destination["id"],
            "namespace": "analytics",
            "table_name": "events",
            "end_customer_id_field": "end_customer_id",
            "cursor_field": "updated_at",
            "primary_key": "event_id",
            "object_fields": [
                {"name": "event_id", "type": "integer", "optional": True},
                {"name": "event", "type": "string"},
                {"name": "updated_at", "type": "timestamp", "optional": True},
            ],
        },
    ).json()["object"]
    source = http.post(
        "/source",
        json={
            "display_name": "Acme",
            "end_customer_id": "abc123",
            "connection_type": "duckdb",
            "url": "duckdb:///s.db",
        },
    ).json()["source"]
    body = SEED_SYNC | {"source_id": source["id"], "object_id": obj["id"], "workers": workers}

    created = http.post("/sync", json=body)

    assert created.status_code == 422, created.text
    assert [d["field"] for d in created.json()["details"]] == ["workers"]
    good = http.post("/sync", json=body | {"workers": 3})
    assert good.status_code == 200, good.text
    sync_id = good.json()["sync"]["id"]
    assert good.json()["sync"]["workers"] == 3
    patched = http.patch(f"/sync/{sync_id}", json={"workers": workers})
    assert patched.status_code == 422, patched.text
    assert [d["field"] for d in patched.json()["details"]] == ["workers"]
    assert http.get(f"/sync/{sync_id}").json()["sync"]["workers"] == 3
