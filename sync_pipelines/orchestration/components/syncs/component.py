"""``SyncPipelinesComponent``: a ``syncs.yaml`` (or the same sections inline) as a component.

.. code-block:: yaml

    # defs/syncs/defs.yaml
    type: sync_pipelines.orchestration.components.SyncPipelinesComponent
    attributes:
      syncs_file: syncs.yaml          # beside this defs.yaml; or the sections inline:
      # sources: [...]
      # destinations: [...]
      # objects: [...]
      # syncs: [...]
      base_url: https://sync.example.com   # omit for the embedded sync API
      api_key_env_var: SYNC_API_KEY
      key_prefix: [raw]
      group_name: synced
      schedules_running: true
      sensor_running: true
"""

from collections.abc import Sequence
from typing import Any

from dagster import (
    AssetSpec,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
)
from dagster.components import Component, ComponentLoadContext, Model, Resolvable
from pydantic import Field

from sync_pipelines.orchestration.config import apply_syncs_file, load_syncs_yaml, parse_syncs
from sync_pipelines.orchestration.definitions import build_sync_definitions
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.translator import SyncObjectProps, SyncTranslator


class _AttributesTranslator(SyncTranslator):
    """The default translator, with the component's key prefix, group and tags."""

    def __init__(
        self,
        key_prefix: Sequence[str] | None,
        group_name: str | None,
        tags: dict[str, str] | None,
    ) -> None:
        self.key_prefix = list(key_prefix or [])
        self.group_name = group_name
        self.tags = dict(tags or {})

    def get_asset_spec(self, props: SyncObjectProps) -> AssetSpec:
        spec = super().get_asset_spec(props)
        if self.key_prefix:
            spec = spec.replace_attributes(key=spec.key.with_prefix(self.key_prefix))
        if self.group_name:
            spec = spec.replace_attributes(group_name=self.group_name)
        if self.tags:
            spec = spec.merge_attributes(tags=self.tags)
        return spec


class SyncPipelinesComponent(Component, Model, Resolvable):
    """Syncs from a ``syncs.yaml`` (or inline sections) as object assets, jobs, schedules and
    the ``sync_scheduler`` sensor.

    The sections are applied to the sync API when the definitions load (an idempotent upsert),
    exactly as :func:`~sync_pipelines.orchestration.build_sync_definitions` does with a file.
    """

    syncs_file: str | None = Field(
        default=None,
        description="A syncs.yaml, relative to this component's folder.",
    )
    sources: list[dict[str, Any]] | None = Field(
        default=None, description="Inline sources (as in syncs.yaml)."
    )
    destinations: list[dict[str, Any]] | None = Field(
        default=None, description="Inline destinations (as in syncs.yaml)."
    )
    objects: list[dict[str, Any]] | None = Field(
        default=None, description="Inline objects (as in syncs.yaml)."
    )
    syncs: list[dict[str, Any]] | None = Field(
        default=None, description="Inline syncs (as in syncs.yaml)."
    )
    base_url: str | None = Field(
        default=None, description="A sync API server; omitted: the embedded sync API."
    )
    api_key_env_var: str = Field(
        default="SYNC_API_KEY",
        description="The environment variable holding the server's API key (never the key).",
    )
    database_url_env_var: str | None = Field(
        default=None,
        description="An environment variable holding the embedded store's URL.",
    )
    key_prefix: list[str] | None = Field(default=None, description="Prefix of every asset key.")
    group_name: str | None = Field(default=None, description="Group of every object asset.")
    tags: dict[str, str] | None = Field(default=None, description="Tags of every object asset.")
    schedules_running: bool = Field(default=False, description="Start the schedules running.")
    sensor_running: bool = Field(default=False, description="Start sync_scheduler running.")

    def _inline(self) -> dict[str, Any]:
        sections = {
            "sources": self.sources,
            "destinations": self.destinations,
            "objects": self.objects,
            "syncs": self.syncs,
        }
        return {name: items for name, items in sections.items() if items is not None}

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        """Apply the syncs to the sync API and build the definitions."""
        sync_api = SyncApiResource(
            base_url=self.base_url,
            api_key=EnvVar(self.api_key_env_var) if self.base_url else None,
            database_url=EnvVar(self.database_url_env_var) if self.database_url_env_var else None,
        )
        folder = context.path if context.path.is_dir() else context.path.parent
        inline = self._inline()
        try:
            client = sync_api.get_client()
            if self.syncs_file is not None:
                apply_syncs_file(client, load_syncs_yaml(folder / self.syncs_file))
            if inline:
                apply_syncs_file(client, parse_syncs(inline, path=folder / "defs.yaml"))
        finally:
            sync_api.close()
        return build_sync_definitions(
            sync_api=sync_api,
            translator=_AttributesTranslator(self.key_prefix, self.group_name, self.tags),
            schedule_default_status=(
                DefaultScheduleStatus.RUNNING
                if self.schedules_running
                else DefaultScheduleStatus.STOPPED
            ),
            sensor_default_status=(
                DefaultSensorStatus.RUNNING if self.sensor_running else DefaultSensorStatus.STOPPED
            ),
        )
