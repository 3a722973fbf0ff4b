"""API-provider syncs in the sync API: credentials, Sequin's sync fields, the shared rate limiter.
Run through both clients, on both stores."""

from __future__ import annotations

import pytest

from sync_pipelines.common import secret_box
from sync_pipelines.contract.errors import ConflictError, NotFoundError, ValidationFailedError
from sync_pipelines.contract.models import (
    CredentialCreate,
    CredentialUpdate,
    DestinationCreate,
    ObjectCreate,
    ProviderSyncCreate,
    RateLimit,
    SyncUpdate,
)

SECRET = "sk_test_never-shown-4242"


def _destination(client):
    return client.create_destination(
        DestinationCreate(display_name="W", connection_type="duckdb", url="duckdb:///w.duckdb")
    )


def _stripe_sync(client, **overrides):
    body = {
        "provider": "stripe",
        "name": "Stripe of Acme",
        "destination_id": _destination(client).id,
        "collection_ids": ["stripe:customer", "stripe:invoice"],
        "credential": {"kind": "api_key", "properties": {"secret": SECRET}},
        "sync_frequency": "continuous",
        "max_age_days": 30,
        "metadata": {"team": "billing", "tier": "gold"},
        "external_id": "acme-42",
    } | overrides
    return client.create_sync(ProviderSyncCreate.model_validate(body))


def test_credentials_are_write_only(client):
    credential = client.create_credential(
        CredentialCreate(provider="github", properties={"token": SECRET, "app": "x"})
    )
    assert credential.properties == {"app": "***", "token": "***"}
    assert credential.kind == "api_key"
    assert [c.id for c in client.list_credentials()] == [credential.id]
    rotated = client.update_credential(
        credential.id, CredentialUpdate(properties={"token": "new-" + SECRET})
    )
    assert rotated.properties == {"token": "***"}
    with pytest.raises((ValidationFailedError, ValueError), match="provider cannot be changed"):
        client.update_credential(credential.id, CredentialUpdate.model_validate({"provider": "x"}))
    client.delete_credential(credential.id)
    with pytest.raises(NotFoundError):
        client.get_credential(credential.id)
    assert SECRET not in str(client.list_credentials()) + rotated.model_dump_json()


def test_provider_sync_takes_sequin_fields(client):
    sync = _stripe_sync(client)
    assert sync.provider == "stripe" and sync.source_id is None and sync.object_id is None
    assert sync.collection_ids == ["stripe:customer", "stripe:invoice"]
    assert sync.sync_frequency == "continuous" and sync.max_age_days == 30
    assert sync.rate_limit == RateLimit(allowed_requests=25, interval=1, max_concurrent_requests=4)
    assert sync.namespace == "stripe" and sync.end_customer_id == "acme-42"
    assert sync.backfill_completed_at is None and sync.health.status.value == "ok"
    credential = client.get_credential(sync.credential_id)
    assert credential.provider == "stripe" and credential.properties == {"secret": "***"}
    assert SECRET not in sync.model_dump_json()

    lease = client.start_run(sync.id)
    assert lease.source is None and lease.object is None and lease.source_connection is None
    assert lease.credential is not None and SECRET not in lease.model_dump_json()
    assert secret_box.unseal(lease.credential.sealed)["properties"] == {"secret": SECRET}

    four_hourly = _stripe_sync(
        client,
        credential=None,
        credential_id=sync.credential_id,
        sync_frequency="4h",
        rate_limit={"allowed_requests": 2, "interval": 1},
        metadata={"team": "growth"},
        external_id="other",
    )
    assert (four_hourly.frequency, four_hourly.frequency_units.value) == (4, "hours")
    assert four_hourly.credential_id == sync.credential_id
    assert [s.id for s in client.list_syncs(metadata={"team": "billing"})] == [sync.id]
    assert [s.id for s in client.list_syncs(external_id="other")] == [four_hourly.id]
    with pytest.raises(ConflictError, match="used by syncs"):
        client.delete_credential(sync.credential_id)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"provider": "salesforce", "collection_ids": ["salesforce:lead"]}, "provider", "unknown"),
        ({"collection_ids": ["stripe:unicorn"]}, "collection_ids", "stripe:customer"),
        ({"collection_ids": ["github:issue"]}, None, "not a stripe collection"),
        ({"credential": None}, None, "exactly one of credential and credential_id"),
        ({"credential_id": 999_999, "credential": None}, "credential_id", "not found"),
        (
            {"provider": "github", "collection_ids": ["github:issue"]},
            "provider_config",
            "repository",
        ),
        ({"sync_frequency": "sometimes"}, None, "not a frequency"),
    ],
)
def test_provider_sync_validation_names_the_field(client, overrides, field, message):
    with pytest.raises((ValidationFailedError, ValueError)) as caught:
        _stripe_sync(client, **overrides)
    assert message in str(caught.value)
    if field:
        assert field in str(caught.value)


