"""sync-pipelines: incremental database syncs, a sync API and a Dagster plugin.

The Dagster plugin's public names are re-exported here lazily, so that importing the engine or
the sync API does not import Dagster.
"""

from importlib import import_module
from typing import Any

_ORCHESTRATION = "sync_pipelines.orchestration"
_DAGSTER_NAMES = {
    "SyncApiResource": _ORCHESTRATION,
    "SyncTranslator": _ORCHESTRATION,
    "SyncObjectProps": _ORCHESTRATION,
    "build_sync_assets": _ORCHESTRATION,
    "sync_assets": _ORCHESTRATION,
    "SyncAssetConfig": _ORCHESTRATION,
    "apply_syncs": _ORCHESTRATION,
    "build_sync_definitions": _ORCHESTRATION,
    "load_syncs_yaml": _ORCHESTRATION,
    "apply_syncs_file": _ORCHESTRATION,
    "SyncsFileError": _ORCHESTRATION,
    "create_sync_op": _ORCHESTRATION,
    "run_sync_op": _ORCHESTRATION,
    "sync_job": _ORCHESTRATION,
    "run_sync_job": _ORCHESTRATION,
    "SyncPipelinesComponent": "sync_pipelines.orchestration.components",
}

__all__ = sorted(_DAGSTER_NAMES)


def __getattr__(name: str) -> Any:
    module = _DAGSTER_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'sync_pipelines' has no attribute {name!r}")
    return getattr(import_module(module), name)
