"""``syncs.yaml``: validation errors name the file, the entry and the field; applying is an
idempotent upsert."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from sync_pipelines.contract.models import DeleteMode, NullCursor, SyncStatus, SyncUpdate
from sync_pipelines.orchestration import (
    SyncsFileError,
    apply_syncs_file,
    load_syncs_yaml,
)

VALID = """
destinations:
  - name: Warehouse
    connection_type: duckdb
    url: duckdb:///${SYNCS_FILE_DIR}/warehouse.duckdb
sources:
  - name: Acme app
    end_customer_id: acme
    connection_type: postgres
    postgres_config:
      username: app
      password: ${ACME_DB_PASSWORD}
      database_name: acme
      host: db.internal
objects:
  - name: Events
    destination: Warehouse
    namespace: analytics
    table_name: events
    end_customer_id_field: end_customer_id
    cursor_field: updated_at
    primary_key: event_id
    object_fields:
      - {name: event_id, type: integer}
      - {name: updated_at, type: timestamp}
syncs:
  - name: Acme events
    source: Acme app
    object: Events
    namespace: public
    table_name: events
    field_mappings:
      - {source_field_name: id, destination_field_name: event_id}
      - {source_field_name: updated_at, destination_field_name: updated_at}
    sync_frequency: 45m
