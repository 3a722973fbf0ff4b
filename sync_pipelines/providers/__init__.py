"""API-provider syncs (Sequin style): Stripe, GitHub and any REST API described by configuration.

:func:`sync_provider` starts and runs a provider sync; :func:`run_provider_sync` runs one whose
lease the engine already took. The providers' catalog (:mod:`.catalog`) is what the sync API
validates provider syncs against. The public names are loaded lazily, so that the sync API,
which needs only the catalog and the presets, does not import the data plane.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sync_pipelines.providers.catalog import (
        GENERIC_REST,
        PROVIDERS,
        ProviderInfo,
        provider_info,
    )
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
    from sync_pipelines.providers.provider_sync import (
        CollectionResult,
        ProviderSyncResult,
        run_provider_sync,
        sync_provider,
    )
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
    from sync_pipelines.providers.stripe import stripe_provider

_PACKAGE = "sync_pipelines.providers"
_NAMES = {
    "GENERIC_REST": "catalog",
    "PROVIDERS": "catalog",
    "ProviderInfo": "catalog",
    "provider_info": "catalog",
    "ProviderAuthError": "errors",
    "ProviderConfigError": "errors",
    "ProviderDataError": "errors",
    "ProviderError": "errors",
    "ProviderRateLimitedError": "errors",
    "ProviderRequestError": "errors",
    "ProviderUnavailableError": "errors",
    "github_provider": "github",
    "rest_provider_for": "presets",
    "ChangeFeed": "rest",
    "CursorPagination": "rest",
    "FieldSpec": "rest",
    "Incremental": "rest",
    "LinkPagination": "rest",
    "NoPagination": "rest",
    "PagePagination": "rest",
    "RestAuth": "rest",
    "RestCollection": "rest",
    "RestProvider": "rest",
    "Window": "rest",
    "parse_rest_provider": "rest",
    "CollectionResult": "provider_sync",
    "ProviderSyncResult": "provider_sync",
    "run_provider_sync": "provider_sync",
    "sync_provider": "provider_sync",
    "stripe_provider": "stripe",
}

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


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}")
    return getattr(import_module(f"{_PACKAGE}.{module}"), name)
