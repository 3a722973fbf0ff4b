"""The sync API's HTTP client (httpx): typed returns, explicit timeouts, careful retries.

Retries (through httpx-retries' transport) happen only where a retry is safe to attempt:
connection failures, 429 and 5xx, with exponential backoff and jitter, honouring
``Retry-After``. Errors are the classes of :mod:`sync_pipelines.contract.errors`, carrying the
server's message and details.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx
from httpx_retries import Retry, RetryTransport
from pydantic import BaseModel

from sync_pipelines.common.retry_after import retry_after_seconds
from sync_pipelines.contract.errors import ServerError, SyncApiError, error_for_status
from sync_pipelines.contract.models import (
    REVEAL_SECRETS,
    BackfillRange,
    Credential,
    CredentialCreate,
    CredentialUpdate,
    CursorPosition,
    Destination,
    DestinationCreate,
    DestinationUpdate,
    ObjectCreate,
    ObjectUpdate,
    Permit,
    ProviderSyncCreate,
    RangeLease,
    RangeLeaseGrant,
    RateLimit,
    RunLease,
    RunStats,
    RunStatus,
    Source,
    SourceCreate,
    SourceUpdate,
    Sync,
    SyncCreate,
    SyncObject,
    SyncRun,
    SyncUpdate,
)

logger = logging.getLogger("sync_pipelines.api.client")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 60.0
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _body(model: BaseModel) -> dict[str, Any]:
    """A request body with secrets revealed: they travel to the API, never back."""
    return model.model_dump(mode="json", exclude_unset=True, context=REVEAL_SECRETS)


class _RetryPolicy(Retry):
    """httpx-retries' policy with this client's delays: ``Retry-After`` as
    :func:`~sync_pipelines.common.retry_after.retry_after_seconds` reads it (capped at
    ``max_backoff_wait``), else ``backoff * 2**n`` with jitter (×0.5 to ×1.5), n = 0, 1, ..."""

    def parse_retry_after(self, retry_after: str) -> float:
        seconds = retry_after_seconds(retry_after)
        if seconds is None:
            raise ValueError(f"invalid Retry-After header: {retry_after}")
        return seconds

    def backoff_strategy(self) -> float:
        exponent = max(self.attempts_made - 1, 0)
        return self.backoff_factor * (2**exponent) * (0.5 + random.random())

    def sleep(self, response: httpx.Response | Exception) -> None:
        failure = response.status_code if isinstance(response, httpx.Response) else response
        logger.warning(
            "sync API request failed (%s); retry %d of %d", failure, self.attempts_made, self.total
        )
        super().sleep(response)


def retry_policy(max_retries: int, backoff: float) -> Retry:
    """Retries where a retry is safe: connection failures (the request never left) on any
    method, and 429 or 5xx answers, ``max_retries`` times after the first attempt."""
    return _RetryPolicy(
        total=max_retries,
        allowed_methods=_METHODS,
        status_forcelist=_RETRY_STATUSES,
        retry_on_exceptions=(httpx.ConnectError, httpx.ConnectTimeout),
        backoff_factor=backoff,
        max_backoff_wait=_MAX_RETRY_AFTER,
    )


class SyncApiClient:
    """Implements :class:`~sync_pipelines.contract.protocol.SyncApi` over HTTP.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8000``.
        api_key: an organization's key (``sync-pipelines api create-key``).
        timeout: seconds, or an ``httpx.Timeout``; never infinite.
        max_retries: attempts after the first, for connect errors, 429 and 5xx.
        backoff: the first retry's base delay in seconds (doubles each attempt, with jitter).
        transport: an httpx transport (for tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.backoff = backoff
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"X-API-KEY": api_key, "User-Agent": "sync-pipelines"},
            timeout=timeout,
            transport=RetryTransport(transport, retry=retry_policy(max_retries, backoff)),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> SyncApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise ServerError(
                f"cannot reach the sync API at {self._http.base_url}: {error}"
            ) from None
        if response.status_code >= 400:
            raise self._error(response)
        return response.json()

    @staticmethod
    def _error(response: httpx.Response) -> SyncApiError:
        try:
            payload = response.json()
            message, details = (
                payload.get("error") or response.reason_phrase,
                payload.get("details"),
            )
        except ValueError:
            message, details = f"HTTP {response.status_code}: {response.text[:200]}", None
        return error_for_status(response.status_code)(message, details)

    # --- sources, destinations, objects ----------------------------------------------------

    def create_source(self, body: SourceCreate) -> Source:
        return Source.model_validate(self._request("POST", "/source", json=_body(body))["source"])

    def get_source(self, source_id: int) -> Source:
        return Source.model_validate(self._request("GET", f"/source/{source_id}")["source"])

    def list_sources(self) -> list[Source]:
        return [Source.model_validate(s) for s in self._request("GET", "/sources")["sources"]]

    def update_source(self, source_id: int, body: SourceUpdate) -> Source:
        data = self._request("PATCH", f"/source/{source_id}", json=_body(body))
        return Source.model_validate(data["source"])

    def delete_source(self, source_id: int) -> None:
        self._request("DELETE", f"/source/{source_id}")

    def create_destination(self, body: DestinationCreate) -> Destination:
        data = self._request("POST", "/destination", json=_body(body))
        return Destination.model_validate(data["destination"])

    def get_destination(self, destination_id: int) -> Destination:
        data = self._request("GET", f"/destination/{destination_id}")
        return Destination.model_validate(data["destination"])

    def list_destinations(self) -> list[Destination]:
        data = self._request("GET", "/destinations")["destinations"]
        return [Destination.model_validate(d) for d in data]

    def update_destination(self, destination_id: int, body: DestinationUpdate) -> Destination:
        data = self._request("PATCH", f"/destination/{destination_id}", json=_body(body))
        return Destination.model_validate(data["destination"])

    def delete_destination(self, destination_id: int) -> None:
        self._request("DELETE", f"/destination/{destination_id}")

    def create_object(self, body: ObjectCreate) -> SyncObject:
        data = self._request("POST", "/object", json=_body(body))
        return SyncObject.model_validate(data["object"])

    def get_object(self, object_id: int) -> SyncObject:
        return SyncObject.model_validate(self._request("GET", f"/object/{object_id}")["object"])

    def list_objects(self) -> list[SyncObject]:
        return [SyncObject.model_validate(o) for o in self._request("GET", "/objects")["objects"]]

    def update_object(self, object_id: int, body: ObjectUpdate) -> SyncObject:
        data = self._request("PATCH", f"/object/{object_id}", json=_body(body))
        return SyncObject.model_validate(data["object"])

    def delete_object(self, object_id: int) -> None:
        self._request("DELETE", f"/object/{object_id}")

    # --- syncs -----------------------------------------------------------------------------

    def create_sync(self, body: SyncCreate | ProviderSyncCreate) -> Sync:
        return Sync.model_validate(self._request("POST", "/sync", json=_body(body))["sync"])

    def get_sync(self, sync_id: int) -> Sync:
        return Sync.model_validate(self._request("GET", f"/sync/{sync_id}")["sync"])

    def list_syncs(
        self,
        *,
        end_customer_id: str | None = None,
        external_id: str | None = None,
        status: str | None = None,
        object_id: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> list[Sync]:
        params: dict[str, Any] = {
            "end_customer_id": end_customer_id,
            "external_id": external_id,
            "status": status,
            "object_id": object_id,
        }
        params = {key: value for key, value in params.items() if value is not None}
        params.update({f"metadata.{key}": value for key, value in (metadata or {}).items()})
        data = self._request("GET", "/syncs", params=params)["syncs"]
        return [Sync.model_validate(s) for s in data]

    def update_sync(self, sync_id: int, body: SyncUpdate) -> Sync:
        data = self._request("PATCH", f"/sync/{sync_id}", json=_body(body))
        return Sync.model_validate(data["sync"])

    def delete_sync(self, sync_id: int) -> None:
        self._request("DELETE", f"/sync/{sync_id}")

    # --- runs ------------------------------------------------------------------------------

    def request_run(self, sync_id: int, *, full_refresh: bool = False) -> SyncRun:
        data = self._request("POST", f"/sync/{sync_id}/run", json={"full_refresh": full_refresh})
        return SyncRun.model_validate(data["run"])

    def cancel_run_request(self, sync_id: int) -> SyncRun:
        return SyncRun.model_validate(self._request("DELETE", f"/sync/{sync_id}/run")["run"])

    def list_runs(self, sync_id: int, *, status: RunStatus | None = None) -> list[SyncRun]:
        params = {"status": RunStatus(status).value} if status else {}
        data = self._request("GET", f"/sync/{sync_id}/runs", params=params)["runs"]
        return [SyncRun.model_validate(r) for r in data]

    def list_requested_runs(self) -> list[SyncRun]:
        return [SyncRun.model_validate(r) for r in self._request("GET", "/runs/requested")["runs"]]

    def get_run(self, run_id: int) -> SyncRun:
        return SyncRun.model_validate(self._request("GET", f"/run/{run_id}")["run"])

    def acquire_range_lease(
        self,
        run_id: int,
        range_index: int,
        *,
        runner_id: str | None = None,
        runner_host: str | None = None,
        runner_pid: int | None = None,
    ) -> RangeLeaseGrant:
        body = {"runner_id": runner_id, "runner_host": runner_host, "runner_pid": runner_pid}
        path = f"/run/{run_id}/ranges/{range_index}/lease"
        return RangeLeaseGrant.model_validate(self._request("POST", path, json=body)["grant"])

    def range_heartbeat(self, range_lease_id: int) -> RangeLease:
        data = self._request("POST", f"/range_lease/{range_lease_id}/heartbeat")
        return RangeLease.model_validate(data["range_lease"])

    def checkpoint_range(
        self, range_lease_id: int, *, key_range: BackfillRange, stats: RunStats
    ) -> RangeLease:
        body = {
            "key_range": key_range.model_dump(mode="json"),
            "stats": stats.model_dump(mode="json"),
        }
        data = self._request("POST", f"/range_lease/{range_lease_id}/checkpoint", json=body)
        return RangeLease.model_validate(data["range_lease"])

    def release_range_lease(self, range_lease_id: int, *, error: str) -> RangeLease:
        path = f"/range_lease/{range_lease_id}/release"
        data = self._request("POST", path, json={"error": error})
        return RangeLease.model_validate(data["range_lease"])

    def list_range_leases(self, run_id: int) -> list[RangeLease]:
        data = self._request("GET", f"/run/{run_id}/ranges")
        return [RangeLease.model_validate(r) for r in data["range_leases"]]

    def start_run(
        self,
        sync_id: int,
        *,
        full_refresh: bool = False,
        run_id: int | None = None,
        runner_id: str | None = None,
        runner_host: str | None = None,
        runner_pid: int | None = None,
        lease_seconds: float | None = None,
    ) -> RunLease:
        body = {
            "full_refresh": full_refresh,
            "run_id": run_id,
            "runner_id": runner_id,
            "runner_host": runner_host,
            "runner_pid": runner_pid,
            "lease_seconds": lease_seconds,
        }
        data = self._request("POST", f"/sync/{sync_id}/runs/start", json=body)
        return RunLease.model_validate(data["lease"])

    def heartbeat(self, run_id: int) -> SyncRun:
        return SyncRun.model_validate(self._request("POST", f"/run/{run_id}/heartbeat")["run"])

    def checkpoint(
        self, run_id: int, *, cursor_position: CursorPosition | None, stats: RunStats
    ) -> SyncRun:
        body = {
            "cursor_position": cursor_position.model_dump(mode="json") if cursor_position else None,
            "stats": stats.model_dump(mode="json"),
        }
        data = self._request("POST", f"/run/{run_id}/checkpoint", json=body)
        return SyncRun.model_validate(data["run"])

    def finish_run(
        self, run_id: int, *, status: RunStatus, stats: RunStats, error: str | None = None
    ) -> SyncRun:
        body = {
            "status": RunStatus(status).value,
            "stats": stats.model_dump(mode="json"),
            "error": error,
        }
        data = self._request("POST", f"/run/{run_id}/finish", json=body)
        return SyncRun.model_validate(data["run"])

    # --- credentials and the shared rate limiter ---------------------------------------------

    def create_credential(self, body: CredentialCreate) -> Credential:
        data = self._request("POST", "/credential", json=_body(body))
        return Credential.model_validate(data["credential"])

    def get_credential(self, credential_id: int) -> Credential:
        data = self._request("GET", f"/credential/{credential_id}")
        return Credential.model_validate(data["credential"])

    def list_credentials(self) -> list[Credential]:
        data = self._request("GET", "/credentials")["credentials"]
        return [Credential.model_validate(c) for c in data]

    def update_credential(self, credential_id: int, body: CredentialUpdate) -> Credential:
        data = self._request("PATCH", f"/credential/{credential_id}", json=_body(body))
        return Credential.model_validate(data["credential"])

    def delete_credential(self, credential_id: int) -> None:
        self._request("DELETE", f"/credential/{credential_id}")

    def acquire_permit(self, credential_id: int, rate_limit: RateLimit) -> Permit:
        body = rate_limit.model_dump(mode="json")
        data = self._request("POST", f"/credential/{credential_id}/permits", json=body)
        return Permit.model_validate(data["permit"])

    def release_permit(self, credential_id: int, permit_id: int) -> None:
        self._request("DELETE", f"/credential/{credential_id}/permits/{permit_id}")

    # --- browsing --------------------------------------------------------------------------

    def list_namespaces(self, connection_id: int) -> list[str]:
        params = {"connection_id": connection_id}
        return self._request("GET", "/connection/namespaces", params=params)["namespaces"]

    def list_tables(self, connection_id: int, namespace: str) -> list[str]:
        params = {"connection_id": connection_id, "namespace": namespace}
        return self._request("GET", "/connection/tables", params=params)["tables"]

    def get_schema(
        self, connection_id: int, namespace: str, table_name: str
    ) -> list[dict[str, Any]]:
        params = {"connection_id": connection_id, "namespace": namespace, "table_name": table_name}
        return self._request("GET", "/connection/schema", params=params)["schema"]
