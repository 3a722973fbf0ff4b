"""HTTP requests to a provider: a rate-limit permit before each one, retries, clear errors.

Every request first takes a permit from the sync API's rate limiter for the sync's credential
(waiting as told while it is not granted) and releases it when the answer is in, so the limit
holds across all syncs and processes that share the credential. Then:

* 2xx: the answer;
* 429 (or GitHub's 403 with ``x-ratelimit-remaining: 0`` or ``Retry-After``): wait as
  ``Retry-After`` (or ``x-ratelimit-reset``) says, and ask again;
* 5xx, 408, timeouts and connection errors: exponential backoff with jitter, ``max_attempts``;
* 401/403: :class:`ProviderAuthError` "stripe answered 401 Unauthorized: Invalid API Key ...";
* another 4xx: :class:`ProviderRequestError`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx

from sync_pipelines.common.redaction import redact, secret_values
from sync_pipelines.common.retry_after import retry_after_seconds
from sync_pipelines.contract.models import RateLimit
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.providers.errors import (
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderUnavailableError,
)
from sync_pipelines.providers.rest import RestProvider, fill_template

logger = logging.getLogger("sync_pipelines.providers")

Params = list[tuple[str, str]]
Wait = Callable[[float], None]


@dataclass(frozen=True)
class PageRequest:
    """A GET request: a path under the base URL (or an absolute URL) and its query."""

    url: str
    params: Params = field(default_factory=list)

    def with_param(self, name: str, value: str | None) -> PageRequest:
        """The same request with ``name`` set to ``value`` (removed when ``None``)."""
        params = [(key, item) for key, item in self.params if key != name]
        if value is not None:
            params.append((name, value))
        return PageRequest(self.url, params)


class PermitGate:
    """Takes a permit of the sync API's rate limiter for each request."""

    def __init__(
        self, client: SyncApi, credential_id: int, rate_limit: RateLimit, wait: Wait
    ) -> None:
        self.client = client
        self.credential_id = credential_id
        self.rate_limit = rate_limit
        self.wait = wait
        self.granted = 0

    @contextmanager
    def permit(self) -> Iterator[None]:
        """Hold a permit for the duration of one request."""
        while True:
            permit = self.client.acquire_permit(self.credential_id, self.rate_limit)
            if permit.granted:
                break
            self.wait(permit.wait_seconds)
        self.granted += 1
        try:
            yield
        finally:
            try:
                self.client.release_permit(self.credential_id, permit.permit_id)
            except Exception as error:  # noqa: BLE001 - the permit expires on its own
                logger.warning(
                    "could not release rate-limit permit %s: %s", permit.permit_id, error
                )


