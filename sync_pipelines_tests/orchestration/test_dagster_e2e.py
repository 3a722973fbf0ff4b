"""End to end, one test: ``dagster dev`` (webserver + daemon + code server) as subprocesses on a
free port with a temporary DAGSTER_HOME; ``sync_job`` launched through Dagster's GraphQL client
creates a sync and loads its rows."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from sync_pipelines.orchestration import apply_syncs
from sync_pipelines_tests.orchestration.conftest import SyncSetup, event_rows
from sync_pipelines_tests.orchestration.test_ops import launchpad_config

REPOSITORY = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 180
RUN_SECONDS = 240
LOCATION = "sync_pipelines_e2e"

LOCATION_STATUS = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message }
        }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Stop the whole process group (dagster dev, webserver, daemon, code servers, runs).

    ``dagster dev`` is asked to stop first; whatever is left is killed, so nothing outlives the
    test.
    """
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(process.pid):
            break
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _location_entries(url: str) -> list[dict] | None:
    try:
        response = httpx.post(f"{url}/graphql", json={"query": LOCATION_STATUS}, timeout=10)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    workspace = response.json()["data"]["workspaceOrError"]
    return workspace.get("locationEntries")


@contextmanager
def dagster_dev(setup: SyncSetup, tmp_path: Path, home: Path) -> Iterator[str]:
    """``dagster dev`` serving a code location built from the test's syncs.yaml: its URL."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPOSITORY / "dagster.yaml", dagster_home / "dagster.yaml")
    location = tmp_path / "location.py"
    location.write_text(
        textwrap.dedent(
            f"""
            from sync_pipelines.orchestration import build_sync_definitions

            defs = build_sync_definitions(syncs_file={str(setup.syncs_file)!r})
            """
        )
    )
    (tmp_path / "workspace.yaml").write_text(
        textwrap.dedent(
            f"""
            load_from:
              - python_file:
                  relative_path: location.py
                  location_name: {LOCATION}
            """
        )
    )
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "SYNC_PIPELINES_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "yes",
    }
    env.pop("SYNC_API_URL", None)
    log = (tmp_path / "dagster_dev.log").open("w")
    dagster = Path(sys.executable).parent / "dagster"
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"dagster dev exited:\n{(tmp_path / 'dagster_dev.log').read_text()}")
            entries = _location_entries(url)
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                (entry,) = entries
                kind = entry["locationOrLoadError"]["__typename"]
                assert kind == "RepositoryLocation", entry
                break
            if time.monotonic() > deadline:
                pytest.fail(f"dagster dev did not load {LOCATION} in {STARTUP_SECONDS}s")
            time.sleep(1)
        yield url
    finally:
        _stop(process)
        log.close()


@pytest.mark.dagster_e2e
@pytest.mark.filterwarnings("ignore::DeprecationWarning:gql.*")
@pytest.mark.timeout(STARTUP_SECONDS + RUN_SECONDS + 120)
def test_sync_job_launched_through_graphql_loads_the_rows(
    setup: SyncSetup, tmp_path: Path, _isolated_home: Path
):
    setup.insert("initech", event_rows(6))
    setup.write_syncs_file({"acme": "sync_frequency: 1h"}, extra_sources=["initech"])
    apply_syncs(setup.client, setup.syncs_file)  # sync-pipelines apply: loading only reads
    with dagster_dev(setup, tmp_path, _isolated_home) as url:
        source = next(s for s in setup.client.list_sources() if s.end_customer_id == "initech")
        (obj,) = setup.client.list_objects()
        port = int(url.rsplit(":", 1)[1])
        graphql = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=30)

        run_id = graphql.submit_job_execution(
            "sync_job",
            repository_location_name=LOCATION,
            run_config=launchpad_config(source.id, obj.id),
        )

        deadline = time.monotonic() + RUN_SECONDS
        status = None
        while time.monotonic() < deadline:
            try:
                status = graphql.get_run_status(run_id).value
            except DagsterGraphQLClientError:
                status = None
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(1)
        assert status == "SUCCESS", (tmp_path / "dagster_dev.log").read_text()[-5000:]

    (sync,) = setup.client.list_syncs(end_customer_id="initech")
    assert sync.display_name == "Initech events"
    assert [row[1] for row in setup.warehouse_rows("initech")] == [1, 2, 3, 4, 5, 6]
    (run,) = setup.client.list_runs(sync.id)
    assert run.runner_id == f"dagster:{run_id}"