"""


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACME_DB_PASSWORD", "s3cret-pw")

    def write_file(text: str, name: str = "syncs.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write_file


def error_of(path: Path) -> SyncsFileError:
    with pytest.raises(SyncsFileError) as caught:
        load_syncs_yaml(path)
    return caught.value


def test_a_valid_file_loads_with_environment_variables(write, tmp_path):
    syncs_file = load_syncs_yaml(write(VALID))

    (source,) = syncs_file.sources
    assert source.body.postgres_config.password.get_secret_value() == "s3cret-pw"
    (destination,) = syncs_file.destinations
    assert destination.body.url.get_secret_value() == f"duckdb:///{tmp_path}/warehouse.duckdb"
    (sync,) = syncs_file.syncs
    assert (sync.source, sync.object, sync.body.frequency) == ("Acme app", "Events", 45)
    assert sync.line == 27


def test_an_invalid_enum_names_file_entry_and_field(write):
    path = write(VALID.replace("sync_frequency: 45m", "frequency: 3\n    frequency_units: moons"))

    error = error_of(path)

    assert error.path == str(path)
    assert error.entry == "syncs[0] 'Acme events'"
    assert error.field == "frequency_units"
    assert str(error).startswith(f"{path}:27: syncs[0] 'Acme events': frequency_units: ")
    assert "'minutes'" in str(error)


def test_a_nested_field_error_names_the_path(write):
    error = error_of(write(VALID.replace("{name: event_id, type: integer}", "{name: event_id}")))

    assert error.entry == "objects[0] 'Events'"
    assert error.field == "object_fields[0].type"
    assert error.message == "Field required"


def test_an_unknown_reference_names_the_entry_and_the_known_names(write):
    error = error_of(write(VALID.replace("source: Acme app", "source: Globex app")))

    assert error.entry == "syncs[0] 'Acme events'"
    assert error.field == "source"
    assert "no source named 'Globex app'" in error.message
    assert "'Acme app'" in error.message


def test_an_unknown_field_is_an_error(write):
    error = error_of(
        write(VALID.replace("namespace: analytics", "namespace: analytics\n    colour: blue"))
    )

    assert (error.entry, error.field) == ("objects[0] 'Events'", "colour")
    assert "Extra inputs are not permitted" in error.message


def test_an_unset_environment_variable_names_it(write, monkeypatch):
    monkeypatch.delenv("ACME_DB_PASSWORD")

    error = error_of(write(VALID))

    assert error.entry == "sources[0] 'Acme app'"
    assert error.field == "postgres_config.password"
    assert "ACME_DB_PASSWORD is not set" in error.message


def test_defaults_and_escapes_of_variables(write, monkeypatch):
    monkeypatch.delenv("ACME_DB_PASSWORD")
    text = VALID.replace("${ACME_DB_PASSWORD}", "${ACME_DB_PASSWORD:-fallback}").replace(
        "host: db.internal", "host: $${NOT_A_VARIABLE}"
    )

    (source,) = load_syncs_yaml(write(text)).sources

    assert source.body.postgres_config.password.get_secret_value() == "fallback"
    assert source.body.postgres_config.host == "${NOT_A_VARIABLE}"


def test_bad_yaml_names_the_line(write):
    path = write(VALID.replace("    table_name: events\n    end_customer", "  table_name: [\n"))

    error = error_of(path)

    assert error.line is not None
    assert "not valid YAML" in str(error) and str(path) in str(error)


@pytest.mark.parametrize(
    ("text", "entry", "field", "message"),
    [
        ("colour: red\n", "colour", None, "unknown section"),
        ("sources: {name: x}\n", "sources", None, "must be a list"),
        ("sources:\n  - just a string\n", "sources[0]", None, "must be a mapping"),
        ("sources:\n  - end_customer_id: a\n", "sources[0]", "name", "required"),
        ("objects:\n  - name: o\n    destination_id: 3\n", "objects[0] 'o'", "destination", ""),
    ],
)
def test_structural_errors(write, text, entry, field, message):
    error = error_of(write(text))

    assert (error.entry, error.field) == (entry, field)
    assert message in error.message


def test_a_name_used_twice_is_an_error(write):
    text = VALID + "  - name: Acme events\n    source: Acme app\n    object: Events\n"

    error = error_of(write(text))

    assert error.entry == "syncs[1] 'Acme events'"
    assert error.field == "name"


def test_two_syncs_of_one_object_and_customer_are_an_error(write):
    second = VALID.split("syncs:\n")[1].replace("name: Acme events", "name: Acme again")

    error = error_of(write(VALID + second))

    assert error.entry == "syncs[1] 'Acme again'"
    assert "one sync per object and end customer" in error.message


def test_applying_twice_creates_nothing_new(write):
    from sync_pipelines.api.connect import open_client

    client = open_client()
    syncs_file = load_syncs_yaml(write(VALID))

    first = apply_syncs_file(client, syncs_file)
    second = apply_syncs_file(client, syncs_file)

    assert len(first.created) == 4 and first.updated == []
    assert second.created == [] and second.updated == []
    assert second.sync_ids == first.sync_ids
    assert len(client.list_sources()) == len(client.list_destinations()) == 1
    assert len(client.list_objects()) == len(client.list_syncs()) == 1
    # the secret went to the API (sealed), never back out
    assert client.list_sources()[0].connection.postgres_config["password"] == "***"


def test_a_changed_frequency_updates_the_sync_and_a_pause_made_in_the_api_stays(write):
    from sync_pipelines.api.connect import open_client

    client = open_client()
    apply_syncs_file(client, load_syncs_yaml(write(VALID)))
    (sync,) = client.list_syncs()
    client.update_sync(sync.id, SyncUpdate(status="paused"))

    applied = apply_syncs_file(
        client, load_syncs_yaml(write(VALID.replace("sync_frequency: 45m", "sync_frequency: 2h")))
    )

    (updated,) = client.list_syncs()
    assert applied.updated == ["syncs[0] 'Acme events'"]
    assert (updated.frequency, updated.frequency_units.value) == (2, "hours")
    assert updated.status is SyncStatus.PAUSED  # the file does not set status


def test_null_cursor_is_set_and_updated_by_the_file(write):
    from sync_pipelines.api.connect import open_client

    client = open_client()
    with_policy = VALID.replace("sync_frequency: 45m", "sync_frequency: 45m\n    null_cursor: skip")
    apply_syncs_file(client, load_syncs_yaml(write(with_policy)))
    assert client.list_syncs()[0].null_cursor is NullCursor.SKIP

    apply_syncs_file(client, load_syncs_yaml(write(with_policy.replace("skip", "fail"))))
    assert client.list_syncs()[0].null_cursor is NullCursor.FAIL
    apply_syncs_file(client, load_syncs_yaml(write(VALID)))  # left out: kept
    assert client.list_syncs()[0].null_cursor is NullCursor.FAIL


def test_deletes_are_set_by_the_file(write):
    from sync_pipelines.api.connect import open_client

    client = open_client()
    with_deletes = VALID.replace(
        "sync_frequency: 45m", "sync_frequency: 45m\n    deletes: soft\n    delete_check_every: 4"
    )
    apply_syncs_file(client, load_syncs_yaml(write(with_deletes)))
    sync = client.list_syncs()[0]
    assert (sync.deletes, sync.delete_check_every) == (DeleteMode.SOFT, 4)
    apply_syncs_file(client, load_syncs_yaml(write(with_deletes.replace("soft", "hard"))))
    assert client.list_syncs()[0].deletes is DeleteMode.HARD


def test_a_fixed_field_that_changed_is_an_error_naming_it(write):
    from sync_pipelines.api.connect import open_client

    client = open_client()
    apply_syncs_file(client, load_syncs_yaml(write(VALID)))
    path = write(
        VALID.replace(
            "table_name: events\n    field_mappings", "table_name: other_events\n    field_mappings"
        )
    )

    with pytest.raises(SyncsFileError) as caught:
        apply_syncs_file(client, load_syncs_yaml(path))

    assert caught.value.entry == "syncs[0] 'Acme events'"
    assert caught.value.field == "table_name"
    assert "cannot change" in caught.value.message


def test_a_refused_entry_names_the_field(write):
    from sync_pipelines.api.connect import open_client

    text = VALID.replace("destination_field_name: updated_at}", "destination_field_name: nope}")

    with pytest.raises(SyncsFileError) as caught:
        apply_syncs_file(open_client(), load_syncs_yaml(write(text)))

    assert caught.value.entry == "syncs[0] 'Acme events'"
    assert caught.value.field == "field_mappings[1].destination_field_name"


def test_a_changed_connection_is_kept_with_a_warning(write, caplog):
    from sync_pipelines.api.connect import open_client

    client = open_client()
    apply_syncs_file(client, load_syncs_yaml(write(VALID)))

    with caplog.at_level(logging.WARNING, logger="sync_pipelines.orchestration"):
        apply_syncs_file(
            client, load_syncs_yaml(write(VALID.replace("host: db.internal", "host: db2")))
        )

    assert "sources[0] 'Acme app': its connection differs" in caplog.text
    assert "s3cret-pw" not in caplog.text
    assert client.list_sources()[0].connection.postgres_config["host"] == "db.internal"


def test_workers_are_set_by_the_file(write):
    from sync_pipelines.api.connect import open_client

    client = open_client()
    with_workers = VALID.replace("sync_frequency: 45m", "sync_frequency: 45m\n    workers: 4")
    apply_syncs_file(client, load_syncs_yaml(write(with_workers)))
    assert client.list_syncs()[0].workers == 4
    two = with_workers.replace("workers: 4", "workers: 2")
    apply_syncs_file(client, load_syncs_yaml(write(two)))
    assert client.list_syncs()[0].workers == 2
    with pytest.raises(SyncsFileError, match="workers"):
        load_syncs_yaml(write(with_workers.replace("workers: 4", "workers: 99")))
