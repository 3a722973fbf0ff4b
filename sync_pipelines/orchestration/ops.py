"""Config-driven ops: create (or update) a sync from Launchpad config, and run one.

``create_sync_op``'s config holds the fields of ``POST /sync``, typed, with enums for
``sync_mode``, ``frequency_units`` and ``status``, so the Launchpad shows and validates them. It
upserts by object and end customer: launching it twice leaves one sync. ``run_sync_op`` runs a
sync (the one just created, ``sync_id``, or ``object_id`` + ``end_customer_id``), logs each
batch and reports an ``AssetMaterialization`` of the object's asset partition.
"""

import inspect
from enum import Enum
from typing import Any

import pydantic
from dagster import (
    AssetCheckEvaluation,
    AssetMaterialization,
    Config,
    DagsterInstance,
    Failure,
    In,
    OpDefinition,
    OpExecutionContext,
    Out,
    op,
)
from pydantic import Field

from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
from sync_pipelines.contract.errors import NotFoundError, SyncApiError, validation_details
from sync_pipelines.contract.models import (
    DeleteMode,
    FrequencyUnits,
    NullCursor,
    Sync,
    SyncCreate,
    SyncMode,
    SyncStatus,
)
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.orchestration._names import partitions_def_name
from sync_pipelines.orchestration._upsert import SyncFieldConflict, upsert_sync
from sync_pipelines.orchestration.execution import (
    check_results,
    execute_sync,
    previous_materialization_metadata,
    sync_metadata,
)
from sync_pipelines.orchestration.launch import tag_run_with_sync
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.source_check import check_against_source
from sync_pipelines.orchestration.translator import SyncObjectProps, SyncTranslator

# Launchpad enums: the API's values, read from its models. Dagster names the enum in its config
# errors ("... not in enum type <name> got fortnights"), so the name lists the values.


def _choice(enum: type[Enum]) -> type[Enum]:
    values = [member.value for member in enum]
    return Enum(f"{enum.__name__}({' | '.join(values)})", {value: value for value in values})


SyncModeChoice = _choice(SyncMode)
"""``sync_mode`` (default: the object's)."""
FrequencyUnitsChoice = _choice(FrequencyUnits)
"""``frequency_units``."""
SyncStatusChoice = _choice(SyncStatus)
"""``status``: a paused sync never runs."""
NullCursorChoice = _choice(NullCursor)
"""``null_cursor``: rows whose cursor is NULL (default: include)."""
DeleteModeChoice = _choice(DeleteMode)
"""``deletes``: rows whose key left the source (default: the object's, else ignore)."""


class FieldMappingConfig(Config):
    """Maps a source column onto an object field."""

    source_field_name: str = Field(description="The source column.")
    destination_field_name: str = Field(description="The object field it fills.")


class CreateSyncConfig(Config):
    """The sync to create, or to bring up to date if the object already has one for the end
    customer. Fields left empty keep the API's defaults (or the existing sync's values).
    """

    display_name: str = Field(description="The sync's name.")
    source_id: int = Field(description="The source (one end customer's database).")
    object_id: int = Field(description="The object (destination table) to fill.")
    end_customer_id: str | None = Field(
        default=None, description="The end customer (default: the source's)."
    )
    namespace: str | None = Field(default=None, description="The source table's schema.")
    table_name: str | None = Field(default=None, description="The source table.")
    custom_join: str | None = Field(
        default=None, description="A read-only SELECT to read instead of a table."
    )
    cursor_field: str | None = Field(
        default=None, description="Source column ordering changes (default: from the object)."
    )
    primary_key: str | None = Field(
        default=None, description="Source key column (default: from the object)."
    )
    field_mappings: list[FieldMappingConfig] = Field(
        default_factory=list, description="Source columns onto object fields."
    )
    sync_mode: SyncModeChoice | None = Field(default=None, description="Default: the object's.")
    frequency: int | None = Field(default=None, description="Run every `frequency` units.")
    frequency_units: FrequencyUnitsChoice | None = Field(default=None)
    continuous: bool = Field(
        default=False, description="Run again as soon as the previous run finished."
    )
    max_age_days: int | None = Field(default=None, description="Only rows this recent.")
    lookback: int | None = Field(
        default=None, description="Re-read this many seconds (or cursor units) each run."
    )
    null_cursor: NullCursorChoice | None = Field(
        default=None,
        description="Rows whose cursor is NULL: include (read every run), fail or skip.",
    )
    deletes: DeleteModeChoice | None = Field(
        default=None,
        description="Rows whose key left the source: ignore, soft (_deleted_at) or hard "
        "(default: the object's, else ignore).",
    )
    max_delete_fraction: float | None = Field(
        default=None, description="Refuse a delete check deleting more of the rows (0.5)."
    )
    delete_check_every: int | None = Field(
        default=None, description="Check for deletes every N runs (default 1)."
    )
    workers: int | None = Field(
        default=None, description="Threads loading a backfill's key ranges (1 to 32; default 1)."
    )
    metadata: dict[str, str] = Field(default_factory=dict)
    external_id: str | None = Field(default=None)
    status: SyncStatusChoice = Field(
        default=SyncStatusChoice.active,
        description="active (launching resumes a paused sync) or paused.",
    )


