"""Local stand-ins for Stripe's and GitHub's REST APIs, on loopback, in a thread.

They implement the documented request and response shapes the providers rely on:

* Stripe list endpoints (``GET /v1/customers``, ``/v1/invoices``, ...) and ``GET /v1/events``:
  ``{"object": "list", "url", "has_more", "data"}``, newest first, ``limit`` (1-100, default 10),
  ``starting_after``/``ending_before``, ``created[gt|gte|lt|lte]``, ``types[]``/``type`` on
  events, ``status`` on subscriptions (default: not canceled); unknown parameters are a 400;
  bearer or basic auth, 401 ``{"error": {"message": "Invalid API Key provided: sk_test_***4242",
  "type": "invalid_request_error"}}``.
* GitHub ``GET /repos/{owner}/{repo}/issues`` (``state``, ``sort``, ``direction``, ``since``,
  ``per_page`` up to 100, ``page``; pull requests included, with a ``pull_request`` key) and
  ``/pulls`` (no ``since``); RFC 5988 ``Link`` headers pointing at ``/repositories/{id}/...``;
  ``x-ratelimit-*`` headers; 401 ``{"message": "Bad credentials"}``.

Every request is recorded with its arrival time (``time.monotonic()``); faults (429 with
``Retry-After``, 5xx, slow answers, 401) are injected with :meth:`FakeApi.fail`.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import fnmatch
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass(frozen=True)
class Seen:
    """A request the fake received."""

    at: float
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    status: int = 0

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Fault:
    """Answer ``times`` matching requests with ``status``, after letting ``skip`` of them pass."""

    status: int | None
    path: str | None = None
    times: int = 1
    skip: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0

    def matches(self, path: str) -> bool:
        return self.path is None or self.path in path


Answer = tuple[int, dict[str, str], Any]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.server.fake.serve(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out closed its socket: nothing to report


class FakeApi:
    """A fake HTTP API on 127.0.0.1: records requests, injects faults."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(
        self,
        status: int | None,
        *,
        path: str | None = None,
        times: int = 1,
        skip: int = 0,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay: float = 0.0,
    ) -> Fault:
        """Make matching requests fail (``status=None`` with ``delay``: answer late)."""
        fault = Fault(status, path, times, skip, dict(headers or {}), body, delay)
        with self.lock:
            self.faults.append(fault)
        return fault

    def seen(self, path: str | None = None) -> list[Seen]:
        """Requests received (whose path contains ``path``)."""
        with self.lock:
            return [r for r in self.requests if path is None or path in r.path]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def _fault(self, path: str) -> Fault | None:
        """The fault answering this request: each lets ``skip`` matching requests pass first."""
        chosen = None
        with self.lock:
            for fault in self.faults:
                if fault.times <= 0 or not fault.matches(path):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                elif chosen is None:
                    fault.times -= 1
                    chosen = fault
        return chosen

    def serve(self, handler: _Handler) -> None:
        arrived = time.monotonic()
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        authorization = handler.headers.get("Authorization")
        fault = self._fault(parts.path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            status, headers, body = fault.status, fault.headers, fault.body
        else:
            try:
                status, headers, body = self.handle(parts.path, query, handler.headers)
            except Exception as error:  # noqa: BLE001 - a bug in the fake is a 500
                status, headers, body = 500, {}, {"message": f"fake failed: {error!r}"}
        with self.lock:
            self.requests.append(Seen(arrived, "GET", parts.path, query, authorization, status))
        payload = b"" if body is None else json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass

    def handle(self, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
        raise NotImplementedError


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


# --- Stripe --------------------------------------------------------------------------------

_PREFIXES = {
    "customer": "cus",
    "invoice": "in",
    "charge": "ch",
    "subscription": "sub",
    "product": "prod",
    "price": "price",
    "payment_intent": "pi",
}
_PLURALS = {
    "customers": "customer",
    "invoices": "invoice",
    "charges": "charge",
    "subscriptions": "subscription",
    "products": "product",
    "prices": "price",
    "payment_intents": "payment_intent",
}
_EVENT_PREFIX = {"subscription": "customer.subscription"}
_LIST_PARAMS = {"limit", "starting_after", "ending_before", "expand[]"}
_CREATED = ("created", "created[gt]", "created[gte]", "created[lt]", "created[lte]")


def _stripe_error(status: int, message: str, **extra: Any) -> Answer:
    return status, {}, {"error": {"message": message, "type": "invalid_request_error", **extra}}


class FakeStripe(FakeApi):
    """Stripe's list endpoints and Events API over an in-memory account."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in _PREFIXES}
        self.sort_keys: dict[str, tuple[int, int]] = {}
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    @staticmethod
    def now() -> int:
        return int(time.time())

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):08d}"

    def _event(self, kind: str, action: str, obj: dict[str, Any], created: int) -> None:
        prefix = _EVENT_PREFIX.get(kind, kind)
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "created": created,
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None},
            "type": f"{prefix}.{action}",
        }
        self.sort_keys[event["id"]] = (created, next(self._ids))
        self.events.append(event)

    def add(self, kind: str, *, created: int | None = None, **fields: Any) -> dict[str, Any]:
        """Create an object (and its ``<kind>.created`` event at the same time)."""
        with self.lock:
            created = self.now() if created is None else created
            obj = {
                "id": self._id(_PREFIXES[kind]),
                "object": kind,
                "created": created,
                "livemode": False,
                "metadata": {},
                **fields,
            }
            self.objects[kind][obj["id"]] = obj
            self.sort_keys[obj["id"]] = (created, next(self._ids))
            self._event(kind, "created", obj, created)
            return copy.deepcopy(obj)

    def update(self, kind: str, object_id: str, **fields: Any) -> dict[str, Any]:
        """Change an object now (a ``<kind>.updated`` event)."""
        with self.lock:
            obj = self.objects[kind][object_id]
            obj.update(fields)
            self._event(kind, "updated", obj, self.now())
            return copy.deepcopy(obj)

    def delete(self, kind: str, object_id: str) -> None:
        """Delete an object now (a ``<kind>.deleted`` event)."""
        with self.lock:
            obj = self.objects[kind].pop(object_id)
            self._event(kind, "deleted", {**obj, "deleted": True}, self.now())

    def _authorized(self, headers: Any) -> Answer | None:
        value = headers.get("Authorization") or ""
        key = None
        if value.startswith("Bearer "):
            key = value[7:]
        elif value.startswith("Basic "):
            key = base64.b64decode(value[6:]).decode().partition(":")[0]
        if not key:
            return _stripe_error(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if key != self.secret:
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
            return _stripe_error(401, f"Invalid API Key provided: {masked}")
        return None

    def handle(self, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
        denied = self._authorized(headers)
        if denied is not None:
            return denied
        if path == "/v1/events":
            allowed = _LIST_PARAMS | {"type", "types[]", "delivery_success", *_CREATED}
            unknown = sorted(set(query) - allowed)
            if unknown:
                return _stripe_error(400, f"Received unknown parameter: {unknown[0]}")
            if "type" in query and "types[]" in query:
                return _stripe_error(
                    400, "You may only specify one of these parameters: type, types."
                )
            with self.lock:
                items = list(self.events)
            if "type" in query:
                items = [e for e in items if fnmatch.fnmatchcase(e["type"], query["type"][0])]
            if "types[]" in query:
                if len(query["types[]"]) > 20:
                    return _stripe_error(400, "types: at most 20 event types")
                items = [e for e in items if e["type"] in query["types[]"]]
            return self._list(path, items, query, "event")
        kind = _PLURALS.get(path.removeprefix("/v1/"))
        if kind is None:
            return _stripe_error(404, f"Unrecognized request URL (GET: {path}).")
        allowed = _LIST_PARAMS | set(_CREATED) | ({"status"} if kind == "subscription" else set())
        unknown = sorted(set(query) - allowed)
        if unknown:
            return _stripe_error(400, f"Received unknown parameter: {unknown[0]}")
        with self.lock:
            items = [copy.deepcopy(o) for o in self.objects[kind].values()]
        if kind == "subscription":
            status = _one(query, "status")
            if status is None:
                items = [o for o in items if o.get("status") != "canceled"]
            elif status != "all":
                items = [o for o in items if o.get("status") == status]
        return self._list(path, items, query, kind)

    def _list(
        self, path: str, items: list[dict[str, Any]], query: dict[str, list[str]], kind: str
    ) -> Answer:
        try:
            limit = int(_one(query, "limit") or 10)
        except ValueError:
            return _stripe_error(400, "Invalid integer: limit", param="limit")
        if not 1 <= limit <= 100:
            return _stripe_error(
                400, "This value must be greater than or equal to 1 and at most 100.", param="limit"
            )
        for name in _CREATED:
            value = _one(query, name)
            if value is None:
                continue
            bound = int(value)
            test: Callable[[int], bool] = {
                "created": lambda c, b=bound: c == b,
                "created[gt]": lambda c, b=bound: c > b,
                "created[gte]": lambda c, b=bound: c >= b,
                "created[lt]": lambda c, b=bound: c < b,
                "created[lte]": lambda c, b=bound: c <= b,
            }[name]
            items = [o for o in items if test(o["created"])]
        items.sort(key=lambda o: self.sort_keys[o["id"]], reverse=True)
        ids = [o["id"] for o in items]
        after, before = _one(query, "starting_after"), _one(query, "ending_before")
        if after is not None:
            if after not in self.sort_keys:
                return _stripe_error(
                    400,
                    f"No such {kind}: '{after}'",
                    param="starting_after",
                    code="resource_missing",
                )
            # newest first: what comes after it (it may be deleted since)
            items = [o for o in items if self.sort_keys[o["id"]] < self.sort_keys[after]]
        elif before is not None and before in ids:
            items = items[: ids.index(before)][-limit:]
        page = items[:limit]
        return (
            200,
            {},
            {"object": "list", "url": path, "has_more": len(items) > limit, "data": page},
        )


# --- GitHub --------------------------------------------------------------------------------


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakeGitHub(FakeApi):
    """GitHub's issues and pulls endpoints over in-memory repositories."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.repositories: dict[str, int] = {}
        self.issues: dict[str, dict[int, dict[str, Any]]] = {}
        self._ids = itertools.count(1_000_001)
        self._numbers: dict[str, itertools.count] = {}

    def repository(self, name: str) -> None:
        with self.lock:
            if name not in self.repositories:
                self.repositories[name] = len(self.repositories) + 1
                self.issues[name] = {}
                self._numbers[name] = itertools.count(1)

    def add_issue(
        self,
        repository: str,
        *,
        updated_at: dt.datetime | None = None,
        created_at: dt.datetime | None = None,
        pull: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """An issue (or, with ``pull``, a pull request) in a repository."""
        self.repository(repository)
        with self.lock:
            now = dt.datetime.now(dt.UTC)
            number = next(self._numbers[repository])
            created = created_at or updated_at or now
            issue: dict[str, Any] = {
                "id": next(self._ids),
                "node_id": f"I_{number}",
                "number": number,
                "title": f"issue {number}",
                "state": "open",
                "state_reason": None,
                "user": {"login": "octocat", "id": 1},
                "labels": [],
                "assignees": [],
                "locked": False,
                "comments": 0,
                "body": "",
                "author_association": "OWNER",
                "html_url": f"https://github.com/{repository}/issues/{number}",
                "created_at": _iso(created),
                "updated_at": _iso(updated_at or created),
                "closed_at": None,
                **fields,
            }
            if pull:
                issue["pull_request"] = {"url": f"{self.url}/repos/{repository}/pulls/{number}"}
                issue["_pull"] = {
                    "id": next(self._ids),
                    "draft": False,
                    "merged_at": None,
                    "merge_commit_sha": None,
                    "head": {"ref": f"feature-{number}"},
                    "base": {"ref": "main"},
                }
            self.issues[repository][number] = issue
            return self._public(issue)

    def update_issue(
        self, repository: str, number: int, *, updated_at: dt.datetime | None = None, **fields: Any
    ) -> dict[str, Any]:
        with self.lock:
            issue = self.issues[repository][number]
            issue.update(fields)
            issue["updated_at"] = _iso(updated_at or dt.datetime.now(dt.UTC))
            return self._public(issue)

    def delete_issue(self, repository: str, number: int) -> None:
        with self.lock:
            del self.issues[repository][number]

    @staticmethod
    def _public(issue: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy({k: v for k, v in issue.items() if not k.startswith("_")})

    @staticmethod
    def _pull(issue: dict[str, Any]) -> dict[str, Any]:
        pull = {k: v for k, v in issue.items() if not k.startswith("_") and k != "pull_request"}
        pull.update(issue["_pull"])
        pull["html_url"] = pull["html_url"].replace("/issues/", "/pull/")
        return copy.deepcopy(pull)

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": str(int(time.time()) + 3600),
        }

    def handle(self, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
        auth = headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "token") or token != self.token:
            return (
                401,
                {},
                {
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest",
                    "status": "401",
                },
            )
        parts = path.strip("/").split("/")
        repository = None
        if len(parts) == 4 and parts[0] == "repos":
            repository, endpoint = f"{parts[1]}/{parts[2]}", parts[3]
        elif len(parts) == 3 and parts[0] == "repositories":
            ids = {v: k for k, v in self.repositories.items()}
            repository, endpoint = ids.get(int(parts[1]) if parts[1].isdigit() else -1), parts[2]
        else:
            endpoint = ""
        if repository not in self.issues or endpoint not in ("issues", "pulls"):
            return (
                404,
                {},
                {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},
            )
        with self.lock:
            issues = [copy.deepcopy(i) for i in self.issues[repository].values()]
        state = _one(query, "state") or "open"
        if state != "all":
            issues = [i for i in issues if i["state"] == state]
        if endpoint == "pulls":
            items = [self._pull(i) for i in issues if "_pull" in i]
            sort = _one(query, "sort") or "created"
            if sort not in ("created", "updated", "popularity", "long-running"):
                return 422, {}, {"message": "Validation Failed"}
        else:
            items = [self._public(i) for i in issues]
            sort = _one(query, "sort") or "created"
            if sort not in ("created", "updated", "comments"):
                return 422, {}, {"message": "Validation Failed"}
            since = _one(query, "since")
            if since is not None:
                bound = _parse_iso(since)
                items = [i for i in items if _parse_iso(i["updated_at"]) >= bound]
        default_direction = "desc" if sort == "created" or endpoint == "issues" else "asc"
        direction = _one(query, "direction") or default_direction
        field_name = {"created": "created_at", "updated": "updated_at"}.get(sort, "created_at")
        items.sort(key=lambda i: (i[field_name], i["number"]), reverse=direction == "desc")
        per_page = min(int(_one(query, "per_page") or 30), 100)
        page = max(int(_one(query, "page") or 1), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        body = items[(page - 1) * per_page : page * per_page]
        repo_id = self.repositories[repository]

        def link(number: int) -> str:
            params = [(k, v) for k, values in query.items() for v in values if k != "page"]
            params.append(("page", str(number)))
            return f"<{self.url}/repositories/{repo_id}/{endpoint}?{urlencode(params)}>"

        links = []
        if page < last:
            links += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
        if page > 1:
            links += [f'{link(1)}; rel="first"', f'{link(page - 1)}; rel="prev"']
        answer_headers = self._rate_headers()
        if links:
            answer_headers["Link"] = ", ".join(links)
        return 200, answer_headers, body


# --- a generic REST API ----------------------------------------------------------------------


class FakeTickets(FakeApi):
    """A made-up ticketing API for the generic REST provider.

    ``GET /api/v2/tickets``: ``X-Api-Key`` auth; ``modified_since`` (ISO 8601, inclusive);
    ascending by ``meta.modified`` then id; pages by ``page``/``page_size``, and also by an
    opaque ``cursor`` (``next_cursor`` in the answer) and a ``Link`` header.
    """

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.tickets: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def add(self, *, modified: dt.datetime, **fields: Any) -> dict[str, Any]:
        with self.lock:
            ticket_id = f"T-{next(self._ids):04d}"
            ticket = {
                "ticket_id": ticket_id,
                "subject": f"ticket {ticket_id}",
                "priority": 1,
                "meta": {"modified": modified.isoformat(timespec="milliseconds")},
                **fields,
            }
            self.tickets[ticket_id] = ticket
            return copy.deepcopy(ticket)

    def update(self, ticket_id: str, *, modified: dt.datetime, **fields: Any) -> None:
        with self.lock:
            self.tickets[ticket_id].update(fields)
            self.tickets[ticket_id]["meta"]["modified"] = modified.isoformat(
                timespec="milliseconds"
            )

    def handle(self, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
        if headers.get("X-Api-Key") != self.key:
            return 401, {}, {"error": "invalid api key"}
        if path != "/api/v2/tickets":
            return 404, {}, {"error": "no such endpoint"}
        with self.lock:
            items = [copy.deepcopy(t) for t in self.tickets.values()]
        since = _one(query, "modified_since")
        if since is not None:
            bound = _parse_iso(since)
            items = [t for t in items if _parse_iso(t["meta"]["modified"]) >= bound]
        items.sort(key=lambda t: (_parse_iso(t["meta"]["modified"]), t["ticket_id"]))
        size = int(_one(query, "page_size") or 20)
        cursor = _one(query, "cursor")
        if cursor is not None:
            start = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        else:
            start = (int(_one(query, "page") or 1) - 1) * size
        page = items[start : start + size]
        more = start + size < len(items)
        token = base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else None
        answer_headers = {}
        if more:
            params = [(k, v) for k, values in query.items() for v in values if k != "page"]
            params.append(("page", str(start // size + 2)))
            answer_headers["Link"] = f'<{self.url}{path}?{urlencode(params)}>; rel="next"'
        return 200, answer_headers, {"items": page, "next_cursor": token, "count": len(page)}
