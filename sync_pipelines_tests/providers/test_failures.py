"""What providers answer when things go wrong: 429, 5xx, timeouts, 401; nothing lost, no secret
shown anywhere."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest

from sync_pipelines.contract.models import CredentialUpdate, RunStatus
from sync_pipelines.engine.errors import SyncRunError
from sync_pipelines.providers import run_provider_sync, sync_provider
from sync_pipelines_tests.providers.conftest import (
    FAST_RETRIES,
    GITHUB_TOKEN,
    STRIPE_SECRET,
    assert_no_secret,
    create_provider_sync,
)

REPO = "acme/rockets"
DAY = 86_400


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def github_sync(api, warehouse, github, **config):
    return create_provider_sync(
        api,
        warehouse,
        "github",
        ["issue"],
        credential={"token": GITHUB_TOKEN},
        provider_config={"base_url": github.url, "repository": REPO, "page_size": 5}
        | FAST_RETRIES
        | config,
    )


def stripe_sync(api, warehouse, stripe, secret=STRIPE_SECRET):
    return create_provider_sync(
        api,
        warehouse,
        "stripe",
        ["customer"],
        credential={"secret": secret},
        provider_config={"base_url": stripe.url, "page_size": 5} | FAST_RETRIES,
    )


def issues(github, count: int) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    for i in range(count):
        github.add_issue(REPO, updated_at=start + dt.timedelta(minutes=i))


def test_429_waits_as_retry_after_says_and_loses_nothing(api, github, warehouse, caplog):
    issues(github, 12)
    github.fail(
        429,
        skip=1,
        headers={"Retry-After": "1"},
        body={"message": "You have exceeded a secondary rate limit."},
    )
    sync = github_sync(api, warehouse, github)

    result = sync_provider(sync.id, api)

    assert result.status is RunStatus.COMPLETED
    seen = github.seen("/issues")
    limited = next(i for i, r in enumerate(seen) if r.status == 429)
    retry = seen[limited + 1]
    assert retry.query == seen[limited].query  # the same request again
    assert retry.at - seen[limited].at >= 1.0  # not before Retry-After
    assert {r["number"] for r in warehouse.rows("issue")} == set(range(1, 13))
    assert "waiting 1.00s as asked" in caplog.text
    assert_no_secret(caplog.text, result)


def test_exhausted_github_quota_waits_for_the_reset(api, github, warehouse):
    issues(github, 3)
    github.fail(
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()))},
        body={"message": "API rate limit exceeded for user ID 1."},
    )
    sync = github_sync(api, warehouse, github)

    result = sync_provider(sync.id, api)

    assert result.status is RunStatus.COMPLETED and len(warehouse.rows("issue")) == 3


def test_a_wait_longer_than_allowed_fails_the_run_with_the_reason(api, github, warehouse):
    issues(github, 3)
    github.fail(429, headers={"Retry-After": "3600"}, body={"message": "slow down"})
    sync = github_sync(api, warehouse, github, max_retry_after_seconds=5)

    with pytest.raises(SyncRunError, match="asks to wait 3600s"):
        sync_provider(sync.id, api)

    assert api.get_sync(sync.id).health.status.value == "error"


def test_5xx_and_timeouts_are_retried_with_backoff(api, github, warehouse, caplog):
    issues(github, 20)
    github.fail(500, skip=1, body={"message": "Server Error"})  # request 2
    github.fail(502, skip=3, body=None)  # request 4
    github.fail(503, skip=5, times=2, body={"message": "unavailable"})  # requests 6 and 7
    github.fail(None, skip=8, delay=1.5)  # request 9: slower than the client's timeout
    sync = github_sync(api, warehouse, github, timeout_seconds=0.5)

    result = sync_provider(sync.id, api)

    assert result.status is RunStatus.COMPLETED
    assert {r["number"] for r in warehouse.rows("issue")} == set(range(1, 21))
    statuses = [r.status for r in github.seen("/issues")]
    assert statuses.count(500) == statuses.count(502) == 1 and statuses.count(503) == 2
    assert "timed out" in caplog.text and "retrying in" in caplog.text
    assert_no_secret(caplog.text)


def test_persistent_5xx_fails_the_run_and_keeps_what_was_committed(api, github, warehouse):
    issues(github, 12)
    sync = github_sync(api, warehouse, github, max_attempts=3)
    github.fail(500, skip=1, times=100, body={"message": "Server Error"})

    with pytest.raises(SyncRunError, match=r"github answered 500 Internal Server Error") as raised:
        sync_provider(sync.id, api)

    assert "(3 attempts)" in str(raised.value)
    synced = api.get_sync(sync.id)
    assert synced.health.status.value == "error"
    assert synced.backfill_completed_at is None
    first_page = {r["number"] for r in warehouse.rows("issue")}
    assert first_page == {1, 2, 3, 4, 5}
    cursor = synced.cursor_position.collections["github:issue"].cursor["value"]
    assert cursor == github.issues[REPO][5]["updated_at"].replace("Z", "+00:00")

    github.faults.clear()
    result = sync_provider(sync.id, api)
    assert result.status is RunStatus.COMPLETED
    assert {r["number"] for r in warehouse.rows("issue")} == set(range(1, 13))
    assert api.get_sync(sync.id).health.status.value in ("healthy", "warn")


def test_401_marks_the_sync_unhealthy_with_the_providers_answer(api, stripe, warehouse, caplog):
    stripe.add("customer", created=int(time.time()) - DAY)
    wrong = "sk_test_51Hx9WRONGsecretvalue9999"
    sync = stripe_sync(api, warehouse, stripe, secret=wrong)

    with pytest.raises(SyncRunError) as raised:
        sync_provider(sync.id, api)

    message = str(raised.value)
    assert "stripe answered 401 Unauthorized: Invalid API Key provided" in message
    health = api.get_sync(sync.id).health
    assert health.status.value == "error"
    assert "stripe answered 401 Unauthorized: Invalid API Key provided" in health.notes[0]
    run = api.list_runs(sync.id)[0]
    assert run.status is RunStatus.FAILED and run.cursor_after is None
    assert not warehouse.has_table("customer") or not warehouse.rows("customer")
    for text in (message, health.model_dump_json(), run.model_dump_json(), caplog.text):
        assert wrong not in text
    assert len(stripe.seen()) == 1  # a 401 is not retried


def test_a_revoked_token_mid_run_loses_nothing(api, github, warehouse, caplog):
    issues(github, 14)
    sync = github_sync(api, warehouse, github)
    github.fail(
        401,
        skip=2,
        times=1,
        body={"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
    )

    with pytest.raises(SyncRunError, match="github answered 401 Unauthorized: Bad credentials"):
        sync_provider(sync.id, api)

    synced = api.get_sync(sync.id)
    assert "github answered 401 Unauthorized: Bad credentials" in synced.health.notes[0]
    committed = {r["number"] for r in warehouse.rows("issue")}
    assert committed == set(range(1, 10))  # two pages (5 + 4 new), committed and checkpointed
    cursor = synced.cursor_position.collections["github:issue"].cursor["value"]
    assert cursor == github.issues[REPO][9]["updated_at"].replace("Z", "+00:00")

    api.update_credential(sync.credential_id, CredentialUpdate(properties={"token": GITHUB_TOKEN}))
    result = sync_provider(sync.id, api)

    assert result.status is RunStatus.COMPLETED
    assert {r["number"] for r in warehouse.rows("issue")} == set(range(1, 15))
    assert api.get_sync(sync.id).health.status.value == "warn"  # one of the last runs failed
    assert_no_secret(caplog.text, result, api.get_sync(sync.id).model_dump_json())
    assert_no_secret(*[r.model_dump_json() for r in api.list_runs(sync.id)])


def test_a_missing_credential_property_is_named_not_shown(api, stripe, warehouse):
    sync = create_provider_sync(
        api,
        warehouse,
        "stripe",
        ["customer"],
        credential={"password": STRIPE_SECRET},
        provider_config={"base_url": stripe.url},
    )

    with pytest.raises(SyncRunError, match="the credential has no property 'secret'") as raised:
        sync_provider(sync.id, api)

    assert_no_secret(raised.value, api.get_sync(sync.id).model_dump_json())
    assert not stripe.seen()


def test_an_error_echoing_the_secret_is_redacted(api, stripe, warehouse):
    stripe.fail(400, body={"error": {"message": f"bad key {STRIPE_SECRET} in request"}})
    sync = stripe_sync(api, warehouse, stripe)

    with pytest.raises(SyncRunError, match=r"stripe answered 400 Bad Request: bad key \*\*\*"):
        sync_provider(sync.id, api)

    assert_no_secret(api.get_sync(sync.id).model_dump_json())


def test_long_waits_keep_the_run_lease(api, github, warehouse):
    issues(github, 3)
    github.fail(429, headers={"Retry-After": "2"}, body={"message": "slow down"})
    sync = github_sync(api, warehouse, github)
    heartbeats = []

    class CountingApi:
        def __getattr__(self, name):
            return getattr(api, name)

        def heartbeat(self, run_id):
            heartbeats.append(api.heartbeat(run_id))
            return heartbeats[-1]

    lease = api.start_run(sync.id, lease_seconds=0.6)
    result = run_provider_sync(lease, CountingApi())

    assert result.status is RunStatus.COMPLETED  # a 2 s wait outlived no 0.6 s lease
    assert heartbeats and {h.id for h in heartbeats} == {lease.run.id}
    assert api.get_run(lease.run.id).heartbeat_at >= heartbeats[-1].heartbeat_at