class RunSyncConfig(Config):
    """Which sync to run and how. In sync_job the sync comes from create_sync_op."""

    sync_id: int | None = Field(default=None, description="The sync to run.")
    object_id: int | None = Field(default=None, description="Or: the object, with end_customer_id.")
    end_customer_id: str | None = Field(default=None, description="Or: with object_id.")
    full_refresh: bool = Field(
        default=False, description="Re-read the whole source and replace the end customer's rows."
    )
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, description="Rows per batch.")
    allow_mass_delete: bool = Field(
        default=False,
        description="Let the delete check delete more than the sync's max_delete_fraction.",
    )
    workers: int | None = Field(
        default=None,
        description="Threads loading a backfill's key ranges in this run (default: the sync's).",
    )


# Dagster shows a config class's docstring as the Launchpad's plain-text description of its
# config: without the source's indentation.
for _config in (FieldMappingConfig, CreateSyncConfig, RunSyncConfig):
    _config.__doc__ = inspect.cleandoc(_config.__doc__ or "")


def sync_create_body(config: CreateSyncConfig, op_name: str = "create_sync_op") -> SyncCreate:
    """The ``POST /sync`` body of a config.

    Raises:
        Failure: the body is invalid; the description names the field.
    """
    data = config.model_dump(mode="json", exclude_none=True)
    if not data.get("continuous"):
        data.pop("continuous", None)
    try:
        return SyncCreate.model_validate(data)
    except pydantic.ValidationError as error:
        details = validation_details(error.errors(include_url=False, include_input=False))
        raise _config_failure(op_name, details) from None


def _config_failure(op_name: str, details: list[dict[str, Any]]) -> Failure:
    lines = [f"{d.get('field') or '(config)'}: {d.get('message')}" for d in details]
    return Failure(
        description=f"{op_name} config is invalid: " + "; ".join(lines),
        metadata={"fields": ", ".join(d.get("field") or "(config)" for d in details)},
    )


def _referenced(get: Any, item_id: int, field: str, op_name: str) -> Any:
    """The resource a config field names (``get(item_id)``), or a config failure naming it."""
    try:
        return get(item_id)
    except NotFoundError as error:
        raise _config_failure(op_name, [{"field": field, "message": str(error)}]) from None


def _given(config: CreateSyncConfig) -> set[str]:
    """The fields the config sets (``None`` leaves the API's value)."""
    given = {name for name, value in config.model_dump().items() if value is not None}
    if not config.continuous:
        given.discard("continuous")
    if not config.field_mappings:
        given.discard("field_mappings")
    if not config.metadata:
        given.discard("metadata")
    return given


def _add_partition(
    instance: DagsterInstance, client: SyncApi, sync: Sync, translator: SyncTranslator
) -> None:
    """Add the sync's end customer to its object asset's partitions, if missing."""
    if sync.object_id is None:
        return
    key = object_asset_key(client, sync.object_id, translator)
    name = partitions_def_name(key)
    if not instance.has_dynamic_partition(name, sync.end_customer_id):
        instance.add_dynamic_partitions(name, [sync.end_customer_id])


def object_asset_key(client: SyncApi, object_id: int, translator: SyncTranslator):
    """The asset key the translator gives an object."""
    obj = client.get_object(object_id)
    props = SyncObjectProps(
        object=obj,
        destination=client.get_destination(obj.destination_id),
        syncs=tuple(client.list_syncs(object_id=object_id)),
    )
    return translator.get_asset_spec(props).key


def build_create_sync_op(
    *, translator: SyncTranslator | None = None, name: str = "create_sync_op"
) -> OpDefinition:
    """An op that creates or updates a sync from its config and outputs the sync's id.

    Args:
        translator: names the object's asset, whose partition (the end customer) it adds.
        name: the op's name.

    Returns:
        The op: config :class:`CreateSyncConfig`, resource ``sync_api``, output ``sync_id``.
    """
    translator = translator or SyncTranslator()

    @op(
        name=name,
        out={"sync_id": Out(int, description="The created or updated sync.")},
        description="Create the sync of the config, or update the object's existing sync for "
        "the end customer (launching twice leaves one sync).",
        tags={"kind": "sync_pipelines"},
    )
    def _create_sync(
        context: OpExecutionContext, config: CreateSyncConfig, sync_api: SyncApiResource
    ) -> int:
        client = sync_api.get_client()
        body = sync_create_body(config, name)
        source = _referenced(client.get_source, config.source_id, "source_id", name)
        obj = _referenced(client.get_object, config.object_id, "object_id", name)
        customer = config.end_customer_id or source.end_customer_id
        given = _given(config)
        existing = client.list_syncs(object_id=obj.id, end_customer_id=customer)
        # nothing is written unless the config fits the source table and the object
        problems = check_against_source(
            client,
            body,
            source=source,
            obj=obj,
            existing=existing[0] if existing else None,
            given=given,
        )
        if problems:
            raise _config_failure(name, problems)
        try:
            upserted = upsert_sync(client, body, end_customer_id=customer, given=given)
        except SyncFieldConflict as conflict:
            raise _config_failure(
                name, [{"field": conflict.field, "message": conflict.message}]
            ) from None
        except SyncApiError as error:
            details = error.details or [{"field": None, "message": error.message}]
            raise _config_failure(name, details) from None
        sync = upserted.sync
        tag_run_with_sync(context, sync)  # the scheduler now sees this sync in flight
        _add_partition(context.instance, client, sync, translator)
        context.log.info(
            f"sync {sync.id} ({sync.display_name!r}) for end customer {sync.end_customer_id!r}: "
            f"{upserted.action}"
        )
        context.add_output_metadata(
            {
                "sync_id": sync.id,
                "action": upserted.action,
                "end_customer_id": sync.end_customer_id,
                "schedule": sync.sync_frequency or "none",
            }
        )
        return sync.id

    return _create_sync


