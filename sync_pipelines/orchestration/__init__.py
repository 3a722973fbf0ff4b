"""sync-pipelines in Dagster: the sync API resource, object assets partitioned by end customer,
config-driven ops and jobs, schedules, the ``sync_scheduler`` sensor, ``syncs.yaml`` and the
``SyncPipelinesComponent``."""

from sync_pipelines.orchestration.apply import (
    ApplySyncsConfig,
    apply_syncs,
    build_apply_syncs_job,
    build_apply_syncs_op,
)
from sync_pipelines.orchestration.asset_decorator import sync_assets
from sync_pipelines.orchestration.assets import SyncAssetConfig, build_sync_assets
from sync_pipelines.orchestration.execution import CURSOR_CHECK, ROW_COUNT_CHECK
from sync_pipelines.orchestration.jobs import build_sync_jobs, run_sync_job, sync_job
from sync_pipelines.orchestration.ops import (
    CreateSyncConfig,
    FieldMappingConfig,
    FrequencyUnitsChoice,
    RunSyncConfig,
    SyncModeChoice,
    SyncStatusChoice,
    build_create_sync_op,
    build_run_sync_op,
    create_sync_op,
    run_sync_op,
)
from sync_pipelines.orchestration.resource import SyncApiResource
from sync_pipelines.orchestration.schedules import build_sync_schedules, sync_cron
from sync_pipelines.orchestration.sensors import build_sync_scheduler
from sync_pipelines.orchestration.snapshot import SyncCatalog
from sync_pipelines.orchestration.state import (
    SyncApiDefsLoader,
    SyncApiSnapshot,
    SyncApiUnavailableError,
    load_sync_catalog,
)
from sync_pipelines.orchestration.sync_definitions import (
    build_sync_definitions,
    sync_definitions_from_catalog,
)
from sync_pipelines.orchestration.syncs_file import (
    AppliedSyncs,
    SyncsFile,
    SyncsFileError,
    apply_syncs_file,
    load_syncs_yaml,
)
from sync_pipelines.orchestration.translator import SyncObjectProps, SyncTranslator

__all__ = [
    "CURSOR_CHECK",
    "ROW_COUNT_CHECK",
    "AppliedSyncs",
    "ApplySyncsConfig",
    "CreateSyncConfig",
    "FieldMappingConfig",
    "FrequencyUnitsChoice",
    "RunSyncConfig",
    "SyncApiDefsLoader",
    "SyncApiResource",
    "SyncApiSnapshot",
    "SyncApiUnavailableError",
    "SyncAssetConfig",
    "SyncCatalog",
    "SyncModeChoice",
    "SyncObjectProps",
    "SyncStatusChoice",
    "SyncTranslator",
    "SyncsFile",
    "SyncsFileError",
    "apply_syncs",
    "apply_syncs_file",
    "build_apply_syncs_job",
    "build_apply_syncs_op",
    "build_create_sync_op",
    "build_run_sync_op",
    "build_sync_assets",
    "build_sync_definitions",
    "build_sync_jobs",
    "build_sync_scheduler",
    "build_sync_schedules",
    "create_sync_op",
    "load_sync_catalog",
    "load_syncs_yaml",
    "run_sync_job",
    "run_sync_op",
    "sync_cron",
    "sync_assets",
    "sync_definitions_from_catalog",
    "sync_job",
]
