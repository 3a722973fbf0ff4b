"""Applying a ``syncs.yaml`` as an explicit step: ``apply_syncs_job`` (for CI/CD and the
Launchpad), as ``sync-pipelines apply FILE`` does from a shell.

Loading a code location never writes to the sync API; after applying, reload the code location
so that new objects become assets (new syncs of existing objects are picked up by
``sync_scheduler`` right away).
"""

from pathlib import Path

import yaml
from dagster import Config, Failure, JobDefinition, OpDefinition, OpExecutionContext, job, op
from pydantic import Field

from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.syncs_file import (
    SECTIONS,
    AppliedSyncs,
    SyncsFile,
    SyncsFileError,
    apply_syncs_file,
    load_syncs_yaml,
    parse_syncs,
)

APPLY_SYNCS_JOB = "apply_syncs_job"
COMPONENT_TYPE = "sync_pipelines.orchestration.components.SyncPipelinesComponent"


def load_syncs_files(path: str | Path) -> list[SyncsFile]:
    """The files to apply for ``path``: a ``syncs.yaml``, or a ``defs.yaml`` of
    ``SyncPipelinesComponent`` (its ``syncs_file``, then its inline sections).

    Raises:
        SyncsFileError: a file is missing or invalid.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        document = None  # load_syncs_yaml names the problem
    if not isinstance(document, dict) or document.get("type") != COMPONENT_TYPE:
        return [load_syncs_yaml(path)]
    attributes = document.get("attributes") or {}
    files = []
    if attributes.get("syncs_file"):
        files.append(load_syncs_yaml(path.parent / attributes["syncs_file"]))
    inline = {name: attributes[name] for name in SECTIONS if attributes.get(name) is not None}
    if inline:
        files.append(parse_syncs(inline, path=path))
    return files


def apply_syncs(client: SyncApi, path: str | Path) -> AppliedSyncs:
    """Apply a ``syncs.yaml`` (or a component's ``defs.yaml``) to the sync API.

    Returns:
        What was created and updated, and the ids of every entry.

    Raises:
        SyncsFileError: a file is invalid, or the sync API refuses one of its entries.
    """
    total = AppliedSyncs()
    for syncs_file in load_syncs_files(path):
        applied = apply_syncs_file(client, syncs_file)
        for name in ("source_ids", "destination_ids", "object_ids", "sync_ids"):
            getattr(total, name).update(getattr(applied, name))
        total.created.extend(applied.created)
        total.updated.extend(applied.updated)
    return total


class ApplySyncsConfig(Config):
    """The file to apply."""

    syncs_file: str = Field(
        description="The syncs.yaml (or a SyncPipelinesComponent's defs.yaml) to apply: a "
        "path on the machine that runs the job."
    )


def build_apply_syncs_op(*, name: str = "apply_syncs_op") -> OpDefinition:
    """An op that applies a ``syncs.yaml`` to the sync API (an idempotent upsert).

    Args:
        name: the op's name.

    Returns:
        The op: config :class:`ApplySyncsConfig`, resource ``sync_api``.
    """

    @op(
        name=name,
        description="Apply a syncs.yaml to the sync API (sources, destinations, objects and "
        "syncs by name; applying twice changes nothing). Reload the code location afterwards.",
        tags={"kind": "sync_pipelines"},
    )
    def _apply_syncs(
        context: OpExecutionContext, config: ApplySyncsConfig, sync_api: SyncApiResource
    ) -> None:
        try:
            applied = apply_syncs(sync_api.get_client(), config.syncs_file)
        except SyncsFileError as error:
            raise Failure(description=str(error)) from None
        context.log.info(
            f"{config.syncs_file}: {len(applied.created)} created, {len(applied.updated)} "
            f"updated; reload the code location to see new objects"
        )
        context.add_output_metadata(
            {
                "syncs_file": config.syncs_file,
                "created": ", ".join(applied.created) or "none",
                "updated": ", ".join(applied.updated) or "none",
                "syncs": len(applied.sync_ids),
            }
        )

    return _apply_syncs


def build_apply_syncs_job(
    *, syncs_file: str | Path | None = None, name: str = APPLY_SYNCS_JOB
) -> JobDefinition:
    """A job that applies a ``syncs.yaml`` (``syncs_file`` pre-fills its config).

    Run it from the Launchpad, or in CI/CD against your code location's module (e.g.
    ``dagster job execute -m sync_pipelines.definitions -j apply_syncs_job``; or, without
    Dagster, ``sync-pipelines apply syncs.yaml``), then reload the code location.
    """
    op_def = build_apply_syncs_op()
    config = (
        {"ops": {op_def.name: {"config": {"syncs_file": str(Path(syncs_file).resolve())}}}}
        if syncs_file is not None
        else None
    )

    @job(
        name=name,
        description="Apply a syncs.yaml to the sync API, then reload the code location.",
        config=config,
        tags={"sync_pipelines/job": name},
    )
    def _apply_syncs_job() -> None:
        op_def()

    return _apply_syncs_job
