"""Run leases: a heartbeat keeps them while the runner lives; a runner killed with -9 blocks its
sync only for the lease's TTL, then the next start takes over without a manual cancel."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import uvicorn

from sync_pipelines.api.app import create_app
from sync_pipelines.api.client import SyncApiClient
from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.api.service import DEFAULT_ORGANIZATION
from sync_pipelines.common import settings
from sync_pipelines.contract.errors import ConflictError
from sync_pipelines.contract.models import RunStatus, SyncRun
from sync_pipelines.engine import SyncRunError, run_sync
from sync_pipelines.engine.heartbeat import LeaseHeartbeat, heartbeat_interval
from sync_pipelines_tests.engine.conftest import Scenario, event, events_table, pair_id
from sync_pipelines_tests.engine.test_incremental import expected

TTL = 1.0  # the lease TTL of this module's in-process runs
KILL_TTL = "3"  # the lease TTL of the runner killed with -9


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedSyncApiClient]:
    """The embedded sync API with a short lease TTL."""
    monkeypatch.setenv(settings.LEASE_TTL_ENV, str(TTL))
    with EmbeddedSyncApiClient.open() as api:
        yield api


def wait_for(condition, what: str, timeout: float = 120.0):  # noqa: ANN001, ANN201
    """Poll ``condition()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)
    return found


