"""The rate limit of a credential holds at the provider: for one sync, and for two syncs sharing
the credential in two OS processes (the limiter's state is in the sync API's store)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections.abc import Iterator

import pytest

from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.contract.models import RunStatus
from sync_pipelines.providers import sync_provider
from sync_pipelines_tests.providers.conftest import (
    FAST_RETRIES,
    GITHUB_TOKEN,
    create_provider_sync,
)

# 3 requests/s: the limiter's window margin (at least 100 ms) absorbs the time between a permit
# and the request's arrival at the provider, which can reach tens of milliseconds
LIMIT = {"allowed_requests": 3, "interval": 1, "max_concurrent_requests": 2}
PER_REPOSITORY = 14  # 7 pages of 3 new issues (the keyset reads the last one again) + pulls


def busiest_window(times: list[float], interval: float) -> int:
    """The most requests that arrived within any ``interval`` seconds."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - interval:
            start += 1
        most = max(most, end - start + 1)
    return most


def fill(github, repository: str, count: int) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    for i in range(count):
        github.add_issue(repository, updated_at=start + dt.timedelta(minutes=i))


def github_sync(api, warehouse, github, repository, **fields):
    return create_provider_sync(
        api,
        warehouse,
        "github",
        ["issue", "pull_request"],
        provider_config={"base_url": github.url, "repository": repository, "page_size": 3}
        | FAST_RETRIES,
        rate_limit=LIMIT,
        **fields,
    )


def test_one_sync_never_exceeds_its_rate_limit(api, github, warehouse):
    fill(github, "acme/rockets", 14)
    sync = github_sync(api, warehouse, github, "acme/rockets", credential={"token": GITHUB_TOKEN})

    result = sync_provider(sync.id, api)

    assert result.status is RunStatus.COMPLETED and len(warehouse.rows("issue")) == 14
    times = [r.at for r in github.seen()]
    assert len(times) >= 6
    assert busiest_window(times, LIMIT["interval"]) <= LIMIT["allowed_requests"]


def _run_in_child(store_url: str, sync_id: int, barrier) -> None:  # noqa: ANN001 - a Barrier
    client = EmbeddedSyncApiClient.open(store_url)
    try:
        barrier.wait(timeout=120)  # both processes start fetching together
        result = sync_provider(sync_id, client)
        if result.status is not RunStatus.COMPLETED:
            raise SystemExit(3)
    finally:
        client.close()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_store(request: pytest.FixtureRequest, store_url: str) -> Iterator[str]:
    """A store two processes share: the SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield store_url
        return
    yield request.getfixturevalue("postgres_store_url")


def test_two_processes_sharing_a_credential_share_its_limit(shared_store, github, make_warehouse):
    api = EmbeddedSyncApiClient.open(shared_store)
    fill(github, "acme/rockets", PER_REPOSITORY)
    fill(github, "acme/engines", PER_REPOSITORY)
    first = github_sync(
        api,
        make_warehouse("duckdb", "first"),
        github,
        "acme/rockets",
        credential={"token": GITHUB_TOKEN},
    )
    second_warehouse = make_warehouse("duckdb", "second")
    second = github_sync(
        api,
        second_warehouse,
        github,
        "acme/engines",
        credential_id=first.credential_id,
        end_customer_id="globex",
    )
    assert "SYNC_PIPELINES_HOME" in os.environ  # the children find the same secret key

    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    children = [
        spawn.Process(target=_run_in_child, args=(shared_store, sync.id, barrier))
        for sync in (first, second)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=240)
    assert [child.exitcode for child in children] == [0, 0]

    seen = github.seen()
    rockets = [r.at for r in seen if "rockets" in r.path or "/repositories/1/" in r.path]
    engines = [r.at for r in seen if "engines" in r.path or "/repositories/2/" in r.path]
    assert len(rockets) >= 6 and len(engines) >= 6
    assert max(min(rockets), min(engines)) < min(max(rockets), max(engines)), "did not overlap"
    assert busiest_window([r.at for r in seen], LIMIT["interval"]) <= LIMIT["allowed_requests"]
    assert len(second_warehouse.rows("issue")) == PER_REPOSITORY
    assert {r.status for r in api.list_runs(first.id) + api.list_runs(second.id)} == {
        RunStatus.COMPLETED
    }
    api.close()
