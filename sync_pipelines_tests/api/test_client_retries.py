"""The HTTP client's retries (httpx-retries' transport with the client's policy)."""

from __future__ import annotations

import httpx
import pytest

from sync_pipelines.api.client import SyncApiClient
from sync_pipelines.contract.errors import NotFoundError, ServerError


def _client(answers: list, seen: list[str], max_retries: int = 3) -> SyncApiClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        item = answers.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return SyncApiClient(
        "http://sync-api.test",
        "key",
        max_retries=max_retries,
        backoff=0.0,
        transport=httpx.MockTransport(answer),
    )


def test_a_5xx_or_429_is_retried_then_answered():
    seen: list[str] = []
    answers = [
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(200, json={"syncs": []}),
    ]
    with _client(answers, seen) as client:
        assert client.list_syncs() == []
    assert seen == ["GET", "GET", "GET"]


def test_a_connection_failure_is_retried_even_for_a_post():
    seen: list[str] = []
    failure = httpx.ConnectError("refused")
    answers = [failure, httpx.Response(404, json={"error": "source 7 not found"})]
    with _client(answers, seen) as client, pytest.raises(NotFoundError, match="source 7"):
        client.request_run(7)
    assert seen == ["POST", "POST"]


def test_a_4xx_is_not_retried():
    seen: list[str] = []
    client = _client([httpx.Response(404, json={"error": "nope"})], seen)
    with client, pytest.raises(NotFoundError):
        client.get_sync(1)
    assert seen == ["GET"]


def test_retries_run_out_into_the_last_answer_or_a_server_error():
    seen: list[str] = []
    client = _client([httpx.Response(500, json={"error": "boom"})] * 3, seen, 2)
    with client, pytest.raises(ServerError, match="boom"):
        client.get_sync(1)
    assert len(seen) == 3
    seen.clear()
    failures = [httpx.ConnectError("refused")] * 2
    client = _client(failures, seen, 1)
    with client, pytest.raises(ServerError, match="cannot reach the sync API"):
        client.get_sync(1)
    assert len(seen) == 2
