"""The sync API's contract, run through the embedded and the HTTP client, on SQLite and
PostgreSQL stores: both clients must behave the same."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from sync_pipelines.contract.errors import (
    ConflictError,
    NotFoundError,
    ValidationFailedError,
)
from sync_pipelines.contract.models import (
    CursorPosition,
    DeleteMode,
    DestinationCreate,
    FieldMapping,
    HealthStatus,
    NullCursor,
    ObjectCreate,
    RunStats,
    RunStatus,
    SourceCreate,
    SyncCreate,
    SyncStatus,
    SyncUpdate,
)

PASSWORD = "pa55-w0rd-never-shown"

SEED_SYNC = {
    "cursor_field": "updated_at",
    "custom_join": "select * from events join additional_properties "
    "on events.id = additional_properties.event_id;",
    "display_name": "Event Sync",
    "end_customer_id": "abc123",
    "field_mappings": [{"destination_field_name": "event", "source_field_name": "event_name"}],
    "frequency": 30,
    "frequency_units": "minutes",
    "namespace": "end_customer_bigquery_dataset",
    "primary_key": "event_id",
    "table_name": "end_customer_events",
}


def make_object(client, *, fields=None, **overrides):
    """A destination and an events object on it."""
    destination = client.create_destination(
        DestinationCreate(display_name="Warehouse", connection_type="duckdb", url="duckdb:///w.db")
    )
    body = {
        "display_name": "Events",
        "destination_id": destination.id,
        "namespace": "analytics",
        "table_name": "events",
        "end_customer_id_field": "end_customer_id",
        "cursor_field": "updated_at",
        "primary_key": "event_id",
        "object_fields": fields
        or [
            {"name": "event_id", "type": "integer", "optional": True},
            {"name": "event", "type": "string"},
            {"name": "updated_at", "type": "timestamp", "optional": True},
        ],
    } | overrides
    return client.create_object(ObjectCreate.model_validate(body))


def make_source(client, end_customer_id="abc123"):
    return client.create_source(
        SourceCreate(
            display_name="Acme DB",
            end_customer_id=end_customer_id,
            connection_type="postgres",
            postgres_config={
                "username": "app",
                "password": PASSWORD,
                "database_name": "acme",
                "host": "db.internal",
                "port": 5432,
            },
        )
    )


def make_sync(client, **overrides):
    source = make_source(client, overrides.pop("end_customer_id", "abc123"))
    obj = overrides.pop("object", None) or make_object(client)
    body = SEED_SYNC | {"source_id": source.id, "object_id": obj.id} | overrides
    return client.create_sync(SyncCreate.model_validate(body))


def test_seed_example_round_trips(client):
    sync = make_sync(client)
    dumped = sync.model_dump(mode="json")
    for field, value in SEED_SYNC.items():
        assert dumped[field] == value, field
    assert sync.destination_id == client.get_object(sync.object_id).destination_id
    assert sync.status is SyncStatus.ACTIVE
    assert sync.sync_mode.value == "incremental_update"
    assert sync.sync_frequency == "30m"
    assert sync.health.status is HealthStatus.OK
    assert sync.backfill_completed_at is None and sync.cursor_position is None
    assert client.get_sync(sync.id) == sync
    assert [s.id for s in client.list_syncs(end_customer_id="abc123")] == [sync.id]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"frequency_units": "fortnights"}, "frequency_units", "minutes"),
        ({"frequency": 0}, "frequency", "greater than 0"),
        ({"display_name": None}, "display_name", "string"),
        (
            {"custom_join": "delete from events", "namespace": None, "table_name": None},
            "custom_join",
            "read-only SELECT",
        ),
        ({"custom_join": "select 1; drop table x"}, "custom_join", "single SELECT"),
        ({"custom_join": "select 'unterminated"}, "custom_join", "not valid SQL"),
        ({"custom_join": None, "table_name": None}, None, "table_name is required"),
        ({"sync_frequency": "every tuesday"}, None, "sync_frequency"),
    ],
)
def test_body_validation_names_the_field(client, change, field, message):
    source = make_source(client)
    obj = make_object(client)
    body = SEED_SYNC | {"source_id": source.id, "object_id": obj.id} | change
    with pytest.raises((ValidationFailedError, ValueError)) as caught:
        client.create_sync(SyncCreate.model_validate(body))
    assert message in str(caught.value)
    if field:
        assert field in str(caught.value)


def test_rules_against_the_object_name_the_field(client):
    source = make_source(client)
    obj = make_object(
        client,
        fields=[
            {"name": "event_id", "type": "integer"},
            {"name": "event", "type": "string"},
            {"name": "updated_at", "type": "timestamp"},
        ],
    )
    body = SEED_SYNC | {"source_id": source.id, "object_id": obj.id}
    with pytest.raises(ValidationFailedError) as caught:
        client.create_sync(SyncCreate.model_validate(body))
    fields = {(d["field"], d["message"]) for d in caught.value.details}
    assert (
        "field_mappings",
        "object field 'event_id' is not mapped (it is neither optional nor omit)",
    ) in fields
    assert any("'updated_at' is not mapped" in message for _, message in fields)

    bad_target = body | {
        "field_mappings": [{"source_field_name": "x", "destination_field_name": "nope"}]
    }
    with pytest.raises(ValidationFailedError) as caught:
        client.create_sync(SyncCreate.model_validate(bad_target))
    assert caught.value.details[0]["field"] == "field_mappings[0].destination_field_name"
    assert "has no field 'nope'" in caught.value.details[0]["message"]

    with pytest.raises(ValidationFailedError) as caught:
        client.create_sync(SyncCreate.model_validate(body | {"object_id": 999_999}))
    assert caught.value.details[0]["field"] == "object_id"


def test_cursor_and_primary_key_required_by_mode(client):
    source = make_source(client)
    obj = make_object(client, cursor_field=None, primary_key=None, sync_mode="full_overwrite")
    body = SEED_SYNC | {"source_id": source.id, "object_id": obj.id, "cursor_field": None}
    body.pop("primary_key")
    with pytest.raises(ValidationFailedError) as caught:
        client.create_sync(SyncCreate.model_validate(body | {"sync_mode": "incremental_append"}))
    assert caught.value.details[0]["field"] == "cursor_field"
    with pytest.raises(ValidationFailedError) as caught:
        client.create_sync(
            SyncCreate.model_validate(
                body | {"sync_mode": "incremental_update", "cursor_field": "updated_at"}
            )
        )
    assert caught.value.details[0]["field"] == "primary_key"
    full = client.create_sync(SyncCreate.model_validate(body))
    assert full.sync_mode.value == "full_overwrite" and full.cursor_field is None


def test_sync_defaults_follow_the_object(client):
    obj = make_object(client, frequency=2, frequency_units="hours")
    source = make_source(client)
    sync = client.create_sync(
        SyncCreate(
            display_name="Defaults",
            source_id=source.id,
            object_id=obj.id,
            namespace="public",
            table_name="events",
            field_mappings=[
                FieldMapping(source_field_name="name", destination_field_name="event"),
                FieldMapping(source_field_name="modified", destination_field_name="updated_at"),
            ],
        )
    )
    assert sync.end_customer_id == "abc123"  # the source's
    assert (sync.frequency, sync.frequency_units.value) == (2, "hours")
    assert sync.cursor_field == "modified"  # the source column mapped onto the object's cursor
    assert sync.primary_key == "event_id"


def test_organizations_are_isolated(new_client):
    alice, bob = new_client(), new_client()
    sync = make_sync(alice)
    with pytest.raises(NotFoundError):
        bob.get_sync(sync.id)
    with pytest.raises(NotFoundError):
        bob.get_source(sync.source_id)
    with pytest.raises(NotFoundError):
        bob.start_run(sync.id)
    assert bob.list_syncs() == [] and bob.list_sources() == []
    bob_object = make_object(bob)
    with pytest.raises(ValidationFailedError) as caught:
        bob.create_sync(
            SyncCreate.model_validate(
                SEED_SYNC | {"source_id": sync.source_id, "object_id": bob_object.id}
            )
        )
    assert caught.value.details[0]["field"] == "source_id"


def test_duplicate_sync_conflicts_until_soft_deleted(client):
    sync = make_sync(client)
    body = SEED_SYNC | {"source_id": sync.source_id, "object_id": sync.object_id}
    with pytest.raises(ConflictError) as caught:
        client.create_sync(SyncCreate.model_validate(body))
    assert f"sync {sync.id} already syncs object {sync.object_id}" in str(caught.value)
    other_customer = client.create_sync(
        SyncCreate.model_validate(body | {"end_customer_id": "other"})
    )
    assert other_customer.id != sync.id

    client.delete_sync(sync.id)
    with pytest.raises(NotFoundError):
        client.get_sync(sync.id)
    assert sync.id not in [s.id for s in client.list_syncs()]
    again = client.create_sync(SyncCreate.model_validate(body))
    assert again.id != sync.id


def test_one_run_lease_at_a_time(client):
    sync = make_sync(client)
    lease = client.start_run(sync.id, runner_id="runner-a")
    assert lease.run.status is RunStatus.RUNNING and lease.sync.id == sync.id
    assert lease.object.id == sync.object_id and lease.source.id == sync.source_id
    with pytest.raises(ConflictError) as caught:
        client.start_run(sync.id)
    assert "already running" in str(caught.value)

    position = CursorPosition(cursor={"type": "integer", "value": 42})
    client.checkpoint(lease.run.id, cursor_position=position, stats=RunStats(rows_read=3))
    assert client.get_sync(sync.id).cursor_position == position
    finished = client.finish_run(
        lease.run.id, status=RunStatus.COMPLETED, stats=RunStats(rows_read=3, rows_written=3)
    )
    assert finished.status is RunStatus.COMPLETED and finished.rows_written == 3
    assert finished.cursor_before is None and finished.cursor_after == position

    after = client.get_sync(sync.id)
    assert after.health.status is HealthStatus.HEALTHY
    assert after.backfill_completed_at is not None
    second = client.start_run(sync.id)
    assert second.run.cursor_before == position
    client.finish_run(second.run.id, status=RunStatus.FAILED, stats=RunStats(), error="boom")
    unhealthy = client.get_sync(sync.id).health
    assert unhealthy.status is HealthStatus.ERROR and "boom" in unhealthy.notes[0]
    assert client.get_sync(sync.id).backfill_completed_at == after.backfill_completed_at


def test_stale_lease_expires(client):
    sync = make_sync(client)
    stale = client.start_run(sync.id, lease_seconds=0.2)
    assert stale.run.lease_seconds == 0.2 and stale.run.heartbeat_at == stale.run.started_at
    time.sleep(0.3)
    fresh = client.start_run(sync.id)
    assert fresh.run.id != stale.run.id
    dead = client.get_run(stale.run.id)
    assert dead.status is RunStatus.FAILED and dead.completed_at == fresh.run.started_at
    assert dead.error == (
        f"runner stopped reporting (last heartbeat at {_ms(stale.run.heartbeat_at)}); its lease "
        f"expired at {_ms(stale.run.lease_expires_at)} and run {fresh.run.id} took over"
    )
    for refused in (
        lambda: client.heartbeat(stale.run.id),
        lambda: client.checkpoint(stale.run.id, cursor_position=None, stats=RunStats()),
    ):
        with pytest.raises(ConflictError) as caught:
            refused()
        assert str(caught.value) == (
            f"run {stale.run.id} no longer holds the lease of sync {sync.id} "
            f"(it is failed: {dead.error}); stop writing"
        )
    with pytest.raises(ConflictError):
        client.finish_run(stale.run.id, status=RunStatus.COMPLETED, stats=RunStats())


def _ms(value):
    return value.isoformat(timespec="milliseconds")


def test_heartbeats_renew_the_lease_and_a_start_meanwhile_names_the_holder(new_client):
    client = new_client()
    sync = make_sync(client)
    lease = client.start_run(
        sync.id, runner_id="runner-a", runner_host="worker-3", runner_pid=4242, lease_seconds=60
    )
    run = lease.run
    assert (run.runner_id, run.runner_host, run.runner_pid) == ("runner-a", "worker-3", 4242)
    assert run.lease_expires_at - run.heartbeat_at == dt.timedelta(seconds=60)

    beat = client.heartbeat(run.id)
    assert beat.id == run.id and beat.status is RunStatus.RUNNING
    assert beat.heartbeat_at >= run.heartbeat_at
    assert beat.lease_expires_at - beat.heartbeat_at == dt.timedelta(seconds=60)
    assert client.get_run(run.id).heartbeat_at == beat.heartbeat_at

    with pytest.raises(ConflictError) as caught:
        client.start_run(sync.id)
    assert caught.value.status_code == 409
    assert str(caught.value) == (
        f"sync {sync.id} is already running: run {run.id} (runner runner-a, host worker-3, "
        f"pid 4242), last heartbeat at {_ms(beat.heartbeat_at)}; its lease holds until "
        f"{_ms(beat.lease_expires_at)} and is renewed while that runner is alive (once it stops "
        f"reporting, the next start takes over). To stop that run now: "
        f"sync-pipelines runs cancel {sync.id}"
    )
    with pytest.raises(NotFoundError):  # another organization's run
        new_client().heartbeat(run.id)

    cancelled = client.cancel_run_request(sync.id)
    assert cancelled.id == run.id and cancelled.status is RunStatus.CANCELLED
    with pytest.raises(ConflictError, match=r"\(it is cancelled: cancelled\); stop writing"):
        client.heartbeat(run.id)
    assert client.start_run(sync.id).run.id != run.id  # the lease was released: at once


def test_pause_and_resume(client):
    sync = make_sync(client)
    paused = client.update_sync(sync.id, SyncUpdate(status=SyncStatus.PAUSED))
    assert paused.status is SyncStatus.PAUSED
    assert [s.id for s in client.list_syncs(status="paused")] == [sync.id]
    with pytest.raises(ConflictError, match="paused"):
        client.start_run(sync.id)
    with pytest.raises(ConflictError, match="paused"):
        client.request_run(sync.id)
    resumed = client.update_sync(sync.id, SyncUpdate(status="active", sync_frequency="4h"))
    assert resumed.status is SyncStatus.ACTIVE
    assert (resumed.frequency, resumed.frequency_units.value) == (4, "hours")
    continuous = client.update_sync(sync.id, SyncUpdate(sync_frequency="continuous"))
    assert continuous.continuous and continuous.sync_frequency == "continuous"
    assert continuous.frequency is None
    client.start_run(sync.id)


def test_null_cursor_is_a_mutable_sync_setting(client):
    sync = make_sync(client)
    assert sync.null_cursor is NullCursor.INCLUDE
    assert sync.model_dump(mode="json")["null_cursor"] == "include"

    failing = client.update_sync(sync.id, SyncUpdate(null_cursor="fail"))

    assert failing.null_cursor is NullCursor.FAIL
    assert client.get_sync(sync.id).null_cursor is NullCursor.FAIL
    assert client.update_sync(sync.id, SyncUpdate(status="paused")).null_cursor is NullCursor.FAIL
    skipping = make_sync(client, end_customer_id="other", null_cursor="skip")
    assert client.get_sync(skipping.id).null_cursor is NullCursor.SKIP
    with pytest.raises(ValueError, match="null_cursor"):
        SyncUpdate.model_validate({"null_cursor": "drop"})


def test_deletes_settings_are_mutable_and_the_object_sets_a_default(client):
    obj = make_object(client, deletes="soft")
    assert client.get_object(obj.id).deletes is DeleteMode.SOFT
    sync = make_sync(client, object=obj)
    dumped = sync.model_dump(mode="json")
    assert (dumped["deletes"], dumped["max_delete_fraction"], dumped["delete_check_every"]) == (
        None,
        None,
        None,
    )

    updated = client.update_sync(
        sync.id, SyncUpdate(deletes="hard", max_delete_fraction=0.2, delete_check_every=3)
    )

    assert (updated.deletes, updated.max_delete_fraction, updated.delete_check_every) == (
        DeleteMode.HARD,
        0.2,
        3,
    )
    assert client.update_sync(sync.id, SyncUpdate(status="paused")).deletes is DeleteMode.HARD
    for body, field in (
        ({"deletes": "purge"}, "deletes"),
        ({"max_delete_fraction": 0}, "max_delete_fraction"),
        ({"max_delete_fraction": 1.5}, "max_delete_fraction"),
        ({"delete_check_every": 0}, "delete_check_every"),
    ):
        with pytest.raises(ValueError, match=field):
            SyncUpdate.model_validate(body)


def test_immutable_fields_are_rejected(client):
    sync = make_sync(client)
    with pytest.raises((ValidationFailedError, ValueError), match="object_id cannot be changed"):
        client.update_sync(sync.id, SyncUpdate.model_validate({"object_id": 1}))


def test_run_requests_are_started_once_and_can_be_cancelled(client):
    sync = make_sync(client)
    requested = client.request_run(sync.id, full_refresh=True)
    assert requested.status is RunStatus.REQUESTED
    assert client.request_run(sync.id).id == requested.id  # one pending request at a time
    assert [r.id for r in client.list_requested_runs()] == [requested.id]
    lease = client.start_run(sync.id, run_id=requested.id)
    assert lease.run.id == requested.id and lease.run.full_refresh
    assert client.list_requested_runs() == []
    with pytest.raises(ConflictError):
        client.start_run(sync.id, run_id=requested.id)
    cancelled = client.cancel_run_request(sync.id)
    assert cancelled.id == requested.id and cancelled.status is RunStatus.CANCELLED
    with pytest.raises(ConflictError):  # the runner learns at its next checkpoint
        client.checkpoint(lease.run.id, cursor_position=None, stats=RunStats())
    assert [r.status for r in client.list_runs(sync.id)] == [RunStatus.CANCELLED]


def test_secrets_never_leave_the_api(client):
    sync = make_sync(client)
    url_source = client.create_source(
        SourceCreate(
            display_name="By URL",
            end_customer_id="url",
            connection_type="postgres",
            url=f"postgresql://app:{PASSWORD}@db.internal/acme",
        )
    )
    assert url_source.connection.url == "postgresql://app:***@db.internal/acme"
    source = client.get_source(sync.source_id)
    assert source.connection.postgres_config["password"] == "***"
    lease = client.start_run(sync.id)
    shown = [
        source,
        url_source,
        lease,
        client.list_sources(),
        client.get_sync(sync.id),
        client.list_destinations(),
    ]
    for item in shown:
        text = str(item) + "".join(
            part.model_dump_json() for part in (item if isinstance(item, list) else [item])
        )
        assert PASSWORD not in text


def test_browse_a_source_database(client, postgres_schema):
    import sqlalchemy as sa

    server, schema = postgres_schema
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f'CREATE TABLE "{schema}".events (id bigint primary key, event_name text, '
                "amount numeric(10,2), updated_at timestamptz not null, payload jsonb)"
            )
        )
    engine.dispose()
    source = client.create_source(
        SourceCreate(
            display_name="PG",
            end_customer_id="c",
            connection_type="postgres",
            url=server.render_as_string(hide_password=False),
        )
    )
    connection_id = source.connection.id
    assert schema in client.list_namespaces(connection_id)
    assert client.list_tables(connection_id, schema) == ["events"]
    assert client.get_schema(connection_id, schema, "events") == [
        {"name": "id", "type": "integer", "optional": False},
        {"name": "event_name", "type": "string", "optional": True},
        {"name": "amount", "type": "number", "optional": True},
        {"name": "updated_at", "type": "timestamp", "optional": False},
        {"name": "payload", "type": "json", "optional": True},
    ]
    with pytest.raises(NotFoundError, match="table"):
        client.get_schema(connection_id, schema, "missing")
    with pytest.raises(NotFoundError, match="namespace"):
        client.list_tables(connection_id, "no_such_schema")


def test_sources_destinations_and_objects_can_be_updated(client):
    from sync_pipelines.contract.models import (
        ConnectionInput,
        DestinationUpdate,
        ObjectUpdate,
        SourceUpdate,
    )

    sync = make_sync(client)
    source = client.update_source(
        sync.source_id,
        SourceUpdate(
            display_name="Renamed",
            connection=ConnectionInput(
                connection_type="postgres", url=f"postgresql://app:{PASSWORD}@new-host/acme"
            ),
        ),
    )
    assert source.display_name == "Renamed"
    assert source.connection.url == "postgresql://app:***@new-host/acme"
    destination = client.update_destination(
        sync.destination_id, DestinationUpdate(display_name="Lake")
    )
    assert destination.display_name == "Lake"
    obj = client.get_object(sync.object_id)
    grown = client.update_object(
        obj.id,
        ObjectUpdate(
            object_fields=[
                *obj.object_fields,
                {"name": "country", "type": "string", "optional": True},
            ]
        ),
    )
    assert [f.name for f in grown.object_fields][-1] == "country"
    with pytest.raises(ValidationFailedError, match="cannot be removed"):
        client.update_object(obj.id, ObjectUpdate(object_fields=obj.object_fields[:1]))


def test_both_clients_offer_every_method_of_the_protocol():
    import inspect

    from sync_pipelines.api.client import SyncApiClient
    from sync_pipelines.api.embedded import EmbeddedSyncApiClient
    from sync_pipelines.contract.protocol import SyncApi

    methods = {name for name, _ in inspect.getmembers(SyncApi) if not name.startswith("_")}
    assert len(methods) > 30
    for implementation in (SyncApiClient, EmbeddedSyncApiClient):
        assert methods <= set(dir(implementation)), implementation.__name__


def test_a_destination_table_has_one_object(client):
    obj = make_object(client)  # analytics.events
    same_table = {
        "display_name": "Events again",
        "destination_id": obj.destination_id,
        "namespace": "Analytics",  # DuckDB and MySQL compare names case-insensitively
        "table_name": "EVENTS",
        "end_customer_id_field": "end_customer_id",
    }
    with pytest.raises(ConflictError) as caught:
        client.create_object(ObjectCreate.model_validate(same_table))
    assert (
        f"destination {obj.destination_id} already has a writer of Analytics.EVENTS "
        f"(object {obj.id} ('Events') writes analytics.events)"
    ) in str(caught.value)
    assert [o.id for o in client.list_objects()] == [obj.id]  # nothing half-written

    elsewhere = make_object(client)  # the same table on another destination is another table
    assert elsewhere.destination_id != obj.destination_id
    client.delete_object(obj.id)
    again = client.create_object(ObjectCreate.model_validate(same_table))
    assert again.table_name == "EVENTS"
