"""A sync's provider as a :class:`~sync_pipelines.providers.rest.RestProvider`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sync_pipelines.providers.catalog import GENERIC_REST, provider_info
from sync_pipelines.providers.errors import ProviderConfigError
from sync_pipelines.providers.github import github_provider
from sync_pipelines.providers.rest import RestProvider, parse_rest_provider
from sync_pipelines.providers.stripe import stripe_provider

__all__ = ["PRESETS", "rest_provider_for"]

PRESETS: dict[str, Callable[[dict[str, Any]], RestProvider]] = {
    "stripe": stripe_provider,
    "github": github_provider,
}


def rest_provider_for(provider: str, provider_config: dict[str, Any] | None) -> RestProvider:
    """The description of a sync's provider: a preset, or the generic REST provider's config.

    Raises:
        ProviderConfigError: unknown provider, or its ``provider_config`` does not fit.
    """
    config = dict(provider_config or {})
    try:
        provider_info(provider)
    except KeyError as error:
        raise ProviderConfigError(str(error.args[0]), provider=provider) from None
    if provider == GENERIC_REST:
        return parse_rest_provider(config, name=GENERIC_REST)
    if provider not in PRESETS:
        raise ProviderConfigError(
            f"provider {provider!r} has no implementation to fetch with", provider=provider
        )
    return PRESETS[provider](config)
