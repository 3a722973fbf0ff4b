"""The ``sync-pipelines`` command: keys, listing syncs, clear errors."""

from __future__ import annotations

import json

import pytest

from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.api.service import SyncService, hash_api_key
from sync_pipelines.cli import main
from sync_pipelines.contract.models import (
    DestinationCreate,
    ObjectCreate,
    SourceCreate,
    SyncCreate,
    SyncUpdate,
)


def test_create_key_prints_it_once_and_stores_only_its_hash(capsys):
    assert main(["api", "create-key", "--org", "acme"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("sp_") and len(key) > 40
    service = SyncService.open()
    assert service.authenticate(key) == service.ensure_organization("acme")
    with service.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT key_hash FROM api_keys").scalars().all()
    assert stored == [hash_api_key(key)]


def test_syncs_list_shows_the_embedded_syncs(capsys):
    client = EmbeddedSyncApiClient.open()
    source = client.create_source(
        SourceCreate(
            display_name="App",
            end_customer_id="cust-1",
            connection_type="sqlite",
            url="sqlite:///app.db",
        )
    )
    destination = client.create_destination(
        DestinationCreate(display_name="W", connection_type="duckdb", url="duckdb:///w.duckdb")
    )
    obj = client.create_object(
        ObjectCreate(
            display_name="Events",
            destination_id=destination.id,
            namespace="main",
            table_name="events",
            end_customer_id_field="customer",
        )
    )
    client.create_sync(
        SyncCreate(
            display_name="Events of cust-1",
            source_id=source.id,
            object_id=obj.id,
            namespace="main",
            table_name="events",
            field_mappings=[],
            sync_frequency="4h",
        )
    )
    assert main(["syncs", "list"]) == 0
    out = capsys.readouterr().out
    assert "Events of cust-1" in out and "4h" in out and "cust-1" in out
    assert main(["syncs", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["display_name"] for s in listed] == ["Events of cust-1"]


def test_a_server_without_a_key_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.delenv("SYNC_API_KEY", raising=False)
    assert main(["syncs", "list", "--api-url", "http://127.0.0.1:9"]) == 1
    assert "an API key is needed for http://127.0.0.1:9" in capsys.readouterr().err


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def _events_sync(tmp_path, table="events"):
    import sqlite3

    app = tmp_path / "app.sqlite"
    with sqlite3.connect(app) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT, updated_at INTEGER)")
        db.executemany("INSERT INTO events VALUES (?, ?, ?)", [(i, f"e{i}", i) for i in range(5)])
    client = EmbeddedSyncApiClient.open()
    source = client.create_source(
        SourceCreate(
            display_name="App",
            end_customer_id="c1",
            connection_type="sqlite",
            url=f"sqlite:///{app}",
        )
    )
    destination = client.create_destination(
        DestinationCreate(
            display_name="W", connection_type="duckdb", url=f"duckdb:///{tmp_path / 'w.duckdb'}"
        )
    )
    obj = client.create_object(
        ObjectCreate(
            display_name="Events",
            destination_id=destination.id,
            namespace="main",
            table_name="events",
            end_customer_id_field="customer",
            cursor_field="updated_at",
            primary_key="id",
        )
    )
    return client.create_sync(
        SyncCreate(
            display_name="Events",
            source_id=source.id,
            object_id=obj.id,
            namespace="main",
            table_name=table,
            field_mappings=[],
        )
    )


def test_run_syncs_from_the_shell(tmp_path, capsys):
    import duckdb

    sync = _events_sync(tmp_path)
    assert main(["run", str(sync.id)]) == 0
    assert (
        f"sync {sync.id} run 1 completed: 5 rows read, 5 written (5 inserted, 0 updated), "
        "0 unchanged in "
    ) in capsys.readouterr().out
    with duckdb.connect(str(tmp_path / "w.duckdb")) as warehouse:
        rows = warehouse.execute(
            "SELECT id, name, customer FROM main.events ORDER BY id"
        ).fetchall()
    assert rows == [(i, f"e{i}", "c1") for i in range(5)]
    assert main(["run", str(sync.id), "--full-refresh"]) == 0
    assert "5 rows read, 0 written (0 inserted, 0 updated), 5 unchanged" in capsys.readouterr().out


def test_a_mass_delete_is_refused_until_run_with_allow_mass_delete(tmp_path, capsys):
    import sqlite3

    import duckdb

    sync = _events_sync(tmp_path)
    client = EmbeddedSyncApiClient.open()
    client.update_sync(sync.id, SyncUpdate(deletes="hard"))
    assert main(["run", str(sync.id)]) == 0
    with sqlite3.connect(tmp_path / "app.sqlite") as db:
        db.execute("DELETE FROM events WHERE id > 0")
    capsys.readouterr()

    assert main(["run", str(sync.id)]) == 1
    err = capsys.readouterr().err
    assert "4 of the 5 rows of end customer 'c1' in main.events" in err
    assert "--allow-mass-delete" in err
    assert main(["run", str(sync.id), "--allow-mass-delete"]) == 0
    assert "0 unchanged, 4 deleted in " in capsys.readouterr().out
    with duckdb.connect(str(tmp_path / "w.duckdb")) as warehouse:
        assert warehouse.execute("SELECT id FROM main.events").fetchall() == [(0,)]


def test_a_failed_run_is_a_message_not_a_traceback(tmp_path, capsys):
    sync = _events_sync(tmp_path, table="no_such_table")
    assert main(["run", str(sync.id)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sync-pipelines: ") and "no_such_table" in err
    assert "Traceback" not in err


def test_serve_then_talk_to_the_server_with_a_key(tmp_path, capsys):
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    assert main(["api", "create-key", "--org", "acme"]) == 0
    key = capsys.readouterr().out.strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "sync_pipelines.cli", "api", "serve", "--port", str(port)],
        env=os.environ.copy(),
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert main(["syncs", "list", "--api-url", url, "--api-key", key]) == 0
        assert capsys.readouterr().out.startswith("id  status")
        assert main(["syncs", "list", "--api-url", url, "--api-key", "sp_wrong"]) == 1
        assert "invalid API key" in capsys.readouterr().err
    finally:
        server.terminate()
        _, log = server.communicate(timeout=10)
    assert "SYNC_PIPELINES_SECRET_KEY is not set" in log


def test_runs_cancel_releases_a_held_lease_so_the_next_run_starts_at_once(tmp_path, capsys):
    sync = _events_sync(tmp_path)
    client = EmbeddedSyncApiClient.open()
    held = client.start_run(sync.id, runner_host="worker-3", runner_pid=4242)  # a runner gone
    assert main(["run", str(sync.id)]) == 1
    refusal = capsys.readouterr().err
    assert refusal.startswith(
        f"sync-pipelines: sync {sync.id} is already running: run {held.run.id} "
        "(host worker-3, pid 4242), last heartbeat at "
    )
    assert refusal.rstrip().endswith(f"To stop that run now: sync-pipelines runs cancel {sync.id}")

    assert main(["runs", "cancel", str(sync.id)]) == 0
    assert capsys.readouterr().out == (
        f"sync {sync.id}: run {held.run.id} cancelled; its lease is released, so the next run "
        "starts at once (a live runner stops at its next checkpoint)\n"
    )
    cancelled = client.get_run(held.run.id)
    assert cancelled.status.value == "cancelled" and cancelled.error == "cancelled"
    assert main(["run", str(sync.id)]) == 0
    assert "completed: 5 rows read, 5 written" in capsys.readouterr().out


def test_runs_cancel_takes_a_pending_request_first_and_says_what_is_left(tmp_path, capsys):
    sync = _events_sync(tmp_path)
    client = EmbeddedSyncApiClient.open()
    assert main(["runs", "cancel", str(sync.id)]) == 1
    assert capsys.readouterr().err == (
        f"sync-pipelines: sync {sync.id} has no requested or running run\n"
    )
    running = client.start_run(sync.id)
    requested = client.request_run(sync.id)

    assert main(["runs", "cancel", str(sync.id)]) == 0
    out, err = capsys.readouterr()
    assert out == f"sync {sync.id}: requested run {requested.id} cancelled\n"
    assert err == (
        f"sync {sync.id}: run {running.run.id} is still running; run this command again to "
        "cancel it\n"
    )
    assert main(["runs", "cancel", str(sync.id)]) == 0
    assert f"run {running.run.id} cancelled; its lease is released" in capsys.readouterr().out
    assert [r.status.value for r in client.list_runs(sync.id)] == ["cancelled", "cancelled"]


# --- managing what the API manages ---------------------------------------------------------


def _out(capsys) -> str:
    captured = capsys.readouterr()
    assert "INFO" not in captured.out + captured.err  # no log noise (alembic's migrations)
    return captured.out


def _json(capsys) -> object:
    return json.loads(_out(capsys))


def test_sources_destinations_and_objects_are_managed_from_the_shell(tmp_path, capsys):
    source = {
        "display_name": "Acme app",
        "end_customer_id": "acme",
        "connection_type": "postgres",
        "url": "postgresql://app:hunter2@db/acme",
    }
    assert main(["sources", "create", "--data", json.dumps(source), "--json"]) == 0
    created = _json(capsys)
    assert created["display_name"] == "Acme app" and "hunter2" not in json.dumps(created)
    assert main(["sources", "list"]) == 0
    assert _out(capsys).splitlines() == [
        "id  customer  type      name",
        f"{created['id']:>2}  acme      postgres  Acme app",
    ]
    assert main(["sources", "show", str(created["id"])]) == 0
    shown = _out(capsys)
    assert "display_name: Acme app" in shown and "hunter2" not in shown

    body = tmp_path / "destination.yaml"
    body.write_text("display_name: Warehouse\nconnection_type: duckdb\nurl: duckdb:///w.duckdb\n")
    assert main(["destinations", "create", "--file", str(body)]) == 0
    assert _out(capsys) == "created destination 1 ('Warehouse')\n"
    obj = {
        "display_name": "Events",
        "destination_id": 1,
        "namespace": "analytics",
        "table_name": "events",
        "end_customer_id_field": "customer",
    }
    assert main(["objects", "create", "--data", json.dumps(obj)]) == 0
    assert _out(capsys) == "created object 1 ('Events')\n"
    assert main(["objects", "list", "--json"]) == 0
    assert [o["table_name"] for o in _json(capsys)] == ["events"]
    assert main(["destinations", "list", "--json"]) == 0
    assert [d["display_name"] for d in _json(capsys)] == ["Warehouse"]

    assert main(["objects", "delete", "1"]) == 0
    assert _out(capsys) == "deleted object 1\n"
    assert main(["destinations", "delete", "1", "--json"]) == 0
    assert _json(capsys) == {"deleted": "destination", "id": 1}
    assert main(["sources", "delete", str(created["id"])]) == 0
    _out(capsys)
    for kind in ("sources", "destinations", "objects"):
        assert main([kind, "list", "--json"]) == 0
        assert _json(capsys) == []


def test_an_invalid_body_names_the_field_and_creates_nothing(capsys):
    body = {"display_name": "X", "end_customer_id": "x", "connection_type": "warehouse9000"}
    assert main(["sources", "create", "--data", json.dumps(body)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sync-pipelines: invalid source: connection_type: ")
    assert "Traceback" not in err
    assert EmbeddedSyncApiClient.open().list_sources() == []
    assert main(["sources", "show", "7"]) == 1
    assert capsys.readouterr().err == "sync-pipelines: source 7 not found\n"


def test_syncs_are_created_shown_paused_resumed_and_deleted(tmp_path, capsys):
    sync = _events_sync(tmp_path)
    body = {
        "display_name": "Second",
        "source_id": sync.source_id,
        "object_id": sync.object_id,
        "end_customer_id": "c2",
        "namespace": "main",
        "table_name": "events",
        "field_mappings": [],
        "sync_frequency": "2h",
    }
    assert main(["syncs", "create", "--data", json.dumps(body), "--json"]) == 0
    second = _json(capsys)
    assert (second["end_customer_id"], second["sync_frequency"]) == ("c2", "2h")
    assert main(["syncs", "show", str(sync.id), "--json"]) == 0
    assert _json(capsys)["display_name"] == "Events"

    assert main(["syncs", "pause", str(sync.id)]) == 0
    assert _out(capsys) == f"sync {sync.id} ('Events') is paused\n"
    assert EmbeddedSyncApiClient.open().get_sync(sync.id).status.value == "paused"
    assert main(["syncs", "list", "--end-customer-id", "c1"]) == 0
    (header, row) = _out(capsys).splitlines()
    assert header.split() == ["id", "status", "health", "schedule", "customer", "name"]
    assert row.split() == [str(sync.id), "paused", "ok", "1h", "c1", "Events"]
    assert main(["syncs", "resume", str(sync.id), "--json"]) == 0
    assert _json(capsys)["status"] == "active"

    assert main(["syncs", "delete", str(second["id"])]) == 0
    assert _out(capsys) == f"deleted sync {second['id']}\n"
    assert main(["syncs", "list", "--json"]) == 0
    assert [s["id"] for s in _json(capsys)] == [sync.id]


def test_runs_list_shows_a_syncs_runs(tmp_path, capsys):
    sync = _events_sync(tmp_path)
    assert main(["run", str(sync.id)]) == 0
    capsys.readouterr()

    assert main(["runs", "list", str(sync.id)]) == 0
    (header, row) = _out(capsys).splitlines()
    assert header.split() == ["id", "status", "started", "seconds", "read", "written", "error"]
    assert row.split()[:2] == ["1", "completed"] and row.split()[-2:] == ["5", "5"]
    assert main(["runs", "list", str(sync.id), "--status", "failed", "--json"]) == 0
    assert _json(capsys) == []
    assert main(["runs", "list", str(sync.id), "--json"]) == 0
    (run,) = _json(capsys)
    assert (run["rows_read"], run["rows_written"], run["status"]) == (5, 5, "completed")


def test_apply_upserts_a_syncs_file_and_reports_what_changed(tmp_path, capsys):
    import sqlite3

    app = tmp_path / "app.sqlite"
    with sqlite3.connect(app) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, updated_at INTEGER)")
    syncs_file = tmp_path / "syncs.yaml"
    syncs_file.write_text(
        f"""
destinations:
  - {{name: Warehouse, connection_type: duckdb, url: "duckdb:///{tmp_path}/w.duckdb"}}
sources:
  - {{name: App, end_customer_id: c1, connection_type: sqlite, url: "sqlite:///{app}"}}
objects:
  - name: Events
    destination: Warehouse
    namespace: main
    table_name: events
    end_customer_id_field: customer
    cursor_field: updated_at
    primary_key: id
syncs:
  - {{name: App events, source: App, object: Events, namespace: main, table_name: events,
     sync_frequency: 1h}}
"""
    )
    assert main(["apply", str(syncs_file)]) == 0
    out = _out(capsys)
    assert "created syncs[0] 'App events'" in out
    assert out.endswith(f"{syncs_file}: 4 entries, 4 created, 0 updated\n")

    syncs_file.write_text(syncs_file.read_text().replace("frequency: 1h", "frequency: 2h"))
    assert main(["apply", str(syncs_file), "--json"]) == 0
    applied = _json(capsys)
    assert (applied["created"], applied["updated"]) == ([], ["syncs[0] 'App events'"])
    (sync,) = EmbeddedSyncApiClient.open().list_syncs()
    assert (sync.id, sync.sync_frequency) == (applied["sync_ids"]["App events"], "2h")

    syncs_file.write_text(syncs_file.read_text().replace("frequency: 2h", "frequency: 2x"))
    assert main(["apply", str(syncs_file)]) == 1
    assert "syncs[0] 'App events': sync_frequency" in capsys.readouterr().err
    assert EmbeddedSyncApiClient.open().get_sync(sync.id).sync_frequency == "2h"


def test_dev_applies_the_demo_then_starts_dagster_from_its_home(tmp_path, monkeypatch, capsys):
    import os
    from pathlib import Path

    import sync_pipelines.cli as cli

    checkout = Path(__file__).resolve().parents[1]
    started = {}

    def execv(path, command):
        started.update(path=path, command=command, cwd=os.getcwd())

    monkeypatch.setattr(cli.os, "execv", execv)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(checkout)  # make run's folder, beside workspace.yaml and dagster.yaml

    assert main(["dev", "--port", "3999"]) == 0 or started
    out = _out(capsys)

    assert "created syncs[0] 'Acme events'" in out  # the demo's syncs.yaml, applied first
    assert [s.display_name for s in EmbeddedSyncApiClient.open().list_syncs()] == [
        "Acme events",
        "Globex events",
        "Initech events",
    ]
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    assert dagster_home == (tmp_path / "home" / "dagster").resolve()
    assert (dagster_home / "dagster.yaml").read_text() == (checkout / "dagster.yaml").read_text()
    # dagster dev runs in its home, so it never warns about the checkout's dagster.yaml
    assert started["cwd"] == str(dagster_home)
    python, w, notice, dagster, *command = started["command"]
    assert (python, w, notice) == (started["path"], "-W", cli.DAGSTER_DEV_NOTICE_FILTER)
    assert Path(dagster).name == "dagster"
    assert command == [
        "dev",
        "-w",
        str(checkout / "workspace.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        "3999",
    ]


def test_dagster_dev_starts_without_its_dg_dev_notice(tmp_path):
    """The filter ``sync-pipelines dev`` gives ``dagster dev`` silences the notice it prints."""
    import subprocess
    import sys

    import sync_pipelines.cli as cli

    # the notice comes before dagster dev does anything (here: fails on its missing arguments)
    probe = (
        "from dagster._cli.dev import dev_command\n"
        "try:\n"
        "    dev_command.callback()\n"
        "except TypeError:\n"
        "    pass\n"
    )
    for args, noticed in (([], True), (["-W", cli.DAGSTER_DEV_NOTICE_FILTER], False)):
        done = subprocess.run(
            [sys.executable, *args, "-c", probe],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert ("Use 'dg dev' instead" in done.stderr) is noticed, done.stderr


def test_run_takes_workers_from_1_to_32(tmp_path, capsys):
    sync = _events_sync(tmp_path)
    for bad in ("0", "33", "two"):
        with pytest.raises(SystemExit) as exited:
            main(["run", str(sync.id), "--workers", bad])
        assert exited.value.code == 2
        assert "--workers: must be an integer from 1 to 32" in capsys.readouterr().err
    assert main(["run", str(sync.id), "--workers", "3"]) == 0
    assert "5 rows read, 5 written" in capsys.readouterr().out


def _command(*args: str, home=None) -> tuple[int, str, str]:
    """``sync-pipelines ARGS`` in a real process: its exit code, stdout and stderr."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    if home is not None:
        env["SYNC_PIPELINES_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "sync_pipelines.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def test_a_real_process_prints_only_the_commands_output_on_stdout(tmp_path):
    # a fresh home: the store is created (alembic's migrations) by this very command
    code, out, err = _command("syncs", "list", "--json", home=tmp_path / "fresh")
    assert (code, json.loads(out), err) == (0, [], "")

    sync = _events_sync(tmp_path)
    for args in (
        ["sources", "list", "--json"],
        ["syncs", "show", str(sync.id), "--json"],
        ["syncs", "pause", str(sync.id), "--json"],
        ["syncs", "resume", str(sync.id), "--json"],
        ["run", str(sync.id), "--json"],
        ["runs", "list", str(sync.id), "--json"],
    ):
        code, out, err = _command(*args)
        assert code == 0, (args, err)
        assert err == "", (args, err)  # no log line anywhere, not even on stderr
        json.loads(out)  # stdout is the JSON and nothing else
    code, out, err = _command("runs", "list", str(sync.id))
    header, row = out.splitlines()
    assert header.split() == ["id", "status", "started", "seconds", "read", "written", "error"]
    assert row.split()[1:2] == ["completed"] and err == ""


def test_run_and_runs_cancel_print_json(tmp_path, capsys):
    sync = _events_sync(tmp_path)
    assert main(["run", str(sync.id), "--json"]) == 0
    result = json.loads(_out(capsys))
    assert (result["sync_id"], result["status"], result["rows_read"]) == (sync.id, "completed", 5)
    assert result["rows_written"] == result["rows_inserted"] == 5

    client = EmbeddedSyncApiClient.open()
    running = client.start_run(sync.id)
    requested = client.request_run(sync.id)
    assert main(["runs", "cancel", str(sync.id), "--json"]) == 0
    cancelled = json.loads(_out(capsys))
    assert cancelled["cancelled"]["id"] == requested.id
    assert cancelled["still_running"] == running.run.id
    assert main(["runs", "cancel", str(sync.id), "--json"]) == 0
    cancelled = json.loads(_out(capsys))
    assert (cancelled["cancelled"]["id"], cancelled["still_running"]) == (running.run.id, None)
