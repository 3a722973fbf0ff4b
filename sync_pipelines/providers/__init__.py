"""API-provider syncs (Sequin style): Stripe, GitHub and any REST API described by configuration.

:func:`sync_provider` starts and runs a provider sync; :func:`run_provider_sync` runs one whose
lease the engine already took. The providers' catalog (:mod:`.catalog`) is what the sync API
validates provider syncs against.
"""

from sync_pipelines.providers.catalog import GENERIC_REST, PROVIDERS, ProviderInfo, provider_info
from sync_pipelines.providers.errors import (
    ProviderAuthError,
    ProviderConfigError,
    ProviderDataError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderUnavailableError,
)
from sync_pipelines.providers.github import github_provider
from sync_pipelines.providers.presets import rest_provider_for
from sync_pipelines.providers.rest import (
    ChangeFeed,
    CursorPagination,
    FieldSpec,
    Incremental,
    LinkPagination,
    NoPagination,
    PagePagination,
    RestAuth,
    RestCollection,
    RestProvider,
    Window,
    parse_rest_provider,
)
from sync_pipelines.providers.run import (
    CollectionResult,
    ProviderSyncResult,
    run_provider_sync,
    sync_provider,
)
from sync_pipelines.providers.stripe import stripe_provider

__all__ = [
    "GENERIC_REST",
    "PROVIDERS",
    "ChangeFeed",
    "CollectionResult",
    "CursorPagination",
    "FieldSpec",
    "Incremental",
    "LinkPagination",
    "NoPagination",
    "PagePagination",
    "ProviderAuthError",
    "ProviderConfigError",
    "ProviderDataError",
    "ProviderError",
    "ProviderInfo",
    "ProviderRateLimitedError",
    "ProviderRequestError",
    "ProviderSyncResult",
    "ProviderUnavailableError",
    "RestAuth",
    "RestCollection",
    "RestProvider",
    "Window",
    "github_provider",
    "parse_rest_provider",
    "provider_info",
    "rest_provider_for",
    "run_provider_sync",
    "stripe_provider",
    "sync_provider",
]
