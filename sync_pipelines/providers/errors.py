"""What a provider sync raises on purpose: each message names the provider and what it answered.

Messages never hold a credential: they are built from the provider's name, the request's method
and path, the HTTP status and the provider's own error message, with every secret value of the
credential replaced by ``***``.
"""

from __future__ import annotations

from sync_pipelines.engine.errors import EngineError

__all__ = [
    "ProviderAuthError",
    "ProviderConfigError",
    "ProviderDataError",
    "ProviderError",
    "ProviderRateLimitedError",
    "ProviderRequestError",
    "ProviderUnavailableError",
]


class ProviderError(EngineError):
    """Base class of the provider errors.

    Attributes:
        provider: the provider's name (``stripe``, ``github``, ``rest``).
        status_code: the HTTP status of the answer, when there was one.
        request: ``"GET /v1/customers"``: method and path, without query or secrets.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        request: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.request = request


class ProviderConfigError(ProviderError):
    """The provider's description (``provider_config``) or the credential does not fit."""


class ProviderAuthError(ProviderError):
    """The provider refused the credential (401 or 403)."""


class ProviderRequestError(ProviderError):
    """The provider rejected a request (another 4xx): the description of the API is wrong."""


class ProviderUnavailableError(ProviderError):
    """5xx answers, timeouts or connection errors outlasted the retries."""


class ProviderRateLimitedError(ProviderUnavailableError):
    """The provider asked to wait longer than a run is willing to (``max_retry_after_seconds``)."""


class ProviderDataError(ProviderError):
    """A record does not fit its collection's description (no primary key, a bad timestamp)."""
