"""The Dagster Component of sync-pipelines, for ``dg`` projects (``defs.yaml``)."""

from sync_pipelines.orchestration.components.syncs.component import SyncPipelinesComponent

__all__ = ["SyncPipelinesComponent"]