def build_run_sync_op(
    *, translator: SyncTranslator | None = None, name: str = "run_sync_op"
) -> OpDefinition:
    """An op that runs one sync and reports the materialization of its asset partition.

    Args:
        translator: names the object's asset.
        name: the op's name.

    Returns:
        The op: config :class:`RunSyncConfig`, resource ``sync_api``, optional input
        ``created_sync_id`` (from ``create_sync_op``).
    """
    translator = translator or SyncTranslator()

    @op(
        name=name,
        ins={
            "created_sync_id": In(
                int | None,
                default_value=None,
                description="The sync create_sync_op made (else the config names it).",
            )
        },
        description="Run a sync with the engine: log each batch, then report the object "
        "asset's partition (the end customer) as materialized, with its checks' results.",
        tags={"kind": "sync_pipelines"},
    )
    def _run_sync(
        context: OpExecutionContext,
        config: RunSyncConfig,
        sync_api: SyncApiResource,
        created_sync_id: int | None,
    ) -> None:
        client = sync_api.get_client()
        sync = _chosen_sync(client, config, created_sync_id, name)
        key = object_asset_key(client, sync.object_id, translator) if sync.object_id else None
        previous = (
            previous_materialization_metadata(context.instance, key, sync.end_customer_id)
            if key is not None
            else None
        )
        outcome = execute_sync(
            context,
            client,
            sync,
            full_refresh=config.full_refresh,
            batch_size=config.batch_size,
            allow_mass_delete=config.allow_mass_delete,
            workers=config.workers,
        )
        if key is None:
            return
        _add_partition(context.instance, client, sync, translator)
        context.log_event(
            AssetMaterialization(
                asset_key=key,
                partition=sync.end_customer_id,
                description=f"sync {sync.id} run {outcome.result.run_id}",
                metadata=sync_metadata(outcome),
            )
        )
        # the object asset's checks, evaluated as a materialization of the asset evaluates them
        for result in check_results(outcome, previous):
            context.log_event(
                AssetCheckEvaluation(
                    asset_key=key,
                    check_name=result.check_name,
                    passed=result.passed,
                    metadata=result.metadata,
                    severity=result.severity,
                    description=result.description,
                    partition=sync.end_customer_id,
                )
            )

    return _run_sync


def _chosen_sync(
    client: SyncApi, config: RunSyncConfig, created_sync_id: int | None, op_name: str
) -> Sync:
    if created_sync_id is not None:
        if config.sync_id is not None and config.sync_id != created_sync_id:
            raise _config_failure(
                op_name,
                [
                    {
                        "field": "sync_id",
                        "message": f"the job created sync {created_sync_id}; leave sync_id empty",
                    }
                ],
            )
        return client.get_sync(created_sync_id)
    if config.sync_id is not None:
        try:
            return client.get_sync(config.sync_id)
        except NotFoundError as error:
            raise _config_failure(op_name, [{"field": "sync_id", "message": str(error)}]) from None
    if config.object_id is None or config.end_customer_id is None:
        missing = "end_customer_id" if config.object_id is not None else "sync_id"
        raise _config_failure(
            op_name,
            [{"field": missing, "message": "give sync_id, or object_id and end_customer_id"}],
        )
    found = client.list_syncs(object_id=config.object_id, end_customer_id=config.end_customer_id)
    if not found:
        raise _config_failure(
            op_name,
            [
                {
                    "field": "object_id",
                    "message": f"object {config.object_id} has no sync for end customer "
                    f"{config.end_customer_id!r}",
                }
            ],
        )
    return found[0]


create_sync_op = build_create_sync_op()
"""Creates or updates a sync from Launchpad config (default translator)."""
run_sync_op = build_run_sync_op()
"""Runs a sync and reports its asset partition materialized (default translator)."""
