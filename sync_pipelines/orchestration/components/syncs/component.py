"""``SyncPipelinesComponent``: the syncs of a sync API as a component, state-backed.

Like dagster-airbyte's and dagster-fivetran's workspace components, it is a Dagster
``StateBackedComponent``: the sync API is read when its state refreshes (by default at each code
server load; ``dg utils refresh-defs-state`` for ``VERSIONED_STATE_STORAGE``), and a sync API that
is down loads the last snapshot. Its ``syncs_file`` and inline sections are applied only by
``sync-pipelines apply defs.yaml`` (or ``apply_syncs_job``), never by loading.

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
from pathlib import Path
from typing import Any

from dagster import (
    AssetSpec,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
)
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)
from dagster.components import (
    ComponentLoadContext,
    DefsStateConfig,
    DefsStateConfigArgs,
    Model,
    Resolvable,
    ResolvedDefsStateConfig,
    StateBackedComponent,
)
from dagster_shared.serdes import deserialize_value, serialize_value
from pydantic import Field

from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.state import SyncApiDefsLoader, SyncApiSnapshot, state_key
from sync_pipelines.orchestration.sync_definitions import sync_definitions_from_catalog
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


class SyncPipelinesComponent(StateBackedComponent, Model, Resolvable):
    """The sync API's objects as assets partitioned by end customer, with jobs, schedules and
    the sync_scheduler sensor, built from a cached snapshot of the sync API.

    syncs_file and the inline sections (sources, destinations, objects, syncs, as in
    syncs.yaml) are what `sync-pipelines apply defs.yaml` and apply_syncs_job apply; loading
    never writes to the sync API.
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
    defs_state: ResolvedDefsStateConfig = DefsStateConfigArgs.legacy_code_server_snapshots()

    def _sync_api(self) -> SyncApiResource:
        return SyncApiResource(
            base_url=self.base_url,
            api_key=EnvVar(self.api_key_env_var) if self.base_url else None,
            database_url=EnvVar(self.database_url_env_var) if self.database_url_env_var else None,
        )

    @property
    def defs_state_config(self) -> DefsStateConfig:
        """One state key per sync API and organization."""
        default_key = f"{type(self).__name__}[{state_key(self._sync_api())}]"
        return DefsStateConfig.from_args(self.defs_state, default_key=default_key)

    def write_state_to_path(self, state_path: Path) -> None:
        """Read the sync API (or its last snapshot, while it is down) into ``state_path``."""
        snapshot = SyncApiDefsLoader(self._sync_api()).fetch_state()
        state_path.write_text(serialize_value(snapshot))

    def _inline(self) -> dict[str, Any]:
        sections = {
            "sources": self.sources,
            "destinations": self.destinations,
            "objects": self.objects,
            "syncs": self.syncs,
        }
        return {name: items for name, items in sections.items() if items is not None}

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        """Refresh the state as configured, then build the definitions from it.

        Outside a code location load (``build_defs_for_component`` in a test) there is no load
        context; one is made for the call, as a code server would.
        """
        if DefinitionsLoadContext.is_set():
            return super().build_defs(context)
        load = DefinitionsLoadContext(DefinitionsLoadType.INITIALIZATION)
        with DefinitionsLoadContext.scoped(load):
            return super().build_defs(context)

    def _apply_target(self, context: ComponentLoadContext) -> Path | None:
        """What ``apply_syncs_job`` applies: this defs.yaml (inline sections), or syncs_file."""
        folder = context.path if context.path.is_dir() else context.path.parent
        if self._inline():
            return folder / "defs.yaml"
        return folder / self.syncs_file if self.syncs_file else None

    def build_defs_from_state(
        self, context: ComponentLoadContext, state_path: Path | None
    ) -> Definitions:
        """The definitions of the cached snapshot (none before the first refresh)."""
        if state_path is None:
            return Definitions()
        snapshot = deserialize_value(state_path.read_text(), SyncApiSnapshot)
        return sync_definitions_from_catalog(
            snapshot.catalog(),
            sync_api=self._sync_api(),
            translator=_AttributesTranslator(self.key_prefix, self.group_name, self.tags),
            syncs_file=self._apply_target(context),
            schedule_default_status=(
                DefaultScheduleStatus.RUNNING
                if self.schedules_running
                else DefaultScheduleStatus.STOPPED
            ),
            sensor_default_status=(
                DefaultSensorStatus.RUNNING if self.sensor_running else DefaultSensorStatus.STOPPED
            ),
        )
