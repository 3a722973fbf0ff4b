"""The ``stripe`` preset: Stripe's list endpoints for the backfill, its Events API afterwards.

Stripe's list endpoints (``GET /v1/customers``, ...) return ``{"object": "list", "data": [...],
"has_more": ...}`` newest first, page with ``limit`` (at most 100) and ``starting_after`` (the last
object's id) and filter on ``created`` only (``created[gte]`` bounds the ``max_age_days``
window); they cannot filter on updates. So a collection is listed once, then kept current from
``GET /v1/events`` (``types[]`` and ``created[gte]`` filters, same pagination), whose events carry
the changed object in ``data.object``: only the newest event of each object is applied, and
``*.deleted`` events delete the row. Stripe keeps events for 30 days: a sync whose cursor is older
lists the collection again.

Stripe objects have no updated-at field: the ``updated_at`` column holds ``created`` for a listed
object and the event's ``created`` for a changed one, so ``max_age_days`` keeps what was created
or changed (as far as the sync saw) in the window.

``provider_config``: ``base_url`` (default ``https://api.stripe.com``), ``page_size`` (1-100) and
the retry settings of :class:`~sync_pipelines.providers.rest.RestProvider`. The credential's
secret key is the property ``secret`` (or ``api_key``).
"""

from __future__ import annotations

from typing import Any

from sync_pipelines.contract.models import FieldType
from sync_pipelines.providers.errors import ProviderConfigError
from sync_pipelines.providers.rest import (
    ChangeFeed,
    CursorPagination,
    FieldSpec,
    RestAuth,
    RestCollection,
    RestProvider,
    Window,
    parse_rest_provider,
    tunables,
)

__all__ = ["STRIPE_BASE_URL", "STRIPE_COLLECTIONS", "stripe_provider"]

STRIPE_BASE_URL = "https://api.stripe.com"
EVENT_RETENTION_DAYS = 30

S, INT, B, T, J = (
    FieldType.STRING,
    FieldType.INTEGER,
    FieldType.BOOLEAN,
    FieldType.TIMESTAMP,
    FieldType.JSON,
)
_COMMON: dict[str, FieldType] = {"id": S, "object": S, "created": T, "livemode": B, "metadata": J}

