"""A sync body checked against its object and turned into the store's row."""

from __future__ import annotations

from typing import Any

from sync_pipelines.contract.errors import (
    ValidationFailedError,
)
from sync_pipelines.contract.models import (
    FieldMapping,
    NullCursor,
    ProviderSyncCreate,
    SyncCreate,
    SyncMode,
    SyncObject,
    SyncStatus,
)

DEFAULT_FREQUENCY = (1, "hours")
"""A new database sync without a schedule runs hourly."""


def _default_source_field(mappings: list[FieldMapping], object_field: str | None) -> str | None:
    """The source column mapped onto an object field (else the same name)."""
    if object_field is None:
        return None
    for mapping in mappings:
        if mapping.destination_field_name == object_field:
            return mapping.source_field_name
    return object_field


def _check_mappings(body: SyncCreate, obj: SyncObject) -> None:
    fields = {f.name: f for f in obj.object_fields}
    problems = []
    for index, mapping in enumerate(body.field_mappings):
        target = mapping.destination_field_name
        if target == obj.end_customer_id_field:
            problems.append(
                (index, f"{target!r} is the object's end_customer_id_field, set by the sync")
            )
        elif fields and target not in fields:
            problems.append((index, f"object {obj.id} has no field {target!r}"))
        elif fields and fields[target].omit:
            problems.append((index, f"object field {target!r} is marked omit"))
    details = [
        {"field": f"field_mappings[{index}].destination_field_name", "message": message}
        for index, message in problems
    ]
    mapped = {m.destination_field_name for m in body.field_mappings}
    details += [
        {
            "field": "field_mappings",
            "message": f"object field {name!r} is not mapped (it is neither optional nor omit)",
        }
        for name, field in fields.items()
        if not field.optional and not field.omit and name not in mapped
    ]
    if details:
        raise ValidationFailedError("validation failed", details)


def database_sync_row(body: SyncCreate, obj: SyncObject, source_customer_id: str) -> dict[str, Any]:
    """The stored columns of a sync: body values, else the object's defaults; checked."""
    _check_mappings(body, obj)
    cursor = body.cursor_field or _default_source_field(body.field_mappings, obj.cursor_field)
    primary_key = body.primary_key or _default_source_field(body.field_mappings, obj.primary_key)
    mode = body.sync_mode or obj.sync_mode
    if body.sync_mode is None and mode is SyncMode.FULL_OVERWRITE and body.cursor_field:
        # An object without a cursor (Fabra 0.1.0 had none) and a sync that names one: the sync
        # wants to be incremental.
        mode = SyncMode.INCREMENTAL_UPDATE if primary_key else SyncMode.INCREMENTAL_APPEND
    if mode is not SyncMode.FULL_OVERWRITE and not cursor:
        raise ValidationFailedError.for_field(
            "cursor_field", f"required for sync_mode {mode.value} (the object has none)"
        )
    if mode is SyncMode.INCREMENTAL_UPDATE and not primary_key:
        raise ValidationFailedError.for_field(
            "primary_key", "required for sync_mode incremental_update (the object has none)"
        )
    continuous = bool(body.continuous)
    frequency, units = body.frequency, body.frequency_units
    if frequency is None and not continuous:
        if obj.frequency is not None:
            frequency, units = obj.frequency, obj.frequency_units
        else:
            frequency, units = DEFAULT_FREQUENCY
    return {
        "display_name": body.display_name,
        "end_customer_id": body.end_customer_id or source_customer_id,
        "namespace": body.namespace,
        "table_name": body.table_name,
        "custom_join": body.custom_join,
        "cursor_field": cursor,
        "primary_key": primary_key,
        "field_mappings": [m.model_dump() for m in body.field_mappings],
        "sync_mode": SyncMode(mode).value,
        "frequency": None if continuous else frequency,
        "frequency_units": None if continuous else units and str(units),
        "continuous": continuous,
        "max_age_days": body.max_age_days,
        "lookback": body.lookback,
        "null_cursor": NullCursor(body.null_cursor).value,
        "deletes": body.deletes and body.deletes.value,
        "max_delete_fraction": body.max_delete_fraction,
        "delete_check_every": body.delete_check_every,
        "workers": body.workers,
        "rate_limit": body.rate_limit.model_dump() if body.rate_limit else None,
        "metadata": body.metadata,
        "external_id": body.external_id,
        "status": SyncStatus(body.status).value,
    }


def provider_sync_row(body: ProviderSyncCreate) -> dict[str, Any]:
    """The stored columns of a provider sync, checked against the provider catalog."""
    from sync_pipelines.providers import catalog  # the provider stack, only for provider syncs
    from sync_pipelines.providers.errors import ProviderConfigError
    from sync_pipelines.providers.presets import rest_provider_for

    try:
        info = catalog.provider_info(body.provider)
    except KeyError as error:
        raise ValidationFailedError.for_field("provider", str(error.args[0])) from None
    missing = [key for key in info.required_config if key not in body.provider_config]
    if missing:
        raise ValidationFailedError.for_field(
            "provider_config", f"{body.provider} syncs need {', '.join(missing)}"
        )
    try:
        rest_provider_for(body.provider, body.provider_config)
    except ProviderConfigError as error:
        raise ValidationFailedError.for_field("provider_config", str(error)) from None
    known = catalog.collection_names(info, body.provider_config)
    unknown = [c for c in body.collection_ids if c.partition(":")[2] not in known]
    if unknown:
        raise ValidationFailedError.for_field(
            "collection_ids",
            f"{unknown[0]!r} is not a {body.provider} collection; use one of "
            + ", ".join(f"{body.provider}:{name}" for name in sorted(known)),
        )
    continuous = bool(body.continuous)
    frequency, units = (body.frequency, body.frequency_units) if body.frequency else (4, "hours")
    rate_limit = body.rate_limit or info.default_rate_limit
    return {
        "display_name": body.display_name,
        "destination_id": body.destination_id,
        "provider": body.provider,
        "collection_ids": list(body.collection_ids),
        "provider_config": body.provider_config,
        "end_customer_id": body.end_customer_id or body.external_id or "default",
        "namespace": body.namespace or body.provider,
        "field_mappings": [],
        "sync_mode": SyncMode.INCREMENTAL_UPDATE.value,
        "frequency": None if continuous else frequency,
        "frequency_units": None if continuous else str(units),
        "continuous": continuous,
        "max_age_days": body.max_age_days,
        "rate_limit": rate_limit.model_dump(),
        "metadata": body.metadata,
        "external_id": body.external_id,
        "status": SyncStatus(body.status).value,
    }