@pytest.fixture
def http_client(client: EmbeddedSyncApiClient, tmp_path) -> Iterator[SyncApiClient]:  # noqa: ANN001
    """The same organization through a real server on loopback, over ``client``'s store, its
    file databases allowed in the test's directory."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(client.service, file_roots=[str(tmp_path)])
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), "the server to start")
    key = client.service.create_api_key(DEFAULT_ORGANIZATION)  # the embedded one's
    with SyncApiClient(f"http://127.0.0.1:{port}", key, max_retries=0) as remote:
        yield remote
    server.should_exit = True
    thread.join(timeout=10)


def running_run(client: EmbeddedSyncApiClient, sync_id: int) -> SyncRun | None:
    runs = client.list_runs(sync_id, status=RunStatus.RUNNING)
    return runs[0] if runs else None


def test_the_lease_ttl_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(settings.LEASE_TTL_ENV, raising=False)
    assert settings.lease_ttl_seconds() == 30.0
    assert heartbeat_interval(30.0) == 5.0 and heartbeat_interval(3.0) == 1.0
    monkeypatch.setenv(settings.LEASE_TTL_ENV, "4.5")
    assert settings.lease_ttl_seconds() == 4.5
    monkeypatch.setenv(settings.LEASE_TTL_ENV, "soon")
    with pytest.raises(ValueError, match="SYNC_PIPELINES_LEASE_TTL_SECONDS must be a number"):
        settings.lease_ttl_seconds()


def test_a_refused_heartbeat_wakes_the_runner(client):
    """Cancelled, the run learns it from its next heartbeat, even while it sleeps."""
    from sync_pipelines_tests.api.test_contract import make_sync

    sync = make_sync(client)
    lease = client.start_run(sync.id)
    with LeaseHeartbeat(client, lease.run, interval=0.05) as heartbeat:
        heartbeat.check()
        client.cancel_run_request(sync.id)
        with pytest.raises(ConflictError, match=r"\(it is cancelled: cancelled\); stop writing"):
            heartbeat.sleep(120)
        assert isinstance(heartbeat.lost, ConflictError)
        with pytest.raises(ConflictError):
            heartbeat.check()


@pytest.mark.parametrize("api", ["embedded", "http"])
@pytest.mark.parametrize("scenario", [("sqlite", "postgres")], ids=pair_id, indirect=True)
def test_a_batch_longer_than_the_ttl_keeps_the_lease(
    scenario: Scenario, api: str, request: pytest.FixtureRequest
) -> None:
    rows = [event(i, i) for i in range(1, 31)]
    scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    runner_api = scenario.client if api == "embedded" else request.getfixturevalue("http_client")
    refusals: list[str] = []

    def slow_first_batch(progress) -> None:  # noqa: ANN001
        if progress.batch != 1:
            return
        client = scenario.client
        stuck_since = dt.datetime.now(dt.UTC)
        # this thread is busy for over 2 TTLs: only the heartbeat renews the lease
        run = wait_for(
            lambda: (
                (r := client.get_run(progress.run_id)).heartbeat_at
                > stuck_since + dt.timedelta(seconds=2 * TTL)
                and r
            ),
            "heartbeats past two lease TTLs",
        )
        assert run.status is RunStatus.RUNNING and run.lease_expires_at > run.heartbeat_at
        with pytest.raises(ConflictError) as caught:
            client.start_run(sync.id)
        refusals.append(str(caught.value))

    result = run_sync(sync.id, runner_api, batch_size=10, on_progress=slow_first_batch)

    assert result.status is RunStatus.COMPLETED and result.batches == 3
    assert scenario.rows() == expected(rows)
    [refusal] = refusals
    assert refusal.startswith(f"sync {sync.id} is already running: run {result.run_id} (host ")
    assert f"pid {os.getpid()}), last heartbeat at " in refusal
    assert refusal.endswith(f"To stop that run now: sync-pipelines runs cancel {sync.id}")
    assert [r.status for r in scenario.client.list_runs(sync.id)] == [RunStatus.COMPLETED]


@pytest.mark.parametrize("scenario", [("sqlite", "sqlite")], ids=pair_id, indirect=True)
def test_a_cancelled_run_stops_before_its_next_commit_and_checkpoint(scenario: Scenario) -> None:
    rows = [event(i, i) for i in range(1, 31)]
    scenario.source.create(events_table(scenario.source), rows)
    sync = scenario.make_sync()
    refused: list[ConflictError] = []

    class WatchedApi:
        """The API, noting the heartbeats it refuses."""

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(scenario.client, name)

        def heartbeat(self, run_id: int) -> SyncRun:
            try:
                return scenario.client.heartbeat(run_id)
            except ConflictError as error:
                refused.append(error)
                raise

    def cancel_after_first_batch(progress) -> None:  # noqa: ANN001
        if progress.batch == 1:
            scenario.client.cancel_run_request(sync.id)
            wait_for(lambda: refused, "the heartbeat to be refused")

    with pytest.raises(SyncRunError) as caught:
        run_sync(sync.id, WatchedApi(), batch_size=10, on_progress=cancel_after_first_batch)

    [cancelled] = scenario.client.list_runs(sync.id)
    assert str(caught.value) == (
        f"sync {sync.id}: run {cancelled.id} lost its lease and stopped: run {cancelled.id} no "
        f"longer holds the lease of sync {sync.id} (it is cancelled: cancelled); stop writing"
    )
    assert cancelled.status is RunStatus.CANCELLED and cancelled.batches == 1
    # batch 2 was neither committed nor checkpointed
    assert scenario.client.get_sync(sync.id).cursor_position == cancelled.cursor_after
    # a first load: the checkpoint is the backfill's position after the first key chunk
    assert cancelled.cursor_after.backfill.last_key == {"type": "integer", "value": 10}
    assert scenario.rows() == expected(rows[:10])

    rerun = run_sync(sync.id, scenario.client, batch_size=10)  # at once: the lease is released
    assert rerun.status is RunStatus.COMPLETED and scenario.rows() == expected(rows)


def _sync_pipelines(*args: str) -> list[str]:
    return [sys.executable, "-m", "sync_pipelines.cli", *args]


@pytest.mark.parametrize("scenario", [("postgres", "postgres")], ids=pair_id, indirect=True)
def test_a_runner_killed_with_sigkill_is_taken_over_within_a_minute(scenario: Scenario) -> None:
    """``sync-pipelines run`` stalls on batch 4 (a destination row locked by another session),
    heartbeating; killed with -9, the next start takes over once its lease runs out."""
    source = scenario.source.create(
        events_table(scenario.source), [event(i, i) for i in range(1, 3001)]
    )
    sync = scenario.make_sync()
    run_sync(sync.id, scenario.client, batch_size=500)
    # every row changes: the next run re-reads all of them, in 6 batches of 500
    rows = [event(i, 10_000 + i, f"v2 {i}", amount="2.25") for i in range(1, 3001)]
    scenario.source.execute(source.delete())
    scenario.source.insert(source, rows)
    env = {**os.environ, settings.LEASE_TTL_ENV: KILL_TTL}
    ttl = dt.timedelta(seconds=float(KILL_TTL))
    command = _sync_pipelines("run", str(sync.id), "--batch-size", "500")

    destination = scenario.destination.reflect(scenario.table_name)
    locker = scenario.destination.engine.connect()
    lock = locker.begin()
    locker.execute(sa.select(destination.c.id).where(destination.c.id == 1800).with_for_update())
    runner = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stuck = wait_for(
            lambda: (
                runner.poll() is None
                and (r := running_run(scenario.client, sync.id)) is not None
                and r.batches == 3
                and r
            ),
            "the runner to commit 3 batches and stall on the 4th",
        )
        stuck_since = dt.datetime.now(dt.UTC)
        alive = wait_for(
            lambda: (
                (r := scenario.client.get_run(stuck.id)).heartbeat_at > stuck_since + 2 * ttl and r
            ),
            "heartbeats past two lease TTLs",
        )
        with pytest.raises(ConflictError) as held:
            scenario.client.start_run(sync.id)
        assert f"run {stuck.id} (host {socket.gethostname()}, pid {runner.pid})" in str(held.value)
        assert str(held.value).endswith(f"sync-pipelines runs cancel {sync.id}")
        assert alive.status is RunStatus.RUNNING and runner.poll() is None

        os.kill(runner.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        assert runner.wait(timeout=30) == -signal.SIGKILL
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        lock.rollback()
        locker.close()

    # a scheduler's reruns, every second, and no manual cancel
    refusals = []
    while (rerun := subprocess.run(command, env=env, capture_output=True, text=True)).returncode:
        assert f"is already running: run {stuck.id}" in rerun.stderr, rerun.stderr
        refusals.append(rerun.stderr)
        assert time.monotonic() - killed_at < 60, "no rerun succeeded within a minute of the kill"
        time.sleep(1)
    recovered_after = time.monotonic() - killed_at

    assert recovered_after < 60
    assert f"sync {sync.id} run " in rerun.stdout and " completed: " in rerun.stdout
    assert scenario.rows() == expected(rows)
    dead = scenario.client.get_run(stuck.id)
    assert dead.status is RunStatus.FAILED
    assert dead.error.startswith(
        f"runner stopped reporting (last heartbeat at "
        f"{dead.heartbeat_at.isoformat(timespec='milliseconds')}); its lease expired at "
    )
    assert dead.heartbeat_at >= alive.heartbeat_at
    runs = scenario.client.list_runs(sync.id)
    assert [r.status for r in runs] == [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.COMPLETED]
    assert runs[0].cursor_before == dead.cursor_after  # resumed after the 3 committed batches
    for refusal in refusals:
        assert f"sync-pipelines runs cancel {sync.id}" in refusal