# object -> (list path, extra list parameters, event types, deleting event types, typed fields)
_OBJECTS: dict[str, tuple[str, dict[str, str], tuple[str, ...], tuple[str, ...], dict]] = {
    "customer": (
        "/v1/customers",
        {},
        ("customer.created", "customer.updated", "customer.deleted"),
        ("customer.deleted",),
        {
            "email": S,
            "name": S,
            "description": S,
            "phone": S,
            "currency": S,
            "balance": INT,
            "delinquent": B,
        },
    ),
    "invoice": (
        "/v1/invoices",
        {},
        (
            "invoice.created",
            "invoice.deleted",
            "invoice.finalization_failed",
            "invoice.finalized",
            "invoice.marked_uncollectible",
            "invoice.overdue",
            "invoice.paid",
            "invoice.payment_action_required",
            "invoice.payment_failed",
            "invoice.payment_succeeded",
            "invoice.sent",
            "invoice.updated",
            "invoice.voided",
            "invoice.will_be_due",
        ),
        ("invoice.deleted",),
        {
            "customer": S,
            "subscription": S,
            "number": S,
            "status": S,
            "currency": S,
            "amount_due": INT,
            "amount_paid": INT,
            "amount_remaining": INT,
            "total": INT,
            "due_date": T,
        },
    ),
    "charge": (
        "/v1/charges",
        {},
        (
            "charge.captured",
            "charge.expired",
            "charge.failed",
            "charge.pending",
            "charge.refunded",
            "charge.succeeded",
            "charge.updated",
        ),
        (),
        {
            "customer": S,
            "payment_intent": S,
            "status": S,
            "currency": S,
            "amount": INT,
            "amount_captured": INT,
            "amount_refunded": INT,
            "paid": B,
            "refunded": B,
        },
    ),
    "subscription": (
        "/v1/subscriptions",
        {"status": "all"},  # the default lists only subscriptions that are not canceled
        (
            "customer.subscription.created",
            "customer.subscription.deleted",  # canceled: the subscription stays, status canceled
            "customer.subscription.paused",
            "customer.subscription.pending_update_applied",
            "customer.subscription.pending_update_expired",
            "customer.subscription.resumed",
            "customer.subscription.trial_will_end",
            "customer.subscription.updated",
        ),
        (),
        {
            "customer": S,
            "status": S,
            "currency": S,
            "cancel_at_period_end": B,
            "canceled_at": T,
            "ended_at": T,
            "start_date": T,
        },
    ),
    "product": (
        "/v1/products",
        {},
        ("product.created", "product.updated", "product.deleted"),
        ("product.deleted",),
        {"name": S, "description": S, "active": B, "default_price": S},
    ),
    "price": (
        "/v1/prices",
        {},
        ("price.created", "price.updated", "price.deleted"),
        ("price.deleted",),
        {
            "product": S,
            "active": B,
            "currency": S,
            "unit_amount": INT,
            "type": S,
            "recurring": J,
        },
    ),
    "payment_intent": (
        "/v1/payment_intents",
        {},
        (
            "payment_intent.amount_capturable_updated",
            "payment_intent.canceled",
            "payment_intent.created",
            "payment_intent.partially_funded",
            "payment_intent.payment_failed",
            "payment_intent.processing",
            "payment_intent.requires_action",
            "payment_intent.succeeded",
        ),
        (),
        {
            "customer": S,
            "status": S,
            "currency": S,
            "amount": INT,
            "amount_received": INT,
            "payment_method": S,
        },
    ),
}

STRIPE_COLLECTIONS = frozenset(_OBJECTS)


def _collection(name: str, page_size: int) -> RestCollection:
    path, params, event_types, delete_types, fields = _OBJECTS[name]
    pagination = CursorPagination(size=page_size)
    return RestCollection(
        path=path,
        records_path="data",
        primary_key="id",
        updated_at="created",
        updated_at_format="unix",
        cursor_column="updated_at",
        params=params,
        pagination=pagination,
        window=Window(param="created[gte]", format="unix"),
        fields={
            **{key: FieldSpec(type=kind, format="unix") for key, kind in _COMMON.items()},
            **{
                key: FieldSpec(type=kind, format="unix") if kind is T else kind
                for key, kind in fields.items()
            },
        },
        changes=ChangeFeed(
            path="/v1/events",
            params=[("types[]", event_type) for event_type in event_types],
            records_path="data",
            record_path="data.object",
            changed_at="created",
            changed_at_format="unix",
            since_param="created[gte]",
            since_format="unix",
            type_path="type",
            delete_types=frozenset(delete_types),
            object_type_path="data.object.object",
            object_type=name,
            retention_days=EVENT_RETENTION_DAYS,
            pagination=pagination,
        ),
    )


def stripe_provider(provider_config: dict[str, Any]) -> RestProvider:
    """The Stripe API as a :class:`RestProvider` (``provider_config`` may move or tune it).

    Raises:
        ProviderConfigError: ``page_size`` is not 1-100, or a setting is invalid.
    """
    page_size = provider_config.get("page_size", 100)
    if not isinstance(page_size, int) or not 1 <= page_size <= 100:
        raise ProviderConfigError(
            "stripe provider_config.page_size must be an integer from 1 to 100", provider="stripe"
        )
    return parse_rest_provider(
        {
            "base_url": provider_config.get("base_url", STRIPE_BASE_URL),
            "auth": RestAuth(
                headers={"Authorization": "Bearer {secret}"},
                aliases={"secret": ("api_key", "secret_key", "token")},
            ),
            "collections": {name: _collection(name, page_size) for name in _OBJECTS},
            **tunables(provider_config),
        },
        name="stripe",
    )
