"""GitHub syncs against a local GitHub: issues by keyset on ``since``, pulls newest first."""

from __future__ import annotations

import datetime as dt

from sync_pipelines.contract.models import RunStatus
from sync_pipelines.providers import sync_provider
from sync_pipelines_tests.providers.conftest import (
    FAST_RETRIES,
    GITHUB_TOKEN,
    create_provider_sync,
)

REPO = "acme/rockets"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def github_sync(api, warehouse, github, collections=("issue",), **fields):
    config = {"base_url": github.url, "repository": REPO, "page_size": 5, **FAST_RETRIES}
    return create_provider_sync(
        api,
        warehouse,
        "github",
        list(collections),
        credential={"token": GITHUB_TOKEN},
        provider_config=config | fields.pop("provider_config", {}),
        **fields,
    )


def recent(minutes: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=minutes)


def server_issues(github, *, pulls: bool = False) -> dict[int, dict]:
    return {i["id"]: i for i in github.issues[REPO].values() if ("_pull" in i) == pulls}


def table_ids(warehouse, table: str = "issue") -> set[int]:
    return {row["id"] for row in warehouse.rows(table)}


def test_backfill_pages_issues_by_keyset_and_leaves_pull_requests_out(api, github, warehouse):
    for i in range(22):
        github.add_issue(REPO, updated_at=recent(500 - i * 10), labels=[{"name": f"l{i}"}])
    for i in range(4):
        github.add_issue(REPO, updated_at=recent(300 - i), pull=True)
    sync = github_sync(api, warehouse, github, ["issue", "pull_request"])

    result = sync_provider(sync.id, api)

    assert result.status is RunStatus.COMPLETED
    issues = github.seen("/issues")
    assert len(issues) >= 6  # 26 items, 5 a page
    assert issues[0].param("since") is None
    assert all(r.param("state") == "all" and r.param("sort") == "updated" for r in issues)
    assert all(r.param("direction") == "asc" and r.param("per_page") == "5" for r in issues)
    sinces = [r.param("since") for r in issues[1:]]
    assert sinces == sorted(sinces) and all(sinces)  # each page asked from the last updated_at
    assert all(r.authorization == f"Bearer {GITHUB_TOKEN}" for r in github.seen())
    assert table_ids(warehouse) == set(server_issues(github))
    rows = {row["id"]: row for row in warehouse.rows("issue")}
    some = next(iter(server_issues(github).values()))
    row = rows[some["id"]]
    assert row["number"] == some["number"] and row["title"] == some["title"]
    assert row["user_login"] == "octocat" and row["end_customer_id"] == "acme"
    assert row["raw"] == {k: v for k, v in some.items() if not k.startswith("_")}
    assert row["updated_at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == some["updated_at"]
    pulls = {row["id"]: row for row in warehouse.rows("pull_request")}
    assert len(pulls) == 4 and {p["head_ref"] for p in pulls.values()} == {
        f"feature-{i['number']}" for i in server_issues(github, pulls=True).values()
    }
    assert github.seen("/pulls")[0].param("direction") == "desc"
    assert api.get_sync(sync.id).backfill_completed_at is not None


def test_incremental_run_fetches_only_changed_issues(api, github, warehouse):
    for i in range(12):
        github.add_issue(REPO, updated_at=recent(200 - i))
    sync = github_sync(api, warehouse, github, ["issue", "pull_request"])
    sync_provider(sync.id, api)
    cursor = api.get_sync(sync.id).cursor_position.collections["github:issue"].cursor["value"]
    github.clear()

    github.update_issue(REPO, 3, title="renamed", state="closed")
    github.update_issue(REPO, 7, comments=5)
    new = github.add_issue(REPO, title="brand new")
    result = sync_provider(sync.id, api)

    requests = github.seen("/issues")
    assert len(requests) == 1
    assert dt.datetime.fromisoformat(requests[0].param("since").replace("Z", "+00:00")) == (
        dt.datetime.fromisoformat(cursor)
    )
    assert result.collections[0].rows_read == 3  # the three changed issues, nothing else
    rows = {row["number"]: row for row in warehouse.rows("issue")}
    assert len(rows) == 13  # updated, not duplicated
    assert rows[3]["title"] == "renamed" and rows[3]["state"] == "closed"
    assert rows[7]["raw"]["comments"] == 5 and new["number"] in rows
    assert (result.rows_inserted, result.rows_updated) == (1, 2)
    pulls = github.seen("/pulls")
    assert len(pulls) == 1  # newest first, stopped at the cursor


def test_a_page_of_one_instant_follows_the_link_header(api, github, warehouse):
    same = recent(60)
    for _ in range(12):
        github.add_issue(REPO, updated_at=same)
    github.add_issue(REPO, updated_at=recent(30))
    sync = github_sync(api, warehouse, github)

    sync_provider(sync.id, api)

    issues = github.seen()
    assert any(r.path.startswith("/repositories/") and r.param("page") == "2" for r in issues)
    assert table_ids(warehouse) == set(server_issues(github))


def test_issues_updated_while_paging_are_not_skipped(api, github, warehouse):
    for i in range(15):
        github.add_issue(REPO, updated_at=recent(100 - i))
    sync = github_sync(api, warehouse, github)
    moved = []

    def touch_the_first_issue_once(progress) -> None:
        if not moved:  # like a user editing issue 1 while the sync pages
            moved.append(github.update_issue(REPO, 1, title="edited mid-run"))

    sync_provider(sync.id, api, on_progress=touch_the_first_issue_once)

    assert table_ids(warehouse) == set(server_issues(github))
    rows = {row["number"]: row for row in warehouse.rows("issue")}
    assert rows[1]["title"] == "edited mid-run"


def test_max_age_days_bounds_since_and_what_stays(api, github, warehouse):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    github.add_issue(REPO, updated_at=now - dt.timedelta(days=40))
    kept = github.add_issue(REPO, updated_at=now - dt.timedelta(days=2))
    aging = github.add_issue(REPO, updated_at=now - dt.timedelta(days=20))
    github.add_issue(REPO, updated_at=now - dt.timedelta(days=50), pull=True)
    recent_pull = github.add_issue(REPO, updated_at=now - dt.timedelta(days=1), pull=True)
    sync = github_sync(api, warehouse, github, ["issue", "pull_request"], max_age_days=30)

    sync_provider(sync.id, api)

    since = github.seen("/issues")[0].param("since")
    bound = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    assert abs((now - dt.timedelta(days=30) - bound).total_seconds()) < 120
    assert table_ids(warehouse) == {kept["id"], aging["id"]}
    assert [r["number"] for r in warehouse.rows("pull_request")] == [recent_pull["number"]]

    from sync_pipelines.contract.models import SyncUpdate

    api.update_sync(sync.id, SyncUpdate(max_age_days=10))
    result = sync_provider(sync.id, api)

    assert table_ids(warehouse) == {kept["id"]}
    assert result.rows_deleted == 1


def test_full_refresh_replaces_the_end_customers_rows(api, github, warehouse):
    for i in range(7):
        github.add_issue(REPO, updated_at=recent(100 - i))
    sync = github_sync(api, warehouse, github)
    sync_provider(sync.id, api)
    github.delete_issue(REPO, 2)  # gone upstream: only a full refresh can tell
    github.update_issue(REPO, 4, title="changed")

    result = sync_provider(sync.id, api, full_refresh=True)

    assert result.status is RunStatus.COMPLETED and result.rows_deleted == 1
    assert table_ids(warehouse) == set(server_issues(github))
    assert github.seen("/issues")[-1].param("since") is not None or len(github.seen()) > 2
    rows = {row["number"]: row for row in warehouse.rows("issue")}
    assert rows[4]["title"] == "changed"
    github.clear()
    sync_provider(sync.id, api)
    assert github.seen("/issues")[0].param("since") is not None  # incremental again


def test_two_repositories_of_two_customers_share_a_table(api, github, warehouse):
    github.add_issue(REPO, updated_at=recent(10))
    github.add_issue("acme/other", updated_at=recent(10))
    first = github_sync(api, warehouse, github)
    second = github_sync(
        api,
        warehouse,
        github,
        end_customer_id="globex",
        provider_config={"repository": "acme/other"},
    )

    sync_provider(first.id, api)
    sync_provider(second.id, api)

    rows = warehouse.rows("issue")
    assert sorted((r["end_customer_id"], r["number"]) for r in rows) == [
        ("acme", 1),
        ("globex", 1),
    ]
