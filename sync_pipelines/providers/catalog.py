"""The providers the sync API knows: their collections and default rate limits.

The sync API validates provider syncs against this catalog; the runners fetch with the provider
implementations beside it. ``rest`` is the generic provider: its collections are described in
the sync's ``provider_config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sync_pipelines.contract.models import RateLimit

GENERIC_REST = "rest"


@dataclass(frozen=True)
class ProviderInfo:
    """What the sync API needs to know of a provider."""

    name: str
    collections: frozenset[str]
    default_rate_limit: RateLimit
    required_config: tuple[str, ...] = field(default=())


PROVIDERS: dict[str, ProviderInfo] = {
    "stripe": ProviderInfo(
        name="stripe",
        collections=frozenset(
            {"customer", "invoice", "charge", "subscription", "product", "price", "payment_intent"}
        ),
        # Stripe allows 100 read requests/s in live mode; a sync takes a quarter of it.
        default_rate_limit=RateLimit(allowed_requests=25, interval=1, max_concurrent_requests=4),
    ),
    "github": ProviderInfo(
        name="github",
        collections=frozenset({"issue", "pull_request"}),
        # GitHub allows 5,000 requests/hour per token; a sync takes half of it.
        default_rate_limit=RateLimit(
            allowed_requests=2500, interval=3600, max_concurrent_requests=2
        ),
        required_config=("repository",),
    ),
    GENERIC_REST: ProviderInfo(
        name=GENERIC_REST,
        collections=frozenset(),
        default_rate_limit=RateLimit(allowed_requests=10, interval=1, max_concurrent_requests=2),
        required_config=("base_url", "collections"),
    ),
}


def provider_info(name: str) -> ProviderInfo:
    """A provider by name.

    Raises:
        KeyError: unknown provider; the message lists the known ones.
    """
    try:
        return PROVIDERS[name]
    except KeyError:
        raise KeyError(
            f"unknown provider {name!r}; use one of {', '.join(sorted(PROVIDERS))}"
        ) from None


def collection_names(info: ProviderInfo, provider_config: dict) -> frozenset[str]:
    """The collections a sync of this provider may name (generic REST: from its config)."""
    if info.name == GENERIC_REST:
        return frozenset((provider_config.get("collections") or {}).keys())
    return info.collections