def test_provider_and_stream_are_immutable(client):
    sync = _stripe_sync(client)
    for field, value in (("provider", "github"), ("destination_id", 1), ("credential_id", 1)):
        with pytest.raises((ValidationFailedError, ValueError), match=f"{field} cannot be changed"):
            client.update_sync(sync.id, SyncUpdate.model_validate({field: value}))
    paused = client.update_sync(
        sync.id, SyncUpdate(status="paused", collection_ids=["stripe:customer"])
    )
    assert paused.status.value == "paused" and paused.collection_ids == ["stripe:customer"]
    assert paused.provider == "stripe" and paused.credential_id == sync.credential_id


def test_rate_limiter_spaces_requests_and_bounds_concurrency(client):
    credential = client.create_credential(
        CredentialCreate(provider="stripe", properties={"secret": SECRET})
    )
    limit = RateLimit(allowed_requests=3, interval=2)
    permits = [client.acquire_permit(credential.id, limit) for _ in range(4)]
    assert [p.granted for p in permits] == [True, True, True, False]
    assert 1.9 < permits[3].wait_seconds <= 2.2
    assert permits[3].permit_id is None

    single = client.create_credential(
        CredentialCreate(provider="stripe", properties={"secret": SECRET})
    )
    one_at_a_time = RateLimit(allowed_requests=100, interval=1, max_concurrent_requests=1)
    first = client.acquire_permit(single.id, one_at_a_time)
    blocked = client.acquire_permit(single.id, one_at_a_time)
    assert first.granted and not blocked.granted and blocked.wait_seconds > 0
    client.release_permit(single.id, first.permit_id)
    assert client.acquire_permit(single.id, one_at_a_time).granted
    with pytest.raises(NotFoundError):
        client.acquire_permit(999_999, limit)


def test_provider_collections_and_objects_never_share_a_table(client):
    sync = _stripe_sync(client, namespace="billing")  # billing.customer, billing.invoice
    destination_id = sync.destination_id
    other_customer = _stripe_sync(
        client, namespace="billing", destination_id=destination_id, external_id="umbrella-7"
    )
    assert other_customer.id != sync.id  # one provider's syncs share its collection tables

    with pytest.raises(ConflictError) as caught:
        client.create_object(
            ObjectCreate(
                display_name="Customers",
                destination_id=destination_id,
                namespace="billing",
                table_name="customer",
                end_customer_id_field="end_customer_id",
            )
        )
    assert f"stripe sync {sync.id} writes billing.customer" in str(caught.value)

    obj = client.create_object(
        ObjectCreate(
            display_name="Issues",
            destination_id=destination_id,
            namespace="tracker",
            table_name="issue",
            end_customer_id_field="end_customer_id",
        )
    )
    syncs_before = [s.id for s in client.list_syncs()]
    with pytest.raises(ConflictError) as caught:
        client.create_sync(
            ProviderSyncCreate.model_validate(
                {
                    "provider": "github",
                    "name": "GitHub of Acme",
                    "destination_id": destination_id,
                    "namespace": "tracker",
                    "collection_ids": ["github:issue"],
                    "credential": {"kind": "api_key", "properties": {"token": SECRET}},
                    "provider_config": {"repository": "acme/rockets"},
                }
            )
        )
    assert f"object {obj.id} ('Issues') writes tracker.issue" in str(caught.value)
    assert [s.id for s in client.list_syncs()] == syncs_before  # nothing half-written
    assert SECRET not in str(caught.value)
