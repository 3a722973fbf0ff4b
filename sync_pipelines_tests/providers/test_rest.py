"""The generic REST provider: a made-up ticketing API described only by configuration."""

from __future__ import annotations

import base64
import datetime as dt
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from sync_pipelines.api.app import create_app
from sync_pipelines.api.client import SyncApiClient
from sync_pipelines.api.service import SyncService
from sync_pipelines.contract.errors import ValidationFailedError
from sync_pipelines.contract.models import Permit, RateLimit, RunStatus
from sync_pipelines.engine.errors import SyncRunError
from sync_pipelines.providers import (
    PROVIDERS,
    ProviderConfigError,
    parse_rest_provider,
    rest_provider_for,
    sync_provider,
)
from sync_pipelines.providers._http import PageRequest, PermitGate, ProviderHttp
from sync_pipelines.providers.fetch import CollectionState
from sync_pipelines.providers.github import GITHUB_COLLECTIONS
from sync_pipelines.providers.records import format_time, parse_time, truncate_time
from sync_pipelines.providers.stripe import STRIPE_COLLECTIONS
from sync_pipelines_tests.providers.conftest import (
    FAST_RETRIES,
    TICKETS_KEY,
    assert_no_secret,
    create_provider_sync,
)

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
PAGINATIONS = {
    "page": {"style": "page", "param": "page", "size_param": "page_size", "size": 4},
    "cursor": {
        "style": "cursor",
        "param": "cursor",
        "token_field": None,
        "token_path": "next_cursor",
        "has_more_path": None,
        "size_param": "page_size",
        "size": 4,
    },
    "link": {"style": "link", "size_param": "page_size", "size": 4},
}


def tickets_config(tickets, pagination: dict, *, order: str = "ascending") -> dict:
    return {
        "base_url": tickets.url + "/api/v2",
        "auth": {"headers": {"X-Api-Key": "{api_key}"}},
        "collections": {
            "ticket": {
                "path": "/tickets",
                "records_path": "items",
                "primary_key": "ticket_id",
                "updated_at": "meta.modified",
                "incremental": {"param": "modified_since", "order": order},
                "pagination": pagination,
                "fields": {
                    "ticket_id": "string",
                    "subject": "string",
                    "priority": "integer",
                    "assignee": {"type": "string", "path": "people.assignee"},
                },
            }
        },
        **FAST_RETRIES,
    }


def rest_sync(api, warehouse, tickets, pagination, **fields):
    return create_provider_sync(
        api,
        warehouse,
        "rest",
        ["ticket"],
        credential={"api_key": TICKETS_KEY},
        provider_config=tickets_config(tickets, pagination, **fields.pop("config", {})),
        **fields,
    )


def ticket_rows(warehouse) -> dict[str, dict]:
    return {row["ticket_id"]: row for row in warehouse.rows("ticket", order_by="ticket_id")}


@pytest.mark.parametrize("style", sorted(PAGINATIONS))
@pytest.mark.parametrize("order", ["ascending", "unordered"])
def test_every_pagination_style_backfills_then_reads_changes(api, tickets, warehouse, style, order):
    for i in range(11):
        tickets.add(
            modified=T0 + dt.timedelta(seconds=i, milliseconds=250),
            people={"assignee": f"agent{i % 3}"},
        )
    sync = rest_sync(api, warehouse, tickets, PAGINATIONS[style], config={"order": order})

    first = sync_provider(sync.id, api)

    assert first.status is RunStatus.COMPLETED
    rows = ticket_rows(warehouse)
    assert rows.keys() == tickets.tickets.keys()
    row = rows["T-0003"]
    assert row["subject"] == "ticket T-0003" and row["priority"] == 1
    assert row["assignee"] == "agent2" and row["raw"] == tickets.tickets["T-0003"]
    assert row["modified"].astimezone(dt.UTC) == T0 + dt.timedelta(seconds=2, milliseconds=250)
    assert all(r.param("page_size") == "4" or not r.query for r in tickets.seen())
    assert len(tickets.seen()) >= 3
    tickets.clear()

    tickets.update("T-0002", modified=T0 + dt.timedelta(minutes=5), priority=3)
    tickets.add(modified=T0 + dt.timedelta(minutes=6))
    second = sync_provider(sync.id, api)

    since = tickets.seen()[0].param("modified_since")
    assert since is not None and parse_time(since) >= T0 + dt.timedelta(seconds=10)
    assert (second.rows_inserted, second.rows_updated) == (1, 1)
    rows = ticket_rows(warehouse)
    assert rows.keys() == tickets.tickets.keys() and rows["T-0002"]["priority"] == 3
    assert_no_secret(first, second)


def test_a_next_link_to_another_host_is_not_followed(api, tickets, warehouse):
    tickets.add(modified=T0)
    tickets.fail(
        200,
        headers={"Link": '<http://elsewhere.invalid/steal?page=2>; rel="next"'},
        body={"items": [{"ticket_id": "T-9", "meta": {"modified": T0.isoformat()}}]},
    )
    sync = rest_sync(api, warehouse, tickets, PAGINATIONS["link"], config={"order": "unordered"})

    with pytest.raises(SyncRunError, match="credential is only sent to http://127.0.0.1"):
        sync_provider(sync.id, api)

    assert len(tickets.seen()) == 1


