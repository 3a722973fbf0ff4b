"""``run_any_sync`` picks the provider runner for a provider sync, and both runners end on the
shared run skeleton (its start and completion lines, its refusal of SQL-only options)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from sync_pipelines.contract.models import RunStatus
from sync_pipelines.providers import ProviderSyncResult
from sync_pipelines.run_any import run_any_sync
from sync_pipelines_tests.providers.conftest import FAST_RETRIES, GITHUB_TOKEN, create_provider_sync

REPO = "acme/rockets"


def github_sync(api, warehouse, github):
    return create_provider_sync(
        api,
        warehouse,
        "github",
        ["issue"],
        credential={"token": GITHUB_TOKEN},
        provider_config={"base_url": github.url, "repository": REPO, "page_size": 2} | FAST_RETRIES,
    )


def test_a_provider_sync_runs_with_the_provider_runner_on_the_shared_skeleton(
    api, github, warehouse, caplog
):
    caplog.set_level(logging.INFO)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    for i in range(5):
        github.add_issue(REPO, updated_at=start + dt.timedelta(minutes=i))
    sync = github_sync(api, warehouse, github)

    result = run_any_sync(api.get_sync(sync.id), api, batch_size=2)

    assert isinstance(result, ProviderSyncResult)
    assert result.status is RunStatus.COMPLETED
    assert (result.rows_read, result.rows_inserted) == (5, 5)
    assert {r["number"] for r in warehouse.rows("issue")} == {1, 2, 3, 4, 5}
    assert f"sync {sync.id} run {result.run_id}: started (github: github:issue)" in caplog.text
    assert f"sync {sync.id} run {result.run_id}: github:issue page 1, 2 rows" in caplog.text
    assert (
        f"sync {sync.id} run {result.run_id}: completed, {result.requests} requests, 5 rows read, "
        "5 inserted, 0 updated, 0 unchanged, 0 deleted in"
    ) in caplog.text
    (run,) = api.list_runs(sync.id)
    assert (run.status, run.rows_read, run.batches) == (RunStatus.COMPLETED, 5, result.batches)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"workers": 2}, "workers apply to SQL syncs only"),
        ({"allow_mass_delete": True}, "allow_mass_delete apply to SQL syncs only"),
        ({"workers": 1, "allow_mass_delete": True}, "workers and allow_mass_delete apply"),
    ],
)
def test_sql_only_options_on_a_provider_sync_are_refused_before_a_run_starts(
    api, github, warehouse, options, named
):
    sync = github_sync(api, warehouse, github)

    with pytest.raises(ValueError, match=f"reads the API provider 'github': {named}"):
        run_any_sync(api.get_sync(sync.id), api, **options)

    assert api.list_runs(sync.id) == []
    assert github.seen("/issues") == []


def test_a_bad_batch_size_is_refused_before_a_run_starts(api, github, warehouse):
    sync = github_sync(api, warehouse, github)

    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        run_any_sync(api.get_sync(sync.id), api, batch_size=0)

    assert api.list_runs(sync.id) == []