def secrets_of(properties: dict[str, Any]) -> list[str]:
    """The credential's secret values, longest first (to replace them in text)."""
    return secret_values(properties.values())


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _answer_message(response: httpx.Response) -> str:
    """The provider's own words: Stripe's ``error.message``, GitHub's ``message``, ..."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text.strip()
        return " ".join(text.split())[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "error_description", "detail", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0])
    return " ".join(json.dumps(body).split())[:200]


def server_time(response: httpx.Response) -> dt.datetime:
    """The provider's clock: the answer's ``Date`` header (else this machine's)."""
    date = response.headers.get("date")
    if date:
        try:
            return email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            pass
    return dt.datetime.now(dt.UTC)


def _rate_limit_wait(response: httpx.Response) -> float | None:
    """How long a rate-limited answer asks to wait (``None``: it is not rate-limited)."""
    status = response.status_code
    headers = response.headers
    exhausted = headers.get("x-ratelimit-remaining") == "0"
    if status != 429 and not (status == 403 and (exhausted or "retry-after" in headers)):
        return None
    if "retry-after" in headers:
        wait = retry_after_seconds(headers["retry-after"], server_time(response))
        if wait is not None:
            return wait
    if exhausted and headers.get("x-ratelimit-reset", "").isdigit():
        reset = float(headers["x-ratelimit-reset"])
        return max(reset - server_time(response).timestamp(), 0.0) + 1.0
    return 1.0  # rate-limited without saying for how long: wait a second, then back off


class ProviderHttp:
    """GET requests to one provider for one run: permits, retries, redacted errors."""

    def __init__(
        self,
        provider: RestProvider,
        credential: dict[str, Any],
        gate: PermitGate,
        *,
        wait: Wait,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.gate = gate
        self.wait = wait
        properties = dict(credential.get("properties") or {})
        self.secrets = secrets_of(properties)
        self.requests = 0
        auth = provider.auth

        def fill(template: str) -> str:
            return fill_template(template, properties, provider=provider.name, aliases=auth.aliases)

        headers = dict(provider.headers)
        basic = None
        if auth.basic is not None:
            basic = httpx.BasicAuth(fill(auth.basic[0]), fill(auth.basic[1]))
        else:
            headers.update({name: fill(template) for name, template in auth.headers.items()})
        self.origin = _origin(provider.base_url)
        self._client = httpx.Client(
            base_url=provider.base_url,
            headers=headers,
            auth=basic,
            timeout=httpx.Timeout(provider.timeout_seconds),
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _url(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            if _origin(url) != self.origin:
                raise ProviderConfigError(
                    f"{self.provider.name} sent a next-page link to {_origin(url)}, not to its "
                    f"base URL's {self.origin}; the credential is only sent to {self.origin}",
                    provider=self.provider.name,
                )
            return url
        return self.provider.base_url + "/" + url.lstrip("/")

    def _describe(self, url: str) -> str:
        return f"GET {urlsplit(url).path}"

    def _error(self, kind: type[ProviderError], message: str, **details: Any) -> ProviderError:
        return kind(redact(message, self.secrets), provider=self.provider.name, **details)

    def get(self, request: PageRequest) -> httpx.Response:
        """The 2xx answer to a GET request.

        Raises:
            ProviderAuthError: 401 or 403.
            ProviderRequestError: another 4xx.
            ProviderUnavailableError: 5xx, timeouts or connection errors after every attempt.
            ProviderRateLimitedError: asked to wait longer than ``max_retry_after_seconds``.
        """
        provider = self.provider
        url = self._url(request.url)
        described = self._describe(url)
        attempt = 0
        rate_limited = 0
        while True:
            attempt += 1
            failure: str
            try:
                with self.gate.permit():
                    self.requests += 1
                    response = self._client.get(url, params=request.params or None)
            except httpx.TimeoutException as error:
                failure = f"timed out ({type(error).__name__}) after {provider.timeout_seconds}s"
            except httpx.TransportError as error:
                failure = f"could not be reached ({type(error).__name__}: {error})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                waited = _rate_limit_wait(response)
                if waited is not None:
                    rate_limited += 1
                    attempt -= 1  # a rate-limited answer is not a failed attempt
                    if waited > provider.max_retry_after_seconds:
                        raise self._error(
                            ProviderRateLimitedError,
                            f"{provider.name} answered {_status_text(status)} to {described} "
                            f"and asks to wait {waited:.0f}s, more than this run waits "
                            f"({provider.max_retry_after_seconds:.0f}s)",
                            status_code=status,
                            request=described,
                        )
                    if rate_limited > provider.max_rate_limited_retries:
                        raise self._error(
                            ProviderRateLimitedError,
                            f"{provider.name} answered {_status_text(status)} to {described} "
                            f"{rate_limited} times in a row",
                            status_code=status,
                            request=described,
                        )
                    logger.info(
                        "%s answered %s to %s: waiting %.2fs as asked",
                        provider.name,
                        _status_text(status),
                        described,
                        waited,
                    )
                    self.wait(waited)
                    continue
                message = _answer_message(response)
                answer = f"{_status_text(status)}" + (f": {message}" if message else "")
                if status in (401, 403):
                    raise self._error(
                        ProviderAuthError,
                        f"{provider.name} answered {answer}",
                        status_code=status,
                        request=described,
                    )
                if status < 500 and status != 408:
                    raise self._error(
                        ProviderRequestError,
                        f"{provider.name} answered {answer} to {described}",
                        status_code=status,
                        request=described,
                    )
                failure = f"answered {answer}"
            if attempt >= provider.max_attempts:
                raise self._error(
                    ProviderUnavailableError,
                    f"{provider.name} {failure} to {described} "
                    f"({attempt} attempt{'s' if attempt > 1 else ''})",
                    request=described,
                )
            delay = min(
                provider.backoff_seconds * 2 ** (attempt - 1), provider.max_backoff_seconds
            ) * random.uniform(0.5, 1.0)
            logger.warning(
                "%s %s to %s; attempt %d of %d, retrying in %.2fs",
                provider.name,
                redact(failure, self.secrets),
                described,
                attempt,
                provider.max_attempts,
                delay,
            )
            self.wait(delay)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