def test_a_wrong_description_is_rejected_naming_the_key(api, tickets, warehouse):
    bad = {"style": "cursor", "param": "cursor", "token_field": None, "size": 4}
    with pytest.raises(ValidationFailedError) as raised:
        rest_sync(api, warehouse, tickets, bad)

    assert raised.value.details[0]["field"] == "provider_config"
    assert "collections.ticket.pagination.cursor" in str(raised.value)
    assert "token_field and token_path" in str(raised.value)
    assert api.list_syncs() == []
    with pytest.raises(ProviderConfigError, match="Extra inputs are not permitted"):
        rest_provider_for("rest", {"base_url": "http://x", "collections": {}, "typo": 1})
    with pytest.raises(ProviderConfigError, match="repository must be 'owner/name'"):
        rest_provider_for("github", {"repository": "../../admin"})
    with pytest.raises(ProviderConfigError, match="not an http"):
        rest_provider_for("stripe", {"base_url": "file:///etc/passwd"})


def test_presets_cover_the_catalog():
    assert PROVIDERS["stripe"].collections == STRIPE_COLLECTIONS
    assert PROVIDERS["github"].collections == GITHUB_COLLECTIONS
    stripe = rest_provider_for("stripe", {})
    assert stripe.base_url == "https://api.stripe.com"
    assert stripe.collections["customer"].path == "/v1/customers"
    github = rest_provider_for("github", {"repository": "octo/cat"})
    assert github.collections["issue"].path == "/repos/octo/cat/issues"


def test_times_and_positions_round_trip():
    moment = dt.datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    assert parse_time(format_time(moment, "iso8601")) == moment
    assert format_time(moment, "unix") == str(int(moment.timestamp()))
    assert parse_time(format_time(moment, "unix_ms"), "unix_ms") == truncate_time(moment, "unix_ms")
    assert format_time(moment.replace(microsecond=0), "iso8601") == "2026-05-01T12:30:15Z"
    assert parse_time("2026-05-01T14:30:15+02:00") == moment.replace(microsecond=0)
    assert parse_time(1777638615) == dt.datetime(2026, 5, 1, 12, 30, 15, tzinfo=dt.UTC)
    for state in (
        CollectionState(cursor=moment, cursor_key=42),
        CollectionState(cursor=moment, backfilled=False, backfill_after="cus_123"),
        CollectionState(cursor=None, backfilled=False),
    ):
        assert CollectionState.from_position(state.to_position()) == state


@pytest.fixture
def http_api(store_url: str, tmp_path):
    """The sync API over HTTP: a uvicorn server on loopback (file databases in the test's
    directory) and its client."""
    service = SyncService.open(store_url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service, file_roots=[str(tmp_path)]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    client = SyncApiClient(f"http://127.0.0.1:{port}", service.create_api_key("http-org"))
    yield client
    client.close()
    server.should_exit = True
    thread.join(timeout=10)
    service.engine.dispose()


def test_runs_through_the_http_sync_api(http_api, tickets, warehouse):
    for i in range(6):
        tickets.add(modified=T0 + dt.timedelta(seconds=i))
    sync = rest_sync(
        http_api,
        warehouse,
        tickets,
        PAGINATIONS["page"],
        rate_limit={"allowed_requests": 50, "interval": 1, "max_concurrent_requests": 1},
    )

    result = sync_provider(sync.id, http_api)

    assert result.status is RunStatus.COMPLETED
    assert ticket_rows(warehouse).keys() == tickets.tickets.keys()
    synced = http_api.get_sync(sync.id)
    assert synced.backfill_completed_at is not None
    assert_no_secret(synced.model_dump_json(), http_api.get_credential(sync.credential_id))


def test_a_parameter_the_api_ignores_is_reported_not_looped_on(api, tickets, warehouse):
    for i in range(9):
        tickets.add(modified=T0 + dt.timedelta(seconds=i))
    config = tickets_config(tickets, PAGINATIONS["page"])
    config["collections"]["ticket"]["incremental"]["param"] = "changed_after"  # not a filter
    sync = create_provider_sync(
        api,
        warehouse,
        "rest",
        ["ticket"],
        credential={"api_key": TICKETS_KEY},
        provider_config=config,
    )

    with pytest.raises(SyncRunError, match="does not filter on that parameter"):
        sync_provider(sync.id, api)

    assert len(tickets.seen()) == 2


class _AlwaysGranted:
    """A sync API stand-in whose rate limiter always says yes (counts the permits)."""

    def __init__(self) -> None:
        self.acquired = self.released = 0

    def acquire_permit(self, credential_id, rate_limit):
        self.acquired += 1
        return Permit(granted=True, permit_id=self.acquired)

    def release_permit(self, credential_id, permit_id):
        self.released += 1


def test_basic_auth_from_the_credential_and_a_permit_per_attempt():
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503, json={"detail": "warming up"})
        return httpx.Response(200, json=[{"id": 1}])

    provider = parse_rest_provider(
        {
            "base_url": "https://api.example.test/v1",
            "auth": {"basic": ["{username}", "{password}"]},
            "collections": {},
            **FAST_RETRIES,
        }
    )
    api = _AlwaysGranted()
    gate = PermitGate(api, 1, RateLimit(allowed_requests=5, interval=1), time.sleep)
    http = ProviderHttp(
        provider,
        {"properties": {"username": "svc", "password": "pa55-word-secret"}},
        gate,
        wait=time.sleep,
        transport=httpx.MockTransport(answer),
    )

    response = http.get(PageRequest("/things", [("a", "1")]))

    assert response.json() == [{"id": 1}]
    assert len(seen) == 2 and api.acquired == api.released == 2
    assert (
        seen[1].headers["Authorization"]
        == "Basic " + base64.b64encode(b"svc:pa55-word-secret").decode()
    )
    assert str(seen[1].url) == "https://api.example.test/v1/things?a=1"
    http.close()
